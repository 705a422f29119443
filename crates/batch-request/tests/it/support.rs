//! Shared inputs: the Data Governance fixture, the legacy template, a chat request validator.

use std::path::{Path, PathBuf};

use batch_request::{LessonRequest, RequestSettings, Template};
use curriculum_parser::Curriculum;
use serde_json::Value;

pub(crate) fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(path)
}

pub(crate) const DATAGOV: &str = "datagov/Content Structure.md";
pub(crate) const LEGACY_TEMPLATE: &str = "legacy/lesson_prompt_template.md";

/// The Data Governance outline, as text and parsed.
pub(crate) fn datagov() -> (String, Curriculum) {
    let path = fixture(DATAGOV);
    let text = std::fs::read_to_string(&path).unwrap();
    let curriculum = curriculum_parser::parse(&text, &path).unwrap();
    (text, curriculum)
}

/// Every lesson of the Data Governance outline, built with `template`.
pub(crate) fn build_datagov(template: &Template, settings: &RequestSettings) -> Vec<LessonRequest> {
    let (text, curriculum) = datagov();
    batch_request::build_requests(&curriculum, &text, curriculum.lessons(), template, settings)
        .unwrap()
}

/// Checks one request line against `CreateChatCompletionRequest` and the batch line format
/// (`shared/reference/openai-openapi.yaml`, `openai-batch-api.md` section 3); returns the
/// problems found.
pub(crate) fn validate_request_line(line: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(err) => return vec![format!("not JSON: {err}")],
    };
    let Some(object) = value.as_object() else {
        return vec!["line is not an object".into()];
    };
    for key in object.keys() {
        if !["custom_id", "method", "url", "body"].contains(&key.as_str()) {
            problems.push(format!("unknown line key `{key}`"));
        }
    }
    let custom_id = object
        .get("custom_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    if custom_id.is_empty()
        || custom_id.len() > 64
        || !custom_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        problems.push(format!(
            "custom_id `{custom_id}` is not 1-64 of [A-Za-z0-9_-]"
        ));
    }
    if object.get("method").and_then(Value::as_str) != Some("POST") {
        problems.push("method is not POST".into());
    }
    if object.get("url").and_then(Value::as_str) != Some("/v1/chat/completions") {
        problems.push("url is not /v1/chat/completions".into());
    }
    let Some(body) = object.get("body").and_then(Value::as_object) else {
        problems.push("body is not an object".into());
        return problems;
    };
    // The properties of CreateChatCompletionRequest, its allOf CreateModelResponseProperties
    // and that one's ModelResponseProperties.
    const KNOWN: &[&str] = &[
        "messages",
        "model",
        "service_tier",
        "modalities",
        "verbosity",
        "reasoning_effort",
        "max_completion_tokens",
        "frequency_penalty",
        "presence_penalty",
        "web_search_options",
        "top_logprobs",
        "response_format",
        "audio",
        "store",
        "moderation",
        "stream",
        "stop",
        "logit_bias",
        "logprobs",
        "max_tokens",
        "n",
        "prediction",
        "seed",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "function_call",
        "functions",
        "metadata",
        "temperature",
        "top_p",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
    ];
    for key in body.keys() {
        if !KNOWN.contains(&key.as_str()) {
            problems.push(format!("unknown body key `{key}`"));
        }
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        problems.push("stream is not supported in batches".into());
    }
    if !body.get("model").is_some_and(Value::is_string) {
        problems.push("model is missing or not a string".into());
    }
    match body.get("messages").and_then(Value::as_array) {
        None => problems.push("messages is missing or not an array".into()),
        Some(messages) if messages.is_empty() => problems.push("messages is empty".into()),
        Some(messages) => {
            for (index, message) in messages.iter().enumerate() {
                let role = message.get("role").and_then(Value::as_str);
                if !matches!(role, Some("system" | "developer" | "user" | "assistant")) {
                    problems.push(format!("messages[{index}].role is {role:?}"));
                }
                if !message.get("content").is_some_and(Value::is_string) {
                    problems.push(format!("messages[{index}].content is not a string"));
                }
                if let Some(map) = message.as_object() {
                    for key in map.keys() {
                        if !["role", "content", "name"].contains(&key.as_str()) {
                            problems.push(format!("messages[{index}] has unknown key `{key}`"));
                        }
                    }
                }
            }
        }
    }
    match body.get("max_completion_tokens") {
        None | Some(Value::Null) => {}
        Some(value) if value.is_u64() => {}
        Some(other) => problems.push(format!("max_completion_tokens {other} is not an integer")),
    }
    match body.get("temperature") {
        None | Some(Value::Null) => {}
        Some(value) if value.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t)) => {}
        Some(other) => problems.push(format!("temperature {other} is not a number in 0..=2")),
    }
    problems
}

/// The request lines of `requests`, serialized as the shard writer does.
pub(crate) fn to_jsonl(requests: &[LessonRequest]) -> String {
    let mut out = Vec::new();
    batch_request::write_request_lines(&mut out, requests.iter().map(|r| &r.request)).unwrap();
    String::from_utf8(out).unwrap()
}
