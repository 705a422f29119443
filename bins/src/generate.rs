//! `generate-datagov-lessons-batch`: outline to lesson files through the Batch API, resumable.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use batch_request::{Estimate, PriceTable, RequestSettings, Shard, Template};
use clap::Parser;
use curriculum_parser::{Curriculum, Lesson, LessonCode};
use lesson_writer::{FileNamePattern, Overwrite, ProcessConfig, Summary};
use openai_batch_client::{BatchStatus, Client, JobConfig, JobRunner, PollConfig, ShardRecord};

use crate::args::{ApiArgs, OutputArgs};
use crate::key::{self, KeySource};
use crate::progress::{Reporter, human_bytes, usd};
use crate::report::{
    BatchReport, FailedLesson, RunReport, ShardReport, add_summary, batch_error_line,
    failed_lessons, say_failures, write_failures,
};
use crate::rounds::{
    archive_ledger, build_shards, job_name, larger_budget, load_ledger, next_round, pending,
    round_custom_ids, shard_custom_ids,
};
use crate::select::{self, Selection};
use crate::{ExitStatus, usage_error};

/// The prompt file the old script read from the working directory.
pub const DEFAULT_PROMPT: &str = "LESSON_GENERATION_PROMPT_GENERIC.md";
/// The optional settings file read from the working directory.
pub const DEFAULT_CONFIG: &str = "lessons.toml";

/// Generate course lessons with the OpenAI Batch API, at half the price of live requests.
///
/// Parses the outline, skips lessons that already have a file, writes the request shards,
/// prints the estimate, submits the batch(es), waits, downloads the results and writes one
/// Markdown file per lesson. Every step is recorded in a ledger in the work dir: a rerun
/// attaches to a batch still running instead of submitting it again.
#[derive(Debug, Parser)]
#[command(name = "generate-datagov-lessons-batch", version, after_help = crate::EXIT_CODES_HELP)]
pub struct Args {
    /// The curriculum outline (Markdown).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "src/data/data_gov/Content Structure.md"
    )]
    pub content: PathBuf,
    /// The prompt template [default: LESSON_GENERATION_PROMPT_GENERIC.md, else the built-in one].
    #[arg(long, value_name = "PATH")]
    pub prompt: Option<PathBuf>,
    /// Request settings (TOML) [default: lessons.toml when it exists].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Where lesson files are written.
    #[arg(long, value_name = "DIR", default_value = "src/data/data_gov/lessons")]
    pub out: PathBuf,
    /// Where shards, downloaded results and the ledger live.
    #[arg(long, value_name = "DIR", default_value = "scripts/batch_api")]
    pub work_dir: PathBuf,
    /// Name of the job's files in the work dir [default: the outline's folder name].
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// The model (overrides the settings file).
    #[arg(long)]
    pub model: Option<String>,
    /// `max_completion_tokens` of every request (overrides the settings file).
    #[arg(long, value_name = "N")]
    pub max_completion_tokens: Option<u32>,
    /// Only these lessons, e.g. M0-L001,M3-L010.
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Only lessons of these modules, e.g. M0,M3.
    #[arg(long, value_name = "MODULES", value_delimiter = ',')]
    pub modules: Vec<String>,
    /// At most N lessons (try 1 to 5 first).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Regenerate (and overwrite) lessons that already exist.
    #[arg(long)]
    pub force: bool,
    /// Build the shards and print the estimate; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Submit, record, print the batch id(s) and exit; a rerun attaches and waits.
    #[arg(long)]
    pub no_wait: bool,
    /// Refuse to submit when the upper-bound cost exceeds this many USD.
    #[arg(long, value_name = "USD")]
    pub budget: Option<f64>,
    /// Do not ask before spending or before --new.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Ask for confirmation on a terminal when the upper-bound cost exceeds this many USD.
    #[arg(long, value_name = "USD", default_value_t = 5.0)]
    pub confirm_above: f64,
    /// Resubmit lessons whose failure is retryable, up to N more rounds.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub retry_failed: u32,
    /// Ignore unfinished batches of an earlier run (their ledger is archived) and start anew.
    #[arg(long)]
    pub new: bool,
    /// Run the whole workflow against a built-in local Batch API (no key, nothing leaves the machine).
    #[arg(long, conflicts_with = "base_url")]
    pub emulator: bool,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Lesson file names: `{code}.md` or `{code}-{slug}.md`.
    #[arg(long, value_name = "PATTERN", default_value = FileNamePattern::CODE)]
    pub file_name: String,
    /// First polling interval in seconds (it backs off to --max-poll-interval).
    #[arg(long, value_name = "SECS")]
    pub poll_interval: Option<f64>,
    /// Longest polling interval in seconds.
    #[arg(long, value_name = "SECS")]
    pub max_poll_interval: Option<f64>,
    /// Print the parsed curriculum and exit; sends nothing.
    #[arg(long)]
    pub list_lessons: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs the command.
