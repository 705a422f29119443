//! Integration tests of the client against wiremock and raw TCP servers on loopback.

mod batches;
mod messages;
mod redaction;
mod results;
mod retry;
mod support;
