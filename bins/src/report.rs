//! How a run's report reads: the summary, the failures, the line while waiting for a lock.

use chrono::{Local, TimeZone};
use curriculum_parser::LessonCode;
use lesson_job::{FailedLesson, FailureKind, JobReport, LockHolder};

use crate::format::{count, count_usize, dollars, plural, plural_as, usd};
use crate::progress::Reporter;
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

/// Whether a run's requests are billed: by the API, or not at all (the built-in emulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// A real server: the cost is what the account pays.
    Billed,
    /// The built-in emulator: the cost is what the same run would cost; nothing is billed.
    Emulator,
}

impl Billing {
    /// `Emulator` when `emulator`, else `Billed`.
    pub fn from_emulator(emulator: bool) -> Self {
        if emulator {
            Billing::Emulator
        } else {
            Billing::Billed
        }
    }

    /// What follows a cost: ` (emulator: nothing billed)` for the emulator, else nothing.
    pub fn suffix(self) -> &'static str {
        match self {
            Billing::Billed => "",
            Billing::Emulator => " (emulator: nothing billed)",
        }
    }
}

/// What an estimate of Claude requests says of itself: Anthropic publishes no tokenizer, so
/// their tokens are counted with OpenAI's and scaled ([`batch_request::Estimate::approximate`]).
pub const APPROXIMATE: &str = "approximate: Claude's tokenizer is not public";

/// ` (approximate: Claude's tokenizer is not public)` after an estimate's figures when they
/// are approximate, else nothing.
pub fn approximate_note(estimate: &batch_request::Estimate) -> String {
    if estimate.approximate {
        format!(" ({APPROXIMATE})")
    } else {
        String::new()
    }
}

/// At most this many lines of grouped outcomes in a summary; `-v` lists every lesson.
const MAX_GROUP_LINES: usize = 12;

/// The summary: one outcome per requested lesson, and how they add up; then the failures,
/// usage and cost, and where the failures are listed.
///
/// Failures and kept lessons are grouped by reason with their count and codes (first and
/// last when there are many), so a cancelled batch of 272 lessons is one line; with `-v`
/// every lesson gets its own line.
pub fn say_outcomes(reporter: &Reporter, report: &JobReport, billing: Billing) {
    let verbose = reporter.verbosity() == crate::progress::Verbosity::Verbose;
    for line in outcome_lines(report, verbose, billing) {
        reporter.say(line);
    }
    if let Some(path) = &report.failures_file {
        reporter.say(format!("  failures listed in {}", Shown(path.display())));
    }
    if let Some(error) = &report.failures_file_error {
        reporter.warn(format!(
            "cannot write the failures list {}: {}; the failures are in the summary above (every one with -v, or in --json)",
            Shown(error.path.display()),
            Shown(&error.reason)
        ));
    }
    if !report.unexpected.is_empty() {
        reporter.warn(format!(
            "{} for lessons not asked for {} not written: {}",
            plural(report.unexpected.len(), "result"),
            if report.unexpected.len() == 1 {
                "was"
            } else {
                "were"
            },
            codes(&report.unexpected)
        ));
    }
    // A file that is not a results file has a malformed line per line: a few say enough.
    let shown = if verbose { usize::MAX } else { MAX_MALFORMED };
    for malformed in report.malformed.iter().take(shown) {
        reporter.warn(format!("malformed line {}", Shown(malformed)));
    }
    if report.malformed.len() > shown {
        reporter.warn(format!(
            "{} more malformed (-v lists them)",
            plural(report.malformed.len() - shown, "line")
        ));
    }
}

/// At most this many malformed lines are named without `-v`.
const MAX_MALFORMED: usize = 5;

