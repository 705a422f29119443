//! The one translation of a lesson's request into Anthropic's Messages API parameters.
//!
//! Shards are written once, as chat-completion request lines, whatever the provider; an
//! Anthropic job reads them back and sends each line's body as [`MessageParams`]. The shared
//! prefix (the template's part before `<!-- lesson -->`: instructions and outline) is the
//! chat body's `system` message, so it becomes the `system` block that carries
//! `cache_control`: every request of the job starts with the same cached bytes.

use anthropic_batch_client::{
    BatchRequest, CustomId, MessageContent, MessageParam, MessageParams, Role, SystemPrompt,
    TextBlockParam,
};
use batch_request::{ChatRequest, Provider, RequestLine};
use serde_json::Value;

use crate::Error;

/// Body parameters of a chat completion that have no Anthropic counterpart and change
/// nothing about the answer's text, so they are left out rather than refused.
const DROPPED: &[&str] = &["prompt_cache_key", "store", "user", "service_tier"];

/// Parameters Anthropic takes under the same name and meaning.
const KEPT: &[&str] = &["top_p", "top_k"];

/// A batch request line as Anthropic's batch request.
///
/// # Errors
///
/// [`Error::UnsupportedParameter`] for a body parameter Anthropic has no counterpart of, a
/// temperature above 1, no `max_completion_tokens`, or a custom_id outside Anthropic's pattern.
pub(crate) fn batch_request(line: RequestLine) -> Result<BatchRequest, Error> {
    let custom_id = CustomId::new(line.custom_id.clone())
        .map_err(|err| unsupported("custom_id", format!("{err}")))?;
    Ok(BatchRequest {
        custom_id,
        params: message_params(line.body)?,
    })
}

/// A chat completion body as Messages API parameters: `system` and `developer` messages
/// become the system prompt (its last block marked `cache_control`), `max_completion_tokens`
/// becomes `max_tokens`, `stop` becomes `stop_sequences`, and `temperature`, `top_p`,
/// `top_k` pass through.
///
/// # Errors
///
/// As [`batch_request`].
pub(crate) fn message_params(body: ChatRequest) -> Result<MessageParams, Error> {
    let max_tokens = body.max_completion_tokens.ok_or_else(|| {
        unsupported(
            "max_completion_tokens",
            "Anthropic requires max_tokens: set max_completion_tokens in lessons.toml".to_owned(),
        )
    })?;
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for message in body.messages {
        match message.role.as_str() {
            "system" | "developer" => system.push(TextBlockParam::new(message.content)),
            "user" => messages.push(MessageParam {
                role: Role::User,
                content: MessageContent::Text(message.content),
            }),
            "assistant" => messages.push(MessageParam {
                role: Role::Assistant,
                content: MessageContent::Text(message.content),
            }),
            other => {
                return Err(unsupported(
                    "messages",
                    format!("a `{other}` message has no Anthropic counterpart"),
                ));
            }
        }
    }
    if let Some(last) = system.last_mut() {
        *last = TextBlockParam::cached(std::mem::take(&mut last.text));
    }
    let mut extra = std::collections::BTreeMap::new();
    if let Some(temperature) = body.temperature {
        if !(0.0..=1.0).contains(&temperature) {
            return Err(unsupported(
                "temperature",
                format!("{temperature} is outside Anthropic's range 0 to 1"),
            ));
        }
        extra.insert("temperature".to_owned(), Value::from(temperature));
    }
    for (name, value) in body.extra {
        match name.as_str() {
            name if DROPPED.contains(&name) => {}
            name if KEPT.contains(&name) => {
                extra.insert(name.to_owned(), value);
            }
            "stop" => {
                let sequences = match value {
                    Value::String(one) => Value::Array(vec![Value::String(one)]),
                    many => many,
                };
                extra.insert("stop_sequences".to_owned(), sequences);
            }
            other => {
                return Err(unsupported(
                    other,
                    "Anthropic's Messages API has no such parameter: remove it from [body] \
                     in lessons.toml"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(MessageParams {
        model: body.model,
        max_tokens,
        system: (!system.is_empty()).then_some(SystemPrompt::Blocks(system)),
        messages,
        extra,
    })
}

fn unsupported(param: &str, reason: String) -> Error {
    Error::UnsupportedParameter {
        provider: Provider::Anthropic,
        param: param.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use batch_request::ChatMessage;

    fn body(extra: serde_json::Value) -> ChatRequest {
        ChatRequest {
            model: "claude-sonnet-4-5".to_owned(),
            messages: vec![
                ChatMessage {
                    role: "system".to_owned(),
                    content: "You write lessons. Outline: ...".to_owned(),
                },
                ChatMessage {
                    role: "user".to_owned(),
                    content: "Write M0-L001.".to_owned(),
                },
            ],
            max_completion_tokens: Some(8192),
            temperature: Some(0.7),
            extra: serde_json::from_value(extra).unwrap(),
        }
    }

    #[test]
    fn the_shared_prefix_is_a_cached_system_block_and_the_lesson_a_user_message() {
        let params = message_params(body(serde_json::json!({
            "prompt_cache_key": "job", "stop": "###", "top_p": 0.9
        })))
        .unwrap();
        let json = serde_json::to_value(&params).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 8192,
                "system": [{"type": "text", "text": "You write lessons. Outline: ...",
                            "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": "Write M0-L001."}],
                "temperature": 0.7,
                "stop_sequences": ["###"],
                "top_p": 0.9,
            })
        );
    }

    #[test]
    fn parameters_without_a_counterpart_are_refused_by_name() {
        let err = message_params(body(
            serde_json::json!({"response_format": {"type": "text"}}),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("response_format"), "{err}");
        let mut hot = body(serde_json::json!({}));
        hot.temperature = Some(1.5);
        let err = message_params(hot).unwrap_err();
        assert!(err.to_string().contains("temperature"), "{err}");
        let mut unbounded = body(serde_json::json!({}));
        unbounded.max_completion_tokens = None;
        assert!(message_params(unbounded).is_err());
    }
}
