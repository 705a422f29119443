//! The emulator's settings: address, key, storage, timings, responder and faults.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// How an [`Emulator`](crate::Emulator) behaves. Plain data: build it with
/// `EmulatorConfig::default()` and change the fields you care about.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Where to listen; the default `127.0.0.1:0` picks a free port.
    pub addr: SocketAddr,
    /// The one accepted Bearer token; `None` accepts any non-empty token.
    pub api_key: Option<String>,
    /// Keeps files and batch state on disk so a restarted emulator knows them;
    /// `None` keeps state in memory (file contents still live in a private temp dir).
    pub data_dir: Option<PathBuf>,
    /// How long each lifecycle step takes.
    pub timing: Timing,
    /// How many requests of one batch run at the same time.
    pub concurrency: usize,
    /// How long a batch may run before it expires; 24 h like the real API.
    /// `expires_at` is `created_at` plus this, rounded up to whole seconds.
    pub completion_window: Duration,
    /// Largest accepted `purpose=batch` upload, in bytes (209,715,200 like the real API).
    pub max_file_bytes: u64,
    /// Most requests in one input file (50,000 like the real API).
    pub max_requests: usize,
    /// Most prompt tokens enqueued per model, over all batches past validation and not
    /// yet terminal, like the real API's per-organization limit (2,000,000 for
    /// gpt-4o-mini at Tier 1); a batch that would pass it fails with
    /// `token_limit_exceeded`. `None`, the default, has no limit.
    pub enqueued_token_limit: Option<u64>,
    /// Who answers the requests.
    pub responder: Responder,
    /// Failures to inject, for tests.
    pub faults: Faults,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_key: None,
            data_dir: None,
            timing: Timing::default(),
            concurrency: 32,
            completion_window: Duration::from_secs(24 * 60 * 60),
            max_file_bytes: 209_715_200,
            max_requests: 50_000,
            enqueued_token_limit: None,
            responder: Responder::Offline,
            faults: Faults::default(),
        }
    }
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("addr", &self.addr)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("data_dir", &self.data_dir)
            .field("timing", &self.timing)
            .field("concurrency", &self.concurrency)
            .field("completion_window", &self.completion_window)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("max_requests", &self.max_requests)
            .field("enqueued_token_limit", &self.enqueued_token_limit)
            .field("responder", &self.responder)
            .field("faults", &self.faults)
            .finish()
    }
}

impl EmulatorConfig {
    /// A configuration for tests: every step takes a few milliseconds.
    pub fn fast() -> Self {
        EmulatorConfig {
            timing: Timing::fast(),
            ..EmulatorConfig::default()
        }
    }
}

/// How long each lifecycle step takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Time spent in `validating` before the file is checked.
    pub validation: Duration,
    /// Mean time one request takes; each request waits between half and one and a
    /// half times this (a deterministic jitter), so results finish out of input order.
    pub per_request: Duration,
    /// Time spent in `finalizing`.
    pub finalizing: Duration,
}

impl Default for Timing {
    /// A few hundred requests finish in a couple of seconds.
    fn default() -> Self {
        Timing {
            validation: Duration::from_millis(500),
            per_request: Duration::from_millis(50),
            finalizing: Duration::from_millis(500),
        }
    }
}

impl Timing {
    /// Milliseconds everywhere, for tests.
    pub fn fast() -> Self {
        Timing {
            validation: Duration::from_millis(10),
            per_request: Duration::from_millis(2),
            finalizing: Duration::from_millis(10),
        }
    }

    /// No waiting at all, for benchmarks.
    pub fn instant() -> Self {
        Timing {
            validation: Duration::ZERO,
            per_request: Duration::ZERO,
            finalizing: Duration::ZERO,
        }
    }
}

/// Who answers the requests of a batch.
#[derive(Clone, Default)]
pub enum Responder {
    /// A deterministic, offline, lesson-shaped Markdown answer with real token counts.
    #[default]
    Offline,
    /// Forward each request body to an OpenAI-compatible `POST {url}/chat/completions`
    /// (Ollama, vLLM, llama.cpp...).
    Upstream {
        /// Base URL, e.g. `http://127.0.0.1:11434/v1`.
        url: String,
        /// Sent as `Authorization: Bearer <key>` when set.
        key: Option<String>,
        /// Most upstream calls in flight at once, over all batches.
        concurrency: usize,
        /// Time limit of one upstream call; past it the request fails with `request_timeout`.
        timeout: Duration,
    },
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Responder::Offline => f.write_str("Offline"),
            Responder::Upstream {
                url,
                key,
                concurrency,
                timeout,
            } => f
                .debug_struct("Upstream")
                .field("url", url)
                .field("key", &key.as_ref().map(|_| "<redacted>"))
                .field("concurrency", concurrency)
                .field("timeout", timeout)
                .finish(),
        }
    }
}

