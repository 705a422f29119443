//! What a run did: one outcome per requested lesson, and the numbers a person sees.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use batch_request::Estimate;
use curriculum_parser::LessonCode;
use lesson_writer::{FailureKind, KeptReason, LessonOutcome, Summary, UsageTotals};
use openai_batch_client::RequestCounts;
use serde::Serialize;

use crate::select::StaleReason;
use crate::{Error, JobId};

/// What a run did. Every requested lesson has exactly one outcome:
/// `written + unchanged + kept + failed + missing + pending == requested`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobReport {
    /// The job's name (its folder in the work dir starts with it).
    pub job: String,
    /// The job's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// Lessons in the outline.
    pub lessons_total: usize,
    /// Lessons in scope that already had a file before the run.
    pub already_generated: usize,
    /// Lessons this run is answerable for: those selected, those of earlier batches it
    /// attached to, and those whose results it processed.
    pub requested: usize,
    /// Lesson files created or replaced.
    pub written: u64,
    /// Lessons whose file already held exactly the answer.
    pub unchanged: u64,
    /// Lessons whose existing file was kept, with the reason.
    pub kept: Vec<KeptLesson>,
    /// Lessons that failed, after every retry round.
    pub failed: Vec<FailedLesson>,
    /// Lessons in neither the output nor the error file of their batch.
    pub missing: Vec<LessonCode>,
    /// Lessons submitted and not finished yet (`--no-wait`, or interrupted).
    pub pending: Vec<LessonCode>,
    /// Lessons written from an earlier version of their request (the outline changed
    /// while their batch ran): written as generated, and now stale.
    pub stale_written: Vec<StaleLesson>,
    /// Submission rounds of this run (retries included).
    pub rounds: u32,
    /// Requests sent by this run (all rounds).
    pub requests_sent: usize,
    /// The batches of this run.
    pub batches: Vec<BatchReport>,
    /// Token usage of the results.
    pub usage: UsageTotals,
    /// Cost in USD at batch prices.
    pub cost_usd: CostReport,
    /// The estimate of the requests built by this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    /// The shard files built by this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<ShardReport>>,
    /// The job's ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<PathBuf>,
    /// The failures list, when lessons failed or are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures_file: Option<PathBuf>,
    /// The failures list that could not be written, and why (the report still has them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures_file_error: Option<FailuresFileError>,
    /// Malformed result lines (`file:line: reason`).
    pub malformed: Vec<String>,
    /// Results for lessons that were not asked for, which were not written.
    pub unexpected: Vec<LessonCode>,
    /// Whether a batch failed as a whole (nothing in it ran).
    pub batch_failed: bool,
    /// A retry round that was not submitted because of the budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_stopped: Option<BudgetStop>,
}

/// A failures list that could not be written: the lessons were, and the report lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailuresFileError {
    /// Where it was to be written.
    pub path: PathBuf,
    /// Why it was not (the operating system's message).
    pub reason: String,
}

/// A retry round left out because it could pass the budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStop {
    /// The lessons it would have resubmitted (they stay failed).
    pub lessons: Vec<LessonCode>,
    /// What the run's results cost so far, USD at batch prices.
    pub spent_usd: f64,
    /// The round's upper-bound cost (`None`: no price known for the model).
    pub next_round_usd: Option<f64>,
    /// The budget.
    pub budget_usd: f64,
}

/// A lesson whose existing file was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptLesson {
    /// The lesson.
    pub lesson_code: LessonCode,
    /// Why.
    pub reason: KeptReason,
    /// The file.
    pub path: PathBuf,
}

/// One failed (or missing) lesson, as in the failures list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedLesson {
    /// `lesson_M0-L001`.
    pub custom_id: String,
    /// The lesson.
    pub lesson_code: LessonCode,
    /// The class of failure; `None` for a lesson missing from both result files.
    pub kind: Option<FailureKind>,
    /// A machine-readable code: `length`, `rate_limit_exceeded`, `batch_expired`, `missing`, ...
    pub code: String,
    /// What happened, for a person.
    pub reason: String,
    /// Whether resubmitting may help.
    pub retryable: bool,
    /// Where the answer is kept for inspection (`<out>/rejected/...`), when it was truncated,
    /// refused in its text or below spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_file: Option<PathBuf>,
}

impl FailedLesson {
    /// A lesson in neither the output file nor the error file: retryable, code `missing`.
    pub fn missing(code: LessonCode) -> Self {
        FailedLesson {
            custom_id: code.custom_id(),
            lesson_code: code,
            kind: None,
            code: "missing".to_owned(),
            reason: "in neither the output file nor the error file".to_owned(),
            retryable: true,
            rejected_file: None,
        }
    }
}

/// A lesson written from an earlier request than it would get now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleLesson {
    /// The lesson.
    pub lesson_code: LessonCode,
    /// What changed.
    pub reason: StaleReason,
}

/// One batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// The batch id.
    pub id: String,
    /// Its last known status.
    pub status: String,
    /// Its last known counts.
    pub request_counts: RequestCounts,
    /// Output file id, when any request succeeded.
    pub output_file_id: Option<String>,
    /// Error file id, when any request failed.
    pub error_file_id: Option<String>,
}

/// Cost figures in USD.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CostReport {
    /// The expected cost of the requests built by this run, at batch prices.
    pub estimated: Option<f64>,
    /// The cost of the results, from their usage, at batch prices.
    pub actual: Option<f64>,
}

/// One shard file.
#[derive(Debug, Clone, Serialize)]
pub struct ShardReport {
    /// Its path.
    pub path: PathBuf,
    /// Its request count.
    pub requests: usize,
    /// Its size.
    pub bytes: u64,
}

