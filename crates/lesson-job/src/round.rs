//! A submission round: the shard files of some lessons' requests, each with a small
//! requests file beside it that says, per lesson, what the request was made from.
//!
//! Shard ids are `r<round>_input_<n>` (`r01_input_001`), unique in a job's ledger, and
//! the files are `<id>.jsonl` and `<id>.lessons.jsonl` in the job folder.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use batch_request::{Limits, RequestBuilder, RequestSettings, Shard, ShardWriter, Template};
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

/// Whether `path` names a shard (`r01_input_001.jsonl`) or its requests file
/// (`r01_input_001.lessons.jsonl`) in a job folder.
pub fn is_shard_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_suffix(".jsonl"))
        .map(|stem| stem.strip_suffix(".lessons").unwrap_or(stem))
        .and_then(|id| Some((round_of(id)?, id.split_once("_input_")?.1)))
        .is_some_and(|(_, number)| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
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
    /// Module titles by number (the first module of a number, as [`Curriculum::module`]).
    modules: BTreeMap<u32, &'a str>,
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
            // What only estimates or schedules, never what a request says.
            for key in [
                "prices",
                "max_completion_tokens",
                "expected_output_tokens",
                "expected_reasoning_tokens",
                "enqueued_token_limit",
                "context_window",
                "max_requests_per_batch",
                "quality",
            ] {
                object.remove(key);
            }
        }
        let mut modules = BTreeMap::new();
        for module in &curriculum.modules {
            modules
                .entry(module.number)
                .or_insert(module.title.as_str());
        }
        RequestHasher {
            curriculum,
            modules,
            prefix: format!("{}\n{shaping}\n", template.sha256()),
        }
    }

    /// The hash of `lesson`'s request.
    pub fn hash(&self, lesson: &Lesson) -> String {
        let module = self.modules.get(&lesson.code.module());
        let entry = serde_json::json!({
            "code": lesson.code,
            "title": lesson.title,
            "complexity": lesson.complexity.map(|complexity| complexity.to_string()),
            "section": lesson.section,
            "module": module,
            "curriculum": self.curriculum.title,
        });
        sha256_hex(format!("{}{entry}", self.prefix).as_bytes())
    }
}

/// The part of an outline's text that requests can quote, which a job keeps instead of the
/// whole text. [`RequestBuilder`] quotes at most the first `curriculum_char_limit`
/// characters (a byte order mark dropped, CRLF read as LF) and notes whether it cut; the
/// first twice as many characters and two more (a CRLF is two characters read as one), after
/// a byte order mark, give it the same excerpt and the same note.
pub(crate) fn quotable_outline(mut text: String, settings: &RequestSettings) -> String {
    let bom = usize::from(text.starts_with('\u{feff}'));
    let keep = settings
        .curriculum_char_limit
        .saturating_mul(2)
        .saturating_add(2)
        .saturating_add(bom);
    if let Some((end, _)) = text.char_indices().nth(keep) {
        text.truncate(end);
        text.shrink_to_fit();
    }
    text
}

/// The share of the model's enqueued-token limit one shard may fill, as a fraction.
///
/// The estimate counts input tokens with the model's tokenizer (tiktoken) plus the chat
/// format's overhead as OpenAI's cookbook does, which is exact for the text but not
/// guaranteed to match what the API counts against the limit (its message formatting,
/// a snapshot's tokenizer, parameters such as `reasoning_effort`). A tenth of headroom
/// covers those few tokens per request many times over while keeping shards large, and a
/// shard cut this way always fits the limit on its own.
const ENQUEUED_TOKEN_SHARE: (u64, u64) = (9, 10);

/// The limits of a job's shards: `max_requests_per_batch` requests (the API's 50,000 when
/// unset), the API's byte limit, and [`ENQUEUED_TOKEN_SHARE`] of `enqueued_token_limit`, the
/// model's limit of input tokens in unfinished batches (no token limit when unknown).
pub(crate) fn shard_limits(
    settings: &RequestSettings,
    enqueued_token_limit: Option<u64>,
) -> Limits {
    let (numerator, denominator) = ENQUEUED_TOKEN_SHARE;
    Limits {
        max_requests: settings
            .max_requests_per_batch
            .unwrap_or(Limits::default().max_requests),
        max_input_tokens: enqueued_token_limit.map(|limit| {
            let share = u128::from(limit) * u128::from(numerator) / u128::from(denominator);
            u64::try_from(share).unwrap_or(u64::MAX).max(1)
        }),
        ..Limits::default()
    }
}

