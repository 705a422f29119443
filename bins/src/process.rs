//! `process-batch-results`: a results file (and its error file) to lesson files.

use std::path::{Path, PathBuf};

use batch_request::RequestSettings;
use clap::Parser;
use lesson_job::{Fingerprint, JobReport, LockWait, ResultsFile, ResultsSpec, SentLesson};
use lesson_writer::FileNamePattern;

use crate::args::OutputArgs;
use crate::progress::Reporter;
use crate::report::{Billing, say_outcomes, waiting_line};
use crate::term::Shown;
use crate::{ExitStatus, usage_error};

/// Write lesson files from a Batch API results file (and its error file).
///
/// Each answer is checked (finished, not truncated, not refused), cleaned and written
/// atomically as `<out>/<code>.md`; existing lessons are kept unless --force. Failures are
/// listed with a reason and written to `<results>.failures.jsonl` for retrying.
#[derive(Debug, Parser)]
#[command(
    name = "process-batch-results",
    version,
    after_help = EXAMPLES,
    after_long_help = format!("{EXAMPLES}\n\n{}", crate::EXIT_CODES_HELP)
)]
pub struct Args {
    /// The batch output file (JSONL).
    pub results: PathBuf,
    /// The old scripts' lessons map (JSON); accepted for compatibility and ignored: titles come
    /// from --content.
    pub lessons_map: Option<PathBuf>,
    /// The batch error file (JSONL).
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub errors: Option<PathBuf>,
    /// Overwrite lessons that already exist (edited ones too).
    #[arg(long, help_heading = "Writing lessons")]
    pub force: bool,
    /// When another run is writing into the output directory, exit instead of waiting.
    #[arg(long, help_heading = "Writing lessons")]
    pub no_wait: bool,
    #[command(flatten, next_help_heading = "Writing lessons")]
    pub write: WriteArgs,
    #[command(flatten, next_help_heading = "Output")]
    pub output: OutputArgs,
}

impl Args {
    /// Parses the command line, then takes `--out` and `--content`, when not given, from the
    /// settings file's `[paths]` (--config, else ./lessons.toml), as generate does.
    ///
    /// # Errors
    ///
    /// The settings file cannot be read or parsed (clap's own errors exit as clap does).
    pub fn parse_with_settings() -> anyhow::Result<Args> {
        let mut args = {
            use clap::{CommandFactory, FromArgMatches};
            Args::from_arg_matches(&crate::matches(Args::command()))
                .unwrap_or_else(|err| crate::exit_on_clap_error(&err))
        };
        if let Some(file) = crate::args::settings_file(args.write.config.as_deref()) {
            let paths = RequestSettings::from_toml_file(&file)?.paths;
            if args.write.out.is_none() {
                args.write.out = paths.out;
            }
            if args.write.content.is_none() {
                args.write.content = paths.content;
            }
        }
        Ok(args)
    }
}

/// The examples, shown by `-h` and `--help`.
const EXAMPLES: &str = "\
Examples:
  process-batch-results batch_abc_output.jsonl --errors batch_abc_errors.jsonl
  process-batch-results out.jsonl --content outline.md --out lessons   titles and missing lessons
  process-batch-results out.jsonl --accept-truncated --force           rewrite, keeping cut-off answers";

/// How results become lesson files; shared by `process-batch-results` and
/// `check-batch-status --process`.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Where lesson files are written.
    ///
    /// [default: for check-batch-status, the output directory of the job that submitted the
    /// batch; for process-batch-results, `[paths] out` of the settings file; else the old
    /// scripts' src/data/data_gov/lessons]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The curriculum outline: gives titles and the expected lessons.
    ///
    /// Titles go into headings and slugged names; lessons missing from both files are reported.
    /// process-batch-results reads `[paths] content` of the settings file when not given.
    #[arg(long, value_name = "PATH")]
    pub content: Option<PathBuf>,
    /// Write answers cut off at max_completion_tokens as lessons.
    ///
    /// They are rejected otherwise.
    #[arg(long)]
    pub accept_truncated: bool,
    /// Treat the outline's warnings as errors (exit 2).
    ///
    /// The warnings: lines that look like module or lesson headings but do not parse, gaps in
    /// lesson numbers.
    #[arg(long)]
    pub strict: bool,
    /// Write answers below the quality bar as lessons.
    ///
    /// The bar: `[quality]` of the settings (too few words, or required sections missing).
    /// Such answers are kept in `<out>/rejected/` otherwise.
    #[arg(long)]
    pub accept_below_spec: bool,
    /// Settings (TOML) [default: lessons.toml when it exists].
    ///
    /// Its `[quality]` sets the bar, its `[prices]` price the results.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Lesson file names: `{code}.md` or `{code}-{slug}.md`.
    #[arg(long, value_name = "PATTERN", default_value = FileNamePattern::CODE)]
    pub file_name: String,
}

/// How [`write_lessons`] writes: over existing lessons or not, waiting for the lock or not,
/// and whether the results were billed (not by the built-in emulator).
#[derive(Debug, Clone, Copy)]
pub struct WriteMode {
    /// Overwrite lessons that already exist (edited ones too).
    pub force: bool,
    /// When another run holds the output directory's lock, fail instead of waiting.
    pub no_wait: bool,
    /// Billed, or run by the emulator.
    pub billing: Billing,
}

/// The output directory when `--out` is not given.
pub const DEFAULT_OUT: &str = "src/data/data_gov/lessons";