/// The outcome of each lesson so far; later rounds replace earlier outcomes.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    pub(crate) outcomes: BTreeMap<LessonCode, LessonOutcome>,
    pub(crate) failures: BTreeMap<LessonCode, FailedLesson>,
    pub(crate) kept: BTreeMap<LessonCode, KeptLesson>,
}

impl Outcomes {
    /// Takes in a processing pass.
    pub(crate) fn add(&mut self, summary: &Summary, report: &mut JobReport) {
        for (code, outcome) in &summary.outcomes {
            self.set(*code, *outcome);
        }
        for failure in &summary.failures {
            self.failures.insert(
                failure.lesson_code,
                FailedLesson {
                    custom_id: failure.custom_id.clone(),
                    lesson_code: failure.lesson_code,
                    kind: Some(failure.kind),
                    code: failure.code.clone(),
                    reason: failure.reason.clone(),
                    retryable: failure.retryable,
                    rejected_file: failure.rejected_file.clone(),
                },
            );
        }
        for code in &summary.missing {
            self.failures.insert(*code, FailedLesson::missing(*code));
        }
        for kept in &summary.kept {
            self.kept.insert(
                kept.lesson_code,
                KeptLesson {
                    lesson_code: kept.lesson_code,
                    reason: kept.reason,
                    path: kept.path.clone(),
                },
            );
        }
        report.usage.requests += summary.usage.requests;
        report.usage.prompt_tokens += summary.usage.prompt_tokens;
        report.usage.cached_tokens += summary.usage.cached_tokens;
        report.usage.completion_tokens += summary.usage.completion_tokens;
        report.usage.reasoning_tokens += summary.usage.reasoning_tokens;
        if let Some(cost) = summary.cost_usd {
            report.cost_usd.actual = Some(report.cost_usd.actual.unwrap_or(0.0) + cost);
        }
        for malformed in &summary.malformed {
            report.malformed.push(format!(
                "{}:{}: {}",
                malformed.location.file.display(),
                malformed.location.line,
                malformed.reason
            ));
        }
        report.unexpected.extend(summary.unexpected.iter().copied());
    }

    /// Sets one lesson's outcome, dropping what an earlier round said of it.
    pub(crate) fn set(&mut self, code: LessonCode, outcome: LessonOutcome) {
        if !matches!(
            outcome,
            LessonOutcome::Failed { .. } | LessonOutcome::Missing
        ) {
            self.failures.remove(&code);
        }
        if !matches!(outcome, LessonOutcome::Kept { .. }) {
            self.kept.remove(&code);
        }
        self.outcomes.insert(code, outcome);
    }

    /// Fills the report's outcome fields for `requested`; lessons without an outcome are pending.
    pub(crate) fn finish(
        self,
        requested: impl IntoIterator<Item = LessonCode>,
        report: &mut JobReport,
    ) {
        let mut requested: std::collections::BTreeSet<LessonCode> = requested.into_iter().collect();
        requested.extend(self.outcomes.keys().copied());
        report.requested = requested.len();
        for code in requested {
            match self.outcomes.get(&code) {
                None => report.pending.push(code),
                Some(LessonOutcome::Written) => report.written += 1,
                Some(LessonOutcome::Unchanged) => report.unchanged += 1,
                Some(LessonOutcome::Kept { reason }) => {
                    report
                        .kept
                        .push(self.kept.get(&code).cloned().unwrap_or(KeptLesson {
                            lesson_code: code,
                            reason: *reason,
                            path: PathBuf::new(),
                        }))
                }
                Some(LessonOutcome::Missing) => report.missing.push(code),
                Some(LessonOutcome::Failed { kind }) => {
                    report
                        .failed
                        .push(self.failures.get(&code).cloned().unwrap_or(FailedLesson {
                            custom_id: code.custom_id(),
                            lesson_code: code,
                            kind: Some(*kind),
                            code: kind.to_string(),
                            reason: kind.to_string(),
                            retryable: kind.retryable(),
                            rejected_file: None,
                        }))
                }
            }
        }
    }
}

impl JobReport {
    /// Whether every requested lesson has a file.
    pub fn is_complete(&self) -> bool {
        self.written as usize + self.unchanged as usize + self.kept.len() == self.requested
    }

    /// The failed and missing lessons, as the failures list holds them.
    pub fn failures(&self) -> impl Iterator<Item = FailedLesson> + '_ {
        self.failed
            .iter()
            .cloned()
            .chain(self.missing.iter().map(|code| FailedLesson::missing(*code)))
    }

    /// Writes the failed and missing lessons as JSONL to `path`, atomically, and records
    /// the path in the report; removes a stale list when there is nothing to list.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written; the report then keeps the path and
    /// the reason in `failures_file_error`.
    pub fn write_failures(&mut self, path: &Path) -> Result<(), Error> {
        let written = self.write_failures_file(path);
        if let Err(Error::Io { source, .. }) = &written {
            self.failures_file_error = Some(FailuresFileError {
                path: path.to_path_buf(),
                reason: source.to_string(),
            });
        }
        written
    }

    /// [`JobReport::write_failures`] without noting the error.
    fn write_failures_file(&mut self, path: &Path) -> Result<(), Error> {
        let failures: Vec<FailedLesson> = self.failures().collect();
        if failures.is_empty() {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::io("remove", path, source)),
            }
            return Ok(());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut file = crate::round::tempfile_in(dir)?;
        let write_error = |source| Error::io("write", path, source);
        for failure in &failures {
            serde_json::to_writer(&mut file, failure).map_err(|err| write_error(err.into()))?;
            file.write_all(b"\n").map_err(write_error)?;
        }
        file.persist(path).map_err(|err| write_error(err.error))?;
        self.failures_file = Some(path.to_path_buf());
        Ok(())
    }
}
