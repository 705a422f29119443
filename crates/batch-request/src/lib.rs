//! Turns lessons and a prompt template into OpenAI Batch API JSONL: request lines,
//! shard files within the API's limits, and token and cost estimates.
//!
//! ```
//! use batch_request::{Limits, RequestSettings, Template};
//!
//! let outline = concat!(
//!     "# M0: Data Governance Fundamentals — Lesson Map\n",
//!     "## L001: What Is Data Governance? [F]\n",
//!     "## L002: Governance vs Management [I]\n",
//! );
//! let curriculum = curriculum_parser::parse(outline, "outline.md".as_ref()).unwrap();
//! let template = Template::parse(
//!     "# Lesson {{lesson_code}}: {{lesson_title}}\nLevel: {{complexity_label}}\n",
//!     "prompt.md".as_ref(),
//! )?;
//! let settings = RequestSettings::default();
//! let requests = batch_request::build_requests(&curriculum, outline, curriculum.lessons(), &template, &settings)?;
//! assert_eq!(requests[1].request.custom_id, "lesson_M0-L002");
//! assert_eq!(
//!     requests[1].request.body.messages[0].content,
//!     "# Lesson M0-L002: Governance vs Management\nLevel: Intermediate\n",
//! );
//!
//! let dir = tempfile::tempdir().unwrap();
//! let shards = batch_request::write_shards(&requests, dir.path(), "datagov", Limits::default(), &settings)?;
//! assert_eq!(shards[0].requests, 2);
//! assert_eq!(shards[0].estimate.max_output_tokens, 2 * 16384);
//! # Ok::<(), batch_request::Error>(())
//! ```
//!
//! The pieces:
//!
//! - [`Template`]: `{{name}}` placeholders (see [`Placeholder`]) or a legacy Python
//!   `prompt = f"""` template, parsed once. A [`LESSON_MARKER`] line (`<!-- lesson -->`)
//!   splits a native template into the text shared by all lessons, sent first as a `system`
//!   message, and the lesson's own text, the `user` message; the shipped template is split
//!   so that every request starts with the same long prefix, which the API's prompt cache
//!   serves at a tenth of the input price for the GPT-5 family.
//! - [`RequestSettings`]: model, limits of a request, `reasoning_effort`, `verbosity`, extra
//!   body parameters (`[body]`, checked against the spec), texts, replacements, prices,
//!   enqueued-token limits and batch sizes; loadable from `lessons.toml`.
//! - [`build_requests`] and [`RequestBuilder`]: one [`LessonRequest`] per lesson, with the
//!   caller's [`RequestBuilder::with_prompt_cache_key`].
//! - [`write_shards`] and [`ShardWriter`]: shard files within [`Limits`], each with an [`Estimate`].
//! - [`Estimator`] and [`estimate`]: input tokens with the model's tokenizer (Claude's, which
//!   is not public, approximated as `o200k_base` times [`CLAUDE_TOKEN_FACTOR`], the estimate
//!   then [`Estimate::approximate`]), the shared prefix
//!   and the input expected from the prompt cache, output and reasoning tokens, costs from the
//!   [`PriceTable`].
//! - Model facts beside the prices: [`max_output_tokens`], [`context_window`] (checked by
//!   the [`ShardWriter`]: a request over it is [`Error::OverContextWindow`]),
//!   [`enqueued_token_limit`], [`is_reasoning_model`], [`supports_prompt_cache_key`].
//! - The JSONL line types ([`RequestLine`], [`ResultLine`]) and their streaming
//!   writers and readers ([`write_request_lines`], [`read_result_lines`], ...).

#![warn(missing_docs)]

mod body;
mod builder;
mod context;
mod error;
mod estimate;
mod jsonl;
mod legacy;
mod lines;
mod pricing;
mod provider;
mod settings;
mod shard;
mod template;

pub use builder::{
    LessonRequest, RequestBuilder, build_requests, complexity_label, duration_minutes,
};
pub use context::{OVER_CONTEXT_WINDOW_NAMED, OversizedRequest};
pub use error::Error;
pub use estimate::{CLAUDE_TOKEN_FACTOR, Encoding, Estimate, Estimator, RequestTokens, estimate};
pub use jsonl::{read_request_lines, read_result_lines, write_request_lines, write_result_lines};
pub use legacy::EXPRESSIONS as LEGACY_EXPRESSIONS;
pub use lines::{
    ApiError, AssistantMessage, CHAT_COMPLETIONS_URL, ChatMessage, ChatRequest, Choice,
    CompletionTokensDetails, LineError, PromptTokensDetails, RequestLine, ResponseBody,
    ResponseEnvelope, ResultLine, Usage,
};
pub use pricing::{
    ModelPrice, PriceTable, context_window, enqueued_token_limit, is_reasoning_model,
    max_output_tokens, supports_prompt_cache_key,
};
pub use provider::{Provider, UnknownProvider};
pub use settings::{
    ExpectedOutputTokens, ExpectedReasoningTokens, PathSettings, PriceSetting, QualitySettings,
    ReasoningEffort, Replacement, RequestSettings, Verbosity,
};
pub use shard::{Limits, Placement, Shard, ShardWriter, write_shards};
pub use template::{
    GENERIC as GENERIC_TEMPLATE, GENERIC_SECTIONS, LESSON_MARKER, Placeholder, SingleBrace,
    Template, UnknownName,
};
