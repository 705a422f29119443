//! `check-batch-status`: one batch's status, results download, processing, waiting, cancel, list.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{Local, TimeZone};
use clap::Parser;
use lesson_job::JobReport;
use openai_batch_client::{Batch, BatchId, BatchStatus, Client, PollConfig};
use serde::Serialize;

use crate::ExitStatus;
use crate::args::{ApiArgs, OutputArgs};
use crate::key;
use crate::process::{WriteArgs, write_lessons};
use crate::progress::Reporter;
use crate::report::batch_error_line;
use crate::term::{Shown, shown_lines};

/// Check a Batch API batch: status, timestamps, counts, errors and files; optionally download
/// its results (also the partial results of expired and cancelled batches), write the lessons,
/// wait for it, cancel it, or list recent batches.
#[derive(Debug, Parser)]
#[command(name = "check-batch-status", version, after_help = crate::EXIT_CODES_HELP)]
pub struct Args {
    /// The batch id [default: the latest batch recorded in the work dir's ledgers].
    pub batch_id: Option<String>,
    /// Download the output and error files into the work dir.
    #[arg(long)]
    pub download: bool,
    /// Download, then write the lessons (as process-batch-results).
    #[arg(long)]
    pub process: bool,
    /// Poll until the batch is finished, with a progress bar.
    #[arg(long)]
    pub wait: bool,
    /// Ask the API to cancel the batch (finished requests keep their results).
    #[arg(long)]
    pub cancel: bool,
    /// List recent batches instead.
    #[arg(long)]
    pub list: bool,
    /// Delete from the server the files of the work dir's finished batches whose results are
    /// downloaded (the uploaded shards, outputs and error files; local copies stay).
    #[arg(long, conflicts_with_all = ["list", "cancel", "wait", "download", "process"])]
    pub cleanup: bool,
    /// How many batches --list shows.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Where downloads go and ledgers are looked for.
    #[arg(long, value_name = "DIR", default_value = "scripts/batch_api")]
    pub work_dir: PathBuf,
    /// Download again even when the file is already there.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// With --wait: first polling interval in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub poll_interval: f64,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Serialize)]
struct CheckReport {
    batch: Batch,
    output_path: Option<PathBuf>,
    error_path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<JobReport>,
}

/// Runs the command.
///
/// # Errors
///
/// Any failure, for [`crate::report()`].
pub async fn run(args: &Args) -> anyhow::Result<ExitStatus> {
    let reporter = Reporter::new(args.output.verbosity());
    let (api_key, source) = key::load_api_key(args.api.api_key_file.as_deref())?;
    let base_url = key::base_url(args.api.base_url.as_deref());
    reporter.detail(format!("Using the API key from {source} with {base_url}"));
    let client = Client::new(key::client_config(base_url, api_key))?;

    if args.list {
        return list(&client, args, &reporter).await;
    }
    if args.cleanup {
        return cleanup(&client, args, &reporter).await;
    }
    let bars = reporter.job_progress();
    let check = lesson_job::BatchCheck {
        batch_id: args.batch_id.as_deref().map(BatchId::from),
        cancel: args.cancel,
        wait: args.wait.then(|| PollConfig {
            initial_interval: Duration::from_secs_f64(args.poll_interval.max(0.01)),
            ..PollConfig::default()
        }),
        download: args.download || args.process,
        force_download: args.force,
    };
    let checked = lesson_job::check_batch(&client, &args.work_dir, &check, &bars).await;
    bars.finish();
    let checked = checked.with_context(|| match &args.batch_id {
        Some(id) => format!("cannot check batch {}", Shown(id)),
        None => "cannot check the work dir's latest batch".to_owned(),
    })?;
    let batch = checked.batch;
    if let Some(cancelled) = &checked.cancelled {
        reporter.say(format!(
            "Cancel requested for {}: now {} (finished requests keep their results)",
            Shown(&batch.id),
            cancelled.status
        ));
    }
    if !args.output.json {
        print!(
            "{}",
            shown_lines(&describe(&batch, chrono::Utc::now().timestamp()))
        );
    }
    let results = checked.results.unwrap_or_default();
    if check.download {
        if batch.status.is_terminal() {
            for path in [&results.output, &results.errors].into_iter().flatten() {
                if results.reused.contains(path) {
                    reporter.say(format!(
                        "{} is already downloaded (--force downloads it again)",
                        Shown(path.display())
                    ));
                } else {
                    reporter.say(format!("Downloaded {}", Shown(path.display())));
                }
            }
            if results.files(&batch.id).is_empty() {
                reporter.say("Nothing to download: the batch has no output or error file.");
            }
        } else {
            reporter.say(format!(
                "The batch is {}; results can be downloaded once it is finished (add --wait).",
                batch.status
            ));
        }
    }
    let mut status = match batch.status {
        BatchStatus::Failed => ExitStatus::Failure,
        _ => ExitStatus::Success,
    };
    let mut process_report = None;
    let files = results.files(&batch.id);
    if args.process && !files.is_empty() {
        // A batch of a job in the work dir: only its lessons count, with the titles its
        // requests had, written into that job's output directory unless --out says otherwise.
        let recorded = lesson_job::recorded_batch(&args.work_dir, &batch.id)?;
        let fingerprint = recorded
            .as_ref()
            .and_then(|recorded| recorded.fingerprint.as_ref());
        let report = write_lessons(
            &args.write,
            fingerprint,
            args.force,
            false,
            &files,
            recorded.as_ref().map(|recorded| &recorded.lessons),
            &reporter,
        )?;
        if !report.is_complete() || !report.malformed.is_empty() {
            status = ExitStatus::Partial;
        }
        process_report = Some(report);
    }
    if args.output.json {
        crate::print_json(&CheckReport {
            batch,
            output_path: results.output,
            error_path: results.errors,
            process: process_report,
        })?;
    }
    Ok(status)
}

async fn cleanup(client: &Client, args: &Args, reporter: &Reporter) -> anyhow::Result<ExitStatus> {
    let jobs =
        lesson_job::clean_up_remote_files(client, &args.work_dir, false, "check-batch-status")
            .await?;
    let mut status = ExitStatus::Success;
    let mut deleted = 0;
    for job in &jobs {
        let name = Shown(job.job_dir.display());
        if let Some(holder) = &job.skipped_locked {
            reporter.say(format!(
                "{name}: skipped, {}",
                crate::report::waiting_line(holder.as_ref())
                    .trim_end_matches("; waiting (Ctrl-C to stop)")
            ));
            status = ExitStatus::Failure;
            continue;
        }
        deleted += job.files_deleted;
        if job.files_deleted > 0 {
            reporter.say(format!(
                "{name}: deleted {} file(s) of {} finished batch(es) from the server",
                job.files_deleted, job.shards_cleaned
            ));
        }
        for error in &job.errors {
            reporter.warn(format!("{name}: {}", Shown(error)));
            status = ExitStatus::Failure;
        }
    }
    if args.output.json {
        let rows: Vec<serde_json::Value> = jobs
            .iter()
            .map(|job| {
                serde_json::json!({
                    "job_dir": job.job_dir,
                    "files_deleted": job.files_deleted,
                    "skipped_locked": job.skipped_locked.is_some(),
                    "errors": job.errors,
                })
            })
            .collect();
        crate::print_json(&rows)?;
    }
    reporter.say(if deleted == 0 {
        format!(
            "Nothing to delete: no finished batch in {} has files left on the server.",
            Shown(args.work_dir.display())
        )
    } else {
        format!("Deleted {deleted} file(s) from the server; the local copies stay in the work dir.")
    });
    Ok(status)
}

async fn list(client: &Client, args: &Args, reporter: &Reporter) -> anyhow::Result<ExitStatus> {
    let batches = lesson_job::recent_batches(client, args.limit)
        .await
        .context("cannot list batches")?;
    if args.output.json {
        crate::print_json(&batches)?;
        return Ok(ExitStatus::Success);
    }
    if batches.is_empty() {
        reporter.say("No batches.");
    }
    for batch in &batches {
        let counts = batch.counts();
        let metadata = batch
            .metadata
            .as_ref()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{}={}", Shown(k), Shown(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        println!(
            "{}  {:<11} {:>6}/{:<6} failed {:<5} {}  {}",
            Shown(&batch.id),
            batch.status,
            counts.completed,
            counts.total,
            counts.failed,
            local_time(batch.created_at),
            metadata
        );
    }
    Ok(ExitStatus::Success)
}

