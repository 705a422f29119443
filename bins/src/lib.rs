//! Shared glue of the command-line tools: exit codes, error reports with hints, JSON output.

#![allow(clippy::print_stdout, clippy::print_stderr)] // This crate is the terminal layer.

use std::io::Write;
use std::process::ExitCode;

pub mod args;
pub mod check;
pub mod generate;
pub mod key;
pub mod list;
pub mod outline;
pub mod process;
pub mod progress;
pub mod report;
pub mod select;
pub mod term;

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
///
/// Error messages embed titles, paths and server messages: the whole rendered text is shown
/// through [`term::ShownLines`], so their control characters are escaped.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let (status, hint) = classify(err);
    eprintln!("error: {:#}", term::ShownLines(err));
    if let Some(hint) = hint {
        eprintln!("\nhint: {}", term::ShownLines(hint));
    }
    status.into()
}

fn classify(err: &anyhow::Error) -> (ExitStatus, Option<String>) {
    for cause in err.chain() {
        if let Some(usage) = cause.downcast_ref::<UsageError>() {
            return (ExitStatus::Usage, usage.hint.clone());
        }
        // The job library wraps the other libraries' errors transparently: look inside.
        let job = cause.downcast_ref::<lesson_job::Error>();
        let parse = match job {
            Some(lesson_job::Error::Outline(parse)) => Some(parse),
            _ => cause.downcast_ref::<curriculum_parser::Error>(),
        };
        if let Some(parse) = parse {
            return (ExitStatus::Usage, Some(parse_hint(parse)));
        }
        let request = match job {
            Some(lesson_job::Error::Request(request)) => Some(request),
            _ => cause.downcast_ref::<batch_request::Error>(),
        };
        if let Some(request) = request {
            let hint = match request {
                batch_request::Error::OverContextWindow { .. } => {
                    "nothing was sent: shorten the long titles (a prompt also names the lessons around it) or the template, lower max_completion_tokens, or choose a model with a larger window; if the model's window is larger than the table says, set it under [context_window] in lessons.toml"
                }
                _ => "fix the template, settings or outline named above and run again",
            };
            return (ExitStatus::Usage, Some(hint.to_owned()));
        }
        let client = match job {
            Some(lesson_job::Error::Client(client)) => Some(client),
            _ => cause.downcast_ref::<openai_batch_client::Error>(),
        };
        if let Some(client) = client {
            return classify_client(client);
        }
        if let Some(job) = job {
            let status = match job.kind() {
                lesson_job::ErrorKind::Input => ExitStatus::Usage,
                _ => ExitStatus::Failure,
            };
            return (status, job_hint(job));
        }
    }
    (ExitStatus::Failure, None)
}

fn classify_client(client: &openai_batch_client::Error) -> (ExitStatus, Option<String>) {
    if let openai_batch_client::Error::ShardOverLimit { tokens, .. } = client {
        // Only a shard cut earlier for a larger limit can be over it: new shards are cut to fit.
        return (
            ExitStatus::Usage,
            Some(format!(
                "an earlier run built this shard ({tokens} input tokens) for a larger limit: run with a larger --max-enqueued-tokens to submit it as it is"
            )),
        );
    }
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
    (ExitStatus::Failure, hint)
}

fn job_hint(err: &lesson_job::Error) -> Option<String> {
    Some(match err {
        lesson_job::Error::Locked { .. } => {
            "wait for that run to finish, or run without --no-wait to wait for it".to_owned()
        }
        lesson_job::Error::OutDirOfAnotherOutline { .. } => {
            "use another --out for this outline, or --force to regenerate its lessons here"
                .to_owned()
        }
        lesson_job::Error::OverBudget { .. } | lesson_job::Error::InvalidBudget { .. } => {
            "raise --budget, lower --max-completion-tokens, or select fewer lessons with --limit, --only or --modules".to_owned()
        }
        lesson_job::Error::NoPrice { .. } => {
            "add the model's prices under [prices.<model>] in lessons.toml".to_owned()
        }
        lesson_job::Error::NoBatchRecorded { .. } => {
            "pass a batch id (check-batch-status --list shows recent ones), or --work-dir".to_owned()
        }
        lesson_job::Error::UnknownLesson { .. } | lesson_job::Error::UnknownModule { .. } => {
            "list the lessons and modules with --list-lessons".to_owned()
        }
        _ => return None,
    })
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
