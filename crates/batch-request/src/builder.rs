//! Lessons + template + settings -> one request line per lesson.

use std::borrow::{Borrow, Cow};
use std::collections::HashMap;

use curriculum_parser::{Complexity, Curriculum, Lesson, LessonCode, Level, Module};

use crate::template::{Placeholder, Segment};
use crate::{
    CHAT_COMPLETIONS_URL, ChatMessage, ChatRequest, Error, RequestLine, RequestSettings, Template,
};

/// One lesson's request line, with what estimates and error messages need about the lesson.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonRequest {
    /// The Batch API input line (`custom_id` is `lesson_<code>`).
    pub request: RequestLine,
    /// The lesson's code.
    pub code: LessonCode,
    /// The lesson's title.
    pub title: String,
    /// The lesson's 1-based line in the outline.
    pub line: usize,
    /// The lesson's complexity tag, if it has one.
    pub complexity: Option<Complexity>,
}

/// Builds requests for lessons of one curriculum: computes everything shared by all lessons
/// once, then fills the template per lesson.
///
/// The messages of a request are:
///
/// - a `system` message with the settings' `system_message` and, after a blank line, the
///   template's shared part (the text above its [`crate::LESSON_MARKER`] line), when there is
///   either; it is the same text, byte for byte, in every request of the curriculum, so the
///   API's prompt cache can serve it;
/// - a `user` message with the lesson's part of the template (all of it without a marker;
///   a legacy template, wrapped or not, is always all user message).
///
/// `system` rather than `developer`: OpenAI takes a `system` message from every chat model
/// (it reads it as the developer message on reasoning models), while local
/// OpenAI-compatible servers behind the emulator's `--upstream` often refuse `developer`.
/// One system message rather than two, as some servers allow only one.
///
/// The body gets `reasoning_effort` and `verbosity` when set, the `[body]` parameters, and
/// the [`RequestBuilder::with_prompt_cache_key`] key when the model takes one.
///
/// ```
/// use batch_request::{RequestBuilder, RequestSettings, Template};
///
/// let outline = "# M0: Basics — Lesson Map\n## L001: What Is Data? [F]\n## L002: Data Quality [I]\n";
/// let curriculum = curriculum_parser::parse(outline, "outline.md".as_ref()).unwrap();
/// let template = Template::parse("{{lesson_code}} after {{prerequisites}}", "t.md".as_ref())?;
/// let settings = RequestSettings::default();
/// let builder = RequestBuilder::new(&curriculum, outline, &template, &settings);
/// let built = builder.build(&curriculum.modules[0].lessons[1])?;
/// assert_eq!(built.request.custom_id, "lesson_M0-L002");
/// assert_eq!(built.request.body.messages[0].content, "M0-L002 after M0-L001: What Is Data?");
/// # Ok::<(), batch_request::Error>(())
/// ```
#[derive(Debug)]
pub struct RequestBuilder<'a> {
    curriculum: &'a Curriculum,
    template: &'a Template,
    settings: &'a RequestSettings,
    /// Module number -> module index (module numbers are unique in a curriculum).
    modules: HashMap<u32, usize>,
    curriculum_text: String,
    curriculum_title: String,
    /// The legacy preamble and outline excerpt, ending in `---` and a blank line.
    legacy_prefix: Option<String>,
    /// The system message: `system_message` and the template's shared part, filled.
    system: Option<String>,
    /// Body parameters beyond model, messages, token limit and temperature.
    extra: serde_json::Map<String, serde_json::Value>,
}

/// The note appended to `{{curriculum}}` when the outline is cut.
const CUT_NOTE: &str = "\n\n[Outline cut to its first {N} characters.]";
/// The old scripts' note after a cut outline excerpt, kept word for word.
const LEGACY_CUT_NOTE: &str = "\n\n[Content structure truncated for token limits. Focus on generating the lesson based on the template structure.]";

