//! A submission round: the shard files of some lessons' requests, each with a small
//! requests file beside it that says, per lesson, what the request was made from.
//!
//! Shard ids are `r<round>_input_<n>` (`r01_input_001`), unique in a job's ledger, and
//! the files are `<id>.jsonl` and `<id>.lessons.jsonl` in the job folder.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use batch_request::{Limits, RequestBuilder, RequestSettings, Shard, Template};
use curriculum_parser::{Curriculum, Lesson, LessonCode};
use lesson_writer::RequestedLesson;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::identity::sha256_hex;

/// What one request of a shard was made from: one line of `<id>.lessons.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentLesson {
    /// The lesson.
    pub code: LessonCode,
    /// The title the request was built with (the answer's heading).
    pub title: String,
    /// The request's provenance hash ([`RequestHasher`]).
    pub request_sha256: String,
    /// The request's `max_completion_tokens`.
    pub max_completion_tokens: u32,
}

impl SentLesson {
    /// As the lesson writer wants it.
    pub fn requested(&self) -> RequestedLesson {
        RequestedLesson {
            title: self.title.clone(),
            request_sha256: self.request_sha256.clone(),
        }
    }
}

/// A shard written for a round.
#[derive(Debug, Clone)]
pub struct RoundShard {
    /// Its id in the ledger.
    pub id: String,
    /// The shard file and its estimate.
    pub shard: Shard,
}

/// The requests file beside a shard file.
pub fn requests_path(shard: &Path) -> PathBuf {
    shard.with_extension("lessons.jsonl")
}

/// The round of a shard id (`r07_input_001` gives 7).
pub(crate) fn round_of(id: &str) -> Option<u32> {
    id.strip_prefix('r')?.split_once("_input_")?.0.parse().ok()
}

/// Hashes what a lesson's request is made from: the template, the settings that shape a
/// request (the model and every parameter; not prices, not `max_completion_tokens`, since a
/// larger budget for a retry is the same request) and the lesson's own outline entry (code,
/// title, complexity, section, module). Edits elsewhere in the outline, which reach a
/// prompt only as context (the outline excerpt, neighbouring titles), do not make a lesson
/// stale.
#[derive(Debug)]
pub struct RequestHasher<'a> {
    curriculum: &'a Curriculum,
    prefix: String,
}

impl<'a> RequestHasher<'a> {
    /// A hasher for the lessons of `curriculum`.
    pub fn new(
        curriculum: &'a Curriculum,
        template: &Template,
        settings: &RequestSettings,
    ) -> Self {
        let mut shaping = serde_json::to_value(settings).unwrap_or_default();
        if let Some(object) = shaping.as_object_mut() {
            object.remove("prices");
            object.remove("max_completion_tokens");
            object.remove("expected_output_tokens");
        }
        RequestHasher {
            curriculum,
            prefix: format!("{}\n{shaping}\n", template.sha256()),
        }
    }

    /// The hash of `lesson`'s request.
    pub fn hash(&self, lesson: &Lesson) -> String {
        let module = self.curriculum.module(lesson.code.module());
        let entry = serde_json::json!({
            "code": lesson.code,
            "title": lesson.title,
            "complexity": lesson.complexity.map(|complexity| complexity.to_string()),
            "section": lesson.section,
            "module": module.map(|module| module.title.as_str()),
            "curriculum": self.curriculum.title,
        });
        sha256_hex(format!("{}{entry}", self.prefix).as_bytes())
    }
}

/// Builds the requests of `lessons` (each with an optional `max_completion_tokens`
/// override), writes them as shards `<round>_input_NNN.jsonl` into `dir` with their
/// requests files, and returns the shards.
///
/// # Errors
///
/// [`Error::Request`] when a request cannot be built or written, [`Error::Io`] for the
/// requests files.
#[allow(clippy::too_many_arguments)] // Each is a distinct input of one build step.
pub(crate) fn build_round(
    curriculum: &Curriculum,
    outline_text: &str,
    template: &Template,
    settings: &RequestSettings,
    lessons: &[(&Lesson, Option<u32>)],
    dir: &Path,
    round: &str,
) -> Result<Vec<RoundShard>, Error> {
    fs::create_dir_all(dir).map_err(|source| Error::io("create", dir, source))?;
    let builder = RequestBuilder::new(curriculum, outline_text, template, settings);
    let hasher = RequestHasher::new(curriculum, template, settings);
    let mut sent: BTreeMap<String, SentLesson> = BTreeMap::new();
    let mut requests = Vec::with_capacity(lessons.len());
    for (lesson, tokens) in lessons {
        let mut request = builder.build(lesson)?;
        if let Some(tokens) = tokens {
            request.request.body.max_completion_tokens = Some(*tokens);
        }
        sent.insert(
            request.request.custom_id.clone(),
            SentLesson {
                code: lesson.code,
                title: lesson.title.clone(),
                request_sha256: hasher.hash(lesson),
                max_completion_tokens: request
                    .request
                    .body
                    .max_completion_tokens
                    .unwrap_or(settings.max_completion_tokens),
            },
        );
        requests.push(request);
    }
    let shards = batch_request::write_shards(&requests, dir, round, Limits::default(), settings)?;
    let mut built = Vec::with_capacity(shards.len());
    for shard in shards {
        let id = shard
            .path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lines = shard
            .custom_ids
            .iter()
            .filter_map(|custom_id| sent.get(custom_id));
        write_requests(&requests_path(&shard.path), lines)?;
        built.push(RoundShard { id, shard });
    }
    Ok(built)
}