/// The summary's lines: the outcome groups (or every lesson with `verbose`), the totals, and
/// usage and cost.
pub fn outcome_lines(report: &JobReport, verbose: bool, billing: Billing) -> Vec<String> {
    let mut lines = Vec::new();
    if verbose {
        for kept in &report.kept {
            lines.push(format!(
                "  kept {}: {}",
                kept.lesson_code,
                Shown(&kept.reason)
            ));
        }
        for failure in report.failures() {
            lines.push(format!(
                "  failed {}: {} ({}){}",
                failure.lesson_code,
                Shown(&failure.reason),
                Shown(&failure.code),
                if failure.retryable { ", retryable" } else { "" }
            ));
        }
    } else {
        let groups = groups(report);
        let n_groups = groups.len();
        let shown = if n_groups > MAX_GROUP_LINES {
            MAX_GROUP_LINES - 1
        } else {
            n_groups
        };
        lines.extend(groups.into_iter().take(shown));
        if n_groups > shown {
            lines.push(format!(
                "  ... and {} more (-v lists every lesson)",
                plural(n_groups - shown, "group")
            ));
        }
    }
    if report
        .failed
        .iter()
        .any(|failure| failure.kind == Some(FailureKind::BelowSpec))
    {
        lines.push(
            "  answers below spec are kept in rejected/ beside the lessons; --accept-below-spec \
             writes them, and [quality] in lessons.toml sets the bar"
                .to_owned(),
        );
    }
    let mut parts = vec![
        format!("{} written", count(report.written)),
        format!("{} unchanged", count(report.unchanged)),
        format!("{} kept", count_usize(report.kept.len())),
        format!("{} failed", count_usize(report.failed.len())),
        format!("{} missing", count_usize(report.missing.len())),
    ];
    if !report.pending.is_empty() {
        parts.push(format!(
            "{} still running",
            count_usize(report.pending.len())
        ));
    }
    let mut line = format!(
        "Summary: {} of {} requested {}",
        parts.join(", "),
        count_usize(report.requested),
        if report.requested == 1 {
            "lesson"
        } else {
            "lessons"
        }
    );
    if report.requests_sent > 0 || !report.batches.is_empty() {
        line.push_str(&format!(
            "; {} sent in {}, {}",
            plural(report.requests_sent, "request"),
            plural(report.rounds as usize, "round"),
            plural_as(report.batches.len(), "batch", "batches")
        ));
    }
    lines.push(line);
    lines.extend(cost_line(report, billing));
    lines
}

/// The usage and cost line: from the results' usage once anything was downloaded, else the
/// estimate from prices while nothing is; `None` when neither is known.
fn cost_line(report: &JobReport, billing: Billing) -> Option<String> {
    let suffix = billing.suffix();
    let the_estimate = match &report.estimate {
        Some(estimate) if estimate.approximate => format!("the estimate, {APPROXIMATE};"),
        _ => "the estimate:".to_owned(),
    };
    if report.usage.requests > 0 {
        let cost = match (report.cost_usd.actual, report.cost_usd.estimated) {
            (Some(actual), _) => dollars(actual),
            (None, Some(estimated)) => format!(
                "about {} ({the_estimate} the results' model has no price)",
                dollars(estimated)
            ),
            (None, None) => usd(None),
        };
        return Some(format!(
            "  usage: {} input tokens ({} cached), {} output tokens; cost at batch prices: {cost}{suffix}",
            count(report.usage.prompt_tokens),
            count(report.usage.cached_tokens),
            count(report.usage.completion_tokens),
        ));
    }
    let sent = report.requests_sent > 0 || !report.batches.is_empty();
    match report.cost_usd.estimated {
        Some(estimated) if sent => Some(format!(
            "  cost at batch prices: expected {} ({the_estimate} no results downloaded yet){suffix}",
            dollars(estimated)
        )),
        _ if sent && billing == Billing::Emulator => {
            Some("  cost: nothing billed (emulator)".to_owned())
        }
        _ => None,
    }
}

/// One line per group of lessons with the same outcome and reason: the count, what happened,
/// the codes, and what to do.
fn groups(report: &JobReport) -> Vec<String> {
    let mut lines = Vec::new();
    let mut kept: Vec<(String, Vec<LessonCode>)> = Vec::new();
    for lesson in &report.kept {
        let reason = lesson.reason.to_string();
        match kept.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, codes)) => codes.push(lesson.lesson_code),
            None => kept.push((reason, vec![lesson.lesson_code])),
        }
    }
    for (reason, lessons) in kept {
        let what = if reason == "edited by hand" {
            "--force overwrites them"
        } else {
            "--force regenerates them"
        };
        lines.push(format!(
            "  {} kept ({}): {}; {what}",
            count_usize(lessons.len()),
            Shown(&reason),
            codes(&lessons)
        ));
    }
    let mut failed: std::collections::BTreeMap<(Option<FailureKind>, bool), Vec<&FailedLesson>> =
        std::collections::BTreeMap::new();
    let all: Vec<FailedLesson> = report.failures().collect();
    for failure in &all {
        failed
            .entry((failure.kind, failure.retryable))
            .or_default()
            .push(failure);
    }
    for ((kind, retryable), failures) in failed {
        let lessons: Vec<LessonCode> = failures.iter().map(|f| f.lesson_code).collect();
        // One reason shared by the whole group is worth showing; many are in the list.
        let first = failures[0];
        let same = failures.iter().all(|f| f.reason == first.reason);
        let what = match (retryable, kind) {
            (true, _) => "retryable".to_owned(),
            (false, _) if same => format!("{}; not retryable", Shown(&first.reason)),
            (false, _) => "not retryable (-v gives each reason)".to_owned(),
        };
        lines.push(format!(
            "  {} {}: {}; {what}",
            count_usize(lessons.len()),
            failure_label(kind, &first.code),
            codes(&lessons)
        ));
    }
    for (label, lessons) in [("still running", &report.pending)] {
        if !lessons.is_empty() {
            lines.push(format!(
                "  {} {label}: {}; run the same command again to attach and wait",
                count_usize(lessons.len()),
                codes(lessons)
            ));
        }
    }
    lines
}

