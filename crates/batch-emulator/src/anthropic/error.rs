//! HTTP error answers in the Anthropic shape:
//! `{"type": "error", "error": {"type", "message"}, "request_id"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ids;

/// An Anthropic error answer: a status, the error type and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnthropicFailure {
    pub(crate) status: StatusCode,
    /// `invalid_request_error`, `authentication_error`, `not_found_error`, ...
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorObject<'a>,
    request_id: &'a str,
}

/// The inner `{"type", "message"}` object, also used inside `errored` result lines.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct ErrorObject<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) message: &'a str,
}

impl AnthropicFailure {
    /// A 400 `invalid_request_error`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        AnthropicFailure {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
        }
    }

    /// A 404 `not_found_error`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        AnthropicFailure {
            status: StatusCode::NOT_FOUND,
            kind: "not_found_error",
            message: message.into(),
        }
    }

    /// A 401 `authentication_error`.
    pub(crate) fn authentication(message: impl Into<String>) -> Self {
        AnthropicFailure {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            message: message.into(),
        }
    }

    /// A 413 `request_too_large`.
    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        AnthropicFailure {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "request_too_large",
            message: message.into(),
        }
    }

    /// A 429 `rate_limit_error` (an injected fault).
    pub(crate) fn rate_limited() -> Self {
        AnthropicFailure {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limit_error",
            message: "Number of requests has exceeded your rate limit. Please try again later."
                .to_owned(),
        }
    }

    /// A 500 `api_error`, for failures of the emulator itself.
    pub(crate) fn internal(what: &str) -> Self {
        AnthropicFailure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "api_error",
            message: format!("The local batch emulator failed: {what}."),
        }
    }

    /// The JSON body, with `request_id`.
    pub(crate) fn body(&self, request_id: &str) -> String {
        serde_json::to_string(&ErrorBody {
            kind: "error",
            error: ErrorObject {
                kind: self.kind,
                message: &self.message,
            },
            request_id,
        })
        .expect("an error object always serializes")
    }
}

impl IntoResponse for AnthropicFailure {
    fn into_response(self) -> Response {
        let request_id = ids::anthropic_id("req_");
        let body = self.body(&request_id);
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("request-id", value);
        }
        response
    }
}

/// The Anthropic error type of an HTTP status, as the SDK maps them.
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_anthropic_shape() {
        let failure = AnthropicFailure::invalid("requests: Field required");
        assert_eq!(
            failure.body("req_1"),
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"requests: Field required"},"request_id":"req_1"}"#
        );
    }

    #[test]
    fn statuses_map_to_error_types() {
        assert_eq!(error_type(400), "invalid_request_error");
        assert_eq!(error_type(429), "rate_limit_error");
        assert_eq!(error_type(500), "api_error");
        assert_eq!(error_type(529), "overloaded_error");
    }
}
