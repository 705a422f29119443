//! Hostile input: traversal ids, malformed and over-long lines, unreadable paths.

use std::fs;
use std::path::Path;

use lesson_writer::{Error, Input, MalformedReason, ProcessConfig, process, process_inputs};

use crate::support::{files, fixture, run_in};

#[test]
fn traversal_ids_never_leave_the_output_directory() {
    let root = tempfile::tempdir().unwrap();
    // Deep enough that `../../x` from the output directory still lands inside `root`.
    let base = root.path().join("a/b");
    fs::create_dir_all(&base).unwrap();
    let summary = run_in(&base, Some("traversal.jsonl"), None, |_| {});
    assert_eq!(summary.written, 1);
    let everything = files(root.path());
    assert_eq!(
        everything.keys().collect::<Vec<_>>(),
        ["a/b/out/M0-L002.md"],
        "only the valid lesson may be written"
    );
    let refused: Vec<String> = summary
        .malformed
        .iter()
        .map(|malformed| match &malformed.reason {
            MalformedReason::InvalidCustomId { custom_id } => custom_id.clone(),
            other => panic!("unexpected reason {other:?}"),
        })
        .collect();
    assert_eq!(
        refused,
        [
            "lesson_../../x",
            "/etc/passwd",
            "lesson_M0-L001/../../x",
            "../../M0-L001",
            "lesson_M0-L001\\0",
        ]
    );
    assert_eq!(summary.malformed[0].location.line, 1);
    assert!(summary.failures.is_empty());
}

#[test]
fn malformed_lines_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run_in(dir.path(), Some("malformed.jsonl"), None, |_| {});
    assert_eq!(summary.lines_read, 7, "the blank line is not read");
    assert_eq!(summary.written, 2);
    let reasons: Vec<(u64, &MalformedReason)> = summary
        .malformed
        .iter()
        .map(|malformed| (malformed.location.line, &malformed.reason))
        .collect();
    assert_eq!(reasons.len(), 5);
    assert!(
        matches!(reasons[0], (2, MalformedReason::Json { .. })),
        "{reasons:?}"
    );
    assert!(
        matches!(reasons[1], (3, MalformedReason::MissingCustomId)),
        "{reasons:?}"
    );
    assert!(
        matches!(reasons[2], (4, MalformedReason::UnexpectedShape { .. })),
        "{reasons:?}"
    );
    assert!(
        matches!(reasons[3], (5, MalformedReason::UnexpectedShape { .. })),
        "{reasons:?}"
    );
    assert!(
        matches!(reasons[4], (7, MalformedReason::UnexpectedShape { .. })),
        "{reasons:?}"
    );
    assert_eq!(summary.malformed_count, 5);
    assert!(
        summary.malformed[0]
            .location
            .to_string()
            .ends_with("malformed.jsonl:2")
    );
}

#[test]
fn over_long_and_non_utf8_lines_are_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(fixture("batch-output/success.jsonl")).unwrap();
    let mut input = Vec::new();
    input.extend_from_slice(&vec![b'{'; 5000]);
    input.push(b'\n');
    input.extend_from_slice(b"{\"custom_id\": \"lesson_M0-L002\xff\"}\n");
    input.extend_from_slice(&good);
    let mut config = ProcessConfig::new(dir.path().join("out"));
    config.max_line_bytes = 2000;
    let summary =
        process_inputs(vec![Input::new("output.jsonl", input.as_slice())], &config).unwrap();
    assert_eq!(summary.lines_read, 3);
    assert_eq!(summary.written, 1);
    assert_eq!(
        summary.malformed[0].reason,
        MalformedReason::TooLong {
            bytes: 5000,
            max: 2000
        }
    );
    assert_eq!(summary.malformed[1].reason, MalformedReason::InvalidUtf8);
    assert_eq!(summary.malformed[1].location.line, 2);
}

#[test]
fn absent_files_are_fine_but_missing_paths_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProcessConfig::new(dir.path().join("out"));
    let summary = process(None, None, &config).unwrap();
    assert_eq!(summary.lines_read, 0);
    assert!(dir.path().join("out").is_dir());

    let missing = dir.path().join("nope.jsonl");
    match process(Some(&missing), None, &config) {
        Err(Error::Open { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn an_output_directory_that_is_a_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("out");
    fs::write(&not_a_dir, "").unwrap();
    let config = ProcessConfig::new(&not_a_dir);
    let output = fixture("batch-output/success.jsonl");
    match process(Some(&output), None, &config) {
        Err(Error::CreateDir { path, .. }) => assert_eq!(path, not_a_dir),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    assert!(Path::new(&not_a_dir).is_file());
}