impl<'a> RequestBuilder<'a> {
    /// Prepares to build requests; `outline_text` is the outline the curriculum was parsed from.
    pub fn new(
        curriculum: &'a Curriculum,
        outline_text: &str,
        template: &'a Template,
        settings: &'a RequestSettings,
    ) -> RequestBuilder<'a> {
        let mut modules = HashMap::new();
        for (module_index, module) in curriculum.modules.iter().enumerate() {
            modules.entry(module.number).or_insert(module_index);
        }
        let limit = settings.curriculum_char_limit;
        let (excerpt, cut) = cut_chars(outline_text, limit);
        let curriculum_text = if cut {
            format!("{excerpt}{}", CUT_NOTE.replace("{N}", &limit.to_string()))
        } else {
            excerpt.clone()
        };
        let legacy_prefix = settings.wraps_legacy(template).then(|| {
            let name = &settings.curriculum_name;
            let note = if cut { LEGACY_CUT_NOTE } else { "" };
            format!(
                "You are generating a polished, publication-ready lesson for {article} {name} Curriculum.\n\
                 Read and internalize the curriculum map below before writing anything: it defines where the lesson fits in the broader curriculum.\n\
                 \n\
                 ### CONTENT STRUCTURE REFERENCE (Curriculum Map - first {limit} chars for context):\n\
                 {excerpt}{note}\n\
                 \n\
                 ---\n\
                 \n",
                article = indefinite_article(name),
            )
        });
        let curriculum_title = curriculum
            .title
            .clone()
            .unwrap_or_else(|| settings.curriculum_name.clone());
        let mut extra: serde_json::Map<String, serde_json::Value> = settings
            .body
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if let Some(effort) = settings.reasoning_effort {
            extra.insert("reasoning_effort".to_owned(), effort.as_str().into());
        }
        if let Some(verbosity) = settings.verbosity {
            extra.insert("verbosity".to_owned(), verbosity.as_str().into());
        }
        let mut builder = RequestBuilder {
            curriculum,
            template,
            settings,
            modules,
            curriculum_text,
            curriculum_title,
            legacy_prefix,
            system: None,
            extra,
        };
        let shared = template
            .shared_segments()
            .map(|segments| builder.fill_shared(segments))
            .filter(|text| !text.is_empty());
        builder.system = match (&settings.system_message, shared) {
            (Some(system), Some(shared)) => Some(format!("{system}\n\n{shared}")),
            (Some(system), None) => Some(system.clone()),
            (None, shared) => shared,
        };
        builder
    }

    /// Gives every request `"prompt_cache_key": key` when the model takes one
    /// ([`crate::supports_prompt_cache_key`]); the caller passes the job's id, so the requests
    /// of one job, which share their leading system message, are routed to the same prompt
    /// cache.
    ///
    /// ```
    /// use batch_request::{RequestBuilder, RequestSettings, Template};
    ///
    /// let outline = "# M0: Basics — Lesson Map\n## L001: What Is Data? [F]\n";
    /// let curriculum = curriculum_parser::parse(outline, "outline.md".as_ref()).unwrap();
    /// let template = Template::parse("{{curriculum}}\n<!-- lesson -->\n{{lesson_title}}", "t.md".as_ref())?;
    /// let settings = RequestSettings::default();
    /// let builder = RequestBuilder::new(&curriculum, outline, &template, &settings)
    ///     .with_prompt_cache_key("3f2a9c0d1e4b5a6c");
    /// let built = builder.build(&curriculum.modules[0].lessons[0])?;
    /// assert_eq!(built.request.body.extra["prompt_cache_key"], "3f2a9c0d1e4b5a6c");
    /// assert_eq!(built.request.body.messages[0].role, "system");
    /// # Ok::<(), batch_request::Error>(())
    /// ```
    pub fn with_prompt_cache_key(mut self, key: impl Into<String>) -> RequestBuilder<'a> {
        if crate::supports_prompt_cache_key(&self.settings.model) {
            self.extra
                .insert("prompt_cache_key".to_owned(), key.into().into());
        }
        self
    }

    /// Builds the request of one lesson of the curriculum.
    ///
    /// # Errors
    ///
    /// [`Error::LessonNotInCurriculum`] when the lesson is not one of the curriculum's
    /// (matched by code and outline line).
    pub fn build(&self, lesson: &Lesson) -> Result<LessonRequest, Error> {
        let (module, lesson_index) =
            self.locate(lesson)
                .ok_or_else(|| Error::LessonNotInCurriculum {
                    code: lesson.code.to_string(),
                    title: lesson.title.clone(),
                    line: lesson.line,
                })?;
        let prompt = self.prompt(module, lesson_index);
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = &self.system {
            messages.push(ChatMessage {
                role: "system".to_owned(),
                content: system.clone(),
            });
        }
        messages.push(ChatMessage {
            role: "user".to_owned(),
            content: prompt,
        });
        Ok(LessonRequest {
            request: RequestLine {
                custom_id: lesson.code.custom_id(),
                method: "POST".to_owned(),
                url: CHAT_COMPLETIONS_URL.to_owned(),
                body: ChatRequest {
                    model: self.settings.model.clone(),
                    messages,
                    max_completion_tokens: Some(self.settings.max_completion_tokens),
                    temperature: self.settings.temperature,
                    extra: self.extra.clone(),
                },
            },
            code: lesson.code,
            title: lesson.title.clone(),
            line: lesson.line,
            complexity: lesson.complexity,
        })
    }

    /// The lesson's module and its index there, matched by code and outline line. A lesson
    /// borrowed from the curriculum is found by its place in the module's lessons, in
    /// constant time and without an index of every lesson (which would grow with the course);
    /// a copy is looked for among its module's lessons.
    fn locate(&self, lesson: &Lesson) -> Option<(&'a Module, usize)> {
        let module = &self.curriculum.modules[*self.modules.get(&lesson.code.module())?];
        let is_it =
            |candidate: &Lesson| candidate.code == lesson.code && candidate.line == lesson.line;
        let offset =
            (std::ptr::from_ref(lesson) as usize).wrapping_sub(module.lessons.as_ptr() as usize);
        let borrowed = offset / std::mem::size_of::<Lesson>();
        let index = if offset.is_multiple_of(std::mem::size_of::<Lesson>())
            && module.lessons.get(borrowed).is_some_and(is_it)
        {
            borrowed
        } else {
            module.lessons.iter().position(is_it)?
        };
        Some((module, index))
    }

    /// Builds requests lazily, one per lesson, for streaming into a [`crate::ShardWriter`].
    pub fn requests<I>(&self, lessons: I) -> impl Iterator<Item = Result<LessonRequest, Error>>
    where
        I: IntoIterator,
        I::Item: Borrow<Lesson>,
    {
        lessons
            .into_iter()
            .map(move |lesson| self.build(lesson.borrow()))
    }

    /// The user prompt of one lesson: the filled template, replacements applied, wrapped for
    /// legacy templates.
    fn prompt(&self, module: &Module, lesson_index: usize) -> String {
        let lesson = &module.lessons[lesson_index];
        let mut filled = String::with_capacity(
            self.curriculum_text.len() + 4096 + self.legacy_prefix.as_ref().map_or(0, String::len),
        );
        if let Some(prefix) = &self.legacy_prefix
            && self.settings.replacements.is_empty()
        {
            filled.push_str(prefix);
        }
        for segment in self.template.segments() {
            match segment {
                Segment::Text(text) => filled.push_str(text),
                Segment::Value(placeholder) => {
                    filled.push_str(&self.value(*placeholder, module, lesson_index, lesson));
                }
            }
        }
        if self.settings.replacements.is_empty() {
            return filled;
        }
        for replacement in &self.settings.replacements {
            if filled.contains(&replacement.from) {
                filled = filled.replace(&replacement.from, &replacement.to);
            }
        }
        match &self.legacy_prefix {
            Some(prefix) => format!("{prefix}{filled}"),
            None => filled,
        }
    }

    /// The shared part of a split template, filled and with the replacements applied.
    fn fill_shared(&self, segments: &[Segment]) -> String {
        let mut filled = String::new();
        for segment in segments {
            match segment {
                Segment::Text(text) => filled.push_str(text),
                Segment::Value(placeholder) => filled.push_str(
                    self.curriculum_value(*placeholder)
                        .expect(
                            "the template parser keeps per-lesson values out of the shared part",
                        )
                        .as_ref(),
                ),
            }
        }
        for replacement in &self.settings.replacements {
            if filled.contains(&replacement.from) {
                filled = filled.replace(&replacement.from, &replacement.to);
            }
        }
        filled
    }

    /// The value of a curriculum-level placeholder; `None` for a per-lesson one.
    fn curriculum_value(&self, placeholder: Placeholder) -> Option<&str> {
        let settings = self.settings;
        Some(match placeholder {
            Placeholder::Audience => &settings.audience,
            Placeholder::Organization => &settings.organization,
            Placeholder::Domain => &settings.domain,
            Placeholder::CurriculumTitle => &self.curriculum_title,
            Placeholder::Curriculum => &self.curriculum_text,
            Placeholder::CurriculumName => &settings.curriculum_name,
            _ => return None,
        })
    }

    fn value<'s>(
        &'s self,
        placeholder: Placeholder,
        module: &'s Module,
        lesson_index: usize,
        lesson: &'s Lesson,
    ) -> Cow<'s, str> {
        let settings = self.settings;
        let complexity = lesson.complexity.unwrap_or(settings.default_complexity);
        match placeholder {
            Placeholder::LessonCode => lesson.code.to_string().into(),
            Placeholder::LessonTitle => lesson.title.clone().into(),
            Placeholder::LessonNumber => lesson.code.lesson().to_string().into(),
            Placeholder::ModuleCode => module.code().into(),
            Placeholder::ModuleTitle => module.title.clone().into(),
            Placeholder::Section => lesson.section.as_deref().unwrap_or("General").into(),
            Placeholder::Complexity => complexity.to_string().into(),
            Placeholder::ComplexityLabel => complexity_label(complexity).into(),
            Placeholder::DurationMinutes => duration_minutes(complexity).to_string().into(),
            Placeholder::Prerequisites => match lesson_index.checked_sub(1) {
                Some(previous) => describe(&module.lessons[previous]).into(),
                None => settings.default_prerequisites.as_str().into(),
            },
            Placeholder::RelatedLessons => {
                let neighbours: Vec<String> = [lesson_index.checked_sub(1), Some(lesson_index + 1)]
                    .into_iter()
                    .flatten()
                    .filter_map(|index| module.lessons.get(index))
                    .map(describe)
                    .collect();
                if neighbours.is_empty() {
                    "None".into()
                } else {
                    neighbours.join("; ").into()
                }
            }
            Placeholder::Audience
            | Placeholder::Organization
            | Placeholder::Domain
            | Placeholder::CurriculumTitle
            | Placeholder::Curriculum
            | Placeholder::CurriculumName => self
                .curriculum_value(placeholder)
                .unwrap_or_default()
                .into(),
        }
    }
}

