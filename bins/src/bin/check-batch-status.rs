//! `check-batch-status`: a batch's status, results, waiting, cancel and list.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match cli::check::Args::parse_with_settings() {
        Ok(args) => args,
        Err(err) => return cli::report_as(&err, cli::Command::Check, cli::json_requested()),
    };
    match cli::check::run(&args).await {
        Ok(status) => status.into(),
        Err(err) => cli::report_as(&err, cli::Command::Check, args.output.json),
    }
}
