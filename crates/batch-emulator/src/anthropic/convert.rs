//! Anthropic Messages params to an OpenAI chat completion body, and a chat completion
//! back to an Anthropic `Message`: how message batches reuse the offline responder and
//! the upstream forwarding, which both speak chat completions.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::ids;

/// An Anthropic `Message`, with its fields in the API's order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Message {
    pub(crate) model: String,
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) role: &'static str,
    pub(crate) content: Vec<TextBlock>,
    pub(crate) stop_reason: &'static str,
    pub(crate) stop_sequence: Option<String>,
    pub(crate) usage: MessageUsage,
}

/// A `{"type": "text", "text"}` content block.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct TextBlock {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

/// A Message's `usage`, cache fields included.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct MessageUsage {
    pub(crate) input_tokens: u64,
    pub(crate) cache_creation_input_tokens: u64,
    pub(crate) cache_read_input_tokens: u64,
    pub(crate) cache_creation: CacheCreation,
    pub(crate) output_tokens: u64,
    /// `batch` inside a message batch, `standard` for a direct call.
    pub(crate) service_tier: &'static str,
}

/// `usage.cache_creation`: the cache writes per lifetime.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct CacheCreation {
    pub(crate) ephemeral_5m_input_tokens: u64,
    pub(crate) ephemeral_1h_input_tokens: u64,
}

/// The chat completion body for Anthropic Messages `params`: `system` becomes a system
/// message, each message's content blocks their text (joined by newlines), `max_tokens`,
/// `temperature`, `top_p` and `stop_sequences` (as `stop`) carry over; what chat
/// completions have no place for (`cache_control`, `top_k`, `metadata`) is dropped.
pub(crate) fn chat_body(params: &Map<String, Value>) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = params.get("system") {
        let text = blocks_text(system);
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    for message in params
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        let text = message.get("content").map(blocks_text).unwrap_or_default();
        messages.push(json!({"role": role, "content": text}));
    }
    let mut body = Map::new();
    body.insert(
        "model".to_owned(),
        params.get("model").cloned().unwrap_or(Value::Null),
    );
    body.insert("messages".to_owned(), Value::Array(messages));
    for (from, to) in [
        ("max_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop_sequences", "stop"),
    ] {
        if let Some(value) = params.get(from).filter(|value| !value.is_null()) {
            body.insert(to.to_owned(), value.clone());
        }
    }
    Value::Object(body)
}

/// The text of a `system` or message `content`: a string, or its text blocks joined by newlines.
pub(crate) fn blocks_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The Anthropic `Message` for a chat completion answer.
///
/// `finish_reason` maps to `stop_reason` (`stop` to `end_turn`, `length` to `max_tokens`,
/// `content_filter` or a `refusal` to `refusal`, tool calls to `tool_use`); cached prompt
/// tokens become `cache_read_input_tokens` and leave `input_tokens`, as Anthropic counts them.
pub(crate) fn message_from_completion(completion: &Value, service_tier: &'static str) -> Message {
    let choice = completion
        .get("choices")
        .and_then(|choices| choices.get(0))
        .unwrap_or(&Value::Null);
    let answer = choice.get("message").unwrap_or(&Value::Null);
    let refused = answer
        .get("refusal")
        .and_then(Value::as_str)
        .is_some_and(|refusal| !refusal.is_empty());
    let text = answer.get("content").map(blocks_text).unwrap_or_default();
    let stop_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        _ if refused => "refusal",
        Some("length") => "max_tokens",
        Some("content_filter") => "refusal",
        Some("tool_calls" | "function_call") => "tool_use",
        _ => "end_turn",
    };
    let usage = completion.get("usage").unwrap_or(&Value::Null);
    let number = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
    let prompt = number(usage.get("prompt_tokens"));
    let cached = number(
        usage
            .get("prompt_tokens_details")
            .and_then(|details| details.get("cached_tokens")),
    )
    .min(prompt);
    Message {
        model: completion
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("emulator")
            .to_owned(),
        id: ids::anthropic_id("msg_"),
        kind: "message",
        role: "assistant",
        content: if text.is_empty() {
            Vec::new()
        } else {
            vec![TextBlock { kind: "text", text }]
        },
        stop_reason,
        stop_sequence: None,
        usage: MessageUsage {
            input_tokens: prompt - cached,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: cached,
            cache_creation: CacheCreation::default(),
            output_tokens: number(usage.get("completion_tokens")),
            service_tier,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_become_a_chat_body() {
        let params = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1000,
            "system": [
                {"type": "text", "text": "You write lessons.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "The outline."}
            ],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Lesson M0-L001: Data"}]}],
            "temperature": 0.5,
            "stop_sequences": ["END"],
            "top_k": 5
        });
        let body = chat_body(params.as_object().unwrap());
        assert_eq!(
            body,
            json!({
                "model": "claude-sonnet-4-5",
                "messages": [
                    {"role": "system", "content": "You write lessons.\nThe outline."},
                    {"role": "user", "content": "Lesson M0-L001: Data"}
                ],
                "max_tokens": 1000,
                "temperature": 0.5,
                "stop": ["END"]
            })
        );
        let plain =
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(
            chat_body(plain.as_object().unwrap())["messages"],
            json!([{"role": "user", "content": "hi"}])
        );
    }

    #[test]
    fn completions_become_messages() {
        let completion = json!({
            "model": "llama3.1",
            "choices": [{"message": {"role": "assistant", "content": "# Lesson"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 60}}
        });
        let message = message_from_completion(&completion, "batch");
        assert_eq!(message.model, "llama3.1");
        assert!(message.id.starts_with("msg_01"), "{}", message.id);
        assert_eq!(message.stop_reason, "max_tokens");
        assert_eq!(message.content[0].text, "# Lesson");
        assert_eq!(message.usage.input_tokens, 40);
        assert_eq!(message.usage.cache_read_input_tokens, 60);
        assert_eq!(message.usage.output_tokens, 20);

        let refusal = json!({"choices": [{"message": {"content": null, "refusal": "I can't."}, "finish_reason": "stop"}]});
        let message = message_from_completion(&refusal, "batch");
        assert_eq!(message.stop_reason, "refusal");
        assert!(message.content.is_empty());
        let done = json!({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]});
        assert_eq!(
            message_from_completion(&done, "batch").stop_reason,
            "end_turn"
        );
    }
}
