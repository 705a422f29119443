//! HTTP error answers in the OpenAI shape: `{"error": {"message", "type", "param", "code"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use batch_request::ApiError;
use serde::Serialize;

/// An error answer: a status and the OpenAI error object.
#[derive(Debug, Clone)]
pub(crate) struct ApiFailure {
    pub(crate) status: StatusCode,
    pub(crate) error: ApiError,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a ApiError,
}

impl ApiFailure {
    pub(crate) fn new(
        status: StatusCode,
        kind: &str,
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&str>,
    ) -> Self {
        ApiFailure {
            status,
            error: ApiError {
                message: message.into(),
                kind: Some(kind.to_owned()),
                param: param.map(str::to_owned),
                code: code.map(str::to_owned),
            },
        }
    }

    /// A 400 `invalid_request_error`.
    pub(crate) fn bad_request(
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&str>,
    ) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            message,
            param,
            code,
        )
    }

    /// A 404 `invalid_request_error`.
    pub(crate) fn not_found(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            message,
            param,
            None,
        )
    }

    /// `Missing required parameter: 'x'.`
    pub(crate) fn missing(param: &str) -> Self {
        Self::bad_request(
            format!("Missing required parameter: '{param}'."),
            Some(param),
            Some("missing_required_parameter"),
        )
    }

    /// A 500 `server_error`, for failures of the emulator itself.
    pub(crate) fn internal(what: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            format!("The local batch emulator failed: {what}."),
            None,
            None,
        )
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> String {
        serde_json::to_string(&ErrorBody { error: &self.error })
            .expect("an error object always serializes")
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_openai_shape() {
        let failure = ApiFailure::missing("endpoint");
        assert_eq!(
            failure.body(),
            r#"{"error":{"message":"Missing required parameter: 'endpoint'.","type":"invalid_request_error","param":"endpoint","code":"missing_required_parameter"}}"#
        );
        let failure = ApiFailure::not_found("Invalid URL (GET /v1/x)", None);
        assert_eq!(
            failure.body(),
            r#"{"error":{"message":"Invalid URL (GET /v1/x)","type":"invalid_request_error","param":null,"code":null}}"#
        );
    }
}
