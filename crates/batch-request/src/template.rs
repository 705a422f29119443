//! Prompt templates: `{{name}}` placeholders, parsed once into segments.
//!
//! A native template is Markdown with `{{name}}` placeholders (spaces inside the braces are
//! allowed) and `{{{{` for a literal `{{`. A legacy template is a Python file of the form
//! `prompt = f"""` ... `"""` (see the `legacy` module); both parse into the same segments.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{Error, legacy};

/// A parsed prompt template.
///
/// ```
/// use batch_request::Template;
///
/// let template = Template::parse("# Lesson {{lesson_code}}: {{ lesson_title }}\n", "t.md".as_ref())?;
/// assert!(!template.is_legacy());
/// assert_eq!(template.placeholders().len(), 2);
/// # Ok::<(), batch_request::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    origin: PathBuf,
    segments: Vec<Segment>,
    legacy: bool,
    sha256: String,
}

/// A value the builder computes for each lesson; the names are the placeholder names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Placeholder {
    /// `lesson_code`: `M0-L001`.
    LessonCode,
    /// `lesson_title`: the lesson's title.
    LessonTitle,
    /// `lesson_number`: the lesson's number within its module (`1` for `M0-L001`).
    LessonNumber,
    /// `module_code`: `M0`.
    ModuleCode,
    /// `module_title`: the module's title.
    ModuleTitle,
    /// `section`: the lesson's focus area, `General` when it has none.
    Section,
    /// `complexity`: `F`, `I`, `A`, `E` or a range such as `F-I`.
    Complexity,
    /// `complexity_label`: `Foundation`, ..., or a range: `Foundation to Intermediate`.
    ComplexityLabel,
    /// `duration_minutes`: F 45, I 60, A 75, E 90; a range takes its upper end.
    DurationMinutes,
    /// `audience`: from the settings.
    Audience,
    /// `organization`: from the settings.
    Organization,
    /// `domain`: from the settings.
    Domain,
    /// `prerequisites`: the previous lesson of the module, or the configured default.
    Prerequisites,
    /// `related_lessons`: the neighbouring lessons of the module.
    RelatedLessons,
    /// `curriculum_title`: the outline's title (the curriculum name when it has none).
    CurriculumTitle,
    /// `curriculum`: the outline text, cut to the configured number of characters.
    Curriculum,
    /// `curriculum_name`: from the settings (`Data Governance`).
    CurriculumName,
}

impl Placeholder {
    /// Every placeholder, in the order the docs list them.
    pub const ALL: [Placeholder; 17] = [
        Placeholder::LessonCode,
        Placeholder::LessonTitle,
        Placeholder::LessonNumber,
        Placeholder::ModuleCode,
        Placeholder::ModuleTitle,
        Placeholder::Section,
        Placeholder::Complexity,
        Placeholder::ComplexityLabel,
        Placeholder::DurationMinutes,
        Placeholder::Audience,
        Placeholder::Organization,
        Placeholder::Domain,
        Placeholder::Prerequisites,
        Placeholder::RelatedLessons,
        Placeholder::CurriculumTitle,
        Placeholder::Curriculum,
        Placeholder::CurriculumName,
    ];

    /// The name written between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::LessonCode => "lesson_code",
            Placeholder::LessonTitle => "lesson_title",
            Placeholder::LessonNumber => "lesson_number",
            Placeholder::ModuleCode => "module_code",
            Placeholder::ModuleTitle => "module_title",
            Placeholder::Section => "section",
            Placeholder::Complexity => "complexity",
            Placeholder::ComplexityLabel => "complexity_label",
            Placeholder::DurationMinutes => "duration_minutes",
            Placeholder::Audience => "audience",
            Placeholder::Organization => "organization",
            Placeholder::Domain => "domain",
            Placeholder::Prerequisites => "prerequisites",
            Placeholder::RelatedLessons => "related_lessons",
            Placeholder::CurriculumTitle => "curriculum_title",
            Placeholder::Curriculum => "curriculum",
            Placeholder::CurriculumName => "curriculum_name",
        }
    }

    /// The placeholder with this name.
    pub fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL
            .into_iter()
            .find(|placeholder| placeholder.name() == name)
    }

    /// The known names, comma-separated, for error messages.
    pub(crate) fn known_names() -> String {
        Placeholder::ALL.map(Placeholder::name).join(", ")
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Literal text, escapes already resolved.
    Text(String),
    /// A value filled in per lesson.
    Value(Placeholder),
}

