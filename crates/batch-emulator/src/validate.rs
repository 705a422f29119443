//! Asynchronous input validation: reads a batch input file line by line and reports
//! the errors the real API reports, with their codes, messages, params and lines.
//!
//! Codes used: `empty_file`, `invalid_json_line`, `missing_required_parameter`,
//! `invalid_type`, `invalid_value` (a `method` other than `POST`), `invalid_url`,
//! `invalid_request` (no `body.model` / `body.messages`), `streaming_unsupported`,
//! `duplicate_custom_id`, `model_mismatch` (a second model in one file) and
//! `too_many_tasks` (over the request limit).
//! `line` counts records (non-blank lines), 1-based, as the real API appears to.
//! A valid file also reports its prompt tokens per model, for the enqueued-token limit.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead};

use openai_batch_client::BatchError;
use serde_json::Value;

/// At most this many errors are reported for one file.
pub(crate) const MAX_ERRORS: usize = 1000;

/// The outcome of validating an input file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Validation {
    /// Every line is a valid request.
    Valid {
        /// Number of requests.
        total: u64,
        /// The one model of the file.
        model: Option<String>,
        /// Prompt tokens of the requests, per `body.model`, counted like the offline responder.
        prompt_tokens: BTreeMap<String, u64>,
    },
    /// The batch fails with these errors.
    Invalid(Vec<BatchError>),
}

/// One request read back from a validated file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingRequest {
    pub(crate) custom_id: String,
    pub(crate) body: Value,
}

/// Validates an input file for `endpoint` (e.g. `/v1/chat/completions`).
///
/// Stops reading once the file has more than `max_requests` records.
pub(crate) fn validate(
    mut reader: impl BufRead,
    endpoint: &str,
    max_requests: usize,
) -> io::Result<Validation> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut first_model: Option<(String, u64)> = None;
    let mut prompt_tokens: BTreeMap<String, u64> = BTreeMap::new();
    let mut records: u64 = 0;
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        if buffer.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        records += 1;
        if records > max_requests as u64 {
            errors.push(file_error(
                "too_many_tasks",
                format!(
                    "The batch input file has more than the maximum of {max_requests} requests."
                ),
            ));
            return Ok(Validation::Invalid(errors));
        }
        if errors.len() >= MAX_ERRORS {
            // Keep counting so the request limit is still checked.
            continue;
        }
        match check_line(&buffer, records, endpoint, &mut seen, &mut first_model) {
            // Counting is the costly part and an invalid file is never enqueued: stop at the first error.
            Ok((model, messages)) if errors.is_empty() => {
                *prompt_tokens.entry(model).or_default() +=
                    crate::offline::prompt_tokens(messages.as_ref());
            }
            Ok(_) => {}
            Err(error) => errors.push(error),
        }
    }
    if records == 0 {
        errors.push(file_error("empty_file", "The batch input file is empty."));
    }
    if errors.is_empty() {
        Ok(Validation::Valid {
            total: records,
            model: first_model.map(|(model, _)| model),
            prompt_tokens,
        })
    } else {
        Ok(Validation::Invalid(errors))
    }
}

