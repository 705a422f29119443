//! `process-batch-results`: a Batch API results file to lesson files.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::process::Args::parse_with_settings() {
        Ok(args) => args,
        Err(err) => return cli::report_as(&err, cli::Command::Process, cli::json_requested()),
    };
    match cli::process::run(&args) {
        Ok(status) => status.into(),
        Err(err) => cli::report_as(&err, cli::Command::Process, args.output.json),
    }
}
