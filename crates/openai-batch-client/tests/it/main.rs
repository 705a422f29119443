//! Integration tests of the client against wiremock and raw TCP servers on loopback.

mod batches;
mod chat;
mod files;
mod job;
mod job_adopt;
mod job_queue;
mod job_shards;
mod poll;
mod retry;
mod support;
