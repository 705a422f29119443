//! Shared glue of the command-line tools: exit codes, error reports with hints, JSON output.

#![allow(clippy::print_stdout, clippy::print_stderr)] // This crate is the terminal layer.

use std::io::Write;
use std::process::ExitCode;

pub mod args;
pub mod check;
pub mod generate;
pub mod key;
pub mod list;
pub mod process;
pub mod progress;
pub mod report;
pub mod rounds;
pub mod select;

/// Every exit code the commands use (documented in each command's `--help` and in README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: all requested lessons written (or nothing to do).
    Success,
    /// 1: runtime failure (network, API, I/O, batch failed).
    Failure,
    /// 2: usage, configuration or input error (bad flags, outline parse error, over budget).
    Usage,
    /// 3: finished, but some lessons failed (they are listed and in the failures file).
    Partial,
    /// 130: interrupted with Ctrl-C while waiting; the batch keeps running.
    Interrupted,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Partial => 3,
            ExitStatus::Interrupted => 130,
        })
    }
}

/// The exit-code table, for `--help` texts.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    all requested lessons written (or nothing left to do)
  1    runtime failure (network, API, I/O, the batch failed)
  2    usage, configuration or input error (flags, outline, template, budget, missing key)
  3    finished, but some lessons failed (listed, and written to the failures file)
  130  interrupted with Ctrl-C while waiting (the batch keeps running; rerun to attach)";

/// An error caused by the user's input: flags, configuration or files. Exit code 2.
#[derive(Debug)]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

/// Builds a [`UsageError`] wrapped in `anyhow`.
pub fn usage_error(message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    anyhow::Error::new(UsageError {
        message: message.into(),
        hint: hint.map(str::to_owned),
    })
}

/// Prints `error: ...` (with the cause chain), then a `hint:` line when one applies, to
/// stderr, and returns the exit code the error calls for.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let (status, hint) = classify(err);
    eprintln!("error: {err:#}");
    if let Some(hint) = hint {
        eprintln!("\nhint: {hint}");
    }
    status.into()
}

fn classify(err: &anyhow::Error) -> (ExitStatus, Option<String>) {
    for cause in err.chain() {
        if let Some(usage) = cause.downcast_ref::<UsageError>() {
            return (ExitStatus::Usage, usage.hint.clone());
        }
        if let Some(parse) = cause.downcast_ref::<curriculum_parser::Error>() {
            return (ExitStatus::Usage, Some(parse_hint(parse)));
        }
        if cause.downcast_ref::<batch_request::Error>().is_some() {
            return (
                ExitStatus::Usage,
                Some("fix the template, settings or outline named above and run again".to_owned()),
            );
        }
        if let Some(client) = cause.downcast_ref::<openai_batch_client::Error>() {
            let not_found = client.api_kind() == Some(openai_batch_client::ApiErrorKind::NotFound);
            let hint = client.hint().map(|hint| match hint {
                "check OPENAI_API_KEY" => {
                    "check OPENAI_API_KEY (or the file given with --api-key-file)".to_owned()
                }
                other => other.to_owned(),
            });
            let hint = hint.or_else(|| {
                not_found.then(|| {
                    "the server no longer knows this batch or file (very old batches vanish); \
                     generate-datagov-lessons-batch --new starts over without it"
                        .to_owned()
                })
            });
            return (ExitStatus::Failure, hint);
        }
    }
    (ExitStatus::Failure, None)
}

fn parse_hint(err: &curriculum_parser::Error) -> String {
    match err {
        curriculum_parser::Error::Read { .. } => {
            "check the path, or pass the outline with --content PATH".to_owned()
        }
        _ => "fix the outline at that line and run the command again".to_owned(),
    }
}

/// Writes one JSON document to stdout, followed by a newline.
///
/// # Errors
///
/// Fails when stdout is closed or the value cannot be serialised.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}
