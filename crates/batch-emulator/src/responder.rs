//! Answers one request of a batch: offline, or by forwarding it upstream, with the seeded faults.

use std::sync::Arc;

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
/// `request_timeout`.
pub(crate) const TIMEOUT_MESSAGE: &str = "The underlying call to the model timed out.";

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
                }
            }
        };
        Ok(Responder {
            kind,
            faults: config.faults.clone(),
        })
    }

    /// Answers one request.
    pub(crate) async fn respond(&self, request: PendingRequest) -> RequestResult {
        let id = request.custom_id.as_bytes();
        let status_draw = ids::unit_interval(self.faults.seed, &[id, b"status"]);
        if status_draw < self.faults.server_error_share {
            return http_error(
                500,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
            );
        }
        if status_draw < self.faults.server_error_share + self.faults.rate_limit_share {
            return http_error(
                429,
                "Rate limit reached for requests. Please try again later.",
                "requests",
                Some("rate_limit_exceeded"),
            );
        }
        let shares = self.faults.server_error_share + self.faults.rate_limit_share;
        if status_draw < shares + self.faults.bad_request_share {
            return http_error(
                400,
                "Unsupported value: 'temperature' does not support 0 with this model. Only the default (1) value is supported.",
                "invalid_request_error",
                Some("unsupported_value"),
            );
        }
        match &self.kind {
            Kind::Offline => {
                let force_length = ids::unit_interval(self.faults.seed, &[id, b"length"])
                    < self.faults.length_share;
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
            } => {
                let _permit = limit
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                forward(client, url, key.as_deref(), &request).await
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
async fn forward(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    request: &PendingRequest,
) -> RequestResult {
    let mut builder = client.post(url).json(&request.body);
    if let Some(key) = key {
        builder = builder.bearer_auth(key);
    }
    let response = match builder.send().await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(custom_id = %request.custom_id, %error, "upstream call failed");
            return RequestResult::not_run("request_timeout", TIMEOUT_MESSAGE);
        }
    };
    let status_code = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map_or_else(ids::hex32, str::to_owned);
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::debug!(custom_id = %request.custom_id, %error, "upstream body failed");
            return RequestResult::not_run("request_timeout", TIMEOUT_MESSAGE);
        }
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
    RequestResult::HttpError {
        status_code,
        request_id,
        body,
    }
}
