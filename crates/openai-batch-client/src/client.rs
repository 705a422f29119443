//! The `Client`, its configuration, and the one retrying request loop every endpoint goes through.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use sdk_retry::{RetryEvent, RetryProgress};

use crate::error::{ApiError, ApiErrorKind, Error, excerpt};
use crate::retry::{self, Failure, RetryPolicy, Verdict};

/// Everything a [`Client`] needs, passed explicitly: the library reads no environment variables.
///
/// `Debug` shows the key as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API root, e.g. `https://api.openai.com/v1` (no trailing `/` needed).
    pub base_url: String,
    /// The API key, sent as `Authorization: Bearer ...`.
    pub api_key: SecretString,
    /// Sent as `OpenAI-Organization` when set.
    pub organization: Option<String>,
    /// Sent as `OpenAI-Project` when set.
    pub project: Option<String>,
    /// Connect, request and read timeouts.
    pub timeouts: Timeouts,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// A configuration with default timeouts and retries and no organization or project.
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            api_key,
            organization: None,
            project: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// Time limits of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection (default 5 s).
    pub connect: Duration,
    /// A whole JSON request, answer included (default 600 s, as the official SDK).
    pub request: Duration,
    /// The longest silence while an upload's answer or a download's body is awaited (default
    /// 300 s). Transfers have no overall limit, since large files take long.
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

/// A client of the Files, Batches and Chat Completions APIs. Cheap to clone; clones share connections.
///
/// Methods live beside their resource: files in `files.rs`, batches in `batches.rs`, chat
/// completions in `chat.rs`.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: crate::url::BaseUrl,
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
    /// The server may have acted on the request (timeout, dropped connection, 5xx).
    pub(crate) ambiguous: bool,
}