/// Builds the requests of `lessons` (all lessons of `curriculum`, or a selection of them).
///
/// # Errors
///
/// [`Error::LessonNotInCurriculum`] for a lesson that is not the curriculum's;
/// [`Error::DuplicateCustomId`] when two lessons share a code, naming both.
pub fn build_requests<I>(
    curriculum: &Curriculum,
    outline_text: &str,
    lessons: I,
    template: &Template,
    settings: &RequestSettings,
) -> Result<Vec<LessonRequest>, Error>
where
    I: IntoIterator,
    I::Item: Borrow<Lesson>,
{
    let builder = RequestBuilder::new(curriculum, outline_text, template, settings);
    let mut seen: HashMap<LessonCode, usize> = HashMap::new();
    let mut built: Vec<LessonRequest> = Vec::new();
    for lesson in lessons {
        let request = builder.build(lesson.borrow())?;
        if let Some(&first) = seen.get(&request.code) {
            let first: &LessonRequest = &built[first];
            return Err(Error::DuplicateCustomId {
                custom_id: request.request.custom_id,
                first_title: first.title.clone(),
                first_line: first.line,
                second_title: request.title,
                second_line: request.line,
            });
        }
        seen.insert(request.code, built.len());
        built.push(request);
    }
    Ok(built)
}

