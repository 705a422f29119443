//! `check-batch-status`: one batch's status, results download, processing, waiting, cancel, list.
//!
//! OpenAI's batches here; Anthropic's message batches in `check/anthropic.rs`, chosen by
//! `provider_of`.

mod anthropic;
mod cleanup;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use chrono::{Local, TimeZone};
use clap::Parser;
use lesson_job::{JobReport, Provider, ProviderClient};
use openai_batch_client::{Batch, BatchId, BatchStatus, Client, PollConfig};
use serde::Serialize;

use crate::ExitStatus;
use crate::args::{ApiArgs, OutputArgs};
use crate::format::{count, dollars, usd};
use crate::key;
use crate::process::{WriteArgs, write_lessons};
use crate::progress::Reporter;
use crate::report::{Billing, batch_error_line};
use crate::term::{Shown, shown_lines};

/// Check a Batch API batch (or an Anthropic message batch): status, timestamps, counts, errors
/// and files; optionally download its results (also the partial results of expired and
/// cancelled batches), write the lessons, wait for it, cancel it, or list recent batches.
#[derive(Debug, Parser)]
#[command(
    name = "check-batch-status",
    version,
    after_help = EXAMPLES,
    after_long_help = format!("{EXAMPLES}\n\n{}", crate::EXIT_CODES_HELP)
)]
pub struct Args {
    /// The batch id [default: the latest batch recorded in the work dir's ledgers].
    ///
    /// `batch_...` is OpenAI's, `msgbatch_...` Anthropic's (read with ANTHROPIC_API_KEY).
    pub batch_id: Option<String>,
    /// Download the output and error files into the work dir.
    #[arg(long, help_heading = "Actions")]
    pub download: bool,
    /// Download, then write the lessons (as process-batch-results).
    #[arg(long, help_heading = "Actions")]
    pub process: bool,
    /// Poll until the batch is finished, with a progress bar.
    #[arg(long, help_heading = "Actions")]
    pub wait: bool,
    /// Cancel the batch (asks first on a terminal; --yes skips the question).
    ///
    /// Requests not yet run never run; finished ones keep their results (and are billed).
    /// Without a terminal to ask on, --cancel needs --yes.
    #[arg(long, help_heading = "Actions")]
    pub cancel: bool,
    /// Do not ask before --cancel.
    #[arg(long, short = 'y', help_heading = "Actions")]
    pub yes: bool,
    /// List recent batches instead, as a table fitted to the terminal (COLUMNS sets the width).
    ///
    /// OpenAI's; with --provider anthropic, Anthropic's message batches.
    #[arg(long, help_heading = "Actions")]
    pub list: bool,
    /// Delete the server's copies of the work dir's finished, downloaded batches' files.
    ///
    /// The uploaded shards, outputs and error files; local copies stay. For a job of
    /// Anthropic's, its ended message batches whose lessons are written (their results
    /// with them).
    #[arg(long, conflicts_with_all = ["list", "cancel", "wait", "download", "process"], help_heading = "Actions")]
    pub cleanup: bool,
    /// How many batches --list shows.
    #[arg(long, value_name = "N", default_value_t = 20, help_heading = "Actions")]
    pub limit: usize,
    /// Look at the batches the quick start (`generate-datagov-lessons-batch --emulator`) left.
    ///
    /// Starts the built-in emulator on the work dir's state (no key needed).
    #[arg(long, conflicts_with_all = ["base_url", "cleanup"], help_heading = "Server")]
    pub emulator: bool,
    #[command(flatten, next_help_heading = "Server")]
    pub api: ApiArgs,
    /// With --wait: first polling interval in seconds, at least 1.
    ///
    /// Shorter intervals are accepted only for a server on this machine (--emulator, or a
    /// loopback --base-url such as the tests use).
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = crate::args::parse_seconds, help_heading = "Server")]
    pub poll_interval: f64,
    /// Where downloads go and ledgers are looked for.
    ///
    /// Else `[paths] work_dir` of the settings file (--config, else ./lessons.toml), else the
    /// old scripts' path.
    #[arg(
        long,
        value_name = "DIR",
        default_value = crate::args::DEFAULT_WORK_DIR,
        help_heading = "Output"
    )]
    pub work_dir: PathBuf,
    /// Download again even when the file is already there.
    #[arg(long, help_heading = "Output")]
    pub force: bool,
    #[command(flatten, next_help_heading = "Writing lessons (--process)")]
    pub write: WriteArgs,
    #[command(flatten, next_help_heading = "Output")]
    pub output: OutputArgs,
}

