//! The crate's one error type: API errors in Anthropic's shape, transport failures, checks made
//! before sending, and result lines that cannot be read.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::request::CustomId;
use crate::results::ErrorType;
use crate::types::MessageBatchId;

/// Everything that can go wrong in this crate.
///
/// No variant ever holds the API key or a whole response body.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// A request did not finish within its timeout.
    #[error("{method} {path} timed out{}", attempts_suffix(*attempts))]
    Timeout {
        /// HTTP method.
        method: String,
        /// Path below the base URL, e.g. `/v1/messages/batches`.
        path: String,
        /// How many attempts were made.
        attempts: u32,
        /// Whether the request may have reached the server (not a connect timeout).
        maybe_sent: bool,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The connection could not be made or broke before the answer was complete.
    #[error("connection failed during {method} {path}{}", attempts_suffix(*attempts))]
    Connection {
        /// HTTP method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// How many attempts were made.
        attempts: u32,
        /// Whether the request may have reached the server (it was sent, then the connection
        /// broke): a batch may then exist although the create failed.
        maybe_sent: bool,
        /// The transport error.
        source: reqwest::Error,
    },
    /// A request could not be built.
    #[error("cannot build request {method} {path}")]
    Request {
        /// HTTP method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The HTTP client could not start (e.g. no TLS backend).
    #[error("cannot start the http client")]
    Init {
        /// The cause.
        source: reqwest::Error,
    },
    /// The configured base URL is not an http(s) URL. The URL itself is left out, since it
    /// may carry credentials; the caller knows what it configured.
    #[error("the configured base url is not a valid http or https url")]
    InvalidBaseUrl,
    /// A configured header value (key, beta names) is not a valid HTTP header value.
    #[error("invalid value for header {header}")]
    InvalidHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A `custom_id` that breaks the API's pattern `^[a-zA-Z0-9_-]{1,64}$`.
    #[error("invalid custom_id `{custom_id}`: {reason}")]
    InvalidCustomId {
        /// The id as given.
        custom_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same `custom_id` twice in one batch.
    #[error("custom_id `{custom_id}` is used by more than one request of the batch")]
    DuplicateCustomId {
        /// The id.
        custom_id: CustomId,
    },
    /// A batch without requests.
    #[error("a batch needs at least one request")]
    EmptyBatch,
    /// More requests than one batch may hold.
    #[error("{count} requests are more than one batch may hold ({max}): split them")]
    TooManyRequests {
        /// Requests given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A create body larger than the API accepts.
    #[error("the batch is {bytes} bytes, more than the {max} bytes one batch may hold: split it")]
    BatchTooLarge {
        /// Size of the body.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The request (a batch's requests, or one message's parameters) could not be written as
    /// JSON.
    #[error("cannot encode the request as json")]
    Encode(#[source] serde_json::Error),
    /// A successful answer was not the JSON we expected.
    #[error("unexpected answer to {method} {path} (HTTP {status}): {excerpt:?}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// HTTP status of the answer.
        status: u16,
        /// At most 200 characters of the body.
        excerpt: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Results were asked for before the batch ended (its `results_url` is still `null`).
    #[error("batch {batch_id} has no results yet: it is {status}")]
    ResultsNotReady {
        /// The batch.
        batch_id: MessageBatchId,
        /// Its processing status.
        status: crate::ProcessingStatus,
    },
    /// The batch's `results_url` points to another server than the base URL: the key is not
    /// sent there.
    #[error("batch {batch_id} has its results on another server than the configured base url")]
    ForeignResultsUrl {
        /// The batch.
        batch_id: MessageBatchId,
    },
    /// A result line is not a result of the known shape.
    #[error("result line {line} cannot be parsed")]
    ResultLine {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A result line is longer than [`MAX_RESULT_LINE_BYTES`](crate::MAX_RESULT_LINE_BYTES).
    #[error("result line {line} is longer than {max} bytes")]
    ResultLineTooLong {
        /// 1-based line number.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// Results could not be read from a local reader.
    #[error("cannot read result line {line}")]
    ReadResults {
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: std::io::Error,
    },
    /// A local file could not be created, written or renamed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done: `write`, `rename`, ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// An error answer of the API, with everything it told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What kind of failure the status and type mean.
    pub kind: ApiErrorKind,
    /// HTTP method of the request.
    pub method: String,
    /// Path below the base URL.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// `error.type`, when the body had Anthropic's error shape.
    pub error_type: Option<ErrorType>,
    /// `error.message`, or an excerpt of a body that was not an error object.
    pub message: String,
    /// The `request-id` response header (else the body's `request_id`): quote it to support.
    pub request_id: Option<String>,
    /// The delay the server asked for (`retry-after-ms` / `retry-after`), if any.
    pub retry_after: Option<Duration>,
    /// How many attempts were made.
    pub attempts: u32,
}

/// The class of an [`ApiError`], from its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiErrorKind {
    /// 400: the request was malformed.
    BadRequest,
    /// 401: the key is missing, wrong or revoked.
    Authentication,
    /// 402: a billing problem.
    Billing,
    /// 403: the key may not do this.
    PermissionDenied,
    /// 404: no such batch.
    NotFound,
    /// 408: the server timed out waiting for the request.
    RequestTimeout,
    /// 409: the resource is in the wrong state.
    Conflict,
    /// 413: the request is too large.
    RequestTooLarge,
    /// 429: too many requests.
    RateLimited,
    /// 529: the API is overloaded.
    Overloaded,
    /// Another 5xx: the server failed.
    Server,
    /// Any other status.
    Other,
}

impl ApiErrorKind {
    /// Classifies a status.
    pub fn from_status(status: u16) -> Self {
        match status {
            400 => ApiErrorKind::BadRequest,
            401 => ApiErrorKind::Authentication,
            402 => ApiErrorKind::Billing,
            403 => ApiErrorKind::PermissionDenied,
            404 => ApiErrorKind::NotFound,
            408 => ApiErrorKind::RequestTimeout,
            409 => ApiErrorKind::Conflict,
            413 => ApiErrorKind::RequestTooLarge,
            429 => ApiErrorKind::RateLimited,
            529 => ApiErrorKind::Overloaded,
            500.. => ApiErrorKind::Server,
            _ => ApiErrorKind::Other,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ApiErrorKind::BadRequest => "bad request",
            ApiErrorKind::Authentication => "authentication failed",
            ApiErrorKind::Billing => "billing error",
            ApiErrorKind::PermissionDenied => "permission denied",
            ApiErrorKind::NotFound => "not found",
            ApiErrorKind::RequestTimeout => "request timed out on the server",
            ApiErrorKind::Conflict => "conflict",
            ApiErrorKind::RequestTooLarge => "request too large",
            ApiErrorKind::RateLimited => "rate limited",
            ApiErrorKind::Overloaded => "overloaded",
            ApiErrorKind::Server => "server error",
            ApiErrorKind::Other => "unexpected status",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} failed: {} (HTTP {}",
            self.method,
            self.path,
            self.kind.describe(),
            self.status
        )?;
        if let Some(error_type) = self.error_type {
            write!(f, ", {}", error_type.as_str())?;
        }
        if let Some(request_id) = &self.request_id {
            write!(f, ", request id {request_id}")?;
        }
        write!(f, "){}: {}", attempts_suffix(self.attempts), self.message)
    }
}

impl Error {
    /// Whether trying the same request again later could succeed: 408, 409, 429, 5xx,
    /// timeouts and connection failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(api) => matches!(
                api.kind,
                ApiErrorKind::RequestTimeout
                    | ApiErrorKind::Conflict
                    | ApiErrorKind::RateLimited
                    | ApiErrorKind::Overloaded
                    | ApiErrorKind::Server
            ),
            Error::Timeout { .. } | Error::Connection { .. } => true,
            _ => false,
        }
    }

    /// Whether the server may have acted on the failed request: a timeout or a broken
    /// connection after the request may have been sent, or a 5xx other than 529. After a failed create, look for
    /// the batch before creating it again.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Error::Api(api) => api.status >= 500 && api.status != 529,
            Error::Timeout { maybe_sent, .. } | Error::Connection { maybe_sent, .. } => *maybe_sent,
            _ => false,
        }
    }

    /// The request id of the failed answer, if the server sent one.
    pub fn request_id(&self) -> Option<&str> {
        self.api()?.request_id.as_deref()
    }

    /// The API error, if the server answered with an error status.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            _ => None,
        }
    }

    /// The kind of the API error, if the server answered with an error status.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        self.api().map(|api| api.kind)
    }

    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            Error::Api(api) => api.attempts = n,
            Error::Timeout { attempts, .. } | Error::Connection { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }
}

