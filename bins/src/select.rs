//! Which lessons a run asks for: `--only`, `--modules`, `--limit`, minus those already generated.

use std::collections::BTreeSet;

use curriculum_parser::{Curriculum, Lesson, LessonCode};

use crate::usage_error;

/// The user's choice of lessons.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--only`: exactly these lessons (empty: all).
    pub only: Vec<LessonCode>,
    /// `--modules`: only lessons of these module numbers (empty: all).
    pub modules: Vec<u32>,
    /// `--limit`: at most this many lessons, in outline order.
    pub limit: Option<usize>,
    /// `--force`: include lessons that already have a file.
    pub force: bool,
}

/// The lessons to generate now.
#[derive(Debug)]
pub struct Selected<'a> {
    /// Lessons in scope (after `--only` and `--modules`).
    pub in_scope: usize,
    /// Lessons in scope that already have a file.
    pub already_generated: usize,
    /// The lessons to request, in outline order.
    pub lessons: Vec<&'a Lesson>,
}

/// Parses `M3` or `3` as a module number.
///
/// # Errors
///
/// A usage error naming the text.
pub fn parse_module(text: &str) -> anyhow::Result<u32> {
    let digits = text.trim();
    let digits = digits
        .strip_prefix('M')
        .or_else(|| digits.strip_prefix('m'))
        .unwrap_or(digits);
    digits.parse().map_err(|_| {
        usage_error(
            format!("`{text}` is not a module (expected e.g. M0 or M12)"),
            Some("list the modules with --list-lessons"),
        )
    })
}

/// Parses `M0-L001` (also `lesson_M0-L001`).
///
/// # Errors
///
/// A usage error naming the text.
pub fn parse_code(text: &str) -> anyhow::Result<LessonCode> {
    text.trim().parse().map_err(|_| {
        usage_error(
            format!("`{text}` is not a lesson code (expected e.g. M0-L001)"),
            Some("list the lesson codes with --list-lessons"),
        )
    })
}

/// Applies the selection to the curriculum.
///
/// # Errors
///
/// A usage error when `--only` or `--modules` names something the outline does not have.
pub fn select<'a>(
    curriculum: &'a Curriculum,
    existing: &BTreeSet<LessonCode>,
    selection: &Selection,
) -> anyhow::Result<Selected<'a>> {
    for code in &selection.only {
        if curriculum.lesson(*code).is_none() {
            return Err(usage_error(
                format!("--only names {code}, which the outline does not have"),
                Some("list the lesson codes with --list-lessons"),
            ));
        }
    }
    for number in &selection.modules {
        if curriculum.module(*number).is_none() {
            return Err(usage_error(
                format!("--modules names M{number}, which the outline does not have"),
                Some("list the modules with --list-lessons"),
            ));
        }
    }
    let in_scope: Vec<&Lesson> = curriculum
        .lessons()
        .filter(|lesson| selection.only.is_empty() || selection.only.contains(&lesson.code))
        .filter(|lesson| {
            selection.modules.is_empty() || selection.modules.contains(&lesson.code.module())
        })
        .collect();
    let already_generated = in_scope
        .iter()
        .filter(|lesson| existing.contains(&lesson.code))
        .count();
    let mut lessons: Vec<&Lesson> = in_scope
        .iter()
        .copied()
        .filter(|lesson| selection.force || !existing.contains(&lesson.code))
        .collect();
    if let Some(limit) = selection.limit {
        lessons.truncate(limit);
    }
    Ok(Selected {
        in_scope: in_scope.len(),
        already_generated,
        lessons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline() -> Curriculum {
        let text =
            "# M0: Basics\n## L001: One [F]\n## L002: Two [I]\n# M1: More\n## L001: Three [A]\n";
        curriculum_parser::parse(text, std::path::Path::new("outline.md")).unwrap()
    }

    fn codes(selected: &Selected<'_>) -> Vec<String> {
        selected
            .lessons
            .iter()
            .map(|l| l.code.to_string())
            .collect()
    }

    #[test]
    fn skips_existing_unless_forced_and_applies_limit() {
        let curriculum = outline();
        let existing: BTreeSet<LessonCode> = ["M0-L001".parse().unwrap()].into();
        let selected = select(&curriculum, &existing, &Selection::default()).unwrap();
        assert_eq!(codes(&selected), ["M0-L002", "M1-L001"]);
        assert_eq!((selected.in_scope, selected.already_generated), (3, 1));

        let forced = Selection {
            force: true,
            limit: Some(2),
            ..Selection::default()
        };
        let selected = select(&curriculum, &existing, &forced).unwrap();
        assert_eq!(codes(&selected), ["M0-L001", "M0-L002"]);
    }

    #[test]
    fn only_and_modules_filter_and_unknown_names_are_usage_errors() {
        let curriculum = outline();
        let none = BTreeSet::new();
        let only = Selection {
            only: vec![parse_code("M1-L001").unwrap()],
            ..Selection::default()
        };
        assert_eq!(
            codes(&select(&curriculum, &none, &only).unwrap()),
            ["M1-L001"]
        );
        let modules = Selection {
            modules: vec![parse_module("M0").unwrap()],
            ..Selection::default()
        };
        assert_eq!(
            codes(&select(&curriculum, &none, &modules).unwrap()),
            ["M0-L001", "M0-L002"]
        );
        let unknown = Selection {
            only: vec![parse_code("M9-L001").unwrap()],
            ..Selection::default()
        };
        let err = select(&curriculum, &none, &unknown).unwrap_err();
        assert!(err.downcast_ref::<crate::UsageError>().is_some());
        assert!(parse_module("X1").is_err());
        assert!(parse_code("M1").is_err());
    }
}
