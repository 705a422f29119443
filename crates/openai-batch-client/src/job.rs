//! The job runner: drives shard files through upload, create, poll and download, idempotently,
//! recording every intent and result in the [`Ledger`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;

use crate::batches::{CreateBatchRequest, RUN_ID_KEY, unix_now};
use crate::client::Client;
use crate::error::{ApiErrorKind, Error};
use crate::ledger::{Ledger, ShardRecord, sha256_file};
use crate::poll::PollConfig;
use crate::progress::{DownloadReporter, JobEvent, JobProgress, UploadReporter};
use crate::types::{Batch, BatchStatus, FileId};

/// Metadata key of the shard's file name.
pub const SHARD_KEY: &str = "shard";
/// Metadata key of the shard's SHA-256.
pub const SHARD_SHA256_KEY: &str = "shard_sha256";
/// Metadata key of the batch attempt of a shard (starts at `1`).
pub const ATTEMPT_KEY: &str = "attempt";

/// How far back (seconds) before a recorded create intent a lost batch is searched for.
const LOOKUP_SLACK_SECS: i64 = 3600;

/// What every batch of a job is created with, and how the runner paces itself.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// The endpoint of the request lines (default `/v1/chat/completions`).
    pub endpoint: String,
    /// Extra metadata for every batch (at most 12 pairs: the runner adds `run_id`, `shard`,
    /// `shard_sha256` and `attempt`).
    pub metadata: BTreeMap<String, String>,
    /// How many shards are uploaded, created, polled or downloaded at the same time (default 4).
    pub concurrency: usize,
    /// Polling pace.
    pub poll: PollConfig,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            endpoint: "/v1/chat/completions".to_owned(),
            metadata: BTreeMap::new(),
            concurrency: 4,
            poll: PollConfig::default(),
        }
    }
}

