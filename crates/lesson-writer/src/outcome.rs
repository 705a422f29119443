//! What one result line means: a lesson text, or a failure with a reason the user
//! can act on and whether resubmitting is worth it.

use batch_request::{ResponseEnvelope, ResultLine};
use serde::Serialize;

use crate::refusal::is_text_refusal;

/// Why a request produced no lesson.
///
/// [`FailureKind::retryable`] says whether resubmitting the request may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// `finish_reason: length`: the answer was cut off at `max_completion_tokens`.
    Truncated,
    /// `finish_reason: content_filter`: the answer was withheld by the content filter.
    ContentFilter,
    /// The model refused (`content` null, `refusal` set).
    Refusal,
    /// The model refused in the answer's text ("I'm sorry, but I can't help with that."),
    /// with `finish_reason: stop` and no `refusal` field: a short answer dominated by refusal
    /// phrasing. Not retried automatically, like [`FailureKind::Refusal`]: the same prompt
    /// tends to meet the same refusal, so a rerun is the user's call. The text is kept for
    /// inspection.
    RefusedInText,
    /// Status 200 but no text (empty or whitespace-only content, or no choices).
    EmptyContent,
    /// Status 200 with a `finish_reason` other than `stop`, `length` or
    /// `content_filter` (e.g. `tool_calls`), or none at all.
    UnexpectedFinish,
    /// HTTP 429: rate limited.
    RateLimited,
    /// HTTP 429 with `insufficient_quota`: the account is out of credit.
    QuotaExceeded,
    /// HTTP 5xx.
    ServerError,
    /// HTTP 408 or the non-HTTP `request_timeout`.
    Timeout,
    /// Non-HTTP `batch_expired`: the request did not run before the window closed.
    Expired,
    /// Non-HTTP `batch_cancelled`: the batch was cancelled before the request ran.
    Cancelled,
    /// Any other non-HTTP error code: the request did not run.
    NotRun,
    /// HTTP 4xx other than 408 and 429 (bad parameter, unknown model, ...).
    InvalidRequest,
    /// A finished answer that the quality gate ([`crate::QualityGate`]) finds is no lesson:
    /// too few words, or sections the template asks for missing. Kept in `rejected/`;
    /// retryable, and a job resubmits it once (a second one is final).
    BelowSpec,
}

impl FailureKind {
    /// Whether resubmitting the same request may succeed: rate limits, server
    /// errors, timeouts, expired or cancelled batches, requests that did not run,
    /// truncated answers (with a higher token limit) and answers below spec (once).
    /// Invalid requests, content policy, refusals (in the `refusal` field or in the text) and
    /// empty answers are not retryable.
    pub fn retryable(self) -> bool {
        match self {
            FailureKind::Truncated
            | FailureKind::RateLimited
            | FailureKind::ServerError
            | FailureKind::Timeout
            | FailureKind::Expired
            | FailureKind::Cancelled
            | FailureKind::NotRun
            | FailureKind::BelowSpec => true,
            FailureKind::ContentFilter
            | FailureKind::Refusal
            | FailureKind::RefusedInText
            | FailureKind::EmptyContent
            | FailureKind::UnexpectedFinish
            | FailureKind::QuotaExceeded
            | FailureKind::InvalidRequest => false,
        }
    }

    /// The snake-case name used in JSON (`truncated`, `rate_limited`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Truncated => "truncated",
            FailureKind::ContentFilter => "content_filter",
            FailureKind::Refusal => "refusal",
            FailureKind::RefusedInText => "refused_in_text",
            FailureKind::EmptyContent => "empty_content",
            FailureKind::UnexpectedFinish => "unexpected_finish",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::QuotaExceeded => "quota_exceeded",
            FailureKind::ServerError => "server_error",
            FailureKind::Timeout => "timeout",
            FailureKind::Expired => "expired",
            FailureKind::Cancelled => "cancelled",
            FailureKind::NotRun => "not_run",
            FailureKind::InvalidRequest => "invalid_request",
            FailureKind::BelowSpec => "below_spec",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The class of failure.
    pub kind: FailureKind,
    /// The most specific code the line gave: a `finish_reason`, the API error's
    /// `code` or `type`, `http_<status>`, or the non-HTTP error code.
    pub code: String,
    /// A sentence fragment saying what happened and what to do.
    pub reason: String,
    /// The HTTP status, when the request ran.
    pub status: Option<u16>,
    /// The answer's text, kept for inspection: a truncated answer's, or a refusal's written
    /// as text.
    pub partial_text: Option<String>,
}

