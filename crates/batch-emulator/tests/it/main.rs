//! Integration tests: real HTTP over loopback, driven by openai-batch-client where it can.

mod lifecycle;
mod support;
