//! Transfer benchmark.
fn main() {}
