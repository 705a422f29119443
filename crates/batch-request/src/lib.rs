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
//!   `prompt = f"""` template, parsed once.
//! - [`RequestSettings`]: model, limits of a request, texts, replacements, prices;
//!   loadable from `lessons.toml`.
//! - [`build_requests`] and [`RequestBuilder`]: one [`LessonRequest`] per lesson.
//! - [`write_shards`] and [`ShardWriter`]: shard files within [`Limits`], each with an [`Estimate`].
//! - [`Estimator`] and [`estimate`]: input tokens with the model's tokenizer, output tokens,
//!   costs from the [`PriceTable`].
//! - The JSONL line types ([`RequestLine`], [`ResultLine`]) and their streaming
//!   writers and readers ([`write_request_lines`], [`read_result_lines`], ...).

#![warn(missing_docs)]

mod builder;
mod error;
mod estimate;
mod jsonl;
mod legacy;
mod lines;
mod pricing;
mod settings;
mod shard;
mod template;

pub use builder::{
    LessonRequest, RequestBuilder, build_requests, complexity_label, duration_minutes,
};
pub use error::Error;
pub use estimate::{Encoding, Estimate, Estimator, RequestTokens, estimate};
pub use jsonl::{read_request_lines, read_result_lines, write_request_lines, write_result_lines};
pub use legacy::EXPRESSIONS as LEGACY_EXPRESSIONS;
pub use lines::{
    ApiError, AssistantMessage, CHAT_COMPLETIONS_URL, ChatMessage, ChatRequest, Choice,
    CompletionTokensDetails, LineError, PromptTokensDetails, RequestLine, ResponseBody,
    ResponseEnvelope, ResultLine, Usage,
};
pub use pricing::{ModelPrice, PriceTable, max_output_tokens};
pub use settings::{ExpectedOutputTokens, PriceSetting, Replacement, RequestSettings};
pub use shard::{Limits, Shard, ShardWriter, write_shards};
pub use template::{GENERIC as GENERIC_TEMPLATE, Placeholder, Template};
