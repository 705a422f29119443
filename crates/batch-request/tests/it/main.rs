//! Integration tests of batch-request: golden files over the Data Governance fixture,
//! shard limits, estimates and real-shaped result lines.

mod estimates;
mod golden;
mod results;
mod shards;
mod support;
