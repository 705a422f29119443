//! `generate-datagov-lessons-batch`: outline to lesson files through the Batch API, resumable.
//! The workflow is `lesson_job`'s; this module holds the flags, the questions and the text.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use batch_request::{Estimate, RequestSettings, Template};
use clap::Parser;
use lesson_job::{Job, JobReport, JobSpec, LockWait, Plan, RunOptions, Selection};
use lesson_writer::{FileNamePattern, Manifest};
use openai_batch_client::PollConfig;

use crate::args::{ApiArgs, OutputArgs};
use crate::key::{self, KeySource};
use crate::progress::{Reporter, human_bytes, usd};
use crate::report::{say_outcomes, waiting_line};
use crate::term::Shown;
use crate::{ExitStatus, usage_error};

/// The prompt file the old script read from the working directory.
pub const DEFAULT_PROMPT: &str = "LESSON_GENERATION_PROMPT_GENERIC.md";
/// The optional settings file read from the working directory.
pub const DEFAULT_CONFIG: &str = "lessons.toml";
/// This command's name, as the job lock records it.
const COMMAND: &str = "generate-datagov-lessons-batch";

/// Generate course lessons with the OpenAI or Anthropic batch APIs, at half the live price.
///
/// Parses the outline, skips lessons that already have a file, writes the request shards,
/// prints the estimate, submits the batch(es), waits, downloads the results and writes one
/// Markdown file per lesson. Every step is recorded in a ledger in the work dir: a rerun
/// attaches to a batch still running instead of submitting it again.
#[derive(Debug, Parser)]
#[command(
    name = "generate-datagov-lessons-batch",
    version,
    after_help = EXAMPLES,
    after_long_help = long_after_help()
)]
pub struct Args {
    /// The outline (Markdown).
    ///
    /// Else `[paths] content` of the settings file, else the old scripts' path.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "src/data/data_gov/Content Structure.md",
        help_heading = "Input"
    )]
    pub content: PathBuf,
    /// Prompt template [default: LESSON_GENERATION_PROMPT_GENERIC.md or built in]
    ///
    /// Unset: `[paths] prompt` of the settings file, else ./LESSON_GENERATION_PROMPT_GENERIC.md
    /// when it exists, else the built-in template. `{{name}}` placeholders are filled in per
    /// lesson; a known name in single braces (`{lesson_code}`) gets a warning.
    #[arg(long, value_name = "PATH", help_heading = "Input")]
    pub prompt: Option<PathBuf>,
    /// Request settings (TOML) [default: lessons.toml when it exists].
    ///
    /// Its `[paths]` table may set content, prompt, out and work_dir (relative to the
    /// settings file's directory); flags override them.
    #[arg(long, value_name = "PATH", help_heading = "Input")]
    pub config: Option<PathBuf>,
    /// Print the parsed curriculum and exit; sends nothing.
    #[arg(long, help_heading = "Input")]
    pub list_lessons: bool,
    /// Treat the outline's warnings as errors (exit 2).
    ///
    /// The warnings: lines that look like module or lesson headings but do not parse, gaps in
    /// lesson numbers.
    #[arg(long, help_heading = "Input")]
    pub strict: bool,
    /// Only these lessons, e.g. M0-L001,M3-L010 (any case).
    #[arg(
        long,
        value_name = "CODES",
        value_delimiter = ',',
        help_heading = "Selection"
    )]
    pub only: Vec<String>,
    /// Only lessons of these modules, e.g. M0,M3.
    #[arg(
        long,
        value_name = "MODULES",
        value_delimiter = ',',
        help_heading = "Selection"
    )]
    pub modules: Vec<String>,
    /// At most N lessons (try 1 to 5 first).
    #[arg(long, value_name = "N", help_heading = "Selection")]
    pub limit: Option<usize>,
    /// Regenerate (and overwrite) lessons that already exist, edited ones too.
    #[arg(long, help_heading = "Selection")]
    pub force: bool,
    /// Also regenerate stale lessons (never those edited by hand).
    ///
    /// Stale: their outline entry, template, settings or model changed since they were
    /// generated.
    #[arg(long, help_heading = "Selection")]
    pub stale: bool,
    /// Ignore unfinished batches of an earlier run and start anew.
    ///
    /// Their ledger is archived; the batches keep running on the server (and are billed)
    /// until they end or are cancelled with check-batch-status --cancel, which the command
    /// prints.
    #[arg(long, help_heading = "Selection")]
    pub new: bool,
    /// The model (overrides the settings file).
    #[arg(long, help_heading = "Model and cost")]
    pub model: Option<String>,
    /// `max_completion_tokens` of every request.
    ///
    /// Overrides the settings file.
    #[arg(long, value_name = "N", help_heading = "Model and cost")]
    pub max_completion_tokens: Option<u32>,
    /// Refuse to submit when the upper-bound cost exceeds this many USD.
    #[arg(long, value_name = "USD", value_parser = crate::args::parse_usd, help_heading = "Model and cost")]
    pub budget: Option<f64>,
    /// Ask before submitting above this cost (USD, upper bound).
    ///
    /// Without a terminal to ask on, a run above it is refused (exit 2) unless --yes.
    #[arg(long, value_name = "USD", default_value_t = 5.0, value_parser = crate::args::parse_usd, help_heading = "Model and cost")]
    pub confirm_above: f64,
    /// Do not ask before spending or before --new.
    #[arg(long, short = 'y', help_heading = "Model and cost")]
    pub yes: bool,
    /// The organization's enqueued-token limit for the model.
    ///
    /// Input tokens of unfinished batches [default: lessons.toml's `[enqueued_token_limit]`,
    /// else OpenAI's Tier 1 limit]. Shards are cut to fit it and submitted one after another
    /// within it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Model and cost")]
    pub max_enqueued_tokens: Option<u64>,
    /// At most N requests per batch (1 to 50,000).
    ///
    /// [default: lessons.toml's max_requests_per_batch, else 50,000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=50_000), help_heading = "Model and cost")]
    pub batch_size: Option<u64>,
    /// Build the shards and print the estimate; send nothing.
    #[arg(long, help_heading = "Submission")]
    pub dry_run: bool,
    /// Send these lessons right away through the normal endpoint, e.g. M0-L001,M3-L010.
    ///
    /// No batch: the answers (same template and settings) are cleaned and written to
    /// `<out>/preview/`, never into the course or its manifest, and cost standard prices,
    /// shown (and asked about above --confirm-above) before anything is sent.
    #[arg(
        long,
        value_name = "CODES",
        value_delimiter = ',',
        conflicts_with_all = ["dry_run", "list_lessons", "no_wait", "only", "modules", "limit", "new"],
        hide_short_help = true,
        help_heading = "Submission"
    )]
    pub preview: Vec<String>,
    /// Submit, print the batch id(s) and exit; a rerun attaches and waits.
    ///
    /// Also: when another run is working on the job, exit instead of waiting for it.
    #[arg(long, help_heading = "Submission")]
    pub no_wait: bool,
    /// Use a built-in local Batch API (no key; nothing leaves the machine).
    #[arg(long, conflicts_with = "base_url", help_heading = "Submission")]
    pub emulator: bool,
    #[command(flatten, next_help_heading = "Submission")]
    pub api: ApiArgs,
    /// Resubmit retryable failures, up to N more rounds.
    ///
    /// An answer below spec is resubmitted once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        help_heading = "Submission"
    )]
    pub retry_failed: u32,
    /// Write answers below the quality bar as lessons.
    ///
    /// The bar: lessons.toml's `[quality]` (too few words, or sections of the built-in
    /// template missing). Such answers are kept in `<out>/rejected/` otherwise.
    #[arg(long, help_heading = "Submission")]
    pub accept_below_spec: bool,
    /// Keep the output and error files on the server after the lessons are written.
    ///
    /// Uploaded shards are deleted either way; local copies always stay in the work dir.
    #[arg(long, hide_short_help = true, help_heading = "Submission")]
    pub keep_remote_files: bool,
    /// Uploaded shards expire on the server after this many hours if not deleted (1 to 720).
    #[arg(long, value_name = "HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..=720), hide_short_help = true, help_heading = "Submission")]
    pub upload_expiry_hours: u64,
    /// First polling interval in seconds, at least 1 [default: 5].
    ///
    /// It backs off to --max-poll-interval. Shorter intervals are accepted only for a server
    /// on this machine (--emulator, or a loopback --base-url such as the tests use).
    #[arg(long, value_name = "SECS", value_parser = crate::args::parse_seconds, help_heading = "Submission")]
    pub poll_interval: Option<f64>,
    /// Longest polling interval in seconds, at least 1 [default: 60].
    #[arg(long, value_name = "SECS", value_parser = crate::args::parse_seconds, hide_short_help = true, help_heading = "Submission")]
    pub max_poll_interval: Option<f64>,
    /// Where lesson files are written.
    ///
    /// Else `[paths] out` of the settings file, else the old scripts' path.
    #[arg(
        long,
        value_name = "DIR",
        default_value = crate::process::DEFAULT_OUT,
        help_heading = "Output"
    )]
    pub out: PathBuf,
    /// Job folders: ledgers, shards, results.
    ///
    /// Jobs may share it. Else `[paths] work_dir` of the settings file, else the old scripts' path.
    #[arg(
        long,
        value_name = "DIR",
        default_value = crate::args::DEFAULT_WORK_DIR,
        help_heading = "Output"
    )]
    pub work_dir: PathBuf,
    /// The job's name: its folder in the work dir starts with it [default: the outline's folder name].
    #[arg(
        long,
        value_name = "NAME",
        hide_short_help = true,
        help_heading = "Output"
    )]
    pub job: Option<String>,
    /// Lesson file names: `{code}.md` or `{code}-{slug}.md`.
    #[arg(long, value_name = "PATTERN", default_value = FileNamePattern::CODE, hide_short_help = true, help_heading = "Output")]
    pub file_name: String,
    #[command(flatten, next_help_heading = "Output")]
    pub output: OutputArgs,
}

