//! `POST /v1/messages/batches`: the create call's checks as the real API makes them,
//! and the requests stored as the internal input file of chat completion bodies.

use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use openai_batch_client::{BatchId, FileId, FileObject};
use serde_json::{Map, Value, json};

use crate::anthropic::batch::{Bookkeeping, MessageBatch, message_batch};
use crate::anthropic::error::AnthropicFailure;
use crate::anthropic::routes::origin;
use crate::anthropic::{INPUT_PURPOSE, MESSAGES_ENDPOINT, convert};
use crate::server::Shared;
use crate::{batches, ids};

/// Most requests in one message batch, like the real API.
pub(crate) const MAX_REQUESTS: usize = 100_000;

/// Largest create body, in bytes (256 MB), like the real API.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// One checked request of a create call: its `custom_id` and its `params`.
pub(crate) type Request = (String, Map<String, Value>);

/// The `custom_id` rule, as the API words it.
const CUSTOM_ID_PATTERN: &str = "^[a-zA-Z0-9_-]{1,64}$";

/// `POST /v1/messages/batches`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MessageBatch>, AnthropicFailure> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AnthropicFailure::too_large(format!(
                "Request exceeds the maximum size of {MAX_BODY_BYTES} bytes for a message batch."
            ))
        } else {
            AnthropicFailure::invalid(format!(
                "Cannot read the request body: {}.",
                rejection.body_text()
            ))
        }
    })?;
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return Err(AnthropicFailure::invalid(
            "The request body is not valid JSON.",
        ));
    };
    drop(body);
    let requests = check_requests(value)?;
    let created_at = ids::now();
    let n_requests = requests.len() as u64;
    let input = write_input(&shared, requests, created_at).await?;
    let mut batch = batches::new_batch(
        &shared,
        BatchId(ids::anthropic_id("msgbatch_")),
        MESSAGES_ENDPOINT,
        input,
        None,
        created_at,
    );
    Bookkeeping {
        requests: n_requests,
        ..Bookkeeping::default()
    }
    .store(&mut batch);
    let object = message_batch(
        &batch,
        &origin(&shared, &headers),
        shared.store.file_clock(),
    );
    batches::start(&shared, batch).await;
    Ok(Json(object))
}