/// What a parsed result line amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A finished answer.
    Answer(String),
    /// No usable answer.
    Failed(Failed),
}

/// A line with neither a response nor an error: an unexpected shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoResult;

/// Classifies any Batch API result line (of any content pipeline, not only lessons),
/// taking the answer text out of it: a finished answer, or a [`Failed`] with its
/// [`FailureKind`], a reason and whether resubmitting may help.
///
/// ```
/// use lesson_writer::{FailureKind, Outcome, classify};
/// let mut line: batch_request::ResultLine = serde_json::from_str(
///     r#"{"custom_id": "product-17", "response": null, "error": {"code": "batch_expired", "message": "m"}}"#,
/// )?;
/// match classify(&mut line) {
///     Ok(Outcome::Failed(failed)) => assert_eq!(failed.kind, FailureKind::Expired),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// # Errors
///
/// [`NoResult`] when the line has neither a response nor an error.
pub fn classify(line: &mut ResultLine) -> Result<Outcome, NoResult> {
    Ok(match (&mut line.response, &line.error) {
        (Some(response), _) if response.status_code == 200 => classify_answer(response),
        (Some(response), _) => Outcome::Failed(classify_http(response)),
        (None, Some(error)) => {
            let code = error.code.clone().unwrap_or_else(|| "unknown".to_owned());
            let kind = match code.as_str() {
                "batch_expired" => FailureKind::Expired,
                "batch_cancelled" => FailureKind::Cancelled,
                "request_timeout" => FailureKind::Timeout,
                _ => FailureKind::NotRun,
            };
            let message = error.message.as_deref().unwrap_or("no message");
            let hint = match kind {
                FailureKind::Expired => "; resubmit it in a new batch",
                FailureKind::Cancelled => "; resubmit it if the cancel was not meant for it",
                FailureKind::Timeout => "; resubmit it",
                _ => "",
            };
            Outcome::Failed(Failed {
                kind,
                reason: format!("request did not run ({code}): {message}{hint}"),
                code,
                status: None,
                partial_text: None,
            })
        }
        (None, None) => return Err(NoResult),
    })
}

