//! Turns Batch API output and error files into cleaned lesson files, written atomically,
//! with a summary that gives every lesson exactly one outcome (written, unchanged, kept,
//! failed or missing), and owns what the output directory holds: lesson file names
//! ([`FileNamePattern`], written and recognised by the same code), the provenance
//! [`Manifest`], and the overwrite policy that protects lessons edited by hand.
//!
//! ```
//! use lesson_writer::{Input, ProcessConfig, process_inputs};
//!
//! let output = r#"{"id": "batch_req_1", "custom_id": "lesson_M0-L001", "response": {"status_code": 200, "body": {"model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sure!\n\n# Lesson M0-L001: Intro\n\nText.", "refusal": null}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 800, "completion_tokens": 1600, "total_tokens": 2400}}}, "error": null}
//! "#;
//! let errors = r#"{"id": "batch_req_2", "custom_id": "lesson_M0-L002", "response": null, "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}
//! "#;
//! let dir = tempfile::tempdir()?;
//! let config = ProcessConfig::new(dir.path());
//! let inputs = vec![
//!     Input::new("output.jsonl", output.as_bytes()),
//!     Input::new("errors.jsonl", errors.as_bytes()),
//! ];
//! let summary = process_inputs(inputs, &config)?;
//! assert_eq!(summary.written, 1);
//! assert_eq!(std::fs::read_to_string(dir.path().join("M0-L001.md"))?, "# Lesson M0-L001: Intro\n\nText.\n");
//! assert_eq!(summary.failures[0].code, "batch_expired");
//! assert!(summary.failures[0].retryable);
//! assert!(summary.cost_usd.unwrap() > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod anthropic;
mod chat;
mod clean;
mod commit;
mod custom_id;
mod error;
mod examine;
mod manifest;
mod markdown;
mod names;
mod outcome;
mod output;
mod process;
mod quality;
mod reader;
mod refusal;
mod rules;
mod summary;

pub use clean::{Cleaned, Rule, clean};
pub use custom_id::{MAX_CUSTOM_ID_LEN, lesson_code};
pub use error::Error;
pub use manifest::{
    FileProvenance, LessonUsage, MANIFEST_FILE, MANIFEST_VERSION, Manifest, ManifestEntry,
};
pub use names::{FileNamePattern, existing_lessons, slug};
pub use outcome::{Failed, FailureKind, NoResult, Outcome, classify};
pub use output::{Overwrite, TEMP_PREFIX, is_temp_file, remove_leftovers, sha256_hex};
pub use process::{
    DEFAULT_MAX_LINE_BYTES, Input, ProcessConfig, REJECTED_DIR, RequestedLesson, process,
    process_inputs,
};
pub use quality::{BelowSpec, QualityGate};
pub use summary::{
    Duplicate, Failure, Kept, KeptReason, LessonOutcome, Location, MAX_MALFORMED_LISTED, Malformed,
    MalformedReason, ModelUsage, OutcomeCounts, Summary, UsageTotals, write_failures_jsonl,
};
