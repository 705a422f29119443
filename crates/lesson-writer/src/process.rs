//! The run: read both files line by line, classify and clean in parallel, then
//! join, write and count in input order.
//!
//! A reader thread feeds lines to a pool of workers (parse, classify, clean); the
//! calling thread puts their results back in input order, so "the first success
//! wins" means the first in the files, and writes the files. The bytes in flight
//! are capped, so memory stays flat whatever the file size.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

use batch_request::{PriceTable, ResultLine, Usage};
use curriculum_parser::{Curriculum, LessonCode};

use crate::clean::{Rule, canonical_heading, clean_owned};
use crate::custom_id::lesson_code;
use crate::outcome::{Failed, FailureKind, Outcome, classify};
use crate::output::{DiskWriter, FileWriter, WriteOutcome, path_in, write_atomic};
use crate::reader::{LineReader, RawLine};
use crate::summary::{
    Duplicate, Failure, Location, MAX_MALFORMED_LISTED, Malformed, MalformedReason, ModelUsage,
    Skipped, UsageTotals,
};
use crate::{Error, FileNamePattern, Overwrite, Summary};

/// The default cap on one line: 64 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// The folder inside the output directory where truncated answers are kept.
pub const REJECTED_DIR: &str = "rejected";

/// How results become lesson files.
#[derive(Debug, Clone)]
pub struct ProcessConfig<'a> {
    /// Where lesson files go; created when missing.
    pub out_dir: PathBuf,
    /// How lesson files are named.
    pub file_name: FileNamePattern,
    /// Whether an existing lesson with other content is replaced.
    pub overwrite: Overwrite,
    /// Write truncated answers (`finish_reason: length`) as lessons instead of
    /// keeping them in `rejected/` as failures.
    pub accept_truncated: bool,
    /// Lines longer than this are malformed; their bytes are skipped unread.
    pub max_line_bytes: usize,
    /// The `custom_id`s that were submitted, to report the missing ones, e.g.
    /// `curriculum.lessons().map(|lesson| lesson.code.custom_id()).collect()`.
    pub expected: Option<BTreeSet<String>>,
    /// The curriculum, for lesson titles (heading and `{slug}`).
    pub curriculum: Option<&'a Curriculum>,
    /// Prices for the cost figure.
    pub prices: PriceTable,
    /// Threads that parse and clean (at least 1).
    pub workers: usize,
}

impl ProcessConfig<'_> {
    /// Defaults: `{code}.md`, no overwrite, truncated answers rejected, 64 MiB line
    /// cap, no expected set, no curriculum, the built-in prices, one worker per core.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        ProcessConfig {
            out_dir: out_dir.into(),
            file_name: FileNamePattern::default(),
            overwrite: Overwrite::Forbid,
            accept_truncated: false,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            expected: None,
            curriculum: None,
            prices: PriceTable::builtin(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// A named input stream: an output or error file, or bytes in a test.
pub struct Input<'a> {
    /// The name used in reports (`file:line`).
    pub path: PathBuf,
    /// The lines.
    pub reader: Box<dyn BufRead + Send + 'a>,
}

