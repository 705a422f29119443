//! The `Client`, its configuration, and the one retrying request loop every call goes through.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use sdk_retry::{RetryEvent, RetryProgress};

use crate::error::{ApiError, ApiErrorKind, Error, excerpt};
use crate::results::ErrorResponse;
use crate::retry::{self, Failure, RetryPolicy, Verdict};

/// The API version sent as `anthropic-version` on every call.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The public API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// Everything a [`Client`] needs, passed explicitly: the library reads no environment variables
/// (a binary reads `ANTHROPIC_API_KEY` and `ANTHROPIC_BASE_URL` and fills this in).
///
/// `Debug` shows the key as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API root without `/v1`, e.g. [`DEFAULT_BASE_URL`] or an emulator's
    /// `http://127.0.0.1:PORT` (a trailing `/` is ignored).
    pub base_url: String,
    /// The API key, sent as `x-api-key`.
    pub api_key: SecretString,
    /// Beta names sent as `anthropic-beta`, comma-separated, when not empty.
    pub betas: Vec<String>,
    /// Connect, request and read timeouts.
    pub timeouts: Timeouts,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// A configuration with default timeouts and retries and no betas.
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            api_key,
            betas: Vec::new(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// Time limits of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection (default 5 s, as the official SDK).
    pub connect: Duration,
    /// A whole JSON call, answer included (default 600 s, as the official SDK).
    pub request: Duration,
    /// The longest silence while a results body is read (default 300 s). Results have no
    /// overall limit, since large files take long.
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(600),
            read: Duration::from_secs(300),
        }
    }
}

/// A client of the Message Batches API. Cheap to clone; clones share connections.
///
/// The calls live in `batches.rs` (create, retrieve, list, cancel, delete), `download.rs`
/// (results) and `messages.rs` (one message answered at once).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: Url,
    headers: HeaderMap,
    config: ClientConfig,
    retry_progress: sdk_retry::RetryHook,
}

/// Bytes of an error answer read at most; the rest is ignored.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A failed attempt, with the verdict on retrying it.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: Error,
    pub(crate) verdict: Verdict,
    /// The server may have acted on the request ([`Error::is_ambiguous`]).
    pub(crate) ambiguous: bool,
}