impl Args {
    /// Parses the command line, then takes the paths not given as flags from the settings
    /// file's `[paths]` (relative to that file); the flags' defaults stay the fallback.
    ///
    /// # Errors
    ///
    /// The settings file cannot be read or parsed (clap's own errors exit as clap does).
    pub fn parse_with_settings() -> anyhow::Result<Args> {
        use clap::CommandFactory;
        Args::from_matches_with_settings(&crate::matches(Args::command()))
    }

    /// [`Args::parse_with_settings`] on parsed matches.
    ///
    /// # Errors
    ///
    /// The settings file cannot be read or parsed.
    pub fn from_matches_with_settings(matches: &clap::ArgMatches) -> anyhow::Result<Args> {
        use clap::FromArgMatches;
        let mut args =
            Args::from_arg_matches(matches).unwrap_or_else(|err| crate::exit_on_clap_error(&err));
        let Some(file) = crate::args::settings_file(args.config.as_deref()) else {
            return Ok(args);
        };
        let paths = RequestSettings::from_toml_file(&file)?.paths;
        let given =
            |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        if let Some(content) = paths.content.filter(|_| !given("content")) {
            args.content = content;
        }
        if let Some(out) = paths.out.filter(|_| !given("out")) {
            args.out = out;
        }
        if let Some(work_dir) = paths.work_dir.filter(|_| !given("work_dir")) {
            args.work_dir = work_dir;
        }
        if args.prompt.is_none() {
            args.prompt = paths.prompt;
        }
        Ok(args)
    }
}

