//! Writing: idempotent reruns, overwrite policy, duplicates, file-name patterns.

use std::fs;
use std::time::SystemTime;

use lesson_writer::{FileNamePattern, Overwrite};

use crate::support::{files, lesson, run_in, run_with};

fn mtimes(dir: &std::path::Path) -> Vec<(String, SystemTime)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, entry.metadata().unwrap().modified().unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn second_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_in(
        dir.path(),
        Some("artifacts.jsonl"),
        Some("mixed.jsonl"),
        |_| {},
    );
    assert_eq!(first.written, 4);
    let out = dir.path().join("out");
    let before = mtimes(&out);
    let contents = files(&out);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = run_in(
        dir.path(),
        Some("artifacts.jsonl"),
        Some("mixed.jsonl"),
        |_| {},
    );
    assert_eq!((second.written, second.unchanged), (0, 4));
    assert!(second.kept.is_empty());
    assert_eq!(mtimes(&out), before);
    assert_eq!(files(&out), contents);
}

#[test]
fn existing_lessons_are_kept_unless_overwrite_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("M0-L001.md"), "edited by hand\n").unwrap();

    let summary = run_in(dir.path(), Some("success.jsonl"), None, |_| {});
    assert_eq!(summary.written, 0);
    assert_eq!(summary.kept.len(), 1);
    assert_eq!(summary.kept[0].path, out.join("M0-L001.md"));
    assert_eq!(summary.kept[0].reason, lesson_writer::KeptReason::Exists);
    assert_eq!(summary.counts().kept, 1);
    assert_eq!(
        fs::read_to_string(out.join("M0-L001.md")).unwrap(),
        "edited by hand\n"
    );

    let summary = run_in(dir.path(), Some("success.jsonl"), None, |config| {
        config.overwrite = Overwrite::Allow;
    });
    assert_eq!((summary.written, summary.replaced), (1, 1));
    assert!(
        fs::read_to_string(out.join("M0-L001.md"))
            .unwrap()
            .starts_with("# Lesson M0-L001")
    );
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1, "no temp file left");
}

#[test]
fn duplicates_keep_the_first_success() {
    let (dir, summary) = run_with(Some("duplicates.jsonl"), None, |_| {});
    assert_eq!(summary.written, 1);
    assert_eq!(
        lesson(&dir, "M0-L001.md"),
        "# Lesson M0-L001: What is data?\n\nFirst.\n"
    );
    let duplicates: Vec<(&str, u64, u64)> = summary
        .duplicates
        .iter()
        .map(|dup| (dup.custom_id.as_str(), dup.location.line, dup.kept.line))
        .collect();
    assert_eq!(duplicates, [("lesson_M0-L001", 2, 1), ("M0-L001", 3, 1)]);
}

#[test]
fn slug_pattern_uses_the_curriculum_title() {
    let (dir, summary) = run_with(Some("artifacts.jsonl"), None, |config| {
        config.file_name = FileNamePattern::new(FileNamePattern::CODE_SLUG).unwrap();
    });
    assert_eq!(summary.written, 4);
    assert_eq!(
        files(&dir.path().join("out")).keys().collect::<Vec<_>>(),
        [
            "M0-L001-what-is-data.md",
            "M0-L002-kinds-of-data.md",
            "M0-L003-data-quality.md",
            "M0-L004-stewardship.md",
        ]
    );
}
