//! Turns lessons and a prompt template into OpenAI Batch API JSONL: request lines,
//! shard files within the API's limits, and token and cost estimates.

#![warn(missing_docs)]

mod lines;
mod pricing;

pub use lines::{
    ApiError, AssistantMessage, CHAT_COMPLETIONS_URL, ChatMessage, ChatRequest, Choice,
    CompletionTokensDetails, LineError, PromptTokensDetails, RequestLine, ResponseBody,
    ResponseEnvelope, ResultLine, Usage,
};
pub use pricing::{ModelPrice, PriceTable};
