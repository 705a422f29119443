//! The HTTP objects of the Files and Batches APIs: `Batch`, `FileObject`, ids and lists.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A batch id (`batch_...`). Opaque: never parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchId(pub String);

/// A file id (`file-...`). Opaque: never parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileId(pub String);

macro_rules! id_impls {
    ($name:ident) => {
        impl $name {
            /// The id as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }
        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }
    };
}
id_impls!(BatchId);
id_impls!(FileId);

/// A batch's status. Unknown statuses parse as [`BatchStatus::Unknown`] so a new
/// server-side status never breaks parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// The input file is being validated.
    Validating,
    /// The input file failed validation (or the batch was refused, e.g. `token_limit_exceeded`).
    Failed,
    /// Requests are running.
    InProgress,
    /// All requests are done, results are being written.
    Finalizing,
    /// Results are ready.
    Completed,
    /// The 24 h window passed; partial results may exist.
    Expired,
    /// Cancel requested; in-flight requests are finishing.
    Cancelling,
    /// Cancelled; partial results may exist.
    Cancelled,
    /// A status this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl BatchStatus {
    /// Whether the batch will not change any more: completed, failed, expired or cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BatchStatus::Completed
                | BatchStatus::Failed
                | BatchStatus::Expired
                | BatchStatus::Cancelled
        )
    }

    /// The wire name (`in_progress`), `unknown` for the fallback.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Validating => "validating",
            BatchStatus::Failed => "failed",
            BatchStatus::InProgress => "in_progress",
            BatchStatus::Finalizing => "finalizing",
            BatchStatus::Completed => "completed",
            BatchStatus::Expired => "expired",
            BatchStatus::Cancelling => "cancelling",
            BatchStatus::Cancelled => "cancelled",
            BatchStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch, as returned by create, retrieve, list and cancel.
///
/// Only `id`, `object`, `endpoint`, `input_file_id`, `completion_window`, `status` and
/// `created_at` are required by the spec; everything else is optional. An empty string
/// file id is treated as absent. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The batch id.
    pub id: BatchId,
    /// Always `batch`.
    #[serde(default = "batch_object")]
    pub object: String,
    /// The endpoint every request line targets, e.g. `/v1/chat/completions`.
    pub endpoint: String,
    /// The model, on newer responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Validation errors; `null` unless the batch failed validation.
    #[serde(default)]
    pub errors: Option<BatchErrors>,
    /// The uploaded input file.
    pub input_file_id: FileId,
    /// Always `24h`.
    pub completion_window: String,
    /// Current status.
    pub status: BatchStatus,
    /// Output file (successful requests), set at a terminal status when at least one succeeded.
    #[serde(default, deserialize_with = "non_empty_file_id")]
    pub output_file_id: Option<FileId>,
    /// Error file (failed requests), set at a terminal status when at least one failed.
    #[serde(default, deserialize_with = "non_empty_file_id")]
    pub error_file_id: Option<FileId>,
    /// Unix seconds.
    pub created_at: i64,
    /// When validation passed.
    #[serde(default)]
    pub in_progress_at: Option<i64>,
    /// When the completion window ends (`created_at + 86400`).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// When finalizing started.
    #[serde(default)]
    pub finalizing_at: Option<i64>,
    /// When it completed.
    #[serde(default)]
    pub completed_at: Option<i64>,
    /// When it failed.
    #[serde(default)]
    pub failed_at: Option<i64>,
    /// When it expired.
    #[serde(default)]
    pub expired_at: Option<i64>,
    /// When cancel was requested.
    #[serde(default)]
    pub cancelling_at: Option<i64>,
    /// When it was cancelled.
    #[serde(default)]
    pub cancelled_at: Option<i64>,
    /// Request totals; `total` is 0 while validating.
    #[serde(default)]
    pub request_counts: Option<RequestCounts>,
    /// Token usage of the whole batch (batches created after 2025-09-07).
    #[serde(default)]
    pub usage: Option<BatchUsage>,
    /// String key/value pairs echoed back (we store our run id here).
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Fields this client does not know yet, kept so the object can be shown as received.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn batch_object() -> String {
    "batch".to_owned()
}

fn non_empty_file_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<FileId>, D::Error> {
    let id: Option<String> = Option::deserialize(deserializer)?;
    Ok(id.filter(|id| !id.is_empty()).map(FileId))
}

impl Batch {
    /// A metadata value, if set.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key).map(String::as_str)
    }

    /// Whether the batch failed because the enqueued-token limit of its model was reached
    /// (`errors.data[].code == "token_limit_exceeded"`): nothing ran, so it can be retried later.
    pub fn token_limit_exceeded(&self) -> bool {
        self.status == BatchStatus::Failed
            && self.errors.as_ref().is_some_and(|errors| {
                errors
                    .data
                    .iter()
                    .any(|error| error.code.as_deref() == Some("token_limit_exceeded"))
            })
    }

    /// The counts, all zero when the server sent none.
    pub fn counts(&self) -> RequestCounts {
        self.request_counts.unwrap_or_default()
    }
}

/// `request_counts` of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Requests in the input file.
    #[serde(default)]
    pub total: u64,
    /// Requests that succeeded (lines in the output file).
    #[serde(default)]
    pub completed: u64,
    /// Requests that failed (lines in the error file).
    #[serde(default)]
    pub failed: u64,
}

/// `errors` of a batch that failed validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchErrors {
    /// Always `list`.
    #[serde(default)]
    pub object: Option<String>,
    /// The errors.
    #[serde(default)]
    pub data: Vec<BatchError>,
}