/// Failures to inject, deterministic for a given seed.
///
/// The 500, 429 and `length` faults are drawn anew for each attempt of a `custom_id` (its
/// runs are counted over all batches of the emulator, and kept in the data directory), so
/// a retry of a failed request can succeed; the 400 fails every attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Seeds the per-request choices below (hashed with each `custom_id`, and its attempt).
    pub seed: u64,
    /// Share (0 to 1) of requests answered with HTTP 500 (error file).
    pub server_error_share: f64,
    /// Share (0 to 1) of requests answered with HTTP 429 (error file).
    pub rate_limit_share: f64,
    /// Share (0 to 1) of requests answered with HTTP 400 `unsupported_value` (error file): a
    /// failure that resubmitting cannot fix, so the same requests fail on every attempt.
    pub bad_request_share: f64,
    /// Share (0 to 1) of requests that finish with `finish_reason: "length"`, their answer
    /// cut to half its tokens (offline responder only; upstream answers are kept as they are).
    pub length_share: f64,
    /// Faults of the API itself, applied to the first calls of an endpoint.
    pub http: Vec<HttpFault>,
    /// The first this many `GET /files/{id}/content` downloads stop midway: the
    /// connection closes after half of the bytes.
    pub cut_downloads: u32,
}

/// A fault of the API itself: the first `times` calls to `endpoint` fail with `kind`.
///
/// Several faults on one endpoint apply one after the other, in list order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpFault {
    /// The endpoint whose calls fail.
    pub endpoint: Endpoint,
    /// How they fail.
    pub kind: HttpFaultKind,
    /// How many calls fail.
    pub times: u32,
}

/// How a faulted API call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFaultKind {
    /// HTTP 429 with `Retry-After` (whole seconds, rounded up) and `retry-after-ms`
    /// (`rate_limit_error` in Anthropic's shape on the Message Batches endpoints).
    RateLimited {
        /// The advertised wait.
        retry_after: Duration,
    },
    /// HTTP 500 with the OpenAI `server_error` body (Anthropic's `api_error` one on the
    /// Message Batches endpoints).
    ServerError,
    /// The connection closes without any response.
    DropConnection,
}