/// What happened to a group of failed lessons, as a person says it.
fn failure_label(kind: Option<FailureKind>, code: &str) -> String {
    let Some(kind) = kind else {
        return "missing from the results".to_owned();
    };
    match kind {
        FailureKind::Truncated => "cut off at max_completion_tokens".to_owned(),
        FailureKind::ContentFilter => "withheld by the content filter".to_owned(),
        FailureKind::Refusal => "refused by the model".to_owned(),
        FailureKind::RefusedInText => "refused in the answer's text".to_owned(),
        FailureKind::EmptyContent => "empty answers".to_owned(),
        FailureKind::UnexpectedFinish => "unexpected finish".to_owned(),
        FailureKind::RateLimited => "rate limited".to_owned(),
        FailureKind::QuotaExceeded => "out of credit (insufficient_quota)".to_owned(),
        FailureKind::ServerError => "server errors".to_owned(),
        FailureKind::Timeout => "timed out".to_owned(),
        FailureKind::Expired => "not run (batch expired)".to_owned(),
        FailureKind::Cancelled => "not run (batch cancelled)".to_owned(),
        FailureKind::NotRun => format!("not run ({})", Shown(code)),
        FailureKind::InvalidRequest => "invalid requests".to_owned(),
        FailureKind::BelowSpec => "below spec".to_owned(),
    }
}

/// Lesson codes for a summary line: all of them when few, else the first and the last.
fn codes(lessons: &[LessonCode]) -> String {
    let mut sorted = lessons.to_vec();
    sorted.sort();
    match sorted.as_slice() {
        [] => String::new(),
        few @ ([_] | [_, _] | [_, _, _] | [_, _, _, _]) => few
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        [first, .., last] => format!("{first}\u{2026}{last}"),
    }
}

#[cfg(test)]
mod tests {
    use batch_request::Estimate;

    use super::*;

    /// Issue 14: an estimate of Claude requests says it is approximate wherever it is shown.
    #[test]
    fn an_approximate_estimate_says_so() {
        let mut report = JobReport {
            requests_sent: 2,
            ..JobReport::default()
        };
        report.cost_usd.estimated = Some(1.25);
        report.estimate = Some(Estimate {
            approximate: true,
            ..Estimate::default()
        });
        assert_eq!(
            cost_line(&report, Billing::Billed).unwrap(),
            "  cost at batch prices: expected $1.25 (the estimate, approximate: Claude's tokenizer is not public; no results downloaded yet)"
        );
        assert_eq!(
            approximate_note(report.estimate.as_ref().unwrap()),
            " (approximate: Claude's tokenizer is not public)"
        );
        report.usage.requests = 2;
        assert_eq!(
            cost_line(&report, Billing::Billed).unwrap(),
            "  usage: 0 input tokens (0 cached), 0 output tokens; cost at batch prices: about $1.25 (the estimate, approximate: Claude's tokenizer is not public; the results' model has no price)"
        );
        // An OpenAI model's estimate is its tokenizer's own count.
        report.estimate = Some(Estimate::default());
        assert_eq!(approximate_note(report.estimate.as_ref().unwrap()), "");
        assert!(
            cost_line(&report, Billing::Billed)
                .unwrap()
                .ends_with("about $1.25 (the estimate: the results' model has no price)")
        );
    }
}
