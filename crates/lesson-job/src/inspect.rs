//! One batch looked at on its own, for `check-batch-status`: find it, cancel it, follow it to
//! its end, download its results; and the account's recent batches.

use std::path::Path;

use futures::StreamExt;
use openai_batch_client::{Batch, BatchId, Client, JobEvent, JobProgress, PollConfig};

use crate::Error;
use crate::work_dir::{DownloadedResults, download_results, latest_batch};

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
}
