//! How the library tells its caller about progress: a transfer trait and the job runner's events.
//!
//! The library prints nothing; the binaries implement these traits with progress bars.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::types::{Batch, FileId};

/// Told about the bytes of one upload or download. Every method defaults to doing nothing.
///
/// `()` implements it, for callers that do not care.
pub trait Progress: Send + Sync {
    /// An attempt starts; `total` is the size when known. A retried transfer starts again
    /// from zero, so this is called once per attempt.
    fn on_start(&self, _total: Option<u64>) {}
    /// `n` more bytes were sent or received.
    fn on_bytes(&self, _n: u64) {}
}

impl Progress for () {}

/// What the job runner just did, for one shard (its index in the ledger).
#[derive(Debug)]
#[non_exhaustive]
pub enum JobEvent<'a> {
    /// An upload attempt of a shard starts.
    UploadStarted {
        /// Shard index.
        shard: usize,
        /// The shard file.
        path: &'a Path,
        /// Its size.
        bytes: u64,
    },
    /// Bytes of a shard were sent.
    UploadBytes {
        /// Shard index.
        shard: usize,
        /// Bytes sent since the last event.
        n: u64,
    },
    /// A shard is uploaded.
    Uploaded {
        /// Shard index.
        shard: usize,
        /// The new file id.
        file_id: &'a FileId,
    },
    /// A batch was created for a shard.
    Created {
        /// Shard index.
        shard: usize,
        /// The new batch.
        batch: &'a Batch,
    },
    /// A batch whose create answer was lost was found again by its metadata.
    Recovered {
        /// Shard index.
        shard: usize,
        /// The batch found.
        batch: &'a Batch,
    },
    /// An unfinished batch made for the same job and the same shard content under another
    /// ledger (one that was lost or replaced) was found by its metadata and taken over, instead
    /// of uploading and creating again; see [`JobConfig::job_key`](crate::JobConfig::job_key).
    Adopted {
        /// Shard index.
        shard: usize,
        /// The batch taken over.
        batch: &'a Batch,
    },
    /// A batch's status or request counts changed (also sent for the first observation).
    Changed {
        /// Shard index.
        shard: usize,
        /// The batch as just retrieved.
        batch: &'a Batch,
    },
    /// A batch failed because the organization's enqueued-token limit was reached: nothing
    /// ran or was billed, and the shard can be submitted again later
    /// ([`JobRunner::retry_shard`](crate::JobRunner::retry_shard)).
    TokenLimitExceeded {
        /// Shard index.
        shard: usize,
        /// The failed batch.
        batch: &'a Batch,
    },
    /// A download starts (once per attempt).
    DownloadStarted {
        /// Shard index.
        shard: usize,
        /// The file being fetched.
        file_id: &'a FileId,
        /// Where it goes.
        path: &'a Path,
        /// Its size, when the server says.
        total: Option<u64>,
    },
    /// Bytes of a download arrived.
    DownloadBytes {
        /// Shard index.
        shard: usize,
        /// Bytes received since the last event.
        n: u64,
    },
    /// A file was downloaded completely.
    Downloaded {
        /// Shard index.
        shard: usize,
        /// Where it is.
        path: &'a Path,
        /// Its size.
        bytes: u64,
    },
    /// Where the shards of [`JobRunner::drive`](crate::JobRunner::drive) stand; sent whenever
    /// one of the numbers changes.
    Queue {
        /// Shards whose batch is finished.
        done: usize,
        /// Shards whose batch is created and not finished.
        running: usize,
        /// Shards waiting for queue capacity: not submitted yet because the model's
        /// enqueued-token limit is reached, or refused with `token_limit_exceeded` and waiting
        /// to be submitted again.
        waiting: usize,
    },
    /// A shard refused with `token_limit_exceeded` is submitted again from the same uploaded
    /// file after `delay` (zero when one of this job's batches has finished since).
    TokenLimitRetry {
        /// Shard index.
        shard: usize,
        /// The attempt about to be made.
        attempt: u32,
        /// How long the runner waits first.
        delay: std::time::Duration,
    },
    /// A shard's files were deleted from the server (its local copies stay).
    RemoteFilesDeleted {
        /// Shard index.
        shard: usize,
        /// How many files were deleted (or were already gone).
        files: usize,
    },
    /// A step of a shard failed; the runner goes on with the other shards.
    ShardFailed {
        /// Shard index.
        shard: usize,
        /// What went wrong.
        error: &'a Error,
    },
}

/// Told about every [`JobEvent`]. Defaults to doing nothing; `()` implements it.
pub trait JobProgress: Send + Sync {
    /// Something happened.
    fn on_event(&self, _event: &JobEvent<'_>) {}
}

impl JobProgress for () {}

/// Turns upload progress into [`JobEvent`]s.
pub(crate) struct UploadReporter {
    pub(crate) shard: usize,
    pub(crate) path: PathBuf,
    pub(crate) progress: Arc<dyn JobProgress>,
}

impl Progress for UploadReporter {
    fn on_start(&self, total: Option<u64>) {
        self.progress.on_event(&JobEvent::UploadStarted {
            shard: self.shard,
            path: &self.path,
            bytes: total.unwrap_or(0),
        });
    }

    fn on_bytes(&self, n: u64) {
        self.progress.on_event(&JobEvent::UploadBytes {
            shard: self.shard,
            n,
        });
    }
}

/// Turns download progress into [`JobEvent`]s.
pub(crate) struct DownloadReporter {
    pub(crate) shard: usize,
    pub(crate) file_id: FileId,
    pub(crate) path: PathBuf,
    pub(crate) progress: Arc<dyn JobProgress>,
}

impl Progress for DownloadReporter {
    fn on_start(&self, total: Option<u64>) {
        self.progress.on_event(&JobEvent::DownloadStarted {
            shard: self.shard,
            file_id: &self.file_id,
            path: &self.path,
            total,
        });
    }

    fn on_bytes(&self, n: u64) {
        self.progress.on_event(&JobEvent::DownloadBytes {
            shard: self.shard,
            n,
        });
    }
}
