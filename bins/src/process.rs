//! `process-batch-results`: a results file (and its error file) to lesson files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use lesson_writer::{FileNamePattern, Overwrite, ProcessConfig, Summary};

use crate::args::OutputArgs;
use crate::progress::{Reporter, usd};
use crate::report::{RunReport, add_summary, failed_lessons, say_failures, write_failures};
use crate::{ExitStatus, usage_error};

/// Write lesson files from a Batch API results file (and its error file).
///
/// Each answer is checked (finished, not truncated, not refused), cleaned and written
/// atomically as `<out>/<code>.md`; existing lessons are kept unless --force. Failures are
/// listed with a reason and written to `<results>.failures.jsonl` for retrying.
#[derive(Debug, Parser)]
#[command(name = "process-batch-results", version, after_help = crate::EXIT_CODES_HELP)]
pub struct Args {
    /// The batch output file (JSONL).
    pub results: PathBuf,
    /// The old scripts' lessons map (JSON); accepted for compatibility and ignored: titles come
    /// from --content.
    pub lessons_map: Option<PathBuf>,
    /// The batch error file (JSONL).
    #[arg(long, value_name = "FILE")]
    pub errors: Option<PathBuf>,
    /// Overwrite lessons that already exist.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How results become lesson files; shared by `process-batch-results` and
/// `check-batch-status --process`.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Where lesson files are written.
    #[arg(long, value_name = "DIR", default_value = "src/data/data_gov/lessons")]
    pub out: PathBuf,
    /// The curriculum outline: gives titles (headings, slugged names) and the expected lessons,
    /// so lessons missing from both files are reported.
    #[arg(long, value_name = "PATH")]
    pub content: Option<PathBuf>,
    /// Write answers cut off at max_completion_tokens as lessons (they are rejected otherwise).
    #[arg(long)]
    pub accept_truncated: bool,
    /// Lesson file names: `{code}.md` or `{code}-{slug}.md`.
    #[arg(long, value_name = "PATTERN", default_value = FileNamePattern::CODE)]
    pub file_name: String,
}

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
            map.display()
        ));
    }
    for path in std::iter::once(&args.results).chain(&args.errors) {
        if !path.is_file() {
            return Err(usage_error(
                format!("no such results file: {}", path.display()),
                Some(
                    "pass the downloaded batch output file (check-batch-status --download fetches it)",
                ),
            ));
        }
    }
    reporter.say(format!(
        "Processing {}{}...",
        args.results.display(),
        args.errors
            .as_ref()
            .map(|e| format!(" and {}", e.display()))
            .unwrap_or_default()
    ));
    let (report, summary) = write_lessons(
        &args.write,
        args.force,
        Some(&args.results),
        args.errors.as_deref(),
        None,
        &reporter,
    )?;
    if args.output.json {
        crate::print_json(&report)?;
    }
    for duplicate in &summary.duplicates {
        reporter.warn(format!(
            "{} appears again at {}:{} (kept the first)",
            duplicate.custom_id,
            duplicate.location.file.display(),
            duplicate.location.line
        ));
    }
    Ok(if report.failed.is_empty() && report.malformed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Partial
    })
}

/// Writes the lessons of an output and an error file, reports them, and writes the failures
/// file `<results>.failures.jsonl` beside the first of the two files when lessons failed.
///
/// Lessons missing from both files are those of `submitted` (the custom ids sent, when known),
/// else, with `--content`, the outline's lessons that have no file yet.
///
/// # Errors
///
/// A usage error for a bad `--file-name` or outline; I/O errors of the lesson writer.
pub fn write_lessons(
    args: &WriteArgs,
    force: bool,
    output: Option<&Path>,
    errors: Option<&Path>,
    submitted: Option<BTreeSet<String>>,
    reporter: &Reporter,
) -> anyhow::Result<(RunReport, Summary)> {
    let file_name = FileNamePattern::new(&args.file_name)
        .map_err(|err| usage_error(format!("--file-name: {err}"), None))?;
    let curriculum = match &args.content {
        Some(path) => Some(
            curriculum_parser::parse_file(path)
                .with_context(|| format!("cannot parse the outline {}", path.display()))?,
        ),
        None => None,
    };
    let mut report = RunReport::default();
    let mut config = ProcessConfig::new(&args.out);
    config.file_name = file_name;
    config.overwrite = if force {
        Overwrite::Allow
    } else {
        Overwrite::Forbid
    };
    config.accept_truncated = args.accept_truncated;
    if let Some(curriculum) = &curriculum {
        // Expected: every lesson of the outline that has no file yet.
        let existing = curriculum_parser::existing_lessons(&args.out)
            .with_context(|| format!("cannot scan {}", args.out.display()))?;
        report.lessons_total = curriculum.lesson_count();
        report.already_generated = existing.len();
        let expected: BTreeSet<String> = curriculum
            .lessons()
            .filter(|lesson| !existing.contains(&lesson.code))
            .map(|lesson| lesson.code.custom_id())
            .collect();
        config.expected = Some(expected);
        config.curriculum = Some(curriculum);
    }
    if submitted.is_some() {
        config.expected = submitted;
    }
    let summary = lesson_writer::process(output, errors, &config)
        .with_context(|| format!("cannot write the lessons to {}", args.out.display()))?;
    report.requested = summary.lines_read as usize;
    add_summary(&mut report, &summary);
    report.failed = failed_lessons(&summary);
    if !report.failed.is_empty() {
        let base = output.or(errors).expect("called with at least one file");
        let path = failures_path(base);
        write_failures(&path, &report.failed)?;
        report.failures_file = Some(path);
    }
    reporter.say(format!(
        "{} written to {}, {} skipped (file exists{}), {} failed",
        report.written,
        args.out.display(),
        report.skipped_existing,
        if force { "" } else { "; --force overwrites" },
        report.failed.len()
    ));
    say_failures(reporter, &report.failed);
    for malformed in &report.malformed {
        reporter.warn(format!("malformed line {malformed}"));
    }
    reporter.say(format!(
        "Usage: {} input tokens ({} cached), {} output tokens; cost at batch prices: {}",
        report.usage.prompt_tokens,
        report.usage.cached_tokens,
        report.usage.completion_tokens,
        usd(report.cost_usd.actual)
    ));
    if let Some(path) = &report.failures_file {
        reporter.say(format!("Failures listed in {}", path.display()));
    }
    Ok((report, summary))
}

/// `<results>.failures.jsonl` beside the results file.
fn failures_path(results: &Path) -> PathBuf {
    let mut name = results.file_name().unwrap_or_default().to_os_string();
    name.push(".failures.jsonl");
    results.with_file_name(name)
}
