//! One batch looked at on its own, for `check-batch-status`: find it, cancel it, follow it to
//! its end, download its results; and the account's recent batches. OpenAI's batches and
//! Anthropic's message batches each have their own calls here (`check_batch`,
//! `check_message_batch`), as their objects differ.

use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

use anthropic_batch_client::{MessageBatch, MessageBatchId, RequestCounts};
use batch_request::Provider;
use futures::StreamExt;
use openai_batch_client::{Batch, BatchId, Client, JobEvent, JobProgress, PollConfig};

use crate::Error;
use crate::provider::anthropic::batch_view;
use crate::work_dir::{
    DownloadedResults, download_message_results, download_results, latest_batch,
};

/// The provider a batch id belongs to, by its prefix: `msgbatch_` is Anthropic's,
/// `batch_` OpenAI's; `None` for any other id.
///
/// ```
/// use lesson_job::{Provider, batch_id_provider};
///
/// assert_eq!(batch_id_provider("msgbatch_01abc"), Some(Provider::Anthropic));
/// assert_eq!(batch_id_provider("batch_abc"), Some(Provider::OpenAi));
/// assert_eq!(batch_id_provider("abc"), None);
/// ```
pub fn batch_id_provider(batch_id: &str) -> Option<Provider> {
    if batch_id.starts_with("msgbatch_") {
        Some(Provider::Anthropic)
    } else if batch_id.starts_with("batch_") {
        Some(Provider::OpenAi)
    } else {
        None
    }
}

/// What to do with one batch.
#[derive(Debug, Clone, Default)]
pub struct BatchCheck {
    /// The batch; `None` means the latest batch recorded in the work dir's ledgers.
    pub batch_id: Option<BatchId>,
    /// Ask the API to cancel it first (finished requests keep their results).
    pub cancel: bool,
    /// Poll it until it is finished, at this pace.
    pub wait: Option<PollConfig>,
    /// Download its output and error files into the work dir once it is finished.
    pub download: bool,
    /// Download again even when a file is already there.
    pub force_download: bool,
}

/// What [`check_batch`] found.
#[derive(Debug, Clone)]
pub struct CheckedBatch {
    /// The batch as last retrieved.
    pub batch: Batch,
    /// The status the cancel request answered, when one was sent.
    pub cancelled: Option<Batch>,
    /// Its downloaded results, when a download was asked for and the batch is finished.
    pub results: Option<DownloadedResults>,
}

/// Checks one batch of `work_dir` (or any batch of the account, by id) as `check` says,
/// telling `progress` of every change while waiting ([`JobEvent::Changed`], shard 0).
///
/// # Errors
///
/// [`Error::NoBatchRecorded`] when no id is given and the work dir records no batch;
/// [`Error::Client`] for the API; as [`download_results`] for the downloads.
pub async fn check_batch(
    client: &Client,
    work_dir: &Path,
    check: &BatchCheck,
    progress: &dyn JobProgress,
) -> Result<CheckedBatch, Error> {
    let batch_id = match &check.batch_id {
        Some(id) => id.clone(),
        None => latest_batch(work_dir)?.ok_or_else(|| Error::NoBatchRecorded {
            work_dir: work_dir.to_path_buf(),
        })?,
    };
    let cancelled = if check.cancel {
        Some(client.cancel_batch(&batch_id).await?)
    } else {
        None
    };
    let mut batch = client.retrieve_batch(&batch_id).await?;
    if let Some(poll) = &check.wait
        && !batch.status.is_terminal()
    {
        batch = client
            .wait_for_batch(&batch_id, poll, |batch| {
                progress.on_event(&JobEvent::Changed { shard: 0, batch });
            })
            .await?;
    }
    let results = if check.download && batch.status.is_terminal() {
        Some(download_results(client, &batch, work_dir, check.force_download).await?)
    } else {
        None
    };
    Ok(CheckedBatch {
        batch,
        cancelled,
        results,
    })
}