/// The examples, shown by `-h` and `--help`.
const EXAMPLES: &str = "\
Examples:
  generate-datagov-lessons-batch --emulator --limit 3       try it offline, no key needed
  generate-datagov-lessons-batch --dry-run                  build the requests, print the cost
  generate-datagov-lessons-batch --preview M0-L001          one lesson now, to check the prompt
  generate-datagov-lessons-batch --only m0-l001,M3-L010     these two lessons
  generate-datagov-lessons-batch --no-wait                  submit and exit; rerun to attach
  generate-datagov-lessons-batch --content outline.md --out lessons --budget 2

-h shows the common options; --help shows all, with details and the exit codes.";

/// `--help`'s text after the options: the examples, where the paths come from, the exit codes.
fn long_after_help() -> String {
    format!(
        "{}\n\nPaths: --content, --prompt, --out and --work-dir default to the settings file's \
         [paths] table (relative paths are read from that file's directory), else to the paths \
         of the old scripts (src/data/data_gov/..., scripts/batch_api), kept for compatibility.\n\n{}",
        EXAMPLES
            .trim_end_matches(
                "-h shows the common options; --help shows all, with details and the exit codes."
            )
            .trim_end(),
        crate::EXIT_CODES_HELP
    )
}

/// Runs the command.
///
/// # Errors
///
/// Any failure, for [`crate::report()`] to print with a hint and an exit code.
pub async fn run(args: &Args) -> anyhow::Result<ExitStatus> {
    let reporter = Reporter::new(args.output.verbosity());
    let settings = load_settings(args, &reporter)?;
    let provider = args
        .api
        .provider
        .unwrap_or_else(|| lesson_job::Provider::for_model(&settings.model));
    // A missing key fails before any work, unless nothing will be sent or the emulator runs.
    let key = if args.dry_run || args.emulator || args.list_lessons {
        None
    } else {
        Some(key::load_api_key(
            provider,
            args.api.api_key_file.as_deref(),
            crate::Command::Generate,
        )?)
    };
    // Polling that would hammer the API fails before any work (a dry run polls nothing).
    let poll = if args.dry_run || args.list_lessons {
        PollConfig::default()
    } else {
        poll_config(args, provider)?
    };
    let outline_name = args.content.file_name().map_or_else(
        || args.content.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if !args.list_lessons {
        reporter.say(format!("Step 1: Parsing {}...", Shown(&outline_name)));
    }
    if !args.content.is_file() {
        // The flag's default: the old scripts' path.
        let given = args.content.as_path()
            != std::path::Path::new("src/data/data_gov/Content Structure.md");
        let (what, hint) = if args.content.is_dir() {
            (
                "is a directory",
                "pass the outline file itself with --content PATH",
            )
        } else if given {
            ("no such file", "check the path given with --content")
        } else {
            (
                "no such file",
                "pass the outline with --content PATH (the default is src/data/data_gov/Content Structure.md)",
            )
        };
        return Err(usage_error(
            format!(
                "cannot read the outline {}: {what}",
                Shown(args.content.display())
            ),
            Some(hint),
        ));
    }
    crate::args::check_dir_flag("--out", &args.out)?;
    crate::args::check_dir_flag("--work-dir", &args.work_dir)?;
    let job = Job::open(JobSpec {
        outline: args.content.clone(),
        out_dir: args.out.clone(),
        work_dir: args.work_dir.clone(),
        name: args.job.clone(),
        template: load_template(args, &reporter)?,
        settings,
        file_name: FileNamePattern::new(&args.file_name)
            .map_err(|err| usage_error(format!("--file-name: {err}"), None))?,
        max_enqueued_tokens: args.max_enqueued_tokens,
        provider: Some(provider),
    })?;
    crate::outline::show_warnings(
        &reporter,
        &args.content,
        &job.curriculum().warnings,
        args.strict,
    )?;
    if args.list_lessons {
        let states = job.lesson_states()?;
        crate::list::print_curriculum(job.curriculum(), &args.content, &states, args.output.json)?;
        return Ok(ExitStatus::Success);
    }
    reporter.say(format!(
        "  Found {} lessons across {} modules",
        job.curriculum().lesson_count(),
        job.curriculum().modules.len()
    ));
    if !args.preview.is_empty() {
        return crate::preview::run(args, &job, &reporter, key).await;
    }
    let selection = Selection {
        only: args
            .only
            .iter()
            .map(|code| crate::select::parse_code(code))
            .collect::<anyhow::Result<_>>()?,
        modules: args
            .modules
            .iter()
            .map(|module| crate::select::parse_module(module))
            .collect::<anyhow::Result<_>>()?,
        limit: args.limit,
        force: args.force,
        stale: args.stale,
    };

    // One run at a time: everything from here on that reads the ledger or the lessons
    // happens under the job's lock (a dry run sends and writes nothing, so it takes none).
    let lock = if args.dry_run {
        None
    } else {
        let wait = if args.no_wait {
            LockWait::NoWait
        } else {
            LockWait::Wait
        };
        Some(job.lock(COMMAND, wait, |holder| reporter.say(waiting_line(holder)))?)
    };
    let mut manifest = match &lock {
        Some(lock) => {
            for path in job.remove_leftovers(lock)? {
                reporter.detail(format!(
                    "  removed {}, left by an interrupted run",
                    Shown(path.display())
                ));
            }
            job.claim(lock, args.force)?
        }
        None => Manifest::load(&job.paths().out_dir)?,
    };
    if let Some(lock) = &lock
        && args.new
        && !job.unfinished()?.is_empty()
    {
        let running: Vec<String> = job
            .unfinished()?
            .iter()
            .filter_map(|shard| shard.batch_id.as_ref().map(ToString::to_string))
            .collect();
        confirm_new(args, &job.paths().ledger())?;
        if let Some(archived) = job.archive_ledger(lock)? {
            reporter.say(format!(
                "  --new: archived the earlier ledger as {}; its batches are no longer tracked",
                Shown(archived.display())
            ));
            if !running.is_empty() {
                reporter.say(new_keeps_running(args, &running));
            }
        }
    }

    reporter.say(format!(
        "Step 2: Checking {} for generated lessons...",
        Shown(args.out.display())
    ));
    let plan = job.plan(&manifest, &selection, args.dry_run)?;
    say_plan(&reporter, args, &plan);
    if plan.is_empty() {
        reporter.say(nothing_to_do(args.limit, &plan));
        return finish(args, &reporter, job.report_of(&plan));
    }
    if !plan.attach.is_empty() {
        let ids: Vec<String> = plan
            .attach
            .iter()
            .map(|shard| {
                shard.batch_id.as_ref().map_or_else(
                    || format!("{} (not yet created)", Shown(&shard.id)),
                    |id| Shown(id).to_string(),
                )
            })
            .collect();
        reporter.say(format!(
            "Step 3: Found unfinished work from an earlier run: {}. Attaching to it instead of submitting again (--new starts over).",
            ids.join(", ")
        ));
    }
    if let Some(estimate) = &plan.estimate {
        reporter.say("Step 3: Building requests...");
        print_estimate(
            &reporter,
            &plan,
            estimate,
            crate::report::Billing::from_emulator(args.emulator),
        );
        if let Some(budget) = args.budget {
            plan.check_budget(budget, &job.settings().model)?;
        }
        if args.dry_run {
            reporter.say("Dry run: nothing was sent. Run again without --dry-run to submit.");
            return finish(args, &reporter, job.report_of(&plan));
        }
        confirm_spend(args, estimate, job.curriculum().warnings.len())?;
    } else if args.dry_run {
        reporter.say("Dry run: nothing was sent.");
        return finish(args, &reporter, job.report_of(&plan));
    }

    // From here on, requests go out: Ctrl-C stops whichever step runs (see `interrupted`).
    let interrupt = crate::interrupt::Interrupt::listen().context("cannot listen for Ctrl-C")?;
    // The emulator keeps its files and batches in the job's folder, so a run that is
    // interrupted (or --no-wait) resumes against the same batches next time.
    let emulator = start_emulator(args, &reporter, Some(job.paths().emulator_dir())).await?;
    let (api_key, source) = match (&emulator, key) {
        (Some(_), _) => (
            secrecy::SecretString::from("emulator".to_owned()),
            KeySource::Emulator,
        ),
        (None, Some(key)) => key,
        (None, None) => key::load_api_key(
            job.provider(),
            args.api.api_key_file.as_deref(),
            crate::Command::Generate,
        )?,
    };
    let base_url = match &emulator {
        Some(emulator) => key::emulator_url(job.provider(), emulator),
        None => key::base_url(job.provider(), args.api.base_url.as_deref()),
    };
    if !matches!(source, KeySource::Emulator) {
        reporter.say(format!(
            "  Using the API key from {} with {}",
            Shown(&source),
            Shown(openai_batch_client::redacted_url(&base_url))
        ));
    }
    let bars = Arc::new(reporter.job_progress());
    let client = key::connect(job.provider(), base_url, api_key, bars.clone())?;
    let options = RunOptions {
        no_wait: args.no_wait,
        retry_rounds: args.retry_failed,
        force: args.force,
        poll,
        budget: args.budget,
        keep_remote_files: args.keep_remote_files,
        input_expires_after: Some(args.upload_expiry_hours * 3600),
        accept_below_spec: args.accept_below_spec,
        ..RunOptions::default()
    };
    let outcome = tokio::select! {
        report = job.execute(&plan, &mut manifest, client, &options, bars.clone()) => Some(report),
        () = interrupt.pressed() => None,
    };
    bars.finish();
    let status = match outcome {
        Some(report) => {
            let report = report.context("cannot finish the job")?;
            if args.no_wait {
                let running: Vec<String> = report
                    .batches
                    .iter()
                    .map(|batch| Shown(&batch.id).to_string())
                    .collect();
                reporter.say(format!(
                    "Submitted: {}. Nothing was waited for.\nTo continue later, run the same command again (it attaches to the batch), or check it with:\n  {}",
                    running.join(", "),
                    Shown(check_command(args, report.batches.first().map(|batch| batch.id.as_str())))
                ));
            }
            finish(args, &reporter, report)?
        }
        None => {
            // The step's future is dropped: a download in flight leaves no partial file, an
            // upload in flight creates nothing, and the ledger holds every step done before.
            crate::output::errln!("{}", interrupted(&job));
            if args.output.json {
                crate::print_json(&job.report_of(&plan))?;
            }
            ExitStatus::Interrupted
        }
    };
    drop(lock);
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(status)
}

/// Why a plan sends nothing: `--limit 0`, or every lesson in scope has a file, or the stale
/// ones were edited by hand.
fn nothing_to_do(limit: Option<usize>, plan: &Plan) -> &'static str {
    if limit == Some(0) {
        "Nothing to do: --limit 0 selects no lessons (--limit N sends at most N)."
    } else if !plan.kept_edited.is_empty() {
        "Nothing to do: the stale lessons were edited by hand and are kept (--force overwrites them)."
    } else {
        "Nothing to do: every requested lesson already has a file (use --force to regenerate)."
    }
}

