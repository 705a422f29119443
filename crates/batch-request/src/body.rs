//! The `[body]` settings table: extra chat completion parameters, checked against the
//! properties of the spec's `CreateChatCompletionRequest` before they reach any request.
//!
//! The table below is kept by hand from `shared/reference/openai-openapi.yaml`
//! (`CreateChatCompletionRequest`, its `allOf` `CreateModelResponseProperties` and that one's
//! `ModelResponseProperties`). Only the JSON type of each value is checked, plus the values of
//! the string enums; ranges and nested shapes are left to the API.

use serde_json::Value;

/// The JSON shape a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Any JSON number (integers included).
    Number,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// Any string.
    String,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
    /// A string or an array (`stop`).
    StringOrArray,
    /// One of these strings, or an object (`tool_choice`, `function_call`).
    EnumOrObject(&'static [&'static str]),
}

/// Parameters the request builder writes itself (or that the Batch API refuses), and why
/// they cannot be in `[body]`.
const REFUSED: [(&str, &str); 10] = [
    (
        "model",
        "is set by the tool: use the `model` setting instead",
    ),
    (
        "messages",
        "is set by the tool: write the prompt template (and the `system_message` setting) instead",
    ),
    (
        "max_completion_tokens",
        "is set by the tool: use the `max_completion_tokens` setting instead",
    ),
    (
        "max_tokens",
        "is set by the tool as `max_completion_tokens`: use the `max_completion_tokens` setting instead (`max_tokens` is deprecated and refused by reasoning models)",
    ),
    (
        "temperature",
        "is set by the tool: use the `temperature` setting instead",
    ),
    (
        "reasoning_effort",
        "is set by the tool: use the `reasoning_effort` setting instead",
    ),
    (
        "verbosity",
        "is set by the tool: use the `verbosity` setting instead",
    ),
    (
        "prompt_cache_key",
        "is set by the tool: every request carries the job's id as its `prompt_cache_key`, so requests of one job share the prompt cache",
    ),
    (
        "stream",
        "cannot be used: the Batch API does not stream (`streaming_unsupported`)",
    ),
    (
        "stream_options",
        "cannot be used: the Batch API does not stream (`streaming_unsupported`)",
    ),
];

/// The other properties of `CreateChatCompletionRequest` and their JSON types, by name.
const PROPERTIES: [(&str, Kind); 27] = [
    ("audio", Kind::Object),
    ("frequency_penalty", Kind::Number),
    ("function_call", Kind::EnumOrObject(&["none", "auto"])),
    ("functions", Kind::Array),
    ("logit_bias", Kind::Object),
    ("logprobs", Kind::Boolean),
    ("metadata", Kind::Object),
    ("modalities", Kind::Array),
    ("moderation", Kind::Object),
    ("n", Kind::Integer),
    ("parallel_tool_calls", Kind::Boolean),
    ("prediction", Kind::Object),
    ("presence_penalty", Kind::Number),
    ("prompt_cache_options", Kind::Object),
    ("prompt_cache_retention", Kind::Enum(&["in_memory", "24h"])),
    ("response_format", Kind::Object),
    ("safety_identifier", Kind::String),
    ("seed", Kind::Integer),
    (
        "service_tier",
        Kind::Enum(&["auto", "default", "flex", "scale", "priority", "fast"]),
    ),
    ("stop", Kind::StringOrArray),
    ("store", Kind::Boolean),
    (
        "tool_choice",
        Kind::EnumOrObject(&["none", "auto", "required"]),
    ),
    ("tools", Kind::Array),
    ("top_logprobs", Kind::Integer),
    ("top_p", Kind::Number),
    ("user", Kind::String),
    ("web_search_options", Kind::Object),
];

/// Checks one `[body]` entry; the error is the reason, worded to follow "[body] key `x`".
pub(crate) fn check(key: &str, value: &Value) -> Result<(), String> {
    if let Some((_, reason)) = REFUSED.iter().find(|(name, _)| *name == key) {
        return Err((*reason).to_owned());
    }
    let Some(kind) = kind_of(key) else {
        let close = close_names(key);
        let hint = if close.is_empty() {
            format!("known: {}", known_names().join(", "))
        } else {
            format!("did you mean {}?", close.join(" or "))
        };
        return Err(format!(
            "is not a parameter of chat completion requests ({hint})"
        ));
    };
    let fits = match kind {
        Kind::Number => value.is_number(),
        Kind::Integer => value.is_i64() || value.is_u64(),
        Kind::Boolean => value.is_boolean(),
        Kind::String => value.is_string(),
        Kind::Enum(values) => value.as_str().is_some_and(|text| values.contains(&text)),
        Kind::Object => value.is_object(),
        Kind::Array => value.is_array(),
        Kind::StringOrArray => value.is_string() || value.is_array(),
        Kind::EnumOrObject(values) => {
            value.is_object() || value.as_str().is_some_and(|text| values.contains(&text))
        }
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "must be {}, not {}",
            describe(kind),
            describe_value(value)
        ))
    }
}

fn kind_of(key: &str) -> Option<Kind> {
    PROPERTIES
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, kind)| *kind)
}

fn known_names() -> Vec<&'static str> {
    PROPERTIES.iter().map(|(name, _)| *name).collect()
}

