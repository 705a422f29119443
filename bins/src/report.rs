//! The numbers a run reports: the `--json` document of generate and process, and the
//! failures file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use batch_request::Estimate;
use lesson_writer::Summary;
use serde::Serialize;

use crate::progress::Reporter;

/// What `--json` prints (and the numbers the human summary is made of).
#[derive(Debug, Default, Serialize)]
pub struct RunReport {
    /// The job name (file prefix in the work dir).
    pub job: String,
    /// Lessons in the outline.
    pub lessons_total: usize,
    /// Lessons in scope that already had a file.
    pub already_generated: usize,
    /// Requests sent (all rounds), or attached to.
    pub requested: usize,
    /// Lesson files written.
    pub written: u64,
    /// Lessons not written because a file exists (use --force).
    pub skipped_existing: u64,
    /// Lessons that failed, after all retry rounds.
    pub failed: Vec<FailedLesson>,
    /// Every batch of this run.
    pub batches: Vec<BatchReport>,
    /// Token usage from the results.
    pub usage: UsageReport,
    /// Estimated (upper bound) and actual cost in USD at batch prices.
    pub cost_usd: CostReport,
    /// The estimate of the requests built by this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    /// The shard files built by this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<ShardReport>>,
    /// The ledger file.
    pub ledger: PathBuf,
    /// The failures file, when lessons failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures_file: Option<PathBuf>,
    /// Malformed result lines (file:line reason).
    pub malformed: Vec<String>,
}

/// One failed lesson.
#[derive(Debug, Clone, Serialize)]
pub struct FailedLesson {
    /// `lesson_M0-L001`.
    pub custom_id: String,
    /// `M0-L001`.
    pub lesson_code: String,
    /// A machine-readable code: `length`, `rate_limit_exceeded`, `batch_expired`, `missing`, ...
    pub code: String,
    /// What happened, for a person.
    pub reason: String,
    /// Whether resubmitting may help.
    pub retryable: bool,
}

/// One batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// The batch id.
    pub id: String,
    /// Its last known status.
    pub status: String,
    /// Its last known counts.
    pub request_counts: openai_batch_client::RequestCounts,
    /// Output file id, when any request succeeded.
    pub output_file_id: Option<String>,
    /// Error file id, when any request failed.
    pub error_file_id: Option<String>,
}

/// Token usage totals.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct UsageReport {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
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

/// The failures of a summary, lessons missing from both files included (retryable).
pub fn failed_lessons(summary: &Summary) -> Vec<FailedLesson> {
    let mut failed: Vec<FailedLesson> = summary
        .failures
        .iter()
        .map(|failure| FailedLesson {
            custom_id: failure.custom_id.clone(),
            lesson_code: failure.lesson_code.clone(),
            code: failure.code.clone(),
            reason: failure.reason.clone(),
            retryable: failure.retryable,
        })
        .collect();
    for custom_id in &summary.missing {
        failed.push(FailedLesson {
            custom_id: custom_id.clone(),
            lesson_code: lesson_writer::lesson_code(custom_id)
                .map(|code| code.to_string())
                .unwrap_or_default(),
            code: "missing".to_owned(),
            reason: "in neither the output file nor the error file".to_owned(),
            retryable: true,
        });
    }
    failed
}

/// Adds a round's summary to the report's totals.
pub fn add_summary(report: &mut RunReport, summary: &Summary) {
    report.written += summary.written;
    report.skipped_existing += summary.skipped_existing.len() as u64;
    report.usage.prompt_tokens += summary.usage.prompt_tokens;
    report.usage.cached_tokens += summary.usage.cached_tokens;
    report.usage.completion_tokens += summary.usage.completion_tokens;
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
}

/// Writes the failures as JSONL, atomically.
///
/// # Errors
///
/// When the file cannot be written.
pub fn write_failures(path: &Path, failed: &[FailedLesson]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for failure in failed {
        serde_json::to_writer(&mut file, failure)?;
        file.write_all(b"\n")?;
    }
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// One line for a batch validation error: `duplicate_custom_id (line 2): message [param custom_id]`.
pub fn batch_error_line(error: &openai_batch_client::BatchError) -> String {
    format!(
        "{}{}: {}{}",
        error.code.as_deref().unwrap_or("error"),
        error
            .line
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default(),
        error.message.as_deref().unwrap_or(""),
        error
            .param
            .as_deref()
            .map(|param| format!(" [param {param}]"))
            .unwrap_or_default()
    )
}

/// Tells the user about each failed lesson, with its reason and whether a retry may help.
pub fn say_failures(reporter: &Reporter, failed: &[FailedLesson]) {
    for failure in failed {
        reporter.say(format!(
            "  failed {}: {} ({}){}",
            failure.lesson_code,
            failure.reason,
            failure.code,
            if failure.retryable { ", retryable" } else { "" }
        ));
    }
}