/// One endpoint of the API, named like the official SDK's methods (`batches.create`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /files`.
    UploadFile,
    /// `GET /files`.
    ListFiles,
    /// `GET /files/{id}`.
    RetrieveFile,
    /// `DELETE /files/{id}`.
    DeleteFile,
    /// `GET /files/{id}/content`.
    FileContent,
    /// `POST /batches`.
    CreateBatch,
    /// `GET /batches`.
    ListBatches,
    /// `GET /batches/{id}`.
    RetrieveBatch,
    /// `POST /batches/{id}/cancel`.
    CancelBatch,
    /// `POST /messages/batches` (Anthropic).
    CreateMessageBatch,
    /// `GET /messages/batches` (Anthropic).
    ListMessageBatches,
    /// `GET /messages/batches/{id}` (Anthropic).
    RetrieveMessageBatch,
    /// `POST /messages/batches/{id}/cancel` (Anthropic).
    CancelMessageBatch,
    /// `GET /messages/batches/{id}/results` (Anthropic).
    MessageBatchResults,
    /// `DELETE /messages/batches/{id}` (Anthropic).
    DeleteMessageBatch,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 15] = [
        Endpoint::UploadFile,
        Endpoint::ListFiles,
        Endpoint::RetrieveFile,
        Endpoint::DeleteFile,
        Endpoint::FileContent,
        Endpoint::CreateBatch,
        Endpoint::ListBatches,
        Endpoint::RetrieveBatch,
        Endpoint::CancelBatch,
        Endpoint::CreateMessageBatch,
        Endpoint::ListMessageBatches,
        Endpoint::RetrieveMessageBatch,
        Endpoint::CancelMessageBatch,
        Endpoint::MessageBatchResults,
        Endpoint::DeleteMessageBatch,
    ];

    /// The SDK-style name: `files.create`, `files.list`, `files.retrieve`, `files.delete`,
    /// `files.content`, `batches.create`, `batches.list`, `batches.retrieve`, `batches.cancel`,
    /// and Anthropic's `messages.batches.create`, `.list`, `.retrieve`, `.cancel`, `.results`,
    /// `.delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::UploadFile => "files.create",
            Endpoint::ListFiles => "files.list",
            Endpoint::RetrieveFile => "files.retrieve",
            Endpoint::DeleteFile => "files.delete",
            Endpoint::FileContent => "files.content",
            Endpoint::CreateBatch => "batches.create",
            Endpoint::ListBatches => "batches.list",
            Endpoint::RetrieveBatch => "batches.retrieve",
            Endpoint::CancelBatch => "batches.cancel",
            Endpoint::CreateMessageBatch => "messages.batches.create",
            Endpoint::ListMessageBatches => "messages.batches.list",
            Endpoint::RetrieveMessageBatch => "messages.batches.retrieve",
            Endpoint::CancelMessageBatch => "messages.batches.cancel",
            Endpoint::MessageBatchResults => "messages.batches.results",
            Endpoint::DeleteMessageBatch => "messages.batches.delete",
        }
    }

    /// Which endpoint a request goes to, from its method and path (`/v1/...`).
    pub fn classify(method: &str, path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix("/v1/")?.trim_end_matches('/');
        let parts: Vec<&str> = rest.split('/').collect();
        let endpoint = match (method, parts.as_slice()) {
            ("POST", ["files"]) => Endpoint::UploadFile,
            ("GET", ["files"]) => Endpoint::ListFiles,
            ("GET", ["files", _]) => Endpoint::RetrieveFile,
            ("DELETE", ["files", _]) => Endpoint::DeleteFile,
            ("GET", ["files", _, "content"]) => Endpoint::FileContent,
            ("POST", ["batches"]) => Endpoint::CreateBatch,
            ("GET", ["batches"]) => Endpoint::ListBatches,
            ("GET", ["batches", _]) => Endpoint::RetrieveBatch,
            ("POST", ["batches", _, "cancel"]) => Endpoint::CancelBatch,
            ("POST", ["messages", "batches"]) => Endpoint::CreateMessageBatch,
            ("GET", ["messages", "batches"]) => Endpoint::ListMessageBatches,
            ("GET", ["messages", "batches", _]) => Endpoint::RetrieveMessageBatch,
            ("DELETE", ["messages", "batches", _]) => Endpoint::DeleteMessageBatch,
            ("POST", ["messages", "batches", _, "cancel"]) => Endpoint::CancelMessageBatch,
            ("GET", ["messages", "batches", _, "results"]) => Endpoint::MessageBatchResults,
            _ => return None,
        };
        Some(endpoint)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Endpoint::ALL
            .into_iter()
            .find(|endpoint| endpoint.as_str() == name)
            .ok_or_else(|| Error::UnknownEndpoint {
                name: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_round_trip() {
        for endpoint in Endpoint::ALL {
            assert_eq!(endpoint.as_str().parse::<Endpoint>().unwrap(), endpoint);
        }
        assert!(matches!(
            "files.upload".parse::<Endpoint>(),
            Err(Error::UnknownEndpoint { name }) if name == "files.upload"
        ));
    }

    #[test]
    fn classifies_paths() {
        let check = |method, path, expected| {
            assert_eq!(
                Endpoint::classify(method, path),
                expected,
                "{method} {path}"
            );
        };
        check("POST", "/v1/files", Some(Endpoint::UploadFile));
        check(
            "GET",
            "/v1/files/file-1/content",
            Some(Endpoint::FileContent),
        );
        check("DELETE", "/v1/files/file-1", Some(Endpoint::DeleteFile));
        check(
            "POST",
            "/v1/batches/batch_1/cancel",
            Some(Endpoint::CancelBatch),
        );
        check("GET", "/v1/batches", Some(Endpoint::ListBatches));
        check(
            "GET",
            "/v1/messages/batches/msgbatch_1/results",
            Some(Endpoint::MessageBatchResults),
        );
        check(
            "DELETE",
            "/v1/messages/batches/msgbatch_1",
            Some(Endpoint::DeleteMessageBatch),
        );
        check("POST", "/v1/messages", None);
        check("GET", "/v1/models", None);
        check("PUT", "/v1/batches", None);
        check("GET", "/files", None);
    }

    #[test]
    fn debug_redacts_keys() {
        let config = EmulatorConfig {
            api_key: Some("sk-secret".into()),
            responder: Responder::Upstream {
                url: "http://127.0.0.1:1/v1".into(),
                key: Some("sk-upstream".into()),
                concurrency: 1,
                timeout: Duration::from_secs(1),
            },
            ..EmulatorConfig::default()
        };
        let text = format!("{config:?}");
        assert!(
            !text.contains("sk-secret") && !text.contains("sk-upstream"),
            "{text}"
        );
    }
}