/// What [`check_message_batch`] found.
#[derive(Debug, Clone)]
pub struct CheckedMessageBatch {
    /// The message batch as last retrieved.
    pub batch: MessageBatch,
    /// The batch as the cancel request answered, when one was sent.
    pub cancelled: Option<MessageBatch>,
    /// Its downloaded results (`<work-dir>/<batch id>_results.jsonl`), when a download was
    /// asked for and the batch has ended.
    pub results: Option<DownloadedResults>,
}

/// Checks one Anthropic message batch of `work_dir` (or any of the account, by id) as `check`
/// says, telling `progress` of every change while waiting ([`JobEvent::Changed`], shard 0,
/// with the batch in the Batch API's terms, [`message_batch_view`](crate::message_batch_view)).
///
/// # Errors
///
/// [`Error::NoBatchRecorded`] when no id is given and the work dir records no batch;
/// [`Error::Anthropic`] for the API; as [`download_message_results`] for the download.
pub async fn check_message_batch(
    client: &anthropic_batch_client::Client,
    work_dir: &Path,
    check: &BatchCheck,
    progress: &dyn JobProgress,
) -> Result<CheckedMessageBatch, Error> {
    let batch_id = match &check.batch_id {
        Some(id) => id.clone(),
        None => latest_batch(work_dir)?.ok_or_else(|| Error::NoBatchRecorded {
            work_dir: work_dir.to_path_buf(),
        })?,
    };
    let batch_id = MessageBatchId(batch_id.0);
    let cancelled = if check.cancel {
        Some(client.cancel_batch(&batch_id).await?)
    } else {
        None
    };
    let mut batch = client.retrieve_batch(&batch_id).await?;
    if let Some(poll) = &check.wait
        && !batch.processing_status.is_terminal()
    {
        batch = wait_for_message_batch(client, &batch_id, poll, progress).await?;
    }
    let results = if check.download && batch.processing_status.is_terminal() {
        Some(download_message_results(client, &batch, work_dir, check.force_download).await?)
    } else {
        None
    };
    Ok(CheckedMessageBatch {
        batch,
        cancelled,
        results,
    })
}

