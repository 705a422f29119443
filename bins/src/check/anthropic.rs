//! `check-batch-status` for an Anthropic message batch: its own status and five counts,
//! cancel, wait, the results download (`<batch id>_results.jsonl`), lessons written from it,
//! the cost from the results' usage (the batch reports none), and the `--list` table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anthropic_batch_client::{ApiErrorKind, MessageBatch, ProcessingStatus};
use anyhow::Context;
use chrono::{DateTime, Utc};
use lesson_job::{BatchCheck, BatchCost, JobReport, Provider};
use openai_batch_client::BatchId;
use serde::Serialize;

use super::{Args, confirm_cancel_done, duration, local_time, process, until_interrupted};
use crate::ExitStatus;
use crate::format::{count, dollars, usd};
use crate::progress::Reporter;
use crate::report::Billing;
use crate::term::{Shown, shown_lines};

/// The `--json` document for a message batch.
#[derive(Debug, Serialize)]
struct MessageBatchReport {
    /// Always `anthropic`: the batch is Anthropic's object, not the Batch API's.
    provider: Provider,
    batch: MessageBatch,
    /// The downloaded results (`<work-dir>/<batch id>_results.jsonl`).
    output_path: Option<PathBuf>,
    /// What the batch costs, from the usage in its results.
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<BatchCost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<JobReport>,
}

/// Checks one message batch as `check` says; prints it, or the JSON report.
pub(super) async fn check(
    client: &anthropic_batch_client::Client,
    args: &Args,
    check: &BatchCheck,
    reporter: &Reporter,
) -> anyhow::Result<ExitStatus> {
    let bars = Arc::new(reporter.job_progress());
    // Retries show (the server unreachable since when), instead of a silent wait.
    let client = &client.clone().with_retry_progress(bars.clone());
    let checked = lesson_job::check_message_batch(client, &args.work_dir, check, &*bars);
    let Some(checked) = until_interrupted(args, &bars, checked).await? else {
        return Ok(ExitStatus::Interrupted);
    };
    let checked = checked
        .map_err(|err| failure(err, args.batch_id.as_deref()))
        .with_context(|| match &args.batch_id {
            Some(id) => format!("cannot check message batch {}", Shown(id)),
            None => "cannot check the work dir's latest batch".to_owned(),
        })?;
    let batch = checked.batch;
    let batch_id = BatchId(batch.id.0.clone());
    if let Some(cancelled) = &checked.cancelled {
        reporter.say(confirm_cancel_done(
            &batch.id.0,
            cancelled.processing_status.as_str(),
        ));
    }
    let results = checked.results.unwrap_or_default();
    let recorded = lesson_job::recorded_batch(&args.work_dir, &batch_id)?;
    let billing = Billing::from_emulator(args.emulator);
    let cost = match results_file(&batch, &results, recorded.as_ref(), &args.work_dir) {
        Some(path) => {
            let model = recorded
                .as_ref()
                .and_then(|recorded| recorded.fingerprint.as_ref())
                .map(|fingerprint| fingerprint.model.as_str());
            Some(lesson_job::message_batch_cost(
                &path,
                model,
                &super::prices(args)?,
            )?)
        }
        None => None,
    };
    if !args.output.json {
        crate::output::out!(
            "{}{}",
            shown_lines(&describe(&batch, Utc::now())),
            shown_lines(&cost_line(&batch, cost.as_ref(), billing))
        )?;
    }
    if check.download {
        say_download(&batch, &results, reporter);
    }
    let mut status = ExitStatus::Success;
    let mut process_report = None;
    let files = results.files(&batch_id);
    if args.process && !files.is_empty() {
        let report = process(args, &batch_id, &files, reporter)?;
        if !report.is_complete() || !report.malformed.is_empty() {
            status = ExitStatus::Partial;
        }
        process_report = Some(report);
    }
    if args.output.json {
        crate::print_json(&MessageBatchReport {
            provider: Provider::Anthropic,
            batch,
            output_path: results.output,
            cost,
            process: process_report,
        })?;
    }
    Ok(status)
}

