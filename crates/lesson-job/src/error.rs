//! The crate's error type, with the context a person needs (paths, lines, ids), and its
//! kind, from which the binaries choose an exit code.

use std::io;
use std::path::{Path, PathBuf};

use curriculum_parser::LessonCode;

use crate::LockHolder;

/// Why a job could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The outline could not be parsed.
    #[error(transparent)]
    Outline(#[from] curriculum_parser::Error),
    /// The template, the settings or a request is wrong.
    #[error(transparent)]
    Request(#[from] batch_request::Error),
    /// The Batch API, the network or the ledger failed.
    #[error(transparent)]
    Client(#[from] openai_batch_client::Error),
    /// Anthropic's Message Batches API or the network failed.
    #[error(transparent)]
    Anthropic(#[from] anthropic_batch_client::Error),
    /// A request setting has no counterpart in the provider's API.
    #[error("{provider} cannot take the request parameter `{param}`: {reason}")]
    UnsupportedParameter {
        /// The provider.
        provider: batch_request::Provider,
        /// The parameter, as `lessons.toml` or the template names it.
        param: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The job's ledger tracks unfinished batches of another provider.
    #[error(
        "the job's unfinished batches are {ledger}'s, and this run would use {requested}: \
         finish them with --provider {ledger}, or stop tracking them with --new"
    )]
    ProviderMismatch {
        /// The provider of the ledger's batches.
        ledger: batch_request::Provider,
        /// The provider asked for.
        requested: batch_request::Provider,
    },
    /// Writing lesson files (or the manifest) failed.
    #[error(transparent)]
    Writer(#[from] lesson_writer::Error),
    /// No batch id was given and the work dir's ledgers record no batch.
    #[error("no batch id given, and no batch recorded in {work_dir}")]
    NoBatchRecorded {
        /// The work dir.
        work_dir: PathBuf,
    },
    /// A file or directory could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another run holds the job's lock (only with [`LockWait::NoWait`](crate::LockWait::NoWait)).
    #[error("{}", locked_message(.holder.as_deref()))]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, when the lock file says.
        holder: Option<Box<LockHolder>>,
    },
    /// The output directory holds the lessons of another outline.
    #[error(
        "{out_dir} holds the lessons of the outline {owner}, not of {outline}",
        out_dir = .out_dir.display(), owner = .owner.display(), outline = .outline.display()
    )]
    OutDirOfAnotherOutline {
        /// The output directory.
        out_dir: PathBuf,
        /// The outline its manifest names.
        owner: PathBuf,
        /// The outline of this run.
        outline: PathBuf,
    },
    /// A lesson named by the caller is not in the outline.
    #[error("{code} is not a lesson of the outline {}", .outline.display())]
    UnknownLesson {
        /// The lesson.
        code: LessonCode,
        /// The outline.
        outline: PathBuf,
    },
    /// Lessons named by the caller (every one of them) are not in the outline.
    #[error("{} {} of the outline {}", join_codes(.codes), if .codes.len() == 1 { "is not a lesson" } else { "are not lessons" }, .outline.display())]
    UnknownLessons {
        /// The lessons, in the order given.
        codes: Vec<LessonCode>,
        /// The outline.
        outline: PathBuf,
    },
    /// A module named by the caller is not in the outline.
    #[error("M{number} is not a module of the outline {}", .outline.display())]
    UnknownModule {
        /// The module number.
        number: u32,
        /// The outline.
        outline: PathBuf,
    },
    /// The upper-bound cost of the new requests exceeds the budget.
    #[error(
        "the upper-bound cost {} exceeds the budget {} by {}",
        usd(*.max), usd(*.budget), usd(.max - .budget)
    )]
    OverBudget {
        /// The upper-bound cost in USD.
        max: f64,
        /// The budget in USD.
        budget: f64,
    },
    /// A budget was given, but the model has no price, so the cost is unknown.
    #[error("cannot check the budget: the model {model} has no price")]
    NoPrice {
        /// The model.
        model: String,
    },
    /// A budget that is not a number of dollars (negative, NaN, infinite).
    #[error("the budget {budget} is not an amount of USD")]
    InvalidBudget {
        /// The budget given.
        budget: f64,
    },
    /// A line of a job file (the requests of a shard) is not what this tool wrote.
    #[error("{}:{line}: {problem}", .path.display())]
    JobFile {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: u64,
        /// What is wrong.
        problem: String,
    },
}

/// What kind of failure an [`Error`] is; the binaries choose exit codes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's input is wrong (outline, template, settings, a lesson or module named,
    /// an output directory of another outline): fix it and run again.
    Input,
    /// Another run is working on the job.
    Locked,
    /// Anything else: network, API, disk.
    Runtime,
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Outline(curriculum_parser::Error::Read { .. }) => ErrorKind::Input,
            Error::Outline(_)
            | Error::Request(_)
            | Error::OutDirOfAnotherOutline { .. }
            | Error::UnknownLesson { .. }
            | Error::UnknownLessons { .. }
            | Error::UnknownModule { .. }
            | Error::OverBudget { .. }
            | Error::NoPrice { .. }
            | Error::InvalidBudget { .. }
            | Error::UnsupportedParameter { .. }
            | Error::ProviderMismatch { .. }
            | Error::NoBatchRecorded { .. } => ErrorKind::Input,
            Error::Writer(lesson_writer::Error::InvalidPattern { .. }) => ErrorKind::Input,
            Error::Locked { .. } => ErrorKind::Locked,
            _ => ErrorKind::Runtime,
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `M9-L001, M9-L002`.
fn join_codes(codes: &[LessonCode]) -> String {
    codes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn locked_message(holder: Option<&LockHolder>) -> String {
    match holder {
        Some(holder) => format!(
            "another run (pid {}, {}) is working on this job",
            holder.pid, holder.command
        ),
        None => "another run is working on this job".to_owned(),
    }
}

/// `$0.1234` below a cent, else `$1.23`.
fn usd(value: f64) -> String {
    if value < 0.01 {
        format!("${value:.4}")
    } else {
        format!("${value:.2}")
    }
}
