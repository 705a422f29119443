//! Integration tests: real HTTP over loopback, driven by openai-batch-client where it can.

mod api;
mod cancel_expiry;
mod chat;
mod enqueued;
mod faults;
mod file_expiry;
mod lifecycle;
mod message_batches;
mod messages;
mod persistence;
mod python_sdk;
mod support;
mod upstream;
mod validation;
