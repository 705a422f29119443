//! Token and cost estimates: input tokens counted with the model's real tokenizer, expected
//! and upper-bound output tokens, and costs at batch and standard prices.
//!
//! Counting is fast because every prompt of a job repeats the same text (template and outline)
//! and differs only in a few lines. A prompt is cut into chunks at places where the tokenizer's
//! pre-splitting regex always breaks, so the sum of the chunks' counts equals the count of the
//! whole text (tested against one-pass counts): first into paragraphs, and a paragraph not seen
//! before into words. Each distinct chunk is tokenized once and then found by its hash, so the
//! shared text costs a hash per paragraph and the lesson's own lines a hash per word.
//!
//! Prompt caching: the leading messages that every request of a set repeats byte for byte
//! (the system message of a split template) are the shared prefix. OpenAI serves a repeated
//! prefix of at least 1,024 tokens from its cache, in steps of 128 tokens, and in Batch
//! discounts it only for models with a batch cached-input price (the GPT-5 family). The
//! estimate assumes that the first request of each estimated set (each shard) pays full price
//! and every later one is a cache hit for the shared prefix; real hit rates can be lower.
//! Anthropic caches a marked prefix of at least 1,024 tokens whole, without steps, and
//! discounts reads in Message Batches too.
//!
//! Claude: Anthropic publishes no offline tokenizer (its token-counting endpoint is an API
//! call), so the input of a Claude model ([`Provider::Anthropic`]) is counted with
//! `o200k_base` and scaled by [`CLAUDE_TOKEN_FACTOR`] (1.2), and the [`Estimate`] says it is
//! [`Estimate::approximate`]. The factor: Claude's tokenizer is reported to give roughly 10 to
//! 30% more tokens than `o200k_base` on English prose (more on code and non-Latin scripts),
//! so 1.2 is the middle of that range, erring towards more tokens, and so towards a higher
//! cost and an earlier context-window refusal, rather than fewer. The usage the results
//! report is what is billed.

use std::collections::BTreeMap;
use std::hash::Hasher;

use curriculum_parser::Complexity;
use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};
use tiktoken::CoreBpe;

use crate::settings::{ExpectedOutputTokens, ExpectedReasoningTokens};
use crate::{
    ChatRequest, LessonRequest, PriceTable, Provider, ReasoningEffort, RequestLine, RequestSettings,
};

/// The factor by which `o200k_base` counts are scaled to approximate Claude's tokens (see the
/// module's documentation for why 1.2).
pub const CLAUDE_TOKEN_FACTOR: f64 = CLAUDE_TOKEN_RATIO.0 as f64 / CLAUDE_TOKEN_RATIO.1 as f64;

/// [`CLAUDE_TOKEN_FACTOR`] as a fraction, so the same input always gives the same count.
const CLAUDE_TOKEN_RATIO: (u64, u64) = (6, 5);

/// Tokens and costs of a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// How many requests.
    pub requests: u64,
    /// Input tokens, chat message overhead included.
    pub input_tokens: u64,
    /// Output tokens expected from the lessons' complexity.
    pub expected_output_tokens: u64,
    /// Output tokens if every request used its whole `max_completion_tokens`.
    pub max_output_tokens: u64,
    /// Expected cost at batch prices; `None` when a model has no price.
    pub expected_usd: Option<f64>,
    /// Upper-bound cost at batch prices (input + `max_output_tokens`).
    pub max_usd: Option<f64>,
    /// The expected tokens at standard (synchronous) prices: what the batch saves against.
    pub standard_usd: Option<f64>,
    /// Things the user should know (a model without a price, an unknown tokenizer).
    pub warnings: Vec<String>,
    /// Input tokens of one request that are its shared prefix: the leading messages (never
    /// the last one) identical, byte for byte, in every request of the set, chat overhead
    /// included. When estimates of different prefixes are added, the smallest.
    #[serde(default)]
    pub shared_prefix_tokens: u64,
    /// The shared prefix summed over all requests (part of `input_tokens`).
    #[serde(default)]
    pub shared_prefix_tokens_total: u64,
    /// Input tokens expected to be served from the prompt cache at the batch cached-input
    /// price: the shared prefix (when at least 1,024 tokens, rounded down to OpenAI's
    /// 128-token steps) of every request but the first of each set, for models with a batch
    /// cached-input price; 0 for other models.
    #[serde(default)]
    pub cached_input_tokens: u64,
    /// Hidden reasoning tokens expected from reasoning models (part of
    /// `expected_output_tokens`).
    #[serde(default)]
    pub expected_reasoning_tokens: u64,
    /// Expected cost at batch prices with `cached_input_tokens` at the batch cached-input
    /// price; equal to `expected_usd` when no model of the set has one, `None` when a model
    /// has no price.
    #[serde(default)]
    pub expected_usd_with_cache: Option<f64>,
    /// Whether the token counts, and so the costs, are approximate: some requests are for a
    /// model whose tokenizer is not public (Claude's), counted with `o200k_base` and scaled
    /// by [`CLAUDE_TOKEN_FACTOR`].
    #[serde(default)]
    pub approximate: bool,
}