fn say_plan(reporter: &Reporter, args: &Args, plan: &Plan) {
    reporter.say(format!(
        "  {} already generated, {} to generate{}",
        crate::format::count_usize(plan.already_generated),
        crate::format::count_usize(plan.new_requests()),
        if args.force && plan.already_generated > 0 {
            " (--force: existing lessons are regenerated)"
        } else {
            ""
        }
    ));
    if !plan.stale.is_empty() {
        let codes: Vec<String> = plan
            .stale
            .iter()
            .map(|stale| format!("{} ({})", stale.lesson_code, Shown(&stale.reason)))
            .collect();
        reporter.say(format!(
            "  {} stale: {}{}",
            plan.stale.len(),
            codes.join(", "),
            if args.stale || args.force {
                ""
            } else {
                "; --stale regenerates them"
            }
        ));
    }
    for code in &plan.kept_edited {
        reporter.say(format!(
            "  kept {code}: edited by hand (--force overwrites it)"
        ));
    }
}

/// The polling intervals: at least 1 s, shorter only for a server on this machine.
fn poll_config(args: &Args, provider: lesson_job::Provider) -> anyhow::Result<PollConfig> {
    let local = args.emulator
        || crate::args::is_loopback(&key::base_url(provider, args.api.base_url.as_deref()));
    let (initial, max) = if args.emulator {
        (0.2, 1.0)
    } else {
        (5.0, 60.0)
    };
    let initial = crate::args::poll_interval(
        "poll-interval",
        args.poll_interval.unwrap_or(initial),
        local,
    )?;
    let max = crate::args::poll_interval(
        "max-poll-interval",
        args.max_poll_interval.unwrap_or(max),
        local,
    )?;
    Ok(PollConfig {
        initial_interval: initial,
        max_interval: max.max(initial),
        ..PollConfig::default()
    })
}

