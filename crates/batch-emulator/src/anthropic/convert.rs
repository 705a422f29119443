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

/// Fewest prompt tokens Anthropic caches (1,024 for most models); a shorter marked
/// prefix is not cached.
pub(crate) const MIN_CACHEABLE_TOKENS: u64 = 1024;

/// What a request would put in Anthropic's prompt cache: a key (model and prefix) and
/// the prefix's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CachedPrefix {
    /// Requests with the same key share the cache entry.
    pub(crate) key: u64,
    /// Its tokens (o200k_base, the offline responder's count).
    pub(crate) tokens: u64,
}

/// The prefix of a request's prompt that Anthropic would cache: the text of `system`
/// and then the messages' blocks, up to and including the last block with
/// `cache_control`; `None` without such a block or when it is too short to be cached.
///
/// `tokens_of` counts a text's tokens (called once per distinct prefix by a caller that
/// remembers them).
pub(crate) fn cached_prefix(
    params: &Map<String, Value>,
    tokens_of: impl FnOnce(&str) -> u64,
) -> Option<CachedPrefix> {
    let mut texts: Vec<&str> = Vec::new();
    let mut end = None;
    let contents = params.get("system").into_iter().chain(
        params
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|message| message.get("content")),
    );
    for content in contents {
        match content {
            Value::String(text) => texts.push(text),
            Value::Array(blocks) => {
                for block in blocks {
                    let Some(text) = block.get("text").and_then(Value::as_str) else {
                        continue;
                    };
                    texts.push(text);
                    if block
                        .get("cache_control")
                        .is_some_and(|mark| !mark.is_null())
                    {
                        end = Some(texts.len());
                    }
                }
            }
            _ => {}
        }
    }
    let prefix = texts[..end?].join("\n");
    let model = params.get("model").and_then(Value::as_str).unwrap_or("");
    let tokens = tokens_of(&prefix);
    (tokens >= MIN_CACHEABLE_TOKENS).then(|| CachedPrefix {
        key: ids::stable_hash(0, &[model.as_bytes(), prefix.as_bytes()]),
        tokens,
    })
}

/// Applies the emulated prompt cache to a Message's usage: the first answer of a cache
/// key writes the prefix (`cache_creation_input_tokens`, 5-minute lifetime), later ones
/// read it; either way those tokens leave `input_tokens`. `written` holds the keys
/// already written.
pub(crate) fn apply_cache(
    usage: &mut MessageUsage,
    prefix: CachedPrefix,
    written: &mut std::collections::HashSet<u64>,
) {
    let prompt =
        usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens;
    let tokens = prefix.tokens.min(prompt);
    if written.insert(prefix.key) {
        usage.cache_creation_input_tokens = tokens;
        usage.cache_creation = CacheCreation {
            ephemeral_5m_input_tokens: tokens,
            ephemeral_1h_input_tokens: 0,
        };
        usage.cache_read_input_tokens = 0;
    } else {
        usage.cache_creation_input_tokens = 0;
        usage.cache_creation = CacheCreation::default();
        usage.cache_read_input_tokens = tokens;
    }
    usage.input_tokens = prompt - tokens;
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
    fn the_cached_prefix_ends_at_the_last_marked_block() {
        let params = json!({
            "model": "m",
            "system": [
                {"type": "text", "text": "Instructions."},
                {"type": "text", "text": "Outline.", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [{"role": "user", "content": "Lesson."}]
        });
        let params = params.as_object().unwrap();
        let mut seen = String::new();
        let prefix = cached_prefix(params, |text| {
            seen = text.to_owned();
            2000
        })
        .unwrap();
        assert_eq!(seen, "Instructions.\nOutline.");
        assert_eq!(prefix.tokens, 2000);
        assert_eq!(cached_prefix(params, |_| 1023), None, "too short to cache");
        let unmarked = json!({"model": "m", "system": "Instructions.", "messages": []});
        assert_eq!(cached_prefix(unmarked.as_object().unwrap(), |_| 5000), None);
        let other_model = json!({"model": "n", "system": params["system"].clone(), "messages": []});
        assert_ne!(
            cached_prefix(other_model.as_object().unwrap(), |_| 2000)
                .unwrap()
                .key,
            prefix.key
        );
    }

    #[test]
    fn the_first_answer_writes_the_cache_and_later_ones_read_it() {
        let completion = json!({"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3000, "completion_tokens": 10}});
        let prefix = CachedPrefix {
            key: 1,
            tokens: 2000,
        };
        let mut written = std::collections::HashSet::new();
        let mut first = message_from_completion(&completion, "batch").usage;
        apply_cache(&mut first, prefix, &mut written);
        assert_eq!(
            (
                first.input_tokens,
                first.cache_creation_input_tokens,
                first.cache_read_input_tokens
            ),
            (1000, 2000, 0)
        );
        assert_eq!(first.cache_creation.ephemeral_5m_input_tokens, 2000);
        let mut second = message_from_completion(&completion, "batch").usage;
        apply_cache(&mut second, prefix, &mut written);
        assert_eq!(
            (
                second.input_tokens,
                second.cache_creation_input_tokens,
                second.cache_read_input_tokens
            ),
            (1000, 0, 2000)
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
