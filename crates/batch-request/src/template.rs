//! Prompt templates: `{{name}}` placeholders, parsed once into segments.
//!
//! A native template is Markdown with `{{name}}` placeholders (spaces inside the braces are
//! allowed) and `{{{{` for a literal `{{`. A legacy template is a Python file of the form
//! `prompt = f"""` ... `"""` (see the `legacy` module); both parse into the same segments.
//!
//! A native template may hold one [`LESSON_MARKER`] line: the text above it is the part shared
//! by every lesson (sent as one `system` message, identical in every request, so the API's
//! prompt cache can serve it), the text below it the lesson's own part (the `user` message).

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
    /// The part above the [`LESSON_MARKER`], when the template has one and it is not blank.
    shared: Option<Vec<Segment>>,
    /// The lesson's part: below the marker, or the whole template.
    segments: Vec<Segment>,
    legacy: bool,
    sha256: String,
    /// Known names written in single braces (`{lesson_code}`), in the order of the text.
    single_braces: Vec<SingleBrace>,
}

/// A known placeholder name written in single braces (`{lesson_code}`) in a native template:
/// it goes into the prompt as it is, which is rarely meant; `{{lesson_code}}` is the placeholder.
/// Legacy (Python f-string) templates use single braces legitimately and never have these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingleBrace {
    /// 1-based line in the template.
    pub line: usize,
    /// The placeholder that was probably meant.
    pub placeholder: Placeholder,
}

/// An unknown `{{name}}` placeholder of a template, for [`Error::UnknownPlaceholder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// 1-based line in the template.
    pub line: usize,
    /// The name between the braces.
    pub name: String,
}

/// Renders the unknown placeholders of an error: one with its name, several with their lines.
pub(crate) struct UnknownList<'a>(pub(crate) &'a [UnknownName]);

