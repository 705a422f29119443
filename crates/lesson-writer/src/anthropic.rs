//! Anthropic's Message Batches result lines, read as the Batch API's result lines, so that
//! one classifier gives both providers' answers the same outcomes and failure kinds.
//!
//! | Anthropic | read as | failure kind |
//! |---|---|---|
//! | `succeeded`, `stop_reason` `end_turn` or `stop_sequence` | `finish_reason: stop` | none: a lesson |
//! | `succeeded`, `stop_reason` `max_tokens` (or `model_context_window_exceeded`) | `finish_reason: length` | `truncated` |
//! | `succeeded`, `stop_reason` `refusal` | `refusal` set, no content | `refusal` |
//! | `succeeded`, `tool_use`, `pause_turn`, other | that `finish_reason` | `unexpected_finish` |
//! | `errored`, `invalid_request_error` and other 4xx types | HTTP 400, 401, 403, 404, 413 | `invalid_request` |
//! | `errored`, `billing_error` | HTTP 429 `insufficient_quota` | `quota_exceeded` |
//! | `errored`, `rate_limit_error` | HTTP 429 | `rate_limited` |
//! | `errored`, `api_error`, `overloaded_error`, `timeout_error` | HTTP 500, 529, 504 | `server_error` |
//! | `canceled` | `batch_cancelled` | `cancelled` |
//! | `expired` | `batch_expired` | `expired` |
//!
//! Text blocks are joined; thinking blocks are left out. Usage is read as the Batch API's:
//! prompt tokens are the input tokens plus the cache's reads and writes, cached tokens its
//! reads.

use anthropic_batch_client::{BatchResult, BatchResultLine, ErrorType, Message, StopReason};
use batch_request::{
    ApiError, AssistantMessage, Choice, LineError, PromptTokensDetails, ResponseBody,
    ResponseEnvelope, ResultLine, Usage,
};

/// An Anthropic result line as a Batch API result line (see the module's table).
///
/// ```
/// let line = anthropic_batch_client::BatchResultLine::parse(
///     br#"{"custom_id": "lesson_M0-L001", "result": {"type": "expired"}}"#,
///     1,
/// )?;
/// let line = lesson_writer::anthropic::result_line(line);
/// assert_eq!(line.custom_id, "lesson_M0-L001");
/// assert_eq!(line.error.unwrap().code.as_deref(), Some("batch_expired"));
/// # Ok::<(), anthropic_batch_client::Error>(())
/// ```
pub fn result_line(line: BatchResultLine) -> ResultLine {
    let custom_id = line.custom_id.as_str().to_owned();
    let (response, error) = match line.result {
        BatchResult::Succeeded { message } => (Some(response(*message)), None),
        BatchResult::Errored { error } => {
            let (status_code, code) = match error.error.error_type {
                ErrorType::InvalidRequestError => (400, None),
                ErrorType::AuthenticationError => (401, None),
                ErrorType::BillingError => (429, Some("insufficient_quota")),
                ErrorType::PermissionError => (403, None),
                ErrorType::NotFoundError => (404, None),
                ErrorType::RequestTooLarge => (413, None),
                ErrorType::RateLimitError => (429, None),
                ErrorType::TimeoutError => (504, None),
                ErrorType::ApiError | ErrorType::Unknown => (500, None),
                ErrorType::OverloadedError => (529, None),
            };
            let envelope = ResponseEnvelope {
                status_code,
                request_id: error.request_id,
                body: ResponseBody {
                    error: Some(ApiError {
                        message: error.error.message,
                        kind: Some(error.error.error_type.as_str().to_owned()),
                        param: None,
                        code: code.map(str::to_owned),
                    }),
                    ..ResponseBody::default()
                },
            };
            (Some(envelope), None)
        }
        BatchResult::Canceled => (
            None,
            Some(not_run(
                "batch_cancelled",
                "the message batch was canceled before this request ran",
            )),
        ),
        BatchResult::Expired => (
            None,
            Some(not_run(
                "batch_expired",
                "the message batch ended (24 hours) before this request ran",
            )),
        ),
        BatchResult::Unknown => (
            None,
            Some(not_run(
                "unknown_result",
                "a result type this tool does not know",
            )),
        ),
    };
    ResultLine {
        id: None,
        custom_id,
        response,
        error,
    }
}

/// A Messages API answer as the Batch API's `200` response: the text blocks joined as the
/// content (or as the refusal, when the model refused), the stop reason as a finish reason
/// and the usage as a chat completion's.
pub fn response(message: Message) -> ResponseEnvelope {
    let text = message.text();
    let refused = message.stop_reason == Some(StopReason::Refusal);
    let finish_reason = message.stop_reason.map(|reason| {
        match reason {
            StopReason::EndTurn | StopReason::StopSequence | StopReason::Refusal => "stop",
            StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => "length",
            StopReason::ToolUse => "tool_calls",
            StopReason::PauseTurn => "pause_turn",
            StopReason::Unknown => "unknown",
        }
        .to_owned()
    });
    let usage = usage(&message.usage);
    ResponseEnvelope {
        status_code: 200,
        request_id: None,
        body: ResponseBody {
            id: Some(message.id),
            model: Some(message.model),
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: Some("assistant".to_owned()),
                    content: (!refused).then(|| text.clone()),
                    refusal: refused.then(|| {
                        if text.is_empty() {
                            "the model refused (stop_reason: refusal)".to_owned()
                        } else {
                            text
                        }
                    }),
                },
                finish_reason,
            }],
            usage: Some(usage),
            error: None,
        },
    }
}

/// An answer's usage as a chat completion's: prompt tokens are the input tokens plus the
/// cache's reads and writes, cached tokens its reads (the table of prices bills cache writes
/// as input).
pub fn usage(usage: &anthropic_batch_client::Usage) -> Usage {
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let prompt_tokens =
        usage.input_tokens + cache_read + usage.cache_creation_input_tokens.unwrap_or(0);
    Usage {
        prompt_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: prompt_tokens + usage.output_tokens,
        prompt_tokens_details: (cache_read > 0).then_some(PromptTokensDetails {
            cached_tokens: cache_read,
        }),
        completion_tokens_details: None,
    }
}

fn not_run(code: &str, message: &str) -> LineError {
    LineError {
        code: Some(code.to_owned()),
        message: Some(message.to_owned()),
    }
}
