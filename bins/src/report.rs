//! How a run's report reads: the summary, the failures, the line while waiting for a lock.

use chrono::{Local, TimeZone};
use lesson_job::{JobReport, LockHolder};

use crate::progress::{Reporter, usd};
use crate::term::Shown;

/// The line shown while another run holds the job's lock.
pub fn waiting_line(holder: Option<&LockHolder>) -> String {
    match holder {
        Some(holder) => format!(
            "another run (pid {}, started {}) is working on this job; waiting (Ctrl-C to stop)",
            holder.pid,
            Local
                .timestamp_opt(holder.started_at, 0)
                .single()
                .map_or_else(|| "earlier".to_owned(), |at| at.format("%H:%M").to_string())
        ),
        None => "another run is working on this job; waiting (Ctrl-C to stop)".to_owned(),
    }
}

/// One line for a batch validation error: `duplicate_custom_id (line 2): message [param custom_id]`.
/// The server's code, message and param are shown escaped ([`crate::term`]).
pub fn batch_error_line(error: &openai_batch_client::BatchError) -> String {
    format!(
        "{}{}: {}{}",
        Shown(error.code.as_deref().unwrap_or("error")),
        error
            .line
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default(),
        Shown(error.message.as_deref().unwrap_or("")),
        error
            .param
            .as_deref()
            .map(|param| format!(" [param {}]", Shown(param)))
            .unwrap_or_default()
    )
}

/// The summary: one outcome per requested lesson, and how they add up; then the failures,
/// usage and cost, and where the failures are listed.
pub fn say_outcomes(reporter: &Reporter, report: &JobReport) {
    for kept in &report.kept {
        reporter.say(format!(
            "  kept {}: {}",
            kept.lesson_code,
            Shown(&kept.reason)
        ));
    }
    for failure in report.failures() {
        reporter.say(format!(
            "  failed {}: {} ({}){}",
            failure.lesson_code,
            Shown(&failure.reason),
            failure.code,
            if failure.retryable { ", retryable" } else { "" }
        ));
    }
    if report
        .failed
        .iter()
        .any(|failure| failure.kind == Some(lesson_writer::FailureKind::BelowSpec))
    {
        reporter.say(
            "  answers below spec are kept in rejected/ beside the lessons; --accept-below-spec \
             writes them, and [quality] in lessons.toml sets the bar",
        );
    }
    let mut parts = vec![
        format!("{} written", report.written),
        format!("{} unchanged", report.unchanged),
        format!("{} kept", report.kept.len()),
        format!("{} failed", report.failed.len()),
        format!("{} missing", report.missing.len()),
    ];
    if !report.pending.is_empty() {
        parts.push(format!("{} still running", report.pending.len()));
    }
    let mut line = format!(
        "Summary: {} of {} requested lesson(s)",
        parts.join(", "),
        report.requested
    );
    if report.requests_sent > 0 || !report.batches.is_empty() {
        line.push_str(&format!(
            "; {} request(s) sent in {} round(s), {} batch(es)",
            report.requests_sent,
            report.rounds,
            report.batches.len()
        ));
    }
    reporter.say(line);
    if report.usage.requests > 0 {
        reporter.say(format!(
            "  usage: {} input tokens ({} cached), {} output tokens; cost at batch prices: {}",
            report.usage.prompt_tokens,
            report.usage.cached_tokens,
            report.usage.completion_tokens,
            usd(report.cost_usd.actual)
        ));
    }
    if let Some(path) = &report.failures_file {
        reporter.say(format!("  failures listed in {}", Shown(path.display())));
    }
    if !report.unexpected.is_empty() {
        reporter.warn(format!(
            "{} result(s) for lessons not asked for were not written",
            report.unexpected.len()
        ));
    }
    for malformed in &report.malformed {
        reporter.warn(format!("malformed line {}", Shown(malformed)));
    }
}
