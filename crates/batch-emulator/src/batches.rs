//! The Batches API: create (with the real API's synchronous parameter checks),
//! retrieve, list and cancel.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use openai_batch_client::{Batch, BatchId, BatchStatus, FileId, ListPage, RequestCounts};
use serde_json::{Map, Value};

use crate::api_error::ApiFailure;
use crate::files::parse_limit;
use crate::server::Shared;
use crate::{anthropic, ids, runner};

/// Every endpoint the real API names; only the first one runs here.
const ENDPOINTS: [&str; 8] = [
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
];

/// `POST /batches`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Batch>, ApiFailure> {
    let body = body.map_err(|rejection| {
        ApiFailure::bad_request(
            format!("Cannot read the request body: {}.", rejection.body_text()),
            None,
            None,
        )
    })?;
    let Ok(Value::Object(params)) = serde_json::from_slice::<Value>(&body) else {
        return Err(ApiFailure::bad_request(
            "We could not parse the JSON body of your request. The OpenAI API expects a JSON object.",
            None,
            None,
        ));
    };
    let input_file_id = required_string(&params, "input_file_id")?;
    let endpoint = required_string(&params, "endpoint")?;
    check_endpoint(endpoint)?;
    let completion_window = required_string(&params, "completion_window")?;
    if completion_window != "24h" {
        return Err(ApiFailure::bad_request(
            format!("Invalid value: '{completion_window}'. Supported values are: '24h'."),
            Some("completion_window"),
            Some("invalid_value"),
        ));
    }
    let metadata = check_metadata(params.get("metadata"))?;
    let input_file = shared
        .store
        .api_file(&input_file_id.into())
        .ok_or_else(|| {
            ApiFailure::bad_request(
                format!(
                    "Cannot find file {input_file_id}, or organization does not have access to it."
                ),
                Some("input_file_id"),
                Some("invalid_request"),
            )
        })?;
    if input_file.purpose != "batch" {
        return Err(ApiFailure::bad_request(
            format!(
                "Invalid input file {input_file_id}: its purpose is '{}', but a batch input file must have purpose 'batch'.",
                input_file.purpose
            ),
            Some("input_file_id"),
            Some("invalid_value"),
        ));
    }
    let batch = new_batch(
        &shared,
        BatchId(ids::batch_id()),
        endpoint,
        input_file.id,
        metadata,
        ids::now(),
    );
    start(&shared, batch.clone()).await;
    Ok(Json(batch))
}

/// A new batch in `validating`, expiring one completion window after `created_at`.
pub(crate) fn new_batch(
    shared: &Shared,
    id: BatchId,
    endpoint: &str,
    input_file_id: FileId,
    metadata: Option<BTreeMap<String, String>>,
    created_at: i64,
) -> Batch {
    let window = shared.config.completion_window;
    let window_secs =
        i64::try_from(window.as_secs() + u64::from(window.subsec_nanos() > 0)).unwrap_or(i64::MAX);
    Batch {
        id,
        object: "batch".to_owned(),
        endpoint: endpoint.to_owned(),
        model: None,
        errors: None,
        input_file_id,
        completion_window: "24h".to_owned(),
        status: BatchStatus::Validating,
        output_file_id: None,
        error_file_id: None,
        created_at,
        in_progress_at: None,
        expires_at: Some(created_at.saturating_add(window_secs)),
        finalizing_at: None,
        completed_at: None,
        failed_at: None,
        expired_at: None,
        cancelling_at: None,
        cancelled_at: None,
        request_counts: Some(RequestCounts::default()),
        usage: Some(runner::zero_usage()),
        metadata,
        extra: Default::default(),
    }
}

/// Stores a new batch, saves it and starts its run.
pub(crate) async fn start(shared: &Arc<Shared>, batch: Batch) {
    let id = batch.id.clone();
    let cancel = shared.store.insert_batch(batch);
    if let Err(error) = shared.store.save_batch(&id).await {
        tracing::error!(batch_id = %id, %error, "cannot save batch state");
    }
    tracing::debug!(batch_id = %id, "batch created");
    runner::spawn(shared, id, cancel);
}

fn required_string<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiFailure> {
    match params.get(name) {
        None | Some(Value::Null) => Err(ApiFailure::missing(name)),
        Some(Value::String(value)) => Ok(value),
        Some(other) => Err(invalid_type(name, "a string", other)),
    }
}

fn invalid_type(param: &str, expected: &str, value: &Value) -> ApiFailure {
    let got = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ApiFailure::bad_request(
        format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
        Some(param),
        Some("invalid_type"),
    )
}

fn check_endpoint(endpoint: &str) -> Result<(), ApiFailure> {
    if endpoint == ENDPOINTS[0] {
        return Ok(());
    }
    let message = if ENDPOINTS.contains(&endpoint) {
        format!(
            "Invalid value: '{endpoint}'. The local batch emulator supports only '/v1/chat/completions'."
        )
    } else {
        format!(
            "Invalid value: '{endpoint}'. Supported values are: '/v1/responses', '/v1/chat/completions', \
             '/v1/embeddings', '/v1/completions', '/v1/moderations', '/v1/images/generations', \
             '/v1/images/edits', and '/v1/videos'."
        )
    };
    Err(ApiFailure::bad_request(
        message,
        Some("endpoint"),
        Some("invalid_value"),
    ))
}