impl<'a> Input<'a> {
    /// An input named `path` reading from `reader`.
    pub fn new(path: impl Into<PathBuf>, reader: impl BufRead + Send + 'a) -> Self {
        Input {
            path: path.into(),
            reader: Box::new(reader),
        }
    }
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Processes a Batch API output file and error file (either may be absent) into
/// lesson files in `config.out_dir`.
///
/// # Errors
///
/// [`Error::Open`] or [`Error::Read`] for an input file, [`Error::CreateDir`],
/// [`Error::ReadExisting`] or [`Error::Write`] for the output. Bad lines and failed
/// requests are not errors: they are in the [`Summary`].
pub fn process(
    output: Option<&Path>,
    errors: Option<&Path>,
    config: &ProcessConfig<'_>,
) -> Result<Summary, Error> {
    let mut inputs = Vec::new();
    for path in [output, errors].into_iter().flatten() {
        let file = fs::File::open(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        inputs.push(Input::new(
            path,
            BufReader::with_capacity(READ_BUFFER, file),
        ));
    }
    process_inputs(inputs, config)
}

/// [`process`] over streams, read in the order given (output file first, so its
/// successes win over the error file's lines for the same lesson).
///
/// # Errors
///
/// As [`process`].
pub fn process_inputs(
    inputs: Vec<Input<'_>>,
    config: &ProcessConfig<'_>,
) -> Result<Summary, Error> {
    run(inputs, config, &DiskWriter)
}

const READ_BUFFER: usize = 256 * 1024;
/// Bytes of lines between the reader and the writer; one longer line may pass alone.
const BYTES_IN_FLIGHT: usize = 2 * 1024 * 1024;
const BATCH_BYTES: usize = 256 * 1024;
const BATCH_LINES: usize = 64;
const QUEUE: usize = 4;

/// Consecutive lines on their way from the reader to a worker; batching keeps the
/// thread hand-offs few.
struct Batch<T> {
    seq: u64,
    bytes: usize,
    items: Vec<T>,
}

/// One line for a worker.
struct Work {
    input: usize,
    line: u64,
    raw: RawLine,
}

/// A worker's verdict on one line.
struct Done {
    input: usize,
    line: u64,
    result: LineResult,
}

enum LineResult {
    Malformed(MalformedReason),
    Parsed(Box<Parsed>),
}

struct Parsed {
    custom_id: String,
    code: LessonCode,
    model: Option<String>,
    usage: Option<Usage>,
    answer: Answer,
}

enum Answer {
    Lesson {
        text: String,
        rules: Vec<Rule>,
        truncated: bool,
    },
    Failed {
        failed: Failed,
        rejected_text: Option<String>,
    },
}

/// The pipeline, with the file writer as a seam for tests.
pub(crate) fn run(
    inputs: Vec<Input<'_>>,
    config: &ProcessConfig<'_>,
    writer: &dyn FileWriter,
) -> Result<Summary, Error> {
    fs::create_dir_all(&config.out_dir).map_err(|source| Error::CreateDir {
        path: config.out_dir.clone(),
        source,
    })?;
    let paths: Vec<PathBuf> = inputs.iter().map(|input| input.path.clone()).collect();
    let budget = Budget::new(BYTES_IN_FLIGHT);
    let read_error: Mutex<Option<Error>> = Mutex::new(None);
    let (work_tx, work_rx) = mpsc::sync_channel::<Batch<Work>>(QUEUE);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<Batch<Done>>();
    let mut commit = Commit::new(config, writer, &paths);

    let result = std::thread::scope(|scope| {
        let (budget, read_error, work_rx) = (&budget, &read_error, &work_rx);
        scope.spawn(move || {
            if let Err(err) = read_all(inputs, config.max_line_bytes, budget, &work_tx) {
                *read_error
                    .lock()
                    .expect("no thread panics holding this lock") = Some(err);
            }
        });
        for _ in 0..config.workers.max(1) {
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let work = work_rx
                        .lock()
                        .expect("no thread panics holding this lock")
                        .recv();
                    let Ok(work) = work else { break };
                    let done = Batch {
                        seq: work.seq,
                        bytes: work.bytes,
                        items: work
                            .items
                            .into_iter()
                            .map(|work| examine(work, config))
                            .collect(),
                    };
                    if done_tx.send(done).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);

        let mut pending: BTreeMap<u64, Batch<Done>> = BTreeMap::new();
        let mut next = 0;
        for batch in done_rx.iter() {
            pending.insert(batch.seq, batch);
            while let Some(batch) = pending.remove(&next) {
                next += 1;
                let committed = batch
                    .items
                    .into_iter()
                    .try_for_each(|done| commit.commit(done));
                budget.release(batch.bytes);
                if let Err(err) = committed {
                    // Stop the reader; workers stop when their channels close.
                    budget.abort();
                    return Err(err);
                }
            }
        }
        Ok(())
    });
    result?;
    if let Some(err) = read_error
        .into_inner()
        .expect("no thread panicked holding this lock")
    {
        return Err(err);
    }
    Ok(commit.finish())
}

/// Reads every input in order and hands non-blank lines to the workers.
fn read_all(
    inputs: Vec<Input<'_>>,
    max_line_bytes: usize,
    budget: &Budget,
    work_tx: &mpsc::SyncSender<Batch<Work>>,
) -> Result<(), Error> {
    let mut batch = Batch {
        seq: 0,
        bytes: 0,
        items: Vec::new(),
    };
    // Hands the batch over; `false` once the run was stopped.
    let send = |batch: &mut Batch<Work>| {
        let full = Batch {
            seq: batch.seq,
            bytes: batch.bytes,
            items: std::mem::take(&mut batch.items),
        };
        batch.seq += 1;
        batch.bytes = 0;
        budget.acquire(full.bytes) && work_tx.send(full).is_ok()
    };
    for (input, Input { path, reader }) in inputs.into_iter().enumerate() {
        let mut lines = LineReader::new(reader, max_line_bytes);
        loop {
            let next = lines.next_line().map_err(|source| Error::Read {
                path: path.clone(),
                line: lines.line(),
                source,
            })?;
            let Some((line, raw)) = next else { break };
            batch.bytes += raw_len(&raw);
            batch.items.push(Work { input, line, raw });
            if (batch.bytes >= BATCH_BYTES || batch.items.len() >= BATCH_LINES) && !send(&mut batch)
            {
                return Ok(());
            }
        }
    }
    if !batch.items.is_empty() {
        send(&mut batch);
    }
    Ok(())
}

fn raw_len(raw: &RawLine) -> usize {
    match raw {
        RawLine::Bytes(bytes) => bytes.len(),
        RawLine::TooLong { .. } => 0,
    }
}

/// Parses, classifies and cleans one line: everything that needs no shared state.
fn examine(work: Work, config: &ProcessConfig<'_>) -> Done {
    let result = match work.raw {
        RawLine::TooLong { len } => LineResult::Malformed(MalformedReason::TooLong {
            bytes: len,
            max: config.max_line_bytes as u64,
        }),
        RawLine::Bytes(raw) => match std::str::from_utf8(&raw) {
            Err(_) => LineResult::Malformed(MalformedReason::InvalidUtf8),
            Ok(text) => examine_json(text, config),
        },
    };
    Done {
        input: work.input,
        line: work.line,
        result,
    }
}

fn examine_json(text: &str, config: &ProcessConfig<'_>) -> LineResult {
    let mut line: ResultLine = match serde_json::from_str(text) {
        Ok(line) => line,
        Err(err) => return LineResult::Malformed(json_problem(&err)),
    };
    let Some(code) = lesson_code(&line.custom_id) else {
        return LineResult::Malformed(MalformedReason::InvalidCustomId {
            custom_id: shown_id(&line.custom_id),
        });
    };
    let Ok(outcome) = classify(&mut line) else {
        return LineResult::Malformed(MalformedReason::UnexpectedShape {
            message: "neither `response` nor `error` is set".to_owned(),
        });
    };
    let title = config
        .curriculum
        .and_then(|curriculum| curriculum.lesson(code))
        .map(|lesson| lesson.title.as_str());
    let answer = match outcome {
        Outcome::Answer(text) => lesson_or_empty(text, code, title, false),
        Outcome::Failed(failed)
            if failed.kind == FailureKind::Truncated && config.accept_truncated =>
        {
            let text = failed.partial_text.unwrap_or_default();
            lesson_or_empty(text, code, title, true)
        }
        Outcome::Failed(mut failed) => Answer::Failed {
            rejected_text: failed.partial_text.take(),
            failed,
        },
    };
    let body = line.response.map(|response| response.body);
    Parsed {
        custom_id: line.custom_id,
        code,
        model: body.as_ref().and_then(|body| body.model.clone()),
        usage: body.and_then(|body| body.usage),
        answer,
    }
    .into()
}

impl From<Parsed> for LineResult {
    fn from(parsed: Parsed) -> Self {
        LineResult::Parsed(Box::new(parsed))
    }
}

/// The cleaned lesson, or an empty-content failure when cleanup left only a heading.
fn lesson_or_empty(text: String, code: LessonCode, title: Option<&str>, truncated: bool) -> Answer {
    let cleaned = clean_owned(text, code, title);
    let body = match title {
        Some(title) => cleaned
            .text
            .strip_prefix(canonical_heading(code, title).as_str())
            .unwrap_or(&cleaned.text),
        None => &cleaned.text,
    };
    if body.trim().is_empty() {
        let rules: Vec<&str> = cleaned
            .rules_applied
            .iter()
            .map(|rule| rule.name())
            .collect();
        return Answer::Failed {
            failed: Failed {
                kind: FailureKind::EmptyContent,
                code: "empty_after_cleanup".to_owned(),
                reason: format!("nothing left after cleanup (rules: {})", rules.join(", ")),
                status: Some(200),
                partial_text: None,
            },
            rejected_text: None,
        };
    }
    Answer::Lesson {
        text: cleaned.text,
        rules: cleaned.rules_applied,
        truncated,
    }
}

fn json_problem(err: &serde_json::Error) -> MalformedReason {
    use serde_json::error::Category;
    let message = err.to_string();
    match err.classify() {
        Category::Data if message.starts_with("missing field `custom_id`") => {
            MalformedReason::MissingCustomId
        }
        Category::Data => MalformedReason::UnexpectedShape { message },
        Category::Syntax | Category::Eof | Category::Io => MalformedReason::Json { message },
    }
}

/// An id fit for a report: escaped and cut to 80 characters.
fn shown_id(custom_id: &str) -> String {
    custom_id
        .chars()
        .take(80)
        .flat_map(char::escape_debug)
        .collect()
}

/// The first line seen for a lesson code, and whether it was a success.
struct Kept {
    location: Location,
    success: bool,
}

/// The in-order half of the pipeline: joins lines per lesson, writes, counts.
struct Commit<'c> {
    config: &'c ProcessConfig<'c>,
    writer: &'c dyn FileWriter,
    paths: &'c [PathBuf],
    summary: Summary,
    kept: HashMap<LessonCode, Kept>,
    failures: BTreeMap<LessonCode, Failure>,
    seen_ids: HashSet<String>,
    models: BTreeMap<String, UsageTotals>,
    rejected_dir_ready: bool,
}

impl<'c> Commit<'c> {
    fn new(
        config: &'c ProcessConfig<'c>,
        writer: &'c dyn FileWriter,
        paths: &'c [PathBuf],
    ) -> Self {
        Commit {
            config,
            writer,
            paths,
            summary: Summary::default(),
            kept: HashMap::new(),
            failures: BTreeMap::new(),
            seen_ids: HashSet::new(),
            models: BTreeMap::new(),
            rejected_dir_ready: false,
        }
    }