fn classify_answer(response: &mut ResponseEnvelope) -> Outcome {
    let failed = |kind: FailureKind, code: &str, reason: String| {
        Outcome::Failed(Failed {
            kind,
            code: code.to_owned(),
            reason,
            status: Some(200),
            partial_text: None,
        })
    };
    let Some(choice) = response.body.choices.first_mut() else {
        return failed(
            FailureKind::EmptyContent,
            "no_choices",
            "response has no choices".to_owned(),
        );
    };
    let finish = choice.finish_reason.as_deref();
    if let Some(refusal) = choice
        .message
        .refusal
        .as_deref()
        .filter(|text| !text.trim().is_empty())
    {
        return failed(
            FailureKind::Refusal,
            "refusal",
            format!("model refused: {}", excerpt(refusal)),
        );
    }
    match finish {
        Some("stop") => {}
        Some("length") => {
            let text = choice.message.content.take().unwrap_or_default();
            let reasoning = response
                .body
                .usage
                .and_then(|usage| usage.completion_tokens_details)
                .map_or(0, |details| details.reasoning_tokens);
            let completion = response
                .body
                .usage
                .map_or(0, |usage| usage.completion_tokens);
            let detail = if reasoning > 0 {
                format!(" ({completion} completion tokens, {reasoning} of them reasoning)")
            } else if completion > 0 {
                format!(" ({completion} completion tokens)")
            } else {
                String::new()
            };
            return Outcome::Failed(Failed {
                kind: FailureKind::Truncated,
                code: "length".to_owned(),
                reason: format!(
                    "answer cut off at max_completion_tokens{detail}; raise the limit and resubmit"
                ),
                status: Some(200),
                partial_text: (!text.trim().is_empty()).then_some(text),
            });
        }
        Some("content_filter") => {
            return failed(
                FailureKind::ContentFilter,
                "content_filter",
                "answer withheld by the content filter; rephrase the prompt".to_owned(),
            );
        }
        Some(other) => {
            return failed(
                FailureKind::UnexpectedFinish,
                other,
                format!("unexpected finish_reason `{}`", excerpt(other)),
            );
        }
        None => {
            return failed(
                FailureKind::UnexpectedFinish,
                "no_finish_reason",
                "answer has no finish_reason".to_owned(),
            );
        }
    }
    match choice.message.content.take() {
        Some(text) if is_text_refusal(&text) => Outcome::Failed(Failed {
            kind: FailureKind::RefusedInText,
            code: "refused_in_text".to_owned(),
            reason: format!(
                "model refused in its answer: \"{}\"; rerun to ask again, or reword the prompt",
                excerpt(&text.split_whitespace().collect::<Vec<_>>().join(" "))
            ),
            status: Some(200),
            partial_text: Some(text),
        }),
        Some(text) if !text.trim().is_empty() => Outcome::Answer(text),
        _ => failed(
            FailureKind::EmptyContent,
            "empty_content",
            "answer has no text".to_owned(),
        ),
    }
}

fn classify_http(response: &ResponseEnvelope) -> Failed {
    let status = response.status_code;
    let error = response.body.error.as_ref();
    let api_code = error.and_then(|error| error.code.as_deref().or(error.kind.as_deref()));
    let kind = match (status, api_code) {
        (429, Some("insufficient_quota")) => FailureKind::QuotaExceeded,
        (429, _) => FailureKind::RateLimited,
        (408, _) => FailureKind::Timeout,
        (500..=599, _) => FailureKind::ServerError,
        _ => FailureKind::InvalidRequest,
    };
    let message = error
        .map(|error| error.message.as_str())
        .filter(|message| !message.is_empty())
        .unwrap_or("no error message");
    let param = error
        .and_then(|error| error.param.as_deref())
        .map(|param| format!(" (param `{}`)", excerpt(param)))
        .unwrap_or_default();
    Failed {
        kind,
        code: api_code.map_or_else(|| format!("http_{status}"), str::to_owned),
        reason: format!("HTTP {status}: {}{param}", excerpt(message)),
        status: Some(status),
        partial_text: None,
    }
}