/// Polls a message batch until it has ended, paced as `poll` says (faster again after every
/// change), telling `progress` of the first look and every change.
async fn wait_for_message_batch(
    client: &anthropic_batch_client::Client,
    batch_id: &MessageBatchId,
    poll: &PollConfig,
    progress: &dyn JobProgress,
) -> Result<MessageBatch, Error> {
    let mut seen: Option<(anthropic_batch_client::ProcessingStatus, RequestCounts)> = None;
    let mut interval = poll.initial_interval.min(poll.max_interval);
    let mut failures = 0;
    loop {
        let batch = match client.retrieve_batch(batch_id).await {
            Ok(batch) => batch,
            Err(err) if err.is_retryable() && failures < poll.max_failures => {
                failures += 1;
                tracing::warn!(%batch_id, %err, failures, "poll failed, polling on");
                tokio::time::sleep(interval.max(Duration::from_millis(10))).await;
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        failures = 0;
        let now = (batch.processing_status, batch.request_counts);
        let changed = seen != Some(now);
        if changed {
            seen = Some(now);
            progress.on_event(&JobEvent::Changed {
                shard: 0,
                batch: &batch_view(&batch),
            });
        }
        if batch.processing_status.is_terminal() {
            return Ok(batch);
        }
        interval = poll.next_interval(interval, changed);
        tokio::time::sleep(interval.max(Duration::from_millis(10))).await;
    }
}

/// The account's `limit` most recent message batches, newest first (pages of at most 100).
///
/// # Errors
///
/// [`Error::Anthropic`] when a page cannot be fetched.
pub async fn recent_message_batches(
    client: &anthropic_batch_client::Client,
    limit: usize,
) -> Result<Vec<MessageBatch>, Error> {
    let page = u32::try_from(limit.clamp(1, 100)).unwrap_or(100);
    let stream = client.list_batches(Some(page));
    futures::pin_mut!(stream);
    let mut batches = Vec::with_capacity(limit.min(100));
    while batches.len() < limit {
        let Some(batch) = stream.next().await else {
            break;
        };
        batches.push(batch?);
    }
    Ok(batches)
}

/// What a batch costs at batch prices, from the usage the server reports for it (the totals
/// of its finished requests, the same as the usage in its results files).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BatchCost {
    /// Input tokens.
    pub input_tokens: u64,
    /// The cached part of the input tokens.
    pub cached_tokens: u64,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
    /// USD at batch prices; `None` when the model has no price.
    pub usd: Option<f64>,
    /// Whether the batch is finished, so the cost is final (else: so far).
    pub is_final: bool,
}

/// The cost of `batch` from its reported usage, priced by `prices` for the batch's model
/// (else `model`, e.g. the one its job recorded); `None` when the server reports no usage
/// (batches created before 2025-09-07 carry none).
pub fn batch_cost(
    batch: &Batch,
    model: Option<&str>,
    prices: &batch_request::PriceTable,
) -> Option<BatchCost> {
    let usage = batch.usage.as_ref()?;
    let cached_tokens = usage
        .input_tokens_details
        .map_or(0, |details| details.cached_tokens);
    let usd = batch
        .model
        .as_deref()
        .or(model)
        .and_then(|model| prices.get(model))
        .map(|price| price.batch_cost(usage.input_tokens, cached_tokens, usage.output_tokens));
    Some(BatchCost {
        input_tokens: usage.input_tokens,
        cached_tokens,
        output_tokens: usage.output_tokens,
        usd,
        is_final: batch.status.is_terminal(),
    })
}

/// The cost of a message batch from the usage in its downloaded results file (Anthropic
/// reports no usage on the batch itself), each answer priced by `prices` for its model (else
/// `model`). Usage is read as the Batch API's: input tokens are the uncached ones plus the
/// cache's reads and writes, cached tokens the reads (cache writes are billed as input, as
/// the price table says). `usd` is `None` when a model has no price; lines that do not parse
/// are left out. The cost is final: results exist only once the batch has ended.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be opened, [`Error::Anthropic`] when it cannot be read
/// (or holds a line over the size limit).
pub fn message_batch_cost(
    results: &Path,
    model: Option<&str>,
    prices: &batch_request::PriceTable,
) -> Result<BatchCost, Error> {
    let file = std::fs::File::open(results).map_err(|source| Error::io("read", results, source))?;
    let mut cost = BatchCost {
        input_tokens: 0,
        cached_tokens: 0,
        output_tokens: 0,
        usd: Some(0.0),
        is_final: true,
    };
    for line in anthropic_batch_client::read_results(BufReader::new(file)) {
        let line = match line {
            Ok(line) => line,
            Err(anthropic_batch_client::Error::ResultLine { .. }) => continue,
            Err(err) => return Err(err.into()),
        };
        let anthropic_batch_client::BatchResult::Succeeded { message } = line.result else {
            continue;
        };
        let usage = lesson_writer::anthropic::usage(&message.usage);
        let cached = usage
            .prompt_tokens_details
            .map_or(0, |details| details.cached_tokens);
        cost.input_tokens += usage.prompt_tokens;
        cost.cached_tokens += cached;
        cost.output_tokens += usage.completion_tokens;
        let price = prices
            .get(&message.model)
            .or_else(|| model.and_then(|model| prices.get(model)));
        cost.usd = match (cost.usd, price) {
            (Some(usd), Some(price)) => {
                Some(usd + price.batch_cost(usage.prompt_tokens, cached, usage.completion_tokens))
            }
            _ => None,
        };
    }
    Ok(cost)
}

/// The account's `limit` most recent batches, newest first (pages of at most 100).
///
/// # Errors
///
/// [`Error::Client`] when a page cannot be fetched.
pub async fn recent_batches(client: &Client, limit: usize) -> Result<Vec<Batch>, Error> {
    let page = u32::try_from(limit.clamp(1, 100)).unwrap_or(100);
    let stream = client.list_batches(Some(page));
    futures::pin_mut!(stream);
    let mut batches = Vec::with_capacity(limit.min(100));
    while batches.len() < limit {
        let Some(batch) = stream.next().await else {
            break;
        };
        batches.push(batch?);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(status: &str, usage: Option<serde_json::Value>) -> Batch {
        let mut value = serde_json::json!({
            "id": "batch_1",
            "endpoint": "/v1/chat/completions",
            "model": "gpt-4o-mini",
            "input_file_id": "file-1",
            "completion_window": "24h",
            "status": status,
            "created_at": 1_700_000_000,
        });
        if let Some(usage) = usage {
            value["usage"] = usage;
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_batch_costs_its_reported_usage_at_batch_prices() {
        let prices = batch_request::PriceTable::builtin();
        let usage = serde_json::json!({
            "input_tokens": 2_000_000,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 1_000_000,
            "total_tokens": 3_000_000
        });
        let running =
            batch_cost(&batch("in_progress", Some(usage.clone())), None, &prices).unwrap();
        // gpt-4o-mini at batch prices: $0.075 per 1M input, $0.30 per 1M output.
        assert!((running.usd.unwrap() - 0.45).abs() < 1e-9, "{running:?}");
        assert!(!running.is_final);
        assert!(
            batch_cost(&batch("completed", Some(usage)), None, &prices)
                .unwrap()
                .is_final
        );
        // No usage reported: no cost is guessed.
        assert_eq!(batch_cost(&batch("completed", None), None, &prices), None);
    }

    #[test]
    fn a_message_batch_costs_the_usage_of_its_results_at_batch_prices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("msgbatch_1_results.jsonl");
        // Cache reads count as cached input, cache writes as input; failed requests cost
        // nothing; a line that does not parse is left out.
        let lines = [
            r#"{"custom_id":"lesson_M0-L001","result":{"type":"succeeded","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{"type":"text","text":"Lesson A"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1000000,"cache_creation_input_tokens":500000,"cache_read_input_tokens":0,"output_tokens":200000}}}}"#,
            r#"{"custom_id":"lesson_M0-L002","result":{"type":"succeeded","message":{"id":"msg_2","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{"type":"text","text":"Lesson B"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":500000,"cache_read_input_tokens":1000000,"output_tokens":200000}}}}"#,
            r#"{"custom_id":"lesson_M0-L003","result":{"type":"errored","error":{"type":"error","error":{"type":"api_error","message":"x"}}}}"#,
            r#"{"custom_id":"lesson_M0-L004","result":{"type":"expired"}}"#,
            "not json",
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let mut prices = batch_request::PriceTable::builtin();
        // Set the price here, so the test does not follow the built-in table's updates.
        prices.models.insert(
            "claude-haiku-4-5".to_owned(),
            batch_request::ModelPrice {
                input: 1.0,
                cached_input: Some(0.1),
                output: 5.0,
                batch_input: 0.5,
                batch_cached_input: Some(0.05),
                batch_output: 2.5,
            },
        );
        let cost = message_batch_cost(&path, None, &prices).unwrap();
        assert_eq!(
            (cost.input_tokens, cost.cached_tokens, cost.output_tokens),
            (3_000_000, 1_000_000, 400_000)
        );
        assert!(cost.is_final);
        // 2M uncached input at $0.50, 1M cached at $0.05, 0.4M output at $2.50.
        assert!((cost.usd.unwrap() - 2.05).abs() < 1e-9, "{cost:?}");

        // A model without a price: the tokens are known, the dollars are not.
        let reference = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/anthropic-results/reference.jsonl"
        );
        let cost = message_batch_cost(Path::new(reference), None, &prices).unwrap();
        assert_eq!((cost.input_tokens, cost.output_tokens), (1200, 2400));
        assert_eq!(cost.usd, None);
        // Unless the job's model has one.
        let cost =
            message_batch_cost(Path::new(reference), Some("claude-haiku-4-5"), &prices).unwrap();
        assert!((cost.usd.unwrap() - (1200.0 * 0.5 + 2400.0 * 2.5) / 1e6).abs() < 1e-12);

        assert!(matches!(
            message_batch_cost(&dir.path().join("none.jsonl"), None, &prices),
            Err(Error::Io { .. })
        ));
    }
}
