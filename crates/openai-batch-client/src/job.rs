//! The job runner: drives shard files through upload, create, poll and download, idempotently,
//! recording every intent and result in the [`Ledger`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;

use crate::batches::{CreateBatchRequest, RUN_ID_KEY, unix_now};
use crate::client::Client;
use crate::error::{ApiErrorKind, Error};
use crate::ledger::{AttemptRecord, Ledger, ShardRecord, absolute, sha256_file};
use crate::poll::PollConfig;
use crate::progress::{DownloadReporter, JobEvent, JobProgress, UploadReporter};
use crate::types::{Batch, BatchStatus, FileId};

/// Metadata key of the shard's id (its first 512 characters).
pub const SHARD_KEY: &str = "shard";
/// Metadata key of the shard's SHA-256.
pub const SHARD_SHA256_KEY: &str = "shard_sha256";
/// Metadata key of the batch attempt of a shard (starts at `1`).
pub const ATTEMPT_KEY: &str = "attempt";

/// How far back (seconds) before a recorded create intent a lost batch is searched for.
const LOOKUP_SLACK_SECS: i64 = 3600;

/// How far back (seconds) an unfinished batch of the same job is looked for before creating.
const ADOPT_WINDOW_SECS: i64 = 48 * 3600;

/// How long an uploaded shard lives on the server unless deleted first: 7 days, long enough
/// for a batch's 24 hours and days of waiting for queue capacity.
pub const DEFAULT_INPUT_EXPIRY_SECS: u64 = 7 * 24 * 3600;

/// The longest shard id, in bytes; with `_output.jsonl` it stays a valid file name.
const MAX_SHARD_ID_LEN: usize = 200;

/// One shard file of a submission round, under the caller's stable id.
///
/// The id, not the path, identifies the shard in the ledger: submitting a known id again
/// refers to the same shard (its file may have moved), and the downloads are named after it
/// (`<id>_output.jsonl`, `<id>_errors.jsonl`). So an id must be unique in the job, 1 to 200
/// characters of ASCII letters, digits, `-`, `_` and `.`, and must not start with `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardInput {
    /// The shard's stable id, e.g. `r01-001`.
    pub id: String,
    /// The request JSONL file; a relative path is taken against the current directory once,
    /// when submitted, and recorded absolute.
    pub path: PathBuf,
    /// The model of its requests and their estimated input tokens, for scheduling under the
    /// organization's enqueued-token limit ([`JobConfig::enqueued_token_limits`]); `None`
    /// counts as no tokens.
    pub enqueued: Option<(String, u64)>,
}

impl ShardInput {
    /// A shard input.
    pub fn new(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        ShardInput {
            id: id.into(),
            path: path.into(),
            enqueued: None,
        }
    }

    /// The same, holding `input_tokens` estimated input tokens of `model`.
    #[must_use]
    pub fn with_tokens(mut self, model: impl Into<String>, input_tokens: u64) -> Self {
        self.enqueued = Some((model.into(), input_tokens));
        self
    }
}

/// How long the runner waits before submitting again a shard refused with
/// `token_limit_exceeded` while none of the job's own batches of that model is running (the
/// queue is full of other work): `initial`, doubling up to `max`, for at most
/// `max_attempts` batches per shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLimitBackoff {
    /// The first wait (1 minute).
    pub initial: Duration,
    /// The longest wait (30 minutes).
    pub max: Duration,
    /// The most batches made for one shard before its `token_limit_exceeded` failure is
    /// handed on to the caller (40: about 18 hours of waiting at the defaults).
    pub max_attempts: u32,
}

impl Default for TokenLimitBackoff {
    fn default() -> Self {
        TokenLimitBackoff {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(30 * 60),
            max_attempts: 40,
        }
    }
}

/// What every batch of a job is created with, and how the runner paces itself.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// The endpoint of the request lines (default `/v1/chat/completions`).
    pub endpoint: String,
    /// Extra metadata for every batch (at most 12 pairs: the runner adds `run_id`, `shard`,
    /// `shard_sha256` and `attempt`).
    pub metadata: BTreeMap<String, String>,
    /// A key of [`JobConfig::metadata`] whose value identifies the job across ledgers (e.g.
    /// `job_id`), or `None` (the default).
    ///
    /// When set, a shard about to be uploaded and created is first matched against the
    /// unfinished batches on the server (`validating`, `in_progress`, `finalizing`) created in
    /// the last 48 hours with the same value under this key and the same `shard_sha256`; one
    /// that no shard of the ledger has recorded is taken over ([`JobEvent::Adopted`]) instead of
    /// paying for the same work twice after a ledger was lost.
    pub job_key: Option<String>,
    /// How many shards are uploaded, created, polled or downloaded at the same time (default 4).
    pub concurrency: usize,
    /// Polling pace.
    pub poll: PollConfig,
    /// The organization's enqueued-token limit per model (the input tokens of its unfinished
    /// batches). The runner keeps the tokens of this job's unfinished batches of a model
    /// within it, submitting a shard only when it fits (one at a time when nothing runs);
    /// a model without an entry is not limited. Empty by default.
    pub enqueued_token_limits: BTreeMap<String, u64>,
    /// Waiting after `token_limit_exceeded`, see [`JobRunner::drive`].
    pub token_limit_backoff: TokenLimitBackoff,
    /// `expires_after[seconds]` of every upload (3,600 to 2,592,000), or `None` for the
    /// server's default (30 days for batch files). Default: 7 days.
    pub input_expires_after: Option<u64>,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            endpoint: "/v1/chat/completions".to_owned(),
            metadata: BTreeMap::new(),
            job_key: None,
            concurrency: 4,
            poll: PollConfig::default(),
            enqueued_token_limits: BTreeMap::new(),
            token_limit_backoff: TokenLimitBackoff::default(),
            input_expires_after: Some(DEFAULT_INPUT_EXPIRY_SECS),
        }
    }
}

