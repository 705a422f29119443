//! The HTTP objects of the Message Batches API: `MessageBatch`, its id, counts and list pages.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A message batch id (`msgbatch_...`). Opaque: never parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageBatchId(pub String);

impl MessageBatchId {
    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageBatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for MessageBatchId {
    fn from(id: &str) -> Self {
        MessageBatchId(id.to_owned())
    }
}

impl From<String> for MessageBatchId {
    fn from(id: String) -> Self {
        MessageBatchId(id)
    }
}

/// A batch's `processing_status`. Unknown statuses parse as [`ProcessingStatus::Unknown`] so a
/// new server-side status never breaks parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingStatus {
    /// Requests are running.
    InProgress,
    /// Cancel requested; requests already running may still finish.
    Canceling,
    /// Processing has ended (all done, canceled or expired): the one terminal status.
    Ended,
    /// A status this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl ProcessingStatus {
    /// Whether the batch will not change any more: only `ended`.
    pub fn is_terminal(self) -> bool {
        self == ProcessingStatus::Ended
    }

    /// The wire name (`in_progress`), `unknown` for the fallback.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingStatus::InProgress => "in_progress",
            ProcessingStatus::Canceling => "canceling",
            ProcessingStatus::Ended => "ended",
            ProcessingStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ProcessingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `request_counts` of a batch.
///
/// Only `processing` moves while the batch runs: the others stay 0 until it has ended, and
/// then the five add up to the number of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Requests still running.
    #[serde(default)]
    pub processing: u64,
    /// Requests that succeeded.
    #[serde(default)]
    pub succeeded: u64,
    /// Requests that failed.
    #[serde(default)]
    pub errored: u64,
    /// Requests canceled before they ran.
    #[serde(default)]
    pub canceled: u64,
    /// Requests that did not run within the 24 hours.
    #[serde(default)]
    pub expired: u64,
}

impl RequestCounts {
    /// The five counts added up: the batch's number of requests.
    pub fn total(&self) -> u64 {
        self.processing + self.succeeded + self.errored + self.canceled + self.expired
    }
}

/// A message batch, as returned by create, retrieve, list and cancel.
///
/// Unknown fields are kept in `extra`, so the object can be shown as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageBatch {
    /// The batch id.
    pub id: MessageBatchId,
    /// Always `message_batch`.
    #[serde(rename = "type", default = "message_batch_type")]
    pub object_type: String,
    /// Where processing stands.
    pub processing_status: ProcessingStatus,
    /// Requests per state.
    #[serde(default)]
    pub request_counts: RequestCounts,
    /// When processing ended, once it has.
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// When the batch was created.
    pub created_at: DateTime<Utc>,
    /// When unfinished requests expire (24 hours after creation).
    pub expires_at: DateTime<Utc>,
    /// When the results were archived and stopped being available.
    #[serde(default)]
    pub archived_at: Option<DateTime<Utc>>,
    /// When a cancel was asked for.
    #[serde(default)]
    pub cancel_initiated_at: Option<DateTime<Utc>>,
    /// Where the results JSONL can be downloaded, once processing has ended.
    #[serde(default)]
    pub results_url: Option<String>,
    /// Fields this client does not know yet.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn message_batch_type() -> String {
    "message_batch".to_owned()
}

/// One page of `GET /v1/messages/batches`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Whether more items follow in the direction paged.
    #[serde(default)]
    pub has_more: bool,
    /// Id of the first item: pass it as `before_id` for the page before.
    #[serde(default)]
    pub first_id: Option<String>,
    /// Id of the last item: pass it as `after_id` for the next page.
    #[serde(default)]
    pub last_id: Option<String>,
}

/// The query of one list page: at most one of `before_id` and `after_id`, and `limit` (1 to
/// 1,000; the server's default is 20).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Items just before this id (newer ones).
    pub before_id: Option<String>,
    /// Items just after this id (older ones).
    pub after_id: Option<String>,
    /// Items per page.
    pub limit: Option<u32>,
}

/// The answer of `DELETE /v1/messages/batches/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedMessageBatch {
    /// The deleted batch's id.
    pub id: MessageBatchId,
    /// Always `message_batch_deleted`.
    #[serde(rename = "type")]
    pub object_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_ended_batch_and_keeps_unknown_fields() {
        let json = r#"{"id":"msgbatch_01","type":"message_batch","processing_status":"ended",
            "request_counts":{"processing":0,"succeeded":3,"errored":1,"canceled":0,"expired":1},
            "ended_at":"2024-09-24T19:00:00.5Z","created_at":"2024-09-24T18:37:24.100435Z",
            "expires_at":"2024-09-25T18:37:24.100435Z","archived_at":null,"cancel_initiated_at":null,
            "results_url":"https://api.anthropic.com/v1/messages/batches/msgbatch_01/results",
            "brand_new":{"x":1}}"#;
        let batch: MessageBatch = serde_json::from_str(json).unwrap();
        assert!(batch.processing_status.is_terminal());
        assert_eq!(batch.request_counts.total(), 5);
        assert_eq!(
            batch.created_at.to_rfc3339(),
            "2024-09-24T18:37:24.100435+00:00"
        );
        assert!(batch.ended_at.is_some());
        assert_eq!(batch.archived_at, None);
        assert_eq!(batch.extra["brand_new"], serde_json::json!({"x": 1}));
        let again: MessageBatch =
            serde_json::from_value(serde_json::to_value(&batch).unwrap()).unwrap();
        assert_eq!(again, batch);
    }

    #[test]
    fn statuses_and_an_unknown_one() {
        let status = |text: &str| -> ProcessingStatus {
            serde_json::from_value(serde_json::json!(text)).unwrap()
        };
        assert_eq!(status("in_progress"), ProcessingStatus::InProgress);
        assert_eq!(status("canceling"), ProcessingStatus::Canceling);
        assert_eq!(status("paused"), ProcessingStatus::Unknown);
        let terminal: Vec<_> = [
            ProcessingStatus::InProgress,
            ProcessingStatus::Canceling,
            ProcessingStatus::Ended,
            ProcessingStatus::Unknown,
        ]
        .into_iter()
        .filter(|status| status.is_terminal())
        .map(ProcessingStatus::as_str)
        .collect();
        assert_eq!(terminal, ["ended"]);
    }
}
