//! The run: read both files line by line, classify and clean in parallel, then
//! join, write and count in input order.
//!
//! A reader thread feeds lines to a pool of workers (parse, classify, clean); the
//! calling thread puts their results back in input order, so "the first success
//! wins" means the first in the files, and writes the files. The bytes in flight
//! are capped, so memory stays flat whatever the file size.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

use batch_request::PriceTable;
use curriculum_parser::{Curriculum, LessonCode};

use crate::commit::Commit;
use crate::examine::{Done, Work, examine, raw_len};
use crate::output::{DiskWriter, FileWriter};
use crate::reader::LineReader;
use crate::{Error, FileNamePattern, Manifest, Overwrite, QualityGate, Summary};

/// The default cap on one line: 64 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// The folder inside the output directory where truncated, refused-in-text and below-spec
/// answers are kept (`<out>/rejected/<lesson file name>`); lessons are only ever found at the
/// top level.
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
    /// What a finished answer needs, after cleanup, to be written; one that falls short is
    /// kept in `rejected/` as a [`FailureKind::BelowSpec`](crate::FailureKind::BelowSpec)
    /// failure. Truncated answers written with `accept_truncated` are not checked.
    pub quality: QualityGate,
    /// Write answers below spec as lessons anyway (they are still counted in
    /// [`Summary::written_below_spec`]).
    pub accept_below_spec: bool,
    /// Lines longer than this are malformed; their bytes are skipped unread.
    pub max_line_bytes: usize,
    /// The lessons that were submitted, to report the missing ones, e.g.
    /// `curriculum.lessons().map(|lesson| lesson.code).collect()`.
    pub expected: Option<BTreeSet<LessonCode>>,
    /// Write only these lessons; lines for others are reported in
    /// [`Summary::unexpected`] and not written (say, a results file of another job).
    /// `None` writes every lesson.
    pub accept: Option<BTreeSet<LessonCode>>,
    /// The requests that were sent, by lesson: their titles make the headings (an answer
    /// is never re-titled after the outline changed) and their hashes go into the manifest.
    pub requests: Option<&'a BTreeMap<LessonCode, RequestedLesson>>,
    /// The curriculum, for lesson titles (heading and `{slug}`) of lessons not in `requests`.
    pub curriculum: Option<&'a Curriculum>,
    /// The output directory's manifest: which files this tool wrote, for
    /// [`Overwrite::IfUnedited`], and their names.
    pub manifest: Option<&'a Manifest>,
    /// Prices for the cost figure.
    pub prices: PriceTable,
    /// Threads that parse and clean (at least 1).
    pub workers: usize,
}

impl ProcessConfig<'_> {
    /// Defaults: `{code}.md`, no overwrite, truncated answers rejected, no quality gate, 64 MiB
    /// line cap, no expected set, no requests, no curriculum, no manifest, the built-in
    /// prices, one worker per core.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        ProcessConfig {
            out_dir: out_dir.into(),
            file_name: FileNamePattern::default(),
            overwrite: Overwrite::Forbid,
            accept_truncated: false,
            quality: QualityGate::default(),
            accept_below_spec: false,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            expected: None,
            accept: None,
            requests: None,
            curriculum: None,
            manifest: None,
            prices: PriceTable::builtin(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl ProcessConfig<'_> {
    /// A lesson's title: the one its request was built with, else the curriculum's.
    pub(crate) fn title_of(&self, code: LessonCode) -> Option<&str> {
        self.requests
            .and_then(|requests| requests.get(&code))
            .map(|request| request.title.as_str())
            .or_else(|| {
                self.curriculum
                    .and_then(|curriculum| curriculum.lesson(code))
                    .map(|lesson| lesson.title.as_str())
            })
    }
}

/// A request as it was sent: what its answer is written and recorded with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestedLesson {
    /// The lesson title the request was built with.
    pub title: String,
    /// The request's hash (see `batch_request::request_sha256`).
    pub request_sha256: String,
}

/// A named input stream: an output or error file, or bytes in a test.
pub struct Input<'a> {
    /// The name used in reports (`file:line`).
    pub path: PathBuf,
    /// The batch the file came from, recorded in the manifest.
    pub batch_id: Option<String>,
    /// The lines.
    pub reader: Box<dyn BufRead + Send + 'a>,
}

impl<'a> Input<'a> {
    /// An input named `path` reading from `reader`.
    pub fn new(path: impl Into<PathBuf>, reader: impl BufRead + Send + 'a) -> Self {
        Input {
            path: path.into(),
            batch_id: None,
            reader: Box::new(reader),
        }
    }

    /// The same input, from batch `batch_id`.
    pub fn from_batch(mut self, batch_id: impl Into<String>) -> Self {
        self.batch_id = Some(batch_id.into());
        self
    }

    /// The file at `path`, opened for reading.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when it cannot be opened.
    pub fn open(path: &Path) -> Result<Input<'static>, Error> {
        let file = fs::File::open(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Input::new(
            path,
            BufReader::with_capacity(READ_BUFFER, file),
        ))
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
    let inputs = [output, errors]
        .into_iter()
        .flatten()
        .map(Input::open)
        .collect::<Result<Vec<_>, Error>>()?;
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
    let paths: Vec<(PathBuf, Option<String>)> = inputs
        .iter()
        .map(|input| (input.path.clone(), input.batch_id.clone()))
        .collect();
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
    for (input, Input { path, reader, .. }) in inputs.into_iter().enumerate() {
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
