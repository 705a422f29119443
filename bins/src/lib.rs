//! Shared glue of the command-line tools: exit codes, error reports with hints, JSON output.

// No `println!`/`eprintln!` (they panic on a closed pipe): write through `output`.

use std::process::ExitCode;

pub mod args;
pub mod batch_line;
pub mod check;
pub mod check_emulator;
pub mod format;
pub mod generate;
pub mod interrupt;
pub mod key;
pub mod list;
pub mod outline;
pub mod output;
pub mod preview;
pub mod process;
pub mod progress;
pub mod report;
pub mod select;
pub mod table;
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
    /// 130: interrupted with Ctrl-C, in any step; a batch already created keeps running.
    Interrupted,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(exit_code(status))
    }
}

/// The exit-code table, for `--help` texts.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    all requested lessons written (or nothing left to do)
  1    runtime failure (network, API, local files, the batch failed)
  2    usage, configuration or input error (flags, outline, template, budget), or a key
       problem (missing, malformed, or refused by the server)
  3    finished, but some lessons failed (listed, and written to the failures file)
  130  interrupted with Ctrl-C, in any step (a batch already created keeps running; rerun to attach)
  141  the output went away (| head): stopped quietly (a batch already created keeps running)";

/// Which command is reporting an error: its hints name only its own flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `generate-datagov-lessons-batch`.
    Generate,
    /// `check-batch-status`.
    Check,
    /// `process-batch-results`.
    Process,
    /// `batch-emulator`.
    Emulator,
}

/// What kind of failure ended a command: it decides the exit code, and `--json` names it.
///
/// Decided from the typed errors of the libraries (what went wrong), never from which crate
/// an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Flags, configuration or input files are wrong: exit 2.
    Input,
    /// The API key is missing, unreadable, malformed or refused by the server: exit 2.
    Key,
    /// A local file or directory could not be read or written (full disk, permissions): exit 1.
    Io,
    /// Another run is working on the job: exit 1.
    Locked,
    /// The network, the API, or the batch failed: exit 1.
    Runtime,
}

impl ErrorKind {
    /// The exit status of a failure of this kind (README, "Exit codes").
    pub fn exit_status(self) -> ExitStatus {
        match self {
            ErrorKind::Input | ErrorKind::Key => ExitStatus::Usage,
            ErrorKind::Io | ErrorKind::Locked | ErrorKind::Runtime => ExitStatus::Failure,
        }
    }
}

/// An error caused by the user's input: flags, configuration, files or the API key. Exit code 2.
#[derive(Debug)]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// [`ErrorKind::Input`], or [`ErrorKind::Key`] for the API key.
    pub kind: ErrorKind,
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
        kind: ErrorKind::Input,
    })
}

/// An error's kind and the hint for it, as [`report_as`] shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// What to do about it, naming only the command's own flags.
    pub hint: Option<String>,
}

/// [`report_as`] for a command without `--json` (the emulator).
pub fn report(err: &anyhow::Error) -> ExitCode {
    report_as(err, Command::Emulator, false)
}

/// Prints `error: ...` (with the cause chain), then a `hint:` line when one applies, to
/// stderr, and returns the exit code the error's kind calls for; with `json`, also prints
/// `{"error": {"message", "kind", "hint"}, "exit_code"}` on stdout, the one JSON document.
///
/// Error messages embed titles, paths and server messages: the whole rendered text is shown
/// through [`term::ShownLines`], so their control characters are escaped.
pub fn report_as(err: &anyhow::Error, command: Command, json: bool) -> ExitCode {
    let diagnosis = diagnose(err, command);
    let status = diagnosis.kind.exit_status();
    output::errln!("{} {:#}", term::error_prefix(), term::ShownLines(err));
    if let Some(hint) = &diagnosis.hint {
        output::errln!("\nhint: {}", term::ShownLines(hint));
    }
    if json {
        let document = serde_json::json!({
            "error": {
                "message": format!("{err:#}"),
                "kind": diagnosis.kind,
                "hint": diagnosis.hint,
            },
            "exit_code": exit_code(status),
        });
        if print_json(&document).is_err() {
            output::errln!(
                "{} cannot write the JSON document to stdout",
                term::error_prefix()
            );
        }
    }
    status.into()
}

