//! Answers one request of a batch: offline, or by forwarding it upstream, with the seeded faults.

use std::sync::Arc;
use std::time::Duration;

use batch_request::Usage;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::Error;
use crate::config::{EmulatorConfig, Faults, Responder as ResponderConfig};
use crate::ids;
use crate::offline;
use crate::validate::PendingRequest;

/// How one request ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RequestResult {
    /// HTTP 200: a line of the output file.
    Success {
        request_id: String,
        body: Value,
        usage: Usage,
    },
    /// HTTP 4xx/5xx: an error-file line with `response.body.error`.
    HttpError {
        status_code: u16,
        request_id: String,
        body: Value,
    },
    /// Never answered: an error-file line with `response: null` and `error: {code, message}`.
    NotRun { code: String, message: String },
}

impl RequestResult {
    pub(crate) fn not_run(code: &str, message: &str) -> Self {
        RequestResult::NotRun {
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// `batch_expired`.
pub(crate) const EXPIRED_MESSAGE: &str =
    "This request could not be executed before the completion window expired.";
/// `batch_cancelled`.
pub(crate) const CANCELLED_MESSAGE: &str = "The batch was cancelled before this request executed.";

/// Answers requests; shared by every batch run.
pub(crate) struct Responder {
    kind: Kind,
    faults: Faults,
}

enum Kind {
    Offline,
    Upstream {
        client: reqwest::Client,
        url: String,
        key: Option<String>,
        limit: Arc<Semaphore>,
        timeout: Duration,
    },
}

impl Responder {
    pub(crate) fn new(config: &EmulatorConfig) -> Result<Self, Error> {
        let kind = match &config.responder {
            ResponderConfig::Offline => Kind::Offline,
            ResponderConfig::Upstream {
                url,
                key,
                concurrency,
                timeout,
            } => {
                if *concurrency == 0 {
                    return Err(Error::ZeroConcurrency {
                        setting: "upstream concurrency",
                    });
                }
                let client = reqwest::Client::builder()
                    .timeout(*timeout)
                    .build()
                    .map_err(|source| Error::UpstreamClient { source })?;
                Kind::Upstream {
                    client,
                    url: format!("{}/chat/completions", url.trim_end_matches('/')),
                    key: key.clone(),
                    limit: Arc::new(Semaphore::new(*concurrency)),
                    timeout: *timeout,
                }
            }
        };
        Ok(Responder {
            kind,
            faults: config.faults.clone(),
        })
    }

    /// Answers one request; `attempt` counts the earlier runs of its `custom_id` (0 the first time).
    ///
    /// The seeded `400` is drawn from the `custom_id` alone, so it fails every attempt, as
    /// a bad parameter does; `500`, `429` and `length` are drawn again for each attempt,
    /// so a retry can succeed. Each keeps its share of requests.
    pub(crate) async fn respond(&self, request: PendingRequest, attempt: u32) -> RequestResult {
        let id = request.custom_id.as_bytes();
        let attempt_bytes = attempt.to_le_bytes();
        let faults = &self.faults;
        if ids::unit_interval(faults.seed, &[id, b"status"]) < faults.bad_request_share {
            return http_error(
                400,
                "Unsupported value: 'temperature' does not support 0 with this model. Only the default (1) value is supported.",
                "invalid_request_error",
                Some("unsupported_value"),
            );
        }
        // Scaled to the requests the 400 left, so each share stays a share of all requests.
        let left = 1.0 - faults.bad_request_share;
        let draw = ids::unit_interval(faults.seed, &[id, b"transient", &attempt_bytes]) * left;
        if draw < faults.server_error_share {
            return http_error(
                500,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
            );
        }
        if draw < faults.server_error_share + faults.rate_limit_share {
            return http_error(
                429,
                "Rate limit reached for requests. Please try again later.",
                "requests",
                Some("rate_limit_exceeded"),
            );
        }
        let force_length =
            ids::unit_interval(faults.seed, &[id, b"length", &attempt_bytes]) < faults.length_share;
        self.answer(request, force_length).await
    }

    /// Answers one chat completion request sent on its own (`POST /v1/chat/completions`)
    /// with the same offline responder or upstream as a batch's request, but without the
    /// seeded per-request faults: those are drawn per `custom_id`, which it has not.
    pub(crate) async fn respond_direct(&self, body: Value) -> RequestResult {
        let request = PendingRequest {
            custom_id: String::new(),
            body,
        };
        self.answer(request, false).await
    }

    /// The answer of the offline responder or the upstream; `force_length` cuts an offline
    /// answer in half (a seeded fault).
    async fn answer(&self, request: PendingRequest, force_length: bool) -> RequestResult {
        match &self.kind {
            Kind::Offline => {
                // Tokenising is CPU work; keep it off the threads that serve HTTP.
                tokio::task::spawn_blocking(move || offline_result(&request, force_length))
                    .await
                    .unwrap_or_else(|_| {
                        RequestResult::not_run("server_error", "The emulator's responder failed.")
                    })
            }
            Kind::Upstream {
                client,
                url,
                key,
                limit,
                timeout,
            } => {
                let _permit = limit
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                forward(client, url, key.as_deref(), *timeout, &request).await
            }
        }
    }
}

fn offline_result(request: &PendingRequest, force_length: bool) -> RequestResult {
    let answer = offline::answer(&request.custom_id, &request.body, force_length);
    let model = request
        .body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("emulator");
    let usage = Usage {
        prompt_tokens: answer.prompt_tokens,
        completion_tokens: answer.completion_tokens,
        total_tokens: answer.prompt_tokens + answer.completion_tokens,
        prompt_tokens_details: None,
        completion_tokens_details: None,
    };
    let body = json!({
        "id": format!("chatcmpl-{}", ids::hex32()),
        "object": "chat.completion",
        "created": ids::now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": answer.content,
                "refusal": null,
                "annotations": []
            },
            "logprobs": null,
            "finish_reason": answer.finish_reason
        }],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0
            }
        },
        "service_tier": "default",
        "system_fingerprint": "fp_batch_emulator"
    });
    RequestResult::Success {
        request_id: ids::hex32(),
        body,
        usage,
    }
}