impl std::fmt::Display for UnknownList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            [one] => write!(f, "unknown placeholder `{{{{{}}}}}`", one.name),
            many => {
                write!(f, "{} unknown placeholders: ", many.len())?;
                for (i, unknown) in many.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}`{{{{{}}}}}` (line {})", unknown.name, unknown.line)?;
                }
                Ok(())
            }
        }
    }
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

    /// Whether the value differs from lesson to lesson (the lesson's code, title, module,
    /// focus area, complexity, duration and neighbours), as opposed to the curriculum-level
    /// values (`curriculum`, `curriculum_title`, `curriculum_name`, `audience`,
    /// `organization`, `domain`) that are the same in every request. Only the latter may
    /// stand above the [`LESSON_MARKER`].
    pub fn is_per_lesson(self) -> bool {
        !matches!(
            self,
            Placeholder::Audience
                | Placeholder::Organization
                | Placeholder::Domain
                | Placeholder::CurriculumTitle
                | Placeholder::Curriculum
                | Placeholder::CurriculumName
        )
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

/// The line that splits a native template into the part shared by all lessons (above) and the
/// lesson's own part (below): `<!-- lesson -->`, alone on its line (spaces around it allowed).
///
/// The shared part becomes a `system` message, the same text in every request, and the lesson's
/// part the `user` message; blank lines next to the marker are dropped. The shared part may use
/// only the curriculum-level placeholders (see [`Placeholder::is_per_lesson`]). Being an HTML
/// comment, the marker stays invisible when the template is viewed as Markdown. Without the
/// marker the whole template is one `user` message, as before; legacy templates never split.
///
/// ```
/// use batch_request::Template;
///
/// let template = Template::parse(
///     "Write lessons of {{curriculum_name}}.\n\n<!-- lesson -->\n\n# Lesson {{lesson_code}}\n",
///     "t.md".as_ref(),
/// )?;
/// assert!(template.has_shared_part());
/// # Ok::<(), batch_request::Error>(())
/// ```
pub const LESSON_MARKER: &str = "<!-- lesson -->";

impl Template {
    /// Parses a template; `origin` names it in errors. A text that starts with
    /// `prompt = f"""` is read as a legacy template. CRLF line ends are read as LF.
    /// A native template may be split by a [`LESSON_MARKER`] line.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlaceholder`], [`Error::UnclosedPlaceholder`],
    /// [`Error::RepeatedLessonMarker`], [`Error::LessonPlaceholderInSharedPart`] and
    /// [`Error::EmptyLessonPart`] for native templates;
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
                shared: None,
                segments: merge_text(segments),
                legacy: true,
                sha256,
                single_braces: Vec::new(),
            });
        }
        let mut unknown = Vec::new();
        let (shared, segments) = match split_at_marker(text, origin)? {
            Some(split) => {
                let shared = parse_native(split.shared, 1, origin, Part::Shared, &mut unknown)?;
                let lesson = parse_native(
                    split.lesson,
                    split.lesson_line,
                    origin,
                    Part::Lesson,
                    &mut unknown,
                )?;
                let shared = (!shared.is_empty()).then(|| merge_text(shared));
                (shared, lesson)
            }
            None => (
                None,
                parse_native(text, 1, origin, Part::Lesson, &mut unknown)?,
            ),
        };
        if !unknown.is_empty() {
            return Err(Error::UnknownPlaceholder {
                path: origin.to_owned(),
                unknown,
                known: Placeholder::known_names(),
            });
        }
        Ok(Template {
            origin: origin.to_owned(),
            shared,
            segments: merge_text(segments),
            legacy: false,
            sha256,
            single_braces: single_braces(text),
        })
    }

    /// Known placeholder names written in single braces (`{lesson_code}`), which go into the
    /// prompt as they are: worth a warning. Always empty for legacy templates, whose
    /// single braces are Python's.
    pub fn single_braces(&self) -> &[SingleBrace] {
        &self.single_braces
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

    /// Whether this is the shipped generic template ([`Template::generic`]), whatever file it
    /// was read from: its text, and so its hash, is the same.
    pub fn is_generic(&self) -> bool {
        self.sha256 == Template::generic_sha256()
    }

    /// SHA-256 of the shipped generic template, as [`Template::sha256`] gives it; a job
    /// records its template's hash, so a batch made from the built-in template is known by it.
    pub fn generic_sha256() -> &'static str {
        static SHA256: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SHA256.get_or_init(|| Template::generic().sha256)
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

    /// Whether the template has a part shared by all lessons (text above a
    /// [`LESSON_MARKER`] line), sent as a `system` message before the lesson's part.
    pub fn has_shared_part(&self) -> bool {
        self.shared.is_some()
    }

    /// The placeholders used, in order of first use (the shared part first).
    pub fn placeholders(&self) -> Vec<Placeholder> {
        let mut seen = Vec::new();
        let shared = self.shared.iter().flatten();
        for segment in shared.chain(&self.segments) {
            if let Segment::Value(placeholder) = segment
                && !seen.contains(placeholder)
            {
                seen.push(*placeholder);
            }
        }
        seen
    }

    /// The lesson's part: below the marker, or the whole template.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The shared part, above the marker; it holds no per-lesson placeholder.
    pub(crate) fn shared_segments(&self) -> Option<&[Segment]> {
        self.shared.as_deref()
    }
}

/// The shipped generic prompt, as text.
pub const GENERIC: &str = include_str!("../../../prompts/LESSON_GENERATION_PROMPT_GENERIC.md");

/// The sections the shipped generic template asks for, in order, as heading texts or their
/// prefixes: what the quality gate looks for in a lesson made from it. "Tools, Templates" stands
/// for "Tools, Templates and Artefacts", whose last word is spelled either way.
pub const GENERIC_SECTIONS: [&str; 10] = [
    "Learning Objectives",
    "Why This Matters",
    "Core Concepts",
    "How It Works in Practice",
    "Worked Example",
    "Tools, Templates",
    "Common Pitfalls",
    "Practice Exercise",
    "Knowledge Check",
    "Summary and Next Steps",
];
const GENERIC_PATH: &str = "prompts/LESSON_GENERATION_PROMPT_GENERIC.md";

