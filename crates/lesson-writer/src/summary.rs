//! The summary of a run, and the failures list as JSONL for retrying.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use curriculum_parser::LessonCode;
use serde::Serialize;

use crate::{Error, FailureKind, ManifestEntry, Rule};

/// How many malformed lines are described one by one; past that they are only counted.
pub const MAX_MALFORMED_LISTED: usize = 1000;

/// What a run did. The binaries print it; it serializes to JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Non-blank lines read from both files.
    pub lines_read: u64,
    /// Lesson files created or replaced.
    pub written: u64,
    /// Of `written`, files that replaced an existing lesson (with [`Overwrite::Allow`](crate::Overwrite::Allow)).
    pub replaced: u64,
    /// Of `written`, truncated answers written because `accept_truncated` was set.
    pub written_truncated: u64,
    /// Of `written`, answers below spec written because `accept_below_spec` was set.
    pub written_below_spec: u64,
    /// Lessons whose file already held exactly the new text (nothing was written).
    pub unchanged: u64,
    /// Lessons not written because a different file exists that may not be replaced.
    pub kept: Vec<Kept>,
    /// Truncated, refused-in-text and below-spec answers kept for inspection in `rejected/`.
    pub rejected_files: u64,
    /// Requests that produced no lesson, sorted by lesson code.
    pub failures: Vec<Failure>,
    /// Lines for a lesson that already had a result, which were not used.
    pub duplicates: Vec<Duplicate>,
    /// Malformed lines, at most [`MAX_MALFORMED_LISTED`] of them.
    pub malformed: Vec<Malformed>,
    /// How many malformed lines there were in all.
    pub malformed_count: u64,
    /// Expected lessons found in neither file (only when the caller gave the expected
    /// set): unknown, resubmit.
    pub missing: Vec<LessonCode>,
    /// Lessons found in the files but not accepted
    /// ([`ProcessConfig::accept`](crate::ProcessConfig::accept)), which are not written; without
    /// an accepted set, the lessons found but not expected, which are written.
    pub unexpected: Vec<LessonCode>,
    /// Exactly one outcome per lesson: every lesson of the files (unexpected ones left
    /// out when they are not written) and every expected one.
    pub outcomes: BTreeMap<LessonCode, LessonOutcome>,
    /// What to record in the [`Manifest`](crate::Manifest) for the lessons written or
    /// found unchanged: merge it with [`Manifest::record`](crate::Manifest::record).
    #[serde(skip)]
    pub provenance: Vec<(LessonCode, ManifestEntry)>,
    /// How often each cleanup rule changed a lesson.
    pub rules_applied: BTreeMap<Rule, u64>,
    /// Token usage over every line that reported it.
    pub usage: UsageTotals,
    /// Usage per model as the responses name it.
    pub models: BTreeMap<String, ModelUsage>,
    /// Cost in USD at batch prices of the models the price table knows;
    /// `None` when it knows none of them.
    pub cost_usd: Option<f64>,
    /// Models without a price, whose tokens are not in `cost_usd`.
    pub unpriced_models: Vec<String>,
}

impl Summary {
    /// The failures worth resubmitting.
    pub fn retryable(&self) -> impl Iterator<Item = &Failure> {
        self.failures.iter().filter(|failure| failure.retryable)
    }

    /// Whether every line became a lesson file (written or already there) and nothing
    /// was malformed, duplicated or missing.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
            && self.malformed_count == 0
            && self.duplicates.is_empty()
            && self.missing.is_empty()
            && self.kept.is_empty()
    }

    /// The outcomes counted; the parts add up to `requested`.
    pub fn counts(&self) -> OutcomeCounts {
        OutcomeCounts::of(self.outcomes.values())
    }
}

/// What became of one lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LessonOutcome {
    /// Its file was created or replaced.
    Written,
    /// An identical file was already there.
    Unchanged,
    /// A different file was there and was not replaced.
    Kept {
        /// Why it was kept.
        reason: KeptReason,
    },
    /// No lesson: the request failed.
    Failed {
        /// How it failed.
        kind: FailureKind,
    },
    /// Expected, but in neither the output nor the error file.
    Missing,
}

