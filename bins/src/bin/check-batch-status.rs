//! `check-batch-status`: a batch's status, results, waiting, cancel and list.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::check::Args::parse();
    match cli::check::run(&args).await {
        Ok(status) => status.into(),
        Err(err) => cli::report(&err),
    }
}