///
/// # Errors
///
/// Any failure, for [`crate::report()`] to print with a hint and an exit code.
pub async fn run(args: &Args) -> anyhow::Result<ExitStatus> {
    let reporter = Reporter::new(args.output.verbosity());
    // A missing key fails before any work, unless nothing will be sent or the emulator runs.
    let key = if args.dry_run || args.emulator || args.list_lessons {
        None
    } else {
        Some(key::load_api_key(args.api.api_key_file.as_deref())?)
    };

    let outline_name = args.content.file_name().map_or_else(
        || args.content.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if !args.list_lessons {
        reporter.say(format!("Step 1: Parsing {outline_name}..."));
    }
    let outline_text = read_outline(&args.content)?;
    let curriculum = curriculum_parser::parse(&outline_text, &args.content)
        .with_context(|| format!("cannot parse the outline {}", args.content.display()))?;
    for warning in &curriculum.warnings {
        reporter.warn(format!(
            "{}:{}: {}",
            args.content.display(),
            warning.line,
            warning.message
        ));
    }
    if args.list_lessons {
        crate::list::print_curriculum(&curriculum, &args.content, args.output.json)?;
        return Ok(ExitStatus::Success);
    }
    reporter.say(format!(
        "  Found {} lessons across {} modules",
        curriculum.lesson_count(),
        curriculum.modules.len()
    ));

    let settings = load_settings(args, &reporter)?;
    let template = load_template(args, &reporter)?;
    let file_name = FileNamePattern::new(&args.file_name)
        .map_err(|err| usage_error(format!("--file-name: {err}"), None))?;

    let job = job_name(args);
    let ledger_path = args.work_dir.join(format!("{job}.ledger.json"));
    let mut report = RunReport {
        job: job.clone(),
        lessons_total: curriculum.lesson_count(),
        ledger: ledger_path.clone(),
        ..RunReport::default()
    };

    reporter.say(format!(
        "Step 2: Checking {} for generated lessons...",
        args.out.display()
    ));
    let existing = curriculum_parser::existing_lessons(&args.out)
        .with_context(|| format!("cannot scan the output directory {}", args.out.display()))?;
    let selection = Selection {
        only: args
            .only
            .iter()
            .map(|code| select::parse_code(code))
            .collect::<anyhow::Result<_>>()?,
        modules: args
            .modules
            .iter()
            .map(|module| select::parse_module(module))
            .collect::<anyhow::Result<_>>()?,
        limit: args.limit,
        force: args.force,
    };
    let selected = select::select(&curriculum, &existing, &selection)?;
    report.already_generated = selected.already_generated;
    reporter.say(format!(
        "  {} already generated, {} to generate{}",
        selected.already_generated,
        selected.lessons.len(),
        if args.force && selected.already_generated > 0 {
            " (--force: existing lessons are regenerated)"
        } else {
            ""
        }
    ));

    // The ledger decides between attaching to earlier work and submitting new work.
    let mut ledger = load_ledger(&ledger_path)?;
    if args.new && ledger.as_ref().is_some_and(|l| !pending(l).is_empty()) && !args.dry_run {
        confirm_new(args, &ledger_path)?;
        archive_ledger(&ledger_path)?;
        reporter.say(format!(
            "  --new: archived the earlier ledger {}; its batches are no longer tracked",
            ledger_path.display()
        ));
        ledger = None;
    }
    let attach: Vec<ShardRecord> = ledger.as_ref().map(pending).unwrap_or_default();

    let overwrite = if args.force {
        Overwrite::Allow
    } else {
        Overwrite::Forbid
    };
    let mut new_shards: Vec<Shard> = Vec::new();
    if attach.is_empty() {
        if selected.lessons.is_empty() {
            reporter.say("Nothing to do: every requested lesson already has a file (use --force to regenerate).");
            return finish(args, &reporter, report, ExitStatus::Success);
        }
        reporter.say("Step 3: Building requests...");
        let round = if args.dry_run {
            "dry-run".to_owned()
        } else {
            format!("r{:02}", next_round(&args.work_dir, &job)?)
        };
        let lessons: Vec<(&Lesson, Option<u32>)> = selected
            .lessons
            .iter()
            .map(|lesson| (*lesson, None))
            .collect();
        new_shards = build_shards(
            &curriculum,
            &outline_text,
            &template,
            &settings,
            &lessons,
            &args.work_dir,
            &format!("{job}-{round}"),
        )?;
        let estimate = Estimate::total(new_shards.iter().map(|shard| &shard.estimate));
        print_estimate(&reporter, &new_shards, &estimate);
        report.estimate = Some(estimate.clone());
        report.cost_usd.estimated = estimate.expected_usd;
        report.shards = Some(
            new_shards
                .iter()
                .map(|shard| ShardReport {
                    path: shard.path.clone(),
                    requests: shard.requests,
                    bytes: shard.bytes,
                })
                .collect(),
        );
        check_budget(args, &estimate)?;
        if args.dry_run {
            reporter.say("Dry run: nothing was sent. Run again without --dry-run to submit.");
            return finish(args, &reporter, report, ExitStatus::Success);
        }
        confirm_spend(args, &estimate)?;
    } else {
        let ids: Vec<String> = attach
            .iter()
            .map(|shard| {
                shard.batch_id.as_ref().map_or_else(
                    || format!("{} (not yet created)", shard.name()),
                    ToString::to_string,
                )
            })
            .collect();
        reporter.say(format!(
            "Step 3: Found unfinished work from an earlier run: {}. Attaching to it instead of submitting again (--new starts over).",
            ids.join(", ")
        ));
        if args.dry_run {
            reporter.say("Dry run: nothing was sent.");
            return finish(args, &reporter, report, ExitStatus::Success);
        }
    }

    // From here on, requests go out.
    let emulator = if args.emulator {
        // The emulator keeps its files and batches in the work dir, so a run that is
        // interrupted (or --no-wait) resumes against the same batches next time.
        let mut config = batch_emulator::EmulatorConfig::fast();
        config.data_dir = Some(args.work_dir.join("emulator"));
        let emulator = batch_emulator::Emulator::start(config)
            .await
            .context("cannot start the built-in batch emulator")?;
        reporter.say(format!(
            "  Using the built-in batch emulator at {} (offline, no key needed)",
            emulator.base_url()
        ));
        Some(emulator)
    } else {
        None
    };
    let (api_key, source) = match (&emulator, key) {
        (Some(_), _) => (
            secrecy::SecretString::from("emulator".to_owned()),
            KeySource::Emulator,
        ),
        (None, Some(key)) => key,
        (None, None) => key::load_api_key(args.api.api_key_file.as_deref())?,
    };
    let base_url = match &emulator {
        Some(emulator) => emulator.base_url().to_owned(),
        None => key::base_url(args.api.base_url.as_deref()),
    };
    if !matches!(source, KeySource::Emulator) {
        reporter.say(format!("  Using the API key from {source} with {base_url}"));
    }
    let client = Client::new(key::client_config(base_url, api_key))?;
    let bars = Arc::new(reporter.job_progress());
    let runner =
        JobRunner::new(client, &ledger_path, job_config(args, &job))?.with_progress(bars.clone());

    let writing = Writing {
        curriculum: &curriculum,
        out: &args.out,
        file_name,
        overwrite,
        prices: settings.price_table(),
    };
    let mut failures: BTreeMap<String, FailedLesson> = BTreeMap::new();
    let mut batch_failed = false;
    let mut round_paths: Vec<PathBuf> = new_shards.iter().map(|shard| shard.path.clone()).collect();
    let mut retries_left = args.retry_failed;
    loop {
        reporter.say("Step 4: Uploading and creating batch(es)...");
        runner
            .submit(&round_paths)
            .await
            .context("cannot submit the batch")?;
        // After submit the ledger holds this round's shards (new or attached).
        let submitted = round_custom_ids(&runner)?;
        report.requested += submitted.values().map(BTreeSet::len).sum::<usize>();
        let running: Vec<String> = runner
            .unfinished()
            .iter()
            .filter_map(|shard| shard.batch_id.as_ref().map(ToString::to_string))
            .collect();
        if args.no_wait {
            reporter.say(format!(
                "Submitted: {}. Nothing was waited for.\nTo continue later, run the same command again (it attaches to the batch), or check it with:\n  check-batch-status {} --work-dir {}",
                running.join(", "),
                running.first().map(String::as_str).unwrap_or(""),
                args.work_dir.display()
            ));
            collect_batches(&runner, &mut report);
            return finish(args, &reporter, report, ExitStatus::Success);
        }

        reporter.say("Step 5: Waiting for the batch(es) to finish (Ctrl-C stops waiting; the batch keeps running)...");
        let waited = tokio::select! {
            res = runner.wait() => Some(res),
            _ = tokio::signal::ctrl_c() => None,
        };
        bars.finish();
        match waited {
            None => {
                let ids: Vec<String> = runner
                    .unfinished()
                    .iter()
                    .filter_map(|shard| shard.batch_id.as_ref().map(ToString::to_string))
                    .collect();
                eprintln!(
                    "\nInterrupted. The batch(es) keep running on the server: {}.\nResume (attaches, submits nothing new) with:\n  {}",
                    ids.join(", "),
                    resume_command()
                );
                collect_batches(&runner, &mut report);
                return finish(args, &reporter, report, ExitStatus::Interrupted);
            }
            Some(res) => res.context("cannot follow the batch")?,
        }

        reporter.say("Step 6: Downloading results...");
        runner
            .download(&args.work_dir)
            .await
            .context("cannot download the results")?;

        reporter.say(format!(
            "Step 7: Writing lessons to {}...",
            args.out.display()
        ));
        let round = process_ready(&runner, &writing, &submitted, &reporter)?;
        batch_failed |= round.batch_failed;
        for custom_id in submitted.values().flatten() {
            failures.remove(custom_id);
        }
        for failed in &round.failed {
            failures.insert(failed.custom_id.clone(), failed.clone());
        }
        add_summary(&mut report, &round.summary);

        let retryable: Vec<&FailedLesson> = round.failed.iter().filter(|f| f.retryable).collect();
        if retryable.is_empty() || retries_left == 0 {
            break;
        }
        retries_left -= 1;
        reporter.say(format!(
            "Retrying {} lesson(s) whose failure is retryable ({} round(s) left after this one)...",
            retryable.len(),
            retries_left
        ));
        let lessons: Vec<(&Lesson, Option<u32>)> = retryable
            .iter()
            .filter_map(|failed| {
                let code: LessonCode = failed.lesson_code.parse().ok()?;
                let lesson = curriculum.lesson(code)?;
                let tokens = (failed.code == "length")
                    .then(|| larger_budget(&settings.model, settings.max_completion_tokens))
                    .flatten();
                Some((lesson, tokens))
            })
            .collect();
        if lessons.is_empty() {
            break;
        }
        let name = format!("{job}-r{:02}", next_round(&args.work_dir, &job)?);
        let shards = build_shards(
            &curriculum,
            &outline_text,
            &template,
            &settings,
            &lessons,
            &args.work_dir,
            &name,
        )?;
        round_paths = shards.iter().map(|shard| shard.path.clone()).collect();
    }

    collect_batches(&runner, &mut report);
    report.failed = failures.into_values().collect();
    if !attach.is_empty() {
        // This run finished earlier work; lessons chosen now may still be waiting.
        let existing = curriculum_parser::existing_lessons(&args.out).unwrap_or_default();
        let failed: BTreeSet<&str> = report
            .failed
            .iter()
            .map(|f| f.lesson_code.as_str())
            .collect();
        let remaining = selected
            .lessons
            .iter()
            .filter(|lesson| !existing.contains(&lesson.code))
            .filter(|lesson| !failed.contains(lesson.code.to_string().as_str()))
            .count();
        if remaining > 0 {
            reporter.say(format!(
                "Finished the earlier run's batch(es); {remaining} more selected lesson(s) have no file yet: run the command again to submit them."
            ));
        }
    }
    if !report.failed.is_empty() {
        let path = args.work_dir.join(format!("{job}.failures.jsonl"));
        write_failures(&path, &report.failed)?;
        report.failures_file = Some(path);
    }
    let status = if batch_failed {
        ExitStatus::Failure
    } else if report.failed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Partial
    };
    drop(runner);
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    finish(args, &reporter, report, status)
}