/// Drives the shards of one job, recorded in one ledger file.
///
/// Shards are identified by the caller's ids ([`ShardInput`]); every path the runner records or
/// returns is absolute, and the ledger stores paths inside its own directory relative to it.
///
/// Every method can be interrupted (the process killed, the future dropped) and called again
/// on a runner built from the same ledger: finished steps are never repeated. An upload whose
/// file id was not recorded is uploaded again (that costs nothing); a create whose batch id
/// was not recorded is first looked for by its metadata (`run_id`, `shard`, `shard_sha256`,
/// `attempt`); a recorded file id that has vanished (404) is uploaded again.
///
/// With [`JobConfig::job_key`] set, even a lost ledger does not lead to a second batch for the
/// same work: before uploading and creating, [`JobRunner::submit`] looks for an unfinished batch
/// of the same job and shard content and takes it over. That costs one paged list of batches
/// per `submit` call that has shards to create (one `GET /batches` per 100 batches created in
/// the last 48 hours), shared by all its shards; no list is fetched when `job_key` is `None`
/// or every shard already has a batch or a recorded create.
///
/// Shards are processed concurrently; one shard failing does not stop the others. Each
/// method returns the first shard failure as [`Error::Shard`] after every shard had its turn,
/// and reports every failure as [`JobEvent::ShardFailed`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use wiremock::{Mock, MockServer, ResponseTemplate, matchers::{method, path}};
/// # use serde_json::json;
/// # let server = MockServer::start().await;
/// # let batch = |status: &str| json!({"id": "batch_1", "object": "batch",
/// #     "endpoint": "/v1/chat/completions", "input_file_id": "file-in",
/// #     "completion_window": "24h", "status": status, "created_at": 1,
/// #     "output_file_id": (status == "completed").then_some("file-out")});
/// # let file = json!({"id": "file-in", "object": "file", "bytes": 3, "created_at": 1,
/// #     "filename": "job_input_001.jsonl", "purpose": "batch"});
/// # let answers = [("POST", "/files", ResponseTemplate::new(200).set_body_json(file)),
/// #     ("POST", "/batches", ResponseTemplate::new(200).set_body_json(batch("validating"))),
/// #     ("GET", "/batches/batch_1", ResponseTemplate::new(200).set_body_json(batch("completed"))),
/// #     ("GET", "/files/file-out/content", ResponseTemplate::new(200).set_body_string("{}\n"))];
/// # for (verb, route, answer) in answers {
/// #     Mock::given(method(verb)).and(path(route)).respond_with(answer).expect(1).mount(&server).await;
/// # }
/// # let work = tempfile::tempdir()?;
/// # let shard = work.path().join("job_input_001.jsonl");
/// # std::fs::write(&shard, "{}\n")?;
/// # let config = openai_batch_client::ClientConfig::new(server.uri(), "sk-test".into());
/// use openai_batch_client::{Client, JobConfig, JobRunner, ShardInput};
///
/// let client = Client::new(config)?;
/// let runner = JobRunner::new(client, work.path().join("job.ledger.json"), JobConfig::default())?;
/// // Uploads and creates; returns without waiting.
/// runner.submit(&[ShardInput::new("job-001", &shard)]).await?;
/// runner.wait().await?; // Another process could attach with `JobRunner::open` instead.
/// runner.download(&work.path().join("results")).await?;
/// for shard in runner.ready() {
///     let output = shard.output_path.as_deref().expect("completed with an output file");
///     assert!(output.ends_with("results/job-001_output.jsonl"));
///     assert_eq!(std::fs::read_to_string(output)?, "{}\n");
///     runner.mark_handed_on(shard.index)?;
/// }
/// assert!(runner.unfinished().is_empty());
/// # Ok(())
/// # }
/// ```
pub struct JobRunner {
    client: Client,
    ledger_path: PathBuf,
    ledger: Mutex<Ledger>,
    config: JobConfig,
    progress: Arc<dyn JobProgress>,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner")
            .field("client", &self.client)
            .field("ledger_path", &self.ledger_path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl JobRunner {
    /// A runner on the ledger at `ledger_path`, created (empty, with a new run id) when missing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidJobKey`] when [`JobConfig::job_key`] is set but is not a key of
    /// [`JobConfig::metadata`] with a non-empty value, or is one of the keys the runner sets;
    /// otherwise as [`Ledger::load_or_create`].
    pub fn new(
        client: Client,
        ledger_path: impl Into<PathBuf>,
        config: JobConfig,
    ) -> Result<JobRunner, Error> {
        check_config(&config)?;
        let ledger_path = absolute(&ledger_path.into())?;
        let ledger = Ledger::load_or_create(&ledger_path)?;
        Ok(JobRunner::with_ledger(client, ledger_path, ledger, config))
    }

    /// A runner on an existing ledger, to attach to a job submitted earlier.
    ///
    /// # Errors
    ///
    /// As [`JobRunner::new`], and a missing ledger is [`Error::Io`].
    pub fn open(
        client: Client,
        ledger_path: impl Into<PathBuf>,
        config: JobConfig,
    ) -> Result<JobRunner, Error> {
        check_config(&config)?;
        let ledger_path = absolute(&ledger_path.into())?;
        let ledger = Ledger::load(&ledger_path)?;
        Ok(JobRunner::with_ledger(client, ledger_path, ledger, config))
    }

    fn with_ledger(
        client: Client,
        ledger_path: PathBuf,
        ledger: Ledger,
        config: JobConfig,
    ) -> Self {
        JobRunner {
            client,
            ledger_path,
            ledger: Mutex::new(ledger),
            config,
            progress: Arc::new(()),
        }
    }

    /// Reports events to `progress` from now on.
    pub fn with_progress(mut self, progress: Arc<dyn JobProgress>) -> Self {
        self.progress = progress;
        self
    }

    /// The ledger file, absolute.
    pub fn ledger_path(&self) -> &Path {
        &self.ledger_path
    }

    /// The caller's data kept with the job ([`Ledger::context`]).
    pub fn context(&self) -> serde_json::Map<String, serde_json::Value> {
        self.lock().context.clone()
    }

    /// Replaces the caller's data kept with the job and writes the ledger.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the ledger cannot be written; the context is then unchanged.
    pub fn set_context(
        &self,
        context: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Error> {
        let mut ledger = self.lock();
        let mut changed = ledger.clone();
        changed.context = context;
        changed.save(&self.ledger_path)?;
        *ledger = changed;
        Ok(())
    }

    /// A copy of the ledger as it is now.
    pub fn ledger(&self) -> Ledger {
        self.lock().clone()
    }

    /// The job's run id.
    pub fn run_id(&self) -> String {
        self.lock().run_id.clone()
    }

    /// Every shard, in ledger order.
    pub fn shards(&self) -> Vec<ShardRecord> {
        self.lock().shards.clone()
    }

    /// The shards whose results are not yet on disk (not submitted, running, or terminal with
    /// downloads pending).
    pub fn unfinished(&self) -> Vec<ShardRecord> {
        self.lock()
            .shards
            .iter()
            .filter(|shard| shard.is_unfinished())
            .cloned()
            .collect()
    }

    /// The shards whose results are downloaded and not yet handed on: read their
    /// `output_path` / `error_path`, then call [`JobRunner::mark_handed_on`].
    pub fn ready(&self) -> Vec<ShardRecord> {
        self.lock()
            .shards
            .iter()
            .filter(|shard| shard.downloaded_at.is_some() && !shard.handed_on)
            .cloned()
            .collect()
    }

    /// Records that the caller took over the results of shard `index`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownShard`], or [`Error::Io`] when the ledger cannot be written.
    pub fn mark_handed_on(&self, index: usize) -> Result<(), Error> {
        self.update(index, |shard| shard.handed_on = true)
    }

    /// Forgets the terminal batch of shard `index` so the next [`JobRunner::submit`] creates a
    /// new one from the same uploaded file, e.g. after `token_limit_exceeded`. The attempt
    /// number (in the metadata) goes up, so the old batch is never mistaken for the new one.
    /// Returns `false`, changing nothing, when the shard's batch is not terminal.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownShard`], or [`Error::Io`] when the ledger cannot be written.
    pub fn retry_shard(&self, index: usize) -> Result<bool, Error> {
        let mut reset = false;
        self.update(index, |shard| {
            if shard.status.is_some_and(BatchStatus::is_terminal) {
                reset = true;
                shard.attempts.push(AttemptRecord {
                    attempt: shard.attempt,
                    batch_id: shard.batch_id.clone(),
                    status: shard.status,
                    error_codes: shard
                        .errors
                        .iter()
                        .filter_map(|error| error.code.clone())
                        .collect(),
                    created_at: shard.create_requested_at,
                    ended_at: unix_now(),
                });
                shard.attempt += 1;
                shard.terminal_at = None;
                shard.create_requested_at = None;
                shard.batch_id = None;
                shard.status = None;
                shard.counts = None;
                shard.output_file_id = None;
                shard.error_file_id = None;
                shard.errors.clear();
                shard.output_path = None;
                shard.error_path = None;
                shard.downloaded_at = None;
                shard.handed_on = false;
            }
        })?;
        Ok(reset)
    }

    /// Registers `shards` (hashing each file; an id already in the ledger is the same shard,
    /// whose recorded path is updated to the one given), then uploads and creates a batch for
    /// every shard of the ledger that has none, without waiting for the batches. Returns the
    /// ledger indices of `shards`.
    ///
    /// With [`JobConfig::job_key`] set, an unfinished batch of the same job and content is
    /// taken over instead of uploading and creating (see [`JobRunner`] for what that costs).
    ///
    /// With [`JobConfig::enqueued_token_limits`], only the shards that fit their model's limit
    /// next to the job's unfinished batches are submitted (in ledger order, skipping those that
    /// do not fit); the others wait for a later call, such as [`JobRunner::drive`]'s.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShardId`] and [`Error::DuplicateShardId`] for bad ids (nothing is
    /// recorded then), [`Error::Io`] when a shard cannot be read, [`Error::ShardChanged`] when
    /// an uploaded shard's content changed, [`Error::Api`] or a transport variant when the
    /// batches to take over cannot be listed (nothing is uploaded or created then),
    /// [`Error::Shard`] for the first shard whose upload or create failed.
    pub async fn submit(&self, shards: &[ShardInput]) -> Result<Vec<usize>, Error> {
        let indices = self.register(shards).await?;
        let pending = self.fitting();
        let needs_list = pending
            .iter()
            .any(|shard| shard.create_requested_at.is_none());
        let adoptable = match self.job_identity() {
            Some((key, value)) if needs_list => self.adoptable_batches(key, value).await?,
            _ => Vec::new(),
        };
        let adoptable = adoptable.as_slice();
        let pending = pending.iter().map(|shard| shard.index).collect();
        self.for_each(pending, |index| self.submit_shard(index, adoptable))
            .await?;
        Ok(indices)
    }

    /// Runs the job to its end: [`JobRunner::submit`]s `shards` (and every shard of the ledger
    /// not submitted yet), waits, and downloads into `dir` as [`JobRunner::download`] does,
    /// submitting each shard that waits for queue capacity as soon as an earlier batch of its
    /// model finishes, all in one call. Returns when every shard's results are downloaded.
    ///
    /// A batch refused with `token_limit_exceeded` (other work of the organization fills the
    /// queue; nothing ran or was billed) is created again from the same uploaded file: at once
    /// when one of this job's batches of that model finished after the refused one was
    /// asked for, after the job's own running batch of that model finishes when there is one,
    /// and otherwise after a wait ([`JobConfig::token_limit_backoff`]: 1 minute, doubling, at
    /// most 30). Every refused batch stays in the ledger ([`ShardRecord::attempts`]). After
    /// `max_attempts` batches, the refused batch is handed on like any failed one.
    ///
    /// Dropping the future stops waiting; the batches run on and a later call goes on.
    ///
    /// # Errors
    ///
    /// As [`JobRunner::submit`], [`JobRunner::wait`] and [`JobRunner::download`]; the first
    /// failure stops the run (the ledger keeps everything done before it).
    pub async fn drive(&self, shards: &[ShardInput], dir: &Path) -> Result<(), Error> {
        let dir = absolute(dir)?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|source| Error::io("create", &dir, source))?;
        self.submit(shards).await?;
        let backoff = self.config.token_limit_backoff;
        let mut delays: HashMap<usize, Duration> = HashMap::new();
        let mut retry_at: HashMap<usize, tokio::time::Instant> = HashMap::new();
        let mut last_queue = None;
        loop {
            self.retry_refused(&backoff, &mut delays, &mut retry_at)?;
            self.download_final(&dir).await?;
            self.submit(&[]).await?;
            let ledger = self.ledger();
            let running: Vec<usize> = ledger
                .shards
                .iter()
                .filter(|shard| shard.batch_id.is_some() && shard.is_in_flight())
                .map(|shard| shard.index)
                .collect();
            let waiting = ledger
                .shards
                .iter()
                .filter(|shard| {
                    (shard.batch_id.is_none() && shard.create_requested_at.is_none())
                        || (shard.downloaded_at.is_none()
                            && shard.token_limit_exceeded()
                            && shard.attempt < backoff.max_attempts)
                })
                .count();
            let done = ledger
                .shards
                .iter()
                .filter(|shard| shard.downloaded_at.is_some())
                .count();
            let queue = (done, running.len(), waiting);
            if last_queue != Some(queue) {
                self.emit(&JobEvent::Queue {
                    done,
                    running: running.len(),
                    waiting,
                });
                last_queue = Some(queue);
            }
            let unfinished = ledger.shards.iter().any(ShardRecord::is_unfinished);
            if !unfinished {
                return Ok(());
            }
            let until = retry_at.values().min().copied();
            if running.is_empty() && until.is_none() {
                // Nothing runs and nothing is scheduled, yet work remains: only a shard whose
                // create is in doubt can be in that state; the next submit settles it. Pause so
                // that a server answering oddly is not asked in a tight loop.
                tokio::time::sleep(backoff.initial.min(self.config.poll.max_interval)).await;
                continue;
            }
            self.wait_any(running, until).await?;
        }
    }

    /// Resets the shards refused with `token_limit_exceeded` whose time has come (see
    /// [`JobRunner::drive`]), scheduling a later retry for the others.
    fn retry_refused(
        &self,
        backoff: &TokenLimitBackoff,
        delays: &mut HashMap<usize, Duration>,
        retry_at: &mut HashMap<usize, tokio::time::Instant>,
    ) -> Result<(), Error> {
        let ledger = self.ledger();
        let now = tokio::time::Instant::now();
        let refused = ledger.shards.iter().filter(|shard| {
            shard.downloaded_at.is_none()
                && shard.token_limit_exceeded()
                && shard.attempt < backoff.max_attempts
        });
        for shard in refused {
            let index = shard.index;
            let same_model = |other: &&ShardRecord| {
                other.index != index
                    && (other.model.is_none()
                        || shard.model.is_none()
                        || other.model == shard.model)
            };
            let asked_at = shard.create_requested_at.unwrap_or(0);
            let freed = ledger
                .shards
                .iter()
                .filter(same_model)
                .filter(|other| !other.token_limit_exceeded())
                .any(|other| other.terminal_at.is_some_and(|at| at >= asked_at));
            let delay = if freed {
                Duration::ZERO
            } else if ledger
                .shards
                .iter()
                .filter(same_model)
                .any(|other| other.batch_id.is_some() && other.is_in_flight())
            {
                // One of ours holds the queue: it finishing frees room ("freed" above).
                continue;
            } else if let Some(at) = retry_at.get(&index) {
                if now < *at {
                    continue;
                }
                Duration::ZERO
            } else {
                let delay = delays.get(&index).copied().unwrap_or(backoff.initial);
                delays.insert(index, (delay * 2).min(backoff.max));
                // The refusal may be old (a run that stopped): count the time since it.
                let since = u64::try_from(unix_now() - shard.terminal_at.unwrap_or_else(unix_now))
                    .unwrap_or(0);
                let remaining = delay.saturating_sub(Duration::from_secs(since));
                self.emit(&JobEvent::TokenLimitRetry {
                    shard: index,
                    attempt: shard.attempt + 1,
                    delay: remaining,
                });
                if !remaining.is_zero() {
                    retry_at.insert(index, now + remaining);
                    continue;
                }
                remaining
            };
            if freed {
                delays.remove(&index);
                self.emit(&JobEvent::TokenLimitRetry {
                    shard: index,
                    attempt: shard.attempt + 1,
                    delay,
                });
            }
            retry_at.remove(&index);
            self.retry_shard(index)?;
        }
        Ok(())
    }

    /// Downloads the terminal shards that will not be submitted again.
    async fn download_final(&self, dir: &Path) -> Result<(), Error> {
        let max_attempts = self.config.token_limit_backoff.max_attempts;
        let pending: Vec<usize> = self
            .lock()
            .shards
            .iter()
            .filter(|shard| {
                shard.downloaded_at.is_none()
                    && shard.status.is_some_and(BatchStatus::is_terminal)
                    && (!shard.token_limit_exceeded() || shard.attempt >= max_attempts)
            })
            .map(|shard| shard.index)
            .collect();
        self.for_each(pending, |index| self.download_shard(index, dir))
            .await
    }

    /// Polls the batches of `running` until one is terminal, or until `until`.
    async fn wait_any(
        &self,
        running: Vec<usize>,
        until: Option<tokio::time::Instant>,
    ) -> Result<(), Error> {
        let deadline = async move {
            match until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let mut waits: futures::stream::FuturesUnordered<_> = running
            .into_iter()
            .map(|index| async move { (index, self.wait_shard(index).await) })
            .collect();
        if waits.is_empty() {
            deadline.await;
            return Ok(());
        }
        tokio::select! {
            Some((index, result)) = waits.next() => {
                result.map_err(|error| self.shard_failure(index, error))
            }
            () = deadline => Ok(()),
        }
    }

    /// Deletes shard `index`'s files from the server once its results are downloaded: the
    /// input file, and unless `keep_results` the output and error files. The local copies
    /// stay; a file already gone counts as deleted, and each deletion is recorded in the
    /// ledger so it is not asked for again. Returns how many files were deleted.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownShard`], [`Error::Api`] and the transport variants when a deletion
    /// fails (the others recorded so far stay recorded), [`Error::Io`] for the ledger.
    pub async fn delete_remote_files(
        &self,
        index: usize,
        keep_results: bool,
    ) -> Result<usize, Error> {
        let shard = self.snapshot(index)?;
        if shard.downloaded_at.is_none() {
            return Ok(0);
        }
        let mut deleted = 0;
        if !shard.input_file_deleted {
            if let Some(file_id) = &shard.input_file_id {
                self.delete_if_present(file_id).await?;
                deleted += 1;
            }
            self.update(index, |shard| shard.input_file_deleted = true)?;
        }
        if !keep_results && !shard.result_files_deleted {
            for file_id in [&shard.output_file_id, &shard.error_file_id]
                .into_iter()
                .flatten()
            {
                self.delete_if_present(file_id).await?;
                deleted += 1;
            }
            self.update(index, |shard| shard.result_files_deleted = true)?;
        }
        if deleted > 0 {
            self.emit(&JobEvent::RemoteFilesDeleted {
                shard: index,
                files: deleted,
            });
        }
        Ok(deleted)
    }

    async fn delete_if_present(&self, file_id: &FileId) -> Result<(), Error> {
        match self.client.delete_file(file_id).await {
            Ok(_) => Ok(()),
            Err(err) if err.api_kind() == Some(ApiErrorKind::NotFound) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The shards without a batch that may be submitted now: each one with a create intent
    /// (its batch may exist), and the others in ledger order as long as they fit their
    /// model's enqueued-token limit next to the job's batches in flight.
    fn fitting(&self) -> Vec<ShardRecord> {
        let ledger = self.lock();
        let mut enqueued: BTreeMap<Option<&str>, u64> = BTreeMap::new();
        for shard in ledger.shards.iter().filter(|shard| shard.is_in_flight()) {
            *enqueued.entry(shard.model.as_deref()).or_default() += shard.input_tokens.unwrap_or(0);
        }
        let mut fitting = Vec::new();
        for shard in ledger
            .shards
            .iter()
            .filter(|shard| shard.batch_id.is_none())
        {
            if shard.create_requested_at.is_some() {
                fitting.push(shard.clone());
                continue;
            }
            let tokens = shard.input_tokens.unwrap_or(0);
            let used = enqueued.entry(shard.model.as_deref()).or_default();
            let limit = shard
                .model
                .as_ref()
                .and_then(|model| self.config.enqueued_token_limits.get(model));
            let fits = limit.is_none_or(|&limit| *used == 0 || *used + tokens <= limit);
            if fits {
                *used += tokens;
                fitting.push(shard.clone());
            }
        }
        fitting
    }

    /// Polls every submitted batch that is not terminal until it is, recording each status and
    /// count change, and at the end the output and error file ids (or the errors of a failed
    /// batch). Dropping the future stops waiting; the batches run on.
    ///
    /// # Errors
    ///
    /// [`Error::Shard`] for the first shard whose polling failed.
    pub async fn wait(&self) -> Result<(), Error> {
        let pending: Vec<usize> = self
            .lock()
            .shards
            .iter()
            .filter(|shard| {
                shard.batch_id.is_some() && !shard.status.is_some_and(BatchStatus::is_terminal)
            })
            .map(|shard| shard.index)
            .collect();
        self.for_each(pending, |index| self.wait_shard(index)).await
    }

    /// Downloads the files of every terminal batch not downloaded yet into `dir` as
    /// `<shard id>_output.jsonl` and `<shard id>_errors.jsonl`: output and error files of
    /// completed batches when present, the partial output and the error file of expired and
    /// cancelled ones, nothing for failed ones. A relative `dir` is taken against the current
    /// directory; the recorded paths are absolute.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `dir` cannot be created, [`Error::Shard`] for the first shard
    /// whose download failed.
    pub async fn download(&self, dir: &Path) -> Result<(), Error> {
        let dir = &absolute(dir)?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| Error::io("create", dir, source))?;
        let pending: Vec<usize> = self
            .lock()
            .shards
            .iter()
            .filter(|shard| {
                shard.downloaded_at.is_none() && shard.status.is_some_and(BatchStatus::is_terminal)
            })
            .map(|shard| shard.index)
            .collect();
        self.for_each(pending, |index| self.download_shard(index, dir))
            .await
    }

    /// [`JobRunner::submit`], [`JobRunner::wait`] and [`JobRunner::download`] in turn.
    ///
    /// # Errors
    ///
    /// The first error of the three.
    pub async fn run(&self, shards: &[ShardInput], dir: &Path) -> Result<(), Error> {
        self.submit(shards).await?;
        self.wait().await?;
        self.download(dir).await
    }

    /// Asks to cancel every submitted batch that is not terminal, recording the answer.
    /// Already finished batches (HTTP 409) are left alone.
    ///
    /// # Errors
    ///
    /// [`Error::Shard`] for the first shard whose cancel failed.
    pub async fn cancel(&self) -> Result<(), Error> {
        let pending: Vec<usize> = self
            .lock()
            .shards
            .iter()
            .filter(|shard| {
                shard.batch_id.is_some() && !shard.status.is_some_and(BatchStatus::is_terminal)
            })
            .map(|shard| shard.index)
            .collect();
        self.for_each(pending, |index| async move {
            let batch_id = self
                .snapshot(index)?
                .batch_id
                .expect("filtered on a batch id");
            match self.client.cancel_batch(&batch_id).await {
                Ok(batch) => self.record_batch(index, &batch),
                Err(err) if err.api_kind() == Some(ApiErrorKind::Conflict) => Ok(()),
                Err(err) => Err(err),
            }
        })
        .await
    }

    /// Checks the ids of `inputs`, hashes their files and adds the ids not yet in the ledger.
    async fn register(&self, inputs: &[ShardInput]) -> Result<Vec<usize>, Error> {
        let mut seen = HashSet::with_capacity(inputs.len());
        for input in inputs {
            check_shard_id(&input.id)?;
            if !seen.insert(input.id.as_str()) {
                return Err(Error::DuplicateShardId {
                    id: input.id.clone(),
                });
            }
        }
        for input in inputs {
            if let Some((model, tokens)) = &input.enqueued
                && let Some(&limit) = self.config.enqueued_token_limits.get(model)
                && *tokens > limit
            {
                return Err(Error::ShardOverLimit {
                    id: input.id.clone(),
                    model: model.clone(),
                    tokens: *tokens,
                    limit,
                });
            }
        }
        let mut indices = Vec::with_capacity(inputs.len());
        for input in inputs {
            let path = absolute(&input.path)?;
            let (sha256, bytes) = sha256_file(&path).await?;
            let mut ledger = self.lock();
            let existing = ledger.shards.iter().position(|shard| shard.id == input.id);
            let index = match existing {
                Some(index) => {
                    let shard = &mut ledger.shards[index];
                    let unchanged = shard.sha256 == sha256
                        && shard.input_path == path
                        && input.enqueued.as_ref().is_none_or(|(model, tokens)| {
                            shard.model.as_ref() == Some(model)
                                && shard.input_tokens == Some(*tokens)
                        });
                    if unchanged {
                        indices.push(index);
                        continue;
                    }
                    if shard.sha256 != sha256 {
                        let sent = shard.input_file_id.is_some()
                            || shard.upload_requested_at.is_some()
                            || shard.batch_id.is_some();
                        if sent {
                            return Err(Error::ShardChanged {
                                id: shard.id.clone(),
                                path,
                                recorded: shard.sha256.clone(),
                                found: sha256,
                            });
                        }
                        shard.sha256 = sha256;
                        shard.bytes = bytes;
                    }
                    // The same content may have moved, e.g. with its work dir.
                    shard.input_path = path;
                    if let Some((model, tokens)) = &input.enqueued {
                        shard.model = Some(model.clone());
                        shard.input_tokens = Some(*tokens);
                    }
                    shard.updated_at = unix_now();
                    index
                }
                None => {
                    let index = ledger.shards.len();
                    let mut shard = ShardRecord::new(index, input.id.clone(), path, sha256, bytes);
                    if let Some((model, tokens)) = &input.enqueued {
                        shard.model = Some(model.clone());
                        shard.input_tokens = Some(*tokens);
                    }
                    ledger.shards.push(shard);
                    index
                }
            };
            ledger.save(&self.ledger_path)?;
            indices.push(index);
        }
        Ok(indices)
    }

    /// Upload (unless done) and create (unless done) for one shard, unless one of `adoptable`
    /// can be taken over.
    async fn submit_shard(&self, index: usize, adoptable: &[Batch]) -> Result<(), Error> {
        let shard = self.snapshot(index)?;
        if shard.batch_id.is_some() {
            return Ok(());
        }
        let metadata = self.metadata(&shard);
        if let (Some(file_id), Some(requested_at)) =
            (&shard.input_file_id, shard.create_requested_at)
        {
            // A previous run asked for this batch and died before recording the answer.
            let cutoff = requested_at - LOOKUP_SLACK_SECS;
            if let Some(batch) = self
                .client
                .find_batch(file_id, &metadata, Some(cutoff))
                .await?
            {
                self.record_batch(index, &batch)?;
                self.emit(&JobEvent::Recovered {
                    shard: index,
                    batch: &batch,
                });
                return Ok(());
            }
        }
        // `adopt` passes over a shard with a create intent: our own batch may exist then.
        if let Some(batch) = self.adopt(index, adoptable)? {
            tracing::info!(batch_id = %batch.id, shard = %shard.id, "taking over a batch of the same job");
            self.emit(&JobEvent::Adopted {
                shard: index,
                batch: &batch,
            });
            return Ok(());
        }
        let file_id = self.ensure_uploaded(&shard).await?;
        self.update(index, |shard| shard.create_requested_at = Some(unix_now()))?;
        let mut request = CreateBatchRequest::new(file_id, self.config.endpoint.clone());
        request.metadata = metadata;
        let batch = self.client.create_batch(&request).await?;
        self.record_batch(index, &batch)?;
        self.emit(&JobEvent::Created {
            shard: index,
            batch: &batch,
        });
        Ok(())
    }

    /// The shard's uploaded file id: the recorded one if the server still has it, else a new upload.
    async fn ensure_uploaded(&self, shard: &ShardRecord) -> Result<FileId, Error> {
        let index = shard.index;
        if let Some(file_id) = &shard.input_file_id {
            match self.client.retrieve_file(file_id).await {
                Ok(_) => return Ok(file_id.clone()),
                Err(err) if err.api_kind() == Some(ApiErrorKind::NotFound) => {
                    tracing::warn!(%file_id, shard = %shard.id, "uploaded file is gone, uploading again");
                }
                Err(err) => return Err(err),
            }
        }
        let (sha256, _) = sha256_file(&shard.input_path).await?;
        if sha256 != shard.sha256 {
            return Err(Error::ShardChanged {
                id: shard.id.clone(),
                path: shard.input_path.clone(),
                recorded: shard.sha256.clone(),
                found: sha256,
            });
        }
        self.update(index, |shard| {
            shard.upload_requested_at = Some(unix_now());
            shard.input_file_id = None;
        })?;
        let reporter = Arc::new(UploadReporter {
            shard: index,
            path: shard.input_path.clone(),
            progress: Arc::clone(&self.progress),
        });
        let file = self
            .client
            .upload_file_expiring(&shard.input_path, self.config.input_expires_after, reporter)
            .await?;
        self.update(index, |shard| shard.input_file_id = Some(file.id.clone()))?;
        self.emit(&JobEvent::Uploaded {
            shard: index,
            file_id: &file.id,
        });
        Ok(file.id)
    }

    /// Polls one shard's batch to a terminal status.
    async fn wait_shard(&self, index: usize) -> Result<(), Error> {
        let batch_id = self
            .snapshot(index)?
            .batch_id
            .expect("filtered on a batch id");
        let mut save_error = None;
        let batch = self
            .client
            .wait_for_batch(&batch_id, &self.config.poll, |batch| {
                if let Err(err) = self.record_batch(index, batch) {
                    save_error.get_or_insert(err);
                }
                self.emit(&JobEvent::Changed {
                    shard: index,
                    batch,
                });
            })
            .await?;
        if let Some(err) = save_error {
            return Err(err);
        }
        self.record_batch(index, &batch)?;
        if batch.token_limit_exceeded() {
            self.emit(&JobEvent::TokenLimitExceeded {
                shard: index,
                batch: &batch,
            });
        }
        Ok(())
    }

    /// Downloads the files of one terminal shard that are not downloaded yet.
    async fn download_shard(&self, index: usize, dir: &Path) -> Result<(), Error> {
        let shard = self.snapshot(index)?;
        // The id names files: one edited by hand in the ledger must not lead out of `dir`.
        check_shard_id(&shard.id)?;
        let stem = &shard.id;
        let fetch_files = matches!(
            shard.status,
            Some(BatchStatus::Completed | BatchStatus::Expired | BatchStatus::Cancelled)
        );
        if fetch_files {
            if let (Some(file_id), None) = (&shard.output_file_id, &shard.output_path) {
                let path = dir.join(format!("{stem}_output.jsonl"));
                self.download_one(index, file_id, &path).await?;
                self.update(index, |shard| shard.output_path = Some(path.clone()))?;
            }
            if let (Some(file_id), None) = (&shard.error_file_id, &shard.error_path) {
                let path = dir.join(format!("{stem}_errors.jsonl"));
                self.download_one(index, file_id, &path).await?;
                self.update(index, |shard| shard.error_path = Some(path.clone()))?;
            }
        }
        self.update(index, |shard| shard.downloaded_at = Some(unix_now()))
    }

    async fn download_one(&self, index: usize, file_id: &FileId, path: &Path) -> Result<(), Error> {
        let reporter = Arc::new(DownloadReporter {
            shard: index,
            file_id: file_id.clone(),
            path: path.to_path_buf(),
            progress: Arc::clone(&self.progress),
        });
        let bytes = self
            .client
            .download_file_to(file_id, path, reporter)
            .await?;
        self.emit(&JobEvent::Downloaded {
            shard: index,
            path,
            bytes,
        });
        Ok(())
    }

    /// The job key and its value, when batches of the same job are to be taken over.
    fn job_identity(&self) -> Option<(&str, &str)> {
        let key = self.config.job_key.as_deref()?;
        let value = self.config.metadata.get(key)?;
        Some((key, value.as_str()))
    }

    /// The unfinished batches created in the last 48 hours whose metadata holds `value` under
    /// `key` and a shard hash: the ones a shard of this job may take over. One paged list,
    /// newest first, stopping at the first older batch.
    async fn adoptable_batches(&self, key: &str, value: &str) -> Result<Vec<Batch>, Error> {
        let cutoff = unix_now() - ADOPT_WINDOW_SECS;
        let batches = self.client.list_batches(Some(100));
        futures::pin_mut!(batches);
        let mut adoptable = Vec::new();
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            if batch.created_at < cutoff {
                break;
            }
            let unfinished = matches!(
                batch.status,
                BatchStatus::Validating | BatchStatus::InProgress | BatchStatus::Finalizing
            );
            if unfinished
                && batch.metadata_value(key) == Some(value)
                && batch.metadata_value(SHARD_SHA256_KEY).is_some()
            {
                adoptable.push(batch);
            }
        }
        Ok(adoptable)
    }

    /// Records, for shard `index`, the first of `adoptable` with the shard's hash that no shard
    /// of the ledger holds yet. Choosing and recording happen under one lock, so two shards of
    /// the same content never take the same batch.
    fn adopt(&self, index: usize, adoptable: &[Batch]) -> Result<Option<Batch>, Error> {
        if adoptable.is_empty() {
            return Ok(None);
        }
        let mut ledger = self.lock();
        let shard = ledger.shard(index)?;
        if shard.batch_id.is_some() || shard.create_requested_at.is_some() {
            return Ok(None);
        }
        let name = metadata_name(&shard.id);
        let found = adoptable.iter().find(|batch| {
            let same_content =
                batch.metadata_value(SHARD_SHA256_KEY) == Some(shard.sha256.as_str());
            // A batch of this very ledger belongs to the shard it names, never to another.
            let ours = batch.metadata_value(RUN_ID_KEY) == Some(ledger.run_id.as_str());
            let other_shard_of_ours =
                ours && batch.metadata_value(SHARD_KEY) != Some(name.as_str());
            let recorded = ledger
                .shards
                .iter()
                .any(|other| other.batch_id.as_ref() == Some(&batch.id));
            same_content && !other_shard_of_ours && !recorded
        });
        let Some(batch) = found.cloned() else {
            return Ok(None);
        };
        let shard = ledger.shard_mut(index)?;
        shard.input_file_id = Some(batch.input_file_id.clone());
        shard.batch_id = Some(batch.id.clone());
        shard.status = Some(batch.status);
        shard.counts = batch.request_counts;
        shard.updated_at = unix_now();
        ledger.save(&self.ledger_path)?;
        Ok(Some(batch))
    }

    /// The metadata of a shard's batch.
    fn metadata(&self, shard: &ShardRecord) -> BTreeMap<String, String> {
        let mut metadata = self.config.metadata.clone();
        metadata.insert(RUN_ID_KEY.to_owned(), self.run_id());
        metadata.insert(SHARD_KEY.to_owned(), metadata_name(&shard.id));
        metadata.insert(SHARD_SHA256_KEY.to_owned(), shard.sha256.clone());
        metadata.insert(ATTEMPT_KEY.to_owned(), shard.attempt.to_string());
        metadata
    }

    /// Records what a retrieved batch says.
    fn record_batch(&self, index: usize, batch: &Batch) -> Result<(), Error> {
        self.update(index, |shard| {
            shard.batch_id = Some(batch.id.clone());
            shard.status = Some(batch.status);
            shard.counts = batch.request_counts;
            if batch.status.is_terminal() {
                shard.terminal_at.get_or_insert_with(unix_now);
                shard.output_file_id = batch.output_file_id.clone();
                shard.error_file_id = batch.error_file_id.clone();
                shard.errors = batch
                    .errors
                    .as_ref()
                    .map(|errors| errors.data.clone())
                    .unwrap_or_default();
            }
        })
    }

    /// Runs `step` for every index, `concurrency` at a time; returns the first failure.
    async fn for_each<F, Fut>(&self, indices: Vec<usize>, step: F) -> Result<(), Error>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<(), Error>>,
    {
        let results: Vec<(usize, Result<(), Error>)> = futures::stream::iter(indices)
            .map(|index| {
                let step = &step;
                async move { (index, step(index).await) }
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut failures: Vec<(usize, Error)> = results
            .into_iter()
            .filter_map(|(index, result)| result.err().map(|err| (index, err)))
            .collect();
        failures.sort_by_key(|(index, _)| *index);
        let mut first = None;
        for (index, error) in failures {
            let error = self.shard_failure(index, error);
            first.get_or_insert(error);
        }
        first.map_or(Ok(()), Err)
    }

    /// Reports a shard's failure and wraps it with the shard's id, file and batch.
    fn shard_failure(&self, index: usize, error: Error) -> Error {
        self.emit(&JobEvent::ShardFailed {
            shard: index,
            error: &error,
        });
        match self.snapshot(index) {
            Ok(shard) => Error::Shard {
                index,
                id: shard.id,
                path: shard.input_path,
                batch_id: shard.batch_id,
                source: Box::new(error),
            },
            Err(unknown) => unknown,
        }
    }

    /// Changes one shard and writes the ledger.
    fn update(&self, index: usize, change: impl FnOnce(&mut ShardRecord)) -> Result<(), Error> {
        let mut ledger = self.lock();
        let shard = ledger.shard_mut(index)?;
        change(shard);
        shard.updated_at = unix_now();
        ledger.save(&self.ledger_path)
    }

    fn snapshot(&self, index: usize) -> Result<ShardRecord, Error> {
        self.lock().shard(index).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // A panic while holding the lock cannot leave the ledger half-changed on disk, since
        // it is saved whole; keep going with the in-memory state.
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn emit(&self, event: &JobEvent<'_>) {
        self.progress.on_event(event);
    }
}

/// The metadata keys the runner sets itself.
const RUNNER_KEYS: [&str; 4] = [RUN_ID_KEY, SHARD_KEY, SHARD_SHA256_KEY, ATTEMPT_KEY];

/// A shard id's value in the batch metadata: its first 512 characters.
fn metadata_name(id: &str) -> String {
    id.chars().take(512).collect()
}

/// Refuses an id that cannot name a file safely (see [`ShardInput`]).
fn check_shard_id(id: &str) -> Result<(), Error> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.len() > MAX_SHARD_ID_LEN {
        "it is longer than 200 characters"
    } else if id.starts_with('.') {
        "it starts with `.`"
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        "only ASCII letters, digits, `-`, `_` and `.` are allowed"
    } else {
        return Ok(());
    };
    Err(Error::InvalidShardId {
        id: id.to_owned(),
        reason,
    })
}

/// Refuses a job key that cannot identify the job.
fn check_config(config: &JobConfig) -> Result<(), Error> {
    if let Some(seconds) = config.input_expires_after {
        crate::files::check_expiry(seconds)?;
    }
    let Some(key) = &config.job_key else {
        return Ok(());
    };
    let reason = if RUNNER_KEYS.contains(&key.as_str()) {
        "the runner sets this metadata key itself"
    } else {
        match config.metadata.get(key) {
            None => "it is not a key of the job's metadata",
            Some(value) if value.is_empty() => "its value in the job's metadata is empty",
            Some(_) => return Ok(()),
        }
    };
    Err(Error::InvalidJobKey {
        key: key.clone(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;

    #[test]
    fn shard_ids_must_be_safe_file_names() {
        let check = |id: &str, reason: Option<&str>| {
            let found = match check_shard_id(id) {
                Ok(()) => None,
                Err(Error::InvalidShardId { id: bad, reason }) => {
                    assert_eq!(bad, id);
                    Some(reason)
                }
                Err(err) => panic!("unexpected error {err:?}"),
            };
            assert_eq!(found, reason, "{id:?}");
        };
        check("r01-001", None);
        check("job_input_001.jsonl", None);
        check(&"a".repeat(200), None);
        check("", Some("it is empty"));
        check(&"a".repeat(201), Some("it is longer than 200 characters"));
        check("..", Some("it starts with `.`"));
        check(".hidden", Some("it starts with `.`"));
        let only = Some("only ASCII letters, digits, `-`, `_` and `.` are allowed");
        check("../up", Some("it starts with `.`"));
        check("a/b", only);
        check("a\\b", only);
        check("a b", only);
        check("é", only);
    }

    #[test]
    fn a_job_key_must_name_a_non_empty_metadata_value_the_runner_does_not_set() {
        let check = |key: &str, reason: Option<&str>| {
            let config = JobConfig {
                metadata: BTreeMap::from([
                    ("job_id".to_owned(), "demo-1".to_owned()),
                    ("empty".to_owned(), String::new()),
                    (RUN_ID_KEY.to_owned(), "x".to_owned()),
                ]),
                job_key: Some(key.to_owned()),
                ..JobConfig::default()
            };
            let found = match check_config(&config) {
                Ok(()) => None,
                Err(Error::InvalidJobKey { key: bad, reason }) => {
                    assert_eq!(bad, key);
                    Some(reason)
                }
                Err(err) => panic!("unexpected error {err:?}"),
            };
            assert_eq!(found, reason, "{key}");
        };
        check("job_id", None);
        check("other", Some("it is not a key of the job's metadata"));
        check("empty", Some("its value in the job's metadata is empty"));
        for key in RUNNER_KEYS {
            check(key, Some("the runner sets this metadata key itself"));
        }
        assert!(check_config(&JobConfig::default()).is_ok());
    }

    #[tokio::test]
    async fn a_relative_shard_path_is_recorded_absolute() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing is sent: registering only hashes the file.
        let client =
            Client::new(ClientConfig::new("http://127.0.0.1:9", "sk-test".into())).unwrap();
        let runner =
            JobRunner::new(client, dir.path().join("job.json"), JobConfig::default()).unwrap();
        // The tests run in the package directory, which holds this file.
        let input = ShardInput::new("manifest", "Cargo.toml");

        let indices = runner.register(std::slice::from_ref(&input)).await.unwrap();

        assert_eq!(indices, [0]);
        let shard = &runner.shards()[0];
        assert!(shard.input_path.is_absolute());
        assert_eq!(shard.input_path, std::path::absolute("Cargo.toml").unwrap());
        assert_eq!(Ledger::load(runner.ledger_path()).unwrap(), runner.ledger());
        // The same id again is the same shard.
        assert_eq!(runner.register(&[input]).await.unwrap(), [0]);
        assert_eq!(runner.shards().len(), 1);
    }
}