impl Args {
    /// Parses the command line, then takes `--work-dir`, when not given, from the settings
    /// file's `[paths] work_dir` (--config, else ./lessons.toml), as generate does.
    ///
    /// # Errors
    ///
    /// The settings file cannot be read or parsed (clap's own errors exit as clap does).
    pub fn parse_with_settings() -> anyhow::Result<Args> {
        use clap::{CommandFactory, FromArgMatches};
        let matches = crate::matches(Args::command());
        let mut args =
            Args::from_arg_matches(&matches).unwrap_or_else(|err| crate::exit_on_clap_error(&err));
        if matches.value_source("work_dir") != Some(clap::parser::ValueSource::CommandLine)
            && let Some(file) = crate::args::settings_file(args.write.config.as_deref())
            && let Some(work_dir) = batch_request::RequestSettings::from_toml_file(&file)?
                .paths
                .work_dir
        {
            args.work_dir = work_dir;
        }
        Ok(args)
    }
}

/// The examples, shown by `-h` and `--help`.
const EXAMPLES: &str = "\
Examples:
  check-batch-status                         the work dir's latest batch
  check-batch-status batch_abc --wait        follow it to its end
  check-batch-status batch_abc --process     download the results and write the lessons
  check-batch-status batch_abc --cancel      cancel it (asks first; --yes does not)
  check-batch-status --list                  recent batches
  check-batch-status msgbatch_abc --process  the same for an Anthropic message batch
  check-batch-status --emulator --list       the batches the quick start (--emulator) left";

#[derive(Debug, Serialize)]
struct CheckReport {
    batch: Batch,
    output_path: Option<PathBuf>,
    error_path: Option<PathBuf>,
    /// What the batch costs, from the usage the server reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<lesson_job::BatchCost>,
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
    if args.emulator {
        return crate::check_emulator::run(args, &reporter).await;
    }
    if args.cleanup {
        return cleanup::run(args, &reporter).await;
    }
    let provider = if args.list {
        args.api.provider.unwrap_or(Provider::OpenAi)
    } else {
        provider_of(args)?
    };
    let client = connect(provider, args, &reporter)?;
    if args.list {
        return list(&client, args, &reporter).await;
    }
    check_one(&client, args, &reporter).await
}

/// A client of `provider` with its key (`OPENAI_API_KEY` or `ANTHROPIC_API_KEY`, else
/// --api-key-file) and base URL.
pub(super) fn connect(
    provider: Provider,
    args: &Args,
    reporter: &Reporter,
) -> anyhow::Result<ProviderClient> {
    let (api_key, source) = key::load_api_key(
        provider,
        args.api.api_key_file.as_deref(),
        crate::Command::Check,
    )?;
    let base_url = key::base_url(provider, args.api.base_url.as_deref());
    reporter.detail(format!(
        "Using the API key from {source} with {}",
        Shown(openai_batch_client::redacted_url(&base_url))
    ));
    // Retries show (--list and --cleanup too); `check_one` renders them on its batch lines.
    key::connect(
        provider,
        base_url,
        api_key,
        Arc::new(reporter.job_progress()),
    )
}

