//! Facts about models: prices (USD per 1M tokens, standard and batch) and cost arithmetic,
//! output limits, Tier 1 enqueued-token limits, and which families reason or take a
//! `prompt_cache_key`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Prices of one model, USD per 1M tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Standard (synchronous) input price.
    pub input: f64,
    /// Standard cached-input price, when the model has one.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Standard output price.
    pub output: f64,
    /// Batch input price (half of standard for OpenAI).
    pub batch_input: f64,
    /// Batch cached-input price; `None` means no cache discount in Batch.
    #[serde(default)]
    pub batch_cached_input: Option<f64>,
    /// Batch output price.
    pub batch_output: f64,
}

impl ModelPrice {
    /// Cost in USD at batch prices. `cached` is the part of `input` served from cache.
    pub fn batch_cost(&self, input: u64, cached: u64, output: u64) -> f64 {
        let cached = cached.min(input);
        let cached_price = self.batch_cached_input.unwrap_or(self.batch_input);
        per_million(input - cached, self.batch_input)
            + per_million(cached, cached_price)
            + per_million(output, self.batch_output)
    }

    /// Cost in USD of the same tokens at standard (synchronous) prices.
    pub fn standard_cost(&self, input: u64, cached: u64, output: u64) -> f64 {
        let cached = cached.min(input);
        let cached_price = self.cached_input.unwrap_or(self.input);
        per_million(input - cached, self.input)
            + per_million(cached, cached_price)
            + per_million(output, self.output)
    }
}

fn per_million(tokens: u64, usd_per_million: f64) -> f64 {
    tokens as f64 * usd_per_million / 1_000_000.0
}

/// Anthropic's Claude models, standard USD per 1M tokens (input, output), from Anthropic's
/// pricing page as of 2026. The `-0` names are Anthropic's aliases of the Claude 4 models.
const CLAUDE: [(&str, f64, f64); 11] = [
    ("claude-opus-4-5", 5.00, 25.00),
    ("claude-opus-4-1", 15.00, 75.00),
    ("claude-opus-4-0", 15.00, 75.00),
    ("claude-opus-4", 15.00, 75.00),
    ("claude-sonnet-4-5", 3.00, 15.00),
    ("claude-sonnet-4-0", 3.00, 15.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-haiku-4-5", 1.00, 5.00),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-haiku", 0.25, 1.25),
];

/// The context window of every model of [`CLAUDE`], in tokens.
const CLAUDE_CONTEXT_WINDOW: u64 = 200_000;

