//! The Message Batches routes but create (`create.rs`): retrieve, list, cancel, results
//! and delete, and the Anthropic headers every `/v1/messages` call needs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use openai_batch_client::{Batch, BatchId, FileId};
use serde::Serialize;

use crate::anthropic::batch::{
    Bookkeeping, MessageBatch, is_archived, message_batch, missing_result,
};
use crate::anthropic::error::AnthropicFailure;
use crate::anthropic::is_message_batch;
use crate::anthropic::results::{Sources, stream};
use crate::batches;
use crate::server::Shared;

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

/// `http://<host>` as the client reached the emulator, for `results_url`.
pub(crate) fn origin(shared: &Shared, headers: &HeaderMap) -> String {
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
    Ok(Json(message_batch(
        &batch,
        &origin(&shared, &headers),
        shared.store.file_clock(),
    )))
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
    let now = shared.store.file_clock();
    let data: Vec<MessageBatch> = batches[start..end]
        .iter()
        .map(|batch| message_batch(batch, &origin, now))
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
        Some(Ok(batch)) => Ok(Json(message_batch(
            &batch,
            &origin(&shared, &headers),
            shared.store.file_clock(),
        ))),
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
    if is_archived(&batch, shared.store.file_clock()) {
        return Err(AnthropicFailure::not_found(format!(
            "The results of message batch {batch_id} are no longer available: results are kept for 29 days after a batch is created."
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