/// Which API the batch asked about is asked of: `--provider`, else the batch id's prefix
/// (`msgbatch_` is Anthropic's, `batch_` OpenAI's), else, with no id, the provider the work
/// dir's ledger records for its latest batch; else OpenAI.
///
/// # Errors
///
/// A usage error when `--provider` names the other API than the id's prefix; the work dir's
/// ledgers cannot be read.
pub(crate) fn provider_of(args: &Args) -> anyhow::Result<Provider> {
    let from_id = args
        .batch_id
        .as_deref()
        .and_then(lesson_job::batch_id_provider);
    match (args.api.provider, from_id, &args.batch_id) {
        (Some(flag), Some(owner), Some(id)) if flag != owner => {
            let what = match owner {
                Provider::Anthropic => "an Anthropic message batch id (msgbatch_...)",
                Provider::OpenAi => "an OpenAI batch id (batch_...)",
            };
            Err(crate::usage_error(
                format!(
                    "{} is {what}, and --provider says {flag}; nothing was asked of either API",
                    Shown(id)
                ),
                Some(&format!(
                    "drop --provider (the id says which API), or pass --provider {owner}"
                )),
            ))
        }
        (Some(flag), _, Some(_)) => Ok(flag),
        (Some(flag), _, None) => match lesson_job::latest_recorded_batch(&args.work_dir)? {
            Some((id, owner)) if owner != flag => Err(crate::usage_error(
                format!(
                    "the work dir's latest batch {} is {}'s, and --provider says {flag}; nothing was asked of either API",
                    Shown(&id),
                    provider_name(owner)
                ),
                Some(
                    "drop --provider (the job's ledger says which API), or pass the id of the batch to check",
                ),
            )),
            _ => Ok(flag),
        },
        (None, Some(owner), _) => Ok(owner),
        (None, None, Some(_)) => Ok(Provider::OpenAi),
        (None, None, None) => Ok(lesson_job::latest_recorded_batch(&args.work_dir)?
            .map_or(Provider::OpenAi, |(_, provider)| provider)),
    }
}

/// The provider as a sentence names it.
fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::OpenAi => "OpenAI",
        Provider::Anthropic => "Anthropic",
    }
}

/// What Ctrl-C leaves: the batch runs on (a download in flight leaves no partial file), and
/// the command that looks at it again.
/// Runs `step` (checking, waiting, downloading) until it ends or Ctrl-C is pressed; on a
/// press, `None` after saying how to pick the batch up again (the batch keeps running).
pub(crate) async fn until_interrupted<T>(
    args: &Args,
    bars: &crate::progress::BatchBars,
    step: impl std::future::Future<Output = T>,
) -> anyhow::Result<Option<T>> {
    let interrupt = crate::interrupt::Interrupt::listen().context("cannot listen for Ctrl-C")?;
    let done = tokio::select! {
        done = step => Some(done),
        () = interrupt.pressed() => None,
    };
    bars.finish();
    if done.is_none() {
        crate::output::errln!("{}", stopped_waiting(args, bars.last_batch().as_ref()));
    }
    Ok(done)
}

fn stopped_waiting(args: &Args, batch: Option<&Batch>) -> String {
    let which = match (batch, &args.batch_id) {
        (Some(batch), _) => {
            let counts = batch.counts();
            format!(
                "batch {} is still {} on the server ({}/{} done)",
                Shown(&batch.id),
                batch.status,
                counts.completed + counts.failed,
                counts.total
            )
        }
        (None, Some(id)) => format!("batch {} keeps running on the server", Shown(id)),
        (None, None) => "the work dir's latest batch keeps running on the server".to_owned(),
    };
    format!(
        "\nInterrupted: {which}; Ctrl-C only stopped this command (no partial file kept). Look again with:\n  {}",
        Shown(crate::generate::resume_command())
    )
}

/// `--cancel` asks on a terminal, unless --yes; without a terminal and without --yes it is
/// refused (a cancel cannot be undone).
fn confirm_cancel(args: &Args) -> anyhow::Result<()> {
    if args.yes {
        return Ok(());
    }
    let which = args.batch_id.as_deref().map_or_else(
        || "the work dir's latest batch".to_owned(),
        |id| Shown(id).to_string(),
    );
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(crate::usage_error(
            format!(
                "--cancel would cancel {which}, and there is no terminal to ask; nothing was cancelled"
            ),
            Some("add --yes to cancel without asking"),
        ));
    }
    if crate::args::ask_yes_no(&format!(
        "Cancel {which}? Requests not yet run will not run; finished ones keep their results. [y/N] "
    ))? {
        Ok(())
    } else {
        Err(crate::usage_error(
            "not confirmed; nothing was cancelled",
            Some("add --yes to skip the question"),
        ))
    }
}