/// Prices by model name; overridable from settings because prices change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// Model name to prices.
    pub models: BTreeMap<String, ModelPrice>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PriceTable {
    /// The built-in table: the OpenAI pricing page's Standard and Batch rows (2026 copy,
    /// see `shared/reference/openai-batch-api.md` section 6), plus a few older models
    /// whose batch price is half the standard price, and Anthropic's Claude models.
    ///
    /// The Claude rows come from Anthropic's pricing page as of 2026 (standard input and
    /// output per 1M tokens; Message Batches at half of both; a prompt-cache read at a tenth
    /// of the input price, in Batch too). Cache writes cost 1.25 times the input price for
    /// the 5-minute cache; the tool bills them as plain input (a lesson job writes the
    /// cache once per prefix, so the difference is small). Prices change: a `[prices]`
    /// setting overrides any row (see [`crate::RequestSettings::price_table`]).
    ///
    /// ```
    /// let table = batch_request::PriceTable::builtin();
    /// let sonnet = table.get("claude-sonnet-4-5-20250929").unwrap();
    /// assert_eq!((sonnet.input, sonnet.output), (3.0, 15.0));
    /// assert_eq!((sonnet.batch_input, sonnet.batch_output), (1.5, 7.5));
    /// ```
    pub fn builtin() -> Self {
        // model, std input, std cached, std output, batch cached
        type Row = (&'static str, f64, Option<f64>, f64, Option<f64>);
        let rows: &[Row] = &[
            ("gpt-4o-mini", 0.15, Some(0.075), 0.60, None),
            ("gpt-4.1-mini", 0.40, Some(0.10), 1.60, None),
            ("gpt-4.1-nano", 0.10, Some(0.025), 0.40, None),
            ("gpt-4.1", 2.00, Some(0.50), 8.00, None),
            ("gpt-4o", 2.50, Some(1.25), 10.00, None),
            ("gpt-5-mini", 0.25, Some(0.025), 2.00, Some(0.0125)),
            ("gpt-5-nano", 0.05, Some(0.005), 0.40, Some(0.0025)),
            ("gpt-5", 1.25, Some(0.125), 10.00, Some(0.0625)),
        ];
        let models = rows
            .iter()
            .map(|&(name, input, cached_input, output, batch_cached_input)| {
                let price = ModelPrice {
                    input,
                    cached_input,
                    output,
                    batch_input: input / 2.0,
                    batch_cached_input,
                    batch_output: output / 2.0,
                };
                (name.to_owned(), price)
            })
            .chain(CLAUDE.iter().map(|&(name, input, output)| {
                let price = ModelPrice {
                    input,
                    cached_input: Some(input / 10.0),
                    output,
                    batch_input: input / 2.0,
                    batch_cached_input: Some(input / 20.0),
                    batch_output: output / 2.0,
                };
                (name.to_owned(), price)
            }))
            .collect();
        PriceTable { models }
    }

    /// Prices for a model. A dated snapshot (`gpt-4o-mini-2024-07-18`) falls back to its
    /// base name; the longest matching name wins, so `gpt-4o-mini` never picks `gpt-4o`.
    pub fn get(&self, model: &str) -> Option<&ModelPrice> {
        lookup(
            self.models
                .iter()
                .map(|(name, price)| (name.as_str(), price)),
            model,
        )
    }
}

/// The most output tokens a model can produce in one answer, for the models we know; a dated
/// snapshot falls back to its base name, as in [`PriceTable::get`].
///
/// The Claude figures are the "max output" of Anthropic's models overview as of 2026
/// (without the beta headers that raise some of them).
///
/// ```
/// assert_eq!(batch_request::max_output_tokens("claude-sonnet-4-5-20250929"), Some(64_000));
/// assert_eq!(batch_request::max_output_tokens("claude-opus-4-1"), Some(32_000));
/// ```
pub fn max_output_tokens(model: &str) -> Option<u32> {
    const KNOWN: [(&str, u32); 19] = [
        ("gpt-4o-mini", 16_384),
        ("gpt-4o", 16_384),
        ("gpt-4.1-nano", 32_768),
        ("gpt-4.1-mini", 32_768),
        ("gpt-4.1", 32_768),
        ("gpt-5-nano", 128_000),
        ("gpt-5-mini", 128_000),
        ("gpt-5", 128_000),
        ("claude-opus-4-5", 64_000),
        ("claude-opus-4-1", 32_000),
        ("claude-opus-4-0", 32_000),
        ("claude-opus-4", 32_000),
        ("claude-sonnet-4-5", 64_000),
        ("claude-sonnet-4-0", 64_000),
        ("claude-sonnet-4", 64_000),
        ("claude-3-7-sonnet", 64_000),
        ("claude-haiku-4-5", 64_000),
        ("claude-3-5-haiku", 8_192),
        ("claude-3-haiku", 4_096),
    ];
    lookup(KNOWN.iter().map(|(name, limit)| (*name, limit)), model).copied()
}

/// The Batch API's default Tier 1 limit on enqueued input tokens of one model (the input
/// tokens of all its unfinished batches together), for the models whose figure is published;
/// `None` for any other model. A dated snapshot falls back to its base name, as in
/// [`PriceTable::get`].
///
/// The figures are the examples of `shared/reference/openai-batch-api.md` section 5
/// (gpt-4o's is a 2024 figure). Higher tiers allow far more, and the API exposes no limit:
/// a `[enqueued_token_limit]` setting overrides these (see
/// [`crate::RequestSettings::enqueued_token_limit_for`]).
///
/// ```
/// assert_eq!(batch_request::enqueued_token_limit("gpt-5-mini-2025-08-07"), Some(5_000_000));
/// assert_eq!(batch_request::enqueued_token_limit("gpt-4.1-mini"), None);
/// ```
pub fn enqueued_token_limit(model: &str) -> Option<u64> {
    const KNOWN: [(&str, u64); 5] = [
        ("gpt-4.1", 900_000),
        ("gpt-4o-mini", 2_000_000),
        ("gpt-4o", 90_000),
        ("gpt-5-nano", 2_000_000),
        ("gpt-5-mini", 5_000_000),
    ];
    lookup(KNOWN.iter().map(|(name, limit)| (*name, limit)), model).copied()
}

/// The context window of `model` in tokens: the most that its input and its output
/// (`max_completion_tokens`, reasoning included) may add up to in one request, for the models
/// whose figure is published; `None` for any other model, whose requests are not checked.
/// A dated snapshot falls back to its base name, as in [`PriceTable::get`], and a fine-tune
/// (`ft:gpt-4o-mini-2024-07-18:org::id`) counts as its base model.
///
/// The rule is the spec's (`shared/reference/openai-openapi.yaml`, `max_tokens` of
/// `CreateCompletionRequest`): "The token count of your prompt plus `max_tokens` cannot
/// exceed the model's context length". The figures are the "context window" of OpenAI's model
/// pages (platform.openai.com/docs/models, 2025 copies): gpt-4o and gpt-4o-mini 128,000; the
/// gpt-4.1 family 1,047,576; the GPT-5 family 400,000 (of which at most 272,000 input, as
/// its output limit is 128,000); o1, o1-pro, o3, o3-pro, o3-mini and o4-mini 200,000;
/// o1-mini and o1-preview 128,000. The contract (`shared/reference/openai-batch-api.md`)
/// states none. Every Claude model of the price table has 200,000 (Anthropic's models
/// overview as of 2026; the 1M-token window of some Sonnet models needs a beta header the
/// tool does not send). A `[context_window]` setting overrides these (see
/// [`crate::RequestSettings::context_window_for`]).
///
/// ```
/// assert_eq!(batch_request::context_window("gpt-4o-mini-2024-07-18"), Some(128_000));
/// assert_eq!(batch_request::context_window("gpt-4.1-nano"), Some(1_047_576));
/// assert_eq!(batch_request::context_window("claude-haiku-4-5-20251001"), Some(200_000));
/// assert_eq!(batch_request::context_window("llama3.1"), None);
/// ```
pub fn context_window(model: &str) -> Option<u64> {
    if lookup(CLAUDE.iter().map(|(name, ..)| (*name, &())), model).is_some() {
        return Some(CLAUDE_CONTEXT_WINDOW);
    }
    const KNOWN: [(&str, u64); 16] = [
        ("gpt-4o-mini", 128_000),
        ("gpt-4o", 128_000),
        ("gpt-4.1-nano", 1_047_576),
        ("gpt-4.1-mini", 1_047_576),
        ("gpt-4.1", 1_047_576),
        ("gpt-5-nano", 400_000),
        ("gpt-5-mini", 400_000),
        ("gpt-5", 400_000),
        ("o1", 200_000),
        ("o1-pro", 200_000),
        ("o1-mini", 128_000),
        ("o1-preview", 128_000),
        ("o3", 200_000),
        ("o3-pro", 200_000),
        ("o3-mini", 200_000),
        ("o4-mini", 200_000),
    ];
    lookup(
        KNOWN.iter().map(|(name, window)| (*name, window)),
        base_of_fine_tune(model),
    )
    .copied()
}

/// The model a fine-tune was made from (`ft:gpt-4o-mini-2024-07-18:org::id` gives
/// `gpt-4o-mini-2024-07-18`); any other name as it is.
pub(crate) fn base_of_fine_tune(model: &str) -> &str {
    match model.strip_prefix("ft:") {
        Some(rest) => rest.split(':').next().unwrap_or(rest),
        None => model,
    }
}

/// Whether `model` is a reasoning model: the GPT-5 family (except the `gpt-5-chat` models)
/// and the o-series (`o1`, `o3`, `o4`). These take `reasoning_effort`, bill their hidden
/// reasoning as output tokens, and accept only the default `temperature`.
/// A fine-tune (`ft:` prefix) counts as its base model.
///
/// ```
/// assert!(batch_request::is_reasoning_model("gpt-5-mini"));
/// assert!(batch_request::is_reasoning_model("o4-mini-2025-04-16"));
/// assert!(!batch_request::is_reasoning_model("gpt-4o-mini"));
/// assert!(!batch_request::is_reasoning_model("gpt-5-chat-latest"));
/// ```
pub fn is_reasoning_model(model: &str) -> bool {
    let model = model.strip_prefix("ft:").unwrap_or(model);
    ["gpt-5", "o1", "o3", "o4"]
        .iter()
        .any(|family| in_family(model, family))
        && !in_family(model, "gpt-5-chat")
}

/// Whether requests to `model` get a `prompt_cache_key`: OpenAI models with automatic
/// prompt caching, that is the `gpt-4o`, `gpt-4.1` and GPT-5 families and the o-series
/// (`o1`, `o3`, `o4`). The spec's `CreateChatCompletionRequest` lists `prompt_cache_key` for
/// every model; the key is left out for other models (local ones behind the emulator's
/// `--upstream`, older OpenAI models) because they do no prompt caching to route for.
///
/// ```
/// assert!(batch_request::supports_prompt_cache_key("gpt-4.1-mini"));
/// assert!(!batch_request::supports_prompt_cache_key("llama3.1"));
/// ```
pub fn supports_prompt_cache_key(model: &str) -> bool {
    let model = model.strip_prefix("ft:").unwrap_or(model);
    ["gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4"]
        .iter()
        .any(|family| in_family(model, family))
}

/// `gpt-5` itself or a member of its family: `gpt-5-mini`, `gpt-5.1`, `gpt-5:latest`.
fn in_family(model: &str, family: &str) -> bool {
    model
        .strip_prefix(family)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.', ':']))
}

/// The entry named exactly `model`, else the longest name of which `model` is a dated
/// snapshot (`gpt-4o-mini-2024-07-18`), so `gpt-4o-mini` never picks `gpt-4o`.
pub(crate) fn lookup<'a, T>(
    entries: impl Iterator<Item = (&'a str, &'a T)>,
    model: &str,
) -> Option<&'a T> {
    entries
        .filter(|(name, _)| {
            *name == model
                || model
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('-') && is_snapshot_suffix(&rest[1..]))
        })
        .max_by_key(|(name, _)| name.len())
        .map(|(_, value)| value)
}