fn http_error(status_code: u16, message: &str, kind: &str, code: Option<&str>) -> RequestResult {
    RequestResult::HttpError {
        status_code,
        request_id: ids::hex32(),
        body: json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    }
}

/// Sends the body to the upstream chat completions endpoint and records what came back.
///
/// A call that gets no HTTP answer is recorded as what happened: `request_timeout` past
/// `timeout`, `upstream_unreachable` when the connection fails (refused, no route, unknown
/// host), else `upstream_error`; each is logged at info level with its cause.
async fn forward(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    timeout: Duration,
    request: &PendingRequest,
) -> RequestResult {
    let mut builder = client.post(url).json(&request.body);
    if let Some(key) = key {
        builder = builder.bearer_auth(key);
    }
    let response = match builder.send().await {
        Ok(response) => response,
        Err(error) => return not_answered(url, timeout, &request.custom_id, &error),
    };
    let status_code = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map_or_else(ids::hex32, str::to_owned);
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => return not_answered(url, timeout, &request.custom_id, &error),
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    if status_code == 200 {
        return match parsed {
            Some(body) if body.is_object() => {
                let usage = body
                    .get("usage")
                    .and_then(|usage| serde_json::from_value(usage.clone()).ok())
                    .unwrap_or_default();
                RequestResult::Success {
                    request_id,
                    body,
                    usage,
                }
            }
            _ => RequestResult::HttpError {
                status_code: 502,
                request_id,
                body: json!({"error": {
                    "message": "The upstream server answered 200 with a body that is not a JSON object.",
                    "type": "upstream_error", "param": null, "code": null
                }}),
            },
        };
    }
    let body = match parsed {
        Some(body) if body.get("error").is_some_and(Value::is_object) => body,
        _ => {
            let text = String::from_utf8_lossy(&bytes);
            let message: String = text.chars().take(1000).collect();
            json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": null}})
        }
    };
    tracing::info!(
        custom_id = %request.custom_id,
        status_code,
        message = %body["error"]["message"].as_str().unwrap_or_default(),
        "upstream answered with an error"
    );
    RequestResult::HttpError {
        status_code,
        request_id,
        body,
    }
}

/// The error-file result of an upstream call that got no complete answer, logged with its cause.
fn not_answered(
    url: &str,
    timeout: Duration,
    custom_id: &str,
    error: &reqwest::Error,
) -> RequestResult {
    let cause = causes(error);
    let (code, message) = if error.is_timeout() {
        (
            "request_timeout",
            format!(
                "The upstream call to {url} timed out after {} s.",
                timeout.as_secs_f64()
            ),
        )
    } else if error.is_connect() {
        let what = if io_kind(error) == Some(std::io::ErrorKind::ConnectionRefused) {
            "connection refused".to_owned()
        } else {
            cause.clone()
        };
        (
            "upstream_unreachable",
            format!("The emulator could not connect to the upstream server at {url}: {what}."),
        )
    } else {
        (
            "upstream_error",
            format!("The upstream call to {url} failed: {cause}."),
        )
    };
    tracing::info!(%custom_id, code, error = %cause, "upstream call failed");
    RequestResult::NotRun {
        code: code.to_owned(),
        message,
    }
}

/// An error and its causes, joined with `: `.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The kind of the first I/O error among an error's causes.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}
