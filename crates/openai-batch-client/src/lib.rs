//! Async client for the OpenAI Files and Batches APIs, with streamed transfers,
//! retries, and an idempotent job runner whose ledger remembers what was sent.

#![warn(missing_docs)]

mod types;

pub use types::{
    Batch, BatchError, BatchErrors, BatchId, BatchStatus, BatchUsage, DeletedFile, FileId,
    FileObject, InputTokensDetails, ListPage, OutputTokensDetails, RequestCounts,
};
