//! Waiting for a batch: adaptive polling that backs off while nothing moves.

use std::time::Duration;

use crate::client::Client;
use crate::error::Error;
use crate::types::{Batch, BatchId, BatchStatus, RequestCounts};

/// How [`Client::wait_for_batch`] paces its polls.
///
/// The first poll happens at once; then the interval starts at `initial_interval`, grows by
/// `backoff` after every poll that saw no change, up to `max_interval`, and falls back to
/// `initial_interval` whenever the status or counts move.
#[derive(Debug, Clone, PartialEq)]
pub struct PollConfig {
    /// The interval after a change (default 5 s).
    pub initial_interval: Duration,
    /// The longest interval (default 60 s).
    pub max_interval: Duration,
    /// The growth factor while nothing changes (default 1.5).
    pub backoff: f64,
    /// Polls in a row that may fail with a retryable error (each after its own retries)
    /// before waiting gives up (default 10), so a network blip does not end a long wait.
    pub max_failures: u32,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            initial_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(60),
            backoff: 1.5,
            max_failures: 10,
        }
    }
}

impl PollConfig {
    /// The interval after one that lasted `current`, depending on whether the last poll saw a change.
    pub fn next_interval(&self, current: Duration, changed: bool) -> Duration {
        if changed {
            return self.initial_interval.min(self.max_interval);
        }
        current.mul_f64(self.backoff.max(1.0)).clamp(
            self.initial_interval.min(self.max_interval),
            self.max_interval,
        )
    }
}

impl Client {
    /// Polls a batch until it reaches a terminal status (completed, failed, expired or
    /// cancelled) and returns it.
    ///
    /// `on_change` is called with the first observation and after every change of status or
    /// request counts. An unknown status is reported and waited through.
    ///
    /// Waiting never touches the batch: to stop, drop the future (for example inside
    /// `tokio::time::timeout` or `tokio::select!`); the batch runs on and can be waited for
    /// again later.
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve_batch`]: at once for a final error (such as 404), and for
    /// retryable ones after `max_failures` polls in a row failed.
    pub async fn wait_for_batch(
        &self,
        batch_id: &BatchId,
        config: &PollConfig,
        mut on_change: impl FnMut(&Batch),
    ) -> Result<Batch, Error> {
        let mut seen: Option<(BatchStatus, RequestCounts)> = None;
        let mut interval = config.initial_interval.min(config.max_interval);
        let mut failures = 0;
        loop {
            let batch = match self.retrieve_batch(batch_id).await {
                Ok(batch) => batch,
                Err(err) if err.is_retryable() && failures < config.max_failures => {
                    failures += 1;
                    tracing::warn!(%batch_id, %err, failures, "poll failed, polling on");
                    interval = config.max_interval;
                    tokio::time::sleep(interval).await;
                    continue;
                }
                Err(err) => return Err(err),
            };
            failures = 0;
            let now = (batch.status, batch.counts());
            let changed = seen != Some(now);
            if changed {
                tracing::debug!(%batch_id, status = %batch.status, "batch changed");
                on_change(&batch);
                seen = Some(now);
            }
            if batch.status.is_terminal() {
                return Ok(batch);
            }
            interval = config.next_interval(interval, changed);
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_backs_off_and_resets() {
        let config = PollConfig::default();
        let mut interval = config.initial_interval;
        let mut seen = Vec::new();
        for _ in 0..8 {
            interval = config.next_interval(interval, false);
            seen.push(interval.as_secs_f64());
        }
        assert_eq!(
            seen,
            [7.5, 11.25, 16.875, 25.3125, 37.96875, 56.953125, 60.0, 60.0]
        );
        assert_eq!(config.next_interval(interval, true), Duration::from_secs(5));
    }
}