/// What a cancel request left: the batch's status as the cancel answered it.
fn confirm_cancel_done(batch_id: &str, status: &str) -> String {
    format!(
        "Cancel requested for {}: now {} (finished requests keep their results)",
        Shown(batch_id),
        status
    )
}

/// Checks one batch (the given one, or the work dir's latest) through `client`, as the flags
/// say: cancel, wait, download, process; prints it, or the JSON report.
pub(crate) async fn check_one(
    client: &ProviderClient,
    args: &Args,
    reporter: &Reporter,
) -> anyhow::Result<ExitStatus> {
    let local = args.emulator
        || crate::args::is_loopback(&key::base_url(
            client.provider(),
            args.api.base_url.as_deref(),
        ));
    let initial_interval = crate::args::poll_interval("poll-interval", args.poll_interval, local)?;
    if args.cancel {
        confirm_cancel(args)?;
    }
    let check = lesson_job::BatchCheck {
        batch_id: args.batch_id.as_deref().map(BatchId::from),
        cancel: args.cancel,
        wait: args.wait.then(|| PollConfig {
            initial_interval,
            ..PollConfig::default()
        }),
        download: args.download || args.process,
        force_download: args.force,
    };
    match client {
        ProviderClient::OpenAi(client) => check_openai(client, args, &check, reporter).await,
        ProviderClient::Anthropic(client) => anthropic::check(client, args, &check, reporter).await,
    }
}

/// [`check_one`] for an OpenAI batch.
async fn check_openai(
    client: &Client,
    args: &Args,
    check: &lesson_job::BatchCheck,
    reporter: &Reporter,
) -> anyhow::Result<ExitStatus> {
    let bars = Arc::new(reporter.job_progress());
    // Retries show (the server unreachable since when), instead of a silent wait.
    let client = &client.clone().with_retry_progress(bars.clone());
    let checked = lesson_job::check_batch(client, &args.work_dir, check, &*bars);
    let Some(checked) = until_interrupted(args, &bars, checked).await? else {
        return Ok(ExitStatus::Interrupted);
    };
    let checked = checked.with_context(|| match &args.batch_id {
        Some(id) => format!("cannot check batch {}", Shown(id)),
        None => "cannot check the work dir's latest batch".to_owned(),
    })?;
    let batch = checked.batch;
    if let Some(cancelled) = &checked.cancelled {
        reporter.say(confirm_cancel_done(
            batch.id.as_str(),
            &cancelled.status.to_string(),
        ));
    }
    let billing = Billing::from_emulator(args.emulator);
    let cost = batch_cost(&batch, args, &args.work_dir)?;
    if !args.output.json {
        crate::output::out!(
            "{}{}",
            shown_lines(&describe(&batch, chrono::Utc::now().timestamp())),
            shown_lines(&cost_line(cost.as_ref(), billing))
        )?;
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
        let report = process(args, &batch.id, &files, reporter)?;
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
            cost,
            process: process_report,
        })?;
    }
    Ok(status)
}

/// `--process`: writes the lessons of `batch_id`'s results `files`. A batch of a job in the
/// work dir: only its lessons count, with the titles its requests had, written into that
/// job's output directory unless --out says otherwise.
fn process(
    args: &Args,
    batch_id: &BatchId,
    files: &[lesson_job::ResultsFile],
    reporter: &Reporter,
) -> anyhow::Result<JobReport> {
    let recorded = lesson_job::recorded_batch(&args.work_dir, batch_id)?;
    let fingerprint = recorded
        .as_ref()
        .and_then(|recorded| recorded.fingerprint.as_ref());
    write_lessons(
        &args.write,
        fingerprint,
        crate::process::WriteMode {
            force: args.force,
            no_wait: false,
            billing: Billing::from_emulator(args.emulator),
        },
        files,
        recorded
            .as_ref()
            .and_then(|recorded| recorded.lessons.as_ref()),
        reporter,
    )
}