    fn commit(&mut self, done: Done) -> Result<(), Error> {
        self.summary.lines_read += 1;
        let location = Location {
            file: self.paths[done.input].clone(),
            line: done.line,
        };
        let parsed = match done.result {
            LineResult::Malformed(reason) => {
                tracing::debug!(%location, %reason, "malformed line");
                self.summary.malformed_count += 1;
                if self.summary.malformed.len() < MAX_MALFORMED_LISTED {
                    self.summary.malformed.push(Malformed { location, reason });
                }
                return Ok(());
            }
            LineResult::Parsed(parsed) => *parsed,
        };
        if let Some(usage) = &parsed.usage {
            self.summary.usage.add(usage);
            let model = parsed.model.clone().unwrap_or_else(|| "unknown".to_owned());
            self.models.entry(model).or_default().add(usage);
        }
        self.seen_ids.insert(parsed.custom_id.clone());
        let success = matches!(parsed.answer, Answer::Lesson { .. });
        if let Some(kept) = self.kept.get(&parsed.code) {
            // A success after a failure replaces it; anything else is a duplicate.
            if kept.success || !success {
                tracing::debug!(%location, kept = %kept.location, "duplicate result");
                self.summary.duplicates.push(Duplicate {
                    custom_id: parsed.custom_id,
                    lesson_code: parsed.code.to_string(),
                    location,
                    kept: kept.location.clone(),
                });
                return Ok(());
            }
            if let Some(failure) = self.failures.remove(&parsed.code) {
                self.summary.duplicates.push(Duplicate {
                    custom_id: failure.custom_id,
                    lesson_code: failure.lesson_code,
                    location: failure.location,
                    kept: location.clone(),
                });
            }
        }
        self.kept.insert(
            parsed.code,
            Kept {
                location: location.clone(),
                success,
            },
        );
        let title = self
            .config
            .curriculum
            .and_then(|curriculum| curriculum.lesson(parsed.code))
            .map(|lesson| lesson.title.as_str());
        let file_name = self.config.file_name.file_name(parsed.code, title);
        match parsed.answer {
            Answer::Lesson {
                text,
                rules,
                truncated,
            } => {
                for rule in rules {
                    *self.summary.rules_applied.entry(rule).or_default() += 1;
                }
                let path = path_in(&self.config.out_dir, &file_name)?;
                let outcome = write_atomic(
                    &path,
                    &text,
                    self.config.overwrite,
                    &parsed.custom_id,
                    self.writer,
                )?;
                tracing::debug!(path = %path.display(), ?outcome, "lesson");
                match outcome {
                    WriteOutcome::Created | WriteOutcome::Replaced => {
                        self.summary.written += 1;
                        self.summary.replaced += u64::from(outcome == WriteOutcome::Replaced);
                        self.summary.written_truncated += u64::from(truncated);
                    }
                    WriteOutcome::Unchanged => self.summary.unchanged += 1,
                    WriteOutcome::SkippedExisting => self.summary.skipped_existing.push(Skipped {
                        custom_id: parsed.custom_id,
                        path,
                    }),
                }
            }
            Answer::Failed {
                failed,
                rejected_text,
            } => {
                let rejected_file = match rejected_text {
                    Some(text) => Some(self.keep_rejected(&file_name, &text, &parsed.custom_id)?),
                    None => None,
                };
                let failure = Failure {
                    custom_id: parsed.custom_id,
                    lesson_code: parsed.code.to_string(),
                    retryable: failed.kind.retryable(),
                    kind: failed.kind,
                    code: failed.code,
                    reason: failed.reason,
                    status: failed.status,
                    location,
                    rejected_file,
                };
                self.failures.insert(parsed.code, failure);
            }
        }
        Ok(())
    }