/// Known names within two edits of `key`, or sharing a word with it (`top-p`, `penalty`).
fn close_names(key: &str) -> Vec<String> {
    let key_lower = key.to_ascii_lowercase().replace('-', "_");
    let words: Vec<&str> = key_lower.split('_').filter(|w| w.len() > 3).collect();
    PROPERTIES
        .iter()
        .map(|(name, _)| *name)
        .chain(REFUSED.iter().map(|(name, _)| *name))
        .filter(|name| {
            edit_distance(&key_lower, name) <= 2
                || name.split('_').any(|part| words.contains(&part))
        })
        .map(|name| format!("`{name}`"))
        .collect()
}

/// Levenshtein distance over bytes (the names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.as_bytes().iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

fn describe(kind: Kind) -> String {
    let list = |values: &[&str]| {
        values
            .iter()
            .map(|value| format!("`{value}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        Kind::Number => "a number".to_owned(),
        Kind::Integer => "an integer".to_owned(),
        Kind::Boolean => "true or false".to_owned(),
        Kind::String => "a string".to_owned(),
        Kind::Enum(values) => format!("one of {}", list(values)),
        Kind::Object => "a table (a JSON object)".to_owned(),
        Kind::Array => "an array".to_owned(),
        Kind::StringOrArray => "a string or an array of strings".to_owned(),
        Kind::EnumOrObject(values) => format!("one of {} or a table", list(values)),
    }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("`{flag}`"),
        Value::Number(number) => format!("`{number}`"),
        Value::String(text) => format!("`{text:?}`"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "a table".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check_err(key: &str, value: Value, expected: &str) {
        assert_eq!(check(key, &value).unwrap_err(), expected, "{key}");
    }

    #[test]
    fn accepts_spec_typed_values() {
        let good = [
            ("top_p", json!(0.9)),
            ("top_p", json!(1)),
            ("seed", json!(42)),
            ("stop", json!("END")),
            ("stop", json!(["END", "STOP"])),
            ("response_format", json!({"type": "text"})),
            ("service_tier", json!("flex")),
            ("store", json!(false)),
            ("logit_bias", json!({"50256": -100})),
            ("n", json!(1)),
            ("presence_penalty", json!(-0.5)),
            ("frequency_penalty", json!(0)),
            ("user", json!("u-1")),
            ("metadata", json!({"course": "datagov"})),
            ("safety_identifier", json!("abc")),
            ("tools", json!([])),
            ("tool_choice", json!("none")),
            ("tool_choice", json!({"type": "function"})),
            ("prompt_cache_retention", json!("24h")),
            ("web_search_options", json!({})),
        ];
        for (key, value) in good {
            assert_eq!(check(key, &value), Ok(()), "{key} = {value}");
        }
    }

    #[test]
    fn refuses_keys_the_tool_sets() {
        check_err(
            "model",
            json!("gpt-4o"),
            "is set by the tool: use the `model` setting instead",
        );
        check_err(
            "reasoning_effort",
            json!("low"),
            "is set by the tool: use the `reasoning_effort` setting instead",
        );
        check_err(
            "stream",
            json!(false),
            "cannot be used: the Batch API does not stream (`streaming_unsupported`)",
        );
        for key in [
            "messages",
            "max_completion_tokens",
            "max_tokens",
            "temperature",
            "verbosity",
            "prompt_cache_key",
        ] {
            assert!(
                check(key, &json!(1))
                    .unwrap_err()
                    .starts_with("is set by the tool"),
                "{key}"
            );
        }
    }

    #[test]
    fn wrong_types_name_the_expected_one() {
        check_err("top_p", json!("high"), "must be a number, not `\"high\"`");
        check_err("seed", json!(1.5), "must be an integer, not `1.5`");
        check_err(
            "store",
            json!("yes"),
            "must be true or false, not `\"yes\"`",
        );
        check_err(
            "service_tier",
            json!("fastest"),
            "must be one of `auto`, `default`, `flex`, `scale`, `priority`, `fast`, not `\"fastest\"`",
        );
        check_err(
            "stop",
            json!(3),
            "must be a string or an array of strings, not `3`",
        );
        check_err(
            "response_format",
            json!("json"),
            "must be a table (a JSON object), not `\"json\"`",
        );
        check_err("tools", json!({}), "must be an array, not a table");
    }

    #[test]
    fn unknown_keys_get_close_names() {
        check_err(
            "top-p",
            json!(1),
            "is not a parameter of chat completion requests (did you mean `top_p`?)",
        );
        check_err(
            "seeds",
            json!(1),
            "is not a parameter of chat completion requests (did you mean `seed`?)",
        );
        check_err(
            "penalty",
            json!(1),
            "is not a parameter of chat completion requests (did you mean `frequency_penalty` or `presence_penalty`?)",
        );
        let err = check("zzzzzzzzzz", &json!(1)).unwrap_err();
        assert!(
            err.starts_with(
                "is not a parameter of chat completion requests (known: audio, frequency_penalty,"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_table_is_sorted_and_disjoint() {
        let names = known_names();
        assert!(names.windows(2).all(|pair| pair[0] < pair[1]), "{names:?}");
        for (name, _) in REFUSED {
            assert!(kind_of(name).is_none(), "{name}");
        }
    }
}
