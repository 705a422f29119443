//! The parallel half of a run: one line in, a verdict out (parse, classify, clean).

use batch_request::{ResultLine, Usage};
use curriculum_parser::LessonCode;

use crate::clean::{Rule, clean_owned};
use crate::custom_id::lesson_code;
use crate::outcome::{Failed, FailureKind, Outcome, classify};
use crate::reader::RawLine;
use crate::summary::MalformedReason;
use crate::{ProcessConfig, REJECTED_DIR};

/// One line for a worker.
pub(crate) struct Work {
    pub(crate) input: usize,
    pub(crate) line: u64,
    pub(crate) raw: RawLine,
}

/// A worker's verdict on one line.
pub(crate) struct Done {
    pub(crate) input: usize,
    pub(crate) line: u64,
    pub(crate) result: LineResult,
}

/// What a line amounts to.
pub(crate) enum LineResult {
    /// Unusable.
    Malformed(MalformedReason),
    /// A result for a lesson.
    Parsed(Box<Parsed>),
}

/// A well-formed line for a lesson.
pub(crate) struct Parsed {
    pub(crate) custom_id: String,
    pub(crate) code: LessonCode,
    /// The model named in the response body.
    pub(crate) model: Option<String>,
    pub(crate) usage: Option<Usage>,
    pub(crate) answer: Answer,
}

/// A lesson text to write, or a failure.
pub(crate) enum Answer {
    /// The cleaned text.
    Lesson {
        text: String,
        rules: Vec<Rule>,
        truncated: bool,
        /// Below spec, written because `accept_below_spec` is set.
        below_spec: bool,
    },
    /// No lesson; a truncated or refused-in-text answer's raw text, or a below-spec answer's
    /// cleaned text, is kept for `rejected/`.
    Failed {
        failed: Failed,
        rejected_text: Option<String>,
    },
}

/// The bytes a line holds in memory.
pub(crate) fn raw_len(raw: &RawLine) -> usize {
    match raw {
        RawLine::Bytes(bytes) => bytes.len(),
        RawLine::TooLong { .. } => 0,
    }
}

/// Parses, classifies and cleans one line: everything that needs no shared state.
pub(crate) fn examine(work: Work, config: &ProcessConfig<'_>) -> Done {
    let result = match work.raw {
        RawLine::TooLong { len } => LineResult::Malformed(MalformedReason::TooLong {
            bytes: len,
            max: config.max_line_bytes as u64,
        }),
        RawLine::Bytes(raw) => match std::str::from_utf8(&raw) {
            Err(_) => LineResult::Malformed(MalformedReason::InvalidUtf8),
            Ok(text) => examine_json(text, config),
        },
    };
    Done {
        input: work.input,
        line: work.line,
        result,
    }
}

fn examine_json(text: &str, config: &ProcessConfig<'_>) -> LineResult {
    let mut line: ResultLine = match serde_json::from_str(text) {
        Ok(line) => line,
        Err(err) => return LineResult::Malformed(json_problem(&err)),
    };
    // Neither `response` nor `error`: an Anthropic Message Batches line (`result`) is read
    // as the Batch API's; a `result` of another shape is reported with what did not fit,
    // anything else below.
    if line.response.is_none() && line.error.is_none() {
        match anthropic_batch_client::BatchResultLine::parse(text.as_bytes(), 0) {
            Ok(anthropic) => line = crate::anthropic::result_line(anthropic),
            Err(anthropic_batch_client::Error::ResultLine { source, .. }) if has_result(text) => {
                return LineResult::Malformed(MalformedReason::UnexpectedShape {
                    message: format!("an Anthropic result line of an unknown shape: {source}"),
                });
            }
            Err(_) => {}
        }
    }
    let Some(code) = lesson_code(&line.custom_id) else {
        return LineResult::Malformed(MalformedReason::InvalidCustomId {
            custom_id: shown_id(&line.custom_id),
        });
    };
    let Ok(outcome) = classify(&mut line) else {
        return LineResult::Malformed(MalformedReason::UnexpectedShape {
            message: "neither `response` nor `error` is set".to_owned(),
        });
    };
    let title = config.title_of(code);
    let answer = match outcome {
        Outcome::Answer(text) => check_quality(lesson_or_empty(text, code, title, false), config),
        Outcome::Failed(failed)
            if failed.kind == FailureKind::Truncated && config.accept_truncated =>
        {
            let text = failed.partial_text.unwrap_or_default();
            lesson_or_empty(text, code, title, true)
        }
        Outcome::Failed(mut failed) => Answer::Failed {
            rejected_text: failed.partial_text.take(),
            failed,
        },
    };
    let body = line.response.map(|response| response.body);
    Parsed {
        custom_id: line.custom_id,
        code,
        model: body.as_ref().and_then(|body| body.model.clone()),
        usage: body.and_then(|body| body.usage),
        answer,
    }
    .into()
}