fn attempts_suffix(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

/// At most `max` characters of `text`, cut at a character boundary, with `...` when cut.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(3)) {
        Some((cut, _)) if text.chars().count() > max => format!("{}...", &text[..cut]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_status() {
        let kinds: Vec<_> = [400, 401, 402, 403, 404, 408, 409, 413, 429, 500, 529, 418]
            .into_iter()
            .map(ApiErrorKind::from_status)
            .collect();
        assert_eq!(
            kinds,
            [
                ApiErrorKind::BadRequest,
                ApiErrorKind::Authentication,
                ApiErrorKind::Billing,
                ApiErrorKind::PermissionDenied,
                ApiErrorKind::NotFound,
                ApiErrorKind::RequestTimeout,
                ApiErrorKind::Conflict,
                ApiErrorKind::RequestTooLarge,
                ApiErrorKind::RateLimited,
                ApiErrorKind::Server,
                ApiErrorKind::Overloaded,
                ApiErrorKind::Other,
            ]
        );
    }

    #[test]
    fn api_error_display_carries_the_facts() {
        let api = ApiError {
            kind: ApiErrorKind::Overloaded,
            method: "POST".into(),
            path: "/v1/messages/batches".into(),
            status: 529,
            error_type: Some(ErrorType::OverloadedError),
            message: "Overloaded".into(),
            request_id: Some("req_1".into()),
            retry_after: None,
            attempts: 3,
        };
        let err = Error::Api(Box::new(api));
        assert_eq!(
            err.to_string(),
            "POST /v1/messages/batches failed: overloaded (HTTP 529, overloaded_error, request id req_1) after 3 attempts: Overloaded"
        );
        assert_eq!(err.request_id(), Some("req_1"));
        assert!(err.is_retryable());
    }

    #[test]
    fn excerpt_is_short_and_cut_on_a_char_boundary() {
        assert_eq!(excerpt("short", 200), "short");
        let cut = excerpt(&"é".repeat(500), 200);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with("..."));
    }
}
