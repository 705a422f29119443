//! The job's shards through Anthropic's Message Batches API, kept in the same ledger as
//! OpenAI's.
//!
//! There are no files to upload: a shard's request lines are read, turned into Messages API
//! parameters ([`super::params`]) and sent inline in the create call. The ledger records the
//! intent before the create and the batch after it. Anthropic's batches carry no metadata and
//! the API has no idempotency key, so a create whose answer was lost (a crash, a timeout, a
//! broken connection) is looked for before creating again: a batch created since the intent,
//! with the shard's number of requests, that no shard of the ledger holds yet.
//!
//! A run that lost its ledger (or uses another work dir) would not know the batches created
//! before. So every batch is also recorded in the output directory, which identifies the job
//! ([`JobPaths::sent_batches`](crate::JobPaths::sent_batches)), with the hash of its shard,
//! until its lessons are written; a shard of the same hash takes that batch over instead of
//! creating another, whether it is still running or has ended with results not yet written.
//!
//! In the ledger a message batch is shown in the Batch API's terms ([`batch_view`]):
//! `in_progress`, `cancelling`, and once ended `completed`, `cancelled` (a cancel was asked
//! for) or `expired` (nothing ran before the 24 hours passed); succeeded requests count as
//! completed, errored, canceled and expired ones as failed. The results go to
//! `<shard>_results.jsonl` beside the shard, as the server sent them.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anthropic_batch_client::{
    ApiErrorKind, BatchRequest, Client, MessageBatch, MessageBatchId, ProcessingStatus,
};
use futures::StreamExt;
use openai_batch_client::{
    Batch, BatchError, BatchId, BatchStatus, FileId, JobEvent, JobProgress, Ledger, PollConfig,
    RequestCounts, ShardInput, ShardRecord,
};

use super::BatchProvider;
use crate::Error;

/// How far before a lost create's recorded intent a batch may have been created and still be
/// taken for it (clocks of this machine and the server differ).
const CLOCK_SKEW_SECS: i64 = 300;

/// How long after a lost create's intent its batch may have been created: the call's own
/// time with its retries, plus the clock skew. A batch made later is another run's (another
/// course's, perhaps), never taken for a lost create.
const CREATE_WINDOW_SECS: i64 = 900 + CLOCK_SKEW_SECS;

/// The largest shard of an Anthropic job (32 MiB). A message batch's requests go inline in
/// its create call, which holds them in memory while it is sent (Anthropic allows 256 MB): a
/// course larger than this goes in several batches, and memory stays bounded.
pub(crate) const MAX_SHARD_BYTES: u64 = 32 * 1024 * 1024;

/// Drives a job's shards through the Message Batches API, recording every step in the ledger.
pub(crate) struct AnthropicRunner {
    client: Client,
    ledger_path: PathBuf,
    /// The output directory's record of batches not written yet; `None` for a runner that
    /// only cleans up.
    sent_path: Option<PathBuf>,
    ledger: Mutex<Ledger>,
    poll: PollConfig,
    progress: Arc<dyn JobProgress>,
}