/// The results file to price the batch from: this run's download, else one an earlier
/// `--download` left in the work dir, else the one its job downloaded.
fn results_file(
    batch: &MessageBatch,
    results: &lesson_job::DownloadedResults,
    recorded: Option<&lesson_job::RecordedBatch>,
    work_dir: &Path,
) -> Option<PathBuf> {
    if !batch.processing_status.is_terminal() {
        return None;
    }
    let earlier = work_dir.join(format!("{}_results.jsonl", batch.id));
    results
        .output
        .clone()
        .or_else(|| {
            (!batch.id.0.contains(['/', '\\', '.']) && earlier.is_file()).then_some(earlier)
        })
        .or_else(|| recorded.and_then(|recorded| recorded.output_path.clone()))
        .filter(|path| path.is_file())
}

/// What `--download` did, or why there is nothing.
fn say_download(
    batch: &MessageBatch,
    results: &lesson_job::DownloadedResults,
    reporter: &Reporter,
) {
    if !batch.processing_status.is_terminal() {
        reporter.say(format!(
            "The batch is {}; results can be downloaded once it has ended (add --wait).",
            batch.processing_status
        ));
        return;
    }
    match &results.output {
        Some(path) if results.reused.contains(path) => reporter.say(format!(
            "{} is already downloaded (--force downloads it again)",
            Shown(path.display())
        )),
        Some(path) => reporter.say(format!("Downloaded {}", Shown(path.display()))),
        None if batch.archived_at.is_some() => reporter.say(
            "Nothing to download: the batch's results were archived (Anthropic keeps them 29 days after creation).",
        ),
        None => reporter.say("Nothing to download: the server gives no results URL for the batch."),
    }
}

/// A failure of the Message Batches API, with the hint `check-batch-status` gives for it: a
/// batch not found (a typo: never a paying action) or a key refused. The caller adds what
/// was being done as context.
pub(super) fn failure(err: lesson_job::Error, batch_id: Option<&str>) -> anyhow::Error {
    let lesson_job::Error::Anthropic(api) = &err else {
        return err.into();
    };
    let (kind, hint) = match api.api_kind() {
        Some(ApiErrorKind::NotFound) if batch_id.is_some() => (
            crate::ErrorKind::Runtime,
            "check the batch id: check-batch-status --provider anthropic --list shows recent message batches (and --work-dir the ones a job recorded)",
        ),
        Some(ApiErrorKind::Authentication | ApiErrorKind::PermissionDenied) => (
            crate::ErrorKind::Key,
            "check ANTHROPIC_API_KEY (or the file given with --api-key-file)",
        ),
        _ => return err.into(),
    };
    anyhow::Error::new(crate::UsageError {
        message: api.to_string(),
        hint: Some(hint.to_owned()),
        kind,
    })
}

/// Prints message batches as `--list` shows them: Anthropic's objects as JSON, or the
/// batches table (in the Batch API's terms: status, done and failed of the total).
pub(super) fn print_list(
    batches: &[MessageBatch],
    args: &Args,
    reporter: &Reporter,
) -> anyhow::Result<ExitStatus> {
    if args.output.json {
        crate::print_json(&batches)?;
        return Ok(ExitStatus::Success);
    }
    let views: Vec<_> = batches.iter().map(lesson_job::message_batch_view).collect();
    super::print_list(&views, args, reporter)
}

/// The cost line under a message batch's description: from the usage in its results, or
/// when it will be known (Anthropic reports no usage on the batch).
fn cost_line(batch: &MessageBatch, cost: Option<&BatchCost>, billing: Billing) -> String {
    let suffix = billing.suffix();
    match cost {
        Some(BatchCost {
            usd: Some(amount), ..
        }) => format!(
            "  cost:        {} at batch prices, from the usage in the results{suffix}\n",
            dollars(*amount)
        ),
        Some(_) => format!("  cost:        {}{suffix}\n", usd(None)),
        None if batch.processing_status.is_terminal() => format!(
            "  cost:        known once the results are downloaded (--download): Anthropic reports no usage on the batch{suffix}\n"
        ),
        None => format!(
            "  cost:        known once the batch has ended and its results are downloaded: Anthropic reports no usage on the batch{suffix}\n"
        ),
    }
}

