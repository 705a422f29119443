//! The `MessageBatch` object, read from the internal batch that runs it, and the
//! bookkeeping a message batch keeps in that batch's `extra` map.

use chrono::{DateTime, SecondsFormat};
use openai_batch_client::{Batch, BatchStatus};
use serde::{Deserialize, Serialize};

use crate::anthropic::{RESULTS_LIFETIME, is_message_batch};

/// The key of [`Bookkeeping`] in the internal batch's `extra` map.
const EXTRA_KEY: &str = "message_batch";

/// What a message batch counts beyond the internal batch's `completed`/`failed`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Bookkeeping {
    /// Requests in the batch, known from the create call.
    pub(crate) requests: u64,
    /// Error lines that are `canceled` results (`batch_cancelled`).
    pub(crate) canceled: u64,
    /// Error lines that are `expired` results (`batch_expired`).
    pub(crate) expired: u64,
}

impl Bookkeeping {
    /// The bookkeeping of a message batch (zero for any other batch).
    pub(crate) fn of(batch: &Batch) -> Bookkeeping {
        batch
            .extra
            .get(EXTRA_KEY)
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default()
    }

    /// Stores it in the batch.
    pub(crate) fn store(self, batch: &mut Batch) {
        let value = serde_json::to_value(self).expect("plain counts always serialize");
        batch.extra.insert(EXTRA_KEY.to_owned(), value);
    }
}

/// Counts an error line of a message batch that is a `canceled` or `expired` result.
pub(crate) fn count_not_run(batch: &mut Batch, code: &str) {
    if !is_message_batch(batch) {
        return;
    }
    let mut bookkeeping = Bookkeeping::of(batch);
    match code {
        "batch_cancelled" => bookkeeping.canceled += 1,
        "batch_expired" => bookkeeping.expired += 1,
        _ => return,
    }
    bookkeeping.store(batch);
}

/// Forgets the counted lines of a message batch that starts over (a resumed run).
pub(crate) fn reset_counts(batch: &mut Batch) {
    if !is_message_batch(batch) {
        return;
    }
    let bookkeeping = Bookkeeping::of(batch);
    Bookkeeping {
        requests: bookkeeping.requests,
        ..Bookkeeping::default()
    }
    .store(batch);
}

/// `in_progress`, `canceling` or `ended`.
pub(crate) fn processing_status(status: BatchStatus) -> &'static str {
    match status {
        BatchStatus::Cancelling => "canceling",
        status if status.is_terminal() => "ended",
        _ => "in_progress",
    }
}

/// Whether a message batch has ended.
pub(crate) fn has_ended(batch: &Batch) -> bool {
    batch.status.is_terminal()
}

/// `request_counts`: everything in `processing` until the batch has ended, then each
/// request in exactly one of the other four.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub(crate) struct RequestCounts {
    pub(crate) processing: u64,
    pub(crate) succeeded: u64,
    pub(crate) errored: u64,
    pub(crate) canceled: u64,
    pub(crate) expired: u64,
}

/// The counts of a message batch.
///
/// Requests the run never wrote a line for (a batch cancelled or expired before its
/// requests started, or one the emulator failed) count as what the batch ended as.
pub(crate) fn request_counts(batch: &Batch) -> RequestCounts {
    let bookkeeping = Bookkeeping::of(batch);
    if !has_ended(batch) {
        return RequestCounts {
            processing: bookkeeping.requests,
            ..RequestCounts::default()
        };
    }
    let counts = batch.counts();
    let written = counts.completed + counts.failed;
    let missing = bookkeeping.requests.saturating_sub(written);
    let mut result = RequestCounts {
        processing: 0,
        succeeded: counts.completed,
        errored: counts
            .failed
            .saturating_sub(bookkeeping.canceled + bookkeeping.expired),
        canceled: bookkeeping.canceled,
        expired: bookkeeping.expired,
    };
    match missing_result(batch.status) {
        Missing::Canceled => result.canceled += missing,
        Missing::Expired => result.expired += missing,
        Missing::Errored => result.errored += missing,
    }
    result
}

/// What a request without a result line becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    Canceled,
    Expired,
    Errored,
}

/// What the requests a run wrote no line for become, by how the batch ended.
pub(crate) fn missing_result(status: BatchStatus) -> Missing {
    match status {
        BatchStatus::Cancelled | BatchStatus::Cancelling => Missing::Canceled,
        BatchStatus::Expired => Missing::Expired,
        _ => Missing::Errored,
    }
}

/// The `MessageBatch` object, with its fields in the API's order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct MessageBatch {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) processing_status: &'static str,
    pub(crate) request_counts: RequestCounts,
    pub(crate) ended_at: Option<String>,
    pub(crate) created_at: String,
    pub(crate) expires_at: String,
    pub(crate) archived_at: Option<String>,
    pub(crate) cancel_initiated_at: Option<String>,
    pub(crate) results_url: Option<String>,
}

/// When a message batch's results are gone: 29 days after its creation.
pub(crate) fn archived_at(batch: &Batch) -> i64 {
    batch.created_at.saturating_add(RESULTS_LIFETIME)
}

/// Whether an ended batch's results are gone at `now` (Unix seconds, on the file clock).
pub(crate) fn is_archived(batch: &Batch, now: i64) -> bool {
    has_ended(batch) && now >= archived_at(batch)
}

/// The `MessageBatch` for an internal batch at `now` (Unix seconds, on the file clock);
/// `results_url` is `{origin}/v1/messages/batches/{id}/results` once it has ended, and
/// `archived_at` is set once its results are gone.
pub(crate) fn message_batch(batch: &Batch, origin: &str, now: i64) -> MessageBatch {
    let ended_at = [
        batch.completed_at,
        batch.cancelled_at,
        batch.expired_at,
        batch.failed_at,
    ]
    .into_iter()
    .flatten()
    .next();
    let ended = has_ended(batch);
    MessageBatch {
        id: batch.id.to_string(),
        kind: "message_batch",
        processing_status: processing_status(batch.status),
        request_counts: request_counts(batch),
        ended_at: ended_at.filter(|_| ended).map(rfc3339),
        created_at: rfc3339(batch.created_at),
        expires_at: rfc3339(batch.expires_at.unwrap_or(batch.created_at)),
        archived_at: is_archived(batch, now).then(|| rfc3339(archived_at(batch))),
        cancel_initiated_at: batch.cancelling_at.map(rfc3339),
        results_url: ended.then(|| format!("{origin}/v1/messages/batches/{}/results", batch.id)),
    }
}

/// Unix seconds as an RFC 3339 string in UTC (`2026-12-04T20:08:43Z`).
pub(crate) fn rfc3339(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_414_923), "2026-12-04T20:08:43Z");
    }

    #[test]
    fn statuses_map_to_processing_status() {
        assert_eq!(processing_status(BatchStatus::Validating), "in_progress");
        assert_eq!(processing_status(BatchStatus::Finalizing), "in_progress");
        assert_eq!(processing_status(BatchStatus::Cancelling), "canceling");
        for status in [
            BatchStatus::Completed,
            BatchStatus::Cancelled,
            BatchStatus::Expired,
            BatchStatus::Failed,
        ] {
            assert_eq!(processing_status(status), "ended");
        }
    }
}