fn read_outline(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).map_err(|err| {
        usage_error(
            format!("cannot read the outline {}: {err}", path.display()),
            Some("pass the outline with --content PATH (the default is src/data/data_gov/Content Structure.md)"),
        )
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        // Let the parser name the line and byte of the bad UTF-8.
        Err(_) => Err(curriculum_parser::parse_file(path)
            .err()
            .map(anyhow::Error::new)
            .unwrap_or_else(|| anyhow::anyhow!("{} is not valid UTF-8", path.display()))),
    }
}

fn load_settings(args: &Args, reporter: &Reporter) -> anyhow::Result<RequestSettings> {
    let path = match &args.config {
        Some(path) => Some(path.clone()),
        None => Path::new(DEFAULT_CONFIG)
            .exists()
            .then(|| PathBuf::from(DEFAULT_CONFIG)),
    };
    let mut settings = match &path {
        Some(path) => {
            reporter.detail(format!("  Settings from {}", path.display()));
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
    match path {
        Some(path) => {
            let template = Template::from_file(&path)?;
            reporter.say(format!(
                "  Prompt template: {}{}",
                path.display(),
                if template.is_legacy() {
                    " (legacy Python template, accepted as is)"
                } else {
                    ""
                }
            ));
            Ok(template)
        }
        None => {
            reporter.say(format!(
                "  Prompt template: the built-in prompts/{DEFAULT_PROMPT} ({DEFAULT_PROMPT} not found here)"
            ));
            Ok(Template::parse(
                batch_request::GENERIC_TEMPLATE,
                Path::new("prompts/LESSON_GENERATION_PROMPT_GENERIC.md"),
            )?)
        }
    }
}

fn confirm_new(args: &Args, ledger: &Path) -> anyhow::Result<()> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage_error(
            format!(
                "--new would stop tracking unfinished batches recorded in {}",
                ledger.display()
            ),
            Some("add --yes to confirm"),
        ));
    }
    ask("Stop tracking the unfinished batches of the earlier run and submit anew? [y/N] ")
}

