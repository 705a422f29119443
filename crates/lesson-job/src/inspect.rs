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