/// The human description of a batch, relative to `now` (Unix seconds); the server's ids,
/// model and messages are shown escaped ([`crate::term`]).
pub fn describe(batch: &Batch, now: i64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "Batch {}", Shown(&batch.id));
    let _ = writeln!(out, "  status:      {}", batch.status);
    if let Some(model) = &batch.model {
        let _ = writeln!(out, "  model:       {}", Shown(model));
    }
    let stamps = [
        ("created", Some(batch.created_at)),
        ("in progress", batch.in_progress_at),
        ("finalizing", batch.finalizing_at),
        ("completed", batch.completed_at),
        ("failed", batch.failed_at),
        ("expired", batch.expired_at),
        ("cancelling", batch.cancelling_at),
        ("cancelled", batch.cancelled_at),
        ("expires", batch.expires_at),
    ];
    for (name, at) in stamps {
        if let Some(at) = at {
            let _ = writeln!(out, "  {:<12} {}", format!("{name}:"), local_time(at));
        }
    }
    let counts = batch.counts();
    let percent = |n: u64| {
        if counts.total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / counts.total as f64
        }
    };
    let _ = writeln!(
        out,
        "  requests:    {} total, {} completed ({:.1}%), {} failed ({:.1}%)",
        counts.total,
        counts.completed,
        percent(counts.completed),
        counts.failed,
        percent(counts.failed)
    );
    if !batch.status.is_terminal() {
        let elapsed = now - batch.created_at;
        let _ = write!(out, "  elapsed:     {}", duration(elapsed));
        if let Some(expires) = batch.expires_at {
            let _ = write!(out, ", {} left in the 24 h window", duration(expires - now));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "  input file:  {}", Shown(&batch.input_file_id));
    if let Some(id) = &batch.output_file_id {
        let _ = writeln!(out, "  output file: {}", Shown(id));
    }
    if let Some(id) = &batch.error_file_id {
        let _ = writeln!(out, "  error file:  {}", Shown(id));
    }
    if let Some(usage) = &batch.usage {
        let _ = writeln!(
            out,
            "  usage:       {} input tokens, {} output tokens",
            usage.input_tokens, usage.output_tokens
        );
    }
    if let Some(errors) = &batch.errors {
        for error in &errors.data {
            let _ = writeln!(out, "  error:       {}", batch_error_line(error));
        }
    }
    out
}

