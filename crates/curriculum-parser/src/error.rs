//! The one error type of the crate: what went wrong, in which file, on which line.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::{Format, LessonCode, Warning};

/// Why an outline could not be read or parsed.
///
/// Every variant carries the file's `path` and a 1-based `line`,
/// so a caller can point at `path:line` without matching on the variant
/// (see [`Error::path`] and [`Error::line`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file (or output directory) could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Always 0: nothing was read, so there is no line to point at.
        line: usize,
        /// The cause.
        source: std::io::Error,
    },

    /// The file is not valid UTF-8.
    #[error("{}:{line}: invalid UTF-8 at byte {offset}", .path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// The 1-based line holding the first invalid byte.
        line: usize,
        /// The 0-based byte offset of the first invalid byte in the file.
        offset: usize,
        /// The cause.
        source: std::str::Utf8Error,
    },

    /// A lesson appears where no module is open (before the first module heading).
    #[error("{}:{line}: lesson `{title}` is not under any module heading", .path.display())]
    LessonOutsideModule {
        /// The outline.
        path: PathBuf,
        /// The lesson's line.
        line: usize,
        /// The lesson's title.
        title: String,
    },

    /// Two lessons of one module have the same code.
    #[error("{}:{line}: lesson {code} appears twice (first at line {first_line})", .path.display())]
    DuplicateLesson {
        /// The outline.
        path: PathBuf,
        /// The line of the second lesson.
        line: usize,
        /// The line of the first lesson with this code.
        first_line: usize,
        /// The repeated code.
        code: LessonCode,
    },

    /// Two modules have the same number.
    #[error("{}:{line}: module M{number} appears twice (first at line {first_line})", .path.display())]
    DuplicateModule {
        /// The outline.
        path: PathBuf,
        /// The line of the second module heading.
        line: usize,
        /// The line of the first module heading with this number.
        first_line: usize,
        /// The repeated module number.
        number: u32,
    },

    /// A lesson ends in a bracketed tag that is not a complexity level.
    #[error(
        "{}:{line}: unknown complexity tag `[{tag}]` (expected F, I, A, E or a range such as F-I)",
        .path.display()
    )]
    UnknownComplexity {
        /// The outline.
        path: PathBuf,
        /// The lesson's line.
        line: usize,
        /// The text between the brackets.
        tag: String,
    },

    /// A lesson has no title (`## L005:`, `## L00`, `- [F]`): its request could only get a junk answer.
    #[error(
        "{}:{line}: lesson {code} has no title (a lesson line looks like `## L001: What Is Data Governance? [F]`)",
        .path.display()
    )]
    EmptyTitle {
        /// The outline.
        path: PathBuf,
        /// The lesson's line.
        line: usize,
        /// The lesson's code.
        code: LessonCode,
    },

    /// A module or lesson number has more digits than a number holds (at most nine).
    #[error(
        "{}:{line}: the number in `{code}` is too large (module and lesson numbers have at most 9 digits)",
        .path.display()
    )]
    NumberTooLarge {
        /// The outline.
        path: PathBuf,
        /// The heading's line.
        line: usize,
        /// The code as written, such as `M4294967296`.
        code: String,
    },

    /// A line that looks like a module heading did not parse, so the lessons below it were read
    /// into the module before it (or into none), where they broke a rule: the line is the likely cause.
    #[error(
        "{}:{line}: {problem}; the lessons below it were read {}",
        .path.display(),
        .previous.map_or_else(|| "outside any module".to_owned(), |number| format!("into module M{number}"))
    )]
    MisreadModuleHeading {
        /// The outline.
        path: PathBuf,
        /// The line that looks like a module heading.
        line: usize,
        /// What was expected there and the likely fix, as its [`Warning`](crate::Warning) says.
        problem: String,
        /// The module the lessons were read into, if any.
        previous: Option<u32>,
        /// The rule the lessons broke: [`Error::DuplicateLesson`] or [`Error::LessonOutsideModule`].
        source: Box<Error>,
    },

    /// No lesson was found in any of the formats tried.
    #[error(
        "{}:{line}: no lessons found (tried the {} format{}); a lesson line looks like \
         `## L001: What Is Data Governance? [F]` under `# M0: Fundamentals` (lesson map) \
         or `- Tokenization & Input Structure [F-I]` under `## Module 1: AI Foundation` (nested){}",
        .path.display(),
        FormatList(.tried),
        if .tried.len() == 1 { "" } else { "s" },
        .near_miss.as_ref().map_or_else(String::new, |warning| format!("; line {}: {}", warning.line, warning.message))
    )]
    NoLessons {
        /// The outline.
        path: PathBuf,
        /// The first module heading's line, or 1 when there is none.
        line: usize,
        /// The formats that were tried, in order.
        tried: Vec<Format>,
        /// The first line that looks like a module or lesson heading but is not read as one:
        /// when every lesson heading has the same typo, the likely cause.
        near_miss: Option<Warning>,
    },
}

impl Error {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Read { path, .. }
            | Error::InvalidUtf8 { path, .. }
            | Error::LessonOutsideModule { path, .. }
            | Error::DuplicateLesson { path, .. }
            | Error::DuplicateModule { path, .. }
            | Error::UnknownComplexity { path, .. }
            | Error::EmptyTitle { path, .. }
            | Error::NumberTooLarge { path, .. }
            | Error::MisreadModuleHeading { path, .. }
            | Error::NoLessons { path, .. } => path,
        }
    }

    /// The 1-based line the error is about (0 for [`Error::Read`]).
    pub fn line(&self) -> usize {
        match self {
            Error::Read { line, .. }
            | Error::InvalidUtf8 { line, .. }
            | Error::LessonOutsideModule { line, .. }
            | Error::DuplicateLesson { line, .. }
            | Error::DuplicateModule { line, .. }
            | Error::UnknownComplexity { line, .. }
            | Error::EmptyTitle { line, .. }
            | Error::NumberTooLarge { line, .. }
            | Error::MisreadModuleHeading { line, .. }
            | Error::NoLessons { line, .. } => *line,
        }
    }
}

/// Shows `[LessonMap, Nested]` as `lesson-map and nested`.
struct FormatList<'a>(&'a [Format]);

impl fmt::Display for FormatList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, format) in self.0.iter().enumerate() {
            match index {
                0 => {}
                _ if index + 1 == self.0.len() => f.write_str(" and ")?,
                _ => f.write_str(", ")?,
            }
            f.write_str(format.as_str())?;
        }
        Ok(())
    }
}
