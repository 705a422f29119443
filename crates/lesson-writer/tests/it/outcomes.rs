//! One outcome per fixture: written, truncated, filtered, refused, empty, HTTP and
//! non-HTTP error lines, and the joined summary.

use std::collections::BTreeSet;

use curriculum_parser::LessonCode;

use lesson_writer::{Failure, FailureKind, write_failures_jsonl};

use crate::support::{files, lesson, run, run_with};

/// The one failure of a run, checked for kind, code and retryability.
fn only_failure(failures: &[Failure], kind: FailureKind, code: &str, retryable: bool) -> Failure {
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let failure = failures[0].clone();
    assert_eq!(
        (failure.kind, failure.code.as_str(), failure.retryable),
        (kind, code, retryable),
        "{failure:#?}"
    );
    failure
}

#[test]
fn success_is_written_verbatim() {
    let (dir, summary) = run(Some("success.jsonl"), None);
    assert_eq!(
        lesson(&dir, "M0-L001.md"),
        "# Lesson M0-L001: What is data?\n\n## Section 1: Why it matters\n\nData is recorded facts.\n\n```sql\nSELECT * FROM facts;\n```\n"
    );
    assert_eq!((summary.lines_read, summary.written), (1, 1));
    assert!(summary.is_clean(), "{summary:#?}");
    assert!(summary.rules_applied.is_empty());
    assert_eq!(summary.usage.prompt_tokens, 812);
    assert_eq!(summary.usage.completion_tokens, 1650);
    assert_eq!(summary.usage.requests, 1);
    // gpt-4o-mini at batch prices: 0.075 in, 0.30 out per 1M tokens.
    let expected = (812.0 * 0.075 + 1650.0 * 0.30) / 1e6;
    assert!((summary.cost_usd.unwrap() - expected).abs() < 1e-12);
    let model = &summary.models["gpt-4o-mini-2024-07-18"];
    assert_eq!(model.usage.completion_tokens, 1650);
    assert!(summary.unpriced_models.is_empty());
}

#[test]
fn length_is_a_retryable_failure_kept_in_rejected() {
    let (dir, summary) = run(Some("length.jsonl"), None);
    let failure = only_failure(&summary.failures, FailureKind::Truncated, "length", true);
    assert_eq!(failure.lesson_code.to_string(), "M0-L001");
    assert!(
        failure.reason.contains("max_completion_tokens"),
        "{}",
        failure.reason
    );
    assert_eq!(summary.written, 0);
    assert_eq!(summary.rejected_files, 1);
    let written = files(&dir.path().join("out"));
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        ["rejected/M0-L001.md"],
        "no finished lesson for a truncated answer"
    );
    assert_eq!(
        written["rejected/M0-L001.md"],
        "# Lesson M0-L001: What is data?\n\nData is recor"
    );
    assert_eq!(
        failure.rejected_file.unwrap(),
        dir.path().join("out/rejected/M0-L001.md")
    );
}

#[test]
fn accept_truncated_writes_the_lesson() {
    let (dir, summary) = run_with(Some("length.jsonl"), None, |config| {
        config.accept_truncated = true;
    });
    assert!(summary.failures.is_empty());
    assert_eq!((summary.written, summary.written_truncated), (1, 1));
    assert_eq!(
        lesson(&dir, "M0-L001.md"),
        "# Lesson M0-L001: What is data?\n\nData is recor\n"
    );
}

#[test]
fn content_filter_refusal_and_empty_are_not_retryable() {
    let (dir, summary) = run(Some("content-filter.jsonl"), None);
    only_failure(
        &summary.failures,
        FailureKind::ContentFilter,
        "content_filter",
        false,
    );
    assert!(files(dir.path()).is_empty());

    let (_, summary) = run(Some("refusal.jsonl"), None);
    let failure = only_failure(&summary.failures, FailureKind::Refusal, "refusal", false);
    assert_eq!(
        failure.reason,
        "model refused: I'm sorry, I can't help with that."
    );

    let (_, summary) = run(Some("empty.jsonl"), None);
    only_failure(
        &summary.failures,
        FailureKind::EmptyContent,
        "empty_content",
        false,
    );
}