/// Builds the requests of `lessons` (each with an optional `max_completion_tokens`
/// override), writes them as shards `<round>_input_NNN.jsonl` into `dir` within `limits`,
/// each with its requests file, and returns the shards.
///
/// Streams: every request is built, counted and written to its shard, and its line to the
/// shard's requests file, before the next is built, so memory does not grow with the
/// number of lessons. All files are renamed into place at the end; on error none is.
///
/// # Errors
///
/// [`Error::Request`] when a request cannot be built or written (a lesson given twice is
/// [`batch_request::Error::DuplicateCustomId`], naming both titles), [`Error::Io`] for the
/// requests files.
#[allow(clippy::too_many_arguments)] // Each is a distinct input of one build step.
pub(crate) fn build_round<'c>(
    curriculum: &'c Curriculum,
    outline_text: &str,
    template: &Template,
    settings: &RequestSettings,
    cache_key: &str,
    limits: Limits,
    lessons: impl IntoIterator<Item = (&'c Lesson, Option<u32>)>,
    dir: &Path,
    round: &str,
) -> Result<Vec<RoundShard>, Error> {
    fs::create_dir_all(dir).map_err(|source| Error::io("create", dir, source))?;
    let builder = request_builder(curriculum, outline_text, template, settings, cache_key);
    let hasher = RequestHasher::new(curriculum, template, settings);
    let mut writer = ShardWriter::new(dir, round, limits, settings)?;
    // One requests file per shard, written beside it line for line.
    let mut requests_files = RequestsFiles::new(dir);
    for (lesson, tokens) in lessons {
        let mut request = builder.build(lesson)?;
        if let Some(tokens) = tokens {
            request.request.body.max_completion_tokens = Some(tokens);
        }
        let placement = writer
            .push(&request)
            .map_err(|err| name_first_lesson(err, curriculum))?;
        if placement.shard > requests_files.count() {
            requests_files.start_next()?;
        }
        requests_files.write(&SentLesson {
            code: lesson.code,
            title: lesson.title.clone(),
            request_sha256: hasher.hash(lesson),
            max_completion_tokens: request
                .request
                .body
                .max_completion_tokens
                .unwrap_or(settings.max_completion_tokens),
        })?;
    }
    let written = requests_files.finish()?;
    let shards = writer.finish()?;
    let mut built = Vec::with_capacity(shards.len());
    for (shard, file) in shards.into_iter().zip(written) {
        let path = requests_path(&shard.path);
        file.persist(&path)
            .map_err(|err| Error::io("write", &path, err.error))?;
        let id = shard
            .path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        built.push(RoundShard { id, shard });
    }
    Ok(built)
}

/// The builder of a job's requests: the same for a batch's rounds and for a preview, so the
/// same template and settings give the same request body.
pub(crate) fn request_builder<'c>(
    curriculum: &'c Curriculum,
    outline_text: &str,
    template: &'c Template,
    settings: &'c RequestSettings,
    cache_key: &str,
) -> RequestBuilder<'c> {
    RequestBuilder::new(curriculum, outline_text, template, settings)
        .with_prompt_cache_key(cache_key)
}

/// The shard writer keeps no titles; a lesson given twice is named with both, the first
/// looked up in the curriculum by its outline line.
fn name_first_lesson(err: batch_request::Error, curriculum: &Curriculum) -> Error {
    match err {
        batch_request::Error::RepeatedCustomId {
            custom_id,
            first_line,
            second_title,
            second_line,
        } => {
            let first_title = curriculum
                .lessons()
                .find(|lesson| lesson.line == first_line)
                .map_or_else(|| second_title.clone(), |lesson| lesson.title.clone());
            Error::Request(batch_request::Error::DuplicateCustomId {
                custom_id,
                first_title,
                first_line,
                second_title,
                second_line,
            })
        }
        err => Error::Request(err),
    }
}

/// The requests files of a round being written, one per shard: temp files of this crate's
/// naming, each synced and closed when its shard is full, renamed into place by the caller.
struct RequestsFiles<'a> {
    dir: &'a Path,
    open: Option<BufWriter<tempfile::NamedTempFile>>,
    written: Vec<tempfile::TempPath>,
}

