//! The results JSONL: one `BatchResultLine` per request (succeeded with its Message, errored,
//! canceled or expired), and a reader that takes them one line at a time.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::request::CustomId;

/// The longest result line read, in bytes (16 MiB): far above any Message, low enough that a
/// broken file cannot exhaust memory.
pub const MAX_RESULT_LINE_BYTES: usize = 16 * 1024 * 1024;

/// One line of a batch's results. Lines come in no particular order: join them by `custom_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResultLine {
    /// The request's `custom_id`.
    pub custom_id: CustomId,
    /// What became of it.
    pub result: BatchResult,
}

impl BatchResultLine {
    /// Parses one line of the results JSONL; `line` (1-based) goes into the error.
    ///
    /// # Errors
    ///
    /// [`Error::ResultLine`] when the line is not a result of the known shape.
    pub fn parse(text: &[u8], line: usize) -> Result<BatchResultLine, Error> {
        serde_json::from_slice(text).map_err(|source| Error::ResultLine { line, source })
    }
}

/// The outcome of one request, by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BatchResult {
    /// The request ran; check the message's `stop_reason`.
    Succeeded {
        /// The answer (boxed: it is much larger than the other variants).
        message: Box<Message>,
    },
    /// The request failed; `error.error.error_type` says whether resubmitting can help.
    Errored {
        /// The error, in the API's error shape.
        error: ErrorResponse,
    },
    /// The batch was canceled before this request ran.
    Canceled,
    /// The 24 hours passed before this request ran.
    Expired,
    /// A result type this client does not know yet.
    #[serde(other)]
    Unknown,
}

/// A Messages API answer.
///
/// Unknown fields are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `msg_...`.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type", default = "message_type")]
    pub object_type: String,
    /// Always `assistant`.
    #[serde(default = "assistant")]
    pub role: String,
    /// The model that answered.
    pub model: String,
    /// The answer's blocks.
    pub content: Vec<ContentBlock>,
    /// Why the model stopped.
    pub stop_reason: Option<StopReason>,
    /// The stop sequence met, when `stop_reason` is `stop_sequence`.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Tokens used.
    pub usage: Usage,
    /// Fields this client does not know yet.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn message_type() -> String {
    "message".to_owned()
}

fn assistant() -> String {
    "assistant".to_owned()
}

impl Message {
    /// The text blocks' texts, concatenated in order (the API splits one text into several
    /// blocks around citations, so nothing goes between them); other blocks are left out.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// One block of an answer's content, by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Citations backing the text, when the request asked for them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<serde_json::Value>,
    },
    /// Extended thinking.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// Its signature.
        #[serde(default)]
        signature: String,
    },
    /// Thinking the API encrypted.
    RedactedThinking {
        /// The encrypted data.
        data: String,
    },
    /// Another block type (tool use, server tools, ...), whose content this client does not read.
    #[serde(other)]
    Other,
}

/// Why the model stopped. Unknown reasons parse as [`StopReason::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The answer hit `max_tokens` and is cut off.
    MaxTokens,
    /// The answer met one of the `stop_sequences`.
    StopSequence,
    /// The model called a tool.
    ToolUse,
    /// A long-running turn paused.
    PauseTurn,
    /// The model declined to answer.
    Refusal,
    /// The answer hit the model's context window and is cut off.
    ModelContextWindowExceeded,
    /// A reason this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl StopReason {
    /// Whether the answer was cut off (`max_tokens`, `model_context_window_exceeded`).
    pub fn is_truncated(self) -> bool {
        matches!(
            self,
            StopReason::MaxTokens | StopReason::ModelContextWindowExceeded
        )
    }
}

/// Tokens used by one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from or written to the cache.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// The cache writes by lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<CacheCreation>,
    /// `batch` for batch requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Fields this client does not know yet (`server_tool_use`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Cache writes by lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheCreation {
    /// Tokens written with a 5-minute lifetime.
    #[serde(default)]
    pub ephemeral_5m_input_tokens: u64,
    /// Tokens written with a 1-hour lifetime.
    #[serde(default)]
    pub ephemeral_1h_input_tokens: u64,
}

