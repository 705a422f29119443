//! The provider layer: the job submits, waits for, downloads and cleans up its shards through
//! one trait, [`BatchProvider`], implemented for OpenAI's Files + Batches (the
//! `openai-batch-client` [`JobRunner`]) and Anthropic's Message Batches ([`AnthropicRunner`]).
//!
//! Both keep the same ledger ([`Ledger`], `ledger.json` in the job's folder), so resume,
//! attaching, `--new`, the report and `check-batch-status` read one shape; the ledger's
//! context names the provider. Shards are written once, as chat-completion request lines;
//! the Anthropic runner sends each line as Messages API parameters ([`params`]), and its
//! downloaded results are read by `lesson-writer` as the Batch API's, so one classifier gives
//! both providers the same outcomes.

pub(crate) mod anthropic;
pub(crate) mod params;

use std::path::Path;

use batch_request::Provider;
use openai_batch_client::{JobRunner, Ledger, ShardInput, ShardRecord};

use crate::Error;

pub(crate) use anthropic::AnthropicRunner;

/// The ledger context key naming the provider of the job's batches.
pub(crate) const PROVIDER_KEY: &str = "provider";

/// A connected client of one provider, as [`Job::execute`](crate::Job::execute) and
/// [`Job::preview`](crate::Job::preview) take it.
#[derive(Debug, Clone)]
pub enum ProviderClient {
    /// OpenAI's Files + Batches API (or a server speaking it, such as the emulator).
    OpenAi(openai_batch_client::Client),
    /// Anthropic's Message Batches API (or the emulator's).
    Anthropic(anthropic_batch_client::Client),
}

impl ProviderClient {
    /// Which provider the client speaks to.
    pub fn provider(&self) -> Provider {
        match self {
            ProviderClient::OpenAi(_) => Provider::OpenAi,
            ProviderClient::Anthropic(_) => Provider::Anthropic,
        }
    }
}

impl From<openai_batch_client::Client> for ProviderClient {
    fn from(client: openai_batch_client::Client) -> Self {
        ProviderClient::OpenAi(client)
    }
}

impl From<anthropic_batch_client::Client> for ProviderClient {
    fn from(client: anthropic_batch_client::Client) -> Self {
        ProviderClient::Anthropic(client)
    }
}

/// The provider of a ledger's batches: its context's `provider`, else OpenAI (ledgers written
/// before there was a choice).
pub(crate) fn ledger_provider(ledger: &Ledger) -> Provider {
    ledger
        .context
        .get(PROVIDER_KEY)
        .and_then(|value| value.as_str())
        .and_then(|name| name.parse().ok())
        .unwrap_or(Provider::OpenAi)
}

/// What the job needs of a provider's batch runner. Every step records itself in the ledger
/// before and after it happens, so a run that is killed resumes without paying twice.
pub(crate) trait BatchProvider {
    /// Stores the caller's context (the job's fingerprint and provider) in the ledger.
    fn set_context(&self, context: serde_json::Map<String, serde_json::Value>)
    -> Result<(), Error>;

    /// Registers the shards and creates their batches (and those of the ledger's shards not
    /// created yet), without waiting.
    async fn submit(&self, shards: &[ShardInput]) -> Result<(), Error>;

    /// Submits as [`BatchProvider::submit`], then waits until every unfinished batch of the
    /// ledger has ended and its results are downloaded into `dir`.
    async fn drive(&self, shards: &[ShardInput], dir: &Path) -> Result<(), Error>;

    /// Shards whose results are downloaded and not handed on yet.
    fn ready(&self) -> Vec<ShardRecord>;

    /// Records that the job took a shard's results over.
    fn mark_handed_on(&self, index: usize) -> Result<(), Error>;

    /// Removes what a finished shard left on the server, unless `keep_results`.
    async fn clean_up(&self, index: usize, keep_results: bool) -> Result<(), Error>;

    /// Every shard of the ledger.
    fn shards(&self) -> Vec<ShardRecord>;
}

impl BatchProvider for JobRunner {
    fn set_context(
        &self,
        context: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Error> {
        Ok(JobRunner::set_context(self, context)?)
    }

    async fn submit(&self, shards: &[ShardInput]) -> Result<(), Error> {
        JobRunner::submit(self, shards).await?;
        Ok(())
    }

    async fn drive(&self, shards: &[ShardInput], dir: &Path) -> Result<(), Error> {
        Ok(JobRunner::drive(self, shards, dir).await?)
    }

    fn ready(&self) -> Vec<ShardRecord> {
        JobRunner::ready(self)
    }

    fn mark_handed_on(&self, index: usize) -> Result<(), Error> {
        Ok(JobRunner::mark_handed_on(self, index)?)
    }

    async fn clean_up(&self, index: usize, keep_results: bool) -> Result<(), Error> {
        JobRunner::delete_remote_files(self, index, keep_results).await?;
        Ok(())
    }

    fn shards(&self) -> Vec<ShardRecord> {
        JobRunner::shards(self)
    }
}
