//! `generate-datagov-lessons-batch`: outline to lesson files through the OpenAI Batch API.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::generate::Args::parse();
    match cli::generate::run(&args).await {
        Ok(status) => status.into(),
        Err(err) => cli::report(&err),
    }
}