impl LessonOutcome {
    /// Whether the lesson has a file afterwards.
    pub fn has_file(self) -> bool {
        matches!(
            self,
            LessonOutcome::Written | LessonOutcome::Unchanged | LessonOutcome::Kept { .. }
        )
    }
}

/// Why an existing lesson file was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeptReason {
    /// A file was there and overwriting was not asked for (`--force` overwrites).
    Exists,
    /// The file was changed after this tool wrote it; only `--force` overwrites it.
    EditedByHand,
}

impl fmt::Display for KeptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeptReason::Exists => "exists",
            KeptReason::EditedByHand => "edited by hand",
        })
    }
}

/// Outcomes counted: `written + unchanged + kept + failed + missing == requested`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    /// Lessons with an outcome.
    pub requested: u64,
    /// Files created or replaced.
    pub written: u64,
    /// Identical files already there.
    pub unchanged: u64,
    /// Existing files kept.
    pub kept: u64,
    /// Of `kept`, files kept because they were edited by hand.
    pub kept_edited: u64,
    /// Failed requests.
    pub failed: u64,
    /// Lessons in neither file.
    pub missing: u64,
}

impl OutcomeCounts {
    /// Counts `outcomes`.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a LessonOutcome>) -> Self {
        let mut counts = OutcomeCounts::default();
        for outcome in outcomes {
            counts.requested += 1;
            match outcome {
                LessonOutcome::Written => counts.written += 1,
                LessonOutcome::Unchanged => counts.unchanged += 1,
                LessonOutcome::Kept { reason } => {
                    counts.kept += 1;
                    counts.kept_edited += u64::from(*reason == KeptReason::EditedByHand);
                }
                LessonOutcome::Failed { .. } => counts.failed += 1,
                LessonOutcome::Missing => counts.missing += 1,
            }
        }
        counts
    }
}

/// Token totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageTotals {
    /// Requests that reported usage.
    pub requests: u64,
    /// Input tokens.
    pub prompt_tokens: u64,
    /// The cached part of the input tokens.
    pub cached_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    /// The reasoning part of the output tokens.
    pub reasoning_tokens: u64,
}

impl UsageTotals {
    pub(crate) fn add(&mut self, usage: &batch_request::Usage) {
        self.requests += 1;
        self.prompt_tokens += usage.prompt_tokens;
        self.cached_tokens += usage.cached_tokens();
        self.completion_tokens += usage.completion_tokens;
        self.reasoning_tokens += usage
            .completion_tokens_details
            .map_or(0, |details| details.reasoning_tokens);
    }
}

/// Usage and cost of one model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ModelUsage {
    /// Token totals.
    pub usage: UsageTotals,
    /// Cost at batch prices, when the model has a price.
    pub cost_usd: Option<f64>,
}

/// Where a line was: its file and 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The input file.
    pub file: PathBuf,
    /// The 1-based line.
    pub line: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A request that produced no lesson.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The request's id.
    pub custom_id: String,
    /// The lesson code (`M0-L001`).
    pub lesson_code: LessonCode,
    /// The class of failure.
    pub kind: FailureKind,
    /// The most specific code the line gave (`length`, `batch_expired`,
    /// `invalid_request_error`, `http_500`, ...).
    pub code: String,
    /// What happened and what to do, for a person.
    pub reason: String,
    /// Whether resubmitting may succeed.
    pub retryable: bool,
    /// The HTTP status, when the request ran.
    pub status: Option<u16>,
    /// Where the line was.
    pub location: Location,
    /// For a truncated answer: where its text was kept for inspection.
    pub rejected_file: Option<PathBuf>,
}