/// Checks the create body as the real API does and returns each request's `custom_id`
/// and `params`, in order.
///
/// # Errors
///
/// A 400 `invalid_request_error` naming the first bad field (`requests.3.custom_id: ...`).
pub(crate) fn check_requests(body: Value) -> Result<Vec<Request>, AnthropicFailure> {
    let Value::Object(mut body) = body else {
        return Err(AnthropicFailure::invalid(
            "The request body must be a JSON object.",
        ));
    };
    let requests = match body.remove("requests") {
        None | Some(Value::Null) => {
            return Err(AnthropicFailure::invalid("requests: Field required"));
        }
        Some(Value::Array(requests)) => requests,
        Some(_) => {
            return Err(AnthropicFailure::invalid(
                "requests: Input should be a valid list",
            ));
        }
    };
    if requests.is_empty() {
        return Err(AnthropicFailure::invalid(
            "requests: List should have at least 1 item after validation, not 0",
        ));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(AnthropicFailure::invalid(format!(
            "requests: List should have at most {MAX_REQUESTS} items after validation, not {}",
            requests.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut checked = Vec::with_capacity(requests.len());
    for (index, request) in requests.into_iter().enumerate() {
        let at = |field: &str, message: &str| {
            AnthropicFailure::invalid(format!("requests.{index}{field}: {message}"))
        };
        let Value::Object(mut request) = request else {
            return Err(at("", "Input should be a valid dictionary"));
        };
        let custom_id = match request.remove("custom_id") {
            None | Some(Value::Null) => return Err(at(".custom_id", "Field required")),
            Some(Value::String(custom_id)) => custom_id,
            Some(_) => return Err(at(".custom_id", "Input should be a valid string")),
        };
        if !is_valid_custom_id(&custom_id) {
            return Err(at(
                ".custom_id",
                &format!("String should match pattern '{CUSTOM_ID_PATTERN}'"),
            ));
        }
        let params = match request.remove("params") {
            None | Some(Value::Null) => return Err(at(".params", "Field required")),
            Some(Value::Object(params)) => params,
            Some(_) => return Err(at(".params", "Input should be a valid dictionary")),
        };
        check_params(&params)
            .map_err(|(field, message)| at(&format!(".params.{field}"), message))?;
        if !seen.insert(custom_id.clone()) {
            return Err(at(
                ".custom_id",
                &format!(
                    "Duplicate custom_id '{custom_id}': each request in a batch must have a unique custom_id"
                ),
            ));
        }
        checked.push((custom_id, params));
    }
    Ok(checked)
}

/// `^[a-zA-Z0-9_-]{1,64}$`.
pub(crate) fn is_valid_custom_id(custom_id: &str) -> bool {
    (1..=64).contains(&custom_id.len())
        && custom_id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// The required Messages params: `model`, `max_tokens` (at least 1) and `messages`;
/// `stream` cannot be on inside a batch. Also checks a direct message (`messages.rs`).
pub(crate) fn check_params(
    params: &Map<String, Value>,
) -> Result<(), (&'static str, &'static str)> {
    match params.get("model") {
        None | Some(Value::Null) => return Err(("model", "Field required")),
        Some(Value::String(model)) if !model.is_empty() => {}
        Some(Value::String(_)) => return Err(("model", "String should have at least 1 character")),
        Some(_) => return Err(("model", "Input should be a valid string")),
    }
    match params.get("max_tokens") {
        None | Some(Value::Null) => return Err(("max_tokens", "Field required")),
        Some(value) => match value.as_i64() {
            Some(tokens) if tokens >= 1 => {}
            Some(_) => return Err(("max_tokens", "Input should be greater than or equal to 1")),
            None => return Err(("max_tokens", "Input should be a valid integer")),
        },
    }
    match params.get("messages") {
        None | Some(Value::Null) => return Err(("messages", "Field required")),
        Some(Value::Array(_)) => {}
        Some(_) => return Err(("messages", "Input should be a valid list")),
    }
    if params.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err((
            "stream",
            "Streaming is not supported for requests in a message batch",
        ));
    }
    Ok(())
}

/// Writes the requests as the internal input file: chat completion request lines whose
/// `url` is [`MESSAGES_ENDPOINT`].
async fn write_input(
    shared: &Arc<Shared>,
    requests: Vec<Request>,
    created_at: i64,
) -> Result<FileId, AnthropicFailure> {
    // Tokenising the cached prefixes is CPU work; each distinct prefix is counted once.
    let lines = tokio::task::spawn_blocking(move || {
        let bpe = crate::offline::tokenizer();
        let mut counted: HashMap<u64, u64> = HashMap::new();
        requests
            .iter()
            .map(|(custom_id, params)| {
                let cache = convert::cached_prefix(params, |prefix| {
                    let text_key = ids::stable_hash(0, &[prefix.as_bytes()]);
                    *counted
                        .entry(text_key)
                        .or_insert_with(|| bpe.count(prefix) as u64)
                });
                let mut line = serde_json::to_vec(&json!({
                    "custom_id": custom_id,
                    "method": "POST",
                    "url": MESSAGES_ENDPOINT,
                    "body": convert::chat_body(params),
                    "cache": cache,
                }))
                .expect("a request line always serializes");
                line.push(b'\n');
                line
            })
            .collect::<Vec<Vec<u8>>>()
    })
    .await
    .map_err(|_| AnthropicFailure::internal("cannot store the batch's requests"))?;
    let failed = |_| AnthropicFailure::internal("cannot store the batch's requests");
    let temp = shared.store.temp_file().map_err(failed)?;
    let (temp, bytes) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut temp = temp;
        let mut bytes = 0u64;
        {
            let mut writer = BufWriter::new(temp.as_file_mut());
            for line in &lines {
                writer.write_all(line)?;
                bytes += line.len() as u64;
            }
            writer.flush()?;
        }
        temp.as_file().sync_data()?;
        Ok((temp.into_temp_path(), bytes))
    })
    .await
    .map_err(|_| AnthropicFailure::internal("cannot store the batch's requests"))?
    .map_err(failed)?;
    let object = FileObject {
        id: FileId(ids::file_id()),
        object: "file".to_owned(),
        bytes,
        created_at,
        filename: "message_batch_requests.jsonl".to_owned(),
        purpose: INPUT_PURPOSE.to_owned(),
        status: Some("processed".to_owned()),
        // Kept as long as the batch: results name the requests that never ran from it.
        expires_at: None,
    };
    let id = object.id.clone();
    shared.store.add_file(object, temp).await.map_err(failed)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(custom_id: &str) -> Value {
        json!({"custom_id": custom_id, "params": {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}})
    }

    fn message(body: Value) -> String {
        check_requests(body).unwrap_err().message
    }

    #[test]
    fn create_checks() {
        assert_eq!(
            check_requests(json!({"requests": [request("a"), request("b")]}))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(message(json!({})), "requests: Field required");
        assert_eq!(
            message(json!({"requests": {}})),
            "requests: Input should be a valid list"
        );
        assert!(message(json!({"requests": []})).contains("at least 1 item"));
        assert_eq!(
            message(json!({"requests": [request("a"), request("a.b")]})),
            "requests.1.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"
        );
        assert!(
            message(json!({"requests": [request("a"), request("a")]}))
                .starts_with("requests.1.custom_id: Duplicate custom_id 'a'")
        );
        let mut no_tokens = request("a");
        no_tokens["params"]
            .as_object_mut()
            .unwrap()
            .remove("max_tokens");
        assert_eq!(
            message(json!({"requests": [no_tokens]})),
            "requests.0.params.max_tokens: Field required"
        );
        let mut no_model = request("a");
        no_model["params"].as_object_mut().unwrap().remove("model");
        assert_eq!(
            message(json!({"requests": [no_model]})),
            "requests.0.params.model: Field required"
        );
        let mut no_messages = request("a");
        no_messages["params"]
            .as_object_mut()
            .unwrap()
            .remove("messages");
        assert_eq!(
            message(json!({"requests": [no_messages]})),
            "requests.0.params.messages: Field required"
        );
        assert_eq!(
            message(json!({"requests": [{"params": {}}]})),
            "requests.0.custom_id: Field required"
        );
    }

    #[test]
    fn custom_id_pattern() {
        assert!(is_valid_custom_id("lesson_M0-L001"));
        assert!(is_valid_custom_id(&"a".repeat(64)));
        for bad in ["", "a.b", "a:b", "lesson M0", "é", &"a".repeat(65)] {
            assert!(!is_valid_custom_id(bad), "{bad}");
        }
    }
}
