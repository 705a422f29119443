//! Runs one batch through its lifecycle: `validating`, then `in_progress` with
//! requests answered concurrently and written in completion order, then
//! `finalizing` and `completed`; or `failed`, `expired`, `cancelling`/`cancelled`.
//! A batch that passes validation enqueues its prompt tokens, or fails with
//! `token_limit_exceeded` when that would pass the configured limit.

use std::collections::BTreeMap;
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openai_batch_client::{
    Batch, BatchError, BatchErrors, BatchId, BatchStatus, BatchUsage, FileId, FileObject,
    InputTokensDetails, OutputTokensDetails, RequestCounts,
};
use serde::Serialize;
use serde_json::Value;
use tempfile::TempPath;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use batch_request::LineError;

use crate::responder::{CANCELLED_MESSAGE, EXPIRED_MESSAGE, RequestResult};
use crate::server::Shared;
use crate::validate::{self, PendingRequest, Validation};
use crate::{anthropic, ids};

/// Output and error files expire 30 days after they are written, like the real API's default.
pub(crate) const RESULT_FILE_LIFETIME: i64 = 30 * 24 * 60 * 60;

/// Starts running a batch in the background.
pub(crate) fn spawn(shared: &Arc<Shared>, batch_id: BatchId, cancel: CancellationToken) {
    let Some(batch) = shared.store.batch(&batch_id) else {
        return;
    };
    let remaining = batch
        .expires_at
        .map_or(shared.config.completion_window, |expires_at| {
            Duration::from_secs(u64::try_from(expires_at - ids::now()).unwrap_or(0))
        });
    let deadline = Instant::now() + remaining.min(shared.config.completion_window);
    let task_shared = Arc::clone(shared);
    let run = async move {
        if let Err(error) = run(&task_shared, &batch_id, &cancel, deadline).await {
            tracing::error!(%batch_id, %error, "batch run failed");
            let message =
                format!("The local batch emulator failed while running the batch: {error}.");
            task_shared.store.update_batch(&batch_id, |batch| {
                batch.status = BatchStatus::Failed;
                batch.failed_at = Some(ids::now());
                batch.errors = Some(errors_list(vec![BatchError {
                    code: Some("server_error".to_owned()),
                    message: Some(message),
                    param: None,
                    line: None,
                }]));
            });
            save(&task_shared, &batch_id).await;
        }
        if let Err(error) = task_shared.store.save_attempts().await {
            tracing::error!(%batch_id, %error, "cannot save the attempt counts");
        }
    };
    let mut runs = shared
        .runs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Forget runs that already ended, so the set only holds live ones.
    while runs.try_join_next().is_some() {}
    runs.spawn(run);
}

/// Restarts the batches a previous emulator left unfinished (data directory mode).
///
/// Their requests are not persisted while running, so a batch that was running
/// starts over from validation; one that was being cancelled becomes `cancelled`.
/// Batches that had passed validation enqueue their tokens again first, without the
/// limit check, so new batches cannot take their place.
pub(crate) async fn resume(shared: &Arc<Shared>, batch_ids: Vec<BatchId>) {
    for batch_id in &batch_ids {
        let Some(batch) = shared.store.batch(batch_id) else {
            continue;
        };
        if matches!(
            batch.status,
            BatchStatus::InProgress | BatchStatus::Finalizing
        ) && let Some(tokens) = recount(shared, &batch).await
        {
            // Without a limit nothing is refused.
            let _ = shared.store.reserve_tokens(batch_id, tokens, None);
        }
    }
    for batch_id in batch_ids {
        let cancelling = shared.store.update_batch(&batch_id, |batch| {
            if batch.status == BatchStatus::Cancelling {
                batch.status = BatchStatus::Cancelled;
                batch.cancelled_at = Some(ids::now());
                true
            } else {
                batch.status = BatchStatus::Validating;
                batch.in_progress_at = None;
                batch.finalizing_at = None;
                batch.request_counts = Some(RequestCounts::default());
                batch.usage = Some(zero_usage());
                anthropic::batch::reset_counts(batch);
                false
            }
        });
        save(shared, &batch_id).await;
        if cancelling == Some(false)
            && let Some(cancel) = shared.store.cancel_token(&batch_id)
        {
            tracing::info!(%batch_id, "resuming a batch left unfinished");
            spawn(shared, batch_id, cancel);
        }
    }
}