impl Client {
    /// Builds a client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBaseUrl`] when `base_url` is not an http(s) URL, [`Error::InvalidHeader`]
    /// when the key or a beta name cannot be sent as a header value, and [`Error::Init`] when
    /// the HTTP stack cannot start.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let base_url = Url::parse(config.base_url.trim_end_matches('/'))
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or(Error::InvalidBaseUrl)?;
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(config.api_key.expose_secret()).map_err(|_| {
            Error::InvalidHeader {
                header: "x-api-key",
            }
        })?;
        key.set_sensitive(true);
        headers.insert("x-api-key", key);
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        if !config.betas.is_empty() {
            let betas = HeaderValue::from_str(&config.betas.join(",")).map_err(|_| {
                Error::InvalidHeader {
                    header: "anthropic-beta",
                }
            })?;
            headers.insert("anthropic-beta", betas);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .read_timeout(config.timeouts.read)
            .user_agent(concat!(
                "anthropic-batch-client/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|source| Error::Init { source })?;
        Ok(Client {
            http,
            base_url,
            headers,
            config,
            retry_progress: sdk_retry::RetryHook::default(),
        })
    }

    /// The same client, telling `progress` about every retried call (and about a retried call
    /// that got through), for every clone made from it afterwards.
    #[must_use]
    pub fn with_retry_progress(mut self, progress: Arc<dyn RetryProgress>) -> Client {
        self.retry_progress = sdk_retry::RetryHook::new(progress);
        self
    }

    /// Tells the retry listener that a call got through after `retries` retries.
    pub(crate) fn recovered(&self, retries: u32, method: &Method, path: &str) {
        if retries > 0 {
            self.retry_progress
                .progress()
                .on_recovered(method.as_str(), path);
        }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The URL of `path` (starting with `/`) below the base URL.
    pub(crate) fn url(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        let joined = format!("{}{path}", self.base_url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    /// Whether `url` is on the base URL's server (scheme, host and port), so the key may go there.
    pub(crate) fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base_url.origin()
    }

    /// A request to `url` with the authentication and version headers set.
    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url).headers(self.headers.clone())
    }

    /// Sends one JSON call with retries and decodes the answer. `body` is sent as JSON when given.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<T, Error> {
        let mut retries = 0;
        loop {
            match self
                .attempt_json(&method, path, query, body.clone(), retries)
                .await
            {
                Ok(value) => return Ok(value),
                Err(failed) => self.pause(failed, &mut retries, &method, path).await?,
            }
        }
    }

    /// One attempt of a JSON call: sends it, reads the whole (small) answer and decodes it.
    ///
    /// A decoded answer ends the call, so a call retried before it is reported recovered here,
    /// for [`Client::send_json`] and for the create's own retry loop alike.
    pub(crate) async fn attempt_json<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Bytes>,
        retries: u32,
    ) -> Result<T, Failed> {
        let mut builder = self
            .request(method.clone(), self.url(path))
            .query(query)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.config.timeouts.request);
        if let Some(body) = body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = self.attempt(builder, method, path, retries).await?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|source| self.transport_failure(method, path, source, retries))?;
        let value = serde_json::from_slice(&body).map_err(|source| Failed {
            error: Error::Decode {
                method: method.to_string(),
                path: path.to_owned(),
                status,
                excerpt: self.redact(&excerpt(&String::from_utf8_lossy(&body), 200)),
                source,
            },
            verdict: Verdict::Stop,
            ambiguous: false,
        })?;
        self.recovered(retries, method, path);
        Ok(value)
    }

    /// One attempt: sends the request and turns an error status into a classified [`Failed`].
    pub(crate) async fn attempt(
        &self,
        builder: RequestBuilder,
        method: &Method,
        path: &str,
        retries: u32,
    ) -> Result<Response, Failed> {
        let response = builder
            .header(sdk_retry::RETRY_COUNT_HEADER, retries)
            .send()
            .await
            .map_err(|source| self.transport_failure(method, path, source, retries))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_limited(response, ERROR_BODY_LIMIT).await;
        let api = self.api_error(method, path, status, &headers, &body);
        let failure = Failure::Status {
            status,
            headers: &headers,
        };
        let verdict = retry::classify(&self.config.retry, failure, retries, rand::random());
        let error = Error::Api(Box::new(api));
        Err(Failed {
            ambiguous: error.is_ambiguous(),
            error,
            verdict,
        })
    }

    /// Classifies a transport error of one attempt.
    pub(crate) fn transport_failure(
        &self,
        method: &Method,
        path: &str,
        source: reqwest::Error,
        retries: u32,
    ) -> Failed {
        let (method, path) = (method.to_string(), path.to_owned());
        // The error already names the method and path; its URL is left out of it.
        let source = source.without_url();
        if source.is_builder() {
            return Failed {
                error: Error::Request {
                    method,
                    path,
                    source,
                },
                verdict: Verdict::Stop,
                ambiguous: false,
            };
        }
        // A refused connection never carried the request; anything later may have.
        let maybe_sent = !source.is_connect();
        let error = if source.is_timeout() {
            Error::Timeout {
                method,
                path,
                attempts: 1,
                maybe_sent,
                source,
            }
        } else {
            Error::Connection {
                method,
                path,
                attempts: 1,
                maybe_sent,
                source,
            }
        };
        let verdict = retry::classify(
            &self.config.retry,
            Failure::Transport,
            retries,
            rand::random(),
        );
        Failed {
            ambiguous: error.is_ambiguous(),
            error,
            verdict,
        }
    }

    /// After a failed attempt: waits and counts the retry, or gives the error up.
    pub(crate) async fn pause(
        &self,
        failed: Failed,
        retries: &mut u32,
        method: &Method,
        path: &str,
    ) -> Result<(), Error> {
        match failed.verdict {
            Verdict::Retry(delay) => {
                tracing::debug!(
                    %method, path, retry = *retries + 1, ?delay, error = %failed.error,
                    "request failed, retrying"
                );
                // Callers hear of it through `RetryProgress` and show it their way.
                self.retry_progress.progress().on_retry(&RetryEvent {
                    method: method.as_str(),
                    path,
                    attempt: *retries + 2,
                    max_attempts: self.config.retry.max_retries + 1,
                    delay,
                    error: &failed.error,
                });
                tokio::time::sleep(delay).await;
                *retries += 1;
                Ok(())
            }
            Verdict::Stop => Err(failed.error.with_attempts(*retries + 1)),
        }
    }

    /// Builds the [`ApiError`] of an error answer.
    fn api_error(
        &self,
        method: &Method,
        path: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ApiError {
        let parsed = serde_json::from_slice::<ErrorResponse>(body).ok();
        let header_id = headers
            .get("request-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let (error_type, message, body_id) = match parsed {
            Some(response) => (
                Some(response.error.error_type),
                response.error.message,
                response.request_id,
            ),
            None => (None, excerpt(&String::from_utf8_lossy(body), 200), None),
        };
        ApiError {
            kind: ApiErrorKind::from_status(status),
            method: method.to_string(),
            path: path.to_owned(),
            status,
            error_type,
            message: self.redact(&message),
            request_id: header_id.or(body_id),
            retry_after: retry::retry_after(headers, std::time::SystemTime::now()),
            attempts: 1,
        }
    }

    /// Removes the key from text the server sent, should it ever echo it.
    fn redact(&self, text: &str) -> String {
        let key = self.config.api_key.expose_secret();
        if key.len() >= 4 && text.contains(key) {
            text.replace(key, "[REDACTED]")
        } else {
            text.to_owned()
        }
    }
}

