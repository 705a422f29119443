//! The three JSONL line kinds of the Batch API: request, output and error lines.
//!
//! This module is the one owner of the format. Output and error files share one
//! line type, [`ResultLine`], because an error-file line has one of two shapes that
//! both fit it: an HTTP failure (`response.status_code` 4xx/5xx with
//! `response.body.error`, `error: null`) or a non-HTTP failure (`response: null`,
//! `error: {code, message}`, e.g. `batch_expired`).
//! Parsing tolerates unknown fields and missing optional ones.

use serde::{Deserialize, Serialize};

/// The endpoint every lesson request goes to, as written in a request line's `url`.
pub const CHAT_COMPLETIONS_URL: &str = "/v1/chat/completions";

/// One line of a Batch API input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    /// The caller's id for the request, unique within the job (`lesson_M0-L001`).
    pub custom_id: String,
    /// Always `POST`.
    pub method: String,
    /// The endpoint, e.g. [`CHAT_COMPLETIONS_URL`].
    pub url: String,
    /// The chat completion request body.
    pub body: ChatRequest,
}

/// A chat completion request body (the subset we write; anything else is kept in `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model name, e.g. `gpt-4o-mini`.
    pub model: String,
    /// The conversation: an optional system message, then the user prompt.
    pub messages: Vec<ChatMessage>,
    /// Upper bound on generated tokens, reasoning tokens included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature; omitted unless set, since reasoning models accept only the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Any other body parameter, kept as is.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One chat message of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

/// One line of a Batch API output file or error file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    /// The batch request id (`batch_req_...`), opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The caller's id: the only join key back to the request.
    pub custom_id: String,
    /// The HTTP response, `null` when the request never ran.
    #[serde(default)]
    pub response: Option<ResponseEnvelope>,
    /// A non-HTTP failure (`batch_expired`, `batch_cancelled`, `request_timeout`, ...).
    #[serde(default)]
    pub error: Option<LineError>,
}

/// The HTTP response recorded for one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    /// 200 in the output file, 4xx/5xx in the error file.
    pub status_code: u16,
    /// The upstream request id; log it for support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A chat completion on success, an `{"error": {...}}` object otherwise.
    #[serde(default)]
    pub body: ResponseBody,
}

/// The response body: the fields of a chat completion and of an error body, all optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseBody {
    /// The completion id (`chatcmpl-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The model that answered, often a dated snapshot (`gpt-4o-mini-2024-07-18`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The answers; we read `choices[0]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    /// Token usage of this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The API error, on a 4xx/5xx line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

/// One answer of a chat completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Position among the choices.
    #[serde(default)]
    pub index: u32,
    /// The assistant message.
    #[serde(default)]
    pub message: AssistantMessage,
    /// `stop` (finished), `length` (truncated), `content_filter`, `tool_calls`, ...
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The assistant's message of a choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// Usually `assistant`.
    #[serde(default)]
    pub role: Option<String>,
    /// The answer text; `null` for a refusal.
    #[serde(default)]
    pub content: Option<String>,
    /// The refusal text, when the model refused.
    #[serde(default)]
    pub refusal: Option<String>,
}

/// Token usage of one request (chat completion `usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens, reasoning tokens included.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Sum of the two.
    #[serde(default)]
    pub total_tokens: u64,
    /// The cached part of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// The reasoning part of the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

impl Usage {
    /// Cached input tokens, 0 when not reported.
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .map_or(0, |details| details.cached_tokens)
    }
}

/// Details of the input tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Tokens served from the prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

/// Details of the output tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    /// Tokens spent on hidden reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

/// The OpenAI error object (`{"message", "type", "param", "code"}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// E.g. `invalid_request_error`, `server_error`, `rate_limit_error`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The parameter at fault, if any.
    #[serde(default)]
    pub param: Option<String>,
    /// A machine-readable code, if any.
    #[serde(default)]
    pub code: Option<String>,
}

/// A non-HTTP failure of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// E.g. `batch_expired`, `batch_cancelled`, `request_timeout`; any code is accepted.
    #[serde(default)]
    pub code: Option<String>,
    /// Human-readable message.
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_success_line_with_unknown_fields() {
        let line = r##"{"id": "batch_req_1", "custom_id": "lesson_M0-L001", "response": {"status_code": 200, "request_id": "abc", "body": {"id": "chatcmpl-1", "object": "chat.completion", "created": 1736489777, "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "message": {"role": "assistant", "content": "# Lesson", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}], "usage": {"prompt_tokens": 812, "completion_tokens": 1650, "total_tokens": 2462, "prompt_tokens_details": {"cached_tokens": 12, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}, "service_tier": "default"}}, "error": null}"##;
        let parsed: ResultLine = serde_json::from_str(line).unwrap();
        let response = parsed.response.unwrap();
        assert_eq!(response.status_code, 200);
        let choice = &response.body.choices[0];
        assert_eq!(choice.message.content.as_deref(), Some("# Lesson"));
        assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
        assert_eq!(response.body.usage.unwrap().cached_tokens(), 12);
        assert!(parsed.error.is_none());
    }

    #[test]
    fn parses_both_error_shapes() {
        let http = r#"{"id": "batch_req_2", "custom_id": "lesson_M0-L002", "response": {"status_code": 400, "request_id": "r", "body": {"error": {"message": "bad temperature", "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}}, "error": null}"#;
        let parsed: ResultLine = serde_json::from_str(http).unwrap();
        let error = parsed.response.unwrap().body.error.unwrap();
        assert_eq!(error.message, "bad temperature");
        assert_eq!(error.code.as_deref(), Some("unsupported_value"));

        let expired = r#"{"id": "batch_req_3", "custom_id": "lesson_M0-L003", "response": null, "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}"#;
        let parsed: ResultLine = serde_json::from_str(expired).unwrap();
        assert!(parsed.response.is_none());
        assert_eq!(parsed.error.unwrap().code.as_deref(), Some("batch_expired"));
    }

    #[test]
    fn request_line_keeps_field_order_and_extra_params() {
        let line = RequestLine {
            custom_id: "lesson_M0-L001".into(),
            method: "POST".into(),
            url: CHAT_COMPLETIONS_URL.into(),
            body: ChatRequest {
                model: "gpt-4o-mini".into(),
                messages: vec![ChatMessage {
                    role: "user".into(),
                    content: "Écris “ça”".into(),
                }],
                max_completion_tokens: Some(16384),
                temperature: None,
                extra: serde_json::Map::new(),
            },
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"custom_id":"lesson_M0-L001","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Écris “ça”"}],"max_completion_tokens":16384}}"#
        );
        let back: RequestLine = serde_json::from_str(&text).unwrap();
        assert_eq!(back, line);
    }
}