/// Which part of a split template is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Above the marker: curriculum-level placeholders only.
    Shared,
    /// Below the marker, or a template without one.
    Lesson,
}

/// A native template cut at its marker line.
struct Split<'t> {
    /// The text above the marker, trailing blank lines dropped.
    shared: &'t str,
    /// The text below the marker, leading blank lines dropped.
    lesson: &'t str,
    /// 1-based line where `lesson` starts.
    lesson_line: usize,
}

/// Finds the one [`LESSON_MARKER`] line, if any.
fn split_at_marker<'t>(text: &'t str, origin: &Path) -> Result<Option<Split<'t>>, Error> {
    let mut found: Option<(usize, usize, usize)> = None; // (line, start, end) of the marker
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim() == LESSON_MARKER {
            if let Some((first_line, _, _)) = found {
                return Err(Error::RepeatedLessonMarker {
                    path: origin.to_owned(),
                    first_line,
                    line: index + 1,
                });
            }
            found = Some((index + 1, offset, offset + line.len()));
        }
        offset += line.len();
    }
    let Some((marker_line, start, end)) = found else {
        return Ok(None);
    };
    let shared = text[..start].trim_end();
    let below = &text[end..];
    // Drop whole blank lines after the marker, keeping the indentation of the first text line.
    let mut skipped = 0;
    for line in below.split_inclusive('\n') {
        if !line.trim().is_empty() || !line.ends_with('\n') {
            break;
        }
        skipped += line.len();
    }
    let lesson = &below[skipped..];
    let lesson_line = marker_line + 1 + count_lines(&below[..skipped]);
    if lesson.trim().is_empty() {
        return Err(Error::EmptyLessonPart {
            path: origin.to_owned(),
            line: marker_line,
        });
    }
    Ok(Some(Split {
        shared,
        lesson,
        lesson_line,
    }))
}

/// Unknown names are collected into `unknown` (the caller reports them all at once); the
/// other errors end the parse.
fn parse_native(
    text: &str,
    first_line: usize,
    origin: &Path,
    part: Part,
    unknown: &mut Vec<UnknownName>,
) -> Result<Vec<Segment>, Error> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut line = first_line;
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
        let Some(placeholder) = Placeholder::from_name(name) else {
            unknown.push(UnknownName {
                line,
                name: name.to_owned(),
            });
            rest = &after[end + 2..];
            continue;
        };
        if part == Part::Shared && placeholder.is_per_lesson() {
            return Err(Error::LessonPlaceholderInSharedPart {
                path: origin.to_owned(),
                line,
                name: placeholder.name().to_owned(),
            });
        }
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

