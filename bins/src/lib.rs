//! Shared glue of the command-line tools: exit codes, error reports, output helpers.

#![allow(clippy::print_stdout, clippy::print_stderr)] // This crate is the terminal layer.

use std::process::ExitCode;

/// Every exit code the commands use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: all requested lessons written (or nothing to do).
    Success,
    /// 1: runtime failure (network, API, I/O, batch failed).
    Failure,
    /// 2: usage, configuration or input error.
    Usage,
    /// 3: finished, but some lessons failed.
    Partial,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Partial => 3,
        })
    }
}

/// Prints `error: ...` with its cause chain to stderr and returns the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitStatus::Failure.into()
}