/// One validation error of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchError {
    /// E.g. `duplicate_custom_id`, `invalid_json_line`, `token_limit_exceeded`; any code is accepted.
    #[serde(default)]
    pub code: Option<String>,
    /// Human-readable message.
    #[serde(default)]
    pub message: Option<String>,
    /// The parameter at fault (`custom_id`, `body.model`, `url`, ...).
    #[serde(default)]
    pub param: Option<String>,
    /// 1-based line of the input file; `null` for file-level errors.
    #[serde(default)]
    pub line: Option<u64>,
}

/// `usage` of a batch: totals over all its requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchUsage {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Details of the input tokens.
    #[serde(default)]
    pub input_tokens_details: Option<InputTokensDetails>,
    /// Output tokens, reasoning included.
    #[serde(default)]
    pub output_tokens: u64,
    /// Details of the output tokens.
    #[serde(default)]
    pub output_tokens_details: Option<OutputTokensDetails>,
    /// Input plus output.
    #[serde(default)]
    pub total_tokens: u64,
}

/// Details of a batch's input tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Tokens served from the prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

/// Details of a batch's output tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Hidden reasoning tokens.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

/// A file, as returned by upload, retrieve and list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileObject {
    /// The file id.
    pub id: FileId,
    /// Always `file`.
    #[serde(default = "file_object")]
    pub object: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// The name given at upload (or `batch_<id>_output.jsonl` for results).
    pub filename: String,
    /// `batch`, `batch_output`, ...
    pub purpose: String,
    /// Deprecated upload status (`uploaded`, `processed`, `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// When the file will be deleted, if it expires.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

fn file_object() -> String {
    "file".to_owned()
}

/// The answer of `DELETE /files/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedFile {
    /// The deleted file's id.
    pub id: FileId,
    /// Always `file`.
    #[serde(default = "file_object")]
    pub object: String,
    /// Whether the file is gone.
    pub deleted: bool,
}

/// One page of a list endpoint (`GET /batches`, `GET /files`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage<T> {
    /// Always `list`.
    #[serde(default)]
    pub object: Option<String>,
    /// The items of this page.
    pub data: Vec<T>,
    /// Id of the first item.
    #[serde(default)]
    pub first_id: Option<String>,
    /// Id of the last item: pass it as `after` for the next page.
    #[serde(default)]
    pub last_id: Option<String>,
    /// Whether more pages follow.
    #[serde(default)]
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_batch_with_legacy_usage_keys_and_unknown_fields() {
        let json = r#"{"id":"batch_abc","object":"batch","endpoint":"/v1/chat/completions","model":"gpt-5-2025-08-07",
            "errors":null,"input_file_id":"file-in","completion_window":"24h","status":"completed",
            "output_file_id":"file-out","error_file_id":"","created_at":1,"in_progress_at":2,"expires_at":86401,
            "finalizing_at":3,"completed_at":4,"failed_at":null,"expired_at":null,"cancelling_at":null,"cancelled_at":null,
            "request_counts":{"total":3,"completed":3,"failed":0},
            "usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":20,
              "output_tokens_details":{"reasoning_tokens":5},"total_tokens":30,"prompt_tokens":0,"completion_tokens":0,
              "prompt_tokens_details":null,"completion_tokens_details":null},
            "metadata":{"run_id":"r1"},"brand_new_field":{"x":1}}"#;
        let batch: Batch = serde_json::from_str(json).unwrap();
        assert_eq!(batch.status, BatchStatus::Completed);
        assert_eq!(batch.output_file_id, Some(FileId::from("file-out")));
        assert_eq!(batch.error_file_id, None, "empty string is absent");
        assert_eq!(batch.counts().completed, 3);
        assert_eq!(
            batch
                .usage
                .unwrap()
                .input_tokens_details
                .unwrap()
                .cached_tokens,
            4
        );
        assert_eq!(batch.metadata_value("run_id"), Some("r1"));
        // Unknown fields survive a round trip, so `--json` can show the batch as received.
        assert_eq!(batch.extra["brand_new_field"], serde_json::json!({"x": 1}));
        let again = serde_json::to_value(&batch).unwrap();
        assert_eq!(again["brand_new_field"]["x"], 1);
    }

    #[test]
    fn parses_a_minimal_batch_and_an_unknown_status() {
        let json = r#"{"id":"batch_1","object":"batch","endpoint":"/v1/chat/completions","input_file_id":"file-1",
            "completion_window":"24h","status":"paused_for_maintenance","created_at":5}"#;
        let batch: Batch = serde_json::from_str(json).unwrap();
        assert_eq!(batch.status, BatchStatus::Unknown);
        assert!(!batch.status.is_terminal());
        assert_eq!(batch.request_counts, None);
        assert_eq!(batch.output_file_id, None);
    }

    #[test]
    fn terminal_statuses() {
        let terminal: Vec<_> = [
            BatchStatus::Validating,
            BatchStatus::Failed,
            BatchStatus::InProgress,
            BatchStatus::Finalizing,
            BatchStatus::Completed,
            BatchStatus::Expired,
            BatchStatus::Cancelling,
            BatchStatus::Cancelled,
        ]
        .into_iter()
        .filter(|status| status.is_terminal())
        .map(BatchStatus::as_str)
        .collect();
        assert_eq!(terminal, ["failed", "completed", "expired", "cancelled"]);
    }
}
