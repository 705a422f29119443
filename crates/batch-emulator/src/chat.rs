//! `POST /v1/chat/completions`: one request answered right away by the batch runs' responder
//! (offline, or forwarded upstream), as a preview before a batch uses it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::api_error::ApiFailure;
use crate::responder::RequestResult;
use crate::server::Shared;

/// Answers one chat completion request: the completion object, the upstream's error
/// answer as it came, or a 502 (504 for a timeout) naming what went wrong upstream.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match check(&body) {
        Ok(body) => body,
        Err(failure) => return failure.into_response(),
    };
    match shared.responder.respond_direct(body).await {
        RequestResult::Success { body, .. } => Json(body).into_response(),
        RequestResult::HttpError {
            status_code, body, ..
        } => {
            let status = StatusCode::from_u16(status_code).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, Json(body)).into_response()
        }
        RequestResult::NotRun { code, message } => {
            let status = if code == "request_timeout" {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            ApiFailure::new(status, "upstream_error", message, None, Some(&code)).into_response()
        }
    }
}

/// The request body, refused as the real API refuses it: not a JSON object, no `model`, no
/// `messages`, or asking for a stream (the emulator answers whole).
fn check(body: &[u8]) -> Result<Value, ApiFailure> {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiFailure::bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            None,
            None,
        ));
    };
    if !body.is_object() {
        return Err(ApiFailure::bad_request(
            "The request body must be a JSON object.",
            None,
            None,
        ));
    }
    for (param, present) in [
        ("model", body.get("model").is_some_and(Value::is_string)),
        (
            "messages",
            body.get("messages").is_some_and(Value::is_array),
        ),
    ] {
        if !present {
            return Err(ApiFailure::bad_request(
                format!("Missing required parameter: '{param}'."),
                Some(param),
                Some("missing_required_parameter"),
            ));
        }
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(ApiFailure::bad_request(
            "The batch emulator does not stream answers; leave `stream` unset.",
            Some("stream"),
            Some("unsupported_value"),
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> (Option<String>, Option<String>) {
        let failure = check(body.as_bytes()).unwrap_err();
        assert_eq!(failure.status, StatusCode::BAD_REQUEST);
        (failure.error.param, failure.error.code)
    }

    #[test]
    fn refuses_bodies_the_api_refuses() {
        assert_eq!(refused("not json"), (None, None));
        assert_eq!(refused("[1]"), (None, None));
        assert_eq!(
            refused(r#"{"messages": []}"#),
            (
                Some("model".to_owned()),
                Some("missing_required_parameter".to_owned())
            )
        );
        assert_eq!(
            refused(r#"{"model": "m"}"#),
            (
                Some("messages".to_owned()),
                Some("missing_required_parameter".to_owned())
            )
        );
        assert_eq!(
            refused(r#"{"model": "m", "messages": [], "stream": true}"#),
            (
                Some("stream".to_owned()),
                Some("unsupported_value".to_owned())
            )
        );
    }

    #[test]
    fn accepts_a_chat_completion_body() {
        let body =
            check(br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#).unwrap();
        assert_eq!(body["model"], "m");
    }
}
