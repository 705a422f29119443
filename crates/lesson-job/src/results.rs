//! Results files processed on their own (`process-batch-results`, `check-batch-status
//! --process`): under the output directory's lock, with its manifest, one outcome per lesson.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use batch_request::{PriceTable, QualitySettings};
use curriculum_parser::{Curriculum, LessonCode};
use lesson_writer::{
    FileNamePattern, Input, Manifest, Overwrite, ProcessConfig, QualityGate, RequestedLesson,
};

use crate::Error;
use crate::lock::{JobLock, LockHolder, LockWait};
use crate::report::{JobReport, Outcomes};
use crate::round::SentLesson;

/// How results become lesson files.
#[derive(Debug, Clone)]
pub struct ResultsSpec {
    /// Where lesson files go.
    pub out_dir: PathBuf,
    /// How they are named.
    pub file_name: FileNamePattern,
    /// The outline: titles, and the lessons expected (those without a file). Results for
    /// lessons it does not have are not written.
    pub outline: Option<PathBuf>,
    /// Overwrite existing lessons (edited ones too).
    pub force: bool,
    /// Write answers cut off at `max_completion_tokens` as lessons.
    pub accept_truncated: bool,
    /// The quality gate's settings (`[quality]`).
    pub quality: QualitySettings,
    /// SHA-256 of the template that produced the requests, when known (a job's ledger records
    /// it): the built-in template's makes its sections required unless `quality` lists its own.
    pub template_sha256: Option<String>,
    /// Write answers below spec as lessons.
    pub accept_below_spec: bool,
    /// Prices for the cost figure.
    pub prices: PriceTable,
}

/// One results file (output or error file of a batch).
#[derive(Debug, Clone)]
pub struct ResultsFile {
    /// The file.
    pub path: PathBuf,
    /// The batch it came from, when known.
    pub batch_id: Option<String>,
}

/// Writes the lessons of `files` (output file first) into `spec.out_dir`, holding the
/// output directory's lock for `command` (waiting, or not, as `wait` says; `on_wait` is told
/// who holds it), and records them in the manifest.
///
/// `sent`, when the batch is known to a job's ledger, gives the lessons it asked for: only
/// those are written (with the titles their requests had), and those absent from both files
/// are missing.
///
/// # Errors
///
/// [`Error::Outline`] for the outline, [`Error::OutDirOfAnotherOutline`] when the output
/// directory belongs to another outline (unless `force`), [`Error::Locked`], and
/// [`Error::Writer`] for reading results or writing lessons.
pub fn process_results(
    spec: &ResultsSpec,
    files: &[ResultsFile],
    sent: Option<&BTreeMap<LessonCode, SentLesson>>,
    command: &str,
    wait: LockWait,
    on_wait: impl FnOnce(Option<&LockHolder>),
) -> Result<JobReport, Error> {
    let curriculum: Option<Curriculum> = spec
        .outline
        .as_deref()
        .map(curriculum_parser::parse_file)
        .transpose()?;
    fs::create_dir_all(&spec.out_dir)
        .map_err(|source| Error::io("create", &spec.out_dir, source))?;
    let _lock = JobLock::acquire(&spec.out_dir, command, wait, on_wait)?;
    let mut manifest = Manifest::load(&spec.out_dir)?;
    if let (Some(outline), Some(owner)) = (&spec.outline, &manifest.outline) {
        let outline =
            fs::canonicalize(outline).map_err(|source| Error::io("resolve", outline, source))?;
        if *owner != outline && !spec.force {
            return Err(Error::OutDirOfAnotherOutline {
                out_dir: spec.out_dir.clone(),
                owner: owner.clone(),
                outline,
            });
        }
    }
    lesson_writer::remove_leftovers(&spec.out_dir)?;

    let requests: Option<BTreeMap<LessonCode, RequestedLesson>> = sent.map(|sent| {
        sent.iter()
            .map(|(code, lesson)| (*code, lesson.requested()))
            .collect()
    });
    let mut config = ProcessConfig::new(&spec.out_dir);
    config.file_name = spec.file_name.clone();
    config.overwrite = if spec.force {
        Overwrite::Allow
    } else {
        Overwrite::Forbid
    };
    config.accept_truncated = spec.accept_truncated;
    config.quality = QualityGate::from_settings(&spec.quality, spec.template_sha256.as_deref());
    config.accept_below_spec = spec.accept_below_spec;
    config.prices = spec.prices.clone();
    config.curriculum = curriculum.as_ref();
    config.requests = requests.as_ref();
    let mut report = JobReport::default();
    if let Some(sent) = sent {
        let expected: BTreeSet<LessonCode> = sent.keys().copied().collect();
        config.expected = Some(expected.clone());
        config.accept = Some(expected);
    } else if let Some(curriculum) = &curriculum {
        let existing = lesson_writer::existing_lessons(&spec.out_dir, &spec.file_name)?;
        report.lessons_total = curriculum.lesson_count();
        report.already_generated = existing.len();
        config.expected = Some(
            curriculum
                .lessons()
                .map(|lesson| lesson.code)
                .filter(|code| !existing.contains_key(code))
                .collect(),
        );
        config.accept = Some(curriculum.lessons().map(|lesson| lesson.code).collect());
    }
    config.manifest = Some(&manifest);
    let inputs = files
        .iter()
        .map(|file| {
            let input = Input::open(&file.path)?;
            Ok(match &file.batch_id {
                Some(id) => input.from_batch(id.clone()),
                None => input,
            })
        })
        .collect::<Result<Vec<_>, lesson_writer::Error>>()?;
    let mut summary = lesson_writer::process_inputs(inputs, &config)?;
    manifest.record(std::mem::take(&mut summary.provenance));
    manifest.save(&spec.out_dir)?;
    let mut outcomes = Outcomes::default();
    outcomes.add(&summary, &mut report);
    report.requests_sent = 0;
    outcomes.finish(std::iter::empty(), &mut report);
    Ok(report)
}