impl Client {
    /// Builds a client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBaseUrl`] when `base_url` does not parse, [`Error::InvalidHeader`] when
    /// the key, organization or project cannot be sent as a header value, and
    /// [`Error::Init`] when the HTTP stack cannot start.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let base_url = crate::url::BaseUrl::new(&config.base_url);
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.api_key.expose_secret()))
            .map_err(|_| Error::InvalidHeader {
                header: "Authorization",
            })?;
        auth.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, auth);
        for (header, value) in [
            ("OpenAI-Organization", &config.organization),
            ("OpenAI-Project", &config.project),
        ] {
            if let Some(value) = value {
                let value =
                    HeaderValue::from_str(value).map_err(|_| Error::InvalidHeader { header })?;
                headers.insert(header, value);
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .read_timeout(config.timeouts.read)
            .user_agent(concat!("openai-batch-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| Error::Init { source })?;
        // Building a request is the one way to validate a URL with reqwest's own error type.
        http.get(base_url.join("/"))
            .build()
            .map_err(|source| Error::InvalidBaseUrl {
                url: crate::url::redacted_url(&config.base_url),
                source,
            })?;
        Ok(Client {
            http,
            base_url,
            headers,
            config,
            retry_progress: sdk_retry::RetryHook::default(),
        })
    }

    /// The same client, telling `progress` about every retried request (and about a retried
    /// request that got through), for every clone made from it afterwards.
    #[must_use]
    pub fn with_retry_progress(mut self, progress: Arc<dyn RetryProgress>) -> Client {
        self.retry_progress = sdk_retry::RetryHook::new(progress);
        self
    }

    /// Tells the retry listener that a request got through after `retries` retries.
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

    /// A request to `path` below the base URL, with the authentication headers set.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.base_url.join(path))
            .headers(self.headers.clone())
    }

    /// How many retries a request with this method may take.
    pub(crate) fn max_retries(&self, method: &Method) -> u32 {
        if *method == Method::GET {
            self.config.retry.max_retries_get
        } else {
            self.config.retry.max_retries_post
        }
    }

    /// Sends one JSON request with retries and decodes the answer.
    /// `GET path?after=..&limit=..` (plus `extra` query pairs): one page of a list endpoint.
    pub(crate) async fn list_page<T: DeserializeOwned>(
        &self,
        path: &str,
        extra: &[(&str, &str)],
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<T, Error> {
        self.send_json(Method::GET, path, |mut builder| {
            builder = builder.query(extra);
            if let Some(after) = after {
                builder = builder.query(&[("after", after)]);
            }
            if let Some(limit) = limit {
                builder = builder.query(&[("limit", limit)]);
            }
            builder
        })
        .await
    }

    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, Error> {
        let max_retries = self.max_retries(&method);
        let mut retries = 0;
        loop {
            let builder =
                build(self.request(method.clone(), path)).timeout(self.config.timeouts.request);
            match self
                .attempt_json(builder, &method, path, retries, max_retries)
                .await
            {
                Ok(value) => {
                    self.recovered(retries, &method, path);
                    return Ok(value);
                }
                Err(failed) => self.pause(failed, &mut retries, &method, path).await?,
            }
        }
    }

    /// One attempt of a JSON request: sends it, reads the whole (small) answer and decodes it.
    pub(crate) async fn attempt_json<T: DeserializeOwned>(
        &self,
        builder: RequestBuilder,
        method: &Method,
        path: &str,
        retries: u32,
        max_retries: u32,
    ) -> Result<T, Failed> {
        let response = self
            .attempt(builder, method, path, retries, max_retries)
            .await?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|source| self.transport_failure(method, path, source, retries, max_retries))?;
        self.decode(method, path, status, &body)
            .map_err(|error| Failed {
                error,
                verdict: Verdict::Stop,
                ambiguous: false,
            })
    }

    /// One attempt: sends the request and turns an error status into a classified [`Failed`].
    pub(crate) async fn attempt(
        &self,
        builder: RequestBuilder,
        method: &Method,
        path: &str,
        retries: u32,
        max_retries: u32,
    ) -> Result<Response, Failed> {
        let response = builder
            .header(sdk_retry::RETRY_COUNT_HEADER, retries)
            .send()
            .await
            .map_err(|source| self.transport_failure(method, path, source, retries, max_retries))?;
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
            quota_exhausted: api.kind == ApiErrorKind::QuotaExhausted,
        };
        let verdict = retry::classify(
            &self.config.retry,
            failure,
            retries,
            max_retries,
            rand::random(),
        );
        Err(Failed {
            error: Error::Api(Box::new(api)),
            verdict,
            ambiguous: status >= 500,
        })
    }

    /// Classifies a transport error of one attempt.
    pub(crate) fn transport_failure(
        &self,
        method: &Method,
        path: &str,
        source: reqwest::Error,
        retries: u32,
        max_retries: u32,
    ) -> Failed {
        let (method, path) = (method.to_string(), path.to_owned());
        // The error already names the method and path; its URL could carry credentials.
        let source = source.without_url();
        let error = if source.is_builder() {
            Error::Request {
                method,
                path,
                source,
            }
        } else if source.is_timeout() {
            Error::Timeout {
                method,
                path,
                attempts: 1,
                source,
            }
        } else {
            Error::Connection {
                method,
                path,
                attempts: 1,
                source,
            }
        };
        if matches!(error, Error::Request { .. }) {
            return Failed {
                error,
                verdict: Verdict::Stop,
                ambiguous: false,
            };
        }
        let verdict = retry::classify(
            &self.config.retry,
            Failure::Transport,
            retries,
            max_retries,
            rand::random(),
        );
        Failed {
            error,
            verdict,
            ambiguous: true,
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
                // Callers hear of it through `RetryProgress` and show it their way.
                tracing::debug!(
                    %method, path, retry = *retries + 1, ?delay, error = %failed.error,
                    "request failed, retrying"
                );
                self.retry_progress.progress().on_retry(&RetryEvent {
                    method: method.as_str(),
                    path,
                    attempt: *retries + 2,
                    max_attempts: self.max_retries(method) + 1,
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

    /// Decodes a successful JSON answer.
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        status: u16,
        body: &[u8],
    ) -> Result<T, Error> {
        serde_json::from_slice(body).map_err(|source| Error::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            status,
            excerpt: self.redact(&excerpt(&String::from_utf8_lossy(body), 200)),
            source,
        })
    }

    /// The request timeout of JSON calls.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.config.timeouts.request
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
        let object = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .and_then(|body| body.error);
        let (message, error_type, code, param) = match object {
            Some(object) => (
                object.message.unwrap_or_default(),
                object.error_type.and_then(value_string),
                object.code.and_then(value_string),
                object.param.and_then(value_string),
            ),
            None => (
                excerpt(&String::from_utf8_lossy(body), 200),
                None,
                None,
                None,
            ),
        };
        let kind = ApiErrorKind::from_status(status, code.as_deref(), error_type.as_deref());
        ApiError {
            kind,
            method: method.to_string(),
            path: path.to_owned(),
            status,
            error_type,
            code,
            message: self.redact(&message),
            param,
            request_id: headers
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
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

/// `{"error": {...}}`, every field optional.
#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    message: Option<String>,
    #[serde(rename = "type")]
    error_type: Option<serde_json::Value>,
    param: Option<serde_json::Value>,
    code: Option<serde_json::Value>,
}

/// A JSON string as itself, a number as its text, `null` as absent.
fn value_string(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text),
        other => Some(other.to_string()),
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

    #[test]
    fn debug_redacts_the_key() {
        let config = ClientConfig::new(
            "http://127.0.0.1:1/v1",
            SecretString::from("sk-very-secret-key"),
        );
        let client = Client::new(config.clone()).unwrap();
        assert!(!format!("{config:?}").contains("sk-very-secret-key"));
        assert!(!format!("{client:?}").contains("sk-very-secret-key"));
    }

    #[test]
    fn rejects_a_bad_base_url() {
        let config = ClientConfig::new("not a url", SecretString::from("sk-x"));
        assert!(matches!(
            Client::new(config),
            Err(Error::InvalidBaseUrl { .. })
        ));
    }

    #[test]
    fn rejects_a_key_that_is_no_header_value() {
        let config = ClientConfig::new("http://127.0.0.1:1", SecretString::from("sk-\nx"));
        assert!(matches!(
            Client::new(config),
            Err(Error::InvalidHeader {
                header: "Authorization"
            })
        ));
    }
}