async fn list(
    client: &ProviderClient,
    args: &Args,
    reporter: &Reporter,
) -> anyhow::Result<ExitStatus> {
    match client {
        ProviderClient::OpenAi(client) => {
            let batches = lesson_job::recent_batches(client, args.limit)
                .await
                .context("cannot list batches")?;
            print_list(&batches, args, reporter)
        }
        ProviderClient::Anthropic(client) => {
            let batches = lesson_job::recent_message_batches(client, args.limit)
                .await
                .map_err(|err| anthropic::failure(err, None))
                .context("cannot list message batches")?;
            anthropic::print_list(&batches, args, reporter)
        }
    }
}

/// Prints batches as `--list` shows them: JSON, or a table that fits the terminal.
pub(crate) fn print_list(
    batches: &[Batch],
    args: &Args,
    reporter: &Reporter,
) -> anyhow::Result<ExitStatus> {
    if args.output.json {
        crate::print_json(&batches)?;
        return Ok(ExitStatus::Success);
    }
    if batches.is_empty() {
        reporter.say("No batches.");
        return Ok(ExitStatus::Success);
    }
    crate::output::out!(
        "{}",
        crate::table::batch_table(batches, crate::table::output_width())
    )?;
    Ok(ExitStatus::Success)
}

/// What `batch` costs, from the usage the server reports, priced with the settings' prices
/// (`--config`, else lessons.toml, else the built-in table) for the batch's model, or the model
/// its job recorded in the work dir.
fn batch_cost(
    batch: &Batch,
    args: &Args,
    work_dir: &std::path::Path,
) -> anyhow::Result<Option<lesson_job::BatchCost>> {
    let prices = prices(args)?;
    let recorded_model = if batch.model.is_none() {
        lesson_job::recorded_batch(work_dir, &batch.id)
            .ok()
            .flatten()
            .and_then(|recorded| recorded.fingerprint)
            .map(|fingerprint| fingerprint.model)
    } else {
        None
    };
    Ok(lesson_job::batch_cost(
        batch,
        recorded_model.as_deref(),
        &prices,
    ))
}

/// The prices of `--config`, else lessons.toml, else the built-in table.
fn prices(args: &Args) -> anyhow::Result<batch_request::PriceTable> {
    Ok(
        match crate::args::settings_file(args.write.config.as_deref()) {
            Some(path) => batch_request::RequestSettings::from_toml_file(&path)?.price_table(),
            None => batch_request::PriceTable::builtin(),
        },
    )
}

/// The cost line under a batch's description: from the usage the server reports (so far,
/// while the batch runs), or why there is none.
pub fn cost_line(cost: Option<&lesson_job::BatchCost>, billing: Billing) -> String {
    let suffix = billing.suffix();
    match cost {
        Some(cost) => {
            let so_far = if cost.is_final { "" } else { " so far" };
            match cost.usd {
                Some(amount) => format!(
                    "  cost:        {}{so_far} at batch prices, from the usage above{suffix}\n",
                    dollars(amount)
                ),
                None => format!("  cost:        {}{suffix}\n", usd(None)),
            }
        }
        None => format!(
            "  cost:        not known: the server reports no usage for this batch (only batches created since 2025-09-07 carry it){suffix}\n"
        ),
    }
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
        count(counts.total),
        count(counts.completed),
        percent(counts.completed),
        count(counts.failed),
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
            "  usage:       {} input tokens ({} cached), {} output tokens",
            count(usage.input_tokens),
            count(
                usage
                    .input_tokens_details
                    .map_or(0, |details| details.cached_tokens)
            ),
            count(usage.output_tokens)
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