fn local_time(unix: i64) -> String {
    Local.timestamp_opt(unix, 0).single().map_or_else(
        || unix.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
    )
}

fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    format!(
        "{}h {:02}m {:02}s",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_described_shows_the_servers_escape_sequences_escaped() {
        let batch: Batch = serde_json::from_value(serde_json::json!({
            "id": "batch_1\u{1b}]0;pwned\u{7}",
            "endpoint": "/v1/chat/completions",
            "model": "gpt\u{1b}[2J",
            "input_file_id": "file-in\u{8}",
            "output_file_id": "file-out\u{202e}",
            "completion_window": "24h",
            "status": "failed",
            "created_at": 1_700_000_000,
            "errors": {"data": [{
                "code": "invalid\u{1b}[31m",
                "message": "bad line\nhint: fake\u{7}",
                "param": "body\u{9b}",
                "line": 2
            }]}
        }))
        .unwrap();
        let text = describe(&batch, 1_700_000_100);
        assert!(text.contains("Batch batch_1\\e]0;pwned\\a\n"), "{text}");
        assert!(text.contains("model:       gpt\\e[2J\n"), "{text}");
        assert!(text.contains("input file:  file-in\\b\n"), "{text}");
        assert!(text.contains("output file: file-out\\u{202e}\n"), "{text}");
        assert!(
            text.contains(
                "error:       invalid\\e[31m (line 2): bad line\\nhint: fake\\a [param body\\u{9b}]\n"
            ),
            "{text}"
        );
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
}
