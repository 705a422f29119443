//! What a work dir holds across jobs: every job folder's ledger, for `check-batch-status`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anthropic_batch_client::MessageBatch;
use batch_request::Provider;
use curriculum_parser::LessonCode;
use openai_batch_client::{BatchId, JobConfig, JobRunner, Ledger, PollConfig};

use crate::Error;
use crate::identity::{EMULATOR_DIR, Fingerprint, LEDGER_FILE};
use crate::lock::{JobLock, LockHolder, LockWait};
use crate::provider::{AnthropicRunner, BatchProvider, ProviderClient, ledger_provider};
use crate::round::{SentLesson, read_requests};

/// A batch recorded by a job's ledger.
#[derive(Debug, Clone)]
pub struct RecordedBatch {
    /// The job folder.
    pub job_dir: PathBuf,
    /// The provider whose batch it is, as the ledger records it.
    pub provider: Provider,
    /// What the job was made from (its output directory among it), when recorded.
    pub fingerprint: Option<Fingerprint>,
    /// The batch's results as the job downloaded them (for a message batch, its
    /// `<shard>_results.jsonl`), when it did.
    pub output_path: Option<PathBuf>,
    /// The lessons the batch asked for, with their titles and request hashes; `None` when
    /// the shard's requests file is gone (deleted by hand): its results are then the lessons.
    pub lessons: Option<BTreeMap<LessonCode, SentLesson>>,
}

/// Every job ledger of `work_dir` (`<work-dir>/*/ledger.json`); none when it does not exist.
fn ledgers(work_dir: &Path) -> Result<Vec<(PathBuf, Ledger)>, Error> {
    let entries = match fs::read_dir(work_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::io("list", work_dir, source)),
    };
    let mut ledgers = Vec::new();
    for entry in entries {
        let dir = entry
            .map_err(|source| Error::io("list", work_dir, source))?
            .path();
        let path = dir.join(LEDGER_FILE);
        if path.is_file() {
            ledgers.push((dir, Ledger::load(&path)?));
        }
    }
    Ok(ledgers)
}

/// The batch of the ledger entry updated last, across the work dir's jobs.
///
/// # Errors
///
/// [`Error::Io`] when the work dir cannot be listed, [`Error::Client`] for a ledger that
/// cannot be read.
pub fn latest_batch(work_dir: &Path) -> Result<Option<BatchId>, Error> {
    Ok(latest_recorded_batch(work_dir)?.map(|(id, _)| id))
}

/// The batch of the ledger entry updated last, across the work dir's jobs, with the provider
/// its ledger records (so `check-batch-status` asks the right API for it).
///
/// # Errors
///
/// As [`latest_batch`].
pub fn latest_recorded_batch(work_dir: &Path) -> Result<Option<(BatchId, Provider)>, Error> {
    Ok(ledgers(work_dir)?
        .into_iter()
        .flat_map(|(_, ledger)| {
            let provider = ledger_provider(&ledger);
            ledger
                .shards
                .into_iter()
                .filter_map(move |shard| Some((shard.updated_at, shard.batch_id?, provider)))
        })
        .max_by_key(|(at, ..)| *at)
        .map(|(_, id, provider)| (id, provider)))
}

/// The providers whose batches the work dir's ledgers record, each once, OpenAI first.
///
/// # Errors
///
/// As [`latest_batch`].
pub fn recorded_providers(work_dir: &Path) -> Result<Vec<Provider>, Error> {
    let mut providers: Vec<Provider> = ledgers(work_dir)?
        .iter()
        .filter(|(_, ledger)| !ledger.shards.is_empty())
        .map(|(_, ledger)| ledger_provider(ledger))
        .collect();
    providers.sort();
    providers.dedup();
    Ok(providers)
}