/// The API's error shape, `{"type": "error", "error": {"type", "message"}, "request_id"}`: in an
/// errored result line and in the body of a failed HTTP call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Always `error`.
    #[serde(rename = "type", default = "error_type")]
    pub object_type: String,
    /// What went wrong.
    pub error: ErrorObject,
    /// The request's id, when the server gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

fn error_type() -> String {
    "error".to_owned()
}

/// The inner error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The error's class.
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    /// A message for a person.
    #[serde(default)]
    pub message: String,
}

/// The class of an API error, by `error.type`. Unknown classes parse as [`ErrorType::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The request is malformed (400): resubmitting it unchanged fails again.
    InvalidRequestError,
    /// The key is missing or wrong (401).
    AuthenticationError,
    /// Billing (402).
    BillingError,
    /// The key may not do this (403).
    PermissionError,
    /// No such resource (404).
    NotFoundError,
    /// The request is too large (413).
    RequestTooLarge,
    /// Too many requests (429).
    RateLimitError,
    /// The request timed out (504).
    TimeoutError,
    /// An internal error (500).
    ApiError,
    /// The API is overloaded (529).
    OverloadedError,
    /// A class this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl ErrorType {
    /// Whether the same request can simply be resubmitted: everything but an invalid request.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            ErrorType::InvalidRequestError | ErrorType::RequestTooLarge
        )
    }

    /// The wire name (`invalid_request_error`), `unknown` for the fallback.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequestError => "invalid_request_error",
            ErrorType::AuthenticationError => "authentication_error",
            ErrorType::BillingError => "billing_error",
            ErrorType::PermissionError => "permission_error",
            ErrorType::NotFoundError => "not_found_error",
            ErrorType::RequestTooLarge => "request_too_large",
            ErrorType::RateLimitError => "rate_limit_error",
            ErrorType::TimeoutError => "timeout_error",
            ErrorType::ApiError => "api_error",
            ErrorType::OverloadedError => "overloaded_error",
            ErrorType::Unknown => "unknown",
        }
    }
}

/// Result lines read one at a time from a results file (blank lines skipped), each line at most
/// [`MAX_RESULT_LINE_BYTES`]. After an error reading or a line too long it ends; a line that does
/// not parse is one `Err` and reading goes on.
#[derive(Debug)]
pub struct ResultLines<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

/// Reads result lines from `reader` (a file, `&[u8]`, ...).
pub fn read_results<R: BufRead>(reader: R) -> ResultLines<R> {
    ResultLines {
        reader,
        line: 0,
        buf: Vec::new(),
        done: false,
    }
}

impl<R: BufRead> Iterator for ResultLines<R> {
    type Item = Result<BatchResultLine, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            self.line += 1;
            let limit = MAX_RESULT_LINE_BYTES as u64 + 1;
            match (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(0) => self.done = true,
                Ok(_) => {
                    if let Some(result) = self.finish_line() {
                        return Some(result);
                    }
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(Error::ReadResults {
                        line: self.line,
                        source,
                    }));
                }
            }
        }
        None
    }
}

impl<R> ResultLines<R> {
    /// Parses the line in `buf`; `None` for a blank line.
    fn finish_line(&mut self) -> Option<Result<BatchResultLine, Error>> {
        let line = match self.buf.strip_suffix(b"\n") {
            Some(line) => line,
            None if self.buf.len() > MAX_RESULT_LINE_BYTES => {
                self.done = true;
                return Some(Err(Error::ResultLineTooLong {
                    line: self.line,
                    max: MAX_RESULT_LINE_BYTES,
                }));
            }
            None => &self.buf,
        };
        parse_line(line, self.line)
    }
}