fn load_settings(args: &Args, reporter: &Reporter) -> anyhow::Result<RequestSettings> {
    let path = crate::args::settings_file(args.config.as_deref());
    let mut settings = match &path {
        Some(path) => {
            reporter.detail(format!("  Settings from {}", Shown(path.display())));
            RequestSettings::from_toml_file(path)?
        }
        None => RequestSettings::default(),
    };
    if let Some(model) = &args.model {
        settings.model.clone_from(model);
    }
    if let Some(tokens) = args.max_completion_tokens {
        settings.max_completion_tokens = tokens;
    }
    if let Some(size) = args.batch_size {
        settings.max_requests_per_batch = usize::try_from(size).ok();
    }
    settings.validate()?;
    Ok(settings)
}

fn load_template(args: &Args, reporter: &Reporter) -> anyhow::Result<Template> {
    let path = match &args.prompt {
        Some(path) => Some(path.clone()),
        None => Path::new(DEFAULT_PROMPT)
            .exists()
            .then(|| PathBuf::from(DEFAULT_PROMPT)),
    };
    let quiet = args.list_lessons;
    match path {
        Some(path) => {
            let template = Template::from_file(&path)?;
            if !quiet {
                reporter.say(format!(
                    "  Prompt template: {}{}",
                    Shown(path.display()),
                    if template.is_legacy() {
                        " (legacy Python template, accepted as is)"
                    } else {
                        ""
                    }
                ));
                for single in template.single_braces() {
                    let name = single.placeholder.name();
                    reporter.warn(format!(
                        "{}:{}: `{{{name}}}` is in single braces, so it goes into the prompt as written; write `{{{{{name}}}}}` for the placeholder",
                        Shown(path.display()),
                        single.line
                    ));
                }
            }
            Ok(template)
        }
        None => {
            if !quiet {
                reporter.say(format!(
                    "  Prompt template: the built-in prompts/{DEFAULT_PROMPT} ({DEFAULT_PROMPT} not found here)"
                ));
            }
            Ok(Template::generic())
        }
    }
}