fn confirm_spend(args: &Args, estimate: &Estimate) -> anyhow::Result<()> {
    let Some(max) = estimate.max_usd else {
        return Ok(());
    };
    if args.yes || max <= args.confirm_above || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    ask(&format!(
        "The upper-bound cost is {} (expected {}). Submit? [y/N] ",
        usd(Some(max)),
        usd(estimate.expected_usd)
    ))
}

fn ask(question: &str) -> anyhow::Result<()> {
    eprint!("{question}");
    std::io::stderr().flush()?;
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

fn print_estimate(reporter: &Reporter, shards: &[Shard], estimate: &Estimate) {
    for shard in shards {
        reporter.say(format!(
            "  {} ({} requests, {})",
            shard.path.display(),
            shard.requests,
            human_bytes(shard.bytes)
        ));
    }
    reporter.say(format!(
        "Estimate: {} requests, {} input tokens, {} output tokens expected ({} at most)",
        estimate.requests,
        estimate.input_tokens,
        estimate.expected_output_tokens,
        estimate.max_output_tokens
    ));
    reporter.say(format!(
        "  cost at batch prices: expected {}, upper bound {}; the same at standard prices: {}",
        usd(estimate.expected_usd),
        usd(estimate.max_usd),
        usd(estimate.standard_usd)
    ));
    for warning in &estimate.warnings {
        reporter.warn(warning);
    }
}

fn check_budget(args: &Args, estimate: &Estimate) -> anyhow::Result<()> {
    let Some(budget) = args.budget else {
        return Ok(());
    };
    match estimate.max_usd {
        Some(max) if max > budget => Err(usage_error(
            format!(
                "the upper-bound cost {} exceeds the budget {} by {}",
                usd(Some(max)),
                usd(Some(budget)),
                usd(Some(max - budget))
            ),
            Some(
                "raise --budget, lower --max-completion-tokens, or select fewer lessons with --limit, --only or --modules",
            ),
        )),
        Some(_) => Ok(()),
        None => Err(usage_error(
            "cannot check --budget: the model has no price",
            Some("add the model's prices under [prices.<model>] in lessons.toml"),
        )),
    }
}

fn job_config(args: &Args, job: &str) -> JobConfig {
    let mut config = JobConfig::default();
    config.metadata.insert("job".to_owned(), job.to_owned());
    config
        .metadata
        .insert("tool".to_owned(), "lesson-batch".to_owned());
    let (initial, max) = if args.emulator {
        (0.2, 1.0)
    } else {
        (5.0, 60.0)
    };
    let initial = args.poll_interval.unwrap_or(initial).max(0.01);
    let max = args.max_poll_interval.unwrap_or(max).max(initial);
    config.poll = PollConfig {
        initial_interval: Duration::from_secs_f64(initial),
        max_interval: Duration::from_secs_f64(max),
        ..PollConfig::default()
    };
    config
}

struct Round {
    summary: Summary,
    failed: Vec<FailedLesson>,
    batch_failed: bool,
}

/// How results become lesson files; the same for every round of a run.
struct Writing<'a> {
    curriculum: &'a Curriculum,
    out: &'a Path,
    file_name: FileNamePattern,
    overwrite: Overwrite,
    prices: PriceTable,
}