/// `Foundation`, ..., or `Foundation to Intermediate` for a range.
pub fn complexity_label(complexity: Complexity) -> String {
    if complexity.is_range() {
        format!(
            "{} to {}",
            level_label(complexity.from),
            level_label(complexity.to)
        )
    } else {
        level_label(complexity.from).to_owned()
    }
}

/// Study time in minutes: F 45, I 60, A 75, E 90; a range takes its upper end.
pub fn duration_minutes(complexity: Complexity) -> u32 {
    match complexity.to {
        Level::Foundational => 45,
        Level::Intermediate => 60,
        Level::Advanced => 75,
        Level::Expert => 90,
    }
}

fn level_label(level: Level) -> &'static str {
    match level {
        Level::Foundational => "Foundation",
        Level::Intermediate => "Intermediate",
        Level::Advanced => "Advanced",
        Level::Expert => "Expert",
    }
}

/// `M0-L001: Title`.
fn describe(lesson: &Lesson) -> String {
    format!("{}: {}", lesson.code, lesson.title)
}

fn indefinite_article(name: &str) -> &'static str {
    match name.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// The first `limit` characters (Unicode scalar values, as Python counts) of the outline,
/// CRLF read as LF and a byte order mark dropped; and whether anything was cut.
fn cut_chars(text: &str, limit: usize) -> (String, bool) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text: Cow<'_, str> = if text.contains('\r') {
        text.replace("\r\n", "\n").into()
    } else {
        text.into()
    };
    match text.char_indices().nth(limit) {
        Some((end, _)) => (text[..end].to_owned(), true),
        None => (text.into_owned(), false),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use curriculum_parser::Format;

    use super::*;
    use crate::Replacement;

    fn lesson(module: u32, number: u32, title: &str, tag: Option<&str>, line: usize) -> Lesson {
        Lesson {
            code: LessonCode::new(module, number),
            title: title.to_owned(),
            complexity: tag.map(|tag| tag.parse().unwrap()),
            section: (number == 2).then(|| "Roles".into()),
            line,
        }
    }

    fn curriculum() -> Curriculum {
        Curriculum {
            title: Some("Data Governance Lesson Maps".to_owned()),
            format: Format::LessonMap,
            modules: vec![
                Module {
                    number: 0,
                    title: "Foundations".to_owned(),
                    line: 1,
                    lessons: vec![
                        lesson(0, 1, "What Is Data Governance?", Some("F"), 2),
                        lesson(0, 2, "Stewards & Owners", Some("F-I"), 3),
                        lesson(0, 3, "Operating Models", Some("A"), 4),
                    ],
                    labs: vec![],
                },
                Module {
                    number: 1,
                    title: "Quality".to_owned(),
                    line: 5,
                    lessons: vec![lesson(1, 1, "Data Quality “Dimensions”", None, 6)],
                    labs: vec![],
                },
            ],
            warnings: vec![],
        }
    }

    fn prompt(template: &str, settings: &RequestSettings, module: usize, index: usize) -> String {
        let curriculum = curriculum();
        let template = Template::parse(template, Path::new("t.md")).unwrap();
        let builder = RequestBuilder::new(&curriculum, "OUTLINE", &template, settings);
        let built = builder
            .build(&curriculum.modules[module].lessons[index])
            .unwrap();
        built.request.body.messages.last().unwrap().content.clone()
    }

    fn check(template: &str, module: usize, index: usize, expected: &str) {
        assert_eq!(
            prompt(template, &RequestSettings::default(), module, index),
            expected,
            "{template}"
        );
    }

    #[test]
    fn fills_lesson_values() {
        check(
            "{{lesson_code}}|{{lesson_number}}|{{module_code}}|{{module_title}}",
            0,
            1,
            "M0-L002|2|M0|Foundations",
        );
        check("{{section}}/{{section}}", 0, 0, "General/General");
        check("{{section}}", 0, 1, "Roles");
        check(
            "{{complexity}} {{complexity_label}} {{duration_minutes}}",
            0,
            0,
            "F Foundation 45",
        );
        check(
            "{{complexity}} {{complexity_label}} {{duration_minutes}}",
            0,
            1,
            "F-I Foundation to Intermediate 60",
        );
        check(
            "{{complexity}} {{complexity_label}} {{duration_minutes}}",
            0,
            2,
            "A Advanced 75",
        );
        // No tag: the default complexity (I).
        check(
            "{{complexity}} {{complexity_label}} {{duration_minutes}}",
            1,
            0,
            "I Intermediate 60",
        );
        check("{{lesson_title}}", 1, 0, "Data Quality “Dimensions”");
    }

    #[test]
    fn fills_neighbours_and_defaults() {
        check(
            "{{prerequisites}}",
            0,
            0,
            "Basic understanding of data governance concepts",
        );
        check("{{prerequisites}}", 0, 2, "M0-L002: Stewards & Owners");
        check("{{related_lessons}}", 0, 0, "M0-L002: Stewards & Owners");
        check(
            "{{related_lessons}}",
            0,
            1,
            "M0-L001: What Is Data Governance?; M0-L003: Operating Models",
        );
        check("{{related_lessons}}", 1, 0, "None");
        check(
            "{{curriculum_name}}|{{curriculum_title}}|{{curriculum}}",
            0,
            0,
            "Data Governance|Data Governance Lesson Maps|OUTLINE",
        );
        check(
            "{{audience}}|{{organization}}|{{domain}}",
            0,
            0,
            "Data governance professionals, data stewards, and compliance officers|Organizations implementing data governance programs|Data governance, data management, compliance",
        );
    }

    #[test]
    fn replacements_apply_in_order_after_filling() {
        let settings = RequestSettings {
            replacements: vec![
                Replacement {
                    from: "Governance".to_owned(),
                    to: "Stewardship".to_owned(),
                },
                Replacement {
                    from: "Stewardship?".to_owned(),
                    to: "Stewardship!".to_owned(),
                },
                Replacement {
                    from: "{{".to_owned(),
                    to: "<".to_owned(),
                },
            ],
            ..RequestSettings::default()
        };
        assert_eq!(
            prompt(
                "{{{{ {{lesson_title}} of {{curriculum_name}}",
                &settings,
                0,
                0
            ),
            "< What Is Data Stewardship! of Data Stewardship"
        );
    }

    #[test]
    fn curriculum_is_cut_by_characters_with_a_note() {
        let curriculum = curriculum();
        let template = Template::parse("[{{curriculum}}]", Path::new("t.md")).unwrap();
        let settings = RequestSettings {
            curriculum_char_limit: 3,
            ..RequestSettings::default()
        };
        let lesson = &curriculum.modules[0].lessons[0];
        let build = |outline: &str| {
            let builder = RequestBuilder::new(&curriculum, outline, &template, &settings);
            builder.build(lesson).unwrap().request.body.messages[0]
                .content
                .clone()
        };
        assert_eq!(build("ÄÖÜ"), "[ÄÖÜ]");
        assert_eq!(
            build("\u{feff}a\r\nb\r\n"),
            "[a\nb\n\n[Outline cut to its first 3 characters.]]"
        );
        assert_eq!(
            build("ÄÖÜß"),
            "[ÄÖÜ\n\n[Outline cut to its first 3 characters.]]"
        );
    }

    #[test]
    fn system_message_temperature_and_body() {
        let settings = RequestSettings {
            system_message: Some("Be exact.".to_owned()),
            temperature: Some(0.3),
            model: "gpt-5-mini".to_owned(),
            max_completion_tokens: 1000,
            ..RequestSettings::default()
        };
        let curriculum = curriculum();
        let template = Template::parse("{{lesson_code}}", Path::new("t.md")).unwrap();
        let built =
            build_requests(&curriculum, "", curriculum.lessons(), &template, &settings).unwrap();
        assert_eq!(built.len(), 4);
        let line = serde_json::to_string(&built[0].request).unwrap();
        assert_eq!(
            line,
            r#"{"custom_id":"lesson_M0-L001","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-5-mini","messages":[{"role":"system","content":"Be exact."},{"role":"user","content":"M0-L001"}],"max_completion_tokens":1000,"temperature":0.3}}"#
        );
        assert_eq!(built[1].complexity.unwrap().to_string(), "F-I");
    }

    /// The messages of every lesson of the test curriculum, as (role, content) pairs.
    fn messages(
        template: &str,
        settings: &RequestSettings,
        cache_key: Option<&str>,
    ) -> Vec<Vec<(String, String)>> {
        let curriculum = curriculum();
        let template = Template::parse(template, Path::new("t.md")).unwrap();
        let mut builder = RequestBuilder::new(&curriculum, "OUTLINE", &template, settings);
        if let Some(key) = cache_key {
            builder = builder.with_prompt_cache_key(key);
        }
        builder
            .requests(curriculum.lessons())
            .map(|built| {
                built
                    .unwrap()
                    .request
                    .body
                    .messages
                    .into_iter()
                    .map(|m| (m.role, m.content))
                    .collect()
            })
            .collect()
    }

    fn pairs(messages: &[(&str, &str)]) -> Vec<(String, String)> {
        messages
            .iter()
            .map(|(role, content)| (role.to_string(), content.to_string()))
            .collect()
    }

    #[test]
    fn split_template_sends_a_shared_system_message() {
        let template = "Write {{curriculum_name}} lessons.\n{{curriculum}}\n\n<!-- lesson -->\n\n# {{lesson_code}}\n";
        let all = messages(template, &RequestSettings::default(), None);
        assert_eq!(
            all[0],
            pairs(&[
                ("system", "Write Data Governance lessons.\nOUTLINE"),
                ("user", "# M0-L001\n"),
            ])
        );
        assert_eq!(all[3][1].1, "# M1-L001\n");
        assert!(all.iter().all(|messages| messages[0] == all[0][0]));

        // A configured system message comes first in the same system message.
        let settings = RequestSettings {
            system_message: Some("Be exact.".to_owned()),
            replacements: vec![Replacement {
                from: "Governance".to_owned(),
                to: "Stewardship".to_owned(),
            }],
            ..RequestSettings::default()
        };
        let all = messages(template, &settings, None);
        assert_eq!(
            all[0],
            pairs(&[
                (
                    "system",
                    "Be exact.\n\nWrite Data Stewardship lessons.\nOUTLINE"
                ),
                ("user", "# M0-L001\n"),
            ])
        );
        // A blank shared part leaves only the configured system message.
        let all = messages("<!-- lesson -->\n{{lesson_code}}", &settings, None);
        assert_eq!(
            all[0],
            pairs(&[("system", "Be exact."), ("user", "M0-L001")])
        );
        let all = messages(
            "<!-- lesson -->\n{{lesson_code}}",
            &RequestSettings::default(),
            None,
        );
        assert_eq!(all[0], pairs(&[("user", "M0-L001")]));
    }

    #[test]
    fn legacy_templates_stay_one_user_message() {
        let legacy = "prompt = f\"\"\"\nWrite {lesson_details['LESSON_CODE']}.\n\"\"\"\n";
        let settings = RequestSettings {
            legacy_wrapping: Some(false),
            ..RequestSettings::default()
        };
        let all = messages(legacy, &settings, Some("job"));
        assert_eq!(all[0], pairs(&[("user", "Write M0-L001.")]));
        let settings = RequestSettings {
            system_message: Some("Be exact.".to_owned()),
            ..settings
        };
        let all = messages(legacy, &settings, None);
        assert_eq!(
            all[0],
            pairs(&[("system", "Be exact."), ("user", "Write M0-L001.")])
        );
    }

    #[test]
    fn body_parameters_and_prompt_cache_key() {
        let settings = RequestSettings::from_toml_str(
            "model = \"gpt-5-mini\"\nreasoning_effort = \"minimal\"\nverbosity = \"low\"\n[body]\nseed = 7\nservice_tier = \"flex\"\n",
            Path::new("lessons.toml"),
        )
        .unwrap();
        let curriculum = curriculum();
        let template = Template::parse("{{lesson_code}}", Path::new("t.md")).unwrap();
        let builder = RequestBuilder::new(&curriculum, "", &template, &settings)
            .with_prompt_cache_key("0123456789abcdef");
        let built = builder.build(&curriculum.modules[0].lessons[0]).unwrap();
        assert_eq!(
            serde_json::to_string(&built.request.body).unwrap(),
            r#"{"model":"gpt-5-mini","messages":[{"role":"user","content":"M0-L001"}],"max_completion_tokens":16384,"prompt_cache_key":"0123456789abcdef","reasoning_effort":"minimal","seed":7,"service_tier":"flex","verbosity":"low"}"#
        );

        // Unset parameters stay out; a model without prompt caching gets no key.
        for (model, has_key) in [
            ("gpt-4o-mini", true),
            ("gpt-4.1-mini", true),
            ("llama3.1", false),
        ] {
            let settings = RequestSettings {
                model: model.to_owned(),
                ..RequestSettings::default()
            };
            let builder = RequestBuilder::new(&curriculum, "", &template, &settings)
                .with_prompt_cache_key("job");
            let body = builder
                .build(&curriculum.modules[0].lessons[0])
                .unwrap()
                .request
                .body;
            let keys: Vec<&str> = body.extra.keys().map(String::as_str).collect();
            let expected: &[&str] = if has_key { &["prompt_cache_key"] } else { &[] };
            assert_eq!(keys, expected, "{model}");
        }
        let settings = RequestSettings::default();
        let builder = RequestBuilder::new(&curriculum, "", &template, &settings);
        let body = builder
            .build(&curriculum.modules[0].lessons[0])
            .unwrap()
            .request
            .body;
        assert!(body.extra.is_empty());
    }

    #[test]
    fn duplicate_lessons_and_strangers_are_errors() {
        let mut curriculum = curriculum();
        let mut twin = curriculum.modules[0].lessons[0].clone();
        twin.title = "Twin".to_owned();
        twin.line = 40;
        curriculum.modules[0].lessons.push(twin);
        let template = Template::parse("x", Path::new("t.md")).unwrap();
        let settings = RequestSettings::default();
        let err = build_requests(&curriculum, "", curriculum.lessons(), &template, &settings)
            .unwrap_err();
        let Error::DuplicateCustomId {
            custom_id,
            first_title,
            first_line,
            second_title,
            second_line,
        } = &err
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(custom_id, "lesson_M0-L001");
        assert_eq!(
            (first_title.as_str(), *first_line),
            ("What Is Data Governance?", 2)
        );
        assert_eq!((second_title.as_str(), *second_line), ("Twin", 40));

        let stranger = lesson(7, 1, "Elsewhere", None, 99);
        let err = build_requests(&curriculum, "", [&stranger], &template, &settings).unwrap_err();
        assert!(
            matches!(&err, Error::LessonNotInCurriculum { code, line: 99, .. } if code == "M7-L001"),
            "{err:?}"
        );
    }

    #[test]
    fn a_copy_of_a_lesson_is_found_like_the_lesson_itself() {
        let curriculum = curriculum();
        let template = Template::parse(
            "{{prerequisites}} < {{lesson_code}} {{section}} > {{related_lessons}}",
            Path::new("t.md"),
        )
        .unwrap();
        let settings = RequestSettings::default();
        let builder = RequestBuilder::new(&curriculum, "", &template, &settings);
        for lesson in curriculum.lessons() {
            let borrowed = builder.build(lesson).unwrap();
            let copy = builder.build(&lesson.clone()).unwrap();
            assert_eq!(borrowed.request, copy.request);
        }
        // The same code on another line is not the curriculum's lesson.
        let mut moved = curriculum.modules[0].lessons[1].clone();
        moved.line += 100;
        let err = builder.build(&moved).unwrap_err();
        assert!(
            matches!(&err, Error::LessonNotInCurriculum { code, .. } if code == "M0-L002"),
            "{err:?}"
        );
    }

    #[test]
    fn labels_and_durations() {
        let check = |tag: &str, label: &str, minutes: u32| {
            let complexity: Complexity = tag.parse().unwrap();
            assert_eq!(complexity_label(complexity), label);
            assert_eq!(duration_minutes(complexity), minutes);
        };
        check("F", "Foundation", 45);
        check("I", "Intermediate", 60);
        check("A", "Advanced", 75);
        check("E", "Expert", 90);
        check("I-E", "Intermediate to Expert", 90);
        assert_eq!(indefinite_article("AI-Native SaaS"), "an");
        assert_eq!(indefinite_article("Data Governance"), "a");
    }
}
