//! The whole lesson-generation job as a library: a job is one outline generating into one
//! output directory.
//!
//! - **Identity.** A [`JobId`] derives from the canonical output directory; the job's files
//!   (ledger, shards, downloads) live in its own folder of a work dir that many jobs may
//!   share, and every batch carries the id in its metadata.
//! - **One run at a time.** [`Job::lock`] takes an OS lock on the output directory, held by
//!   every command that submits, downloads or writes lessons for the job.
//! - **Plan, then execute.** [`Job::plan`] chooses the lessons (skipping those with a file,
//!   attaching to unfinished batches, adding stale ones on request) and writes the round's
//!   shards; [`Job::execute`] submits, waits, downloads, writes lessons, records their
//!   provenance in the manifest and retries what can succeed.
//! - **Two providers.** [`Job::execute`] and [`Job::preview`] take a [`ProviderClient`]:
//!   OpenAI's Files + Batches, or Anthropic's Message Batches ([`Provider::for_model`]:
//!   `claude-*` models are Anthropic's), over the same ledger, with the same outcomes.
//! - **Every lesson accounted for.** The [`JobReport`] gives each requested lesson exactly
//!   one outcome.
//!
//! ```
//! use lesson_job::{Job, JobSpec, LessonState, Selection};
//!
//! let dir = tempfile::tempdir()?;
//! let outline = dir.path().join("course/outline.md");
//! std::fs::create_dir_all(outline.parent().unwrap())?;
//! std::fs::write(&outline, "# M0: Basics\n## L001: What Is Data? [F]\n## L002: Owners [I]\n")?;
//! let job = Job::open(JobSpec {
//!     outline,
//!     out_dir: dir.path().join("lessons"),
//!     work_dir: dir.path().join("work"),
//!     name: None,
//!     template: batch_request::Template::generic(),
//!     settings: batch_request::RequestSettings::default(),
//!     file_name: lesson_writer::FileNamePattern::default(),
//!     max_enqueued_tokens: None,
//!     provider: None,
//! })?;
//! assert_eq!(job.name(), "course");
//! let states = job.lesson_states()?;
//! assert!(states.iter().all(|lesson| lesson.state == LessonState::NotGenerated));
//!
//! // A dry run: shards and an estimate, nothing sent.
//! let manifest = lesson_writer::Manifest::default();
//! let plan = job.plan(&manifest, &Selection::default(), true)?;
//! assert_eq!(plan.new_requests(), 2);
//! assert_eq!(plan.requested().len(), 2);
//! assert!(plan.estimate.as_ref().unwrap().input_tokens > 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Another content pipeline (say, product descriptions) needs none of this crate: it uses
//! `openai-batch-client` (upload, batches, the ledgered `JobRunner`), `batch-request`'s line
//! types and JSONL writers, and `lesson-writer`'s reader and classifier.

#![warn(missing_docs)]

mod error;
mod identity;
mod inspect;
mod job;
mod lock;
mod observer;
mod preview;
mod provider;
mod report;
mod results;
mod round;
mod select;
mod work_dir;

pub use batch_request::Provider;
pub use error::{Error, ErrorKind};
pub use identity::{
    EMULATOR_DIR, Fingerprint, JOB_ID_KEY, JOB_NAME_KEY, JobId, JobPaths, LEDGER_FILE,
    SENT_BATCHES_FILE, TOOL_KEY, TOOL_NAME, job_name,
};
pub use inspect::{
    BatchCheck, BatchCost, CheckedBatch, CheckedMessageBatch, batch_cost, batch_id_provider,
    check_batch, check_message_batch, message_batch_cost, recent_batches, recent_message_batches,
};
pub use job::{AttachedShard, Job, JobSpec, Plan, RunOptions, larger_budget};
pub use lesson_writer::{FailureKind, KeptReason, LessonOutcome};
pub use lock::{JobLock, LOCK_FILE, LockHolder, LockWait};
pub use observer::{JobObserver, Step};
pub use preview::{
    PREVIEW_CONCURRENCY, PREVIEW_DIR, PreviewCost, PreviewOutcome, PreviewPlan, PreviewReport,
    PreviewedLesson,
};
pub use provider::ProviderClient;
pub use provider::anthropic::batch_view as message_batch_view;
pub use report::{
    BatchReport, BudgetStop, CostReport, FailedLesson, FailuresFileError, JobReport, KeptLesson,
    ShardReport, StaleLesson,
};
pub use results::{ResultsFile, ResultsSpec, process_results};
pub use round::{
    RequestHasher, RoundShard, SentLesson, is_shard_file, read_requests, requests_path,
};
pub use select::{LessonState, LessonStatus, Selection, StaleReason};
pub use work_dir::{
    CleanedJob, DownloadedResults, EmulatorState, RecordedBatch, clean_up_remote_files,
    download_message_results, download_results, emulator_states, latest_batch,
    latest_recorded_batch, recorded_batch, recorded_providers,
};

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}