/// Issue 12: "I'm sorry, but I can't help with that." with `finish_reason: stop` and no
/// `refusal` field is not written as a lesson: it fails `refused_in_text`, its text kept in
/// `rejected/`.
#[test]
fn a_refusal_in_the_text_is_not_a_lesson() {
    let (dir, summary) = run(Some("chat-wrapper.jsonl"), None);
    let failure = only_failure(
        &summary.failures,
        FailureKind::RefusedInText,
        "refused_in_text",
        false,
    );
    assert_eq!(failure.lesson_code.to_string(), "M0-L004");
    assert_eq!(summary.written, 3);
    let written = files(&dir.path().join("out"));
    assert!(!written.contains_key("M0-L004.md"), "{:?}", written.keys());
    assert_eq!(
        written["rejected/M0-L004.md"],
        "I'm sorry, but I can't help with that."
    );
    let json = serde_json::to_value(&summary.failures[0]).unwrap();
    assert_eq!(json["kind"], "refused_in_text");
}

/// No lesson-like text of the repository trips the text-refusal check: every answer of the
/// output fixtures but the one refusal, the prompt templates, and the docs (long texts that
/// say "I can't" or "cannot" in passing). The emulator's placeholder lessons are checked end
/// to end by the commands' tests, where all 336 lessons of the course are written.
#[test]
fn no_lesson_like_text_is_a_refusal_in_text() {
    let root = crate::support::fixture("..");
    let mut checked = 0;
    let dir = crate::support::fixture("batch-output");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let Ok(mut line) = serde_json::from_str::<batch_request::ResultLine>(
                line.trim_start_matches('\u{feff}'),
            ) else {
                continue;
            };
            let refused = matches!(
                lesson_writer::classify(&mut line),
                Ok(lesson_writer::Outcome::Failed(failed)) if failed.kind == FailureKind::RefusedInText
            );
            let is_the_refusal =
                path.ends_with("chat-wrapper.jsonl") && line.custom_id == "lesson_M0-L004";
            assert_eq!(
                refused,
                is_the_refusal,
                "{} {}",
                path.display(),
                line.custom_id
            );
            checked += 1;
        }
    }
    for doc in [
        "fixtures/legacy/lesson_prompt_template.md",
        "prompts/LESSON_GENERATION_PROMPT_GENERIC.md",
        "README.md",
        "ARCHITECTURE.md",
    ] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let mut line: batch_request::ResultLine =
            serde_json::from_str(&answer_line("lesson_M0-L001", &text)).unwrap();
        assert!(
            matches!(
                lesson_writer::classify(&mut line),
                Ok(lesson_writer::Outcome::Answer(_))
            ),
            "{doc}"
        );
        checked += 1;
    }
    assert!(checked > 30, "{checked}");
}

#[test]
fn http_400_is_an_invalid_request() {
    let (_, summary) = run(None, Some("http-400.jsonl"));
    let failure = only_failure(
        &summary.failures,
        FailureKind::InvalidRequest,
        "unsupported_value",
        false,
    );
    assert_eq!(failure.status, Some(400));
    assert_eq!(failure.custom_id, "lesson_M0-L002");
    assert_eq!(
        failure.reason,
        "HTTP 400: Unsupported value: 'temperature' does not support 0 with this model. Only the default (1) value is supported. (param `temperature`)"
    );
}

#[test]
fn http_500_is_a_retryable_server_error() {
    let (_, summary) = run(None, Some("http-500.jsonl"));
    let failure = only_failure(
        &summary.failures,
        FailureKind::ServerError,
        "server_error",
        true,
    );
    assert_eq!(failure.status, Some(500));
    assert!(
        failure
            .reason
            .starts_with("HTTP 500: The server had an error")
    );
}

