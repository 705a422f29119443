//! Finding the lessons that already have a file in an output directory.

use std::collections::BTreeSet;
use std::fs;

use curriculum_parser::{Error, LessonCode, existing_lessons};

fn codes(list: &[&str]) -> BTreeSet<LessonCode> {
    list.iter().map(|code| code.parse().unwrap()).collect()
}

#[test]
fn plain_and_slugged_names_count() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "M0-L001.md",
        "M01-L011-prompt-engineering-principles.md",
        "M12-L024-ai-governance.md",
        "lesson_M3-L002.md",
        "M0-L002.md.tmp",
        "notes.md",
        "M4-L001.json",
    ] {
        fs::write(dir.path().join(name), "# lesson\n").unwrap();
    }
    fs::create_dir(dir.path().join("M5-L001.md")).unwrap();
    let found = existing_lessons(dir.path()).unwrap();
    assert_eq!(found, codes(&["M0-L001", "M1-L011", "M3-L002", "M12-L024"]));
    // Numeric comparison: a zero-padded code is the same lesson.
    assert!(found.contains(&"M00-L001".parse().unwrap()));
    assert!(found.contains(&"M1-L11".parse().unwrap()));
}

#[test]
fn a_missing_directory_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let found = existing_lessons(&dir.path().join("not-yet-created")).unwrap();
    assert!(found.is_empty());
}

#[test]
fn a_file_instead_of_a_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lessons");
    fs::write(&file, "").unwrap();
    let err = existing_lessons(&file).unwrap_err();
    assert!(
        matches!(&err, Error::Read { path, .. } if path == &file),
        "{err:?}"
    );
}
