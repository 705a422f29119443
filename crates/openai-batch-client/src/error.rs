//! The crate's one error type: API errors with their kind, transport failures, I/O, decoding and the ledger.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::types::{BatchId, FileId};

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
        /// Path below the base URL, e.g. `/batches`.
        path: String,
        /// How many attempts were made.
        attempts: u32,
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
        /// The transport error.
        source: reqwest::Error,
    },
    /// A request could not be built (e.g. an invalid header value).
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
    /// The configured base URL is not a valid URL.
    #[error("invalid base url `{url}`")]
    InvalidBaseUrl {
        /// The URL as configured, its credentials masked ([`crate::redacted_url`]).
        url: String,
        /// The parse error.
        source: reqwest::Error,
    },
    /// A configured header value (organization, project, key) is not a valid HTTP header value.
    #[error("invalid value for header {header}")]
    InvalidHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A local file could not be read, written or renamed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done: `read`, `write`, `rename`, ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
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
    /// A download ended before the announced `Content-Length`.
    #[error("download of {file_id} ended after {received} of {expected} bytes")]
    IncompleteDownload {
        /// The file being downloaded.
        file_id: FileId,
        /// Bytes announced by the server.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The ledger file is not valid JSON of the expected shape.
    #[error("cannot parse ledger {path}")]
    LedgerParse {
        /// The ledger file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The ledger was written with another schema version (an older or a newer program).
    #[error(
        "ledger {path} has schema version {found}, this program reads only version {supported}"
    )]
    LedgerVersion {
        /// The ledger file.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Version this crate reads and writes.
        supported: u32,
    },
    /// A shard file changed after it was uploaded under this ledger.
    #[error(
        "shard {id} ({path}) changed since it was uploaded (sha256 {recorded} in the ledger, {found} now)"
    )]
    ShardChanged {
        /// The shard's id.
        id: String,
        /// The shard file.
        path: PathBuf,
        /// SHA-256 recorded in the ledger.
        recorded: String,
        /// SHA-256 of the file now.
        found: String,
    },
    /// A shard id that cannot be used: ids name the downloaded files, so they are limited to
    /// characters that are safe in a file name on every platform.
    #[error("invalid shard id `{id}`: {reason}")]
    InvalidShardId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same shard id was given twice in one call.
    #[error("shard id `{id}` is given more than once")]
    DuplicateShardId {
        /// The id.
        id: String,
    },
    /// [`JobConfig::job_key`](crate::JobConfig::job_key) cannot identify the job.
    #[error("invalid job key `{key}`: {reason}")]
    InvalidJobKey {
        /// The key as configured.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file expiry outside what the Files API accepts (3,600 to 2,592,000 seconds).
    #[error(
        "invalid file expiry of {seconds} s: the Files API accepts 3600 (1 hour) to 2592000 (30 days)"
    )]
    InvalidExpiry {
        /// The expiry asked for, in seconds.
        seconds: u64,
    },
    /// A shard whose input tokens alone pass its model's enqueued-token limit: no batch of it
    /// can ever be accepted, so it is not submitted.
    #[error(
        "shard {id} holds {tokens} input tokens of {model}, more than its enqueued-token limit of {limit}: split it into smaller shards"
    )]
    ShardOverLimit {
        /// The shard's id.
        id: String,
        /// Its model.
        model: String,
        /// Its input tokens.
        tokens: u64,
        /// The model's limit.
        limit: u64,
    },
    /// A shard index that the ledger does not hold.
    #[error("the ledger has no shard {index}")]
    UnknownShard {
        /// The index asked for.
        index: usize,
    },
    /// A step of one shard of a job failed; the ledger holds everything done before it.
    #[error("shard {id} ({path}) failed{}", batch_suffix(batch_id.as_ref()))]
    Shard {
        /// The shard's index in the ledger.
        index: usize,
        /// The shard's id.
        id: String,
        /// The shard's input file.
        path: PathBuf,
        /// Its batch, when one was created.
        batch_id: Option<BatchId>,
        /// What went wrong.
        source: Box<Error>,
    },
}

/// An error answer of the API, with everything it told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What kind of failure the status and code mean.
    pub kind: ApiErrorKind,
    /// HTTP method of the request.
    pub method: String,
    /// Path below the base URL.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// `error.type`, e.g. `invalid_request_error`.
    pub error_type: Option<String>,
    /// `error.code`, e.g. `insufficient_quota`.
    pub code: Option<String>,
    /// `error.message`, or an excerpt of a body that was not an error object.
    pub message: String,
    /// `error.param`.
    pub param: Option<String>,
    /// The `x-request-id` response header: quote it to support.
    pub request_id: Option<String>,
    /// The delay the server asked for (`retry-after-ms` / `Retry-After`), if any.
    pub retry_after: Option<Duration>,
    /// How many attempts were made.
    pub attempts: u32,
}

/// The class of an [`ApiError`], from its status and code (as the official SDK maps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiErrorKind {
    /// 400: the request was malformed.
    BadRequest,
    /// 401: the key is missing, wrong or revoked.
    Authentication,
    /// 403: the key may not do this (organization, project, region).
    PermissionDenied,
    /// 404: no such batch or file.
    NotFound,
    /// 408: the server timed out waiting for the request.
    RequestTimeout,
    /// 409: the resource is in the wrong state (e.g. cancelling a completed batch).
    Conflict,
    /// 422: the request was well-formed but not acceptable.
    Unprocessable,
    /// 429: too many requests.
    RateLimited,
    /// 429 with code `insufficient_quota`: the account is out of credit. Final, never retried.
    QuotaExhausted,
    /// 5xx: the server failed.
    Server,
    /// Any other status.
    Other,
}