/// The prompt tokens per model of a batch's input file, if it is still there and valid.
async fn recount(shared: &Shared, batch: &Batch) -> Option<BTreeMap<String, u64>> {
    shared.store.file(&batch.input_file_id)?;
    match validate_input(shared, batch).await {
        Ok(Validation::Valid { prompt_tokens, .. }) => Some(prompt_tokens),
        _ => None,
    }
}

/// Validates a batch's input file on a blocking thread.
async fn validate_input(shared: &Shared, batch: &Batch) -> io::Result<Validation> {
    let path = shared.store.content_path(&batch.input_file_id);
    let endpoint = batch.endpoint.clone();
    let max_requests = shared.config.max_requests;
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(path)?;
        validate::validate(
            BufReader::with_capacity(256 * 1024, file),
            &endpoint,
            max_requests,
        )
    })
    .await
    .map_err(io::Error::other)?
}

/// The usage of a batch before any request finished.
pub(crate) fn zero_usage() -> BatchUsage {
    BatchUsage {
        input_tokens: 0,
        input_tokens_details: Some(InputTokensDetails { cached_tokens: 0 }),
        output_tokens: 0,
        output_tokens_details: Some(OutputTokensDetails {
            reasoning_tokens: 0,
        }),
        total_tokens: 0,
    }
}

/// Why a run stopped before every request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    Expired,
}

async fn run(
    shared: &Arc<Shared>,
    batch_id: &BatchId,
    cancel: &CancellationToken,
    deadline: Instant,
) -> io::Result<()> {
    let expired = CancellationToken::new();
    let _timer = AbortOnDrop(tokio::spawn({
        let expired = expired.clone();
        async move {
            tokio::time::sleep_until(deadline).await;
            expired.cancel();
        }
    }));

    // Validating.
    tokio::select! {
        () = tokio::time::sleep(shared.config.timing.validation) => {}
        () = cancel.cancelled() => {}
        () = expired.cancelled() => {}
    }
    if let Some(stop) = stopped(cancel, &expired) {
        return finish(shared, batch_id, stop, ResultFiles::default()).await;
    }
    let Some(batch) = shared.store.batch(batch_id) else {
        return Ok(());
    };
    let input_id = batch.input_file_id.clone();
    if shared.store.file(&input_id).is_none() {
        return fail(
            shared,
            batch_id,
            vec![BatchError {
                code: Some("invalid_request".to_owned()),
                message: Some(format!(
                    "Cannot find file {input_id}, or organization does not have access to it."
                )),
                param: Some("file_id".to_owned()),
                line: None,
            }],
        )
        .await;
    }
    let path = shared.store.content_path(&input_id);
    let validation = validate_input(shared, &batch).await?;
    let (total, model, prompt_tokens) = match validation {
        Validation::Invalid(errors) => return fail(shared, batch_id, errors).await,
        Validation::Valid {
            total,
            model,
            prompt_tokens,
        } => (total, model, prompt_tokens),
    };
    if let Some(stop) = stopped(cancel, &expired) {
        return finish(shared, batch_id, stop, ResultFiles::default()).await;
    }
    let limit = shared.config.enqueued_token_limit;
    if let Err(exceeded) = shared.store.reserve_tokens(batch_id, prompt_tokens, limit) {
        tracing::info!(%batch_id, model = %exceeded.model, "enqueued token limit reached");
        return fail(shared, batch_id, vec![exceeded.to_batch_error()]).await;
    }

    // In progress.
    let started = shared.store.update_batch(batch_id, |batch| {
        if batch.status != BatchStatus::Validating {
            return false;
        }
        batch.status = BatchStatus::InProgress;
        batch.in_progress_at = Some(ids::now());
        batch.request_counts = Some(RequestCounts {
            total,
            completed: 0,
            failed: 0,
        });
        batch.model = model;
        true
    });
    if started != Some(true) {
        // Cancelled between the check and the update.
        return finish(shared, batch_id, Stop::Cancelled, ResultFiles::default()).await;
    }
    save(shared, batch_id).await;
    let files = execute(shared, batch_id, path, cancel, &expired).await?;

    if let Some(stop) = stopped(cancel, &expired) {
        return finish(shared, batch_id, stop, files).await;
    }

    // Finalizing.
    shared.store.update_batch(batch_id, |batch| {
        if batch.status == BatchStatus::InProgress {
            batch.status = BatchStatus::Finalizing;
            batch.finalizing_at = Some(ids::now());
        }
    });
    save(shared, batch_id).await;
    tokio::time::sleep(shared.config.timing.finalizing).await;
    let (output_file_id, error_file_id) = register(shared, batch_id, files).await?;
    shared.store.update_batch(batch_id, |batch| {
        batch.output_file_id = output_file_id;
        batch.error_file_id = error_file_id;
        // A cancel that arrived while finalizing still ends as `cancelled`, with every result.
        if batch.status == BatchStatus::Cancelling {
            batch.status = BatchStatus::Cancelled;
            batch.cancelled_at = Some(ids::now());
        } else {
            batch.status = BatchStatus::Completed;
            batch.completed_at = Some(ids::now());
        }
    });
    save(shared, batch_id).await;
    Ok(())
}