/// The date part of a snapshot name: `2024-07-18` or `0125` (OpenAI), `20250929`
/// (Anthropic), or Anthropic's `latest` alias. Only a date, so that a newer model
/// (`claude-opus-4-6`) is not taken for a snapshot of an older one (`claude-opus-4`).
fn is_snapshot_suffix(rest: &str) -> bool {
    let digits =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
    match rest.split('-').collect::<Vec<_>>()[..] {
        ["latest"] => true,
        [date] => digits(date, 4) || digits(date, 8),
        [year, month, day] => digits(year, 4) && digits(month, 2) && digits(day, 2),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_prices_match_the_contract() {
        let table = PriceTable::builtin();
        let mini = table.get("gpt-4o-mini").unwrap();
        assert_eq!((mini.batch_input, mini.batch_output), (0.075, 0.30));
        let five = table.get("gpt-5-mini").unwrap();
        assert_eq!((five.batch_input, five.batch_output), (0.125, 1.00));
        assert_eq!(five.batch_cached_input, Some(0.0125));
        let nano = table.get("gpt-5-nano").unwrap();
        assert_eq!((nano.batch_input, nano.batch_output), (0.025, 0.20));
        let mini41 = table.get("gpt-4.1-mini").unwrap();
        assert_eq!((mini41.batch_input, mini41.batch_output), (0.20, 0.80));
    }

    #[test]
    fn snapshots_fall_back_to_the_longest_base_name() {
        let table = PriceTable::builtin();
        let snapshot = table.get("gpt-4o-mini-2024-07-18").unwrap();
        assert_eq!(snapshot, table.get("gpt-4o-mini").unwrap());
        assert_eq!(
            table.get("gpt-5-2025-08-07").unwrap(),
            table.get("gpt-5").unwrap()
        );
        assert!(table.get("gpt-4o-minimal").is_none());
        assert!(table.get("llama3").is_none());
    }

    #[test]
    fn output_limits_follow_snapshots() {
        assert_eq!(max_output_tokens("gpt-4o-mini"), Some(16_384));
        assert_eq!(max_output_tokens("gpt-4o-mini-2024-07-18"), Some(16_384));
        assert_eq!(max_output_tokens("gpt-4.1-mini"), Some(32_768));
        assert_eq!(max_output_tokens("gpt-5-2025-08-07"), Some(128_000));
        assert_eq!(max_output_tokens("llama3.1"), None);
    }

    #[test]
    fn enqueued_token_limits_follow_the_contract() {
        let check = |model: &str, limit: Option<u64>| {
            assert_eq!(enqueued_token_limit(model), limit, "{model}");
        };
        check("gpt-4.1", Some(900_000));
        check("gpt-4.1-2025-04-14", Some(900_000));
        check("gpt-4o-mini", Some(2_000_000));
        check("gpt-4o-mini-2024-07-18", Some(2_000_000));
        check("gpt-4o", Some(90_000));
        check("gpt-5-nano", Some(2_000_000));
        check("gpt-5-mini", Some(5_000_000));
        check("gpt-5-mini-2025-08-07", Some(5_000_000));
        // Not published: look it up in the organization's settings.
        check("gpt-4.1-mini", None);
        check("gpt-4.1-nano", None);
        check("gpt-5", None);
        check("llama3.1", None);
    }

    #[test]
    fn context_windows_follow_snapshots_and_fine_tunes() {
        let check = |model: &str, window: Option<u64>| {
            assert_eq!(context_window(model), window, "{model}");
        };
        check("gpt-4o-mini", Some(128_000));
        check("gpt-4o", Some(128_000));
        check("gpt-4o-2024-08-06", Some(128_000));
        check("gpt-4.1-mini-2025-04-14", Some(1_047_576));
        check("gpt-5-nano", Some(400_000));
        check("gpt-5-2025-08-07", Some(400_000));
        check("o3-mini", Some(200_000));
        check("o1-mini", Some(128_000));
        check("o4-mini-2025-04-16", Some(200_000));
        check("ft:gpt-4o-mini-2024-07-18:org::abc123", Some(128_000));
        // Unknown models are not checked.
        check("gpt-5-chat-latest", None);
        check("gpt-4o-minimal", None);
        check("llama3.1", None);
    }

    #[test]
    fn model_families() {
        for model in [
            "gpt-5",
            "gpt-5-mini",
            "gpt-5.1",
            "o1",
            "o3-mini",
            "o4-mini",
            "ft:gpt-5-nano:org::x",
        ] {
            assert!(is_reasoning_model(model), "{model}");
        }
        for model in [
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-5-chat-latest",
            "o1x",
            "llama3.1",
            "gpt-50",
        ] {
            assert!(!is_reasoning_model(model), "{model}");
        }
        for model in [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1-nano",
            "gpt-5-mini",
            "o3",
            "ft:gpt-4o-mini:org::x",
        ] {
            assert!(supports_prompt_cache_key(model), "{model}");
        }
        for model in ["gpt-4-turbo", "gpt-3.5-turbo", "llama3.1", "my-model"] {
            assert!(!supports_prompt_cache_key(model), "{model}");
        }
    }

    #[test]
    fn claude_prices_and_limits() {
        let table = PriceTable::builtin();
        // model, standard input and output, max output tokens.
        let check = |model: &str, input: f64, output: f64, max_output: u32| {
            let price = table.get(model).unwrap_or_else(|| panic!("{model}"));
            assert_eq!((price.input, price.output), (input, output), "{model}");
            assert_eq!(
                (price.batch_input, price.batch_output),
                (input / 2.0, output / 2.0),
                "{model}"
            );
            let cached = price.cached_input.unwrap();
            assert!((cached - input * 0.1).abs() < 1e-12, "{model}");
            let batch_cached = price.batch_cached_input.unwrap();
            assert!((batch_cached - input * 0.05).abs() < 1e-12, "{model}");
            assert_eq!(max_output_tokens(model), Some(max_output), "{model}");
            assert_eq!(context_window(model), Some(200_000), "{model}");
            assert!(!is_reasoning_model(model), "{model}");
            assert!(!supports_prompt_cache_key(model), "{model}");
        };
        check("claude-opus-4-5", 5.0, 25.0, 64_000);
        check("claude-opus-4-5-20251101", 5.0, 25.0, 64_000);
        check("claude-opus-4-1", 15.0, 75.0, 32_000);
        check("claude-opus-4-1-20250805", 15.0, 75.0, 32_000);
        check("claude-opus-4", 15.0, 75.0, 32_000);
        check("claude-opus-4-0", 15.0, 75.0, 32_000);
        check("claude-opus-4-20250514", 15.0, 75.0, 32_000);
        check("claude-sonnet-4-5", 3.0, 15.0, 64_000);
        check("claude-sonnet-4-5-20250929", 3.0, 15.0, 64_000);
        check("claude-sonnet-4", 3.0, 15.0, 64_000);
        check("claude-sonnet-4-20250514", 3.0, 15.0, 64_000);
        check("claude-3-7-sonnet", 3.0, 15.0, 64_000);
        check("claude-3-7-sonnet-20250219", 3.0, 15.0, 64_000);
        check("claude-3-7-sonnet-latest", 3.0, 15.0, 64_000);
        check("claude-haiku-4-5", 1.0, 5.0, 64_000);
        check("claude-haiku-4-5-20251001", 1.0, 5.0, 64_000);
        check("claude-3-5-haiku", 0.80, 4.0, 8_192);
        check("claude-3-5-haiku-20241022", 0.80, 4.0, 8_192);
        check("claude-3-haiku-20240307", 0.25, 1.25, 4_096);
        // A newer model is not a snapshot of an older one: no price, limit or window.
        for model in ["claude-opus-4-6", "claude-sonnet-4-7", "claude-…"] {
            assert!(table.get(model).is_none(), "{model}");
            assert_eq!(max_output_tokens(model), None, "{model}");
            assert_eq!(context_window(model), None, "{model}");
        }
        // Batch: 1M input, 1M cache reads, 1M output of claude-sonnet-4-5.
        let sonnet = table.get("claude-sonnet-4-5").unwrap();
        let cost = sonnet.batch_cost(2_000_000, 1_000_000, 1_000_000);
        assert!((cost - (1.5 + 0.15 + 7.5)).abs() < 1e-12, "{cost}");
    }

    #[test]
    fn claude_prices_are_overridden_by_settings() {
        let settings = crate::RequestSettings::from_toml_str(
            "[prices.claude-sonnet-4-5]\ninput = 2.0\noutput = 10.0\n\n[context_window]\nclaude-sonnet-4-5 = 1000000\n",
            std::path::Path::new("lessons.toml"),
        )
        .unwrap();
        let table = settings.price_table();
        let sonnet = table.get("claude-sonnet-4-5-20250929").unwrap();
        assert_eq!((sonnet.batch_input, sonnet.batch_output), (1.0, 5.0));
        assert_eq!(
            settings.context_window_for("claude-sonnet-4-5-20250929"),
            Some(1_000_000)
        );
        assert_eq!(
            settings.context_window_for("claude-haiku-4-5"),
            Some(200_000)
        );
    }

    #[test]
    fn snapshot_suffixes_are_dates() {
        for rest in ["2024-07-18", "0125", "20250929", "latest"] {
            assert!(is_snapshot_suffix(rest), "{rest}");
        }
        for rest in ["", "6", "5-20250929", "1", "2024-7-18", "chat-latest", "x"] {
            assert!(!is_snapshot_suffix(rest), "{rest}");
        }
    }

    #[test]
    fn cost_arithmetic() {
        let table = PriceTable::builtin();
        let mini = table.get("gpt-4o-mini").unwrap();
        // 1M input at 0.075 + 1M output at 0.30.
        let cost = mini.batch_cost(1_000_000, 0, 1_000_000);
        assert!((cost - 0.375).abs() < 1e-12);
        // No batch cache discount for gpt-4o-mini: cached tokens cost the same.
        assert!((mini.batch_cost(1_000_000, 500_000, 0) - 0.075).abs() < 1e-12);
        let std = mini.standard_cost(1_000_000, 0, 1_000_000);
        assert!((std - 0.75).abs() < 1e-12);
        let five = table.get("gpt-5-mini").unwrap();
        let cached = five.batch_cost(1_000_000, 1_000_000, 0);
        assert!((cached - 0.0125).abs() < 1e-12);
    }
}
