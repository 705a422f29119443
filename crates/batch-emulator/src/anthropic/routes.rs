//! The Message Batches routes: create (with the create call's checks), retrieve, list,
//! cancel, results and delete, and the Anthropic headers every `/v1/messages` call needs.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufWriter, Write};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use openai_batch_client::{Batch, BatchId, FileId, FileObject};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::anthropic::batch::{Bookkeeping, MessageBatch, message_batch, missing_result};
use crate::anthropic::error::AnthropicFailure;
use crate::anthropic::results::{Sources, stream};
use crate::anthropic::{INPUT_PURPOSE, MESSAGES_ENDPOINT, convert, is_message_batch};
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

/// Checks the Anthropic headers: a non-empty `x-api-key`, or `Authorization: Bearer`
/// (which newer SDKs send instead), exactly `api_key` when one is configured; and an
/// `anthropic-version`.
///
/// # Errors
///
/// 401 `authentication_error` for a missing or wrong key, 400 `invalid_request_error`
/// for a missing `anthropic-version`.
pub(crate) fn check_headers(
    headers: &HeaderMap,
    api_key: Option<&str>,
) -> Result<(), AnthropicFailure> {
    let key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|key| !key.is_empty());
    match (key, api_key) {
        (None, _) => {
            return Err(AnthropicFailure::authentication(
                "x-api-key header is required (or Authorization: Bearer)",
            ));
        }
        (Some(key), Some(expected)) if key != expected => {
            return Err(AnthropicFailure::authentication(
                "invalid x-api-key: this local batch emulator accepts only the key it was started with",
            ));
        }
        _ => {}
    }
    let version = headers
        .get("anthropic-version")
        .and_then(|value| value.to_str().ok())
        .filter(|version| !version.trim().is_empty());
    if version.is_none() {
        return Err(AnthropicFailure::invalid(
            "anthropic-version: header is required",
        ));
    }
    Ok(())
}

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
    let input = write_input(&shared, &requests, created_at).await?;
    let mut batch = batches::new_batch(
        &shared,
        BatchId(ids::anthropic_id("msgbatch_")),
        MESSAGES_ENDPOINT,
        input,
        None,
        created_at,
    );
    Bookkeeping {
        requests: requests.len() as u64,
        ..Bookkeeping::default()
    }
    .store(&mut batch);
    let object = message_batch(&batch, &origin(&shared, &headers));
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
/// `stream` cannot be on inside a batch.
fn check_params(params: &Map<String, Value>) -> Result<(), (&'static str, &'static str)> {
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
    requests: &[Request],
    created_at: i64,
) -> Result<FileId, AnthropicFailure> {
    let lines: Vec<Vec<u8>> = requests
        .iter()
        .map(|(custom_id, params)| {
            let mut line = serde_json::to_vec(&json!({
                "custom_id": custom_id,
                "method": "POST",
                "url": MESSAGES_ENDPOINT,
                "body": convert::chat_body(params),
            }))
            .expect("a request line always serializes");
            line.push(b'\n');
            line
        })
        .collect();
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

/// `http://<host>` as the client reached the emulator, for `results_url`.
fn origin(shared: &Shared, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte))
        })
        .map_or_else(|| shared.addr.to_string(), str::to_owned);
    format!("http://{host}")
}

fn no_such_batch(id: &str) -> AnthropicFailure {
    AnthropicFailure::not_found(format!("No message batch found with id '{id}'."))
}

/// A message batch of the store.
fn find(shared: &Shared, id: &str) -> Result<Batch, AnthropicFailure> {
    shared
        .store
        .batch(&BatchId(id.to_owned()))
        .filter(is_message_batch)
        .ok_or_else(|| no_such_batch(id))
}

/// `GET /v1/messages/batches/{id}`.
pub(crate) async fn retrieve(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(batch_id): Path<String>,
) -> Result<Json<MessageBatch>, AnthropicFailure> {
    let batch = find(&shared, &batch_id)?;
    Ok(Json(message_batch(&batch, &origin(&shared, &headers))))
}

/// A page of `GET /v1/messages/batches`.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    data: Vec<MessageBatch>,
    has_more: bool,
    first_id: Option<String>,
    last_id: Option<String>,
}

/// `GET /v1/messages/batches?limit=&after_id=&before_id=`, most recent first.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Page>, AnthropicFailure> {
    let Query(query) = query.map_err(|rejection| {
        AnthropicFailure::invalid(format!("Invalid query: {}.", rejection.body_text()))
    })?;
    let limit = match query.get("limit") {
        None => 20,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=1000).contains(&limit) => limit,
            _ => {
                return Err(AnthropicFailure::invalid(format!(
                    "limit: Input should be an integer from 1 to 1000, not '{text}'"
                )));
            }
        },
    };
    let after = query.get("after_id").map(String::as_str);
    let before = query.get("before_id").map(String::as_str);
    if after.is_some() && before.is_some() {
        return Err(AnthropicFailure::invalid(
            "Give at most one of after_id and before_id.",
        ));
    }
    let batches = shared.store.batches_newest_first(is_message_batch);
    let ids: Vec<&str> = batches.iter().map(|batch| batch.id.as_str()).collect();
    let (start, end, has_more) = page_bounds(&ids, after, before, limit);
    let origin = origin(&shared, &headers);
    let data: Vec<MessageBatch> = batches[start..end]
        .iter()
        .map(|batch| message_batch(batch, &origin))
        .collect();
    Ok(Json(Page {
        first_id: data.first().map(|batch| batch.id.clone()),
        last_id: data.last().map(|batch| batch.id.clone()),
        has_more,
        data,
    }))
}

