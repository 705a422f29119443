//! Shard files: request lines split into `<job>_input_001.jsonl`, ... within the Batch API's
//! per-file limits, one model per file, `custom_id`s unique across the job.

use std::borrow::Borrow;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use curriculum_parser::LessonCode;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tempfile::{NamedTempFile, TempPath};

use crate::context::ContextCheck;
use crate::jsonl::encode_line;
use crate::{Error, Estimate, Estimator, LessonRequest, RequestSettings, RequestTokens};

/// Per-file limits of a batch input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most requests in one file (OpenAI: 50,000).
    pub max_requests: usize,
    /// Most bytes in one file, newlines included (OpenAI: 209,715,200, i.e. 200 MiB).
    pub max_bytes: u64,
    /// Most estimated input tokens in one file ([`RequestTokens::input`] summed), so that one
    /// batch stays within the organization's enqueued-token limit of its model; `None` (the
    /// default) for no token limit.
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_requests: 50_000,
            max_bytes: 209_715_200,
            max_input_tokens: None,
        }
    }
}

/// One written shard file.
///
/// Its requests' ids are in the file; a caller that needs them beside it writes its own
/// record as it pushes (see [`Placement`]) rather than keeping them all in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// The file, `<dir>/<job>_input_001.jsonl`.
    pub path: PathBuf,
    /// Number of request lines.
    pub requests: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// The one model all its requests name.
    pub model: String,
    /// Tokens and cost of its requests.
    pub estimate: Estimate,
}

/// Where [`ShardWriter::push`] put a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The shard's number, from 1: the request went into `<job>_input_<number>.jsonl`, the
    /// [`Shard`] at index `number - 1` of [`ShardWriter::finish`]. Numbers only grow: a
    /// request with a higher number than the one before starts a new shard.
    pub shard: usize,
    /// The request's tokens, as its shard's estimate counted them.
    pub tokens: RequestTokens,
}

/// Writes lesson requests into shard files as they come, keeping each shard within the
/// [`Limits`]. Shards go to temp files in the target directory and are renamed into place only
/// by [`ShardWriter::finish`], so a failed job leaves no partial set of shards behind.
///
/// It also checks every request against its model's context window
/// ([`RequestSettings::context_window_for`]; models with no known window are not checked):
/// requests whose input tokens plus `max_completion_tokens` pass it are counted as they come,
/// and [`ShardWriter::finish`] then refuses the whole set with [`Error::OverContextWindow`].
///
/// Memory does not grow with the requests' text: each line is written as it comes, and only
/// the ids seen so far are kept (a lesson code and an outline line per request), to refuse a
/// repeated `custom_id`, and the first few requests over their context window. A closed
/// shard is synced to disk on a thread of the writer's own while the next one is written,
/// and then holds no open file.
#[derive(Debug)]
pub struct ShardWriter {
    dir: PathBuf,
    job_name: String,
    limits: Limits,
    estimator: Estimator,
    context: ContextCheck,
    /// Ids seen so far, with the outline line of the request that used them first.
    seen: SeenIds,
    open: Option<OpenShard>,
    closed: Vec<Shard>,
    syncer: Option<Syncer>,
    buffer: Vec<u8>,
}

#[derive(Debug)]
struct OpenShard {
    file: BufWriter<NamedTempFile>,
    shard: Shard,
    input_tokens: u64,
}

/// The `custom_id`s of a job so far: those of the form `lesson_M0-L001` by their lesson code
/// (8 bytes), any other by its text.
#[derive(Debug, Default)]
struct SeenIds {
    /// Lines as `u32` (an outline has fewer lines), to keep an entry at 12 bytes.
    lessons: FxHashMap<LessonCode, u32>,
    others: FxHashMap<Box<str>, usize>,
    spelling: String,
}