impl Template {
    /// Parses a template; `origin` names it in errors. A text that starts with
    /// `prompt = f"""` is read as a legacy template. CRLF line ends are read as LF.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlaceholder`] and [`Error::UnclosedPlaceholder`] for native templates;
    /// [`Error::UnknownLegacyExpression`], [`Error::UnclosedLegacyExpression`] and
    /// [`Error::UnterminatedLegacyTemplate`] for legacy ones.
    pub fn parse(text: &str, origin: &Path) -> Result<Template, Error> {
        // Read as Python read the old templates: a byte order mark dropped, CRLF as LF.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let normalized;
        let text = if text.contains("\r\n") {
            normalized = text.replace("\r\n", "\n");
            normalized.as_str()
        } else {
            text
        };
        let sha256 = {
            use sha2::{Digest, Sha256};
            Sha256::digest(text.as_bytes())
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect()
        };
        if let Some(body) = legacy::detect(text) {
            let segments = legacy::parse(body, text, origin)?;
            return Ok(Template {
                origin: origin.to_owned(),
                segments: merge_text(segments),
                legacy: true,
                sha256,
            });
        }
        Ok(Template {
            origin: origin.to_owned(),
            segments: merge_text(parse_native(text, origin)?),
            legacy: false,
            sha256,
        })
    }

    /// Reads and parses a template file.
    ///
    /// # Errors
    ///
    /// [`Error::ReadTemplate`] when the file cannot be read, else as [`Template::parse`].
    pub fn from_file(path: &Path) -> Result<Template, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadTemplate {
            path: path.to_owned(),
            source,
        })?;
        Template::parse(&text, path)
    }

    /// The shipped generic template, `prompts/LESSON_GENERATION_PROMPT_GENERIC.md`.
    pub fn generic() -> Template {
        Template::parse(GENERIC, Path::new(GENERIC_PATH))
            .expect("the shipped template is tested to parse")
    }

    /// Whether this is a legacy `prompt = f"""` template.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// SHA-256 (lowercase hex) of the template text, as read (byte order mark dropped, CRLF
    /// as LF): what the job records so a changed template is noticed.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The file (or name) the template came from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The placeholders used, in order of first use.
    pub fn placeholders(&self) -> Vec<Placeholder> {
        let mut seen = Vec::new();
        for segment in &self.segments {
            if let Segment::Value(placeholder) = segment
                && !seen.contains(placeholder)
            {
                seen.push(*placeholder);
            }
        }
        seen
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

/// The shipped generic prompt, as text.
pub const GENERIC: &str = include_str!("../../../prompts/LESSON_GENERATION_PROMPT_GENERIC.md");
const GENERIC_PATH: &str = "prompts/LESSON_GENERATION_PROMPT_GENERIC.md";

fn parse_native(text: &str, origin: &Path) -> Result<Vec<Segment>, Error> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut line = 1;
    while let Some(start) = rest.find("{{") {
        let before = &rest[..start];
        line += count_lines(before);
        literal.push_str(before);
        let after = &rest[start + 2..];
        if let Some(tail) = after.strip_prefix("{{") {
            literal.push_str("{{");
            rest = tail;
            continue;
        }
        let line_end = after.find('\n').unwrap_or(after.len());
        let Some(end) = after[..line_end].find("}}") else {
            return Err(Error::UnclosedPlaceholder {
                path: origin.to_owned(),
                line,
            });
        };
        let name = after[..end].trim();
        let placeholder =
            Placeholder::from_name(name).ok_or_else(|| Error::UnknownPlaceholder {
                path: origin.to_owned(),
                line,
                name: name.to_owned(),
                known: Placeholder::known_names(),
            })?;
        if !literal.is_empty() {
            segments.push(Segment::Text(std::mem::take(&mut literal)));
        }
        segments.push(Segment::Value(placeholder));
        rest = &after[end + 2..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Text(literal));
    }
    Ok(segments)
}