impl Estimate {
    /// Adds another estimate to this one (e.g. to total the shards of a job).
    pub fn add(&mut self, other: &Estimate) {
        if self.requests == 0 {
            self.shared_prefix_tokens = other.shared_prefix_tokens;
        } else if other.requests > 0 {
            self.shared_prefix_tokens = self.shared_prefix_tokens.min(other.shared_prefix_tokens);
        }
        self.shared_prefix_tokens_total += other.shared_prefix_tokens_total;
        self.approximate |= other.approximate;
        self.cached_input_tokens += other.cached_input_tokens;
        self.expected_reasoning_tokens += other.expected_reasoning_tokens;
        self.requests += other.requests;
        self.input_tokens += other.input_tokens;
        self.expected_output_tokens += other.expected_output_tokens;
        self.max_output_tokens += other.max_output_tokens;
        let sum = |a: Option<f64>, b: Option<f64>| Some(a? + b?);
        self.expected_usd = sum(self.expected_usd, other.expected_usd);
        self.max_usd = sum(self.max_usd, other.max_usd);
        self.standard_usd = sum(self.standard_usd, other.standard_usd);
        self.expected_usd_with_cache =
            sum(self.expected_usd_with_cache, other.expected_usd_with_cache);
        for warning in &other.warnings {
            if !self.warnings.contains(warning) {
                self.warnings.push(warning.clone());
            }
        }
    }

    /// The sum of several estimates.
    pub fn total<'a>(estimates: impl IntoIterator<Item = &'a Estimate>) -> Estimate {
        let mut total = Estimate {
            expected_usd: Some(0.0),
            max_usd: Some(0.0),
            standard_usd: Some(0.0),
            expected_usd_with_cache: Some(0.0),
            ..Estimate::default()
        };
        for estimate in estimates {
            total.add(estimate);
        }
        total
    }
}

/// The token figures of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestTokens {
    /// Input tokens, chat message overhead included.
    pub input: u64,
    /// Expected output tokens, expected reasoning tokens included.
    pub expected_output: u64,
    /// The request's `max_completion_tokens`.
    pub max_output: u64,
    /// Expected hidden reasoning tokens (0 for a model that does not reason).
    pub expected_reasoning: u64,
}

/// Counts tokens of requests and adds them up per model; keeps its chunk cache between
/// requests, so one estimator should see a whole job.
#[derive(Debug)]
pub struct Estimator {
    prices: PriceTable,
    expected: ExpectedOutputTokens,
    reasoning: ExpectedReasoningTokens,
    default_complexity: Complexity,
    default_max_output: u32,
    counters: FxHashMap<Encoding, ChunkCounter>,
    totals: BTreeMap<String, Totals>,
    warnings: Vec<String>,
}

/// The two tokenizers the estimate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-5 and the o-series.
    O200kBase,
    /// GPT-4, GPT-3.5 and anything unknown.
    Cl100kBase,
}

impl Encoding {
    /// The tokenizer OpenAI uses for `model`, and whether the model was recognized. A Claude
    /// model is recognized and counted with `o200k_base`, the base of the approximation the
    /// [`Estimator`] makes for it (see [`CLAUDE_TOKEN_FACTOR`]).
    pub fn for_model(model: &str) -> (Encoding, bool) {
        if Provider::for_model(model) == Provider::Anthropic {
            return (Encoding::O200kBase, true);
        }
        let model = model.strip_prefix("ft:").unwrap_or(model);
        let o200k = [
            "gpt-4o",
            "chatgpt-4o",
            "gpt-4.1",
            "gpt-4.5",
            "gpt-5",
            "o1",
            "o3",
            "o4",
        ];
        let cl100k = ["gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada"];
        let matches = |prefix: &&str| {
            model
                .strip_prefix(*prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.', ':']))
        };
        if o200k.iter().any(matches) {
            (Encoding::O200kBase, true)
        } else {
            (Encoding::Cl100kBase, cl100k.iter().any(matches))
        }
    }

    /// The tokenizer's name (`o200k_base`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    /// Counts the tokens of `text` in one pass, without the chunk cache.
    pub fn count(self, text: &str) -> u64 {
        self.bpe().count(text) as u64
    }

    fn bpe(self) -> &'static CoreBpe {
        tiktoken::get_encoding(self.name())
            .expect("the workspace enables the o200k_base and cl100k_base vocabularies")
    }
}

/// Chat format overhead, as in OpenAI's cookbook (`num_tokens_from_messages`): every message
/// costs 3 tokens besides its role and content, and every reply is primed with 3.
const TOKENS_PER_MESSAGE: u64 = 3;
const REPLY_PRIMING_TOKENS: u64 = 3;

/// OpenAI caches a prompt prefix from this many tokens on...
const MIN_CACHED_PREFIX: u64 = 1024;
/// ...in steps of this many tokens.
const CACHE_STEP: u64 = 128;

#[derive(Debug, Clone, Default)]
struct Totals {
    requests: u64,
    input: u64,
    expected_output: u64,
    max_output: u64,
    expected_reasoning: u64,
    /// The leading messages shared by all requests so far: hash of role and content, tokens.
    shared: Option<Vec<(u64, u64)>>,
}

impl Totals {
    fn shared_prefix_tokens(&self) -> u64 {
        self.shared.iter().flatten().map(|(_, tokens)| tokens).sum()
    }
}