/// A line for a lesson that already had a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    /// The duplicate line's id.
    pub custom_id: String,
    /// The lesson code both lines map to.
    pub lesson_code: LessonCode,
    /// The line that was not used.
    pub location: Location,
    /// The line whose result was kept.
    pub kept: Location,
}

/// A lesson not written because a different file already exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    /// The lesson.
    pub lesson_code: LessonCode,
    /// The existing file.
    pub path: PathBuf,
    /// Why it was not replaced.
    pub reason: KeptReason,
}

/// A line that could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Malformed {
    /// Where it was.
    pub location: Location,
    /// What is wrong with it.
    pub reason: MalformedReason,
}

/// Why a line is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MalformedReason {
    /// Longer than the configured cap; its bytes were skipped.
    TooLong {
        /// The line's length.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Not JSON.
    Json {
        /// The parser's message.
        message: String,
    },
    /// JSON without a `custom_id`.
    MissingCustomId,
    /// JSON that is not an output or error line.
    UnexpectedShape {
        /// What did not fit.
        message: String,
    },
    /// A `custom_id` that is not a lesson code; it is never used as a path.
    InvalidCustomId {
        /// The id, escaped and cut to 80 characters.
        custom_id: String,
    },
}

impl fmt::Display for MalformedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MalformedReason::TooLong { bytes, max } => {
                write!(f, "line of {bytes} bytes exceeds the {max}-byte cap")
            }
            MalformedReason::InvalidUtf8 => f.write_str("line is not valid UTF-8"),
            MalformedReason::Json { message } => write!(f, "invalid JSON: {message}"),
            MalformedReason::MissingCustomId => f.write_str("line has no custom_id"),
            MalformedReason::UnexpectedShape { message } => {
                write!(f, "not an output or error line: {message}")
            }
            MalformedReason::InvalidCustomId { custom_id } => {
                write!(
                    f,
                    "custom_id `{custom_id}` is not a lesson code (expected lesson_M0-L001 or M0-L001)"
                )
            }
        }
    }
}

/// One line of the failures list.
#[derive(Serialize)]
struct FailureRecord<'a> {
    custom_id: &'a str,
    lesson_code: LessonCode,
    kind: FailureKind,
    code: &'a str,
    reason: &'a str,
    retryable: bool,
}

/// Writes the failures as JSONL, one object per line with `custom_id`,
/// `lesson_code`, `kind`, `code`, `reason` and `retryable`, for a retry run.
///
/// # Errors
///
/// [`Error::WriteFailures`] when `out` fails.
pub fn write_failures_jsonl(summary: &Summary, mut out: impl Write) -> Result<(), Error> {
    for failure in &summary.failures {
        let record = FailureRecord {
            custom_id: &failure.custom_id,
            lesson_code: failure.lesson_code,
            kind: failure.kind,
            code: &failure.code,
            reason: &failure.reason,
            retryable: failure.retryable,
        };
        serde_json::to_writer(&mut out, &record)
            .map_err(|err| Error::WriteFailures { source: err.into() })?;
        out.write_all(b"\n")
            .map_err(|source| Error::WriteFailures { source })?;
    }
    out.flush()
        .map_err(|source| Error::WriteFailures { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_jsonl_has_one_object_per_line() {
        let summary = Summary {
            failures: vec![Failure {
                custom_id: "lesson_M0-L001".into(),
                lesson_code: "M0-L001".parse().unwrap(),
                kind: FailureKind::Expired,
                code: "batch_expired".into(),
                reason: "request did not run".into(),
                retryable: true,
                status: None,
                location: Location {
                    file: "errors.jsonl".into(),
                    line: 3,
                },
                rejected_file: None,
            }],
            ..Summary::default()
        };
        let mut out = Vec::new();
        write_failures_jsonl(&summary, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"custom_id\":\"lesson_M0-L001\",\"lesson_code\":\"M0-L001\",\"kind\":\"expired\",\"code\":\"batch_expired\",\"reason\":\"request did not run\",\"retryable\":true}\n"
        );
    }
}
