//! `process-batch-results`: a Batch API results file to lesson files.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::process::Args::parse();
    match cli::process::run(&args) {
        Ok(status) => status.into(),
        Err(err) => cli::report(&err),
    }
}