fn stopped(cancel: &CancellationToken, expired: &CancellationToken) -> Option<Stop> {
    if expired.is_cancelled() {
        Some(Stop::Expired)
    } else if cancel.is_cancelled() {
        Some(Stop::Cancelled)
    } else {
        None
    }
}

/// Ends a run early: `expired` or `cancelled`, with whatever results exist.
async fn finish(
    shared: &Arc<Shared>,
    batch_id: &BatchId,
    stop: Stop,
    files: ResultFiles,
) -> io::Result<()> {
    let (output_file_id, error_file_id) = register(shared, batch_id, files).await?;
    shared.store.update_batch(batch_id, |batch| {
        batch.output_file_id = output_file_id;
        batch.error_file_id = error_file_id;
        match stop {
            Stop::Expired => {
                batch.status = BatchStatus::Expired;
                batch.expired_at = Some(ids::now());
            }
            Stop::Cancelled => {
                batch.status = BatchStatus::Cancelled;
                batch.cancelled_at = Some(ids::now());
            }
        }
    });
    save(shared, batch_id).await;
    Ok(())
}

/// Ends a run at validation: `failed` with `errors.data`.
async fn fail(shared: &Arc<Shared>, batch_id: &BatchId, errors: Vec<BatchError>) -> io::Result<()> {
    shared.store.update_batch(batch_id, |batch| {
        batch.status = BatchStatus::Failed;
        batch.failed_at = Some(ids::now());
        batch.errors = Some(errors_list(errors));
    });
    save(shared, batch_id).await;
    Ok(())
}

fn errors_list(data: Vec<BatchError>) -> BatchErrors {
    BatchErrors {
        object: Some("list".to_owned()),
        data,
    }
}

async fn save(shared: &Arc<Shared>, batch_id: &BatchId) {
    if let Err(error) = shared.store.save_batch(batch_id).await {
        tracing::error!(%batch_id, %error, "cannot save batch state");
    }
}

/// One finished request, on its way to the writer.
struct Finished {
    custom_id: String,
    result: RequestResult,
}

/// The temp files holding the results of a run, with their sizes.
#[derive(Default)]
struct ResultFiles {
    output: Option<(TempPath, u64)>,
    errors: Option<(TempPath, u64)>,
}