impl Estimator {
    /// An estimator using the settings' prices (built-in table plus overrides) and expected
    /// output tokens.
    pub fn new(settings: &RequestSettings) -> Estimator {
        Estimator {
            prices: settings.price_table(),
            expected: settings.expected_output_tokens,
            reasoning: settings.expected_reasoning_tokens,
            default_complexity: settings.default_complexity,
            default_max_output: settings.max_completion_tokens,
            counters: FxHashMap::default(),
            totals: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Counts one lesson request and adds it to the totals.
    pub fn add(&mut self, request: &LessonRequest) -> RequestTokens {
        self.add_line(&request.request, request.complexity)
    }

    /// Counts one request line (with its lesson's complexity) and adds it to the totals.
    pub fn add_line(
        &mut self,
        line: &RequestLine,
        complexity: Option<Complexity>,
    ) -> RequestTokens {
        let body = &line.body;
        let messages = self.message_tokens(body);
        let input = REPLY_PRIMING_TOKENS + messages.iter().map(|(_, tokens)| tokens).sum::<u64>();
        let max_output = u64::from(
            body.max_completion_tokens
                .unwrap_or(self.default_max_output),
        );
        let visible = u64::from(
            self.expected
                .for_complexity(complexity.unwrap_or(self.default_complexity)),
        );
        let reasoning = self.expected_reasoning(body);
        let expected_output = (visible + reasoning).min(max_output);
        let tokens = RequestTokens {
            input,
            expected_output,
            max_output,
            expected_reasoning: reasoning.min(expected_output),
        };
        let totals = match self.totals.get_mut(&body.model) {
            Some(totals) => totals,
            None => self.totals.entry(body.model.clone()).or_default(),
        };
        totals.requests += 1;
        totals.input += tokens.input;
        totals.expected_output += tokens.expected_output;
        totals.max_output += tokens.max_output;
        totals.expected_reasoning += tokens.expected_reasoning;
        // The last message is the one answered: never part of the shared prefix.
        let leading = &messages[..messages.len().saturating_sub(1)];
        match &mut totals.shared {
            None => totals.shared = Some(leading.to_vec()),
            Some(shared) => {
                let common = shared
                    .iter()
                    .zip(leading)
                    .take_while(|((a, _), (b, _))| a == b)
                    .count();
                shared.truncate(common);
            }
        }
        tokens
    }

    /// Input tokens of one request body (messages and chat overhead), using the chunk cache.
    pub fn input_tokens(&mut self, body: &ChatRequest) -> u64 {
        REPLY_PRIMING_TOKENS
            + self
                .message_tokens(body)
                .iter()
                .map(|(_, tokens)| tokens)
                .sum::<u64>()
    }

    /// Per message: a hash of its role and content, and its tokens with the chat overhead.
    fn message_tokens(&mut self, body: &ChatRequest) -> Vec<(u64, u64)> {
        let (encoding, known) = Encoding::for_model(&body.model);
        if !known {
            self.warn(format!(
                "model `{}` is not one whose tokenizer is known; input tokens are counted with {}",
                body.model,
                encoding.name()
            ));
        }
        let scaled = Provider::for_model(&body.model) == Provider::Anthropic;
        let counter = self
            .counters
            .entry(encoding)
            .or_insert_with(|| ChunkCounter::new(encoding));
        body.messages
            .iter()
            .map(|message| {
                let mut hasher = FxHasher::default();
                hasher.write(message.role.as_bytes());
                hasher.write_u8(0xff);
                hasher.write(message.content.as_bytes());
                let tokens = TOKENS_PER_MESSAGE
                    + counter.count(&message.role)
                    + counter.count(&message.content);
                (hasher.finish(), approximated(tokens, scaled))
            })
            .collect()
    }

    /// Expected reasoning tokens of a request: by its `reasoning_effort` (`medium`, the API's
    /// default, when it has none) for a reasoning model, else 0. Warns about parameters the
    /// model refuses.
    fn expected_reasoning(&mut self, body: &ChatRequest) -> u64 {
        let effort = body.extra.get("reasoning_effort");
        if !crate::is_reasoning_model(&body.model) {
            if effort.is_some() {
                self.warn(format!(
                    "`{}` is not known as a reasoning model: requests with `reasoning_effort` may be refused (set `reasoning_effort` only for gpt-5* and o-series models)",
                    body.model
                ));
            }
            return 0;
        }
        if body.temperature.is_some() {
            self.warn(format!(
                "`{}` is a reasoning model and accepts only the default temperature: requests with `temperature` are refused (remove the `temperature` setting)",
                body.model
            ));
        }
        let effort = effort
            .and_then(serde_json::Value::as_str)
            .and_then(ReasoningEffort::from_name)
            .unwrap_or(ReasoningEffort::Medium);
        u64::from(self.reasoning.for_effort(effort))
    }

    /// Input tokens of one request body counted in one pass per message, without the chunk
    /// cache: slow, for checking the shortcut.
    pub fn exact_input_tokens(body: &ChatRequest) -> u64 {
        let (encoding, _) = Encoding::for_model(&body.model);
        let scaled = Provider::for_model(&body.model) == Provider::Anthropic;
        REPLY_PRIMING_TOKENS
            + body
                .messages
                .iter()
                .map(|message| {
                    let tokens = TOKENS_PER_MESSAGE
                        + encoding.count(&message.role)
                        + encoding.count(&message.content);
                    approximated(tokens, scaled)
                })
                .sum::<u64>()
    }

    /// The estimate of everything added so far.
    pub fn estimate(&self) -> Estimate {
        let mut estimate = Estimate {
            expected_usd: Some(0.0),
            max_usd: Some(0.0),
            standard_usd: Some(0.0),
            expected_usd_with_cache: Some(0.0),
            warnings: self.warnings.clone(),
            ..Estimate::default()
        };
        for (index, (model, totals)) in self.totals.iter().enumerate() {
            let shared = totals.shared_prefix_tokens();
            estimate.shared_prefix_tokens = if index == 0 {
                shared
            } else {
                estimate.shared_prefix_tokens.min(shared)
            };
            estimate.shared_prefix_tokens_total += shared * totals.requests;
            estimate.requests += totals.requests;
            estimate.input_tokens += totals.input;
            estimate.expected_output_tokens += totals.expected_output;
            estimate.max_output_tokens += totals.max_output;
            estimate.expected_reasoning_tokens += totals.expected_reasoning;
            let anthropic = Provider::for_model(model) == Provider::Anthropic;
            estimate.approximate |= anthropic;
            let price = self.prices.get(model);
            let cached = match price {
                Some(price)
                    if price.batch_cached_input.is_some() && shared >= MIN_CACHED_PREFIX =>
                {
                    let per_request = if anthropic {
                        shared
                    } else {
                        MIN_CACHED_PREFIX + (shared - MIN_CACHED_PREFIX) / CACHE_STEP * CACHE_STEP
                    };
                    per_request * totals.requests.saturating_sub(1)
                }
                _ => 0,
            };
            estimate.cached_input_tokens += cached;
            match price {
                Some(price) => {
                    let add = |sum: &mut Option<f64>, usd: f64| {
                        if let Some(sum) = sum {
                            *sum += usd;
                        }
                    };
                    add(
                        &mut estimate.expected_usd,
                        price.batch_cost(totals.input, 0, totals.expected_output),
                    );
                    add(
                        &mut estimate.max_usd,
                        price.batch_cost(totals.input, 0, totals.max_output),
                    );
                    add(
                        &mut estimate.standard_usd,
                        price.standard_cost(totals.input, 0, totals.expected_output),
                    );
                    add(
                        &mut estimate.expected_usd_with_cache,
                        price.batch_cost(totals.input, cached, totals.expected_output),
                    );
                }
                None => {
                    estimate.expected_usd = None;
                    estimate.max_usd = None;
                    estimate.standard_usd = None;
                    estimate.expected_usd_with_cache = None;
                    estimate.warnings.push(format!(
                        "no price known for model `{model}`: add it to the settings as [prices.\"{model}\"] with `input` and `output` in USD per 1M tokens"
                    ));
                }
            }
        }
        estimate
    }

    /// The estimate of everything added since the last call; the totals start again from zero
    /// but the chunk cache is kept (used for per-shard estimates).
    pub fn take(&mut self) -> Estimate {
        let estimate = self.estimate();
        self.totals.clear();
        self.warnings.clear();
        estimate
    }

    fn warn(&mut self, warning: String) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }
}

/// Estimates a whole set of lesson requests.
///
/// ```
/// use batch_request::{ChatMessage, ChatRequest, LessonRequest, RequestLine, RequestSettings};
///
/// let request = LessonRequest {
///     request: RequestLine {
///         custom_id: "lesson_M0-L001".into(),
///         method: "POST".into(),
///         url: batch_request::CHAT_COMPLETIONS_URL.into(),
///         body: ChatRequest {
///             model: "gpt-4o-mini".into(),
///             messages: vec![ChatMessage { role: "user".into(), content: "Hello world".into() }],
///             max_completion_tokens: Some(16384),
///             temperature: None,
///             extra: Default::default(),
///         },
///     },
///     code: "M0-L001".parse().unwrap(),
///     title: "Hello".into(),
///     line: 1,
///     complexity: Some("F".parse().unwrap()),
/// };
/// let estimate = batch_request::estimate(&[request], &RequestSettings::default());
/// // 3 priming + 3 per message + 1 for "user" + 2 for "Hello world".
/// assert_eq!(estimate.input_tokens, 9);
/// assert_eq!(estimate.expected_output_tokens, 3750);
/// assert_eq!(estimate.max_output_tokens, 16384);
/// assert!(estimate.expected_usd.unwrap() > 0.0);
/// ```
pub fn estimate<'a>(
    requests: impl IntoIterator<Item = &'a LessonRequest>,
    settings: &RequestSettings,
) -> Estimate {
    let mut estimator = Estimator::new(settings);
    for request in requests {
        estimator.add(request);
    }
    estimator.estimate()
}