#[test]
fn batch_expired_is_retryable() {
    let (_, summary) = run(None, Some("batch-expired.jsonl"));
    let failure = only_failure(
        &summary.failures,
        FailureKind::Expired,
        "batch_expired",
        true,
    );
    assert_eq!(failure.status, None);
    assert_eq!(failure.location.line, 1);
    assert!(
        failure
            .location
            .file
            .ends_with("batch-errors/batch-expired.jsonl")
    );
}

#[test]
fn output_and_error_files_are_joined_by_custom_id() {
    let expected: BTreeSet<LessonCode> = (1..=8).map(|n| LessonCode::new(0, n)).collect();
    let (dir, summary) = run_with(Some("success.jsonl"), Some("mixed.jsonl"), |config| {
        config.expected = Some(expected);
    });
    assert_eq!(summary.lines_read, 7);
    assert_eq!(summary.written, 1);
    assert!(dir.path().join("out/M0-L001.md").is_file());
    // The error file's line for M0-L001 comes after the output file's success.
    assert_eq!(summary.duplicates.len(), 1);
    assert_eq!(summary.duplicates[0].location.line, 6);
    assert_eq!(summary.duplicates[0].kept.line, 1);
    let kinds: Vec<(String, FailureKind, bool)> = summary
        .failures
        .iter()
        .map(|failure| {
            (
                failure.lesson_code.to_string(),
                failure.kind,
                failure.retryable,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("M0-L002".to_owned(), FailureKind::InvalidRequest, false),
            ("M0-L003".to_owned(), FailureKind::ServerError, true),
            ("M0-L004".to_owned(), FailureKind::RateLimited, true),
            ("M0-L005".to_owned(), FailureKind::Expired, true),
            ("M0-L006".to_owned(), FailureKind::Cancelled, true),
        ]
    );
    assert_eq!(summary.retryable().count(), 4);
    assert_eq!(
        summary.missing,
        [LessonCode::new(0, 7), LessonCode::new(0, 8)]
    );
    assert!(summary.unexpected.is_empty());
    // One outcome per expected lesson, and the counts add up.
    let counts = summary.counts();
    assert_eq!(counts.requested, 8);
    assert_eq!(
        counts.written + counts.unchanged + counts.kept + counts.failed + counts.missing,
        counts.requested
    );
    assert_eq!((counts.written, counts.failed, counts.missing), (1, 5, 2));

    let mut jsonl = Vec::new();
    write_failures_jsonl(&summary, &mut jsonl).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[3],
        serde_json::json!({
            "custom_id": "lesson_M0-L005",
            "lesson_code": "M0-L005",
            "kind": "expired",
            "code": "batch_expired",
            "reason": "request did not run (batch_expired): This request could not be executed before the completion window expired.; resubmit it in a new batch",
            "retryable": true,
        })
    );
}

#[test]
fn a_success_in_the_error_file_order_replaces_an_earlier_failure() {
    // Error file first: its expired line is superseded by the later success.
    let dir = tempfile::tempdir().unwrap();
    let curriculum = crate::support::curriculum();
    let mut config = lesson_writer::ProcessConfig::new(dir.path().join("out"));
    config.curriculum = Some(&curriculum);
    let errors =
        std::fs::read_to_string(crate::support::fixture("batch-errors/mixed.jsonl")).unwrap();
    let output =
        std::fs::read_to_string(crate::support::fixture("batch-output/success.jsonl")).unwrap();
    let inputs = vec![
        lesson_writer::Input::new("errors.jsonl", errors.as_bytes()),
        lesson_writer::Input::new("output.jsonl", output.as_bytes()),
    ];
    let summary = lesson_writer::process_inputs(inputs, &config).unwrap();
    assert_eq!(summary.written, 1);
    assert!(
        summary
            .failures
            .iter()
            .all(|failure| failure.lesson_code != LessonCode::new(0, 1))
    );
    assert_eq!(summary.duplicates.len(), 1);
    assert_eq!(summary.duplicates[0].location.to_string(), "errors.jsonl:6");
    assert_eq!(summary.duplicates[0].kept.to_string(), "output.jsonl:1");
}

