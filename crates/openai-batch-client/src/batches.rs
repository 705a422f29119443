//! The Batches API: create (never blindly retried), retrieve, list over all pages, cancel, find by metadata.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::Method;
use serde::Serialize;

use crate::client::{Client, Failed};
use crate::error::Error;
use crate::retry::Verdict;
use crate::types::{Batch, BatchId, FileId, ListPage};

/// The metadata key holding the caller's run id. A create request carrying it is looked up by
/// its metadata after an ambiguous failure instead of being sent again blindly.
pub const RUN_ID_KEY: &str = "run_id";

/// How far back (in seconds before the create started) a lookup for a lost create searches,
/// allowing for clock skew between us and the server.
const LOOKUP_SLACK_SECS: i64 = 3600;

/// The body of `POST /batches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateBatchRequest {
    /// The uploaded input file (`purpose=batch`).
    pub input_file_id: FileId,
    /// The endpoint of every request line, e.g. `/v1/chat/completions`.
    pub endpoint: String,
    /// Always `24h`, the only value the API accepts.
    pub completion_window: String,
    /// Up to 16 string pairs; put a run id under [`RUN_ID_KEY`] to make the create safe to retry.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl CreateBatchRequest {
    /// A request with the `24h` window and no metadata.
    pub fn new(input_file_id: FileId, endpoint: impl Into<String>) -> Self {
        CreateBatchRequest {
            input_file_id,
            endpoint: endpoint.into(),
            completion_window: "24h".to_owned(),
            metadata: BTreeMap::new(),
        }
    }
}

impl Client {
    /// Creates a batch.
    ///
    /// Creating a batch costs money, so an ambiguous failure (timeout, dropped connection, 5xx)
    /// is never retried blindly. When `metadata` holds a [`RUN_ID_KEY`], the client first lists
    /// batches for one with the same input file and the same metadata and returns it if found,
    /// creating again only when none exists. Without a run id an ambiguous failure is returned
    /// as is. Unambiguous failures (408, 409, 429) are retried under the `POST` budget.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] and the transport variants after the retries, [`Error::Decode`] for an
    /// unexpected answer.
    pub async fn create_batch(&self, request: &CreateBatchRequest) -> Result<Batch, Error> {
        let method = Method::POST;
        let path = "/batches";
        let max_retries = self.max_retries(&method);
        let dedupe = request.metadata.contains_key(RUN_ID_KEY);
        let started = unix_now();
        let mut retries = 0;
        loop {
            let builder = self
                .request(method.clone(), path)
                .json(request)
                .timeout(self.request_timeout());
            let Failed {
                error,
                verdict,
                ambiguous,
            } = match self
                .attempt_json(builder, &method, path, retries, max_retries)
                .await
            {
                Ok(batch) => return Ok(batch),
                Err(failed) => failed,
            };
            if ambiguous && !dedupe {
                return Err(error.with_attempts(retries + 1));
            }
            if let Verdict::Retry(delay) = verdict {
                tokio::time::sleep(delay).await;
            }
            if ambiguous {
                tracing::warn!(%error, "create batch failed ambiguously, looking for the batch before retrying");
                let cutoff = started - LOOKUP_SLACK_SECS;
                match self
                    .find_batch(&request.input_file_id, &request.metadata, Some(cutoff))
                    .await
                {
                    Ok(Some(batch)) => return Ok(batch),
                    Ok(None) => {}
                    Err(lookup) => {
                        tracing::warn!(%lookup, "cannot look for the batch, not creating it again");
                        return Err(error.with_attempts(retries + 1));
                    }
                }
            }
            match verdict {
                Verdict::Retry(_) => retries += 1,
                Verdict::Stop => return Err(error.with_attempts(retries + 1)),
            }
        }
    }

    /// Retrieves a batch.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with [`ApiErrorKind::NotFound`](crate::ApiErrorKind::NotFound) for an
    /// unknown id; the transport variants after the retries.
    pub async fn retrieve_batch(&self, batch_id: &BatchId) -> Result<Batch, Error> {
        let path = format!("/batches/{batch_id}");
        self.send_json(Method::GET, &path, |builder| builder).await
    }

    /// Asks to cancel a batch; it answers `cancelling` and becomes `cancelled` within minutes.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with [`ApiErrorKind::Conflict`](crate::ApiErrorKind::Conflict) when the
    /// batch is already completed or failed; as [`Client::retrieve_batch`] otherwise.
    pub async fn cancel_batch(&self, batch_id: &BatchId) -> Result<Batch, Error> {
        let path = format!("/batches/{batch_id}/cancel");
        self.send_json(Method::POST, &path, |builder| builder).await
    }

    /// One page of batches, newest first. Pass the previous page's `last_id` as `after`.
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve_batch`].
    pub async fn list_batches_page(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ListPage<Batch>, Error> {
        self.list_page("/batches", &[], after, limit).await
    }

    /// All batches, newest first, fetching pages of `limit` (1 to 100) as the stream is read.
    ///
    /// The stream ends after the last page, or after the first error.
    pub fn list_batches(
        &self,
        limit: Option<u32>,
    ) -> impl Stream<Item = Result<Batch, Error>> + Send + '_ {
        // `None` once finished; `Some(None)` before the first page; `Some(Some(id))` after `id`.
        let start: Option<Option<String>> = Some(None);
        futures::stream::try_unfold(start, move |cursor| async move {
            let Some(after) = cursor else {
                return Ok(None);
            };
            let page = self.list_batches_page(after.as_deref(), limit).await?;
            let next = match page.data.last() {
                Some(last) if page.has_more => Some(Some(
                    page.last_id.clone().unwrap_or_else(|| last.id.0.clone()),
                )),
                _ => None,
            };
            let items = futures::stream::iter(page.data.into_iter().map(Ok));
            Ok(Some((items, next)))
        })
        .try_flatten()
    }

    /// Finds the newest batch on `input_file_id` whose metadata holds every pair of `metadata`,
    /// searching back to batches created at `created_after` (Unix seconds), or through all
    /// batches when `None`.
    ///
    /// # Errors
    ///
    /// As [`Client::list_batches_page`].
    pub async fn find_batch(
        &self,
        input_file_id: &FileId,
        metadata: &BTreeMap<String, String>,
        created_after: Option<i64>,
    ) -> Result<Option<Batch>, Error> {
        let batches = self.list_batches(Some(100));
        futures::pin_mut!(batches);
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            if created_after.is_some_and(|cutoff| batch.created_at < cutoff) {
                break;
            }
            let same_metadata = metadata
                .iter()
                .all(|(key, value)| batch.metadata_value(key) == Some(value.as_str()));
            if batch.input_file_id == *input_file_id && same_metadata {
                tracing::info!(batch_id = %batch.id, "found an existing batch by its metadata");
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_serializes_as_the_api_wants() {
        let mut request = CreateBatchRequest::new(FileId::from("file-1"), "/v1/chat/completions");
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"input_file_id": "file-1", "endpoint": "/v1/chat/completions", "completion_window": "24h"})
        );
        request
            .metadata
            .insert(RUN_ID_KEY.to_owned(), "abc".to_owned());
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["metadata"], serde_json::json!({"run_id": "abc"}));
    }
}