/// Drives the shards of one job, recorded in one ledger file.
///
/// Every method can be interrupted (the process killed, the future dropped) and called again
/// on a runner built from the same ledger: finished steps are never repeated. An upload whose
/// file id was not recorded is uploaded again (that costs nothing); a create whose batch id
/// was not recorded is first looked for by its metadata (`run_id`, `shard`, `shard_sha256`,
/// `attempt`); a recorded file id that has vanished (404) is uploaded again.
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
/// use openai_batch_client::{Client, JobConfig, JobRunner};
///
/// let client = Client::new(config)?;
/// let runner = JobRunner::new(client, work.path().join("job.ledger.json"), JobConfig::default())?;
/// runner.submit(&[shard]).await?; // Uploads and creates; returns without waiting.
/// runner.wait().await?; // Another process could attach with `JobRunner::open` instead.
/// runner.download(&work.path().join("results")).await?;
/// for shard in runner.ready() {
///     let output = shard.output_path.as_deref().expect("completed with an output file");
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
    /// As [`Ledger::load_or_create`].
    pub fn new(
        client: Client,
        ledger_path: impl Into<PathBuf>,
        config: JobConfig,
    ) -> Result<JobRunner, Error> {
        let ledger_path = ledger_path.into();
        let ledger = Ledger::load_or_create(&ledger_path)?;
        Ok(JobRunner::with_ledger(client, ledger_path, ledger, config))
    }

    /// A runner on an existing ledger, to attach to a job submitted earlier.
    ///
    /// # Errors
    ///
    /// As [`Ledger::load`]; a missing ledger is [`Error::Io`].
    pub fn open(
        client: Client,
        ledger_path: impl Into<PathBuf>,
        config: JobConfig,
    ) -> Result<JobRunner, Error> {
        let ledger_path = ledger_path.into();
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

    /// The ledger file.
    pub fn ledger_path(&self) -> &Path {
        &self.ledger_path
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
                shard.attempt += 1;
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

    /// Registers `paths` as shards (hashing each; a path already in the ledger is kept), then
    /// uploads and creates a batch for every shard of the ledger that has none, without
    /// waiting for the batches. Returns the indices of `paths`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a shard cannot be read, [`Error::ShardChanged`] when an uploaded
    /// shard's content changed, [`Error::Shard`] for the first shard whose upload or create
    /// failed.
    pub async fn submit(&self, paths: &[PathBuf]) -> Result<Vec<usize>, Error> {
        let indices = self.register(paths).await?;
        let pending: Vec<usize> = self
            .lock()
            .shards
            .iter()
            .filter(|shard| shard.batch_id.is_none())
            .map(|shard| shard.index)
            .collect();
        self.for_each(pending, |index| self.submit_shard(index))
            .await?;
        Ok(indices)
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
    /// `<shard stem>_output.jsonl` and `<shard stem>_errors.jsonl`: output and error files of
    /// completed batches when present, the partial output and the error file of expired and
    /// cancelled ones, nothing for failed ones.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `dir` cannot be created, [`Error::Shard`] for the first shard
    /// whose download failed.
    pub async fn download(&self, dir: &Path) -> Result<(), Error> {
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
    pub async fn run(&self, paths: &[PathBuf], dir: &Path) -> Result<(), Error> {
        self.submit(paths).await?;
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

    /// Hashes `paths` and adds those not yet in the ledger.
    async fn register(&self, paths: &[PathBuf]) -> Result<Vec<usize>, Error> {
        let mut indices = Vec::with_capacity(paths.len());
        for path in paths {
            let (sha256, bytes) = sha256_file(path).await?;
            let mut ledger = self.lock();
            let existing = ledger
                .shards
                .iter()
                .position(|shard| shard.input_path == *path);
            let index = match existing {
                Some(index) => {
                    let shard = &mut ledger.shards[index];
                    if shard.sha256 != sha256 {
                        if shard.input_file_id.is_some() || shard.upload_requested_at.is_some() {
                            return Err(Error::ShardChanged {
                                path: path.clone(),
                                recorded: shard.sha256.clone(),
                                found: sha256,
                            });
                        }
                        shard.sha256 = sha256;
                        shard.bytes = bytes;
                    }
                    index
                }
                None => {
                    let index = ledger.shards.len();
                    ledger
                        .shards
                        .push(ShardRecord::new(index, path.clone(), sha256, bytes));
                    index
                }
            };
            ledger.save(&self.ledger_path)?;
            indices.push(index);
        }
        Ok(indices)
    }

    /// Upload (unless done) and create (unless done) for one shard.
    async fn submit_shard(&self, index: usize) -> Result<(), Error> {
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
                    tracing::warn!(%file_id, shard = index, "uploaded file is gone, uploading again");
                }
                Err(err) => return Err(err),
            }
        }
        let (sha256, _) = sha256_file(&shard.input_path).await?;
        if sha256 != shard.sha256 {
            return Err(Error::ShardChanged {
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
        let file = self.client.upload_file(&shard.input_path, reporter).await?;
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
        let stem = self.download_stem(&shard);
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

    /// The stem of a shard's download names: the input file's stem, plus the index when
    /// another shard has the same stem.
    fn download_stem(&self, shard: &ShardRecord) -> String {
        let stem_of = |shard: &ShardRecord| {
            shard
                .input_path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("shard-{}", shard.index))
        };
        let stem = stem_of(shard);
        let clash = self
            .lock()
            .shards
            .iter()
            .any(|other| other.index != shard.index && stem_of(other) == stem);
        if clash {
            format!("{stem}-{}", shard.index)
        } else {
            stem
        }
    }

    /// The metadata of a shard's batch.
    fn metadata(&self, shard: &ShardRecord) -> BTreeMap<String, String> {
        let mut metadata = self.config.metadata.clone();
        let name: String = shard.name().chars().take(512).collect();
        metadata.insert(RUN_ID_KEY.to_owned(), self.run_id());
        metadata.insert(SHARD_KEY.to_owned(), name);
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
            self.emit(&JobEvent::ShardFailed {
                shard: index,
                error: &error,
            });
            if first.is_none() {
                let shard = self.snapshot(index)?;
                first = Some(Error::Shard {
                    index,
                    path: shard.input_path,
                    batch_id: shard.batch_id,
                    source: Box::new(error),
                });
            }
        }
        first.map_or(Ok(()), Err)
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