/// What `--new` leaves running on the server, and the commands that cancel it, with the flags
/// that reach the same server and work dir.
fn new_keeps_running(args: &Args, batch_ids: &[String]) -> String {
    let mut text = format!(
        "  Still running on the server, and billed for what they complete: {}. \
         (A new batch with the same requests is adopted, not paid twice.) To cancel {}:",
        batch_ids
            .iter()
            .map(|id| Shown(id).to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if batch_ids.len() == 1 { "it" } else { "them" }
    );
    for id in batch_ids {
        text.push_str("\n    ");
        text.push_str(&Shown(check_command(args, Some(id))).to_string());
        text.push_str(" --cancel");
    }
    text
}

fn confirm_new(args: &Args, ledger: &Path) -> anyhow::Result<()> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage_error(
            format!(
                "--new would stop tracking unfinished batches recorded in {}",
                Shown(ledger.display())
            ),
            Some("add --yes to confirm"),
        ));
    }
    ask("Stop tracking the unfinished batches of the earlier run and submit anew? [y/N] ")
}

/// Asks on a terminal before submitting when the upper-bound cost passes --confirm-above, or
/// when the outline has warnings (shown above); never with --yes. When stdin is not a
/// terminal, a cost above --confirm-above is refused (nobody could say yes), while the
/// warnings alone let the run go on (they were shown).
fn confirm_spend(args: &Args, estimate: &Estimate, n_warnings: usize) -> anyhow::Result<()> {
    confirm_cost(args, estimate.max_usd, estimate.expected_usd, n_warnings)
}