/// Answers every request of the input file; returns the output and error files.
///
/// Requests stream from the file through a bounded channel, so memory stays flat
/// for any file size. After a cancel, requests not started yet become
/// `batch_cancelled` lines while running ones finish; at expiry, running ones are
/// dropped and every unfinished request becomes a `batch_expired` line.
async fn execute(
    shared: &Arc<Shared>,
    batch_id: &BatchId,
    path: PathBuf,
    cancel: &CancellationToken,
    expired: &CancellationToken,
) -> io::Result<ResultFiles> {
    let concurrency = shared.config.concurrency;
    let (request_tx, mut request_rx) = mpsc::channel::<PendingRequest>(concurrency * 2);
    let reader = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let file = std::fs::File::open(path)?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut buffer = Vec::new();
        while let Some(request) = validate::read_request(&mut reader, &mut buffer)? {
            if request_tx.blocking_send(request).is_err() {
                break;
            }
        }
        Ok(())
    });
    let (finished_tx, finished_rx) = mpsc::channel::<Finished>(concurrency * 2 + 16);
    let writer = tokio::spawn(write_results(
        Arc::clone(shared),
        batch_id.clone(),
        finished_rx,
    ));

    let slots = Arc::new(Semaphore::new(concurrency));
    let per_request = shared.config.timing.per_request;
    let seed = shared.config.faults.seed;
    let mut workers = JoinSet::new();
    while let Some(request) = request_rx.recv().await {
        while workers.try_join_next().is_some() {}
        let not_run = |request: &PendingRequest, stop: Stop| Finished {
            custom_id: request.custom_id.clone(),
            result: stop_result(stop),
        };
        let permit = tokio::select! {
            biased;
            () = expired.cancelled() => Err(Stop::Expired),
            () = cancel.cancelled() => Err(Stop::Cancelled),
            permit = Arc::clone(&slots).acquire_owned() => Ok(permit.expect("the semaphore is never closed")),
        };
        let permit = match permit {
            Ok(permit) => permit,
            Err(stop) => {
                if finished_tx.send(not_run(&request, stop)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        // A deterministic jitter of 0.5 to 1.5 times the mean delay, so results finish
        // (and are written) out of input order, as with the real API.
        let jitter = 0.5 + ids::unit_interval(seed, &[request.custom_id.as_bytes(), b"delay"]);
        let delay = per_request.mul_f64(jitter);
        let finished_tx = finished_tx.clone();
        let expired = expired.clone();
        let task_shared = Arc::clone(shared);
        workers.spawn(async move {
            let _permit = permit;
            let custom_id = request.custom_id.clone();
            let result = tokio::select! {
                biased;
                () = expired.cancelled() => stop_result(Stop::Expired),
                result = async {
                    tokio::time::sleep(delay).await;
                    let attempt = task_shared.store.next_attempt(&request.custom_id);
                    task_shared.responder.respond(request, attempt).await
                } => result,
            };
            // The writer only goes away when the run is torn down.
            let _ = finished_tx.send(Finished { custom_id, result }).await;
        });
    }
    while workers.join_next().await.is_some() {}
    drop(finished_tx);
    reader.await.map_err(io::Error::other)??;
    writer.await.map_err(io::Error::other)?
}

fn stop_result(stop: Stop) -> RequestResult {
    match stop {
        Stop::Expired => RequestResult::not_run("batch_expired", EXPIRED_MESSAGE),
        Stop::Cancelled => RequestResult::not_run("batch_cancelled", CANCELLED_MESSAGE),
    }
}

/// An output or error file line.
#[derive(Serialize)]
struct ResultLineOut<'a> {
    id: String,
    custom_id: &'a str,
    response: Option<ResponseOut<'a>>,
    error: Option<LineError>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    status_code: u16,
    request_id: &'a str,
    body: &'a Value,
}

/// Serialises one result as a JSONL line (newline included); `true` when it belongs in the output file.
fn result_line(custom_id: &str, result: &RequestResult) -> (Vec<u8>, bool) {
    let (line, success) = match result {
        RequestResult::Success {
            request_id, body, ..
        } => (
            ResultLineOut {
                id: ids::batch_request_id(),
                custom_id,
                response: Some(ResponseOut {
                    status_code: 200,
                    request_id,
                    body,
                }),
                error: None,
            },
            true,
        ),
        RequestResult::HttpError {
            status_code,
            request_id,
            body,
        } => (
            ResultLineOut {
                id: ids::batch_request_id(),
                custom_id,
                response: Some(ResponseOut {
                    status_code: *status_code,
                    request_id,
                    body,
                }),
                error: None,
            },
            false,
        ),
        RequestResult::NotRun { code, message } => (
            ResultLineOut {
                id: ids::batch_request_id(),
                custom_id,
                response: None,
                error: Some(LineError {
                    code: Some(code.clone()),
                    message: Some(message.clone()),
                }),
            },
            false,
        ),
    };
    let mut bytes = serde_json::to_vec(&line).expect("a result line always serializes");
    bytes.push(b'\n');
    (bytes, success)
}

/// A temp file being filled with result lines.
struct ResultWriter {
    file: BufWriter<tokio::fs::File>,
    path: TempPath,
    bytes: u64,
}

impl ResultWriter {
    fn new(shared: &Shared) -> io::Result<Self> {
        let (file, path) = shared.store.temp_file()?.into_parts();
        Ok(ResultWriter {
            file: BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file)),
            path,
            bytes: 0,
        })
    }

    async fn write(&mut self, line: &[u8]) -> io::Result<()> {
        self.file.write_all(line).await?;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// The written file, or `None` when nothing was written (the temp file is removed).
    async fn close(mut self) -> io::Result<Option<(TempPath, u64)>> {
        self.file.flush().await?;
        let file = self.file.into_inner();
        file.sync_data().await?;
        drop(file);
        Ok((self.bytes > 0).then_some((self.path, self.bytes)))
    }
}