/// The human description of a message batch, relative to `now`, in Anthropic's own terms
/// (its processing status and five counts); the server's id and URL are shown escaped.
pub(crate) fn describe(batch: &MessageBatch, now: DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "Message batch {}", Shown(&batch.id));
    let _ = writeln!(out, "  status:      {}", batch.processing_status);
    let stamps = [
        ("created", Some(batch.created_at)),
        ("canceling", batch.cancel_initiated_at),
        ("ended", batch.ended_at),
        ("expires", Some(batch.expires_at)),
        ("archived", batch.archived_at),
    ];
    for (name, at) in stamps {
        if let Some(at) = at {
            let _ = writeln!(
                out,
                "  {:<12} {}",
                format!("{name}:"),
                local_time(at.timestamp())
            );
        }
    }
    let counts = &batch.request_counts;
    let _ = writeln!(
        out,
        "  requests:    {} total: {} processing, {} succeeded, {} errored, {} canceled, {} expired",
        count(counts.total()),
        count(counts.processing),
        count(counts.succeeded),
        count(counts.errored),
        count(counts.canceled),
        count(counts.expired)
    );
    if batch.processing_status != ProcessingStatus::Ended {
        let elapsed = (now - batch.created_at).num_seconds();
        let left = (batch.expires_at - now).num_seconds();
        let _ = writeln!(
            out,
            "  elapsed:     {}, {} left in the 24 h window",
            duration(elapsed),
            duration(left)
        );
    }
    if let Some(url) = &batch.results_url {
        let _ = writeln!(out, "  results:     {}", Shown(url));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(value: serde_json::Value) -> MessageBatch {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_message_batch_is_described_with_its_five_counts_and_escaped() {
        let running = batch(serde_json::json!({
            "id": "msgbatch_1\u{1b}]0;pwned\u{7}",
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
            "created_at": "2026-12-04T10:00:00Z",
            "expires_at": "2026-12-05T10:00:00Z",
        }));
        let now = "2026-12-04T11:30:05Z".parse().unwrap();
        let text = describe(&running, now);
        assert!(
            text.starts_with(
                "Message batch msgbatch_1\\e]0;pwned\\a\n  status:      in_progress\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "requests:    3 total: 3 processing, 0 succeeded, 0 errored, 0 canceled, 0 expired\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("elapsed:     1h 30m 05s, 22h 29m 55s left in the 24 h window\n"),
            "{text}"
        );
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(cost_line(&running, None, Billing::Billed).contains("once the batch has ended"));

        let ended = batch(serde_json::json!({
            "id": "msgbatch_2",
            "processing_status": "ended",
            "request_counts": {"processing": 0, "succeeded": 5, "errored": 1, "canceled": 2, "expired": 1},
            "created_at": "2026-12-04T10:00:00Z",
            "expires_at": "2026-12-05T10:00:00Z",
            "ended_at": "2026-12-04T12:00:00Z",
            "cancel_initiated_at": "2026-12-04T11:00:00Z",
            "results_url": "https://api.anthropic.com/v1/messages/batches/msgbatch_2/results",
        }));
        let text = describe(&ended, now);
        assert!(text.contains("status:      ended\n"), "{text}");
        assert!(
            text.contains(
                "requests:    9 total: 0 processing, 5 succeeded, 1 errored, 2 canceled, 1 expired\n"
            ),
            "{text}"
        );
        assert!(text.contains("  canceling:  "), "{text}");
        assert!(text.contains("  ended:      "), "{text}");
        assert!(!text.contains("elapsed"), "{text}");
        assert!(
            text.contains(
                "results:     https://api.anthropic.com/v1/messages/batches/msgbatch_2/results\n"
            ),
            "{text}"
        );
        assert!(
            cost_line(&ended, None, Billing::Emulator)
                .contains("known once the results are downloaded (--download)")
        );
        let cost = BatchCost {
            input_tokens: 1_000_000,
            cached_tokens: 0,
            output_tokens: 0,
            usd: Some(1.5),
            is_final: true,
        };
        assert_eq!(
            cost_line(&ended, Some(&cost), Billing::Emulator),
            "  cost:        $1.50 at batch prices, from the usage in the results (emulator: nothing billed)\n"
        );
    }
}