impl SeenIds {
    /// The outline line of the request that used `custom_id` first, if any did; otherwise
    /// records `line` for it.
    fn first_line(&mut self, custom_id: &str, line: usize) -> Option<usize> {
        // A code stands for the id only when the id is its canonical spelling
        // (`lesson_M00-L001` is another id than `lesson_M0-L001`).
        let code = custom_id.parse::<LessonCode>().ok().filter(|code| {
            self.spelling.clear();
            let _ = write!(self.spelling, "lesson_{code}");
            self.spelling == custom_id
        });
        match code {
            Some(code) => match self.lessons.get(&code) {
                Some(&first) => Some(first as usize),
                None => {
                    self.lessons
                        .insert(code, u32::try_from(line).unwrap_or(u32::MAX));
                    None
                }
            },
            None => match self.others.get(custom_id) {
                Some(&first) => Some(first),
                None => {
                    self.others.insert(custom_id.into(), line);
                    None
                }
            },
        }
    }
}

impl ShardWriter {
    /// Prepares to write shards of `job_name` into `dir` (which must exist).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLimits`] for a zero limit, [`Error::InvalidJobName`] for a name that is
    /// empty or holds anything but letters, digits, `-`, `_` and `.`.
    pub fn new(
        dir: &Path,
        job_name: &str,
        limits: Limits,
        settings: &RequestSettings,
    ) -> Result<ShardWriter, Error> {
        if limits.max_requests == 0 || limits.max_bytes == 0 || limits.max_input_tokens == Some(0) {
            return Err(Error::InvalidLimits {
                reason: format!(
                    "max_requests ({}), max_bytes ({}) and max_input_tokens ({}) must all be at least 1",
                    limits.max_requests,
                    limits.max_bytes,
                    limits
                        .max_input_tokens
                        .map_or_else(|| "none".to_owned(), |tokens| tokens.to_string()),
                ),
            });
        }
        let name_ok = !job_name.is_empty()
            && !job_name.starts_with('.')
            && job_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(Error::InvalidJobName {
                name: job_name.to_owned(),
            });
        }
        Ok(ShardWriter {
            dir: dir.to_owned(),
            job_name: job_name.to_owned(),
            limits,
            estimator: Estimator::new(settings),
            context: ContextCheck::new(settings),
            seen: SeenIds::default(),
            open: None,
            closed: Vec::new(),
            syncer: None,
            buffer: Vec::new(),
        })
    }

    /// Adds one request to the current shard, starting a new shard when a limit would be
    /// passed or the model changes; says which shard it went into.
    ///
    /// A request over its model's context window is remembered for [`ShardWriter::finish`]
    /// to refuse, and is not held to the shard limits (no shard of the set will be kept), so
    /// that every such request of the set is found, not only the first.
    ///
    /// # Errors
    ///
    /// [`Error::RepeatedCustomId`] when an earlier request of the job has the same id,
    /// [`Error::RequestTooLarge`] when the line alone passes the byte limit,
    /// [`Error::RequestOverTokenLimit`] when its input tokens alone pass the token limit,
    /// [`Error::WriteShard`] when the temp file cannot be created or written.
    pub fn push(&mut self, request: &LessonRequest) -> Result<Placement, Error> {
        let custom_id = &request.request.custom_id;
        if let Some(first_line) = self.seen.first_line(custom_id, request.line) {
            return Err(Error::RepeatedCustomId {
                custom_id: custom_id.clone(),
                first_line,
                second_title: request.title.clone(),
                second_line: request.line,
            });
        }
        self.buffer.clear();
        encode_line(&mut self.buffer, &request.request, custom_id)?;
        let bytes = self.buffer.len() as u64;
        let over_window = self.over_context_window(request, bytes);
        if !over_window && bytes > self.limits.max_bytes {
            return Err(Error::RequestTooLarge {
                custom_id: custom_id.clone(),
                bytes,
                max_bytes: self.limits.max_bytes,
            });
        }
        // A line's bytes bound its input tokens: every token stands for at least one byte of
        // a message's text, and the line holds that text and more than the chat format's
        // few tokens of overhead. So the tokens are counted ahead (the estimate counts them
        // again, from its cache) only when the bound does not settle whether they fit.
        let room = self
            .limits
            .max_input_tokens
            .filter(|_| !over_window)
            .map(|max| {
                let used = self.open.as_ref().map_or(0, |open| open.input_tokens);
                (max, max.saturating_sub(used))
            });
        let fits_tokens = match room {
            Some((max_input_tokens, room)) if bytes > room => {
                let tokens = self.estimator.input_tokens(&request.request.body);
                if tokens > max_input_tokens {
                    return Err(Error::RequestOverTokenLimit {
                        custom_id: custom_id.clone(),
                        input_tokens: tokens,
                        max_input_tokens,
                    });
                }
                tokens <= room
            }
            _ => true,
        };
        let model = &request.request.body.model;
        let fits = fits_tokens
            && self.open.as_ref().is_some_and(|open| {
                open.shard.requests < self.limits.max_requests
                    && open.shard.bytes + bytes <= self.limits.max_bytes
                    && open.shard.model == *model
            });
        if !fits {
            self.close_open()?;
            self.open = Some(self.start(model)?);
        }
        let open = self.open.as_mut().expect("a shard was just opened");
        open.file
            .write_all(&self.buffer)
            .map_err(|source| Error::WriteShard {
                path: open.shard.path.clone(),
                source,
            })?;
        open.shard.requests += 1;
        open.shard.bytes += bytes;
        let tokens = self.estimator.add(request);
        debug_assert!(
            tokens.input <= bytes,
            "the byte bound of input tokens holds"
        );
        open.input_tokens += tokens.input;
        Ok(Placement {
            shard: self.closed.len() + 1,
            tokens,
        })
    }

    /// Closes the last shard and renames every shard into place; returns them in order.
    ///
    /// # Errors
    ///
    /// [`Error::OverContextWindow`] when a request passed its model's context window (no
    /// shard is kept), [`Error::WriteShard`] when a file cannot be flushed, synced or renamed.
    pub fn finish(mut self) -> Result<Vec<Shard>, Error> {
        self.context.finish()?;
        self.close_open()?;
        let shards = std::mem::take(&mut self.closed);
        let synced = self.syncer.take().map(Syncer::finish).unwrap_or_default();
        // Every file is synced before any is renamed into place.
        let mut files = Vec::with_capacity(shards.len());
        for (shard, file) in shards.iter().zip(synced) {
            files.push(file.map_err(|source| Error::WriteShard {
                path: shard.path.clone(),
                source,
            })?);
        }
        for (shard, file) in shards.iter().zip(files) {
            file.persist(&shard.path).map_err(|err| Error::WriteShard {
                path: shard.path.clone(),
                source: err.error,
            })?;
        }
        Ok(shards)
    }

    /// Whether `request` (a line of `bytes` bytes) passes its model's context window; such a
    /// request is recorded for [`ShardWriter::finish`].
    fn over_context_window(&mut self, request: &LessonRequest, bytes: u64) -> bool {
        let Some(window) = self.context.window(&request.request.body.model) else {
            return false;
        };
        // A line's bytes bound its input tokens (see `push`), so most requests are settled
        // without counting; the estimate counts the others again from its cache.
        let max_completion_tokens = self.context.max_completion_tokens(request);
        if bytes.saturating_add(max_completion_tokens) <= window {
            return false;
        }
        let input_tokens = self.estimator.input_tokens(&request.request.body);
        self.context.check(request, input_tokens, window)
    }

    fn start(&self, model: &str) -> Result<OpenShard, Error> {
        let number = self.closed.len() + 1;
        let path = self
            .dir
            .join(format!("{}_input_{number:03}.jsonl", self.job_name));
        let mut builder = tempfile::Builder::new();
        #[cfg(unix)]
        // As `open(2)` with 0o666 would: the umask decides (0644 under umask 022), not
        // tempfile's 0600, for a file the user reads and shares.
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let file = builder
            .tempfile_in(&self.dir)
            .map_err(|source| Error::WriteShard {
                path: path.clone(),
                source,
            })?;
        Ok(OpenShard {
            file: BufWriter::with_capacity(1 << 20, file),
            shard: Shard {
                path,
                requests: 0,
                bytes: 0,
                model: model.to_owned(),
                estimate: Estimate::default(),
            },
            input_tokens: 0,
        })
    }

    fn close_open(&mut self) -> Result<(), Error> {
        let Some(OpenShard {
            file, mut shard, ..
        }) = self.open.take()
        else {
            return Ok(());
        };
        let write_error = |source| Error::WriteShard {
            path: shard.path.clone(),
            source,
        };
        let file = file
            .into_inner()
            .map_err(|err| write_error(err.into_error()))?;
        shard.estimate = self.estimator.take();
        self.closed.push(shard);
        self.syncer.get_or_insert_with(Syncer::start).sync(file);
        Ok(())
    }
}