/// The job and lessons of `batch_id`, when a ledger of the work dir recorded it.
///
/// # Errors
///
/// As [`latest_batch`], and [`Error::Io`] / [`Error::JobFile`] for the shard's requests file.
pub fn recorded_batch(work_dir: &Path, batch_id: &BatchId) -> Result<Option<RecordedBatch>, Error> {
    for (dir, ledger) in ledgers(work_dir)? {
        if let Some(shard) = ledger
            .shards
            .iter()
            .find(|shard| shard.batch_id.as_ref() == Some(batch_id))
        {
            return Ok(Some(RecordedBatch {
                job_dir: dir,
                provider: ledger_provider(&ledger),
                fingerprint: serde_json::from_value(serde_json::Value::Object(
                    ledger.context.clone(),
                ))
                .ok(),
                output_path: shard.output_path.clone(),
                lessons: match read_requests(&shard.input_path) {
                    Ok(lessons) => Some(lessons),
                    Err(Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        None
                    }
                    Err(err) => return Err(err),
                },
            }));
        }
    }
    Ok(None)
}

/// A batch's results downloaded into the work dir.
#[derive(Debug, Clone, Default)]
pub struct DownloadedResults {
    /// `<work-dir>/<batch id>_output.jsonl`, when the batch has an output file; for a message
    /// batch, its results `<work-dir>/<batch id>_results.jsonl`.
    pub output: Option<PathBuf>,
    /// `<work-dir>/<batch id>_errors.jsonl`, when the batch has an error file.
    pub errors: Option<PathBuf>,
    /// The files that were already there and not downloaded again.
    pub reused: Vec<PathBuf>,
}

impl DownloadedResults {
    /// The files, output first, as results files of the batch.
    pub fn files(&self, batch_id: &BatchId) -> Vec<crate::ResultsFile> {
        [&self.output, &self.errors]
            .into_iter()
            .flatten()
            .map(|path| crate::ResultsFile {
                path: path.clone(),
                batch_id: Some(batch_id.to_string()),
            })
            .collect()
    }
}

/// Downloads the output and error files of a terminal `batch` into `work_dir` as
/// `<batch id>_output.jsonl` and `<batch id>_errors.jsonl` (`batch_abc_output.jsonl`; also
/// the partial results of an expired or cancelled batch), streamed and atomically. A file
/// already there is kept unless `force`.
///
/// # Errors
///
/// [`Error::Io`] when the work dir cannot be created, [`Error::Client`] for the download.
pub async fn download_results(
    client: &openai_batch_client::Client,
    batch: &openai_batch_client::Batch,
    work_dir: &Path,
    force: bool,
) -> Result<DownloadedResults, Error> {
    fs::create_dir_all(work_dir).map_err(|source| Error::io("create", work_dir, source))?;
    let mut results = DownloadedResults::default();
    for (file_id, kind) in [
        (&batch.output_file_id, "output"),
        (&batch.error_file_id, "errors"),
    ] {
        let Some(file_id) = file_id else { continue };
        // Batch ids start with `batch_` already: `batch_abc_output.jsonl`.
        let path = work_dir.join(format!("{}_{kind}.jsonl", batch.id));
        if path.exists() && !force {
            results.reused.push(path.clone());
        } else {
            client
                .download_file_to(file_id, &path, std::sync::Arc::new(()))
                .await?;
        }
        match kind {
            "output" => results.output = Some(path),
            _ => results.errors = Some(path),
        }
    }
    Ok(results)
}

/// Downloads the results of an ended message `batch` into `work_dir` as
/// `<batch id>_results.jsonl` (`msgbatch_abc_results.jsonl`; every request's result, also
/// those canceled or expired), streamed and atomically. A file already there is kept unless
/// `force`. A batch that has not ended, has no `results_url` or whose results were archived
/// has nothing to download: the results are `None` then.
///
/// # Errors
///
/// [`Error::Io`] when the work dir cannot be created, [`Error::Anthropic`] for the download.
pub async fn download_message_results(
    client: &anthropic_batch_client::Client,
    batch: &MessageBatch,
    work_dir: &Path,
    force: bool,
) -> Result<DownloadedResults, Error> {
    let mut results = DownloadedResults::default();
    if !batch.processing_status.is_terminal()
        || batch.results_url.is_none()
        || batch.archived_at.is_some()
    {
        return Ok(results);
    }
    fs::create_dir_all(work_dir).map_err(|source| Error::io("create", work_dir, source))?;
    // Message batch ids start with `msgbatch_`: `msgbatch_abc_results.jsonl`.
    let path = work_dir.join(format!("{}_results.jsonl", batch.id));
    if !is_plain_id(batch.id.as_str()) {
        // The id comes from the server: it names a file in the work dir, never a path.
        return Err(Error::io(
            "write",
            &path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the batch id is not letters, digits, `_` and `-`",
            ),
        ));
    }
    if path.exists() && !force {
        results.reused.push(path.clone());
    } else {
        client.download_results_to(batch, &path).await?;
    }
    results.output = Some(path);
    Ok(results)
}