impl ApiErrorKind {
    /// Classifies a status and an `error.code` / `error.type`.
    pub fn from_status(status: u16, code: Option<&str>, error_type: Option<&str>) -> Self {
        match status {
            400 => ApiErrorKind::BadRequest,
            401 => ApiErrorKind::Authentication,
            403 => ApiErrorKind::PermissionDenied,
            404 => ApiErrorKind::NotFound,
            408 => ApiErrorKind::RequestTimeout,
            409 => ApiErrorKind::Conflict,
            422 => ApiErrorKind::Unprocessable,
            429 if code == Some("insufficient_quota")
                || error_type == Some("insufficient_quota") =>
            {
                ApiErrorKind::QuotaExhausted
            }
            429 => ApiErrorKind::RateLimited,
            500.. => ApiErrorKind::Server,
            _ => ApiErrorKind::Other,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ApiErrorKind::BadRequest => "bad request",
            ApiErrorKind::Authentication => "authentication failed",
            ApiErrorKind::PermissionDenied => "permission denied",
            ApiErrorKind::NotFound => "not found",
            ApiErrorKind::RequestTimeout => "request timed out on the server",
            ApiErrorKind::Conflict => "conflict",
            ApiErrorKind::Unprocessable => "unprocessable request",
            ApiErrorKind::RateLimited => "rate limited",
            ApiErrorKind::QuotaExhausted => "quota exhausted",
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
        if let Some(code) = &self.code {
            write!(f, ", code {code}")?;
        }
        if let Some(param) = &self.param {
            write!(f, ", param {param}")?;
        }
        if let Some(request_id) = &self.request_id {
            write!(f, ", request id {request_id}")?;
        }
        write!(f, "){}: {}", attempts_suffix(self.attempts), self.message)
    }
}

impl Error {
    /// Whether trying the same request again later could succeed: 408, 409, 429 (not
    /// `insufficient_quota`), 5xx, timeouts and connection failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(api) => matches!(
                api.kind,
                ApiErrorKind::RequestTimeout
                    | ApiErrorKind::Conflict
                    | ApiErrorKind::RateLimited
                    | ApiErrorKind::Server
            ),
            Error::Timeout { .. } | Error::Connection { .. } | Error::IncompleteDownload { .. } => {
                true
            }
            Error::Shard { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// The `x-request-id` of the failed answer, if the server sent one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(api) => api.request_id.as_deref(),
            Error::Shard { source, .. } => source.request_id(),
            _ => None,
        }
    }

    /// The API error, if the server answered with an error status.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            Error::Shard { source, .. } => source.api(),
            _ => None,
        }
    }

    /// The kind of the API error, if the server answered with an error status.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        self.api().map(|api| api.kind)
    }

    /// A short suggestion for a person, e.g. `check OPENAI_API_KEY` after a 401.
    pub fn hint(&self) -> Option<&'static str> {
        match self.api_kind()? {
            ApiErrorKind::Authentication => Some("check OPENAI_API_KEY"),
            ApiErrorKind::PermissionDenied => {
                Some("check that the key may use this organization and project")
            }
            ApiErrorKind::QuotaExhausted => Some("check the account's billing and credit"),
            ApiErrorKind::RateLimited => Some("wait a while, then run the command again"),
            _ => None,
        }
    }

    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            Error::Api(api) => api.attempts = n,
            Error::Timeout { attempts, .. } | Error::Connection { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

fn attempts_suffix(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

fn batch_suffix(batch_id: Option<&BatchId>) -> String {
    batch_id
        .map(|id| format!(" in batch {id}"))
        .unwrap_or_default()
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
    fn excerpt_is_short_and_cut_on_a_char_boundary() {
        assert_eq!(excerpt("short", 200), "short");
        let long = "é".repeat(500);
        let cut = excerpt(&long, 200);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn kinds_from_status() {
        let check = |status, code, kind| {
            assert_eq!(
                ApiErrorKind::from_status(status, code, None),
                kind,
                "{status}"
            );
        };
        check(400, None, ApiErrorKind::BadRequest);
        check(401, None, ApiErrorKind::Authentication);
        check(403, None, ApiErrorKind::PermissionDenied);
        check(404, None, ApiErrorKind::NotFound);
        check(408, None, ApiErrorKind::RequestTimeout);
        check(409, None, ApiErrorKind::Conflict);
        check(422, None, ApiErrorKind::Unprocessable);
        check(429, None, ApiErrorKind::RateLimited);
        check(
            429,
            Some("insufficient_quota"),
            ApiErrorKind::QuotaExhausted,
        );
        check(502, None, ApiErrorKind::Server);
        check(418, None, ApiErrorKind::Other);
        assert_eq!(
            ApiErrorKind::from_status(429, None, Some("insufficient_quota")),
            ApiErrorKind::QuotaExhausted
        );
    }

    #[test]
    fn api_error_display_carries_the_facts() {
        let api = ApiError {
            kind: ApiErrorKind::Authentication,
            method: "GET".into(),
            path: "/batches".into(),
            status: 401,
            error_type: Some("invalid_request_error".into()),
            code: Some("invalid_api_key".into()),
            message: "Incorrect API key provided".into(),
            param: None,
            request_id: Some("req_1".into()),
            retry_after: None,
            attempts: 1,
        };
        let err = Error::Api(Box::new(api));
        assert_eq!(
            err.to_string(),
            "GET /batches failed: authentication failed (HTTP 401, code invalid_api_key, request id req_1): Incorrect API key provided"
        );
        assert_eq!(err.hint(), Some("check OPENAI_API_KEY"));
        assert_eq!(err.request_id(), Some("req_1"));
        assert!(!err.is_retryable());
    }
}