impl Drop for ShardWriter {
    /// On error the temp files are removed, those being synced too, before the writer is gone.
    fn drop(&mut self) {
        if let Some(syncer) = self.syncer.take() {
            drop(syncer.finish());
        }
    }
}

/// Syncs closed shard files on a thread of its own, in order, closing each: the writer goes
/// on with the next shard meanwhile, and holds two unsynced shards at most.
#[derive(Debug)]
struct Syncer {
    files: Option<SyncSender<NamedTempFile>>,
    thread: Option<JoinHandle<Vec<io::Result<TempPath>>>>,
    /// Files synced on the writer's thread, when the syncing thread could not be started.
    inline: Vec<io::Result<TempPath>>,
}

impl Syncer {
    fn start() -> Syncer {
        let (files, received) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("shard-sync".to_owned())
            .spawn(move || sync_all(received))
            .ok();
        Syncer {
            files: thread.is_some().then_some(files),
            thread,
            inline: Vec::new(),
        }
    }

    fn sync(&mut self, file: NamedTempFile) {
        let file = match &self.files {
            Some(files) => match files.send(file) {
                Ok(()) => return,
                Err(err) => err.0,
            },
            None => file,
        };
        self.inline.push(sync_one(file));
    }

    /// The synced files, in the order they were given.
    fn finish(mut self) -> Vec<io::Result<TempPath>> {
        drop(self.files.take());
        let mut synced = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(synced)) => synced,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Vec::new(),
        };
        synced.append(&mut self.inline);
        synced
    }
}