/// The known names in single braces of a native template's text: `{name}` (spaces allowed
/// inside) with no brace right before or after; `{{...}}` and the escape `{{{{` are skipped.
fn single_braces(text: &str) -> Vec<SingleBrace> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'{' {
                i += 1;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'{') {
                // A placeholder or an escape: skip the run of braces.
                while bytes.get(i) == Some(&b'{') {
                    i += 1;
                }
                continue;
            }
            let Some(len) = line[i + 1..].find('}') else {
                break;
            };
            let close = i + 1 + len;
            if bytes.get(close + 1) != Some(&b'}')
                && let Some(placeholder) = Placeholder::from_name(line[i + 1..close].trim())
            {
                found.push(SingleBrace {
                    line: index + 1,
                    placeholder,
                });
            }
            i = close + 1;
        }
    }
    found
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
            unknown,
            known,
        } = &err
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(path.as_path(), Path::new("t.md"));
        assert_eq!(
            unknown,
            &[UnknownName {
                line: 4,
                name: "lesson_cod".to_owned()
            }]
        );
        assert!(known.starts_with("lesson_code, lesson_title, "), "{known}");
        assert_eq!(
            err.to_string(),
            format!("t.md:4: unknown placeholder `{{{{lesson_cod}}}}` (known: {known})")
        );
    }

    /// Issue 13: every unknown placeholder is reported in one error, with its line, in the
    /// shared part and the lesson's part alike.
    #[test]
    fn all_unknown_placeholders_are_reported_at_once() {
        let err =
            parse("{{curriculm}}\n<!-- lesson -->\n{{lesson_code}} {{titel}}\n\n{{ sektion }}\n")
                .unwrap_err();
        let Error::UnknownPlaceholder { unknown, known, .. } = &err else {
            panic!("unexpected {err:?}");
        };
        let found: Vec<(usize, &str)> = unknown.iter().map(|u| (u.line, u.name.as_str())).collect();
        assert_eq!(found, [(1, "curriculm"), (3, "titel"), (5, "sektion")]);
        assert_eq!(
            err.to_string(),
            format!(
                "t.md:1: 3 unknown placeholders: `{{{{curriculm}}}}` (line 1), `{{{{titel}}}}` (line 3), `{{{{sektion}}}}` (line 5) (known: {known})"
            )
        );
    }

    /// Issue 13: a known name in single braces is found, with its line; placeholders, escapes,
    /// unknown names, JSON-like braces and legacy templates are not.
    #[test]
    fn known_names_in_single_braces_are_found_in_native_templates_only() {
        let template = parse(
            "# {lesson_code}: {{lesson_title}}\n{{{{not}}}} {json} { audience }\n{\"a\": 1}\n",
        )
        .unwrap();
        assert_eq!(
            template.single_braces(),
            &[
                SingleBrace {
                    line: 1,
                    placeholder: Placeholder::LessonCode
                },
                SingleBrace {
                    line: 2,
                    placeholder: Placeholder::Audience
                },
            ]
        );
        assert!(
            parse("{{lesson_code}} {{{{lesson_code}}}}\n")
                .unwrap()
                .single_braces()
                .is_empty()
        );
        assert!(Template::generic().single_braces().is_empty());
        // A legacy template's single braces are Python's: `{lesson_details['LESSON_CODE']}`,
        // `{{` for a literal brace; nothing to warn about.
        let legacy = parse(
            "prompt = f\"\"\"\nLesson {lesson_details['LESSON_CODE']} {{audience}}\n\"\"\"\n",
        )
        .unwrap();
        assert!(legacy.is_legacy() && legacy.single_braces().is_empty());
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
        assert!(template.has_shared_part());
        // The lesson's own part starts with its heading; the curriculum is in the shared part.
        assert!(matches!(
            template.segments(),
            [Segment::Text(heading), Segment::Value(Placeholder::LessonCode), ..] if heading == "# Lesson "
        ));
        let shared = template.shared_segments().unwrap();
        assert!(shared.contains(&Segment::Value(Placeholder::Curriculum)));
        let used = template.placeholders();
        for placeholder in Placeholder::ALL {
            assert!(used.contains(&placeholder), "{placeholder} unused");
        }
    }

    #[test]
    fn marker_splits_shared_and_lesson_parts() {
        use Placeholder::*;
        let template =
            parse("Course {{curriculum_name}}\n\n  <!-- lesson -->  \n\n\n{{lesson_code}}\n")
                .unwrap();
        assert_eq!(
            template.shared_segments().unwrap(),
            &[text("Course "), Segment::Value(CurriculumName)]
        );
        assert_eq!(
            template.segments(),
            &[Segment::Value(LessonCode), text("\n")]
        );
        assert_eq!(template.placeholders(), [CurriculumName, LessonCode]);

        // Without a marker, and with a marker inside a line, nothing is split.
        for text in ["{{lesson_code}}", "a <!-- lesson --> b\n{{lesson_code}}"] {
            let template = parse(text).unwrap();
            assert!(!template.has_shared_part(), "{text}");
        }
        // A blank shared part is no shared part.
        let template = parse("\n\n<!-- lesson -->\n{{lesson_title}}").unwrap();
        assert!(!template.has_shared_part());
        assert_eq!(template.segments(), &[Segment::Value(LessonTitle)]);
        // CRLF templates split the same way.
        let template = parse("A\r\n<!-- lesson -->\r\nB\r\n").unwrap();
        assert_eq!(template.shared_segments().unwrap(), &[text("A")]);
        assert_eq!(template.segments(), &[text("B\n")]);
    }

    #[test]
    fn shared_part_refuses_per_lesson_placeholders() {
        let err =
            parse("Intro {{curriculum}}\nFor {{ lesson_title }}\n<!-- lesson -->\n{{lesson_code}}")
                .unwrap_err();
        let Error::LessonPlaceholderInSharedPart { path, line, name } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(
            (path.as_path(), *line, name.as_str()),
            (Path::new("t.md"), 2, "lesson_title")
        );
        assert_eq!(
            err.to_string(),
            "t.md:2: `{{lesson_title}}` differs from lesson to lesson, so it cannot stand above the `<!-- lesson -->` line (that text is shared by all lessons); move it below the marker line"
        );
        for placeholder in Placeholder::ALL.into_iter().filter(|p| p.is_per_lesson()) {
            let text = format!("{{{{{placeholder}}}}}\n<!-- lesson -->\nx");
            assert!(
                matches!(
                    parse(&text),
                    Err(Error::LessonPlaceholderInSharedPart { line: 1, .. })
                ),
                "{placeholder}"
            );
        }
        let shared: Vec<Placeholder> = Placeholder::ALL
            .into_iter()
            .filter(|p| !p.is_per_lesson())
            .collect();
        assert_eq!(shared.len(), 6);
    }

    #[test]
    fn lesson_part_line_numbers_and_marker_errors() {
        // Lines below the marker keep their numbers in errors.
        let err = parse("shared\n<!-- lesson -->\n\nok {{lesson_code}}\n{{nope}}\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownPlaceholder { unknown, .. } if unknown[0].line == 5 && unknown[0].name == "nope"),
            "{err:?}"
        );
        let err = parse("a\n<!-- lesson -->\nb\n<!-- lesson -->\nc").unwrap_err();
        assert!(
            matches!(
                err,
                Error::RepeatedLessonMarker {
                    first_line: 2,
                    line: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = parse("a\n<!-- lesson -->\n\n  \n").unwrap_err();
        assert!(
            matches!(err, Error::EmptyLessonPart { line: 2, .. }),
            "{err:?}"
        );
        // A legacy template is the user's text: a marker in it is just text.
        let template = parse("prompt = f\"\"\"\nA\n<!-- lesson -->\nB\n\"\"\"\n").unwrap();
        assert!(template.is_legacy() && !template.has_shared_part());
        assert_eq!(template.segments(), &[text("A\n<!-- lesson -->\nB")]);
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

    #[test]
    fn the_generic_sections_are_the_ones_the_generic_template_asks_for() {
        // Each section is one numbered item of "What to write": `3. **Core Concepts**: ...`.
        for (number, section) in GENERIC_SECTIONS.iter().enumerate() {
            let item = format!("\n{}. **{section}", number + 1);
            assert!(GENERIC.contains(&item), "{item:?} is not in the template");
        }
        assert!(GENERIC.contains("exactly these ten sections"));
    }

    #[test]
    fn the_generic_template_is_known_by_its_text() {
        assert!(Template::generic().is_generic());
        let copy = parse(&GENERIC.replace('\n', "\r\n")).unwrap();
        assert!(
            copy.is_generic(),
            "the same text in another file, with CRLF"
        );
        let edited = parse(&GENERIC.replace("ten sections", "ten sections.")).unwrap();
        assert!(!edited.is_generic());
        assert_eq!(Template::generic_sha256(), Template::generic().sha256());
    }
}
