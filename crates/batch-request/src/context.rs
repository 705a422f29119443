//! The context-window check: a request whose input tokens plus `max_completion_tokens` pass
//! its model's context window can never be answered, so the set of requests is refused
//! before anything is sent, naming the lessons.

use std::fmt;

use curriculum_parser::LessonCode;
use serde::{Deserialize, Serialize};

use crate::{Error, LessonRequest, Provider, RequestSettings};

/// How many over-window requests [`Error::OverContextWindow`] names; it counts the rest.
pub const OVER_CONTEXT_WINDOW_NAMED: usize = 5;

/// A lesson request that does not fit its model's context window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OversizedRequest {
    /// The lesson's code.
    pub code: LessonCode,
    /// The lesson's title.
    pub title: String,
    /// The lesson's 1-based line in the outline.
    pub line: usize,
    /// The model the request names.
    pub model: String,
    /// Its estimated input tokens, chat overhead included (approximate for a Claude model:
    /// see [`crate::Estimate::approximate`]).
    pub input_tokens: u64,
    /// Its `max_completion_tokens`.
    pub max_completion_tokens: u64,
    /// The model's context window ([`RequestSettings::context_window_for`]).
    pub context_window: u64,
}

impl fmt::Display for OversizedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lesson {} `{}", self.code, short_title(&self.title))?;
        let chars = self.title.chars().count();
        if chars > TITLE_SHOWN {
            write!(f, "…` ({chars} characters)")?;
        } else {
            f.write_str("`")?;
        }
        write!(
            f,
            " at outline line {}: {} input + {} max_completion_tokens = {} tokens, over the {}-token window of {}",
            self.line,
            self.input_tokens,
            self.max_completion_tokens,
            self.input_tokens.saturating_add(self.max_completion_tokens),
            self.context_window,
            self.model,
        )?;
        if Provider::for_model(&self.model) == Provider::Anthropic {
            f.write_str(" (input tokens approximate: Claude's tokenizer is not public)")?;
        }
        Ok(())
    }
}

/// Finds the requests over their model's context window as requests stream past, keeping
/// the first few ([`OVER_CONTEXT_WINDOW_NAMED`]) and a count, so memory stays flat.
#[derive(Debug)]
pub(crate) struct ContextCheck {
    settings: RequestSettings,
    /// The last model looked up and its window, since a job names one model.
    last: Option<(String, Option<u64>)>,
    named: Vec<OversizedRequest>,
    count: usize,
}

impl ContextCheck {
    pub(crate) fn new(settings: &RequestSettings) -> ContextCheck {
        ContextCheck {
            settings: settings.clone(),
            last: None,
            named: Vec::new(),
            count: 0,
        }
    }

    /// The context window of `model`; `None` when unknown (not checked).
    pub(crate) fn window(&mut self, model: &str) -> Option<u64> {
        match &self.last {
            Some((last, window)) if last == model => *window,
            _ => {
                let window = self.settings.context_window_for(model);
                self.last = Some((model.to_owned(), window));
                window
            }
        }
    }

    /// The `max_completion_tokens` of `request` (the settings' when it names none).
    pub(crate) fn max_completion_tokens(&self, request: &LessonRequest) -> u64 {
        u64::from(
            request
                .request
                .body
                .max_completion_tokens
                .unwrap_or(self.settings.max_completion_tokens),
        )
    }

    /// Records `request` as over `window` when its tokens pass it; says whether they do.
    pub(crate) fn check(
        &mut self,
        request: &LessonRequest,
        input_tokens: u64,
        window: u64,
    ) -> bool {
        let max_completion_tokens = self.max_completion_tokens(request);
        if input_tokens.saturating_add(max_completion_tokens) <= window {
            return false;
        }
        self.count += 1;
        if self.named.len() < OVER_CONTEXT_WINDOW_NAMED {
            self.named.push(OversizedRequest {
                code: request.code,
                title: request.title.clone(),
                line: request.line,
                model: request.request.body.model.clone(),
                input_tokens,
                max_completion_tokens,
                context_window: window,
            });
        }
        true
    }

    /// `Ok` when every request fit.
    ///
    /// # Errors
    ///
    /// [`Error::OverContextWindow`] naming the first requests that did not, with their count.
    pub(crate) fn finish(&mut self) -> Result<(), Error> {
        if self.count == 0 {
            return Ok(());
        }
        Err(Error::OverContextWindow {
            requests: std::mem::take(&mut self.named),
            count: self.count,
        })
    }
}