/// Writes a requests file atomically.
fn write_requests<'a>(
    path: &Path,
    lines: impl Iterator<Item = &'a SentLesson>,
) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = tempfile_in(dir)?;
    let mut out = BufWriter::new(temp);
    let write_error = |source| Error::io("write", path, source);
    for line in lines {
        serde_json::to_writer(&mut out, line).map_err(|err| write_error(err.into()))?;
        out.write_all(b"\n").map_err(write_error)?;
    }
    let temp = out
        .into_inner()
        .map_err(|err| write_error(err.into_error()))?;
    temp.persist(path).map_err(|err| write_error(err.error))?;
    Ok(())
}

/// A temp file in `dir` of this crate's naming, so a killed run's leftovers are found.
pub(crate) fn tempfile_in(dir: &Path) -> Result<tempfile::NamedTempFile, Error> {
    tempfile::Builder::new()
        .prefix(lesson_writer::TEMP_PREFIX)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|source| Error::io("create a temp file in", dir, source))
}

/// Reads the requests file of the shard file `shard`, by lesson.
///
/// # Errors
///
/// [`Error::Io`] when it cannot be read, [`Error::JobFile`] for a line this tool did not write.
pub fn read_requests(shard: &Path) -> Result<BTreeMap<LessonCode, SentLesson>, Error> {
    let path = requests_path(shard);
    let file = fs::File::open(&path).map_err(|source| Error::io("read", &path, source))?;
    let mut lessons = BTreeMap::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| Error::io("read", &path, source))?;
        let sent: SentLesson = serde_json::from_str(&line).map_err(|err| Error::JobFile {
            path: path.clone(),
            line: index as u64 + 1,
            problem: err.to_string(),
        })?;
        lessons.insert(sent.code, sent);
    }
    Ok(lessons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_numbers_come_from_shard_ids() {
        assert_eq!(round_of("r07_input_001"), Some(7));
        assert_eq!(round_of("r123_input_010"), Some(123));
        assert_eq!(round_of("dry-run_input_001"), None);
        assert_eq!(round_of("x"), None);
    }

    #[test]
    fn a_round_writes_shards_with_their_requests_files() {
        let outline = "# M0: Basics\n## L001: One [F]\n## L002: Two [I]\n";
        let curriculum = curriculum_parser::parse(outline, Path::new("o.md")).unwrap();
        let template = Template::generic();
        let settings = RequestSettings::default();
        let dir = tempfile::tempdir().unwrap();
        let lessons: Vec<(&Lesson, Option<u32>)> =
            curriculum.lessons().zip([None, Some(32_000)]).collect();
        let shards = build_round(
            &curriculum,
            outline,
            &template,
            &settings,
            &lessons,
            dir.path(),
            "r01",
        )
        .unwrap();
        assert_eq!(shards.len(), 1);
        assert_eq!(shards[0].id, "r01_input_001");
        let sent = read_requests(&shards[0].shard.path).unwrap();
        let codes: Vec<String> = sent.keys().map(ToString::to_string).collect();
        assert_eq!(codes, ["M0-L001", "M0-L002"]);
        let two = &sent[&"M0-L002".parse().unwrap()];
        assert_eq!(
            (two.title.as_str(), two.max_completion_tokens),
            ("Two", 32_000)
        );

        // The hash ignores the outline elsewhere (a neighbour's title) and the token
        // budget, not the lesson's own title.
        let edited = "# M0: Basics\n## L001: One renamed [F]\n## L002: Two [I]\n";
        let other = curriculum_parser::parse(edited, Path::new("o.md")).unwrap();
        let now = RequestHasher::new(&other, &template, &settings);
        let lesson = |c: &Curriculum, n| c.lessons().nth(n).unwrap().clone();
        assert_eq!(now.hash(&lesson(&other, 1)), two.request_sha256);
        assert_ne!(
            now.hash(&lesson(&other, 0)),
            sent[&"M0-L001".parse().unwrap()].request_sha256
        );
    }
}