/// A message cut to 300 characters, so a reason stays one readable line.
fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_json(json: &str) -> Outcome {
        let mut line: ResultLine = serde_json::from_str(json).unwrap();
        classify(&mut line).unwrap()
    }

    fn answer(content: &str, finish: &str) -> String {
        let content = serde_json::to_string(content).unwrap();
        format!(
            r#"{{"custom_id":"M0-L001","response":{{"status_code":200,"body":{{"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":{content},"refusal":null}},"finish_reason":"{finish}"}}]}}}},"error":null}}"#
        )
    }

    fn failure(json: &str) -> Failed {
        match classify_json(json) {
            Outcome::Failed(failed) => failed,
            Outcome::Answer(text) => panic!("expected a failure, got {text:?}"),
        }
    }

    #[test]
    fn a_finished_answer_is_an_answer() {
        assert_eq!(
            classify_json(&answer("# Lesson", "stop")),
            Outcome::Answer("# Lesson".to_owned())
        );
    }

    #[test]
    fn answer_failures() {
        let truncated = failure(&answer("# Lesson\npart", "length"));
        assert_eq!(truncated.kind, FailureKind::Truncated);
        assert_eq!(truncated.partial_text.as_deref(), Some("# Lesson\npart"));
        assert_eq!(
            failure(&answer("x", "content_filter")).kind,
            FailureKind::ContentFilter
        );
        assert_eq!(
            failure(&answer(" \n", "stop")).kind,
            FailureKind::EmptyContent
        );
        assert_eq!(
            failure(&answer("x", "tool_calls")).kind,
            FailureKind::UnexpectedFinish
        );
        let refusal = failure(
            r#"{"custom_id":"M0-L001","response":{"status_code":200,"body":{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}}}"#,
        );
        assert_eq!(refusal.kind, FailureKind::Refusal);
        assert_eq!(refusal.reason, "model refused: I can't help with that.");
    }

    /// Issue 12: a refusal in the text, finished with `stop` and no `refusal` field.
    #[test]
    fn a_refusal_in_the_text_is_a_failure() {
        let refused = failure(&answer("I'm sorry, but I can't help with that.", "stop"));
        assert_eq!(refused.kind, FailureKind::RefusedInText);
        assert_eq!(refused.kind.as_str(), "refused_in_text");
        assert!(!refused.kind.retryable());
        assert_eq!(
            refused.reason,
            "model refused in its answer: \"I'm sorry, but I can't help with that.\"; \
             rerun to ask again, or reword the prompt"
        );
        assert_eq!(
            refused.partial_text.as_deref(),
            Some("I'm sorry, but I can't help with that.")
        );
        let lesson = "# Lesson M0-L001: Intro\n\nI can't stress this enough: check your data.\n";
        assert_eq!(
            classify_json(&answer(lesson, "stop")),
            Outcome::Answer(lesson.to_owned())
        );
    }

    #[test]
    fn http_failures_are_classified_by_status() {
        let check = |status: u16, code: &str, kind: FailureKind, retryable: bool| {
            let json = format!(
                r#"{{"custom_id":"M0-L001","response":{{"status_code":{status},"body":{{"error":{{"message":"m","type":"t","code":"{code}"}}}}}}}}"#
            );
            let failed = failure(&json);
            assert_eq!(
                (failed.kind, failed.kind.retryable()),
                (kind, retryable),
                "{status}"
            );
            assert_eq!(failed.status, Some(status));
        };
        check(400, "unsupported_value", FailureKind::InvalidRequest, false);
        check(404, "model_not_found", FailureKind::InvalidRequest, false);
        check(408, "timeout", FailureKind::Timeout, true);
        check(429, "rate_limit_exceeded", FailureKind::RateLimited, true);
        check(429, "insufficient_quota", FailureKind::QuotaExceeded, false);
        check(500, "server_error", FailureKind::ServerError, true);
        check(503, "overloaded", FailureKind::ServerError, true);
    }

    #[test]
    fn non_http_failures_are_classified_by_code() {
        let check = |code: &str, kind: FailureKind| {
            let json = format!(
                r#"{{"custom_id":"M0-L001","response":null,"error":{{"code":"{code}","message":"m"}}}}"#
            );
            let failed = failure(&json);
            assert_eq!(failed.kind, kind, "{code}");
            assert_eq!(failed.code, code);
            assert!(failed.kind.retryable());
        };
        check("batch_expired", FailureKind::Expired);
        check("batch_cancelled", FailureKind::Cancelled);
        check("request_timeout", FailureKind::Timeout);
        check("something_new", FailureKind::NotRun);
        let mut nothing: ResultLine =
            serde_json::from_str(r#"{"custom_id":"M0-L001","response":null,"error":null}"#)
                .unwrap();
        assert_eq!(classify(&mut nothing), Err(NoResult));
    }

    #[test]
    fn excerpts_are_cut_on_char_boundaries() {
        let long = "é".repeat(400);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 303);
    }
}