/// Reads at most `limit` bytes of a body, ignoring transport errors (the status already failed).
async fn read_limited(mut response: Response, limit: usize) -> Bytes {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
            }
            Ok(None) | Err(_) => break,
        }
    }
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-ant-very-secret-key";

    #[test]
    fn debug_redacts_the_key() {
        let config = ClientConfig::new("http://127.0.0.1:1", SecretString::from(KEY));
        let client = Client::new(config.clone()).unwrap();
        assert!(!format!("{config:?}").contains(KEY));
        assert!(!format!("{client:?}").contains(KEY));
        assert!(!format!("{client:#?}").contains(KEY));
        let listened = client.with_retry_progress(Arc::new(()));
        let debug = format!("{listened:#?}");
        assert!(!debug.contains(KEY));
        assert!(debug.contains("RetryProgress"), "{debug}");
    }

    #[test]
    fn rejects_a_bad_base_url_without_showing_it() {
        for url in ["not a url", "ftp://host", "http://u:sk-ant-x@"] {
            let config = ClientConfig::new(url, SecretString::from(KEY));
            let err = Client::new(config).unwrap_err();
            assert!(matches!(err, Error::InvalidBaseUrl), "{url}");
            assert!(!err.to_string().contains("sk-ant"));
        }
    }

    #[test]
    fn rejects_a_key_that_is_no_header_value() {
        let config = ClientConfig::new("http://127.0.0.1:1", SecretString::from("sk-\nx"));
        assert!(matches!(
            Client::new(config),
            Err(Error::InvalidHeader {
                header: "x-api-key"
            })
        ));
    }

    #[test]
    fn joins_paths_below_the_base_url() {
        let client =
            |base: &str| Client::new(ClientConfig::new(base, SecretString::from(KEY))).unwrap();
        assert_eq!(
            client("https://api.anthropic.com/")
                .url("/v1/messages/batches")
                .as_str(),
            "https://api.anthropic.com/v1/messages/batches"
        );
        assert_eq!(
            client("http://127.0.0.1:8080/proxy/")
                .url("/v1/messages/batches/x")
                .as_str(),
            "http://127.0.0.1:8080/proxy/v1/messages/batches/x"
        );
    }
}