/// Whether the command line asks for `--json`: read before the flags are parsed, so that a
/// flag clap refuses, or a settings file that cannot be read, still ends in the JSON document.
pub fn json_requested() -> bool {
    std::env::args_os().any(|arg| arg == "--json")
}

/// The command line parsed by `command`. Clap's own refusals (an unknown flag, a bad value)
/// end the process as clap ends it, after the `--json` failure document when `--json` was
/// given; `--help` and `--version` print as usual.
pub fn matches(command: clap::Command) -> clap::ArgMatches {
    command
        .try_get_matches()
        .unwrap_or_else(|err| exit_on_clap_error(&err))
}

/// Ends the process for a clap error, as [`matches()`] says.
pub fn exit_on_clap_error(err: &clap::Error) -> ! {
    if err.use_stderr() && json_requested() {
        let text = err.to_string();
        let message = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_owned();
        let document = serde_json::json!({
            "error": {"message": message, "kind": ErrorKind::Input, "hint": null},
            "exit_code": err.exit_code(),
        });
        let _ = print_json(&document);
    }
    err.exit()
}

/// The number an [`ExitStatus`] ends the process with.
pub fn exit_code(status: ExitStatus) -> u8 {
    match status {
        ExitStatus::Success => 0,
        ExitStatus::Failure => 1,
        ExitStatus::Usage => 2,
        ExitStatus::Partial => 3,
        ExitStatus::Interrupted => 130,
    }
}

/// The kind of `err` and the hint for it, from the first typed error of its chain.
pub fn diagnose(err: &anyhow::Error, command: Command) -> Diagnosis {
    for cause in err.chain() {
        if let Some(usage) = cause.downcast_ref::<UsageError>() {
            return Diagnosis {
                kind: usage.kind,
                hint: usage.hint.clone(),
            };
        }
        if let Some(job) = cause.downcast_ref::<lesson_job::Error>() {
            // The job library wraps the other libraries' errors transparently: look inside.
            return match job {
                lesson_job::Error::Outline(parse) => parse_diagnosis(parse, command),
                lesson_job::Error::Request(request) => request_diagnosis(request),
                lesson_job::Error::Client(client) => client_diagnosis(client, command),
                lesson_job::Error::Anthropic(client) => anthropic_diagnosis(client, command),
                lesson_job::Error::Writer(writer) => writer_diagnosis(writer, command),
                other => job_diagnosis(other, command),
            };
        }
        if let Some(parse) = cause.downcast_ref::<curriculum_parser::Error>() {
            return parse_diagnosis(parse, command);
        }
        if let Some(request) = cause.downcast_ref::<batch_request::Error>() {
            return request_diagnosis(request);
        }
        if let Some(client) = cause.downcast_ref::<openai_batch_client::Error>() {
            return client_diagnosis(client, command);
        }
        if let Some(client) = cause.downcast_ref::<anthropic_batch_client::Error>() {
            return anthropic_diagnosis(client, command);
        }
        if let Some(writer) = cause.downcast_ref::<lesson_writer::Error>() {
            return writer_diagnosis(writer, command);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return file_in_the_way(io, command)
                .unwrap_or_else(|| io_diagnosis(io.kind() == std::io::ErrorKind::NotFound));
        }
    }
    Diagnosis {
        kind: ErrorKind::Runtime,
        hint: None,
    }
}

/// The hint of a local write failure.
const WRITE_HINT: &str = "check that the disk has room and the path named above can be written, then run the command again (what is done is kept: a rerun goes on from there)";

/// The hint of a local read failure.
const READ_HINT: &str = "check that the path named above is a file this user can read";

/// A local read (`read` true) or write failure.
fn io_diagnosis(read: bool) -> Diagnosis {
    Diagnosis {
        kind: ErrorKind::Io,
        hint: Some(if read { READ_HINT } else { WRITE_HINT }.to_owned()),
    }
}