/// Writes the lessons of every downloaded shard not handed on yet, then marks them handed on.
/// `submitted` holds the custom ids of the round's shards, read once after submit.
fn process_ready(
    runner: &JobRunner,
    writing: &Writing<'_>,
    submitted: &BTreeMap<usize, BTreeSet<String>>,
    reporter: &Reporter,
) -> anyhow::Result<Round> {
    let ready = runner.ready();
    let mut expected = BTreeSet::new();
    let mut inputs = Vec::new();
    let mut batch_failed = false;
    for shard in &ready {
        if shard.status == Some(BatchStatus::Failed) {
            batch_failed = true;
            let id = shard
                .batch_id
                .as_ref()
                .map_or_else(String::new, ToString::to_string);
            eprintln!("error: batch {id} failed validation; nothing in it ran or was billed");
            for error in &shard.errors {
                eprintln!("  {}", batch_error_line(error));
            }
            if shard.token_limit_exceeded() {
                eprintln!(
                    "\nhint: the organization's enqueued-token limit was reached; run the command again once other batches have finished"
                );
            }
            continue;
        }
        // The round's ids were read once after submit; read a shard only if it was not.
        match submitted.get(&shard.index) {
            Some(ids) => expected.extend(ids.iter().cloned()),
            None => expected.extend(shard_custom_ids(&shard.input_path)?),
        }
        for path in [&shard.output_path, &shard.error_path]
            .into_iter()
            .flatten()
        {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read the results {}", path.display()))?;
            inputs.push(lesson_writer::Input::new(
                path.clone(),
                BufReader::new(file),
            ));
        }
    }
    let mut config = ProcessConfig::new(writing.out);
    config.file_name = writing.file_name.clone();
    config.overwrite = writing.overwrite;
    config.expected = Some(expected);
    config.curriculum = Some(writing.curriculum);
    config.prices = writing.prices.clone();
    let summary = lesson_writer::process_inputs(inputs, &config)
        .with_context(|| format!("cannot write the lessons to {}", writing.out.display()))?;
    for shard in &ready {
        runner.mark_handed_on(shard.index)?;
    }
    let failed = failed_lessons(&summary);
    reporter.say(format!(
        "  {} written, {} skipped (file exists), {} failed",
        summary.written,
        summary.skipped_existing.len(),
        failed.len()
    ));
    say_failures(reporter, &failed);
    Ok(Round {
        summary,
        failed,
        batch_failed,
    })
}

