//! The entry points: text to [`Curriculum`], with the format detected or forced, and the file wrapper.

use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use comrak::nodes::AstNode;

use crate::builder::Builder;
use crate::error::Error;
use crate::model::{Curriculum, Format};
use crate::pieces::{PIECE_BYTES, read_pieces};
use crate::{lesson_map, nested};

/// How to parse an outline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Read the outline in this format only; `None` detects it.
    pub format: Option<Format>,
}

/// Parses an outline, detecting its format.
///
/// Pure: no IO. `origin` only names the outline in errors.
/// The lesson-map format is tried first; when it finds no lesson, the nested format is tried.
///
/// # Errors
///
/// Any [`Error`] but [`Error::Read`] and [`Error::InvalidUtf8`]:
/// a duplicate module or lesson, a lesson outside a module, an unknown complexity tag,
/// or [`Error::NoLessons`] when neither format finds a lesson.
pub fn parse(text: &str, origin: &Path) -> Result<Curriculum, Error> {
    parse_with(text, origin, &ParseOptions::default())
}

/// Parses an outline with [`ParseOptions`], for example in a forced [`Format`].
///
/// # Errors
///
/// As [`parse`]; [`Error::NoLessons`] names only the forced format when there is one.
pub fn parse_with(text: &str, origin: &Path, options: &ParseOptions) -> Result<Curriculum, Error> {
    parse_in_pieces(text, origin, options, PIECE_BYTES)
}

/// [`parse_with`], with comrak reading about `piece_bytes` of the text at a time.
///
/// Every format is read along, piece by piece, and the result is the one reading the whole
/// text format after format would give: the first format that finds an error or a lesson
/// decides, so the formats after it are dropped as soon as it has.
pub(crate) fn parse_in_pieces(
    text: &str,
    origin: &Path,
    options: &ParseOptions,
    piece_bytes: usize,
) -> Result<Curriculum, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let formats = match options.format {
        Some(format) => vec![format],
        None => vec![Format::LessonMap, Format::Nested],
    };
    let mut attempts: Vec<Attempt<'_>> = formats
        .iter()
        .map(|&format| Attempt::new(format, origin))
        .collect();
    read_pieces(text, piece_bytes, |root, lines_before| {
        for attempt in &mut attempts {
            attempt.read(root, lines_before);
        }
        if let Some(decided) = attempts.iter().position(Attempt::is_decided) {
            attempts.truncate(decided + 1);
        }
        match attempts[0].result {
            Err(_) => ControlFlow::Break(()),
            Ok(()) => ControlFlow::Continue(()),
        }
    });
    let mut first_module_line = None;
    let mut near_miss = None;
    for attempt in attempts {
        attempt.result?;
        if attempt.builder.n_lessons() > 0 {
            return Ok(attempt.builder.finish(attempt.format));
        }
        first_module_line = first_module_line.or(attempt.builder.first_module_line());
        near_miss = near_miss.or_else(|| attempt.builder.first_near_miss().cloned());
    }
    Err(Error::NoLessons {
        path: origin.to_path_buf(),
        line: first_module_line.unwrap_or(1),
        tried: formats,
        near_miss,
    })
}

/// Reads and parses an outline file; a UTF-8 byte order mark is skipped.
///
/// # Errors
///
/// [`Error::Read`] when the file cannot be read, [`Error::InvalidUtf8`] when it is not UTF-8,
/// otherwise as [`parse`].
pub fn parse_file(path: &Path) -> Result<Curriculum, Error> {
    let bytes = fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        line: 0,
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|err| {
        let source = err.utf8_error();
        let offset = source.valid_up_to();
        let valid = &err.as_bytes()[..offset];
        Error::InvalidUtf8 {
            path: path.to_path_buf(),
            line: 1 + valid.iter().filter(|&&byte| byte == b'\n').count(),
            offset,
            source,
        }
    })?;
    parse(&text, path)
}

/// One format's reading of an outline: its reader, what it found and its first error.
struct Attempt<'o> {
    format: Format,
    reader: Reader,
    builder: Builder<'o>,
    /// The first error; the format reads no further after it.
    result: Result<(), Error>,
}

enum Reader {
    LessonMap(lesson_map::Reader),
    Nested(nested::Reader),
}

impl<'o> Attempt<'o> {
    fn new(format: Format, origin: &'o Path) -> Self {
        let reader = match format {
            Format::LessonMap => Reader::LessonMap(lesson_map::Reader::default()),
            Format::Nested => Reader::Nested(nested::Reader::default()),
        };
        Attempt {
            format,
            reader,
            builder: Builder::new(origin),
            result: Ok(()),
        }
    }