    /// Keeps a truncated answer's text in `rejected/` for inspection.
    fn keep_rejected(
        &mut self,
        file_name: &str,
        text: &str,
        custom_id: &str,
    ) -> Result<PathBuf, Error> {
        let dir = self.config.out_dir.join(REJECTED_DIR);
        if !self.rejected_dir_ready {
            fs::create_dir_all(&dir).map_err(|source| Error::CreateDir {
                path: dir.clone(),
                source,
            })?;
            self.rejected_dir_ready = true;
        }
        let path = path_in(&dir, file_name)?;
        if write_atomic(&path, text, Overwrite::Allow, custom_id, self.writer)?
            != WriteOutcome::Unchanged
        {
            self.summary.rejected_files += 1;
        }
        Ok(path)
    }

    fn finish(mut self) -> Summary {
        let mut summary = self.summary;
        summary.failures = std::mem::take(&mut self.failures).into_values().collect();
        if let Some(expected) = &self.config.expected {
            summary.missing = expected
                .iter()
                .filter(|id| !self.seen_ids.contains(*id))
                .cloned()
                .collect();
            let mut unexpected: Vec<String> = self
                .seen_ids
                .into_iter()
                .filter(|id| !expected.contains(id))
                .collect();
            unexpected.sort();
            summary.unexpected = unexpected;
        }
        let mut total_cost = None;
        for (model, usage) in self.models {
            let cost_usd = self.config.prices.get(&model).map(|price| {
                price.batch_cost(
                    usage.prompt_tokens,
                    usage.cached_tokens,
                    usage.completion_tokens,
                )
            });
            match cost_usd {
                Some(cost) => *total_cost.get_or_insert(0.0) += cost,
                None => summary.unpriced_models.push(model.clone()),
            }
            summary.models.insert(model, ModelUsage { usage, cost_usd });
        }
        summary.cost_usd = total_cost;
        summary
    }
}

/// A cap on the bytes of lines in flight between the reader and the writer.
struct Budget {
    limit: usize,
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Budget {
    fn new(limit: usize) -> Self {
        Budget {
            limit,
            state: Mutex::new((0, false)),
            changed: Condvar::new(),
        }
    }

    /// Waits until `bytes` fit (a line larger than the whole budget passes alone);
    /// `false` once the run was aborted.
    fn acquire(&self, bytes: usize) -> bool {
        let mut state = self
            .state
            .lock()
            .expect("no thread panics holding this lock");
        while !state.1 && state.0 > 0 && state.0 + bytes > self.limit {
            state = self
                .changed
                .wait(state)
                .expect("no thread panics holding this lock");
        }
        state.0 += bytes;
        !state.1
    }

    fn release(&self, bytes: usize) {
        let mut state = self
            .state
            .lock()
            .expect("no thread panics holding this lock");
        state.0 -= bytes;
        self.changed.notify_all();
    }

    fn abort(&self) {
        let mut state = self
            .state
            .lock()
            .expect("no thread panics holding this lock");
        state.1 = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// Writes half the bytes, then fails, as a full disk would.
    struct FailingWriter;

    impl FileWriter for FailingWriter {
        fn write(&self, file: &mut fs::File, bytes: &[u8]) -> io::Result<()> {
            use std::io::Write;
            file.write_all(&bytes[..bytes.len() / 2])?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
    }

    #[test]
    fn a_write_failure_stops_the_run_and_leaves_no_lesson_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("lessons");
        let mut lines = String::new();
        for n in 1..=50 {
            lines.push_str(&format!(
                r##"{{"custom_id":"lesson_M0-L{n:03}","response":{{"status_code":200,"body":{{"choices":[{{"message":{{"content":"# Lesson M0-L{n:03}: T\n\nText.\n"}},"finish_reason":"stop"}}]}}}}}}"##
            ));
            lines.push('\n');
        }
        let config = ProcessConfig::new(&out);
        let inputs = vec![Input::new("output.jsonl", lines.as_bytes())];
        let err = run(inputs, &config, &FailingWriter).unwrap_err();
        match err {
            Error::Write {
                path,
                custom_id,
                source,
            } => {
                assert_eq!(path, out.join("M0-L001.md"));
                assert_eq!(custom_id, "lesson_M0-L001");
                assert_eq!(source.kind(), io::ErrorKind::StorageFull);
            }
            other => panic!("unexpected error {other:?}"),
        }
        let left: Vec<_> = fs::read_dir(&out).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn budget_lets_one_large_item_through_alone() {
        let budget = Budget::new(10);
        assert!(budget.acquire(100));
        budget.release(100);
        assert!(budget.acquire(5));
        assert!(budget.acquire(5));
        budget.abort();
        assert!(!budget.acquire(5));
    }
}
