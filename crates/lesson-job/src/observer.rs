//! How a job tells its caller what it is doing. The library prints nothing.

use std::path::Path;

use curriculum_parser::LessonCode;
use openai_batch_client::{BatchError, BatchId, JobProgress};

use crate::report::StaleLesson;

/// A step of a run, for the caller to show.
#[derive(Debug)]
#[non_exhaustive]
pub enum Step<'a> {
    /// Shards are being uploaded and batches created.
    Submitting {
        /// The round (1 for the first submission).
        round: u32,
        /// Requests in the round's new shards (0 when only attaching).
        requests: usize,
        /// Where they go (OpenAI's uploads and batches, or Anthropic's message batches).
        provider: batch_request::Provider,
    },
    /// Waiting for the batches to finish.
    Waiting,
    /// Downloading results.
    Downloading,
    /// Writing lessons.
    Writing {
        /// The output directory.
        out_dir: &'a Path,
    },
    /// A batch failed as a whole: nothing in it ran or was billed.
    BatchFailed {
        /// The batch.
        batch_id: Option<&'a BatchId>,
        /// Its `errors.data`.
        errors: &'a [BatchError],
        /// Whether it failed on the organization's enqueued-token limit.
        token_limit: bool,
    },
    /// Lessons written from an earlier version of the outline.
    StaleWritten {
        /// The lessons and what changed.
        lessons: &'a [StaleLesson],
    },
    /// A retry round is not submitted: with what the run's results cost so far, its
    /// upper-bound cost would pass the budget.
    BudgetReached(&'a crate::BudgetStop),
    /// Deleting a finished shard's files from the server failed; the lessons are written, and
    /// the files expire by themselves (`check-batch-status --cleanup` tries again).
    CleanupFailed {
        /// What went wrong.
        error: &'a crate::Error,
    },
    /// A preview's lesson was answered (or failed) by the normal endpoint.
    PreviewAnswered {
        /// The lesson.
        code: LessonCode,
        /// Lessons answered so far.
        done: usize,
        /// Lessons in the preview.
        total: usize,
    },
    /// Some failed lessons go into another round.
    Retrying {
        /// The lessons resubmitted.
        lessons: &'a [LessonCode],
        /// Rounds left after this one.
        rounds_left: u32,
    },
}

/// Told about a run's steps and about the job runner's events (uploads, batches, progress).
pub trait JobObserver: JobProgress {
    /// A step starts or happened. Defaults to doing nothing.
    fn step(&self, _step: Step<'_>) {}
}

impl JobObserver for () {}