/// Whether `id` is letters, digits, `_` and `-` only, so it can name a file.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The state the built-in emulator left in a job folder of the work dir (`--emulator` runs).
#[derive(Debug, Clone)]
pub struct EmulatorState {
    /// The job folder.
    pub job_dir: PathBuf,
    /// The emulator's data dir, `<job>/emulator/`.
    pub data_dir: PathBuf,
    /// The job's output directory, whose lock keeps one run at a time on this state; `None`
    /// when the job's ledger does not say.
    pub out_dir: Option<PathBuf>,
}

/// Every emulator state of `work_dir`'s job folders, in folder-name order; none when the
/// work dir does not exist.
///
/// # Errors
///
/// [`Error::Io`] when the work dir cannot be listed, [`Error::Client`] for a ledger that
/// cannot be read.
pub fn emulator_states(work_dir: &Path) -> Result<Vec<EmulatorState>, Error> {
    let entries = match fs::read_dir(work_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::io("list", work_dir, source)),
    };
    let mut states = Vec::new();
    for entry in entries {
        let job_dir = entry
            .map_err(|source| Error::io("list", work_dir, source))?
            .path();
        let data_dir = job_dir.join(EMULATOR_DIR);
        if !data_dir.is_dir() {
            continue;
        }
        let ledger = job_dir.join(LEDGER_FILE);
        let out_dir = if ledger.is_file() {
            serde_json::from_value::<Fingerprint>(serde_json::Value::Object(
                Ledger::load(&ledger)?.context,
            ))
            .ok()
            .map(|fingerprint| fingerprint.out_dir)
        } else {
            None
        };
        states.push(EmulatorState {
            job_dir,
            data_dir,
            out_dir,
        });
    }
    states.sort_by(|a, b| a.job_dir.cmp(&b.job_dir));
    Ok(states)
}

/// What [`clean_up_remote_files`] did for one job of the work dir.
#[derive(Debug, Clone)]
pub struct CleanedJob {
    /// The job folder.
    pub job_dir: PathBuf,
    /// The provider of the job's batches.
    pub provider: Provider,
    /// Files deleted from the server (or found gone); for Anthropic, message batches deleted.
    pub files_deleted: usize,
    /// Finished shards whose files (or message batch) are all deleted now.
    pub shards_cleaned: usize,
    /// Another run held the job's lock, so the job was left alone (try again later).
    pub skipped_locked: Option<Option<LockHolder>>,
    /// Deletions that failed, as text (the job's other shards were still cleaned).
    pub errors: Vec<String>,
}

