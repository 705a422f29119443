//! A local OpenAI Files + Batches API server, for offline runs, end-to-end tests and local models.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use batch_emulator::{Emulator, EmulatorConfig};
//!
//! let emulator = Emulator::start(EmulatorConfig::fast()).await?;
//! assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
//! let batches: serde_json::Value = reqwest::Client::new()
//!     .get(format!("{}/batches", emulator.base_url()))
//!     .bearer_auth("any-non-empty-key")
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(batches["object"], "list");
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! [`Emulator::start`] binds `127.0.0.1:0` and serves, under `/v1`, the Files API
//! (`POST /files`, `GET /files`, `GET /files/{id}`, `GET /files/{id}/content`,
//! `DELETE /files/{id}`) and the Batches API (`POST /batches`, `GET /batches`,
//! `GET /batches/{id}`, `POST /batches/{id}/cancel`) with the shapes of the real API,
//! and `POST /chat/completions`, answered at once by the same responder (a preview).
//! Batches go through the real lifecycle (`validating`, `in_progress`,
//! `finalizing`, `completed`, or `failed`, `expired`, `cancelling`/`cancelled`);
//! their requests are answered by a [`Responder`]: offline and deterministic by
//! default, or forwarded to an OpenAI-compatible server such as Ollama or vLLM.
//! [`Faults`] inject failures for tests.
//!
//! With [`EmulatorConfig::enqueued_token_limit`], a batch whose prompt tokens would take
//! its model's sum over all unfinished batches past the limit fails with
//! `token_limit_exceeded`, as the real API's batch queue limit does; the sums and their
//! peaks are in [`Emulator::stats`] and, as JSON, at `GET /v1/emulator/stats`.
//! Files expire at their `expires_at` (`expires_after[anchor]`/`[seconds]` on upload,
//! 30 days for `purpose=batch` by default) and then behave as deleted;
//! [`Emulator::advance_file_clock`] expires them in tests without waiting.
//!
//! It serves the Anthropic Message Batches API too, at [`Emulator::anthropic_base_url`]
//! (`POST /v1/messages/batches`, `GET /v1/messages/batches`, `GET`/`DELETE
//! /v1/messages/batches/{id}`, `POST .../cancel`, `GET .../results` as streamed JSONL),
//! with the `x-api-key` (or Bearer) and `anthropic-version` headers and Anthropic's error
//! shape. A message batch runs on the same engine: its params become chat completion
//! bodies for the same responder, faults, cancel, expiry and data directory, and its
//! results come back as `succeeded` (a `Message`), `errored`, `canceled` or `expired` lines.

#![warn(missing_docs)]

mod anthropic;
mod api_error;
mod batches;
mod chat;
mod config;
mod enqueued;
mod error;
mod files;
mod ids;
mod offline;
mod responder;
mod runner;
mod server;
mod store;
mod validate;

pub use config::{EmulatorConfig, Endpoint, Faults, HttpFault, HttpFaultKind, Responder, Timing};
pub use enqueued::EmulatorStats;
pub use error::Error;
pub use server::Emulator;