impl From<Parsed> for LineResult {
    fn from(parsed: Parsed) -> Self {
        LineResult::Parsed(Box::new(parsed))
    }
}

/// The cleaned lesson, or an empty-content failure when cleanup left only a heading.
fn lesson_or_empty(text: String, code: LessonCode, title: Option<&str>, truncated: bool) -> Answer {
    let cleaned = clean_owned(text, code, title);
    // Cleanup always leaves the lesson heading on the first line.
    let body = cleaned.text.split_once('\n').map_or("", |(_, body)| body);
    if body.trim().is_empty() {
        let rules: Vec<&str> = cleaned
            .rules_applied
            .iter()
            .map(|rule| rule.name())
            .collect();
        return Answer::Failed {
            failed: Failed {
                kind: FailureKind::EmptyContent,
                code: "empty_after_cleanup".to_owned(),
                reason: format!("nothing left after cleanup (rules: {})", rules.join(", ")),
                status: Some(200),
                partial_text: None,
            },
            rejected_text: None,
        };
    }
    Answer::Lesson {
        text: cleaned.text,
        rules: cleaned.rules_applied,
        truncated,
        below_spec: false,
    }
}

/// Passes a cleaned lesson through the quality gate: one below spec becomes a
/// [`FailureKind::BelowSpec`] failure whose text goes to `rejected/`, headed by an HTML
/// comment giving the reason, unless `accept_below_spec` writes it.
fn check_quality(answer: Answer, config: &ProcessConfig<'_>) -> Answer {
    let Answer::Lesson {
        text,
        rules,
        truncated,
        below_spec: _,
    } = answer
    else {
        return answer;
    };
    match config.quality.check(&text) {
        Ok(()) => Answer::Lesson {
            text,
            rules,
            truncated,
            below_spec: false,
        },
        Err(below) if config.accept_below_spec => {
            tracing::debug!(%below, "below spec, written as asked");
            Answer::Lesson {
                text,
                rules,
                truncated,
                below_spec: true,
            }
        }
        Err(below) => Answer::Failed {
            rejected_text: Some(format!("<!-- below_spec: {below} -->\n\n{text}")),
            failed: Failed {
                kind: FailureKind::BelowSpec,
                code: "below_spec".to_owned(),
                reason: format!("answer below spec ({below}); kept in {REJECTED_DIR}/"),
                status: Some(200),
                partial_text: None,
            },
        },
    }
}

/// Whether a JSON object has a `result` key (an Anthropic result line).
fn has_result(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Keys {
        result: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Keys>(text).is_ok_and(|keys| keys.result.is_some())
}

fn json_problem(err: &serde_json::Error) -> MalformedReason {
    use serde_json::error::Category;
    let message = err.to_string();
    match err.classify() {
        Category::Data if message.starts_with("missing field `custom_id`") => {
            MalformedReason::MissingCustomId
        }
        Category::Data => MalformedReason::UnexpectedShape { message },
        Category::Syntax | Category::Eof | Category::Io => MalformedReason::Json { message },
    }
}

/// An id fit for a report: escaped and cut to 80 characters.
fn shown_id(custom_id: &str) -> String {
    custom_id
        .chars()
        .take(80)
        .flat_map(char::escape_debug)
        .collect()
}