#[test]
fn summary_serializes_to_json() {
    let (_, summary) = run(Some("success.jsonl"), Some("batch-expired.jsonl"));
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["written"], 1);
    assert_eq!(json["failures"][0]["kind"], "expired");
    assert_eq!(json["failures"][0]["retryable"], true);
    assert_eq!(json["usage"]["prompt_tokens"], 812);
}

/// An output line for `custom_id` whose answer is `text`.
fn answer_line(custom_id: &str, text: &str) -> String {
    let text = serde_json::to_string(text).unwrap();
    format!(
        r#"{{"custom_id":"{custom_id}","response":{{"status_code":200,"body":{{"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":{text}}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}}}}}}}}"#
    ) + "\n"
}

#[test]
fn expected_and_seen_lessons_compare_as_codes_whatever_the_id_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let lines = answer_line("M0-L001", "# Lesson M0-L001: One\n\nBody one.\n")
        + &answer_line("lesson_M00-L002", "# Lesson M0-L002: Two\n\nBody two.\n");
    let mut config = lesson_writer::ProcessConfig::new(dir.path());
    config.expected = Some([LessonCode::new(0, 1), LessonCode::new(0, 2)].into());
    let inputs = vec![lesson_writer::Input::new("output.jsonl", lines.as_bytes())];
    let summary = lesson_writer::process_inputs(inputs, &config).unwrap();
    assert_eq!(summary.written, 2);
    assert!(summary.missing.is_empty(), "{:?}", summary.missing);
    assert!(summary.unexpected.is_empty());
    assert_eq!(summary.counts().requested, 2);
}

#[test]
fn only_expected_lessons_are_written_and_headings_come_from_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let lines = answer_line("lesson_M0-L001", "Body about the old title.\n")
        + &answer_line(
            "lesson_M9-L001",
            "# Lesson M9-L001: Other course\n\nBody.\n",
        );
    let requests = std::collections::BTreeMap::from([(
        LessonCode::new(0, 1),
        lesson_writer::RequestedLesson {
            title: "Old title".to_owned(),
            request_sha256: "ab".repeat(32),
        },
    )]);
    let curriculum = crate::support::curriculum();
    let mut config = lesson_writer::ProcessConfig::new(dir.path());
    config.expected = Some([LessonCode::new(0, 1)].into());
    config.accept = config.expected.clone();
    config.requests = Some(&requests);
    config.curriculum = Some(&curriculum);
    let inputs =
        vec![lesson_writer::Input::new("output.jsonl", lines.as_bytes()).from_batch("batch_7")];
    let summary = lesson_writer::process_inputs(inputs, &config).unwrap();
    assert_eq!(summary.written, 1);
    assert_eq!(summary.unexpected, [LessonCode::new(9, 1)]);
    assert!(!dir.path().join("M9-L001.md").exists());
    let text = std::fs::read_to_string(dir.path().join("M0-L001.md")).unwrap();
    assert!(text.starts_with("# Lesson M0-L001: Old title\n"), "{text}");
    // The manifest entry records the request, the file and the batch.
    let [(code, entry)] = summary.provenance.as_slice() else {
        panic!("{:?}", summary.provenance)
    };
    assert_eq!(*code, LessonCode::new(0, 1));
    assert_eq!(
        entry.request_sha256.as_deref(),
        Some("ab".repeat(32).as_str())
    );
    assert_eq!(
        entry.file_sha256,
        lesson_writer::sha256_hex(text.as_bytes())
    );
    assert_eq!(entry.batch_id.as_deref(), Some("batch_7"));
    assert_eq!(entry.usage.unwrap().completion_tokens, 20);
    assert!(entry.cost_usd.unwrap() > 0.0);
    assert_eq!(summary.counts().requested, 1);
}