/// Runs the command.
///
/// # Errors
///
/// Any failure, for [`crate::report()`].
pub fn run(args: &Args) -> anyhow::Result<ExitStatus> {
    let reporter = Reporter::new(args.output.verbosity());
    if let Some(map) = &args.lessons_map {
        reporter.say(format!(
            "note: the lessons map {} is ignored; titles and the expected lessons come from --content",
            Shown(map.display())
        ));
    }
    for path in std::iter::once(&args.results).chain(&args.errors) {
        check_results_file(path)?;
    }
    reporter.say(format!(
        "Processing {}{}...",
        Shown(args.results.display()),
        args.errors
            .as_ref()
            .map(|e| format!(" and {}", Shown(e.display())))
            .unwrap_or_default()
    ));
    let files: Vec<ResultsFile> = std::iter::once(&args.results)
        .chain(&args.errors)
        .map(|path| ResultsFile {
            path: path.clone(),
            batch_id: None,
        })
        .collect();
    let report = write_lessons(
        &args.write,
        None,
        WriteMode {
            force: args.force,
            no_wait: args.no_wait,
            billing: Billing::Billed,
        },
        &files,
        None,
        &reporter,
    )?;
    if args.output.json {
        crate::print_json(&report)?;
    }
    Ok(if report.is_complete() && report.malformed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Partial
    })
}

/// Writes the lessons of results files under the output directory's lock, says what became
/// of each lesson, and writes the failures list `<first file>.failures.jsonl` when lessons
/// failed or are missing.
///
/// `sent` (the lessons a recorded batch asked for) makes only those lessons count; `job`, what
/// the recorded job was made from, gives the output directory used when `--out` is not given
/// and the template whose sections the quality gate asks for; `mode.billing` says whether the
/// cost was billed (not by the built-in emulator).
///
/// # Errors
///
/// A usage error for a bad `--file-name`; the settings' errors; the job library's errors.
pub fn write_lessons(
    args: &WriteArgs,
    job: Option<&Fingerprint>,
    mode: WriteMode,
    files: &[ResultsFile],
    sent: Option<&std::collections::BTreeMap<curriculum_parser::LessonCode, SentLesson>>,
    reporter: &Reporter,
) -> anyhow::Result<JobReport> {
    let WriteMode {
        force,
        no_wait,
        billing,
    } = mode;
    let file_name = FileNamePattern::new(&args.file_name)
        .map_err(|err| usage_error(format!("--file-name: {err}"), None))?;
    let settings = match crate::args::settings_file(args.config.as_deref()) {
        Some(path) => {
            reporter.detail(format!("  Settings from {}", Shown(path.display())));
            RequestSettings::from_toml_file(&path)?
        }
        None => RequestSettings::default(),
    };
    let out_dir = args
        .out
        .clone()
        .or_else(|| job.map(|job| job.out_dir.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    crate::args::check_dir_flag("--out", &out_dir)?;
    if let Some(outline) = &args.content {
        // The job library parses it again under the lock; this shows its warnings first.
        let curriculum = curriculum_parser::parse_file(outline)?;
        crate::outline::show_warnings(reporter, outline, &curriculum.warnings, args.strict)?;
    }
    let spec = ResultsSpec {
        out_dir: out_dir.clone(),
        file_name,
        outline: args.content.clone(),
        force,
        accept_truncated: args.accept_truncated,
        prices: settings.price_table(),
        quality: settings.quality,
        template_sha256: job.map(|job| job.template_sha256.clone()),
        accept_below_spec: args.accept_below_spec,
    };
    let wait = if no_wait {
        LockWait::NoWait
    } else {
        LockWait::Wait
    };
    let mut report = lesson_job::process_results(
        &spec,
        files,
        sent,
        "process-batch-results",
        wait,
        |holder| reporter.say(waiting_line(holder)),
    )?;
    if let Some(first) = files.first() {
        // Noted in the report when it fails (said below, and in --json): the lessons are
        // written, and the summary must not be lost.
        let _ = report.write_failures(&failures_path(&first.path));
    }
    reporter.say(format!("Lessons in {}:", Shown(out_dir.display())));
    say_outcomes(reporter, &report, billing);
    if report.failures().any(|failure| failure.retryable) {
        // Processing again reads the same answers: only a new request helps.
        reporter.say(
            "Next: generate-datagov-lessons-batch (with the same --content and --out) resubmits the retryable lessons without a file.",
        );
    }
    Ok(report)
}

/// Refuses what is not a results file before anything is read as one: a missing path, a
/// directory, or a batch input file (request lines), which would otherwise give a malformed
/// line per request.
fn check_results_file(path: &Path) -> anyhow::Result<()> {
    const FETCH: &str = "pass the batch's downloaded output file (check-batch-status BATCH_ID --download fetches it)";
    if path.is_dir() {
        return Err(usage_error(
            format!(
                "{} is a directory, not a results file",
                Shown(path.display())
            ),
            Some(FETCH),
        ));
    }
    if !path.is_file() {
        return Err(usage_error(
            format!("no such results file: {}", Shown(path.display())),
            Some(FETCH),
        ));
    }
    if first_line_is_request(path) {
        return Err(usage_error(
            format!(
                "{} is a batch input file (its lines are requests), not a results file",
                Shown(path.display())
            ),
            Some(FETCH),
        ));
    }
    Ok(())
}

/// Whether the first non-blank line of `path` (read up to 4 MiB) is a Batch API request line.
fn first_line_is_request(path: &Path) -> bool {
    use std::io::{BufRead, Read};
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut reader = std::io::BufReader::new(file.take(4 << 20));
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.trim().is_empty() => continue,
            Ok(_) => {
                let line = line.trim_start_matches('\u{feff}');
                return serde_json::from_str::<batch_request::RequestLine>(line).is_ok();
            }
        }
    }
}

/// `<results>.failures.jsonl` beside the results file.
fn failures_path(results: &Path) -> PathBuf {
    let mut name = results.file_name().unwrap_or_default().to_os_string();
    name.push(".failures.jsonl");
    results.with_file_name(name)
}