impl<'a> RequestsFiles<'a> {
    fn new(dir: &'a Path) -> RequestsFiles<'a> {
        RequestsFiles {
            dir,
            open: None,
            written: Vec::new(),
        }
    }

    /// How many files were started.
    fn count(&self) -> usize {
        self.written.len() + usize::from(self.open.is_some())
    }

    /// Closes the current file and starts the next.
    fn start_next(&mut self) -> Result<(), Error> {
        self.close()?;
        self.open = Some(BufWriter::new(tempfile_in(self.dir)?));
        Ok(())
    }

    fn write(&mut self, line: &SentLesson) -> Result<(), Error> {
        let out = self.open.as_mut().expect("a requests file was started");
        let written = serde_json::to_writer(&mut *out, line)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        written.map_err(|source| Error::io("write", out.get_ref().path(), source))
    }

    /// The written files, synced and closed, in order.
    fn finish(mut self) -> Result<Vec<tempfile::TempPath>, Error> {
        self.close()?;
        Ok(self.written)
    }

    fn close(&mut self) -> Result<(), Error> {
        let Some(out) = self.open.take() else {
            return Ok(());
        };
        let path = out.get_ref().path().to_owned();
        let write_error = |source| Error::io("write", &path, source);
        let temp = out
            .into_inner()
            .map_err(|err| write_error(err.into_error()))?;
        temp.as_file().sync_all().map_err(write_error)?;
        self.written.push(temp.into_temp_path());
        Ok(())
    }
}

/// A temp file in `dir` of this crate's naming, so a killed run's leftovers are found.
pub(crate) fn tempfile_in(dir: &Path) -> Result<tempfile::NamedTempFile, Error> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    // As `open(2)` with 0o666 would: the umask decides (0644 under umask 022), not
    // tempfile's 0600, for a file the user reads and shares.
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder
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
    fn shard_files_are_told_by_name() {
        for name in ["r01_input_001.jsonl", "w/job-1/r12_input_003.lessons.jsonl"] {
            assert!(is_shard_file(Path::new(name)), "{name}");
        }
        for name in [
            "ledger.json",
            "r01_input_001_output.jsonl",
            "notes.jsonl",
            "rx_input_001.jsonl",
        ] {
            assert!(!is_shard_file(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn a_round_over_the_context_window_is_refused_as_input_and_leaves_no_file() {
        // Issue 12: a 200,000-character title made a request far over gpt-4o-mini's window.
        let title: String = (0..40_000u32)
            .map(|number| format!("{number:x}q"))
            .collect::<String>()
            .chars()
            .take(200_000)
            .collect();
        let outline = format!("# M0: Basics\n## L001: One [F]\n## L002: {title} [F]\n");
        let curriculum = curriculum_parser::parse(&outline, Path::new("o.md")).unwrap();
        let settings = RequestSettings::default();
        let dir = tempfile::tempdir().unwrap();
        let err = build_round(
            &curriculum,
            &outline,
            &Template::generic(),
            &settings,
            "job-key",
            Limits::default(),
            curriculum.lessons().map(|lesson| (lesson, None)),
            dir.path(),
            "r01",
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Input);
        let Error::Request(batch_request::Error::OverContextWindow { requests, count }) = &err
        else {
            panic!("unexpected {err:?}");
        };
        assert!(*count >= 1);
        assert!(
            requests
                .iter()
                .any(|request| request.code.to_string() == "M0-L002" && request.line == 3),
            "{requests:?}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

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
            "job-key",
            Limits::default(),
            lessons,
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

    #[test]
    fn the_quotable_outline_gives_the_same_requests_as_the_whole() {
        let every_placeholder: String = batch_request::Placeholder::ALL
            .iter()
            .map(|placeholder| format!("{0}: {{{{{0}}}}}\n", placeholder.name()))
            .collect();
        let legacy = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/legacy/lesson_prompt_template.md"
        );
        let templates = [
            Template::generic(),
            Template::parse(&every_placeholder, Path::new("all.md")).unwrap(),
            Template::parse(&fs::read_to_string(legacy).unwrap(), Path::new(legacy)).unwrap(),
        ];
        let fixture = fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/datagov/Content Structure.md"
        ))
        .unwrap();
        let crlf = format!("\u{feff}{}", fixture.replace('\n', "\r\n"));
        for text in [fixture.clone(), crlf] {
            for limit in [1, 99, 100, 101, 8000, 1_000_000] {
                let settings = RequestSettings {
                    curriculum_char_limit: limit,
                    ..RequestSettings::default()
                };
                let curriculum = curriculum_parser::parse(&text, Path::new("o.md")).unwrap();
                let quotable = quotable_outline(text.clone(), &settings);
                assert!(quotable.len() <= text.len());
                for template in &templates {
                    let build = |text: &str| {
                        batch_request::build_requests(
                            &curriculum,
                            text,
                            curriculum.lessons(),
                            template,
                            &settings,
                        )
                        .unwrap()
                    };
                    assert_eq!(build(&quotable), build(&text), "limit {limit}");
                }
            }
        }
        let settings = RequestSettings {
            curriculum_char_limit: 10,
            ..RequestSettings::default()
        };
        assert_eq!(quotable_outline(fixture, &settings).chars().count(), 22);
    }

    /// An outline of `n` lessons in modules of 7, titles of growing length.
    fn outline(n: u32) -> String {
        let mut text = String::new();
        for number in 0..n {
            if number % 7 == 0 {
                text.push_str(&format!(
                    "# M{}: Module {} — Lesson Map\n",
                    number / 7,
                    number / 7
                ));
            }
            let words = "and more ".repeat(number as usize % 5);
            text.push_str(&format!(
                "## L{:03}: Lesson {number} {words}[F]\n",
                number % 7 + 1
            ));
        }
        text
    }

    /// Builds a round of every lesson of `outline` within `limits`.
    fn build_all(
        outline: &str,
        limits: Limits,
    ) -> (tempfile::TempDir, Result<Vec<RoundShard>, Error>) {
        let curriculum = curriculum_parser::parse(outline, Path::new("o.md")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let shards = build_round(
            &curriculum,
            outline,
            &Template::generic(),
            &RequestSettings::default(),
            "job-key",
            limits,
            curriculum.lessons().map(|lesson| (lesson, None)),
            dir.path(),
            "r01",
        );
        (dir, shards)
    }

    /// The lesson codes of a shard file and of its requests file, each in file order.
    fn codes_in(shard: &Shard) -> (Vec<String>, Vec<String>) {
        let text = fs::read_to_string(&shard.path).unwrap();
        let requests: Vec<String> = text
            .lines()
            .map(|line| {
                let line: batch_request::RequestLine = serde_json::from_str(line).unwrap();
                line.custom_id.parse::<LessonCode>().unwrap().to_string()
            })
            .collect();
        let text = fs::read_to_string(requests_path(&shard.path)).unwrap();
        let sent: Vec<String> = text
            .lines()
            .map(|line| {
                serde_json::from_str::<SentLesson>(line)
                    .unwrap()
                    .code
                    .to_string()
            })
            .collect();
        (requests, sent)
    }

    /// Checks that the shards hold every lesson once, in outline order, each shard's
    /// requests file naming the same lessons in the same order, and nothing else is left.
    fn check_round(dir: &Path, shards: &[RoundShard], n: u32) {
        let mut all = Vec::new();
        for shard in shards {
            let (requests, sent) = codes_in(&shard.shard);
            assert_eq!(requests, sent, "{}", shard.id);
            assert_eq!(requests.len(), shard.shard.requests);
            all.extend(requests);
        }
        let curriculum = curriculum_parser::parse(&outline(n), Path::new("o.md")).unwrap();
        let expected: Vec<String> = curriculum.lessons().map(|l| l.code.to_string()).collect();
        assert_eq!(all, expected);
        assert_eq!(
            fs::read_dir(dir).unwrap().count(),
            2 * shards.len(),
            "leftover files"
        );
    }

    #[test]
    fn shards_stay_within_the_input_token_limit() {
        let text = outline(30);
        let (_dir, one) = build_all(&text, Limits::default());
        let one = one.unwrap();
        assert_eq!(one.len(), 1);
        let total = one[0].shard.estimate.input_tokens;
        // Room for about a quarter of the lessons per shard.
        let max = total / 4;
        let limits = Limits {
            max_input_tokens: Some(max),
            ..Limits::default()
        };
        let (dir, shards) = build_all(&text, limits);
        let shards = shards.unwrap();
        assert!((4..=6).contains(&shards.len()), "{} shards", shards.len());
        for shard in &shards {
            assert!(
                shard.shard.estimate.input_tokens <= max,
                "{}: {} > {max}",
                shard.id,
                shard.shard.estimate.input_tokens
            );
        }
        // Each shard but the last was cut because the next request did not fit.
        let sum: u64 = shards.iter().map(|s| s.shard.estimate.input_tokens).sum();
        assert_eq!(sum, total);
        check_round(dir.path(), &shards, 30);
    }

    #[test]
    fn a_lesson_over_the_token_limit_alone_is_an_error_naming_it() {
        let text = outline(3);
        let (dir, shards) = build_all(
            &text,
            Limits {
                max_input_tokens: Some(50),
                ..Limits::default()
            },
        );
        let err = shards.unwrap_err();
        assert!(
            matches!(&err, Error::Request(batch_request::Error::RequestOverTokenLimit { custom_id, input_tokens, max_input_tokens: 50 })
                if custom_id == "lesson_M0-L001" && *input_tokens > 50),
            "{err:?}"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "files were left"
        );
    }

    #[test]
    fn shards_hold_at_most_max_requests_per_batch() {
        let settings = RequestSettings {
            max_requests_per_batch: Some(4),
            ..RequestSettings::default()
        };
        let limits = shard_limits(&settings, None);
        let (dir, shards) = build_all(&outline(10), limits);
        let shards = shards.unwrap();
        let counts: Vec<usize> = shards.iter().map(|s| s.shard.requests).collect();
        assert_eq!(counts, [4, 4, 2]);
        let ids: Vec<&str> = shards.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["r01_input_001", "r01_input_002", "r01_input_003"]);
        check_round(dir.path(), &shards, 10);
    }

    #[test]
    fn shard_limits_come_from_the_settings_and_the_enqueued_token_limit() {
        let settings = RequestSettings::default();
        let limits = shard_limits(&settings, None);
        assert_eq!(limits, Limits::default());
        let limits = shard_limits(&settings, Some(2_000_000));
        assert_eq!(limits.max_input_tokens, Some(1_800_000));
        assert_eq!(limits.max_requests, 50_000);
        assert_eq!(limits.max_bytes, Limits::default().max_bytes);
        assert_eq!(shard_limits(&settings, Some(1)).max_input_tokens, Some(1));
        assert_eq!(
            shard_limits(&settings, Some(u64::MAX)).max_input_tokens,
            Some(16_602_069_666_338_596_453)
        );
        let settings = RequestSettings {
            max_requests_per_batch: Some(100),
            ..RequestSettings::default()
        };
        assert_eq!(shard_limits(&settings, None).max_requests, 100);
    }

    #[test]
    fn a_lesson_given_twice_is_named_with_both_titles() {
        let text = outline(3);
        let curriculum = curriculum_parser::parse(&text, Path::new("o.md")).unwrap();
        let first = curriculum.lessons().next().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = build_round(
            &curriculum,
            &text,
            &Template::generic(),
            &RequestSettings::default(),
            "job-key",
            Limits::default(),
            curriculum
                .lessons()
                .chain([first])
                .map(|lesson| (lesson, None)),
            dir.path(),
            "r01",
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Request(batch_request::Error::DuplicateCustomId { custom_id, first_title, first_line: 2, second_title, second_line: 2 })
                if custom_id == "lesson_M0-L001" && first_title == "Lesson 0" && second_title == "Lesson 0"),
            "{err:?}"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "files were left"
        );
    }

    #[test]
    fn a_plan_cuts_shards_at_a_share_of_the_enqueued_token_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("course/outline.md");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, outline(30)).unwrap();
        let open = |max_enqueued_tokens| {
            crate::Job::open(crate::JobSpec {
                outline: path.clone(),
                out_dir: dir.path().join("lessons"),
                work_dir: dir.path().join("work"),
                name: None,
                template: Template::generic(),
                settings: RequestSettings {
                    max_requests_per_batch: Some(20),
                    ..RequestSettings::default()
                },
                file_name: lesson_writer::FileNamePattern::default(),
                max_enqueued_tokens,
                provider: None,
            })
            .unwrap()
        };
        let manifest = lesson_writer::Manifest::default();
        let selection = crate::Selection::default();
        // The model's own limit (gpt-4o-mini, 2,000,000) holds 20 requests per shard.
        let plan = open(None).plan(&manifest, &selection, true).unwrap();
        let counts: Vec<usize> = plan.shards.iter().map(|s| s.shard.requests).collect();
        assert_eq!(counts, [20, 10]);
        let total = plan.estimate.as_ref().unwrap().input_tokens;
        // The job's own limit overrides it; shards fill at most nine tenths of it.
        let limit = total / 3;
        let plan = open(Some(limit)).plan(&manifest, &selection, true).unwrap();
        assert!(plan.shards.len() >= 4, "{} shards", plan.shards.len());
        for shard in &plan.shards {
            assert!(shard.shard.estimate.input_tokens <= limit * 9 / 10);
        }
        assert_eq!(plan.new_requests(), 30);
        for shard in &plan.shards {
            let (requests, sent) = codes_in(&shard.shard);
            assert_eq!(requests, sent);
        }
    }
}