/// [`confirm_spend`] on an upper-bound and an expected cost in USD (`None` when unknown), for
/// any priced sending: a batch's estimate, or a preview's at standard prices.
/// Starts the built-in batch emulator when `--emulator` was given (`None` otherwise) and says
/// where it listens. `data_dir` is where it keeps its files and batches; `None` keeps them in
/// memory.
pub(crate) async fn start_emulator(
    args: &Args,
    reporter: &Reporter,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Option<batch_emulator::Emulator>> {
    if !args.emulator {
        return Ok(None);
    }
    let mut config = batch_emulator::EmulatorConfig::fast();
    config.data_dir = data_dir;
    let emulator = batch_emulator::Emulator::start(config)
        .await
        .context("cannot start the built-in batch emulator")?;
    reporter.say(format!(
        "  Using the built-in batch emulator at {} (offline, no key needed)",
        Shown(emulator.base_url())
    ));
    Ok(Some(emulator))
}

pub(crate) fn confirm_cost(
    args: &Args,
    max_usd: Option<f64>,
    expected_usd: Option<f64>,
    n_warnings: usize,
) -> anyhow::Result<()> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return match over_threshold(args, max_usd) {
            Some(max) => Err(usage_error(
                format!(
                    "the upper-bound cost {} is above --confirm-above {} and there is no terminal to ask; nothing was submitted",
                    usd(Some(max)),
                    usd(Some(args.confirm_above))
                ),
                Some("add --yes to submit anyway, or raise --confirm-above"),
            )),
            None => Ok(()),
        };
    }
    match submit_question(args, max_usd, expected_usd, n_warnings) {
        Some(question) => ask(&question),
        None => Ok(()),
    }
}

/// The upper-bound cost when it passes --confirm-above.
fn over_threshold(args: &Args, max_usd: Option<f64>) -> Option<f64> {
    max_usd.filter(|&max| max > args.confirm_above)
}

/// The question a terminal gets before submitting, if any: when the upper-bound cost passes
/// --confirm-above, or when the outline has warnings.
fn submit_question(
    args: &Args,
    max_usd: Option<f64>,
    expected_usd: Option<f64>,
    n_warnings: usize,
) -> Option<String> {
    let over = over_threshold(args, max_usd);
    let warned = (n_warnings > 0).then(|| {
        format!(
            "The outline has {}, shown above. ",
            crate::outline::count_warnings(n_warnings)
        )
    });
    match (over, warned) {
        (None, None) => None,
        (Some(max), warned) => Some(format!(
            "{}The upper-bound cost is {} (expected {}). Submit? [y/N] ",
            warned.unwrap_or_default(),
            usd(Some(max)),
            usd(expected_usd)
        )),
        (None, Some(warned)) => Some(format!("{warned}Submit anyway? [y/N] ")),
    }
}

fn ask(question: &str) -> anyhow::Result<()> {
    crate::output::err!("{question}");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
        Ok(())
    } else {
        Err(usage_error(
            "not confirmed; nothing was submitted",
            Some("add --yes to skip the question"),
        ))
    }
}

fn print_estimate(
    reporter: &Reporter,
    plan: &Plan,
    estimate: &Estimate,
    billing: crate::report::Billing,
) {
    use crate::format::{count, plural};
    for shard in &plan.shards {
        reporter.say(format!(
            "  {} ({}, {})",
            Shown(shard.shard.path.display()),
            plural(shard.shard.requests, "request"),
            human_bytes(shard.shard.bytes)
        ));
    }
    reporter.say(format!(
        "Estimate: {}, {} input tokens, {} output tokens expected ({} at most){}",
        plural(estimate.requests, "request"),
        count(estimate.input_tokens),
        count(estimate.expected_output_tokens),
        count(estimate.max_output_tokens),
        crate::report::approximate_note(estimate)
    ));
    if estimate.expected_reasoning_tokens > 0 {
        reporter.say(format!(
            "  of the output, about {} reasoning tokens (billed as output; set reasoning_effort in lessons.toml to change it)",
            count(estimate.expected_reasoning_tokens)
        ));
    }
    if estimate.shared_prefix_tokens > 0 && estimate.input_tokens > 0 {
        reporter.say(format!(
            "  shared prefix: {} tokens per request, {:.0}% of the input (cacheable: {} input tokens)",
            count(estimate.shared_prefix_tokens),
            estimate.shared_prefix_tokens_total as f64 * 100.0 / estimate.input_tokens as f64,
            count(estimate.cached_input_tokens)
        ));
    }
    reporter.say(format!(
        "  cost at batch prices: expected {}, upper bound {}; the same at standard prices: {}{}{}",
        usd(estimate.expected_usd),
        usd(estimate.max_usd),
        usd(estimate.standard_usd),
        crate::report::approximate_note(estimate),
        billing.suffix()
    ));
    if estimate.cached_input_tokens > 0 && estimate.expected_usd_with_cache != estimate.expected_usd
    {
        reporter.say(format!(
            "  with the prompt cache: expected {}",
            usd(estimate.expected_usd_with_cache)
        ));
    }
    for warning in &estimate.warnings {
        reporter.warn(warning);
    }
}

