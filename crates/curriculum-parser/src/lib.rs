//! Turns a course outline written in Markdown into modules and lessons.
//!
//! ```
//! use std::path::Path;
//!
//! let outline = concat!(
//!     "# M0: Data Governance Fundamentals & Principles — Lesson Map\n",
//!     "## Core Concepts & Landscape\n",
//!     "## L001: What Is Data Governance? Scope, Value & Myths [F]\n",
//!     "## L002: Governance vs Management vs Stewardship [I]\n",
//! );
//! let curriculum = curriculum_parser::parse(outline, Path::new("outline.md"))?;
//! let lesson = &curriculum.modules[0].lessons[1];
//! assert_eq!(lesson.code.to_string(), "M0-L002");
//! assert_eq!(lesson.title, "Governance vs Management vs Stewardship");
//! assert_eq!(lesson.section.as_deref(), Some("Core Concepts & Landscape"));
//! assert_eq!(curriculum.lesson_count(), 2);
//! # Ok::<(), curriculum_parser::Error>(())
//! ```
//!
//! Two outline formats are read, and [`parse`] detects which one a file uses:
//!
//! - [`Format::LessonMap`]: `# M0: Title — Lesson Map` module headings,
//!   `## L001: Title [F]` lesson headings (the code is `M0-L001`, numbers restart in every module),
//!   and other level-2 headings as sections.
//! - [`Format::Nested`]: `## Module 1: Title` headings or `- **Module 1: Title**` list items,
//!   with group headings and nested bullets below; `*Lab: ...*` bullets are [`Lab`]s,
//!   bullets with child bullets (other than labs) are sections,
//!   and the remaining bullets are lessons, numbered in document order within their module.
//!
//! The text is read through a CommonMark parser (comrak), so emphasis, code spans, links,
//! HTML comments, closing `#`s, CRLF line ends, a byte order mark and non-breaking spaces
//! do not change what a title is.
//! comrak reads some 64 KiB at a time, cut only before a heading or bullet line that starts a block
//! wherever it stands, so its syntax tree does not grow with the outline
//! and the result is the one of reading the outline whole.
//! A trailing `[F]`, `[I-A]` or `[Advanced]` is the lesson's [`Complexity`];
//! a tag-shaped group that is no level, such as `[X]`, is an error, and other brackets, such as `[GDPR]`, stay in the title.
//! Duplicate modules and lessons, lessons outside a module, lessons without a title,
//! numbers too large (more than nine digits) and outlines without lessons are [`Error`]s.
//! [`Warning`]s, each with its line, what was expected and the likely fix, name what parsed but
//! may not be what the author meant: a line that looks like a module or lesson heading but is not
//! read as one (`## L005 Title [F]` without the colon, `##L004: Title` without the space,
//! `- L002: Title` as a list item in a lesson map), gaps and going back in a module's lesson
//! numbers, a module without a title, and a module without lessons (which is kept).
//! When a module heading with a typo makes the lessons below it break a rule,
//! the error is [`Error::MisreadModuleHeading`], at the heading's line.
//!
//! Which lessons already have a file is for `lesson-writer`, the one owner of lesson file names.

#![warn(missing_docs)]

mod builder;
mod error;
mod lesson_map;
mod model;
mod near_miss;
mod nested;
mod parse;
mod pieces;
mod text;

pub use error::Error;
pub use model::{
    Complexity, Curriculum, Format, Lab, Lesson, LessonCode, Level, Module, ParseComplexityError,
    ParseLessonCodeError, Warning,
};
pub use parse::{ParseOptions, parse, parse_file, parse_with};
