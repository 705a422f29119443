//! Integration tests of curriculum-parser over the fixtures in `fixtures/`.

mod datagov;
mod errors;
mod outlines;

use std::path::PathBuf;

use curriculum_parser::Curriculum;

/// A fixture's path from the workspace's `fixtures/` directory.
fn fixture(relative: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "..", "..", "fixtures", relative]
        .iter()
        .collect()
}

/// Each lesson as `code | title | tag | section | line`.
fn lesson_rows(curriculum: &Curriculum) -> Vec<String> {
    curriculum
        .lessons()
        .map(|lesson| {
            let tag = lesson.complexity.map(|tag| tag.to_string());
            format!(
                "{} | {} | {} | {} | {}",
                lesson.code,
                lesson.title,
                tag.as_deref().unwrap_or("-"),
                lesson.section.as_deref().unwrap_or("-"),
                lesson.line
            )
        })
        .collect()
}