fn collect_batches(runner: &JobRunner, report: &mut RunReport) {
    report.batches = runner
        .shards()
        .iter()
        .filter_map(|shard| {
            Some(BatchReport {
                id: shard.batch_id.as_ref()?.to_string(),
                status: shard
                    .status
                    .map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
                request_counts: shard.counts.unwrap_or_default(),
                output_file_id: shard.output_file_id.as_ref().map(ToString::to_string),
                error_file_id: shard.error_file_id.as_ref().map(ToString::to_string),
            })
        })
        .collect();
}

/// The command line that resumes this run: the same arguments.
fn resume_command() -> String {
    std::env::args()
        .map(|arg| {
            if arg.contains([' ', '"', '\'']) {
                format!("'{}'", arg.replace('\'', "'\\''"))
            } else {
                arg
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn finish(
    args: &Args,
    reporter: &Reporter,
    report: RunReport,
    status: ExitStatus,
) -> anyhow::Result<ExitStatus> {
    if args.output.json {
        crate::print_json(&report)?;
    }
    if report.batches.is_empty() && report.requested == 0 {
        return Ok(status);
    }
    reporter.say(format!(
        "Summary: {} written, {} skipped (file exists), {} failed; {} requested in {} batch(es)",
        report.written,
        report.skipped_existing,
        report.failed.len(),
        report.requested,
        report.batches.len()
    ));
    reporter.say(format!(
        "  usage: {} input tokens ({} cached), {} output tokens; cost at batch prices: {}",
        report.usage.prompt_tokens,
        report.usage.cached_tokens,
        report.usage.completion_tokens,
        usd(report.cost_usd.actual)
    ));
    if let Some(path) = &report.failures_file {
        reporter.say(format!("  failures listed in {}", path.display()));
    }
    if !report.malformed.is_empty() {
        reporter.warn(format!(
            "{} malformed result line(s)",
            report.malformed.len()
        ));
    }
    Ok(status)
}