/// The slice `start..end` of `ids` (most recent first) for a page, and whether more
/// items lie beyond it in the paging direction: after `after` (older), or right before
/// `before` (newer). A cursor that names no batch gives an empty page.
fn page_bounds(
    ids: &[&str],
    after: Option<&str>,
    before: Option<&str>,
    limit: usize,
) -> (usize, usize, bool) {
    let position = |cursor: &str| ids.iter().position(|id| *id == cursor);
    match (after, before) {
        (_, Some(before)) => {
            let Some(end) = position(before) else {
                return (0, 0, false);
            };
            let start = end.saturating_sub(limit);
            (start, end, start > 0)
        }
        (Some(after), None) => {
            let Some(at) = position(after) else {
                return (0, 0, false);
            };
            let start = at + 1;
            let end = (start + limit).min(ids.len());
            (start, end, end < ids.len())
        }
        (None, None) => {
            let end = limit.min(ids.len());
            (0, end, end < ids.len())
        }
    }
}

/// `POST /v1/messages/batches/{id}/cancel`: `canceling` now, `ended` once running requests finish.
pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(batch_id): Path<String>,
) -> Result<Json<MessageBatch>, AnthropicFailure> {
    find(&shared, &batch_id)?;
    match batches::cancel_batch(&shared, &BatchId(batch_id.clone())).await {
        None => Err(no_such_batch(&batch_id)),
        Some(Ok(batch)) => Ok(Json(message_batch(&batch, &origin(&shared, &headers)))),
        Some(Err(_)) => Err(AnthropicFailure::invalid(format!(
            "Message batch {batch_id} has already ended and cannot be canceled."
        ))),
    }
}

/// `GET /v1/messages/batches/{id}/results`: the result lines as streamed JSONL.
pub(crate) async fn results(
    State(shared): State<Arc<Shared>>,
    Path(batch_id): Path<String>,
) -> Result<Response, AnthropicFailure> {
    let batch = find(&shared, &batch_id)?;
    if !batch.status.is_terminal() {
        return Err(AnthropicFailure::invalid(format!(
            "Message batch {batch_id} has not ended yet; its results are available once processing_status is 'ended'."
        )));
    }
    let counts = batch.counts();
    let written = counts.completed + counts.failed;
    let path = |id: &Option<FileId>| id.as_ref().map(|id| shared.store.content_path(id));
    let failure = batch
        .errors
        .as_ref()
        .and_then(|errors| errors.data.first())
        .map_or_else(
            || ("api_error", "The request was not run.".to_owned()),
            |error| {
                let kind = if error.code.as_deref() == Some("token_limit_exceeded") {
                    "rate_limit_error"
                } else {
                    "api_error"
                };
                (kind, error.message.clone().unwrap_or_default())
            },
        );
    let sources = Sources {
        output: path(&batch.output_file_id),
        errors: path(&batch.error_file_id),
        input: shared.store.content_path(&batch.input_file_id),
        missing: Bookkeeping::of(&batch).requests > written,
        missing_as: missing_result(batch.status),
        failure,
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-jsonl"),
        )],
        stream(sources),
    )
        .into_response())
}

/// `{"id", "type": "message_batch_deleted"}`.
#[derive(Debug, Serialize)]
pub(crate) struct Deleted {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `DELETE /v1/messages/batches/{id}`: only once it has ended; its files go with it.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(batch_id): Path<String>,
) -> Result<Json<Deleted>, AnthropicFailure> {
    let batch = find(&shared, &batch_id)?;
    if !batch.status.is_terminal() {
        return Err(AnthropicFailure::invalid(format!(
            "Message batch {batch_id} is still processing; cancel it and wait until it has ended before deleting it."
        )));
    }
    shared
        .store
        .remove_batch(&batch.id)
        .await
        .map_err(|_| AnthropicFailure::internal("cannot delete the batch"))?;
    for file in [
        Some(batch.input_file_id),
        batch.output_file_id,
        batch.error_file_id,
    ]
    .into_iter()
    .flatten()
    {
        if let Err(error) = shared.store.delete_file(&file).await {
            tracing::warn!(%file, %error, "cannot delete a deleted message batch's file");
        }
    }
    Ok(Json(Deleted {
        id: batch_id,
        kind: "message_batch_deleted",
    }))
}

/// Any other `/v1/messages...` URL.
pub(crate) fn unknown_url(method: &str, path: &str) -> AnthropicFailure {
    AnthropicFailure::not_found(format!("Not found: {method} {path}"))
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

    #[test]
    fn pages_follow_the_cursors() {
        let ids = ["e", "d", "c", "b", "a"];
        assert_eq!(page_bounds(&ids, None, None, 2), (0, 2, true));
        assert_eq!(page_bounds(&ids, Some("d"), None, 2), (2, 4, true));
        assert_eq!(page_bounds(&ids, Some("b"), None, 2), (4, 5, false));
        assert_eq!(page_bounds(&ids, None, Some("b"), 2), (1, 3, true));
        assert_eq!(page_bounds(&ids, None, Some("d"), 2), (0, 1, false));
        assert_eq!(page_bounds(&ids, Some("zz"), None, 2), (0, 0, false));
    }
}
