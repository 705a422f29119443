//! `--list-lessons`: the parsed curriculum as a table or as one JSON document.

use std::fmt::Write as _;
use std::path::Path;

use std::collections::BTreeMap;

use curriculum_parser::{Curriculum, LessonCode};
use lesson_job::{LessonState, LessonStatus};
use serde_json::json;

use crate::term::{Shown, shown_lines};

/// Prints the curriculum on stdout: a table per module (each lesson marked with its state:
/// generated, stale, edited by hand) and `Found N lessons across M modules`, or with `json`
/// exactly one JSON document.
///
/// # Errors
///
/// When stdout cannot be written.
pub fn print_curriculum(
    curriculum: &Curriculum,
    path: &Path,
    states: &[LessonStatus],
    json: bool,
) -> anyhow::Result<()> {
    let states: BTreeMap<LessonCode, LessonState> = states
        .iter()
        .map(|status| (status.code, status.state))
        .collect();
    if json {
        return crate::print_json(&curriculum_json(curriculum, &states));
    }
    crate::output::out!(
        "{}",
        shown_lines(&curriculum_table(curriculum, path, &states))
    )?;
    Ok(())
}

/// How a lesson's state reads in the table.
fn state_mark(state: Option<&LessonState>) -> String {
    match state {
        None | Some(LessonState::NotGenerated) => String::new(),
        Some(LessonState::Generated { .. }) => "  (generated)".to_owned(),
        Some(LessonState::Stale { reason }) => format!("  (stale: {})", Shown(reason)),
        Some(LessonState::EditedByHand) => "  (generated, edited by hand)".to_owned(),
    }
}

/// The human table; titles, the path and the states are shown escaped ([`crate::term`]).
pub fn curriculum_table(
    curriculum: &Curriculum,
    path: &Path,
    states: &BTreeMap<LessonCode, LessonState>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Curriculum: {}", Shown(path.display()));
    if let Some(title) = &curriculum.title {
        let _ = writeln!(out, "Title: {}", Shown(title));
    }
    let _ = writeln!(out, "Format: {}\n", curriculum.format);
    let _ = writeln!(out, "{:<6} {:>7}  Title", "Module", "Lessons");
    for module in &curriculum.modules {
        let _ = writeln!(
            out,
            "{:<6} {:>7}  {}",
            module.code(),
            module.lessons.len(),
            Shown(&module.title)
        );
    }
    for module in &curriculum.modules {
        let _ = writeln!(out, "\n{}: {}", module.code(), Shown(&module.title));
        for lesson in &module.lessons {
            let tag = lesson
                .complexity
                .map(|tag| format!("[{tag}]"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<10} {:<6} {}{}",
                lesson.code,
                tag,
                Shown(&lesson.title),
                state_mark(states.get(&lesson.code))
            );
        }
    }
    let _ = writeln!(
        out,
        "\nFound {} lessons across {} modules",
        curriculum.lesson_count(),
        curriculum.modules.len()
    );
    out
}

/// The `--list-lessons --json` document.
pub fn curriculum_json(
    curriculum: &Curriculum,
    states: &BTreeMap<LessonCode, LessonState>,
) -> serde_json::Value {
    let modules: Vec<_> = curriculum
        .modules
        .iter()
        .map(|module| {
            let lessons: Vec<_> = module
                .lessons
                .iter()
                .map(|lesson| {
                    json!({
                        "code": lesson.code.to_string(),
                        "number": lesson.code.lesson(),
                        "title": lesson.title,
                        "complexity": lesson.complexity.map(|tag| tag.to_string()),
                        "section": lesson.section,
                        "line": lesson.line,
                        "state": states.get(&lesson.code),
                    })
                })
                .collect();
            json!({
                "code": module.code(),
                "number": module.number,
                "title": module.title,
                "lessons": lessons,
            })
        })
        .collect();
    json!({
        "title": curriculum.title,
        "format": curriculum.format.as_str(),
        "modules": modules,
        "modules_total": curriculum.modules.len(),
        "lessons_total": curriculum.lesson_count(),
        "warnings": curriculum.warnings,
    })
}
