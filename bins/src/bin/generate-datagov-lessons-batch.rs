//! `generate-datagov-lessons-batch`: placeholder until its issue lands.

use clap::Parser;

/// generate-datagov-lessons-batch
#[derive(Parser)]
#[command(version)]
struct Args {}

fn main() {
    let _args = Args::parse();
}