/// Reads the requests of a file that passed [`validate`], in file order.
pub(crate) fn read_request(
    reader: &mut impl BufRead,
    buffer: &mut Vec<u8>,
) -> io::Result<Option<PendingRequest>> {
    loop {
        buffer.clear();
        if reader.read_until(b'\n', buffer)? == 0 {
            return Ok(None);
        }
        if buffer.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut value: Value = serde_json::from_slice(buffer)?;
        let custom_id = value
            .get("custom_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let body = value
            .get_mut("body")
            .map(Value::take)
            .unwrap_or(Value::Null);
        return Ok(Some(PendingRequest { custom_id, body }));
    }
}

/// Checks one record; a valid one gives its model and its `body.messages`.
fn check_line(
    bytes: &[u8],
    line: u64,
    endpoint: &str,
    seen: &mut HashSet<String>,
    first_model: &mut Option<(String, u64)>,
) -> Result<(String, Option<Value>), BatchError> {
    let error = |code: &str, message: String, param: Option<&str>| BatchError {
        code: Some(code.to_owned()),
        message: Some(message),
        param: param.map(str::to_owned),
        line: Some(line),
    };
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(error(
            "invalid_json_line",
            "This line is not parseable as valid JSON.".to_owned(),
            None,
        ));
    };
    let field = |name: &str| request.get(name).filter(|value| !value.is_null());
    let missing = |name: &str| {
        error(
            "missing_required_parameter",
            format!("Missing required parameter: '{name}'."),
            Some(name),
        )
    };
    let invalid_type = |name: &str, expected: &str, value: &Value| {
        error(
            "invalid_type",
            format!(
                "Invalid type for '{name}': expected {expected}, but got {} instead.",
                type_name(value)
            ),
            Some(name),
        )
    };

    let custom_id = field("custom_id").ok_or_else(|| missing("custom_id"))?;
    let custom_id = custom_id
        .as_str()
        .ok_or_else(|| invalid_type("custom_id", "a string", custom_id))?;
    let method = field("method").ok_or_else(|| missing("method"))?;
    if method.as_str() != Some("POST") {
        return Err(error(
            "invalid_value",
            format!(
                "Invalid value: {}. Supported values are: 'POST'.",
                quoted(method)
            ),
            Some("method"),
        ));
    }
    let url = field("url").ok_or_else(|| missing("url"))?;
    if url.as_str() != Some(endpoint) {
        return Err(error(
            "invalid_url",
            "The URL provided for this request does not match the batch endpoint.".to_owned(),
            Some("url"),
        ));
    }
    let body = field("body").ok_or_else(|| missing("body"))?;
    let body = body
        .as_object()
        .ok_or_else(|| invalid_type("body", "an object", body))?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|model| !model.is_empty())
        .ok_or_else(|| {
            error(
                "invalid_request",
                "Model parameter is required.".to_owned(),
                Some("body.model"),
            )
        })?;
    if endpoint == batch_request::CHAT_COMPLETIONS_URL
        && !body.get("messages").is_some_and(Value::is_array)
    {
        return Err(error(
            "invalid_request",
            "Messages parameter is required.".to_owned(),
            Some("body.messages"),
        ));
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(error(
            "streaming_unsupported",
            "Chat Completions: Streaming is not supported in the Batch API.".to_owned(),
            Some("body.stream"),
        ));
    }
    if !seen.insert(custom_id.to_owned()) {
        return Err(error(
            "duplicate_custom_id",
            "The custom_id for this request is a duplicate of another request. \
             The custom_id parameter must be unique for each request in a batch."
                .to_owned(),
            Some("custom_id"),
        ));
    }
    match first_model {
        None => *first_model = Some((model.to_owned(), line)),
        // A message batch may mix models.
        Some(_) if endpoint == crate::anthropic::MESSAGES_ENDPOINT => {}
        Some((first, first_line)) if first != model => {
            return Err(error(
                "model_mismatch",
                format!(
                    "The model '{model}' of this request differs from the model '{first}' of line {first_line}. \
                     Each input file can only include requests to a single model."
                ),
                Some("body.model"),
            ));
        }
        Some(_) => {}
    }
    let model = model.to_owned();
    let messages = request
        .get_mut("body")
        .and_then(|body| body.get_mut("messages"))
        .map(Value::take);
    Ok((model, messages))
}

