//! Async client for the OpenAI Files and Batches APIs, with streamed transfers,
//! retries, and an idempotent job runner whose ledger remembers what was sent.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
//! # let server = MockServer::start().await;
//! # Mock::given(matchers::method("GET"))
//! #     .and(matchers::path("/batches/batch_1"))
//! #     .and(matchers::header("authorization", "Bearer sk-test"))
//! #     .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
//! #         "id": "batch_1", "object": "batch", "endpoint": "/v1/chat/completions",
//! #         "input_file_id": "file-1", "completion_window": "24h", "status": "in_progress",
//! #         "created_at": 1, "request_counts": {"total": 10, "completed": 4, "failed": 0}
//! #     })))
//! #     .mount(&server)
//! #     .await;
//! # let base_url = server.uri();
//! use openai_batch_client::{BatchId, BatchStatus, Client, ClientConfig, SecretString};
//!
//! // The binary reads the key and base URL from the environment; the library never does.
//! let config = ClientConfig::new(base_url, SecretString::from("sk-test"));
//! let client = Client::new(config)?;
//! let batch = client.retrieve_batch(&BatchId::from("batch_1")).await?;
//! assert_eq!(batch.status, BatchStatus::InProgress);
//! assert_eq!(batch.counts().completed, 4);
//! # Ok(())
//! # }
//! ```
//!
//! The pieces:
//!
//! - [`Client`] speaks the Files API ([`Client::upload_file`], [`Client::download_file_to`],
//!   [`Client::retrieve_file`], [`Client::delete_file`]) and the Batches API
//!   ([`Client::create_batch`], [`Client::retrieve_batch`], [`Client::list_batches`],
//!   [`Client::cancel_batch`]), retrying as the official SDK does ([`RetryPolicy`]); one
//!   request can also be answered right away with [`Client::chat_completion`].
//! - [`Client::wait_for_batch`] polls with an adaptive interval ([`PollConfig`]).
//! - [`JobRunner`] drives shard files ([`ShardInput`]: a stable id and a path) through upload,
//!   create, poll and download, recording each intent and result in a [`Ledger`] so that an
//!   interrupted job resumes without uploading, creating or downloading anything twice; with
//!   [`JobConfig::job_key`] it even takes over the unfinished batches of a lost ledger.
//! - Progress reaches the caller through [`Progress`] and [`JobProgress`], and every retried
//!   request through [`RetryProgress`] ([`Client::with_retry_progress`]); the library prints
//!   nothing and reads no environment variables.

#![warn(missing_docs)]

mod batches;
mod chat;
mod client;
mod error;
mod files;
mod job;
mod ledger;
mod poll;
mod progress;
mod retry;
mod types;
mod url;

pub use batches::{CreateBatchRequest, RUN_ID_KEY};
pub use chat::CHAT_COMPLETIONS_PATH;
pub use client::{Client, ClientConfig, Timeouts};
pub use error::{ApiError, ApiErrorKind, Error};
pub use files::{MAX_FILE_EXPIRY_SECS, MIN_FILE_EXPIRY_SECS};
pub use job::{
    ATTEMPT_KEY, DEFAULT_INPUT_EXPIRY_SECS, JobConfig, JobRunner, SHARD_KEY, SHARD_SHA256_KEY,
    ShardInput, TokenLimitBackoff,
};
pub use ledger::{AttemptRecord, LEDGER_VERSION, Ledger, ShardRecord, ShardStage, sha256_file};
pub use poll::PollConfig;
pub use progress::{JobEvent, JobProgress, Progress};
pub use retry::RetryPolicy;
pub use sdk_retry::{RetryEvent, RetryProgress};
pub use secrecy::{ExposeSecret, SecretString};
pub use types::{
    Batch, BatchError, BatchErrors, BatchId, BatchStatus, BatchUsage, DeletedFile, FileId,
    FileObject, InputTokensDetails, ListPage, OutputTokensDetails, RequestCounts,
};
pub use url::redacted_url;