fn sync_all(files: Receiver<NamedTempFile>) -> Vec<io::Result<TempPath>> {
    files.into_iter().map(sync_one).collect()
}

fn sync_one(file: NamedTempFile) -> io::Result<TempPath> {
    file.as_file().sync_all()?;
    Ok(file.into_temp_path())
}

/// Writes `requests` into shard files `<dir>/<job_name>_input_001.jsonl`, ... and returns them.
///
/// ```
/// use batch_request::{Limits, RequestSettings, Template};
///
/// let outline = "# M0: Basics — Lesson Map\n## L001: One [F]\n## L002: Two [I]\n## L003: Three [A]\n";
/// let curriculum = curriculum_parser::parse(outline, "outline.md".as_ref()).unwrap();
/// let template = Template::parse("Write {{lesson_title}}.", "t.md".as_ref())?;
/// let settings = RequestSettings::default();
/// let requests = batch_request::build_requests(&curriculum, outline, curriculum.lessons(), &template, &settings)?;
/// let dir = tempfile::tempdir().unwrap();
/// let limits = Limits { max_requests: 2, ..Limits::default() };
/// let shards = batch_request::write_shards(&requests, dir.path(), "datagov", limits, &settings)?;
/// assert_eq!(shards.len(), 2);
/// assert!(shards[1].path.ends_with("datagov_input_002.jsonl"));
/// let third = std::io::BufReader::new(std::fs::File::open(&shards[1].path).unwrap());
/// let ids: Vec<String> = batch_request::read_request_lines(third)
///     .map(|line| line.map(|(_, line)| line.custom_id))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(ids, ["lesson_M0-L003"]);
/// # Ok::<(), batch_request::Error>(())
/// ```
///
/// # Errors
///
/// As [`ShardWriter::new`], [`ShardWriter::push`] and [`ShardWriter::finish`]; on error no
/// shard file is left behind.
pub fn write_shards<I>(
    requests: I,
    dir: &Path,
    job_name: &str,
    limits: Limits,
    settings: &RequestSettings,
) -> Result<Vec<Shard>, Error>
where
    I: IntoIterator,
    I::Item: Borrow<LessonRequest>,
{
    let mut writer = ShardWriter::new(dir, job_name, limits, settings)?;
    for request in requests {
        writer.push(request.borrow())?;
    }
    writer.finish()
}