/// The message of [`Error::OverContextWindow`].
pub(crate) fn over_context_window_message(requests: &[OversizedRequest], count: usize) -> String {
    let mut message = if count == 1 {
        "1 request does not fit its model's context window (input tokens plus max_completion_tokens)".to_owned()
    } else {
        format!(
            "{count} requests do not fit their model's context window (input tokens plus max_completion_tokens)"
        )
    };
    for request in requests {
        message.push_str("\n  ");
        message.push_str(&request.to_string());
    }
    let unnamed = count.saturating_sub(requests.len());
    if unnamed > 0 {
        message.push_str(&format!("\n  and {unnamed} more"));
    }
    message
}

/// How many characters of a title an error shows: a title can be as long as its outline line.
const TITLE_SHOWN: usize = 60;

/// The first [`TITLE_SHOWN`] characters of a title.
fn short_title(title: &str) -> &str {
    match title.char_indices().nth(TITLE_SHOWN) {
        None => title,
        Some((end, _)) => &title[..end],
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{Limits, Shard, Template};

    /// A lesson-map outline of one module whose lessons have these titles.
    fn outline(titles: &[&str]) -> String {
        let mut text = "# M0: Test — Lesson Map\n".to_owned();
        for (index, title) in titles.iter().enumerate() {
            text.push_str(&format!("## L{:03}: {title} [F]\n", index + 1));
        }
        text
    }

    /// Builds the lessons of `titles` with the built-in template and writes their shards.
    fn write(
        titles: &[&str],
        settings: &RequestSettings,
    ) -> (tempfile::TempDir, Result<Vec<Shard>, Error>) {
        write_with(titles, &Template::generic(), settings)
    }

    /// Builds the lessons of `titles` with `template` and writes their shards.
    fn write_with(
        titles: &[&str],
        template: &Template,
        settings: &RequestSettings,
    ) -> (tempfile::TempDir, Result<Vec<Shard>, Error>) {
        let text = outline(titles);
        let curriculum = curriculum_parser::parse(&text, Path::new("outline.md")).unwrap();
        let requests =
            crate::build_requests(&curriculum, &text, curriculum.lessons(), template, settings)
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let result = crate::write_shards(&requests, dir.path(), "job", Limits::default(), settings);
        (dir, result)
    }

    /// A title of 200,000 characters that the tokenizer cannot merge much (issue 12).
    fn huge_title() -> String {
        let mut title = String::new();
        for number in 0u32.. {
            if title.len() >= 200_000 {
                break;
            }
            title.push_str(&format!("{number:x}q"));
        }
        title.truncate(200_000);
        title
    }

    fn files_in(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_huge_title_is_refused_naming_the_lesson_and_nothing_is_written() {
        // Regression test for issue 12: a 200,000-character title built a request far over
        // gpt-4o-mini's 128,000-token window, and nothing said so.
        let huge = huge_title();
        let settings = RequestSettings::default();
        assert_eq!(settings.model, "gpt-4o-mini");
        let (dir, result) = write(&["What Is Data Governance?", &huge, "Roles"], &settings);
        let err = result.unwrap_err();
        let Error::OverContextWindow { requests, count } = &err else {
            panic!("unexpected {err:?}");
        };
        // The built-in template names the neighbours in `{{related_lessons}}`, so their
        // prompts carry the title too.
        let codes: Vec<String> = requests.iter().map(|r| r.code.to_string()).collect();
        assert_eq!(codes, ["M0-L001", "M0-L002", "M0-L003"]);
        assert_eq!(*count, 3);
        let request = &requests[1];
        assert_eq!(request.line, 3);
        assert_eq!(request.title, huge);
        assert_eq!(request.context_window, 128_000);
        assert_eq!(request.max_completion_tokens, 16_384);
        assert!(request.input_tokens > 128_000, "{request:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("3 requests do not fit their model's context window"),
            "{message}"
        );
        assert!(message.contains("lesson M0-L002 `"), "{message}");
        assert!(
            message.contains("(200000 characters) at outline line 3"),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "{} input + 16384 max_completion_tokens",
                request.input_tokens
            )),
            "{message}"
        );
        assert!(
            message.contains("over the 128000-token window of gpt-4o-mini"),
            "{message}"
        );
        // The title is cut in the message.
        assert!(message.len() < 1_000, "{}", message.len());
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
    }

    #[test]
    fn normal_lessons_pass() {
        let (_dir, result) = write(
            &["What Is Data Governance?", "Roles and Responsibilities"],
            &RequestSettings::default(),
        );
        let shards = result.unwrap();
        assert_eq!(shards.len(), 1);
        assert_eq!(shards[0].requests, 2);
    }

    #[test]
    fn a_window_in_the_settings_raises_the_limit() {
        let huge = huge_title();
        let settings = RequestSettings::from_toml_str(
            "[context_window]\ngpt-4o-mini = 2000000\n",
            Path::new("lessons.toml"),
        )
        .unwrap();
        let (_dir, result) = write(&["Intro", &huge], &settings);
        assert_eq!(result.unwrap()[0].requests, 2);
        // And one that lowers it refuses a normal lesson.
        let settings = RequestSettings::from_toml_str(
            "max_completion_tokens = 1000\n[context_window]\ngpt-4o-mini = 1200\n",
            Path::new("lessons.toml"),
        )
        .unwrap();
        let (_dir, result) = write(&["Intro"], &settings);
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::OverContextWindow { requests, count: 1 } if requests[0].context_window == 1200 && requests[0].max_completion_tokens == 1000),
            "{err:?}"
        );
    }

    #[test]
    fn claude_requests_are_checked_with_approximate_tokens() {
        let huge = huge_title();
        let template = Template::parse(
            "# Lesson {{lesson_code}}: {{lesson_title}}\n{{lesson_title}}\n{{lesson_title}}\n",
            Path::new("t.md"),
        )
        .unwrap();
        let settings = RequestSettings {
            model: "claude-sonnet-4-5-20250929".to_owned(),
            ..RequestSettings::default()
        };
        let (_dir, result) = write_with(&["Intro", &huge], &template, &settings);
        let err = result.unwrap_err();
        let Error::OverContextWindow { requests, count: 1 } = &err else {
            panic!("unexpected {err:?}");
        };
        let request = &requests[0];
        assert_eq!(request.context_window, 200_000);
        let text = outline(&["Intro", &huge]);
        let curriculum = curriculum_parser::parse(&text, Path::new("outline.md")).unwrap();
        let lessons = curriculum.lessons().skip(1);
        let requests =
            crate::build_requests(&curriculum, &text, lessons, &template, &settings).unwrap();
        let body = &requests[0].request.body;
        assert_eq!(
            request.input_tokens,
            crate::Estimator::exact_input_tokens(body)
        );
        let message = err.to_string();
        assert!(
            message.ends_with(
                "window of claude-sonnet-4-5-20250929 (input tokens approximate: Claude's tokenizer is not public)"
            ),
            "{message}"
        );
        // An OpenAI model's count is its tokenizer's own: no such note.
        let (_dir, result) = write_with(&[&huge], &template, &RequestSettings::default());
        let message = result.unwrap_err().to_string();
        assert!(!message.contains("approximate"), "{message}");
    }

    #[test]
    fn unknown_models_are_not_checked() {
        let huge = huge_title();
        let settings = RequestSettings {
            model: "llama3.1".to_owned(),
            ..RequestSettings::default()
        };
        let (_dir, result) = write(&[&huge], &settings);
        assert_eq!(result.unwrap()[0].requests, 1);
    }

    #[test]
    fn many_are_counted_and_the_first_few_named() {
        let huge = huge_title();
        let titles: Vec<&str> = (0..8)
            .map(|i| if i == 3 { "Fine" } else { huge.as_str() })
            .collect();
        let template = Template::parse(
            "# Lesson {{lesson_code}}: {{lesson_title}}\n",
            Path::new("t.md"),
        )
        .unwrap();
        let (_dir, result) = write_with(&titles, &template, &RequestSettings::default());
        let err = result.unwrap_err();
        let Error::OverContextWindow { requests, count } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(*count, 7);
        let codes: Vec<String> = requests.iter().map(|r| r.code.to_string()).collect();
        assert_eq!(
            codes,
            ["M0-L001", "M0-L002", "M0-L003", "M0-L005", "M0-L006"]
        );
        let message = err.to_string();
        assert!(message.starts_with("7 requests do not fit"), "{message}");
        assert!(message.ends_with("\n  and 2 more"), "{message}");
        assert_eq!(message.lines().count(), 1 + 5 + 1, "{message}");
        // One request alone.
        let (_dir, result) = write_with(&[&huge], &template, &RequestSettings::default());
        let message = result.unwrap_err().to_string();
        assert!(
            message.starts_with("1 request does not fit its model's context window"),
            "{message}"
        );
    }

    #[test]
    fn the_window_is_checked_before_the_shard_token_limit() {
        // A request over its window is named as such, not as too large for one shard.
        let huge = huge_title();
        let settings = RequestSettings::default();
        let text = outline(&[&huge]);
        let curriculum = curriculum_parser::parse(&text, Path::new("outline.md")).unwrap();
        let requests = crate::build_requests(
            &curriculum,
            &text,
            curriculum.lessons(),
            &Template::generic(),
            &settings,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_input_tokens: Some(50_000),
            ..Limits::default()
        };
        let err = crate::write_shards(&requests, dir.path(), "job", limits, &settings).unwrap_err();
        assert!(
            matches!(err, Error::OverContextWindow { count: 1, .. }),
            "{err:?}"
        );
    }
}
