//! `check-batch-status`: placeholder until its issue lands.

use clap::Parser;

/// check-batch-status
#[derive(Parser)]
#[command(version)]
struct Args {}

fn main() {
    let _args = Args::parse();
}
