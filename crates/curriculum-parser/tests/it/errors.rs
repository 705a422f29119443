//! One fixture per parse error: the exact variant, line and message.

use std::path::Path;

use curriculum_parser::{Error, Format, parse_file};

use crate::fixture;

fn message(err: &Error, path: &Path) -> String {
    err.to_string().replace(&path.display().to_string(), "FILE")
}

#[test]
fn duplicate_lesson() {
    let path = fixture("outlines/error-duplicate-lesson.md");
    let err = parse_file(&path).unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateLesson { line: 6, first_line: 4, code, .. }
            if code.to_string() == "M0-L002"),
        "{err:?}"
    );
    assert_eq!(
        message(&err, &path),
        "FILE:6: lesson M0-L002 appears twice (first at line 4)"
    );
}

#[test]
fn duplicate_module() {
    let path = fixture("outlines/error-duplicate-module.md");
    let err = parse_file(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DuplicateModule {
                line: 7,
                first_line: 4,
                number: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        message(&err, &path),
        "FILE:7: module M1 appears twice (first at line 4)"
    );
}

#[test]
fn lesson_before_any_module() {
    let path = fixture("outlines/error-lesson-before-module.md");
    let err = parse_file(&path).unwrap_err();
    assert!(
        matches!(&err, Error::LessonOutsideModule { line: 4, title, .. }
            if title == "What Is Data Governance? Scope, Value & Myths"),
        "{err:?}"
    );
}

#[test]
fn unknown_complexity_tag() {
    let path = fixture("outlines/error-unknown-complexity.md");
    let err = parse_file(&path).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownComplexity { line: 4, tag, .. } if tag == "F-X"),
        "{err:?}"
    );
    assert_eq!(
        message(&err, &path),
        "FILE:4: unknown complexity tag `[F-X]` (expected F, I, A, E or a range such as F-I)"
    );
}

#[test]
fn no_lessons() {
    let path = fixture("outlines/error-no-lessons.md");
    let err = parse_file(&path).unwrap_err();
    assert!(
        matches!(&err, Error::NoLessons { line: 1, tried, .. }
            if tried == &[Format::LessonMap, Format::Nested]),
        "{err:?}"
    );
    assert_eq!(
        message(&err, &path),
        "FILE:1: no lessons found (tried the lesson-map and nested formats); \
         a lesson line looks like `## L001: What Is Data Governance? [F]` under `# M0: Fundamentals` (lesson map) \
         or `- Tokenization & Input Structure [F-I]` under `## Module 1: AI Foundation` (nested)"
    );
}

#[test]
fn invalid_utf8() {
    let path = fixture("outlines/error-invalid-utf8.md");
    let err = parse_file(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidUtf8 {
                line: 3,
                offset: 113,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(message(&err, &path), "FILE:3: invalid UTF-8 at byte 113");
}

#[test]
fn unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Content Structure.md");
    let err = parse_file(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Read { path: p, line: 0, source }
            if p == &path && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert_eq!(message(&err, &path), "cannot read FILE");
    assert_eq!(err.path(), path);
}

/// Issue 12: a module heading typo was reported as `:49: lesson M0-L001 appears twice`,
/// when the bad heading is on line 46. The error now points at line 46 and says why.
#[test]
fn module_heading_typo_points_at_the_heading() {
    let path = fixture("outlines/error-module-heading-typo.md");
    let err = parse_file(&path).unwrap_err();
    let Error::MisreadModuleHeading {
        line: 46,
        previous: Some(0),
        source,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(
        matches!(
            **source,
            Error::DuplicateLesson {
                line: 49,
                first_line: 14,
                ..
            }
        ),
        "{source:?}"
    );
    assert_eq!(err.line(), 46);
    assert_eq!(
        message(&err, &path),
        "FILE:46: `# M1 Operating Model, Roles & RACI — Lesson Map` is not read as a module heading: \
         expected `# M1: Operating Model, Roles & RACI — Lesson Map`; add a colon after M1; \
         the lessons below it were read into module M0"
    );
    assert_eq!(
        message(source, &path),
        "FILE:49: lesson M0-L001 appears twice (first at line 14)"
    );
}

#[test]
fn module_heading_typo_before_any_module() {
    let err = curriculum_parser::parse(
        "# Course\n\n# M0 Fundamentals\n## L001: One [F]\n",
        Path::new("o.md"),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::MisreadModuleHeading { line: 3, previous: None, source, .. }
            if matches!(**source, Error::LessonOutsideModule { line: 4, .. })),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("add a colon after M0; the lessons below it were read outside any module"),
        "{err}"
    );
}