/// Parses one line without its `\n`; `None` for a blank line.
pub(crate) fn parse_line(line: &[u8], number: usize) -> Option<Result<BatchResultLine, Error>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(BatchResultLine::parse(line, number))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The result lines of the reference contract (`anthropic-message-batches.md`), copied byte for byte.
    const REFERENCE: &str = include_str!("../../../fixtures/anthropic-results/reference.jsonl");

    #[test]
    fn the_reference_lines_parse_and_round_trip() {
        let lines: Vec<_> = read_results(REFERENCE.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(lines.len(), 4);
        let BatchResult::Succeeded { message } = &lines[0].result else {
            panic!("{:?}", lines[0]);
        };
        assert_eq!(lines[0].custom_id.as_str(), "a");
        assert_eq!(message.text(), "# Lesson …");
        assert_eq!(message.stop_reason, Some(StopReason::EndTurn));
        assert_eq!(message.usage.input_tokens, 1200);
        assert_eq!(message.usage.output_tokens, 2400);
        assert_eq!(message.usage.cache_read_input_tokens, Some(0));
        assert_eq!(message.usage.service_tier.as_deref(), Some("batch"));
        let BatchResult::Errored { error } = &lines[1].result else {
            panic!("{:?}", lines[1]);
        };
        assert_eq!(error.error.error_type, ErrorType::InvalidRequestError);
        assert!(!error.error.error_type.is_retryable());
        assert_eq!(error.request_id.as_deref(), Some("…"));
        assert_eq!(lines[2].result, BatchResult::Canceled);
        assert_eq!(lines[3].result, BatchResult::Expired);
        // Nothing is lost: each line serializes back to the same JSON.
        for (text, line) in REFERENCE.lines().zip(&lines) {
            let original: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_value(line).unwrap(), original);
        }
    }

    #[test]
    fn text_joins_text_blocks_and_skips_others() {
        let message: Message = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Part one, "},
                {"type": "tool_use", "id": "t", "name": "n", "input": {}},
                {"type": "text", "text": "part two.", "citations": []}
            ],
            "stop_reason": "max_tokens", "stop_sequence": null,
            "usage": {"input_tokens": 1, "output_tokens": 2}
        }))
        .unwrap();
        assert_eq!(message.text(), "Part one, part two.");
        assert!(message.stop_reason.unwrap().is_truncated());
        assert_eq!(message.content[2], ContentBlock::Other);
    }

    #[test]
    fn stop_reasons_and_unknown_values() {
        let reason = |text: &str| serde_json::from_value::<StopReason>(json!(text)).unwrap();
        assert_eq!(reason("refusal"), StopReason::Refusal);
        assert!(!reason("refusal").is_truncated());
        assert!(reason("model_context_window_exceeded").is_truncated());
        assert_eq!(reason("something_new"), StopReason::Unknown);
        let line = br#"{"custom_id":"x","result":{"type":"deferred"}}"#;
        assert_eq!(
            BatchResultLine::parse(line, 1).unwrap().result,
            BatchResult::Unknown
        );
        let overloaded = br#"{"custom_id":"x","result":{"type":"errored","error":{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}}}"#;
        let BatchResult::Errored { error } = BatchResultLine::parse(overloaded, 1).unwrap().result
        else {
            panic!("not errored");
        };
        assert!(error.error.error_type.is_retryable());
    }

    #[test]
    fn the_reader_names_bad_lines_skips_blank_ones_and_goes_on() {
        let text = b"{\"custom_id\":\"a\",\"result\":{\"type\":\"expired\"}}\r\n\n{not json}\n{\"custom_id\":\"b\",\"result\":{\"type\":\"canceled\"}}";
        let lines: Vec<_> = read_results(&text[..]).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].as_ref().unwrap().custom_id.as_str(), "a");
        assert!(matches!(lines[1], Err(Error::ResultLine { line: 3, .. })));
        assert_eq!(lines[2].as_ref().unwrap().custom_id.as_str(), "b");
        let bad_id = br#"{"custom_id":"a.b","result":{"type":"expired"}}"#;
        assert!(matches!(
            BatchResultLine::parse(bad_id, 7),
            Err(Error::ResultLine { line: 7, .. })
        ));
    }

    #[test]
    fn the_reader_stops_at_a_line_too_long() {
        let mut text = vec![b' '; MAX_RESULT_LINE_BYTES + 10];
        text.extend_from_slice(b"\n{\"custom_id\":\"a\",\"result\":{\"type\":\"expired\"}}\n");
        let lines: Vec<_> = read_results(&text[..]).collect();
        assert_eq!(lines.len(), 1);
        assert!(matches!(
            lines[0],
            Err(Error::ResultLineTooLong { line: 1, .. })
        ));
    }
}