fn file_error(code: &str, message: impl Into<String>) -> BatchError {
    BatchError {
        code: Some(code.to_owned()),
        message: Some(message.into()),
        param: None,
        line: None,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn quoted(value: &Value) -> String {
    match value {
        Value::String(text) => format!("'{text}'"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = "/v1/chat/completions";

    fn line(custom_id: &str, model: &str) -> String {
        format!(
            r#"{{"custom_id":"{custom_id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}}}"#
        )
    }

    /// Validates `text` and returns `(code, param, line)` of each error.
    fn errors(text: &str, max_requests: usize) -> Vec<(String, Option<String>, Option<u64>)> {
        match validate(text.as_bytes(), CHAT, max_requests).unwrap() {
            Validation::Valid { .. } => Vec::new(),
            Validation::Invalid(errors) => errors
                .into_iter()
                .map(|error| (error.code.unwrap(), error.param, error.line))
                .collect(),
        }
    }

    fn check(text: &str, expected: &[(&str, Option<&str>, Option<u64>)]) {
        let expected: Vec<_> = expected
            .iter()
            .map(|(code, param, line)| ((*code).to_owned(), param.map(str::to_owned), *line))
            .collect();
        assert_eq!(errors(text, 50_000), expected, "{text}");
    }

    #[test]
    fn a_valid_file_counts_records_and_names_its_model() {
        let text = format!("{}\n\n{}\n", line("a", "m"), line("b", "m"));
        // Each line: 3 to prime the reply, then 3 + "user" + "hi" for its one message.
        let bpe = crate::offline::tokenizer();
        let per_line = 3 + 3 + bpe.count("user") as u64 + bpe.count("hi") as u64;
        assert_eq!(
            validate(text.as_bytes(), CHAT, 10).unwrap(),
            Validation::Valid {
                total: 2,
                model: Some("m".into()),
                prompt_tokens: BTreeMap::from([("m".to_owned(), 2 * per_line)]),
            }
        );
    }

    #[test]
    fn each_error_code() {
        let ok = line("a", "m");
        check("", &[("empty_file", None, None)]);
        check("\n\n", &[("empty_file", None, None)]);
        check(
            &format!("{ok}\n{{not json\n"),
            &[("invalid_json_line", None, Some(2))],
        );
        check(
            r#"{"method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#,
            &[("missing_required_parameter", Some("custom_id"), Some(1))],
        );
        check(
            r#"{"custom_id":"a","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#,
            &[("missing_required_parameter", Some("method"), Some(1))],
        );
        check(
            r#"{"custom_id":"a","method":"POST","body":{"model":"m","messages":[]}}"#,
            &[("missing_required_parameter", Some("url"), Some(1))],
        );
        check(
            r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions"}"#,
            &[("missing_required_parameter", Some("body"), Some(1))],
        );
        check(
            r#"{"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#,
            &[("invalid_type", Some("custom_id"), Some(1))],
        );
        check(
            r#"{"custom_id":"a","method":"GET","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#,
            &[("invalid_value", Some("method"), Some(1))],
        );
        check(
            r#"{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"m","messages":[]}}"#,
            &[("invalid_url", Some("url"), Some(1))],
        );
        check(
            r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"messages":[]}}"#,
            &[("invalid_request", Some("body.model"), Some(1))],
        );
        check(
            r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#,
            &[("invalid_request", Some("body.messages"), Some(1))],
        );
        check(
            r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[],"stream":true}}"#,
            &[("streaming_unsupported", Some("body.stream"), Some(1))],
        );
        check(
            &format!("{ok}\n{}\n{ok}\n", line("b", "m")),
            &[("duplicate_custom_id", Some("custom_id"), Some(3))],
        );
        check(
            &format!("{ok}\n{}\n", line("b", "other")),
            &[("model_mismatch", Some("body.model"), Some(2))],
        );
    }

    #[test]
    fn too_many_requests_is_a_file_level_error() {
        let text = format!(
            "{}\n{}\n{}\n",
            line("a", "m"),
            line("b", "m"),
            line("c", "m")
        );
        assert_eq!(errors(&text, 3), []);
        assert_eq!(errors(&text, 2), [("too_many_tasks".into(), None, None)]);
    }

    #[test]
    fn messages_match_the_real_api() {
        let Validation::Invalid(errors) = validate("{oops\n".as_bytes(), CHAT, 10).unwrap() else {
            panic!("expected errors");
        };
        assert_eq!(
            errors[0].message.as_deref(),
            Some("This line is not parseable as valid JSON.")
        );
    }

    #[test]
    fn reads_requests_back_skipping_blank_lines() {
        let text = format!("{}\n\n{}", line("a", "m"), line("b", "m"));
        let mut reader = text.as_bytes();
        let mut buffer = Vec::new();
        let first = read_request(&mut reader, &mut buffer).unwrap().unwrap();
        assert_eq!(first.custom_id, "a");
        assert_eq!(first.body["model"], "m");
        let second = read_request(&mut reader, &mut buffer).unwrap().unwrap();
        assert_eq!(second.custom_id, "b");
        assert_eq!(read_request(&mut reader, &mut buffer).unwrap(), None);
    }
}