/// Metadata: at most 16 pairs, keys up to 64 characters, string values up to 512.
fn check_metadata(
    metadata: Option<&Value>,
) -> Result<Option<BTreeMap<String, String>>, ApiFailure> {
    let pairs = match metadata {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(pairs)) => pairs,
        Some(other) => return Err(invalid_type("metadata", "an object", other)),
    };
    if pairs.len() > 16 {
        return Err(ApiFailure::bad_request(
            format!(
                "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, \
                 but got an object with {} properties instead.",
                pairs.len()
            ),
            Some("metadata"),
            Some("object_above_max_properties"),
        ));
    }
    let mut checked = BTreeMap::new();
    for (key, value) in pairs {
        let key_len = key.chars().count();
        if key_len > 64 {
            return Err(ApiFailure::bad_request(
                format!(
                    "Invalid 'metadata': key too long. Expected a key with maximum length 64, \
                     but got a key with length {key_len} instead."
                ),
                Some("metadata"),
                Some("string_above_max_length"),
            ));
        }
        let param = format!("metadata.{key}");
        let Value::String(value) = value else {
            return Err(invalid_type(&param, "a string", value));
        };
        let value_len = value.chars().count();
        if value_len > 512 {
            return Err(ApiFailure::bad_request(
                format!(
                    "Invalid '{param}': string too long. Expected a string with maximum length 512, \
                     but got a string with length {value_len} instead."
                ),
                Some(&param),
                Some("string_above_max_length"),
            ));
        }
        checked.insert(key.clone(), value.clone());
    }
    Ok(Some(checked))
}

fn no_such_batch(id: &str) -> ApiFailure {
    ApiFailure::not_found(format!("No batch found with id '{id}'."), Some("batch_id"))
}

/// `GET /batches/{id}`.
pub(crate) async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(batch_id): Path<String>,
) -> Result<Json<Batch>, ApiFailure> {
    shared
        .store
        .batch(&BatchId(batch_id.clone()))
        .filter(|batch| !anthropic::is_message_batch(batch))
        .map(Json)
        .ok_or_else(|| no_such_batch(&batch_id))
}

/// `GET /batches?after=&limit=`, newest first.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<ListPage<Batch>>, ApiFailure> {
    let Query(query) = query.map_err(|rejection| {
        ApiFailure::bad_request(
            format!("Invalid query: {}.", rejection.body_text()),
            None,
            None,
        )
    })?;
    let limit = parse_limit(query.get("limit"), 20, 100)?;
    Ok(Json(shared.store.list_batches(
        query.get("after").map(String::as_str),
        limit,
    )))
}

/// `POST /batches/{id}/cancel`: `cancelling` now, `cancelled` once running requests finish.
pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(batch_id): Path<String>,
) -> Result<Json<Batch>, ApiFailure> {
    let id = BatchId(batch_id.clone());
    if shared
        .store
        .batch(&id)
        .is_some_and(|batch| anthropic::is_message_batch(&batch))
    {
        return Err(no_such_batch(&batch_id));
    }
    match cancel_batch(&shared, &id).await {
        None => Err(no_such_batch(&batch_id)),
        Some(Ok(batch)) => Ok(Json(batch)),
        Some(Err(status)) => Err(ApiFailure::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            format!("Cannot cancel a batch with status '{status}'."),
            None,
            None,
        )),
    }
}

/// Moves a running batch to `cancelling` and tells its run; a batch already cancelling
/// or cancelled is returned as it is. `None` for an unknown batch, `Err` with the status
/// of one that ended otherwise.
pub(crate) async fn cancel_batch(
    shared: &Shared,
    id: &BatchId,
) -> Option<Result<Batch, BatchStatus>> {
    let outcome = shared.store.update_batch(id, |batch| match batch.status {
        BatchStatus::Validating | BatchStatus::InProgress | BatchStatus::Finalizing => {
            batch.status = BatchStatus::Cancelling;
            batch.cancelling_at = Some(ids::now());
            Ok((batch.clone(), true))
        }
        BatchStatus::Cancelling | BatchStatus::Cancelled => Ok((batch.clone(), false)),
        status => Err(status),
    })?;
    let (batch, changed) = match outcome {
        Ok(changed) => changed,
        Err(status) => return Some(Err(status)),
    };
    if changed {
        if let Err(error) = shared.store.save_batch(id).await {
            tracing::error!(batch_id = %id, %error, "cannot save batch state");
        }
        if let Some(token) = shared.store.cancel_token(id) {
            token.cancel();
        }
    }
    Some(Ok(batch))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata_code(metadata: Value) -> Option<(String, Option<String>)> {
        check_metadata(Some(&metadata))
            .err()
            .map(|failure| (failure.error.code.unwrap(), failure.error.param))
    }

    #[test]
    fn metadata_limits() {
        assert_eq!(metadata_code(json!({"run_id": "r1"})), None);
        assert_eq!(
            metadata_code(json!({"tags": ["a"]})),
            Some(("invalid_type".into(), Some("metadata.tags".into())))
        );
        let many: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(
            metadata_code(Value::Object(many)),
            Some((
                "object_above_max_properties".into(),
                Some("metadata".into())
            ))
        );
        assert_eq!(
            metadata_code(json!({"k".repeat(65): "v"})),
            Some(("string_above_max_length".into(), Some("metadata".into())))
        );
        assert_eq!(
            metadata_code(json!({"k": "v".repeat(513)})),
            Some(("string_above_max_length".into(), Some("metadata.k".into())))
        );
        assert_eq!(
            metadata_code(json!("x")),
            Some(("invalid_type".into(), Some("metadata".into())))
        );
    }

    #[test]
    fn endpoints() {
        assert!(check_endpoint("/v1/chat/completions").is_ok());
        let unknown = check_endpoint("/v1/invalid/endpoint").unwrap_err();
        assert!(
            unknown
                .error
                .message
                .starts_with("Invalid value: '/v1/invalid/endpoint'. Supported values are: ")
        );
        assert_eq!(unknown.error.param.as_deref(), Some("endpoint"));
        assert!(check_endpoint("/v1/embeddings").is_err());
    }
}
