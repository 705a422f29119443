//! The Anthropic Message Batches API, served on the same engine as the OpenAI batches.
//!
//! A message batch is stored as an internal batch of the store with the endpoint
//! [`MESSAGES_ENDPOINT`]: its inline requests become an internal input file of chat
//! completion bodies (`convert.rs`), so the runner, the responders (offline or upstream),
//! the seeded faults, cancel, expiry, the enqueued-token limit and persistence are the
//! OpenAI batches' own. What differs lives here: the create call's checks
//! (`create.rs`), the other routes (`routes.rs`), the `MessageBatch` object (`batch.rs`), the result lines
//! (`results.rs`) and the error shape (`error.rs`). Internal batches and their files
//! never show through the OpenAI routes. `POST /v1/messages` (`messages.rs`) answers one
//! request at once with the same responder, creating nothing.

pub(crate) mod batch;
pub(crate) mod convert;
pub(crate) mod create;
pub(crate) mod error;
pub(crate) mod messages;
pub(crate) mod results;
pub(crate) mod routes;

/// The internal endpoint of a message batch (never accepted by `POST /v1/batches`).
pub(crate) const MESSAGES_ENDPOINT: &str = "/v1/messages";

/// The purpose of a message batch's internal input file.
pub(crate) const INPUT_PURPOSE: &str = "emulator:message_batch";

/// The purpose of a message batch's internal result files.
pub(crate) const RESULTS_PURPOSE: &str = "emulator:message_batch_results";

/// A message batch's results can be downloaded for 29 days after its creation.
pub(crate) const RESULTS_LIFETIME: i64 = 29 * 24 * 60 * 60;

/// Whether a request path belongs to the Anthropic API (`/v1/messages...`).
pub(crate) fn is_anthropic_path(path: &str) -> bool {
    path == MESSAGES_ENDPOINT
        || path
            .strip_prefix(MESSAGES_ENDPOINT)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a store file is one of the message batches' internal files.
pub(crate) fn is_internal_purpose(purpose: &str) -> bool {
    purpose == INPUT_PURPOSE || purpose == RESULTS_PURPOSE
}

/// Whether a stored batch is a message batch.
pub(crate) fn is_message_batch(batch: &openai_batch_client::Batch) -> bool {
    batch.endpoint == MESSAGES_ENDPOINT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_paths() {
        assert!(is_anthropic_path("/v1/messages"));
        assert!(is_anthropic_path("/v1/messages/batches/msgbatch_1/results"));
        assert!(!is_anthropic_path("/v1/messagesx"));
        assert!(!is_anthropic_path("/v1/batches"));
    }
}
