//! Token and cost estimates: input tokens counted with the model's real tokenizer, expected
//! and upper-bound output tokens, and costs at batch and standard prices.
//!
//! Counting is fast because every prompt of a job repeats the same text (template and outline)
//! and differs only in a few lines. A prompt is cut into chunks at places where the tokenizer's
//! pre-splitting regex always breaks, so the sum of the chunks' counts equals the count of the
//! whole text (tested against one-pass counts): first into paragraphs, and a paragraph not seen
//! before into words. Each distinct chunk is tokenized once and then found by its hash, so the
//! shared text costs a hash per paragraph and the lesson's own lines a hash per word.

use std::collections::BTreeMap;
use std::hash::Hasher;

use curriculum_parser::Complexity;
use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};
use tiktoken_rs::CoreBPE;

use crate::settings::ExpectedOutputTokens;
use crate::{ChatRequest, LessonRequest, PriceTable, RequestLine, RequestSettings};

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
}

impl Estimate {
    /// Adds another estimate to this one (e.g. to total the shards of a job).
    pub fn add(&mut self, other: &Estimate) {
        self.requests += other.requests;
        self.input_tokens += other.input_tokens;
        self.expected_output_tokens += other.expected_output_tokens;
        self.max_output_tokens += other.max_output_tokens;
        let sum = |a: Option<f64>, b: Option<f64>| Some(a? + b?);
        self.expected_usd = sum(self.expected_usd, other.expected_usd);
        self.max_usd = sum(self.max_usd, other.max_usd);
        self.standard_usd = sum(self.standard_usd, other.standard_usd);
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
    /// Expected output tokens.
    pub expected_output: u64,
    /// The request's `max_completion_tokens`.
    pub max_output: u64,
}

/// Counts tokens of requests and adds them up per model; keeps its chunk cache between
/// requests, so one estimator should see a whole job.
#[derive(Debug)]
pub struct Estimator {
    prices: PriceTable,
    expected: ExpectedOutputTokens,
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
    /// The tokenizer OpenAI uses for `model`, and whether the model was recognized.
    pub fn for_model(model: &str) -> (Encoding, bool) {
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
        self.bpe().encode_ordinary(text).len() as u64
    }

    fn bpe(self) -> &'static CoreBPE {
        match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }
}

/// Chat format overhead, as in OpenAI's cookbook (`num_tokens_from_messages`): every message
/// costs 3 tokens besides its role and content, and every reply is primed with 3.
const TOKENS_PER_MESSAGE: u64 = 3;
const REPLY_PRIMING_TOKENS: u64 = 3;

#[derive(Debug, Clone, Default)]
struct Totals {
    requests: u64,
    input: u64,
    expected_output: u64,
    max_output: u64,
}

impl Estimator {
    /// An estimator using the settings' prices (built-in table plus overrides) and expected
    /// output tokens.
    pub fn new(settings: &RequestSettings) -> Estimator {
        Estimator {
            prices: settings.price_table(),
            expected: settings.expected_output_tokens,
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
        let input = self.input_tokens(body);
        let max_output = u64::from(
            body.max_completion_tokens
                .unwrap_or(self.default_max_output),
        );
        let expected = self
            .expected
            .for_complexity(complexity.unwrap_or(self.default_complexity));
        let tokens = RequestTokens {
            input,
            expected_output: u64::from(expected).min(max_output),
            max_output,
        };
        let totals = match self.totals.get_mut(&body.model) {
            Some(totals) => totals,
            None => self.totals.entry(body.model.clone()).or_default(),
        };
        totals.requests += 1;
        totals.input += tokens.input;
        totals.expected_output += tokens.expected_output;
        totals.max_output += tokens.max_output;
        tokens
    }

    /// Input tokens of one request body (messages and chat overhead), using the chunk cache.
    pub fn input_tokens(&mut self, body: &ChatRequest) -> u64 {
        let (encoding, known) = Encoding::for_model(&body.model);
        if !known {
            self.warn(format!(
                "model `{}` is not one whose tokenizer is known; input tokens are counted with {}",
                body.model,
                encoding.name()
            ));
        }
        let counter = self
            .counters
            .entry(encoding)
            .or_insert_with(|| ChunkCounter::new(encoding));
        let mut tokens = REPLY_PRIMING_TOKENS;
        for message in &body.messages {
            tokens +=
                TOKENS_PER_MESSAGE + counter.count(&message.role) + counter.count(&message.content);
        }
        tokens
    }

    /// Input tokens of one request body counted in one pass per message, without the chunk
    /// cache: slow, for checking the shortcut.
    pub fn exact_input_tokens(body: &ChatRequest) -> u64 {
        let (encoding, _) = Encoding::for_model(&body.model);
        REPLY_PRIMING_TOKENS
            + body
                .messages
                .iter()
                .map(|message| {
                    TOKENS_PER_MESSAGE
                        + encoding.count(&message.role)
                        + encoding.count(&message.content)
                })
                .sum::<u64>()
    }

    /// The estimate of everything added so far.
    pub fn estimate(&self) -> Estimate {
        let mut estimate = Estimate {
            expected_usd: Some(0.0),
            max_usd: Some(0.0),
            standard_usd: Some(0.0),
            warnings: self.warnings.clone(),
            ..Estimate::default()
        };
        for (model, totals) in &self.totals {
            estimate.requests += totals.requests;
            estimate.input_tokens += totals.input;
            estimate.expected_output_tokens += totals.expected_output;
            estimate.max_output_tokens += totals.max_output;
            match self.prices.get(model) {
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
                }
                None => {
                    estimate.expected_usd = None;
                    estimate.max_usd = None;
                    estimate.standard_usd = None;
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
                max_output: 1000
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