/// `tokens` counted with `o200k_base` scaled to approximate Claude's count (rounded up)
/// when `scaled`, else as they are.
fn approximated(tokens: u64, scaled: bool) -> u64 {
    if scaled {
        (tokens * CLAUDE_TOKEN_RATIO.0).div_ceil(CLAUDE_TOKEN_RATIO.1)
    } else {
        tokens
    }
}

/// Counts text chunk by chunk, each distinct chunk once.
#[derive(Debug)]
struct ChunkCounter {
    encoding: Encoding,
    /// Hash of a chunk (paragraph or word) -> its token count.
    cache: FxHashMap<u64, u64>,
}

impl ChunkCounter {
    fn new(encoding: Encoding) -> ChunkCounter {
        ChunkCounter {
            encoding,
            cache: FxHashMap::default(),
        }
    }

    fn count(&mut self, text: &str) -> u64 {
        // Each lesson's own lines are chunks seen once: the cache starts again when full
        // rather than growing with the job, and the shared text is counted once more.
        if self.cache.len() >= MAX_CACHED_CHUNKS {
            self.cache.clear();
        }
        paragraphs(text)
            .map(|paragraph| match self.cache.get(&key(paragraph)) {
                Some(&count) => count,
                None => {
                    let count = words(paragraph)
                        .map(|word| {
                            let encoding = self.encoding;
                            *self
                                .cache
                                .entry(key(word))
                                .or_insert_with(|| encoding.count(word))
                        })
                        .sum();
                    self.cache.insert(key(paragraph), count);
                    count
                }
            })
            .sum()
    }
}