/// A file standing where a directory is needed (`--out` naming a file): an input error.
fn file_in_the_way(source: &std::io::Error, command: Command) -> Option<Diagnosis> {
    matches!(
        source.kind(),
        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory
    )
    .then(|| {
        input(match command {
            Command::Process => {
                "the path named above is a file where a directory is needed: give --out a directory"
            }
            Command::Emulator => {
                "the path named above is a file where a directory is needed: give --data-dir a directory"
            }
            _ => "the path named above is a file where a directory is needed: give --out (or --work-dir) a directory",
        })
    })
}

/// Whether a library's I/O `action` reads.
fn reads(action: &str) -> bool {
    matches!(action, "read" | "open" | "hash" | "list")
}

fn input(hint: impl Into<String>) -> Diagnosis {
    Diagnosis {
        kind: ErrorKind::Input,
        hint: Some(hint.into()),
    }
}

fn request_diagnosis(err: &batch_request::Error) -> Diagnosis {
    match err {
        batch_request::Error::OverContextWindow { .. } => input(
            "nothing was sent: shorten the long titles (a prompt also names the lessons around it) or the template, lower max_completion_tokens, or choose a model with a larger window; if the model's window is larger than the table says, set it under [context_window] in lessons.toml",
        ),
        batch_request::Error::WriteShard { .. } | batch_request::Error::WriteLine { .. } => {
            io_diagnosis(false)
        }
        batch_request::Error::ReadLine { .. } => io_diagnosis(true),
        batch_request::Error::ReadTemplate { .. } | batch_request::Error::ReadSettings { .. } => {
            input("check the path named above")
        }
        _ => input("fix the template, settings or outline named above and run again"),
    }
}

fn client_diagnosis(client: &openai_batch_client::Error, command: Command) -> Diagnosis {
    use openai_batch_client::{ApiErrorKind, Error};
    let work_dir_flag = matches!(command, Command::Generate | Command::Check);
    match client {
        Error::ShardOverLimit { tokens, .. } => {
            // Only a shard cut earlier for a larger limit can be over it: new shards are cut to fit.
            return input(format!(
                "an earlier run built this shard ({tokens} input tokens) for a larger limit: run with a larger --max-enqueued-tokens to submit it as it is"
            ));
        }
        Error::InvalidHeader { header } if *header == "Authorization" => {
            return Diagnosis {
                kind: ErrorKind::Key,
                hint: Some("the key must be one line of letters, digits, `-` and `_`".to_owned()),
            };
        }
        Error::InvalidBaseUrl { .. } => {
            return input(
                "pass a URL such as https://api.openai.com/v1 with --base-url or OPENAI_BASE_URL",
            );
        }
        Error::LedgerParse { .. } => {
            return input(if work_dir_flag {
                "the job's ledger is damaged: move it aside and run again (batches it recorded are found again on the server), or use another --work-dir"
            } else {
                "the job's ledger is damaged: move it aside and run again (batches it recorded are found again on the server)"
            });
        }
        Error::LedgerVersion {
            found, supported, ..
        } => {
            return input(if found > supported {
                "a newer version of this tool wrote the ledger: update the tool, or use another work dir"
            } else {
                "an older version of this tool wrote the ledger: finish its jobs with that version, or use another work dir"
            });
        }
        Error::Io { action, .. } => return io_diagnosis(reads(action)),
        Error::Timeout { .. } | Error::Connection { .. } if command != Command::Process => {
            return Diagnosis {
                kind: ErrorKind::Runtime,
                hint: Some(
                    "check the network, and the server's address (--base-url or OPENAI_BASE_URL)"
                        .to_owned(),
                ),
            };
        }
        _ => {}
    }
    let kind = match client.api_kind() {
        Some(ApiErrorKind::Authentication | ApiErrorKind::PermissionDenied) => ErrorKind::Key,
        _ => ErrorKind::Runtime,
    };
    let hint = client.hint().map(|hint| match hint {
        "check OPENAI_API_KEY" => {
            "check OPENAI_API_KEY (or the file given with --api-key-file)".to_owned()
        }
        other => other.to_owned(),
    });
    let hint = hint.or_else(|| {
        (client.api_kind() == Some(ApiErrorKind::NotFound)).then(|| match command {
            // A batch id typed by hand: never suggest a paying action for a typo.
            Command::Check => "check the batch id: check-batch-status --list shows recent batches (and --work-dir the ones a job recorded)".to_owned(),
            _ => "the server no longer knows this batch or file (very old batches vanish); \
                  generate-datagov-lessons-batch --new starts over without it"
                .to_owned(),
        })
    });
    Diagnosis { kind, hint }
}