    fn read<'a>(&mut self, root: &'a AstNode<'a>, lines_before: usize) {
        if self.result.is_err() {
            return;
        }
        self.result = match &mut self.reader {
            Reader::LessonMap(reader) => reader.read(root, lines_before, &mut self.builder),
            Reader::Nested(reader) => reader.read(root, lines_before, &mut self.builder),
        };
    }

    /// Whether this format's result is the outline's, whatever the formats after it find.
    fn is_decided(&self) -> bool {
        self.result.is_err() || self.builder.n_lessons() > 0
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const LESSON_MAP: &str = "# M0: Fundamentals — Lesson Map\n## L001: What Is It? [F]\n";
    const NESTED: &str = "## Module 1: Foundations\n- Tokenization [F-I]\n";

    fn origin() -> &'static Path {
        Path::new("outline.md")
    }

    fn forced(format: Format) -> ParseOptions {
        ParseOptions {
            format: Some(format),
        }
    }

    #[test]
    fn the_format_is_detected() {
        assert_eq!(
            parse(LESSON_MAP, origin()).unwrap().format,
            Format::LessonMap
        );
        assert_eq!(parse(NESTED, origin()).unwrap().format, Format::Nested);
    }

    #[test]
    fn the_format_can_be_forced() {
        let curriculum = parse_with(NESTED, origin(), &forced(Format::Nested)).unwrap();
        assert_eq!(curriculum.lesson_count(), 1);
        let err = parse_with(NESTED, origin(), &forced(Format::LessonMap)).unwrap_err();
        assert!(
            matches!(&err, Error::NoLessons { line: 1, tried, .. } if tried == &[Format::LessonMap]),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("(tried the lesson-map format)"),
            "{err}"
        );
    }

    #[test]
    fn no_lessons_says_what_was_tried_and_what_a_lesson_looks_like() {
        let err = parse("# Notes\n\nJust prose.\n", origin()).unwrap_err();
        assert!(
            matches!(&err, Error::NoLessons { line: 1, tried, .. }
                if tried == &[Format::LessonMap, Format::Nested]),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(
                "outline.md:1: no lessons found (tried the lesson-map and nested formats)"
            ),
            "{message}"
        );
        assert!(
            message.contains("`## L001: What Is Data Governance? [F]`"),
            "{message}"
        );
        assert!(
            message.contains("`- Tokenization & Input Structure [F-I]`"),
            "{message}"
        );
    }

    /// Issue 12: when every lesson heading has the same typo, "no lessons found" says so.
    #[test]
    fn no_lessons_names_the_first_line_that_looks_like_a_heading() {
        let err = parse("# M0: A\n## L001 One [F]\n## L002 Two [F]\n", origin()).unwrap_err();
        assert!(
            matches!(&err, Error::NoLessons { near_miss: Some(warning), .. } if warning.line == 2),
            "{err:?}"
        );
        assert!(
            err.to_string().ends_with(
                "(nested); line 2: `## L001 One [F]` is not read as a lesson heading: \
                 expected `## L001: One [F]`; add a colon after L001"
            ),
            "{err}"
        );
    }

    #[test]
    fn no_lessons_points_at_the_first_module() {
        let err = parse("# Course\n\n# M0: Truncated — Lesson Map\n", origin()).unwrap_err();
        assert!(matches!(err, Error::NoLessons { line: 3, .. }), "{err:?}");
        let err = parse("", origin()).unwrap_err();
        assert!(matches!(err, Error::NoLessons { line: 1, .. }), "{err:?}");
    }

    #[test]
    fn errors_know_their_path_and_line() {
        let err = parse("## L001: Orphan [F]\n", Path::new("dir/outline.md")).unwrap_err();
        assert_eq!(err.path(), Path::new("dir/outline.md"));
        assert_eq!(err.line(), 1);
        assert_eq!(
            err.to_string(),
            "dir/outline.md:1: lesson `Orphan` is not under any module heading"
        );
    }

    #[test]
    fn parse_file_skips_a_byte_order_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outline.md");
        fs::write(&path, format!("\u{feff}{LESSON_MAP}")).unwrap();
        let curriculum = parse_file(&path).unwrap();
        assert_eq!(curriculum.modules[0].line, 1);
        assert_eq!(curriculum.modules[0].title, "Fundamentals");
    }

    #[test]
    fn parse_file_reports_invalid_utf8_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outline.md");
        fs::write(&path, b"# M0: A\n## L001: Caf\xe9 [F]\n").unwrap();
        let err = parse_file(&path).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidUtf8 { path: p, line: 2, offset: 20, .. } if p == &path),
            "{err:?}"
        );
        assert!(
            err.to_string().ends_with(":2: invalid UTF-8 at byte 20"),
            "{err}"
        );
    }

    #[test]
    fn parse_file_reports_an_unreadable_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.md");
        let err = parse_file(&missing).unwrap_err();
        assert!(
            matches!(&err, Error::Read { path, line: 0, source } if path == &missing
                && source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        // A directory is not a readable file either.
        let err = parse_file(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
    }
}
