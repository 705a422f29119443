//! Integration tests of batch-request: golden files over the Data Governance fixture,
//! the shared prompt prefix, shard limits, estimates and real-shaped result lines.

mod caching;
mod estimates;
mod golden;
mod results;
mod shards;
mod support;
