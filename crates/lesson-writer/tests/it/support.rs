//! Shared helpers: fixture paths, a hand-built curriculum, runs and directory walks.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use curriculum_parser::{Curriculum, Format, Lesson, LessonCode, Module};
use lesson_writer::{ProcessConfig, Summary, process};
use tempfile::TempDir;

/// A fixture file under `fixtures/`.
pub(crate) fn fixture(path: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures")).join(path)
}

/// Module 0 with lessons 1 to 6.
pub(crate) fn curriculum() -> Curriculum {
    let titles = [
        "What is data?",
        "Kinds of data",
        "Data quality",
        "Stewardship",
        "Lineage",
        "Retention",
    ];
    let lessons = titles
        .iter()
        .enumerate()
        .map(|(index, title)| Lesson {
            code: LessonCode::new(0, index as u32 + 1),
            title: (*title).to_owned(),
            complexity: None,
            section: None,
            line: index + 3,
        })
        .collect();
    Curriculum {
        title: Some("Data governance".to_owned()),
        format: Format::LessonMap,
        modules: vec![Module {
            number: 0,
            title: "Foundations".to_owned(),
            line: 1,
            lessons,
            labs: Vec::new(),
        }],
        warnings: Vec::new(),
    }
}

/// Runs `process` on fixtures into a fresh `out` directory inside a temp dir.
pub(crate) fn run_with(
    output: Option<&str>,
    errors: Option<&str>,
    adjust: impl FnOnce(&mut ProcessConfig<'_>),
) -> (TempDir, Summary) {
    let dir = tempfile::tempdir().unwrap();
    let summary = run_in(dir.path(), output, errors, adjust);
    (dir, summary)
}

/// Runs `process` on fixtures into `<dir>/out`, with the test curriculum.
pub(crate) fn run_in(
    dir: &Path,
    output: Option<&str>,
    errors: Option<&str>,
    adjust: impl FnOnce(&mut ProcessConfig<'_>),
) -> Summary {
    let curriculum = curriculum();
    let mut config = ProcessConfig::new(dir.join("out"));
    config.curriculum = Some(&curriculum);
    adjust(&mut config);
    let output = output.map(|name| fixture(&format!("batch-output/{name}")));
    let errors = errors.map(|name| fixture(&format!("batch-errors/{name}")));
    process(output.as_deref(), errors.as_deref(), &config).unwrap()
}

/// Runs with the defaults.
pub(crate) fn run(output: Option<&str>, errors: Option<&str>) -> (TempDir, Summary) {
    run_with(output, errors, |_| {})
}

/// Every file under `root`, relative path to content, `/`-separated.
pub(crate) fn files(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                let name = relative.to_string_lossy().replace('\\', "/");
                out.insert(name, fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    out
}

/// The lesson `out/<name>` of a run.
pub(crate) fn lesson(dir: &TempDir, name: &str) -> String {
    fs::read_to_string(dir.path().join("out").join(name)).unwrap()
}