/// Anthropic's API errors: a refused key is a key problem (exit 2), a base URL that is no URL
/// an input error, anything else a runtime failure, each with what to check.
fn anthropic_diagnosis(client: &anthropic_batch_client::Error, command: Command) -> Diagnosis {
    use anthropic_batch_client::{ApiErrorKind, Error};
    let (kind, hint) = match client {
        Error::InvalidBaseUrl => (
            ErrorKind::Input,
            "pass a URL such as https://api.anthropic.com with --base-url or ANTHROPIC_BASE_URL"
                .to_owned(),
        ),
        Error::InvalidHeader { .. } => (
            ErrorKind::Key,
            "the key must be one line of letters, digits, `-` and `_`".to_owned(),
        ),
        Error::Timeout { .. } | Error::Connection { .. } => (
            ErrorKind::Runtime,
            "check the network, and the server's address (--base-url or ANTHROPIC_BASE_URL)"
                .to_owned(),
        ),
        _ => match client.api_kind() {
            Some(ApiErrorKind::Authentication | ApiErrorKind::PermissionDenied) => (
                ErrorKind::Key,
                "check ANTHROPIC_API_KEY (or the file given with --api-key-file)".to_owned(),
            ),
            Some(ApiErrorKind::Billing) => (
                ErrorKind::Runtime,
                "the Anthropic account has no credit left: add some in the console, then run again (what is done is kept)".to_owned(),
            ),
            Some(ApiErrorKind::NotFound) => (
                ErrorKind::Runtime,
                match command {
                    Command::Check => "check the batch id: check-batch-status --provider anthropic --list shows recent message batches".to_owned(),
                    _ => "Anthropic no longer knows this message batch (results go 29 days after creation); generate-datagov-lessons-batch --new starts over without it".to_owned(),
                },
            ),
            Some(ApiErrorKind::RateLimited | ApiErrorKind::Overloaded | ApiErrorKind::Server) => (
                ErrorKind::Runtime,
                "Anthropic is busy or failing: run the command again later (what is done is kept, and nothing is sent twice)".to_owned(),
            ),
            _ => return Diagnosis {
                kind: ErrorKind::Runtime,
                hint: None,
            },
        },
    };
    Diagnosis {
        kind,
        hint: Some(hint),
    }
}

fn writer_diagnosis(err: &lesson_writer::Error, command: Command) -> Diagnosis {
    match err {
        lesson_writer::Error::InvalidPattern { .. } => input("fix --file-name"),
        lesson_writer::Error::CreateDir { source, .. } => {
            file_in_the_way(source, command).unwrap_or_else(|| io_diagnosis(false))
        }
        lesson_writer::Error::Open { .. } | lesson_writer::Error::Read { .. } => io_diagnosis(true),
        _ => io_diagnosis(false),
    }
}