/// Deletes from the server what the work dir's jobs of `client`'s provider left there once
/// their results are safe; jobs of the other provider are left alone (and not listed).
///
/// - OpenAI: the files of every batch whose results are downloaded: the uploaded shard, and
///   unless `keep_results` the output and error files (their local copies stay in the job
///   folders).
/// - Anthropic: there are no files; unless `keep_results`, every ended message batch whose
///   results the job has taken over (written as lessons) is deleted, which removes its
///   results from the server (the downloaded copy stays).
///
/// Each job is cleaned under its lock, taken without waiting; a job another run is working
/// on is skipped. Deletions are recorded in the jobs' ledgers, so a second call deletes
/// nothing.
///
/// # Errors
///
/// [`Error::Io`] when the work dir cannot be listed, [`Error::Client`] for a ledger that
/// cannot be read. Failed deletions are reported in [`CleanedJob::errors`].
pub async fn clean_up_remote_files(
    client: &ProviderClient,
    work_dir: &Path,
    keep_results: bool,
    command: &str,
) -> Result<Vec<CleanedJob>, Error> {
    let mut cleaned = Vec::new();
    for (dir, ledger) in ledgers(work_dir)? {
        let provider = ledger_provider(&ledger);
        if provider != client.provider() {
            continue;
        }
        let mut job = CleanedJob {
            job_dir: dir.clone(),
            provider,
            files_deleted: 0,
            shards_cleaned: 0,
            skipped_locked: None,
            errors: Vec::new(),
        };
        let fingerprint: Option<Fingerprint> =
            serde_json::from_value(serde_json::Value::Object(ledger.context.clone())).ok();
        let _lock = match &fingerprint {
            Some(fingerprint) => {
                match JobLock::acquire(&fingerprint.out_dir, command, LockWait::NoWait, |_| {}) {
                    Ok(lock) => Some(lock),
                    Err(Error::Locked { holder, .. }) => {
                        job.skipped_locked = Some(holder.map(|holder| *holder));
                        cleaned.push(job);
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            }
            None => None,
        };
        match client {
            ProviderClient::OpenAi(client) => {
                clean_up_files(client, &dir, keep_results, &mut job).await?;
            }
            ProviderClient::Anthropic(client) => {
                if !keep_results {
                    delete_message_batches(client, &dir, &mut job).await?;
                }
            }
        }
        cleaned.push(job);
    }
    Ok(cleaned)
}

/// Deletes the server files of the OpenAI job in `dir` whose results are downloaded.
async fn clean_up_files(
    client: &openai_batch_client::Client,
    dir: &Path,
    keep_results: bool,
    job: &mut CleanedJob,
) -> Result<(), Error> {
    let runner = JobRunner::open(client.clone(), dir.join(LEDGER_FILE), JobConfig::default())?;
    for shard in runner.shards() {
        let done = shard.input_file_deleted && (keep_results || shard.result_files_deleted);
        if shard.downloaded_at.is_none() || done {
            continue;
        }
        match runner.delete_remote_files(shard.index, keep_results).await {
            Ok(files) => {
                job.files_deleted += files;
                job.shards_cleaned += 1;
            }
            Err(error) => job.errors.push(format!("{}: {error}", shard.id)),
        }
    }
    Ok(())
}

/// Deletes the ended message batches of the Anthropic job in `dir` that the job has handed on
/// (its lessons written from the downloaded results).
async fn delete_message_batches(
    client: &anthropic_batch_client::Client,
    dir: &Path,
    job: &mut CleanedJob,
) -> Result<(), Error> {
    let runner = AnthropicRunner::new(
        client.clone(),
        dir.join(LEDGER_FILE),
        None,
        PollConfig::default(),
        std::sync::Arc::new(()),
    )?;
    for shard in runner.shards() {
        if !shard.handed_on || shard.result_files_deleted || shard.batch_id.is_none() {
            continue;
        }
        match runner.clean_up(shard.index, false).await {
            Ok(()) => {
                job.files_deleted += 1;
                job.shards_cleaned += 1;
            }
            Err(error) => job.errors.push(format!("{}: {error}", shard.id)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_states_are_the_job_folders_with_an_emulator_dir() {
        let work = tempfile::tempdir().unwrap();
        assert!(
            emulator_states(&work.path().join("none"))
                .unwrap()
                .is_empty()
        );
        std::fs::create_dir_all(work.path().join("b-2").join(EMULATOR_DIR)).unwrap();
        std::fs::create_dir_all(work.path().join("a-1").join(EMULATOR_DIR)).unwrap();
        std::fs::create_dir_all(work.path().join("c-3")).unwrap();
        let states = emulator_states(work.path()).unwrap();
        let names: Vec<_> = states
            .iter()
            .map(|state| state.job_dir.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a-1", "b-2"]);
        assert_eq!(states[0].data_dir, work.path().join("a-1").join("emulator"));
        // No ledger: the output directory is not known.
        assert_eq!(states[0].out_dir, None);
    }

    /// Writes a ledger of `provider` (none: an old ledger without the key) into
    /// `work/<name>/ledger.json` with one shard holding `batch_id`, updated at `updated_at`.
    fn ledger_with(
        work: &Path,
        name: &str,
        provider: Option<&str>,
        batch_id: &str,
        updated_at: i64,
    ) {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut ledger = Ledger::new();
        if let Some(provider) = provider {
            ledger.context.insert(
                crate::provider::PROVIDER_KEY.to_owned(),
                serde_json::Value::from(provider),
            );
        }
        let mut shard = openai_batch_client::ShardRecord::new(
            0,
            "r01_input_001".to_owned(),
            dir.join("r01_input_001.jsonl"),
            "0".repeat(64),
            1,
        );
        shard.batch_id = Some(BatchId::from(batch_id));
        shard.output_path = Some(dir.join("r01_input_001_results.jsonl"));
        shard.updated_at = updated_at;
        ledger.shards.push(shard);
        ledger.save(&dir.join(LEDGER_FILE)).unwrap();
    }

    #[test]
    fn the_latest_batch_comes_with_the_provider_its_ledger_records() {
        let work = tempfile::tempdir().unwrap();
        assert_eq!(latest_recorded_batch(work.path()).unwrap(), None);
        assert!(recorded_providers(work.path()).unwrap().is_empty());
        ledger_with(work.path(), "old-1", None, "batch_old", 100);
        assert_eq!(
            latest_recorded_batch(work.path()).unwrap(),
            Some((BatchId::from("batch_old"), Provider::OpenAi))
        );
        ledger_with(
            work.path(),
            "claude-2",
            Some("anthropic"),
            "msgbatch_new",
            200,
        );
        assert_eq!(
            latest_recorded_batch(work.path()).unwrap(),
            Some((BatchId::from("msgbatch_new"), Provider::Anthropic))
        );
        assert_eq!(
            latest_batch(work.path()).unwrap(),
            Some(BatchId::from("msgbatch_new"))
        );
        assert_eq!(
            recorded_providers(work.path()).unwrap(),
            [Provider::OpenAi, Provider::Anthropic]
        );
        let recorded = recorded_batch(work.path(), &BatchId::from("msgbatch_new"))
            .unwrap()
            .unwrap();
        assert_eq!(recorded.provider, Provider::Anthropic);
        assert_eq!(recorded.job_dir, work.path().join("claude-2"));
        assert_eq!(
            recorded.output_path,
            Some(work.path().join("claude-2/r01_input_001_results.jsonl"))
        );
        // The shard's requests file is gone: the results are then the lessons.
        assert!(recorded.lessons.is_none());
    }

    #[test]
    fn only_plain_ids_name_a_results_file() {
        assert!(is_plain_id("msgbatch_01AbC-9"));
        for id in ["", "../x", "a/b", "a.b", "a\\b", "msgbatch_\u{1b}"] {
            assert!(!is_plain_id(id), "{id}");
        }
    }

    #[tokio::test]
    async fn a_message_batch_not_ended_or_archived_has_nothing_to_download() {
        let work = tempfile::tempdir().unwrap();
        // Nothing is asked of the server: a port nothing listens on.
        let client =
            anthropic_batch_client::Client::new(anthropic_batch_client::ClientConfig::new(
                "http://127.0.0.1:9",
                anthropic_batch_client::SecretString::from("sk-ant-test"),
            ))
            .unwrap();
        let batch = |status: &str, archived: Option<&str>| -> MessageBatch {
            serde_json::from_value(serde_json::json!({
                "id": "msgbatch_1",
                "processing_status": status,
                "created_at": "2026-11-01T10:00:00Z",
                "expires_at": "2026-11-02T10:00:00Z",
                "archived_at": archived,
                "results_url": (status == "ended")
                    .then_some("http://127.0.0.1:9/v1/messages/batches/msgbatch_1/results"),
            }))
            .unwrap()
        };
        for batch in [
            batch("in_progress", None),
            batch("canceling", None),
            batch("ended", Some("2026-11-30T10:00:00Z")),
        ] {
            let results = download_message_results(&client, &batch, work.path(), false)
                .await
                .unwrap();
            assert!(results.output.is_none(), "{batch:?}");
            assert!(results.reused.is_empty());
        }
        // A file already there is kept, not asked for again.
        let path = work.path().join("msgbatch_1_results.jsonl");
        std::fs::write(&path, "{}\n").unwrap();
        let results = download_message_results(&client, &batch("ended", None), work.path(), false)
            .await
            .unwrap();
        assert_eq!(results.output.as_ref(), Some(&path));
        assert_eq!(results.reused, std::slice::from_ref(&path));
        // A server id that is not plain never names a path.
        let mut odd = batch("ended", None);
        odd.id = anthropic_batch_client::MessageBatchId::from("../msgbatch_1");
        assert!(matches!(
            download_message_results(&client, &odd, work.path(), true).await,
            Err(Error::Io { .. })
        ));
    }
}