impl AnthropicRunner {
    /// Opens (or starts) the ledger at `ledger_path`; `sent_path` is the output directory's
    /// record of batches not written yet.
    pub(crate) fn new(
        client: Client,
        ledger_path: PathBuf,
        sent_path: Option<PathBuf>,
        poll: PollConfig,
        progress: Arc<dyn JobProgress>,
    ) -> Result<AnthropicRunner, Error> {
        let ledger = Ledger::load_or_create(&ledger_path)?;
        Ok(AnthropicRunner {
            client,
            ledger_path,
            sent_path,
            ledger: Mutex::new(ledger),
            poll,
            progress,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // The ledger is saved whole, so a panic while it was held left nothing half-written.
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the ledger and saves it before the change is kept in memory.
    fn update(&self, change: impl FnOnce(&mut Ledger)) -> Result<(), Error> {
        let mut ledger = self.lock();
        let mut changed = ledger.clone();
        change(&mut changed);
        changed.save(&self.ledger_path)?;
        *ledger = changed;
        Ok(())
    }

    fn update_shard(
        &self,
        index: usize,
        change: impl FnOnce(&mut ShardRecord),
    ) -> Result<(), Error> {
        let mut result = Ok(());
        self.update(|ledger| match ledger.shard_mut(index) {
            Ok(shard) => {
                change(shard);
                shard.updated_at = unix_now();
            }
            Err(err) => result = Err(err),
        })?;
        Ok(result?)
    }

    fn record(&self, index: usize) -> Result<ShardRecord, Error> {
        Ok(self.lock().shard(index)?.clone())
    }

    /// Adds the shards the ledger does not know yet (matched by id).
    async fn register(&self, shards: &[ShardInput]) -> Result<(), Error> {
        for input in shards {
            if self.lock().shard_by_id(&input.id).is_some() {
                continue;
            }
            let (sha256, bytes) = openai_batch_client::sha256_file(&input.path).await?;
            self.update(|ledger| {
                let index = ledger.shards.len();
                let mut record =
                    ShardRecord::new(index, input.id.clone(), input.path.clone(), sha256, bytes);
                if let Some((model, tokens)) = &input.enqueued {
                    record.model = Some(model.clone());
                    record.input_tokens = Some(*tokens);
                }
                ledger.shards.push(record);
            })?;
        }
        Ok(())
    }

    /// Creates the batch of every shard that has none.
    async fn create_missing(&self) -> Result<(), Error> {
        let pending: Vec<usize> = self
            .lock()
            .shards
            .iter()
            .filter(|shard| !shard.handed_on && shard.batch_id.is_none())
            .map(|shard| shard.index)
            .collect();
        for index in pending {
            self.create(index).await?;
        }
        Ok(())
    }

    async fn create(&self, index: usize) -> Result<(), Error> {
        let record = self.record(index)?;
        let requests = read_batch_requests(&record.input_path)?;
        if let Some(requested_at) = record.create_requested_at
            && let Some(batch) = self.find_lost(requested_at, requests.len()).await?
        {
            return self.adopt(index, &batch);
        }
        if let Some(batch) = self.find_sent(&record).await? {
            self.record_batch(index, &batch)?;
            self.progress.on_event(&JobEvent::Adopted {
                shard: index,
                batch: &batch_view(&batch),
            });
            return Ok(());
        }
        self.update_shard(index, |shard| shard.create_requested_at = Some(unix_now()))?;
        let requested_at = unix_now();
        match self.client.create_batch(&requests).await {
            Ok(batch) => {
                self.record_batch(index, &batch)?;
                self.remember_sent(&record, &batch)?;
                self.progress.on_event(&JobEvent::Created {
                    shard: index,
                    batch: &batch_view(&batch),
                });
                Ok(())
            }
            Err(err) if err.is_ambiguous() => {
                // The batch may exist: take it if it is listed; else keep the intent, so the
                // next run looks again before creating.
                match self.find_lost(requested_at, requests.len()).await {
                    Ok(Some(batch)) => self.adopt(index, &batch),
                    _ => Err(err.into()),
                }
            }
            Err(err) => {
                // Refused: no batch was made; the next attempt starts clean.
                self.update_shard(index, |shard| shard.create_requested_at = None)?;
                Err(err.into())
            }
        }
    }

    /// A batch created within the window of a create asked for at `requested_at` (from the
    /// clock skew before it to [`CREATE_WINDOW_SECS`] after it) with `requests` requests that
    /// no shard of the ledger holds.
    async fn find_lost(
        &self,
        requested_at: i64,
        requests: usize,
    ) -> Result<Option<MessageBatch>, Error> {
        let known: Vec<String> = {
            let ledger = self.lock();
            ledger
                .shards
                .iter()
                .flat_map(|shard| {
                    shard
                        .attempts
                        .iter()
                        .filter_map(|attempt| attempt.batch_id.as_ref())
                        .chain(shard.batch_id.as_ref())
                        .map(|id| id.0.clone())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let mut batches = std::pin::pin!(self.client.list_batches(Some(100)));
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            // Newest first: past the window, nothing older can be ours.
            if batch.created_at.timestamp() < requested_at - CLOCK_SKEW_SECS {
                break;
            }
            let created_at = batch.created_at.timestamp();
            if created_at <= requested_at + CREATE_WINDOW_SECS
                && batch.request_counts.total() == requests as u64
                && !known.contains(&batch.id.0)
            {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    fn adopt(&self, index: usize, batch: &MessageBatch) -> Result<(), Error> {
        self.record_batch(index, batch)?;
        self.remember_sent(&self.record(index)?, batch)?;
        self.progress.on_event(&JobEvent::Recovered {
            shard: index,
            batch: &batch_view(batch),
        });
        Ok(())
    }

    fn record_batch(&self, index: usize, batch: &MessageBatch) -> Result<(), Error> {
        let view = batch_view(batch);
        self.update_shard(index, |shard| {
            shard.batch_id = Some(view.id.clone());
            shard.status = Some(view.status);
            shard.counts = view.request_counts;
            if view.status.is_terminal() && shard.terminal_at.is_none() {
                shard.terminal_at = Some(unix_now());
            }
        })
    }

    /// Looks at every unfinished shard once: retrieves its batch, and downloads the results
    /// of one that has ended. Returns whether anything changed and how many are unfinished.
    async fn poll_once(&self, dir: &Path) -> Result<(bool, usize), Error> {
        let unfinished: Vec<ShardRecord> = self
            .lock()
            .shards
            .iter()
            .filter(|shard| !shard.handed_on && shard.downloaded_at.is_none())
            .cloned()
            .collect();
        let mut changed = false;
        let mut left = 0;
        for shard in unfinished {
            let Some(batch_id) = &shard.batch_id else {
                // Its create failed in an earlier pass: try again, looking for a lost one first.
                self.create(shard.index).await?;
                changed = true;
                left += 1;
                continue;
            };
            let batch = self
                .client
                .retrieve_batch(&MessageBatchId(batch_id.0.clone()))
                .await?;
            let view = batch_view(&batch);
            if shard.status != Some(view.status) || shard.counts != view.request_counts {
                changed = true;
                self.record_batch(shard.index, &batch)?;
                self.progress.on_event(&JobEvent::Changed {
                    shard: shard.index,
                    batch: &view,
                });
            }
            if batch.processing_status != ProcessingStatus::Ended {
                left += 1;
                continue;
            }
            changed = true;
            self.download(&shard, &batch, dir).await?;
        }
        Ok((changed, left))
    }

    async fn download(
        &self,
        shard: &ShardRecord,
        batch: &MessageBatch,
        dir: &Path,
    ) -> Result<(), Error> {
        let path = dir.join(format!("{}_results.jsonl", shard.id));
        let gone = |shard: &mut ShardRecord, message: &str| {
            // Nothing can be read: the lessons are missing, and the job sends them again.
            shard.status = Some(BatchStatus::Expired);
            shard.errors = vec![BatchError {
                code: Some("results_expired".to_owned()),
                message: Some(message.to_owned()),
                param: None,
                line: None,
            }];
            shard.downloaded_at = Some(unix_now());
        };
        if batch.archived_at.is_some() {
            return self.update_shard(shard.index, |shard| {
                gone(
                    shard,
                    "the batch's results were archived (29 days after creation)",
                );
            });
        }
        let file_id = FileId(batch.id.0.clone());
        self.progress.on_event(&JobEvent::DownloadStarted {
            shard: shard.index,
            file_id: &file_id,
            path: &path,
            total: None,
        });
        match self.client.download_results_to(batch, &path).await {
            Ok(bytes) => {
                self.progress.on_event(&JobEvent::Downloaded {
                    shard: shard.index,
                    path: &path,
                    bytes,
                });
                self.update_shard(shard.index, |shard| {
                    shard.output_path = Some(path.clone());
                    shard.downloaded_at = Some(unix_now());
                })
            }
            Err(err) if err.api_kind() == Some(ApiErrorKind::NotFound) => {
                self.update_shard(shard.index, |shard| {
                    gone(shard, "the batch's results are no longer available");
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// A batch of the output directory's record made from a shard of the same content, that
    /// no shard of the ledger holds: created by a run whose ledger was lost, or that used
    /// another work dir. One whose results are gone is dropped from the record.
    async fn find_sent(&self, record: &ShardRecord) -> Result<Option<MessageBatch>, Error> {
        let Some(path) = &self.sent_path else {
            return Ok(None);
        };
        let mut sent = SentBatches::load(path)?;
        let known: Vec<String> = self
            .lock()
            .shards
            .iter()
            .filter_map(|shard| shard.batch_id.as_ref().map(|id| id.0.clone()))
            .collect();
        let candidates: Vec<String> = sent
            .batches
            .iter()
            .filter(|batch| batch.shard_sha256 == record.sha256 && !known.contains(&batch.batch_id))
            .map(|batch| batch.batch_id.clone())
            .collect();
        for id in candidates {
            match self
                .client
                .retrieve_batch(&MessageBatchId(id.clone()))
                .await
            {
                Ok(batch) if batch.archived_at.is_none() => return Ok(Some(batch)),
                Ok(_) => {}
                Err(err) if err.api_kind() == Some(ApiErrorKind::NotFound) => {}
                Err(err) => return Err(err.into()),
            }
            sent.batches.retain(|batch| batch.batch_id != id);
            sent.save(path)?;
        }
        Ok(None)
    }

    /// Adds a created or adopted batch to the output directory's record.
    fn remember_sent(&self, record: &ShardRecord, batch: &MessageBatch) -> Result<(), Error> {
        let Some(path) = &self.sent_path else {
            return Ok(());
        };
        let mut sent = SentBatches::load(path)?;
        if sent
            .batches
            .iter()
            .any(|known| known.batch_id == batch.id.0)
        {
            return Ok(());
        }
        sent.batches.push(SentBatch {
            batch_id: batch.id.0.clone(),
            shard_sha256: record.sha256.clone(),
            requests: batch.request_counts.total(),
            created_at: batch.created_at.timestamp(),
        });
        sent.save(path)
    }

    fn queue_event(&self) {
        let ledger = self.lock();
        let live = ledger.shards.iter().filter(|shard| !shard.handed_on);
        let (mut done, mut running, mut waiting) = (0, 0, 0);
        for shard in live {
            if shard.downloaded_at.is_some() {
                done += 1;
            } else if shard.batch_id.is_some() {
                running += 1;
            } else {
                waiting += 1;
            }
        }
        drop(ledger);
        self.progress.on_event(&JobEvent::Queue {
            done,
            running,
            waiting,
        });
    }
}

impl BatchProvider for AnthropicRunner {
    fn set_context(
        &self,
        context: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Error> {
        self.update(|ledger| ledger.context = context)
    }

    async fn submit(&self, shards: &[ShardInput]) -> Result<(), Error> {
        self.register(shards).await?;
        self.create_missing().await
    }

    async fn drive(&self, shards: &[ShardInput], dir: &Path) -> Result<(), Error> {
        self.submit(shards).await?;
        let mut interval = self.poll.initial_interval;
        let mut failures = 0;
        loop {
            self.queue_event();
            match self.poll_once(dir).await {
                Ok((_, 0)) => break,
                Ok((changed, _)) => {
                    failures = 0;
                    interval = if changed {
                        self.poll.initial_interval
                    } else {
                        self.poll.next_interval(interval, false)
                    };
                }
                Err(Error::Anthropic(err))
                    if err.is_retryable() && failures < self.poll.max_failures =>
                {
                    failures += 1;
                    tracing::warn!(%err, failures, "polling the message batches failed; trying again");
                }
                Err(err) => return Err(err),
            }
            tokio::time::sleep(interval.max(Duration::from_millis(10))).await;
        }
        self.queue_event();
        Ok(())
    }

    fn ready(&self) -> Vec<ShardRecord> {
        self.lock()
            .shards
            .iter()
            .filter(|shard| !shard.handed_on && shard.downloaded_at.is_some())
            .cloned()
            .collect()
    }

    fn mark_handed_on(&self, index: usize) -> Result<(), Error> {
        self.update_shard(index, |shard| shard.handed_on = true)?;
        if let (Some(batch_id), Some(path)) = (self.record(index)?.batch_id, &self.sent_path) {
            let mut sent = SentBatches::load(path)?;
            sent.batches.retain(|batch| batch.batch_id != batch_id.0);
            sent.save(path)?;
        }
        Ok(())
    }

    /// There are no uploaded files; unless `keep_results`, the ended batch is deleted, which
    /// removes its results from Anthropic's servers (they would go 29 days after creation).
    async fn clean_up(&self, index: usize, keep_results: bool) -> Result<(), Error> {
        let shard = self.record(index)?;
        if keep_results || shard.result_files_deleted {
            return Ok(());
        }
        let Some(batch_id) = &shard.batch_id else {
            return Ok(());
        };
        match self
            .client
            .delete_batch(&MessageBatchId(batch_id.0.clone()))
            .await
        {
            Ok(_) => {}
            Err(err) if err.api_kind() == Some(ApiErrorKind::NotFound) => {}
            Err(err) => return Err(err.into()),
        }
        self.update_shard(index, |shard| {
            shard.input_file_deleted = true;
            shard.result_files_deleted = true;
        })?;
        self.progress.on_event(&JobEvent::RemoteFilesDeleted {
            shard: index,
            files: 1,
        });
        Ok(())
    }

    fn shards(&self) -> Vec<ShardRecord> {
        self.lock().shards.clone()
    }
}

/// The output directory's record of message batches whose lessons are not written yet.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct SentBatches {
    batches: Vec<SentBatch>,
}

/// One message batch of [`SentBatches`].
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SentBatch {
    batch_id: String,
    /// SHA-256 of the shard it was made from.
    shard_sha256: String,
    requests: u64,
    /// Unix seconds.
    created_at: i64,
}

impl SentBatches {
    fn load(path: &Path) -> Result<SentBatches, Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| Error::JobFile {
                path: path.to_path_buf(),
                line: err.line() as u64,
                problem: format!(
                    "{err}; it records message batches not written yet: fix it, or remove it \
                     if no run of this job has unfinished batches"
                ),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(SentBatches::default()),
            Err(source) => Err(Error::io("read", path, source)),
        }
    }

    /// Written atomically; removed when empty.
    fn save(&self, path: &Path) -> Result<(), Error> {
        if self.batches.is_empty() {
            return match std::fs::remove_file(path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io("remove", path, err))
                }
                _ => Ok(()),
            };
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            let mut temp = tempfile::Builder::new()
                .prefix(lesson_writer::TEMP_PREFIX)
                .suffix(".tmp")
                .tempfile_in(dir)?;
            std::io::Write::write_all(&mut temp, &json)?;
            temp.as_file().sync_all()?;
            temp.persist(path).map_err(|err| err.error)?;
            Ok(())
        };
        write().map_err(|source| Error::io("write", path, source))
    }
}

/// A shard's request lines as Anthropic batch requests.
fn read_batch_requests(path: &Path) -> Result<Vec<BatchRequest>, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::io("read", path, source))?;
    batch_request::read_request_lines(BufReader::new(file))
        .map(|line| {
            let (_, line) = line?;
            super::params::batch_request(line)
        })
        .collect()
}

/// A message batch in the Batch API's terms: status (`in_progress`, `cancelling`, and once
/// ended `completed`, `cancelled` or `expired`) and counts (succeeded requests completed, the
/// others failed), as the ledger, the job's events and the `--list` table show batches.
/// Exported as `lesson_job::message_batch_view`.
pub fn batch_view(batch: &MessageBatch) -> Batch {
    let counts = &batch.request_counts;
    let status = match batch.processing_status {
        ProcessingStatus::InProgress => BatchStatus::InProgress,
        ProcessingStatus::Canceling => BatchStatus::Cancelling,
        ProcessingStatus::Ended if batch.cancel_initiated_at.is_some() => BatchStatus::Cancelled,
        ProcessingStatus::Ended if counts.expired > 0 && counts.succeeded + counts.errored == 0 => {
            BatchStatus::Expired
        }
        ProcessingStatus::Ended => BatchStatus::Completed,
        _ => BatchStatus::Unknown,
    };
    let ended = batch.ended_at.map(|at| at.timestamp());
    Batch {
        id: BatchId(batch.id.0.clone()),
        object: "batch".to_owned(),
        endpoint: "/v1/messages".to_owned(),
        model: None,
        errors: None,
        input_file_id: FileId(String::new()),
        completion_window: "24h".to_owned(),
        status,
        output_file_id: None,
        error_file_id: None,
        created_at: batch.created_at.timestamp(),
        in_progress_at: Some(batch.created_at.timestamp()),
        expires_at: Some(batch.expires_at.timestamp()),
        finalizing_at: None,
        completed_at: ended.filter(|_| status == BatchStatus::Completed),
        failed_at: None,
        expired_at: ended.filter(|_| status == BatchStatus::Expired),
        cancelling_at: batch.cancel_initiated_at.map(|at| at.timestamp()),
        cancelled_at: ended.filter(|_| status == BatchStatus::Cancelled),
        request_counts: Some(RequestCounts {
            total: counts.total(),
            completed: counts.succeeded,
            failed: counts.errored + counts.canceled + counts.expired,
        }),
        usage: None,
        metadata: None,
        extra: BTreeMap::new(),
    }
}

fn unix_now() -> i64 {
    crate::unix_now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anthropic_batch_client::{ClientConfig, SecretString};
    use futures::TryStreamExt;

    /// A shard of `n` request lines in `dir`.
    fn shard(dir: &Path, name: &str, n: usize) -> ShardInput {
        let path = dir.join(format!("{name}.jsonl"));
        let lines: String = (1..=n)
            .map(|i| {
                format!(
                    r#"{{"custom_id":"lesson_M0-L{i:03}","method":"POST","url":"/v1/chat/completions","body":{{"model":"claude-haiku-4-5","messages":[{{"role":"system","content":"You write lessons."}},{{"role":"user","content":"Lesson {i}"}}],"max_completion_tokens":1000}}}}"#
                ) + "\n"
            })
            .collect();
        std::fs::write(&path, lines).unwrap();
        ShardInput::new(name, path)
    }

    fn client(emulator: &batch_emulator::Emulator) -> Client {
        Client::new(ClientConfig::new(
            emulator.anthropic_base_url(),
            SecretString::from("sk-ant-test".to_owned()),
        ))
        .unwrap()
    }

    fn runner(client: Client, dir: &Path, sent: Option<PathBuf>) -> AnthropicRunner {
        let poll = PollConfig {
            initial_interval: Duration::from_millis(20),
            max_interval: Duration::from_millis(50),
            ..PollConfig::default()
        };
        AnthropicRunner::new(client, dir.join("ledger.json"), sent, poll, Arc::new(())).unwrap()
    }

    async fn all_batches(client: &Client) -> Vec<MessageBatch> {
        client.list_batches(Some(100)).try_collect().await.unwrap()
    }

    /// A create whose answer was lost (the intent recorded, no batch id): the batch it made is
    /// found by the window and the request count, and no second one is created; a batch of
    /// another size is not taken for it.
    #[tokio::test]
    async fn a_lost_create_is_found_instead_of_creating_again() {
        let emulator = batch_emulator::Emulator::start(batch_emulator::EmulatorConfig::fast())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let client = client(&emulator);
        let input = shard(dir.path(), "r01_input_001", 3);
        let other = shard(dir.path(), "other", 2);
        // Another run's batch of another size, and the lost create's batch.
        client
            .create_batch(&read_batch_requests(&other.path).unwrap())
            .await
            .unwrap();
        let lost = client
            .create_batch(&read_batch_requests(&input.path).unwrap())
            .await
            .unwrap();
        let resumed = runner(client.clone(), dir.path(), None);
        resumed
            .register(std::slice::from_ref(&input))
            .await
            .unwrap();
        resumed
            .update_shard(0, |shard| shard.create_requested_at = Some(unix_now()))
            .unwrap();
        resumed.submit(std::slice::from_ref(&input)).await.unwrap();
        assert_eq!(resumed.shards()[0].batch_id.as_ref().unwrap().0, lost.id.0);
        assert_eq!(
            all_batches(&client).await.len(),
            2,
            "a second batch was created"
        );

        // A ledger that holds neither batch: with an intent of now the batch of three is
        // found; with an intent long before these batches, they were made by other runs,
        // after the window a lost create's batch is created in.
        let fresh_dir = dir.path().join("fresh");
        std::fs::create_dir_all(&fresh_dir).unwrap();
        let fresh = runner(client.clone(), &fresh_dir, None);
        let found = fresh.find_lost(unix_now(), 3).await.unwrap().unwrap();
        assert_eq!(found.id, lost.id);
        assert!(
            fresh
                .find_lost(unix_now() - 3 * CREATE_WINDOW_SECS, 3)
                .await
                .unwrap()
                .is_none(),
            "a batch created after the window is another run's"
        );
    }

    /// The output directory's record: a new ledger (lost, or another work dir) with a shard of
    /// the same content takes the running batch over; the record empties once handed on.
    #[tokio::test]
    async fn a_new_ledger_takes_over_the_recorded_batch_of_the_same_shard() {
        let mut config = batch_emulator::EmulatorConfig::fast();
        config.timing.per_request = Duration::from_millis(50);
        let emulator = batch_emulator::Emulator::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let client = client(&emulator);
        let sent = dir.path().join(".lesson-batch.sent.json");
        let input = shard(dir.path(), "r01_input_001", 3);
        let first = runner(client.clone(), dir.path(), Some(sent.clone()));
        first.submit(std::slice::from_ref(&input)).await.unwrap();
        let created = first.shards()[0].batch_id.clone().unwrap();
        assert!(sent.exists());

        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let second = runner(client.clone(), &elsewhere, Some(sent.clone()));
        second
            .drive(std::slice::from_ref(&input), &elsewhere)
            .await
            .unwrap();
        assert_eq!(second.shards()[0].batch_id.as_ref(), Some(&created));
        assert_eq!(all_batches(&client).await.len(), 1);
        let ready = second.ready();
        assert_eq!(ready.len(), 1);
        assert!(ready[0].output_path.as_ref().unwrap().exists());
        second.mark_handed_on(0).unwrap();
        assert!(
            !sent.exists(),
            "the record keeps only batches not written yet"
        );
    }

    #[test]
    fn a_message_batch_reads_as_the_batch_api_status() {
        let batch = |status: &str, cancel: bool, counts: [u64; 5]| -> MessageBatch {
            serde_json::from_value(serde_json::json!({
                "id": "msgbatch_1", "type": "message_batch", "processing_status": status,
                "request_counts": {"processing": counts[0], "succeeded": counts[1],
                    "errored": counts[2], "canceled": counts[3], "expired": counts[4]},
                "ended_at": null, "created_at": "2026-12-04T10:00:00Z",
                "expires_at": "2026-12-05T10:00:00Z", "archived_at": null,
                "cancel_initiated_at": if cancel { serde_json::json!("2026-12-04T10:05:00Z") } else { serde_json::Value::Null },
                "results_url": null
            }))
            .unwrap()
        };
        let view = batch_view(&batch("in_progress", false, [4, 0, 0, 0, 0]));
        assert_eq!(view.status, BatchStatus::InProgress);
        assert_eq!(view.request_counts.unwrap().total, 4);
        assert_eq!(
            batch_view(&batch("canceling", true, [2, 2, 0, 0, 0])).status,
            BatchStatus::Cancelling
        );
        let ended = batch_view(&batch("ended", false, [0, 2, 1, 0, 1]));
        assert_eq!(ended.status, BatchStatus::Completed);
        let counts = ended.request_counts.unwrap();
        assert_eq!((counts.total, counts.completed, counts.failed), (4, 2, 2));
        assert_eq!(
            batch_view(&batch("ended", true, [0, 1, 0, 3, 0])).status,
            BatchStatus::Cancelled
        );
        assert_eq!(
            batch_view(&batch("ended", false, [0, 0, 0, 0, 4])).status,
            BatchStatus::Expired
        );
    }
}

#[cfg(test)]
mod archived_tests {
    use super::*;
    use anthropic_batch_client::{ClientConfig, SecretString};

    /// Results archived (29 days after creation) cannot be downloaded: the shard is done with
    /// no results, its batch reads as expired, and the job finds its lessons missing, which a
    /// retry round sends again. Nothing is asked of the server.
    #[tokio::test]
    async fn archived_results_leave_the_shards_lessons_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r01_input_001.jsonl");
        std::fs::write(&path, "").unwrap();
        // A server that answers nothing: the test fails if the runner asks it anything.
        let client = Client::new(ClientConfig::new(
            "http://127.0.0.1:9",
            SecretString::from("sk-ant-test".to_owned()),
        ))
        .unwrap();
        let runner = AnthropicRunner::new(
            client,
            dir.path().join("ledger.json"),
            None,
            PollConfig::default(),
            Arc::new(()),
        )
        .unwrap();
        runner
            .register(&[ShardInput::new("r01_input_001", &path)])
            .await
            .unwrap();
        let batch: MessageBatch = serde_json::from_value(serde_json::json!({
            "id": "msgbatch_old", "type": "message_batch", "processing_status": "ended",
            "request_counts": {"processing": 0, "succeeded": 3, "errored": 0, "canceled": 0, "expired": 0},
            "ended_at": "2026-10-01T11:00:00Z", "created_at": "2026-10-01T10:00:00Z",
            "expires_at": "2026-10-02T10:00:00Z", "archived_at": "2026-10-30T10:00:00Z",
            "cancel_initiated_at": null, "results_url": null
        }))
        .unwrap();
        runner.record_batch(0, &batch).unwrap();
        let shard = runner.record(0).unwrap();
        runner.download(&shard, &batch, dir.path()).await.unwrap();
        let ready = runner.ready();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].status, Some(BatchStatus::Expired));
        assert_eq!(ready[0].output_path, None);
        assert_eq!(ready[0].errors[0].code.as_deref(), Some("results_expired"));
    }
}
