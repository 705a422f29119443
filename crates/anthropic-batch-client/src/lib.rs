//! Async client for Anthropic's Message Batches API: typed requests and results, results
//! streamed line by line, the official SDK's retries, and the key kept out of every message.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
//! # let server = MockServer::start().await;
//! # let batch = serde_json::json!({
//! #     "id": "msgbatch_1", "type": "message_batch", "processing_status": "in_progress",
//! #     "request_counts": {"processing": 1, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
//! #     "ended_at": null, "created_at": "2026-12-04T10:00:00Z", "expires_at": "2026-12-05T10:00:00Z",
//! #     "archived_at": null, "cancel_initiated_at": null, "results_url": null
//! # });
//! # Mock::given(matchers::method("POST"))
//! #     .and(matchers::path("/v1/messages/batches"))
//! #     .and(matchers::header("x-api-key", "sk-ant-test"))
//! #     .and(matchers::header("anthropic-version", "2023-06-01"))
//! #     .respond_with(ResponseTemplate::new(200).set_body_json(batch))
//! #     .mount(&server)
//! #     .await;
//! # let base_url = server.uri();
//! use anthropic_batch_client::{
//!     BatchRequest, BatchResult, BatchResultLine, Client, ClientConfig, CustomId, MessageParam,
//!     MessageParams, ProcessingStatus, SecretString, StopReason, SystemPrompt, TextBlockParam,
//! };
//!
//! // One request: the shared instructions are a cached system block, the lesson a user message.
//! let request = BatchRequest {
//!     custom_id: CustomId::new("lesson_M0-L001")?,
//!     params: MessageParams {
//!         model: "claude-sonnet-4-5".to_owned(),
//!         max_tokens: 8192,
//!         system: Some(SystemPrompt::Blocks(vec![TextBlockParam::cached("You write lessons.")])),
//!         messages: vec![MessageParam::user("Write lesson M0-L001.")],
//!         extra: Default::default(),
//!     },
//! };
//!
//! // The binary reads the key and base URL from the environment; the library never does.
//! let client = Client::new(ClientConfig::new(base_url, SecretString::from("sk-ant-test")))?;
//! let batch = client.create_batch(&[request]).await?;
//! assert_eq!(batch.processing_status, ProcessingStatus::InProgress);
//!
//! // Once the batch has ended, `client.results(&batch)` yields lines like this one.
//! let line = br##"{"custom_id": "lesson_M0-L001", "result": {"type": "succeeded", "message": {
//!     "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
//!     "content": [{"type": "text", "text": "# Lesson"}], "stop_reason": "end_turn",
//!     "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 20}}}}"##;
//! let line = BatchResultLine::parse(line, 1)?;
//! let BatchResult::Succeeded { message } = line.result else { unreachable!() };
//! assert_eq!(message.text(), "# Lesson");
//! assert_eq!(message.stop_reason, Some(StopReason::EndTurn));
//! # Ok(())
//! # }
//! ```
//!
//! The pieces:
//!
//! - [`Client`] creates a batch from [`BatchRequest`]s ([`Client::create_batch`], checking the
//!   limits [`MAX_REQUESTS`] and [`MAX_BATCH_BYTES`] and unique [`CustomId`]s first), and
//!   retrieves, lists, cancels and deletes batches ([`MessageBatch`]).
//! - [`Client::create_message`] sends one request right away through the Messages API (a
//!   preview at the standard price, before a batch).
//! - [`Client::results`] streams an ended batch's results as [`BatchResultLine`]s;
//!   [`Client::download_results_to`] writes the JSONL to a file; [`read_results`] reads such a
//!   file again.
//! - Failed calls are retried as the official SDK does ([`RetryPolicy`]), except a create whose
//!   batch may exist ([`Error::is_ambiguous`]). API errors keep Anthropic's error type and the
//!   `request-id` ([`ApiError`]). Each retry, and a retried call that got through, is told to a
//!   [`RetryProgress`] set with [`Client::with_retry_progress`], so a caller need not fall silent.
//! - The key is a [`SecretString`]: `Debug` shows it redacted, it goes out only as the
//!   `x-api-key` header (marked sensitive) and never into an error.
//!
//! The crate knows nothing of lessons, and reads no environment variables.

#![warn(missing_docs)]

mod batches;
mod client;
mod download;
mod error;
mod messages;
mod request;
mod results;
mod retry;
mod types;

pub use client::{ANTHROPIC_VERSION, Client, ClientConfig, DEFAULT_BASE_URL, Timeouts};
pub use error::{ApiError, ApiErrorKind, Error};
pub use messages::MESSAGES_PATH;
pub use request::{
    BatchRequest, CacheControl, CustomId, MAX_BATCH_BYTES, MAX_CUSTOM_ID_LEN, MAX_REQUESTS,
    MessageContent, MessageParam, MessageParams, Role, SystemPrompt, TextBlockParam,
};
pub use results::{
    BatchResult, BatchResultLine, CacheCreation, ContentBlock, ErrorObject, ErrorResponse,
    ErrorType, MAX_RESULT_LINE_BYTES, Message, ResultLines, StopReason, Usage, read_results,
};
pub use retry::RetryPolicy;
pub use sdk_retry::{RetryEvent, RetryProgress};
pub use secrecy::{ExposeSecret, SecretString};
pub use types::{
    DeletedMessageBatch, ListParams, MessageBatch, MessageBatchId, Page, ProcessingStatus,
    RequestCounts,
};