/// Most chunks a [`ChunkCounter`] keeps (a 2 MB table).
const MAX_CACHED_CHUNKS: usize = 1 << 16;

fn key(chunk: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(chunk.as_bytes());
    hasher.write_usize(chunk.len());
    hasher.finish()
}

/// Splits `text` after each blank line (`\n\n`) that is followed by a character that is neither
/// whitespace nor `/`.
///
/// The tokenizers' pre-split patterns (cl100k_base and o200k_base) never put a newline and a
/// following non-whitespace character into one piece, except `/` after punctuation in
/// o200k_base (` ?[^\s\p{L}\p{N}]+[\r\n/]*`); a piece ending in a newline run ends the same
/// way whether or not the text goes on.
fn paragraphs(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut from = 0;
        while let Some(offset) = rest[from..].find("\n\n") {
            let at = from + offset + 2;
            // Go on from the second newline, so a run of three finds its end too.
            from = at - 1;
            match rest[at..].chars().next() {
                Some(next) if !next.is_whitespace() && next != '/' => {
                    let (chunk, tail) = rest.split_at(at);
                    rest = tail;
                    return Some(chunk);
                }
                Some(_) => {}
                None => break,
            }
        }
        Some(std::mem::take(&mut rest))
    })
}

/// Splits `text` before each space or tab that follows a character that is not whitespace.
///
/// No pre-split pattern puts a non-whitespace character and a following space or tab into one
/// piece (pieces of letters, digits or punctuation never take a space after them), and the
/// matching after the split starts at the same place with the same text ahead.
fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut from = 0;
        while let Some(offset) = rest[from..].find([' ', '\t']) {
            let at = from + offset;
            from = at + 1;
            if rest[..at]
                .chars()
                .next_back()
                .is_some_and(|previous| !previous.is_whitespace())
            {
                let (chunk, tail) = rest.split_at(at);
                rest = tail;
                return Some(chunk);
            }
        }
        Some(std::mem::take(&mut rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_split_only_at_safe_blank_lines() {
        let check = |text: &str, expected: &[&str]| {
            assert_eq!(paragraphs(text).collect::<Vec<_>>(), expected, "{text:?}");
        };
        check("", &[]);
        check("one", &["one"]);
        check("a\nb\n", &["a\nb\n"]);
        check("a\n\nb\n\n", &["a\n\n", "b\n\n"]);
        check("a\n\n  b\n\n\nc", &["a\n\n  b\n\n\n", "c"]);
        check("x.\n\n/path\n\ny", &["x.\n\n/path\n\n", "y"]);
        check("a\n\n\u{3000}b\n\nc", &["a\n\n\u{3000}b\n\n", "c"]);
    }

    #[test]
    fn words_split_before_spaces_after_non_spaces() {
        let check = |text: &str, expected: &[&str]| {
            assert_eq!(words(text).collect::<Vec<_>>(), expected, "{text:?}");
        };
        check("", &[]);
        check("  lead", &["  lead"]);
        check("a b  c\td", &["a", " b", "  c", "\td"]);
        check("x.\n y", &["x.\n y"]);
        check("é\u{a0} z", &["é\u{a0} z"]);
    }

    #[test]
    fn chunked_counts_equal_whole_counts() {
        let texts = [
            "# Title\n\nSome prose, with punctuation!\n- a list\n  - nested\n\n```rust\nfn main() {}\n```\n",
            "Line with trailing spaces  \nNext line\r\nWindows line\r\n\r\nEnd.",
            "Zahlen 12345678 und Ümläute\n日本語のテキスト\n   indented\n\ttabbed\n/slash\n.\n",
            "Ends with newlines\n\n\n",
            "Para one.\n\nPara two:  spaced   words\tand\ttabs, it's\n\n\n  indented para\n\n/slash para\n\nx",
            "Ünïcödé\u{a0} nbsp \u{3000}ideographic 123 4567 ...!!! 'll 's\n\n— dash “quoted” words\n",
        ];
        for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
            let mut counter = ChunkCounter::new(encoding);
            for text in texts {
                assert_eq!(
                    counter.count(text),
                    encoding.count(text),
                    "{encoding:?} {text:?}"
                );
            }
        }
    }

    #[test]
    fn the_chunk_cache_stays_bounded_and_counts_stay_right() {
        let mut counter = ChunkCounter::new(Encoding::Cl100kBase);
        let shared = "Shared instructions, the same in every prompt.\n\n";
        for number in 0..MAX_CACHED_CHUNKS {
            let text = format!("{shared}Lesson {number}: its own line.\n");
            assert_eq!(counter.count(&text), Encoding::Cl100kBase.count(&text));
            assert!(counter.cache.len() <= MAX_CACHED_CHUNKS + 8);
        }
    }

    #[test]
    fn chunked_counts_equal_whole_counts_on_random_texts() {
        const PIECES: [&str; 24] = [
            "a", "Word", " ", "  ", "\n", "\n\n", "\t", ".", "/", "'s", "'LL", "1", "234", "é",
            "\u{a0}", "\u{3000}", "“", "—", "\r\n", "x.", "!?", "#", "- ", "\u{301}",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
            let mut counter = ChunkCounter::new(encoding);
            for _ in 0..400 {
                let len = 1 + next() % 60;
                let text: String = (0..len)
                    .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                    .collect();
                assert_eq!(
                    counter.count(&text),
                    encoding.count(&text),
                    "{encoding:?} {text:?}"
                );
            }
        }
    }

    #[test]
    fn encodings_by_model() {
        let check = |model: &str, encoding: Encoding, known: bool| {
            assert_eq!(Encoding::for_model(model), (encoding, known), "{model}");
        };
        check("gpt-4o-mini", Encoding::O200kBase, true);
        check("gpt-4o-mini-2024-07-18", Encoding::O200kBase, true);
        check("gpt-4.1-mini", Encoding::O200kBase, true);
        check("gpt-5-nano", Encoding::O200kBase, true);
        check("o3-mini", Encoding::O200kBase, true);
        check("o4-mini", Encoding::O200kBase, true);
        check("ft:gpt-4o-mini:org::abc", Encoding::O200kBase, true);
        check("gpt-4-turbo", Encoding::Cl100kBase, true);
        check("gpt-3.5-turbo", Encoding::Cl100kBase, true);
        check("llama3", Encoding::Cl100kBase, false);
        check("o1x", Encoding::Cl100kBase, false);
        // The base of the approximation, not Claude's own tokenizer.
        check("claude-sonnet-4-5", Encoding::O200kBase, true);
    }

    #[test]
    fn claude_tokens_are_o200k_counts_scaled_and_marked_approximate() {
        let text = "Data governance is the exercise of authority over data assets.\n\n".repeat(80);
        let messages = [("system", text.as_str()), ("user", "Write lesson M0-L001.")];
        let openai = chat_line("gpt-4o-mini", &messages);
        let claude = chat_line("claude-sonnet-4-5-20250929", &messages);
        let settings = RequestSettings::default();
        let mut estimator = Estimator::new(&settings);
        let o200k = estimator.add_line(&openai, None).input;
        let openai_estimate = estimator.take();
        assert!(!openai_estimate.approximate);

        let approximate = estimator.add_line(&claude, None).input;
        // Each message's count (chat overhead included) times 1.2, rounded up; the reply
        // priming (3) is not scaled.
        let per_message = |content: &str, role: &str| {
            let tokens = TOKENS_PER_MESSAGE
                + Encoding::O200kBase.count(role)
                + Encoding::O200kBase.count(content);
            (tokens as f64 * CLAUDE_TOKEN_FACTOR).ceil() as u64
        };
        let expected = REPLY_PRIMING_TOKENS
            + per_message(&text, "system")
            + per_message("Write lesson M0-L001.", "user");
        assert_eq!(approximate, expected);
        assert_eq!(Estimator::exact_input_tokens(&claude.body), expected);
        let ratio = approximate as f64 / o200k as f64;
        assert!((1.15..=1.21).contains(&ratio), "{ratio}");

        // Two requests: the second reads the shared system prefix from the cache, whole.
        estimator.add_line(&claude, None);
        let estimate = estimator.take();
        assert!(estimate.approximate);
        assert!(estimate.warnings.is_empty(), "{:?}", estimate.warnings);
        let prefix = per_message(&text, "system");
        assert!(prefix >= MIN_CACHED_PREFIX, "{prefix}");
        assert_eq!(estimate.shared_prefix_tokens, prefix);
        assert_eq!(estimate.cached_input_tokens, prefix);
        // claude-sonnet-4-5 in Batch: $1.50 input, $0.15 cache reads, $7.50 output per 1M.
        let input = estimate.input_tokens as f64;
        let output = estimate.expected_output_tokens as f64;
        let expected_usd = (input * 1.5 + output * 7.5) / 1e6;
        assert!((estimate.expected_usd.unwrap() - expected_usd).abs() < 1e-12);
        let with_cache =
            ((input - prefix as f64) * 1.5 + prefix as f64 * 0.15 + output * 7.5) / 1e6;
        assert!((estimate.expected_usd_with_cache.unwrap() - with_cache).abs() < 1e-12);

        // Approximate is kept when estimates are added, and serialized.
        let mut total = openai_estimate.clone();
        total.add(&estimate);
        assert!(total.approximate);
        let json = serde_json::to_value(&total).unwrap();
        assert_eq!(json["approximate"], true);
        let json = serde_json::to_value(&openai_estimate).unwrap();
        assert_eq!(json["approximate"], false);
    }

    fn chat_line(model: &str, messages: &[(&str, &str)]) -> RequestLine {
        RequestLine {
            custom_id: "lesson_M0-L001".into(),
            method: "POST".into(),
            url: crate::CHAT_COMPLETIONS_URL.into(),
            body: ChatRequest {
                model: model.into(),
                messages: messages
                    .iter()
                    .map(|(role, content)| crate::ChatMessage {
                        role: (*role).into(),
                        content: (*content).into(),
                    })
                    .collect(),
                max_completion_tokens: Some(100_000),
                temperature: None,
                extra: serde_json::Map::new(),
            },
        }
    }

    #[test]
    fn shared_prefix_is_the_leading_messages_every_request_repeats() {
        let settings = RequestSettings::default();
        let shared = "Shared instructions. ".repeat(400);
        let shared_tokens = TOKENS_PER_MESSAGE
            + Encoding::O200kBase.count("system")
            + Encoding::O200kBase.count(&shared);
        assert!(shared_tokens > 1024 + 128, "{shared_tokens}");
        let mut estimator = Estimator::new(&settings);
        for lesson in ["one", "two", "three"] {
            estimator.add_line(
                &chat_line("gpt-5-mini", &[("system", &shared), ("user", lesson)]),
                None,
            );
        }
        let estimate = estimator.take();
        assert_eq!(estimate.shared_prefix_tokens, shared_tokens);
        assert_eq!(estimate.shared_prefix_tokens_total, 3 * shared_tokens);
        // The first request pays in full; two hit the cache, in 128-token steps from 1,024.
        let cached = 1024 + (shared_tokens - 1024) / 128 * 128;
        assert_eq!(estimate.cached_input_tokens, 2 * cached);
        let price = settings.price_table().get("gpt-5-mini").copied().unwrap();
        let with_cache = price.batch_cost(
            estimate.input_tokens,
            2 * cached,
            estimate.expected_output_tokens,
        );
        assert!((estimate.expected_usd_with_cache.unwrap() - with_cache).abs() < 1e-12);
        assert!(estimate.expected_usd_with_cache.unwrap() < estimate.expected_usd.unwrap());

        // One request alone: its system message is still the prefix, its last message never.
        estimator.add_line(
            &chat_line("gpt-5-mini", &[("system", &shared), ("user", "x")]),
            None,
        );
        let alone = estimator.take();
        assert_eq!(
            (alone.shared_prefix_tokens, alone.cached_input_tokens),
            (shared_tokens, 0)
        );

        // A request whose system message differs ends the shared prefix; so does no system
        // message at all.
        estimator.add_line(
            &chat_line("gpt-5-mini", &[("system", &shared), ("user", "a")]),
            None,
        );
        estimator.add_line(
            &chat_line("gpt-5-mini", &[("system", "other"), ("user", "a")]),
            None,
        );
        assert_eq!(estimator.take().shared_prefix_tokens, 0);
        estimator.add_line(&chat_line("gpt-5-mini", &[("user", "a")]), None);
        estimator.add_line(&chat_line("gpt-5-mini", &[("user", "a")]), None);
        let estimate = estimator.take();
        assert_eq!(
            (estimate.shared_prefix_tokens, estimate.cached_input_tokens),
            (0, 0)
        );
        assert_eq!(estimate.expected_usd_with_cache, estimate.expected_usd);

        // No batch cache discount for gpt-4o-mini: the prefix is reported, nothing is cached.
        for _ in 0..3 {
            estimator.add_line(
                &chat_line("gpt-4o-mini", &[("system", &shared), ("user", "a")]),
                None,
            );
        }
        let estimate = estimator.take();
        assert_eq!(estimate.shared_prefix_tokens, shared_tokens);
        assert_eq!(estimate.cached_input_tokens, 0);
        assert_eq!(estimate.expected_usd_with_cache, estimate.expected_usd);

        // A prefix under 1,024 tokens is not cached.
        for _ in 0..3 {
            estimator.add_line(
                &chat_line("gpt-5-mini", &[("system", "short"), ("user", "a")]),
                None,
            );
        }
        let estimate = estimator.take();
        assert!(estimate.shared_prefix_tokens > 0);
        assert_eq!(estimate.cached_input_tokens, 0);
    }

    #[test]
    fn estimates_add_up_with_their_prefixes() {
        let a = Estimate {
            requests: 2,
            shared_prefix_tokens: 3000,
            shared_prefix_tokens_total: 6000,
            cached_input_tokens: 2900,
            expected_reasoning_tokens: 10,
            expected_usd_with_cache: Some(1.0),
            ..Estimate::default()
        };
        let b = Estimate {
            requests: 1,
            shared_prefix_tokens: 2000,
            shared_prefix_tokens_total: 2000,
            expected_usd_with_cache: Some(0.5),
            ..Estimate::default()
        };
        let total = Estimate::total([&a, &b]);
        assert_eq!(
            (
                total.requests,
                total.shared_prefix_tokens,
                total.shared_prefix_tokens_total,
                total.cached_input_tokens,
                total.expected_reasoning_tokens,
                total.expected_usd_with_cache,
            ),
            (3, 2000, 8000, 2900, 10, Some(1.5))
        );
        // An empty estimate does not pull the per-request prefix to zero.
        let total = Estimate::total([&Estimate::default(), &a]);
        assert_eq!(total.shared_prefix_tokens, 3000);
        // An old estimate without the new fields still reads.
        let old: Estimate = serde_json::from_str(
            r#"{"requests":1,"input_tokens":5,"expected_output_tokens":1,"max_output_tokens":2,"expected_usd":null,"max_usd":null,"standard_usd":null,"warnings":[]}"#,
        )
        .unwrap();
        assert_eq!((old.requests, old.shared_prefix_tokens), (1, 0));
    }

    #[test]
    fn reasoning_models_expect_reasoning_tokens() {
        let settings = RequestSettings::default();
        let mut estimator = Estimator::new(&settings);
        let mut line = chat_line("gpt-5-mini", &[("user", "Hello world")]);
        // No effort in the body: the API's default, medium.
        let tokens = estimator.add_line(&line, Some("F".parse().unwrap()));
        assert_eq!(
            (tokens.expected_reasoning, tokens.expected_output),
            (3000, 3750 + 3000)
        );
        line.body
            .extra
            .insert("reasoning_effort".into(), "high".into());
        let tokens = estimator.add_line(&line, Some("F".parse().unwrap()));
        assert_eq!(
            (tokens.expected_reasoning, tokens.expected_output),
            (8000, 3750 + 8000)
        );
        // Capped by max_completion_tokens, which bounds reasoning and answer together.
        line.body.max_completion_tokens = Some(5000);
        let tokens = estimator.add_line(&line, Some("F".parse().unwrap()));
        assert_eq!(
            (tokens.expected_reasoning, tokens.expected_output),
            (5000, 5000)
        );
        let estimate = estimator.take();
        assert_eq!(estimate.expected_reasoning_tokens, 3000 + 8000 + 5000);
        assert_eq!(estimate.expected_output_tokens, 6750 + 11_750 + 5000);
        let price = settings.price_table().get("gpt-5-mini").copied().unwrap();
        let expected = price.batch_cost(estimate.input_tokens, 0, 6750 + 11_750 + 5000);
        assert!((estimate.expected_usd.unwrap() - expected).abs() < 1e-12);
        assert!(estimate.warnings.is_empty(), "{:?}", estimate.warnings);

        // Configured figures; a model that does not reason expects none, and gets a warning
        // for a `reasoning_effort` it would refuse.
        let settings = RequestSettings::from_toml_str(
            "[expected_reasoning_tokens]\nhigh = 100\n",
            "lessons.toml".as_ref(),
        )
        .unwrap();
        let mut estimator = Estimator::new(&settings);
        assert_eq!(estimator.add_line(&line, None).expected_reasoning, 100);
        line.body.model = "gpt-4o-mini".into();
        assert_eq!(estimator.add_line(&line, None).expected_reasoning, 0);
        let estimate = estimator.take();
        assert_eq!(estimate.warnings.len(), 1, "{:?}", estimate.warnings);
        assert!(estimate.warnings[0].contains("reasoning_effort"));
        // A temperature on a reasoning model is refused by the API: warned about.
        let mut line = chat_line("o4-mini", &[("user", "x")]);
        line.body.temperature = Some(0.2);
        estimator.add_line(&line, None);
        let estimate = estimator.take();
        assert!(
            estimate.warnings[0].contains("temperature"),
            "{:?}",
            estimate.warnings
        );
    }

    #[test]
    fn costs_and_unknown_models() {
        let settings = RequestSettings::default();
        let line = |model: &str| RequestLine {
            custom_id: "lesson_M0-L001".into(),
            method: "POST".into(),
            url: crate::CHAT_COMPLETIONS_URL.into(),
            body: ChatRequest {
                model: model.into(),
                messages: vec![crate::ChatMessage {
                    role: "user".into(),
                    content: "Hello world".into(),
                }],
                max_completion_tokens: Some(1000),
                temperature: None,
                extra: serde_json::Map::new(),
            },
        };
        let mut estimator = Estimator::new(&settings);
        let tokens = estimator.add_line(&line("gpt-4o-mini"), None);
        assert_eq!(
            tokens,
            RequestTokens {
                input: 9,
                expected_output: 1000,
                max_output: 1000,
                expected_reasoning: 0,
            }
        );
        let estimate = estimator.take();
        // 9 input tokens at 0.075 and 1000 output at 0.30 per 1M.
        let expected = (9.0 * 0.075 + 1000.0 * 0.30) / 1e6;
        assert!((estimate.expected_usd.unwrap() - expected).abs() < 1e-15);
        assert!((estimate.standard_usd.unwrap() - 2.0 * expected).abs() < 1e-15);
        assert!(estimate.warnings.is_empty());

        estimator.add_line(&line("llama3"), None);
        let estimate = estimator.take();
        assert_eq!((estimate.requests, estimate.input_tokens), (1, 9));
        assert_eq!(estimate.expected_usd, None);
        assert_eq!(estimate.warnings.len(), 2, "{:?}", estimate.warnings);
        assert!(estimate.warnings[1].contains("[prices.\"llama3\"]"));

        let mut total = Estimate::total([]);
        total.add(&estimate);
        assert_eq!((total.requests, total.expected_usd), (1, None));
    }
}