/// Writes finished requests in arrival order and keeps the batch's counts and usage current.
async fn write_results(
    shared: Arc<Shared>,
    batch_id: BatchId,
    mut finished_rx: mpsc::Receiver<Finished>,
) -> io::Result<ResultFiles> {
    let mut output = ResultWriter::new(&shared)?;
    let mut errors = ResultWriter::new(&shared)?;
    while let Some(Finished { custom_id, result }) = finished_rx.recv().await {
        let (line, success) = result_line(&custom_id, &result);
        if success {
            output.write(&line).await?;
        } else {
            errors.write(&line).await?;
        }
        shared.store.update_batch(&batch_id, |batch| {
            let counts = batch
                .request_counts
                .get_or_insert_with(RequestCounts::default);
            if success {
                counts.completed += 1;
            } else {
                counts.failed += 1;
            }
            match &result {
                RequestResult::Success { usage, .. } => add_usage(batch, usage),
                RequestResult::NotRun { code, .. } => anthropic::batch::count_not_run(batch, code),
                RequestResult::HttpError { .. } => {}
            }
        });
    }
    Ok(ResultFiles {
        output: output.close().await?,
        errors: errors.close().await?,
    })
}

fn add_usage(batch: &mut Batch, usage: &batch_request::Usage) {
    let total = batch.usage.get_or_insert_with(zero_usage);
    total.input_tokens += usage.prompt_tokens;
    total.output_tokens += usage.completion_tokens;
    total.total_tokens += usage.prompt_tokens + usage.completion_tokens;
    total
        .input_tokens_details
        .get_or_insert(InputTokensDetails { cached_tokens: 0 })
        .cached_tokens += usage.cached_tokens();
    total
        .output_tokens_details
        .get_or_insert(OutputTokensDetails {
            reasoning_tokens: 0,
        })
        .reasoning_tokens += usage
        .completion_tokens_details
        .map_or(0, |details| details.reasoning_tokens);
}

/// Turns the non-empty result files into `batch_output` files; returns their ids.
async fn register(
    shared: &Arc<Shared>,
    batch_id: &BatchId,
    files: ResultFiles,
) -> io::Result<(Option<FileId>, Option<FileId>)> {
    let mut ids_out = BTreeMap::new();
    // A message batch's results are internal files, downloadable for 29 days after the
    // batch was created, as Anthropic keeps them.
    let message_batch_created = shared
        .store
        .batch(batch_id)
        .filter(anthropic::is_message_batch)
        .map(|batch| batch.created_at);
    for (kind, file) in [("output", files.output), ("error", files.errors)] {
        let Some((path, bytes)) = file else {
            continue;
        };
        let created_at = ids::now();
        let (purpose, expires_at) = match message_batch_created {
            Some(batch_created) => (
                anthropic::RESULTS_PURPOSE,
                batch_created + anthropic::RESULTS_LIFETIME,
            ),
            None => ("batch_output", created_at + RESULT_FILE_LIFETIME),
        };
        let object = FileObject {
            id: FileId(ids::file_id()),
            object: "file".to_owned(),
            bytes,
            created_at,
            filename: format!("{batch_id}_{kind}.jsonl"),
            purpose: purpose.to_owned(),
            status: Some("processed".to_owned()),
            expires_at: Some(expires_at),
        };
        let id = object.id.clone();
        shared.store.add_file(object, path).await?;
        ids_out.insert(kind, id);
    }
    Ok((ids_out.remove("output"), ids_out.remove("error")))
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use batch_request::ResultLine;
    use serde_json::json;

    use super::*;

    #[test]
    fn result_lines_parse_as_the_contract_line_type() {
        let success = RequestResult::Success {
            request_id: "abc".into(),
            body: json!({"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}),
            usage: batch_request::Usage::default(),
        };
        let (bytes, is_output) = result_line("c1", &success);
        assert!(is_output);
        assert!(bytes.ends_with(b"\n"));
        let line: ResultLine = serde_json::from_slice(&bytes).unwrap();
        assert!(line.id.unwrap().starts_with("batch_req_"));
        assert_eq!(line.response.unwrap().status_code, 200);
        assert!(line.error.is_none());
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(raw["error"], Value::Null, "error is present and null");

        let (bytes, is_output) = result_line("c2", &stop_result(Stop::Expired));
        assert!(!is_output);
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(raw["response"], Value::Null);
        assert_eq!(raw["error"]["code"], "batch_expired");
        assert_eq!(raw["error"]["message"], EXPIRED_MESSAGE);
    }
}
