//! The enqueued-token limit's bookkeeping: per model, the prompt tokens of the batches
//! that passed validation and are not terminal yet, their peak, and the batches refused.
//!
//! The real API refuses a batch whose prompt tokens would take its model's enqueued
//! sum over the organization's limit; the batch is created, then `failed` with
//! `token_limit_exceeded`. Nothing here is persisted: after a restart the sums are
//! rebuilt from the unfinished batches.

use std::collections::{BTreeMap, HashMap};

use openai_batch_client::{BatchError, BatchId};
use serde::{Deserialize, Serialize};

/// What the emulator counted, as [`Emulator::stats`](crate::Emulator::stats) and
/// `GET /v1/emulator/stats` report it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmulatorStats {
    /// Per model, the prompt tokens of the batches enqueued now: past validation and
    /// not terminal yet (`in_progress`, `finalizing`, `cancelling`). Models at zero are left out.
    pub enqueued_tokens: BTreeMap<String, u64>,
    /// Per model, the highest enqueued sum ever reached since the emulator started.
    pub peak_enqueued_tokens: BTreeMap<String, u64>,
    /// How many batches failed with `token_limit_exceeded`.
    pub token_limit_failures: u64,
}

/// A batch refused because its model's enqueued sum would pass the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LimitExceeded {
    /// The model whose sum would pass the limit.
    pub(crate) model: String,
    /// The configured limit.
    pub(crate) limit: u64,
}

impl LimitExceeded {
    /// The batch error of the real API: code `token_limit_exceeded`, no param, no line.
    pub(crate) fn to_batch_error(&self) -> BatchError {
        BatchError {
            code: Some("token_limit_exceeded".to_owned()),
            message: Some(format!(
                "Enqueued token limit reached for {} in organization org-emulator. \
                 Limit: {} enqueued tokens. Please try again once some in_progress batches \
                 have been completed.",
                self.model,
                with_commas(self.limit)
            )),
            param: None,
            line: None,
        }
    }
}

/// The enqueued sums and which batch holds which tokens. Lives under the store's lock,
/// so the check and the reservation are one step for concurrent validations.
#[derive(Debug, Default)]
pub(crate) struct Enqueued {
    held: HashMap<BatchId, BTreeMap<String, u64>>,
    stats: EmulatorStats,
}

impl Enqueued {
    /// Enqueues a batch's prompt tokens (per model), or refuses it when one of its
    /// models would pass `limit` (`None`: no limit).
    ///
    /// A batch that already holds tokens (resumed after a restart) keeps its place:
    /// it is recounted and never refused.
    pub(crate) fn reserve(
        &mut self,
        batch_id: &BatchId,
        tokens: BTreeMap<String, u64>,
        limit: Option<u64>,
    ) -> Result<(), LimitExceeded> {
        if let Some(previous) = self.held.remove(batch_id) {
            self.subtract(&previous);
        } else if let Some(limit) = limit {
            let over = tokens.iter().find(|(model, tokens)| {
                let enqueued = self.stats.enqueued_tokens.get(*model).copied();
                enqueued.unwrap_or(0).saturating_add(**tokens) > limit
            });
            if let Some((model, _)) = over {
                self.stats.token_limit_failures += 1;
                return Err(LimitExceeded {
                    model: model.clone(),
                    limit,
                });
            }
        }
        for (model, tokens) in &tokens {
            let enqueued = self.stats.enqueued_tokens.entry(model.clone()).or_default();
            *enqueued = enqueued.saturating_add(*tokens);
            let peak = self
                .stats
                .peak_enqueued_tokens
                .entry(model.clone())
                .or_default();
            *peak = (*peak).max(*enqueued);
        }
        self.held.insert(batch_id.clone(), tokens);
        Ok(())
    }

    /// Gives back a batch's tokens, if it holds any (it reached a terminal state).
    pub(crate) fn release(&mut self, batch_id: &BatchId) {
        if let Some(tokens) = self.held.remove(batch_id) {
            self.subtract(&tokens);
        }
    }

    /// The current sums, their peaks and the refusals.
    pub(crate) fn stats(&self) -> EmulatorStats {
        self.stats.clone()
    }