/// What Ctrl-C leaves: what still runs on the server, and the command that resumes.
fn interrupted(job: &Job) -> String {
    let ids: Vec<String> = job
        .unfinished()
        .unwrap_or_default()
        .iter()
        .filter_map(|shard| shard.batch_id.as_ref().map(|id| Shown(id).to_string()))
        .collect();
    let server = if ids.is_empty() {
        "No batch was created yet, so nothing runs on the server (an upload already finished is used by the rerun, or expires).".to_owned()
    } else {
        format!(
            "The batch(es) keep running on the server (and are billed): {}.",
            ids.join(", ")
        )
    };
    format!(
        "\nInterrupted: stopped cleanly, no partial file kept. {server}\nResume (attaches, submits nothing new) with:\n  {}",
        Shown(resume_command())
    )
}

/// The command line that resumes this run: the same arguments.
pub(crate) fn resume_command() -> String {
    let mut base_url_next = false;
    std::env::args()
        // `--new` again would start over instead of resuming.
        .filter(|arg| arg != "--new")
        .map(|arg| {
            // A key inside the URL is not shown (the user has it).
            let shown = if base_url_next {
                openai_batch_client::redacted_url(&arg)
            } else if let Some(url) = arg.strip_prefix("--base-url=") {
                format!("--base-url={}", openai_batch_client::redacted_url(url))
            } else {
                arg.clone()
            };
            base_url_next = arg == "--base-url";
            shell_word(&shown)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The `check-batch-status` command that reaches the same batch: the same server (`--base-url`,
/// a key inside it masked), key file and work dir as this run.
fn check_command(args: &Args, batch_id: Option<&str>) -> String {
    let mut words = vec!["check-batch-status".to_owned()];
    words.extend(batch_id.map(shell_word));
    if args.emulator {
        words.push("--emulator".to_owned());
    } else if let Some(url) = &args.api.base_url {
        words.push("--base-url".to_owned());
        words.push(shell_word(&openai_batch_client::redacted_url(url)));
    }
    if let Some(path) = &args.api.api_key_file {
        words.push("--api-key-file".to_owned());
        words.push(shell_word(&path.display().to_string()));
    }
    words.push("--work-dir".to_owned());
    words.push(shell_word(&args.work_dir.display().to_string()));
    words.join(" ")
}

/// Prints the report (`--json`) and the summary, writes nothing; returns the exit status:
/// 1 when a batch failed, 0 when every requested lesson has a file (or waits in a batch
/// after --no-wait), else 3.
fn finish(args: &Args, reporter: &Reporter, report: JobReport) -> anyhow::Result<ExitStatus> {
    if args.output.json {
        crate::print_json(&report)?;
    }
    if args.dry_run {
        return Ok(ExitStatus::Success);
    }
    if report.requested > 0 || !report.batches.is_empty() {
        say_outcomes(
            reporter,
            &report,
            crate::report::Billing::from_emulator(args.emulator),
        );
    }
    Ok(if report.batch_failed {
        ExitStatus::Failure
    } else if report.is_complete()
        || (args.no_wait && report.failed.is_empty() && report.missing.is_empty())
    {
        ExitStatus::Success
    } else {
        if !report.failed.iter().any(|failed| failed.retryable) && report.missing.is_empty() {
            reporter.say("Next: the failures above will fail again as they are; fix their cause (see the reasons), then run the command again.");
        } else {
            reporter
                .say("Next: run the same command again to resubmit the lessons without a file.");
        }
        ExitStatus::Partial
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12: on a terminal, the outline's warnings are a reason to ask before submitting.
    #[test]
    fn warnings_or_a_high_cost_ask_before_submitting() {
        let args = Args::parse_from(["generate-datagov-lessons-batch", "--confirm-above", "5"]);
        let estimate = |max: f64| Estimate {
            max_usd: Some(max),
            expected_usd: Some(max / 2.0),
            ..Estimate::default()
        };
        let submit_question = |estimate: &Estimate, n_warnings| {
            submit_question(&args, estimate.max_usd, estimate.expected_usd, n_warnings)
        };
        assert_eq!(submit_question(&estimate(1.0), 0), None);
        assert_eq!(
            submit_question(&estimate(1.0), 2).as_deref(),
            Some("The outline has 2 warnings, shown above. Submit anyway? [y/N] ")
        );
        let question = submit_question(&estimate(10.0), 1).unwrap();
        assert!(
            question
                .starts_with("The outline has 1 warning, shown above. The upper-bound cost is "),
            "{question}"
        );
        let question = submit_question(&estimate(10.0), 0).unwrap();
        assert!(
            question.starts_with("The upper-bound cost is "),
            "{question}"
        );
        // A model without prices: only the warnings ask.
        assert_eq!(submit_question(&Estimate::default(), 0), None);
        assert!(submit_question(&Estimate::default(), 1).is_some());
    }
}
