//! `generate-datagov-lessons-batch`: outline to lesson files through the OpenAI Batch API.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match cli::generate::Args::parse_with_settings() {
        Ok(args) => args,
        Err(err) => return cli::report_as(&err, cli::Command::Generate, cli::json_requested()),
    };
    match cli::generate::run(&args).await {
        Ok(status) => status.into(),
        Err(err) => cli::report_as(&err, cli::Command::Generate, args.output.json),
    }
}
