//! The Message Batches calls: create (checked first, never retried blindly), retrieve, list
//! (one page, or every page as a stream), cancel and delete.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use reqwest::Method;

use crate::client::{Client, Failed};
use crate::error::Error;
use crate::request::{BatchRequest, create_body};
use crate::retry::Verdict;
use crate::types::{DeletedMessageBatch, ListParams, MessageBatch, MessageBatchId, Page};

/// The path of the batches collection.
pub(crate) const BATCHES_PATH: &str = "/v1/messages/batches";

impl Client {
    /// Creates a batch of `requests`; processing starts at once.
    ///
    /// The requests are checked first, and nothing is sent when they break a limit: at least
    /// one, at most [`MAX_REQUESTS`](crate::MAX_REQUESTS), unique `custom_id`s, a body of at
    /// most [`MAX_BATCH_BYTES`](crate::MAX_BATCH_BYTES) (each [`CustomId`](crate::CustomId)
    /// already matches the pattern).
    ///
    /// A batch costs money and the API has no idempotency key, so a failure after which the
    /// batch may exist (a timeout, a connection broken after sending, a 5xx other than 529)
    /// is returned at once, [`Error::is_ambiguous`] telling the caller to look for the batch
    /// with [`Client::list_batches`] before creating it again. Failures that prove nothing was
    /// created (a refused connection, 408, 409, 429, 529) are retried as the SDK does.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyBatch`], [`Error::TooManyRequests`], [`Error::DuplicateCustomId`],
    /// [`Error::BatchTooLarge`] before sending; [`Error::Api`] and the transport variants
    /// after the retries; [`Error::Decode`] for an unexpected answer.
    pub async fn create_batch(&self, requests: &[BatchRequest]) -> Result<MessageBatch, Error> {
        let body = Bytes::from(create_body(requests)?);
        let method = Method::POST;
        let mut retries = 0;
        loop {
            match self
                .attempt_json(&method, BATCHES_PATH, &[], Some(body.clone()), retries)
                .await
            {
                Ok(batch) => return Ok(batch),
                Err(Failed {
                    error,
                    ambiguous: true,
                    ..
                }) => return Err(error.with_attempts(retries + 1)),
                Err(failed) => {
                    if failed.verdict != Verdict::Stop {
                        tracing::warn!(error = %failed.error, "create batch refused, retrying");
                    }
                    self.pause(failed, &mut retries, &method, BATCHES_PATH)
                        .await?
                }
            }
        }
    }

    /// Retrieves a batch; idempotent, so this is how a batch is polled.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with [`ApiErrorKind::NotFound`](crate::ApiErrorKind::NotFound) for an
    /// unknown id; the transport variants after the retries; [`Error::Decode`].
    pub async fn retrieve_batch(&self, batch_id: &MessageBatchId) -> Result<MessageBatch, Error> {
        let path = format!("{BATCHES_PATH}/{batch_id}");
        self.send_json(Method::GET, &path, &[], None).await
    }

    /// Asks to cancel a batch: it answers `canceling` and ends `ended`; requests already running
    /// may still finish.
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve_batch`].
    pub async fn cancel_batch(&self, batch_id: &MessageBatchId) -> Result<MessageBatch, Error> {
        let path = format!("{BATCHES_PATH}/{batch_id}/cancel");
        self.send_json(Method::POST, &path, &[], None).await
    }

    /// Deletes a batch whose processing has ended (cancel a running one first).
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve_batch`]; the API refuses a batch still processing.
    pub async fn delete_batch(
        &self,
        batch_id: &MessageBatchId,
    ) -> Result<DeletedMessageBatch, Error> {
        let path = format!("{BATCHES_PATH}/{batch_id}");
        self.send_json(Method::DELETE, &path, &[], None).await
    }

    /// One page of the workspace's batches, newest first.
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve_batch`].
    pub async fn list_batches_page(
        &self,
        params: &ListParams,
    ) -> Result<Page<MessageBatch>, Error> {
        let mut query = Vec::new();
        if let Some(before_id) = &params.before_id {
            query.push(("before_id", before_id.clone()));
        }
        if let Some(after_id) = &params.after_id {
            query.push(("after_id", after_id.clone()));
        }
        if let Some(limit) = params.limit {
            query.push(("limit", limit.to_string()));
        }
        self.send_json(Method::GET, BATCHES_PATH, &query, None)
            .await
    }

    /// Every batch, newest first, fetching pages of `limit` (1 to 1,000) as the stream is read,
    /// each after the last id of the one before.
    ///
    /// The stream ends after the last page, or after the first error.
    pub fn list_batches(
        &self,
        limit: Option<u32>,
    ) -> impl Stream<Item = Result<MessageBatch, Error>> + Send + '_ {
        // `None` once finished; `Some(None)` before the first page; `Some(Some(id))` after `id`.
        let start: Option<Option<String>> = Some(None);
        futures::stream::try_unfold(start, move |cursor| async move {
            let Some(after_id) = cursor else {
                return Ok(None);
            };
            let params = ListParams {
                after_id,
                limit,
                ..ListParams::default()
            };
            let page = self.list_batches_page(&params).await?;
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
}
