//! `POST /v1/messages`: one Messages API request answered right away by the batch runs'
//! responder (offline, or forwarded upstream as a chat completion), as a preview before a
//! message batch uses it. No batch and no file is created.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::anthropic::convert::{self, Message};
use crate::anthropic::create::check_params;
use crate::anthropic::error::{AnthropicFailure, error_type};
use crate::responder::RequestResult;
use crate::server::Shared;

/// Largest request body, in bytes (32 MB), like the real Messages API.
pub(crate) const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Answers one message: the `Message` (usage with `service_tier: standard`), the upstream's
/// error in Anthropic's shape, or a 502 `api_error` (504 `timeout_error`) naming what went
/// wrong upstream.
///
/// The emulated prompt cache of message batches is not applied: a direct answer's usage has
/// no cache reads or writes.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Message>, AnthropicFailure> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AnthropicFailure::too_large(format!(
                "Request exceeds the maximum size of {MAX_BODY_BYTES} bytes."
            ))
        } else {
            AnthropicFailure::invalid(format!(
                "Cannot read the request body: {}.",
                rejection.body_text()
            ))
        }
    })?;
    let params = check(&body)?;
    match shared
        .responder
        .respond_direct(convert::chat_body(&params))
        .await
    {
        RequestResult::Success { body, .. } => {
            Ok(Json(convert::message_from_completion(&body, "standard")))
        }
        RequestResult::HttpError {
            status_code, body, ..
        } => {
            let message = body
                .get("error")
                .and_then(|error| error.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("The upstream server refused the request.");
            Err(AnthropicFailure {
                status: StatusCode::from_u16(status_code).unwrap_or(StatusCode::BAD_GATEWAY),
                kind: error_type(status_code),
                message: message.to_owned(),
            })
        }
        RequestResult::NotRun { code, message } => {
            let (status, kind) = if code == "request_timeout" {
                (StatusCode::GATEWAY_TIMEOUT, "timeout_error")
            } else {
                (StatusCode::BAD_GATEWAY, "api_error")
            };
            Err(AnthropicFailure {
                status,
                kind,
                message,
            })
        }
    }
}

/// The request's params, refused as the real API refuses them (`max_tokens: Field
/// required`, ...), or asking for a stream (the emulator answers whole).
fn check(body: &[u8]) -> Result<Map<String, Value>, AnthropicFailure> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(AnthropicFailure::invalid(
            "The request body is not valid JSON.",
        ));
    };
    let Value::Object(params) = value else {
        return Err(AnthropicFailure::invalid(
            "The request body must be a JSON object.",
        ));
    };
    if params.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(AnthropicFailure::invalid(
            "stream: The batch emulator does not stream answers; leave `stream` unset.",
        ));
    }
    check_params(&params)
        .map_err(|(field, message)| AnthropicFailure::invalid(format!("{field}: {message}")))?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        let failure = check(body.as_bytes()).unwrap_err();
        assert_eq!(failure.status, StatusCode::BAD_REQUEST);
        assert_eq!(failure.kind, "invalid_request_error");
        failure.message
    }

    #[test]
    fn refuses_bodies_the_api_refuses() {
        assert_eq!(refused("not json"), "The request body is not valid JSON.");
        assert_eq!(refused("[1]"), "The request body must be a JSON object.");
        let messages = r#""messages": [{"role": "user", "content": "hi"}]"#;
        assert_eq!(
            refused(&format!(r#"{{"model": "claude-x", {messages}}}"#)),
            "max_tokens: Field required"
        );
        assert_eq!(
            refused(&format!(r#"{{"max_tokens": 10, {messages}}}"#)),
            "model: Field required"
        );
        assert_eq!(
            refused(r#"{"model": "claude-x", "max_tokens": 10}"#),
            "messages: Field required"
        );
        assert_eq!(
            refused(&format!(
                r#"{{"model": "claude-x", "max_tokens": 0, {messages}}}"#
            )),
            "max_tokens: Input should be greater than or equal to 1"
        );
        assert!(
            refused(&format!(
                r#"{{"model": "claude-x", "max_tokens": 10, "stream": true, {messages}}}"#
            ))
            .starts_with("stream: ")
        );
    }

    #[test]
    fn accepts_messages_params() {
        let params = check(
            br#"{"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}"#,
        )
        .unwrap();
        assert_eq!(params["model"], "claude-x");
    }
}