fn job_diagnosis(err: &lesson_job::Error, command: Command) -> Diagnosis {
    let hint = match err {
        lesson_job::Error::Locked { .. } => match command {
            Command::Generate | Command::Process => {
                "wait for that run to finish, or run without --no-wait to wait for it"
            }
            _ => "wait for that run to finish, then run the command again",
        },
        lesson_job::Error::OutDirOfAnotherOutline { .. } => {
            "use another --out for this outline, or --force to regenerate its lessons here"
        }
        lesson_job::Error::OverBudget { .. } | lesson_job::Error::InvalidBudget { .. } => {
            "raise --budget, lower --max-completion-tokens, or select fewer lessons with --limit, --only or --modules"
        }
        lesson_job::Error::NoPrice { .. } => {
            "add the model's prices under [prices.<model>] in lessons.toml"
        }
        lesson_job::Error::NoBatchRecorded { .. } => {
            "pass a batch id (check-batch-status --list shows recent ones), or --work-dir"
        }
        lesson_job::Error::UnknownLesson { .. }
        | lesson_job::Error::UnknownLessons { .. }
        | lesson_job::Error::UnknownModule { .. } => {
            "list the lessons and modules with --list-lessons"
        }
        lesson_job::Error::Io { path, source, .. }
            if source.kind() == std::io::ErrorKind::NotFound && lesson_job::is_shard_file(path) =>
        {
            let hint = match command {
                Command::Generate => {
                    "a file of this job's unfinished batch is gone (deleted by hand?): write that batch's lessons with `check-batch-status --process --wait` and this run's --work-dir (the work dir's latest batch; pass its id for another), then run this command again with --new, which keeps the lessons written"
                }
                _ => {
                    "a file of this job's batch is gone (deleted by hand?): `check-batch-status BATCH --process --wait --work-dir DIR` writes the batch's lessons without it"
                }
            };
            return Diagnosis {
                kind: ErrorKind::Io,
                hint: Some(hint.to_owned()),
            };
        }
        lesson_job::Error::Io { action, source, .. } => {
            return file_in_the_way(source, command).unwrap_or_else(|| io_diagnosis(reads(action)));
        }
        _ => "",
    };
    let kind = match err.kind() {
        lesson_job::ErrorKind::Input => ErrorKind::Input,
        lesson_job::ErrorKind::Locked => ErrorKind::Locked,
        lesson_job::ErrorKind::Runtime => ErrorKind::Runtime,
    };
    Diagnosis {
        kind,
        hint: (!hint.is_empty()).then(|| hint.to_owned()),
    }
}

fn parse_diagnosis(err: &curriculum_parser::Error, command: Command) -> Diagnosis {
    match err {
        curriculum_parser::Error::Read { .. } => input(match command {
            Command::Generate | Command::Process => "check the path given with --content",
            _ => "check the outline's path",
        }),
        _ => input("fix the outline at that line and run the command again"),
    }
}

/// Writes one JSON document to stdout, followed by a newline.
///
/// # Errors
///
/// Fails when stdout is closed or the value cannot be serialised.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    output::stdout(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_disk() -> std::io::Error {
        std::io::Error::other("No space left on device")
    }

    #[test]
    fn a_full_disk_while_writing_shards_is_an_io_error_with_an_io_hint() {
        let err = anyhow::Error::new(lesson_job::Error::Request(
            batch_request::Error::WriteShard {
                path: "work/r01_input_001.jsonl".into(),
                source: full_disk(),
            },
        ));
        let diagnosis = diagnose(&err, Command::Generate);
        assert_eq!(diagnosis.kind, ErrorKind::Io);
        assert_eq!(exit_code(diagnosis.kind.exit_status()), 1);
        let hint = diagnosis.hint.unwrap();
        assert!(hint.contains("disk has room"), "{hint}");
        assert!(!hint.contains("template"), "{hint}");
    }

    #[test]
    fn kinds_decide_exit_codes_whichever_crate_the_error_came_from() {
        let io = |err: anyhow::Error| diagnose(&err, Command::Process).kind;
        // The same failure, a lesson that cannot be written, from two crates and bare.
        let writer = lesson_writer::Error::CreateDir {
            path: "out".into(),
            source: full_disk(),
        };
        assert_eq!(io(anyhow::Error::new(writer)), ErrorKind::Io);
        let job = lesson_job::Error::Io {
            action: "write",
            path: "out/x".into(),
            source: full_disk(),
        };
        assert_eq!(io(anyhow::Error::new(job)), ErrorKind::Io);
        assert_eq!(io(anyhow::Error::new(full_disk())), ErrorKind::Io);
        assert_eq!(
            io(usage_error("bad flag", None)).exit_status(),
            ExitStatus::Usage
        );
    }

    #[test]
    fn hints_name_only_the_command_s_flags() {
        let locked = anyhow::Error::new(lesson_job::Error::Locked {
            path: "out/.lesson-batch.lock".into(),
            holder: None,
        });
        let hint = diagnose(&locked, Command::Check).hint.unwrap();
        assert!(!hint.contains("--no-wait"), "{hint}");
        for command in [Command::Generate, Command::Process] {
            let hint = diagnose(&locked, command).hint.unwrap();
            assert!(hint.contains("--no-wait"), "{command:?}: {hint}");
        }
    }
}