    fn subtract(&mut self, tokens: &BTreeMap<String, u64>) {
        for (model, tokens) in tokens {
            if let Some(enqueued) = self.stats.enqueued_tokens.get_mut(model) {
                *enqueued = enqueued.saturating_sub(*tokens);
                if *enqueued == 0 {
                    self.stats.enqueued_tokens.remove(model);
                }
            }
        }
    }
}

/// `2000000` as `2,000,000`, as the real API writes limits.
fn with_commas(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (at, digit) in digits.chars().enumerate() {
        if at > 0 && (digits.len() - at).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs
            .iter()
            .map(|(model, n)| ((*model).to_owned(), *n))
            .collect()
    }

    fn id(name: &str) -> BatchId {
        BatchId(name.to_owned())
    }

    #[test]
    fn commas_every_three_digits() {
        let check = |n, expected: &str| assert_eq!(with_commas(n), expected);
        check(0, "0");
        check(999, "999");
        check(1000, "1,000");
        check(90_000, "90,000");
        check(2_000_000, "2,000,000");
        check(123_456_789_012, "123,456,789,012");
    }

    #[test]
    fn the_limit_is_per_model_and_inclusive() {
        let mut enqueued = Enqueued::default();
        let limit = Some(100);
        assert_eq!(
            enqueued.reserve(&id("a"), tokens(&[("m", 60)]), limit),
            Ok(())
        );
        assert_eq!(
            enqueued.reserve(&id("b"), tokens(&[("m", 40)]), limit),
            Ok(())
        );
        assert_eq!(
            enqueued.reserve(&id("c"), tokens(&[("m", 1)]), limit),
            Err(LimitExceeded {
                model: "m".into(),
                limit: 100
            })
        );
        // Another model has its own sum.
        assert_eq!(
            enqueued.reserve(&id("d"), tokens(&[("n", 100)]), limit),
            Ok(())
        );
        // One batch over the limit on its own is refused too.
        assert!(
            enqueued
                .reserve(&id("e"), tokens(&[("o", 101)]), limit)
                .is_err()
        );
        let stats = enqueued.stats();
        assert_eq!(stats.enqueued_tokens, tokens(&[("m", 100), ("n", 100)]));
        assert_eq!(stats.token_limit_failures, 2);

        enqueued.release(&id("a"));
        enqueued.release(&id("a"));
        enqueued.release(&id("d"));
        assert_eq!(
            enqueued.reserve(&id("c"), tokens(&[("m", 60)]), limit),
            Ok(())
        );
        let stats = enqueued.stats();
        assert_eq!(stats.enqueued_tokens, tokens(&[("m", 100)]));
        assert_eq!(
            stats.peak_enqueued_tokens,
            tokens(&[("m", 100), ("n", 100)])
        );
    }

    #[test]
    fn a_resumed_batch_is_recounted_not_refused() {
        let mut enqueued = Enqueued::default();
        enqueued
            .reserve(&id("a"), tokens(&[("m", 80)]), None)
            .unwrap();
        enqueued
            .reserve(&id("b"), tokens(&[("m", 80)]), None)
            .unwrap();
        assert_eq!(
            enqueued.reserve(&id("a"), tokens(&[("m", 80)]), Some(100)),
            Ok(())
        );
        assert_eq!(enqueued.stats().enqueued_tokens, tokens(&[("m", 160)]));
        assert_eq!(enqueued.stats().token_limit_failures, 0);
    }

    #[test]
    fn the_error_has_the_real_api_shape() {
        let error = LimitExceeded {
            model: "gpt-4o-mini".into(),
            limit: 2_000_000,
        }
        .to_batch_error();
        assert_eq!(error.code.as_deref(), Some("token_limit_exceeded"));
        assert_eq!(
            error.message.as_deref(),
            Some(
                "Enqueued token limit reached for gpt-4o-mini in organization org-emulator. \
                 Limit: 2,000,000 enqueued tokens. Please try again once some in_progress \
                 batches have been completed."
            )
        );
        assert_eq!((error.param, error.line), (None, None));
    }
}
