//! `process-batch-results`: placeholder until its issue lands.

use clap::Parser;

/// process-batch-results
#[derive(Parser)]
#[command(version)]
struct Args {}

fn main() {
    let _args = Args::parse();
}