pub(crate) fn count_lines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// Joins neighbouring text segments, so filling copies fewer pieces.
fn merge_text(segments: Vec<Segment>) -> Vec<Segment> {
    let mut merged: Vec<Segment> = Vec::with_capacity(segments.len());
    for segment in segments {
        match (merged.last_mut(), segment) {
            (Some(Segment::Text(last)), Segment::Text(text)) => last.push_str(&text),
            (_, Segment::Text(text)) if text.is_empty() => {}
            (_, segment) => merged.push(segment),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Template, Error> {
        Template::parse(text, Path::new("t.md"))
    }

    fn check(text: &str, expected: &[Segment]) {
        assert_eq!(parse(text).unwrap().segments(), expected, "{text:?}");
    }

    fn text(value: &str) -> Segment {
        Segment::Text(value.to_owned())
    }

    #[test]
    fn parses_placeholders_and_escapes() {
        use Placeholder::*;
        check("", &[]);
        check("plain", &[text("plain")]);
        check(
            "# Lesson {{lesson_code}}: {{ lesson_title }}",
            &[
                text("# Lesson "),
                Segment::Value(LessonCode),
                text(": "),
                Segment::Value(LessonTitle),
            ],
        );
        check("{{{{lesson_code}}", &[text("{{lesson_code}}")]);
        check("a }} b { c", &[text("a }} b { c")]);
        check(
            "{{{{{{curriculum}}",
            &[text("{{"), Segment::Value(Curriculum)],
        );
    }

    #[test]
    fn unknown_placeholder_names_it_and_its_line() {
        let err = parse("one\ntwo {{lesson_code}}\n\nthe {{lesson_cod}} here").unwrap_err();
        let Error::UnknownPlaceholder {
            path,
            line,
            name,
            known,
        } = &err
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(
            (path.as_path(), *line, name.as_str()),
            (Path::new("t.md"), 4, "lesson_cod")
        );
        assert!(known.starts_with("lesson_code, lesson_title, "), "{known}");
        assert_eq!(
            err.to_string(),
            format!("t.md:4: unknown placeholder `{{{{lesson_cod}}}}` (known: {known})")
        );
    }

    #[test]
    fn unclosed_placeholder_is_an_error() {
        let err = parse("a\n{{lesson_code\n}}").unwrap_err();
        assert!(
            matches!(err, Error::UnclosedPlaceholder { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn shipped_template_parses_and_uses_every_placeholder() {
        let template = Template::generic();
        assert!(!template.is_legacy());
        assert!(GENERIC.starts_with("# Lesson {{lesson_code}}: {{lesson_title}}\n"));
        let used = template.placeholders();
        for placeholder in Placeholder::ALL {
            assert!(used.contains(&placeholder), "{placeholder} unused");
        }
    }

    #[test]
    fn crlf_and_bom_are_normalized() {
        check(
            "\u{feff}a\r\n{{lesson_code}}\r\n",
            &[
                text("a\n"),
                Segment::Value(Placeholder::LessonCode),
                text("\n"),
            ],
        );
        let template = parse("prompt = f\"\"\"\r\nA\r\n{DEFAULT_FIRM_TYPE}\r\n\"\"\"\r\n").unwrap();
        assert_eq!(
            template.segments(),
            &[text("A\n"), Segment::Value(Placeholder::Organization)]
        );
    }

    #[test]
    fn names_round_trip() {
        for placeholder in Placeholder::ALL {
            assert_eq!(
                Placeholder::from_name(placeholder.name()),
                Some(placeholder)
            );
        }
        assert_eq!(Placeholder::from_name("Lesson_Code"), None);
    }
}
