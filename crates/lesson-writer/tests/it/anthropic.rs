//! Anthropic Message Batches result lines (issue 14): every row of `anthropic.rs`'s mapping
//! table gives its outcome or failure kind, usage and cost reach the summary, thinking blocks
//! are left out, and a file may mix both providers' lines.

use std::fs;
use std::path::Path;

use curriculum_parser::LessonCode;
use lesson_writer::{FailureKind, LessonOutcome, MalformedReason, ProcessConfig, Summary, process};
use tempfile::TempDir;

use crate::support::{curriculum, fixture, lesson};

/// A `succeeded` line for `custom_id` with these content blocks (JSON), stop reason and usage.
fn succeeded(custom_id: &str, content: &str, stop_reason: &str, usage: &str) -> String {
    format!(
        r#"{{"custom_id": "{custom_id}", "result": {{"type": "succeeded", "message": {{"model": "claude-sonnet-4-5-20250929", "id": "msg_01", "type": "message", "role": "assistant", "content": {content}, "stop_reason": {stop_reason}, "stop_sequence": null, "usage": {usage}}}}}}}"#
    )
}

/// A `succeeded` line with one text block and a small usage.
fn answered(custom_id: &str, text: &str, stop_reason: &str) -> String {
    let content = format!(
        r#"[{{"type": "text", "text": {}}}]"#,
        serde_json::to_string(text).unwrap()
    );
    succeeded(
        custom_id,
        &content,
        &format!("\"{stop_reason}\""),
        r#"{"input_tokens": 10, "output_tokens": 20}"#,
    )
}

/// An `errored` line of this error type.
fn errored(custom_id: &str, error_type: &str) -> String {
    format!(
        r#"{{"custom_id": "{custom_id}", "result": {{"type": "errored", "error": {{"type": "error", "error": {{"type": "{error_type}", "message": "went wrong: {error_type}"}}, "request_id": "req_01"}}}}}}"#
    )
}

/// A `canceled` or `expired` line.
fn not_run(custom_id: &str, result_type: &str) -> String {
    format!(r#"{{"custom_id": "{custom_id}", "result": {{"type": "{result_type}"}}}}"#)
}

/// Writes `lines` as a results file and processes it into `<dir>/out`.
fn run_lines(lines: &[String], adjust: impl FnOnce(&mut ProcessConfig<'_>)) -> (TempDir, Summary) {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    fs::write(&results, lines.join("\n") + "\n").unwrap();
    let summary = run_file(dir.path(), &results, adjust);
    (dir, summary)
}

fn run_file(dir: &Path, results: &Path, adjust: impl FnOnce(&mut ProcessConfig<'_>)) -> Summary {
    let curriculum = curriculum();
    let mut config = ProcessConfig::new(dir.join("out"));
    config.curriculum = Some(&curriculum);
    adjust(&mut config);
    process(Some(results), None, &config).unwrap()
}

fn code(text: &str) -> LessonCode {
    text.parse().unwrap()
}

#[test]
fn every_row_of_the_mapping_table() {
    // custom_id, line, failure kind (None: a lesson), code, retryable.
    let rows: Vec<(String, Option<FailureKind>, &str, bool)> = vec![
        (
            answered("lesson_M0-L001", "Data is recorded facts.", "end_turn"),
            None,
            "",
            false,
        ),
        (
            answered("lesson_M0-L002", "Kinds of data abound.", "stop_sequence"),
            None,
            "",
            false,
        ),
        (
            answered("lesson_M0-L003", "Data quality is", "max_tokens"),
            Some(FailureKind::Truncated),
            "length",
            true,
        ),
        (
            answered(
                "lesson_M0-L004",
                "Stewards keep",
                "model_context_window_exceeded",
            ),
            Some(FailureKind::Truncated),
            "length",
            true,
        ),
        (
            answered("lesson_M0-L005", "I can't write that.", "refusal"),
            Some(FailureKind::Refusal),
            "refusal",
            false,
        ),
        (
            answered("lesson_M0-L006", "Let me look that up.", "tool_use"),
            Some(FailureKind::UnexpectedFinish),
            "tool_calls",
            false,
        ),
    ];
    let lines: Vec<String> = rows.iter().map(|(line, ..)| line.clone()).collect();
    let (dir, summary) = run_lines(&lines, |_| {});
    assert_eq!(summary.lines_read, 6);
    assert!(summary.malformed.is_empty(), "{:#?}", summary.malformed);
    assert_eq!(
        lesson(&dir, "M0-L001.md"),
        "# Lesson M0-L001: What is data?\n\nData is recorded facts.\n"
    );
    assert_eq!(
        lesson(&dir, "M0-L002.md"),
        "# Lesson M0-L002: Kinds of data\n\nKinds of data abound.\n"
    );
    for (number, (_, kind, failure_code, retryable)) in rows.iter().enumerate() {
        let lesson_code = LessonCode::new(0, number as u32 + 1);
        let outcome = summary.outcomes[&lesson_code];
        let Some(kind) = kind else {
            assert_eq!(outcome, LessonOutcome::Written, "{lesson_code}");
            continue;
        };
        assert_eq!(
            outcome,
            LessonOutcome::Failed { kind: *kind },
            "{lesson_code}"
        );
        let failure = summary
            .failures
            .iter()
            .find(|failure| failure.lesson_code == lesson_code)
            .unwrap();
        assert_eq!(
            (failure.code.as_str(), failure.retryable, failure.status),
            (*failure_code, *retryable, Some(200)),
            "{failure:#?}"
        );
    }
    // A refusal's own text is its reason; a cut-off answer is kept in rejected/.
    let refusal = &summary
        .failures
        .iter()
        .find(|f| f.code == "refusal")
        .unwrap();
    assert_eq!(refusal.reason, "model refused: I can't write that.");
    assert_eq!(lesson(&dir, "rejected/M0-L003.md"), "Data quality is");
}

#[test]
fn a_refusal_without_text_is_still_a_refusal() {
    let line = succeeded(
        "lesson_M0-L001",
        "[]",
        "\"refusal\"",
        r#"{"input_tokens": 10, "output_tokens": 0}"#,
    );
    let (_, summary) = run_lines(&[line], |_| {});
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(summary.failures[0].kind, FailureKind::Refusal);
    assert_eq!(
        summary.failures[0].reason,
        "model refused: the model refused (stop_reason: refusal)"
    );
}

#[test]
fn errored_canceled_and_expired_lines() {
    // error type, failure kind, HTTP status read, code, retryable.
    let rows = [
        (
            "invalid_request_error",
            FailureKind::InvalidRequest,
            400,
            "invalid_request_error",
            false,
        ),
        (
            "authentication_error",
            FailureKind::InvalidRequest,
            401,
            "authentication_error",
            false,
        ),
        (
            "permission_error",
            FailureKind::InvalidRequest,
            403,
            "permission_error",
            false,
        ),
        (
            "not_found_error",
            FailureKind::InvalidRequest,
            404,
            "not_found_error",
            false,
        ),
        (
            "request_too_large",
            FailureKind::InvalidRequest,
            413,
            "request_too_large",
            false,
        ),
        (
            "billing_error",
            FailureKind::QuotaExceeded,
            429,
            "insufficient_quota",
            false,
        ),
        (
            "rate_limit_error",
            FailureKind::RateLimited,
            429,
            "rate_limit_error",
            true,
        ),
        (
            "api_error",
            FailureKind::ServerError,
            500,
            "api_error",
            true,
        ),
        (
            "overloaded_error",
            FailureKind::ServerError,
            529,
            "overloaded_error",
            true,
        ),
        (
            "timeout_error",
            FailureKind::ServerError,
            504,
            "timeout_error",
            true,
        ),
    ];
    for (error_type, kind, status, failure_code, retryable) in rows {
        let (dir, summary) = run_lines(&[errored("lesson_M0-L002", error_type)], |_| {});
        assert_eq!(summary.failures.len(), 1, "{error_type}: {summary:#?}");
        let failure = &summary.failures[0];
        assert_eq!(
            (
                failure.kind,
                failure.status,
                failure.code.as_str(),
                failure.retryable
            ),
            (kind, Some(status), failure_code, retryable),
            "{error_type}"
        );
        assert_eq!(failure.custom_id, "lesson_M0-L002");
        assert_eq!(
            failure.reason,
            format!("HTTP {status}: went wrong: {error_type}")
        );
        assert!(!dir.path().join("out/M0-L002.md").exists());
        assert_eq!(summary.usage.requests, 0);
    }
    for (result_type, kind, failure_code) in [
        ("canceled", FailureKind::Cancelled, "batch_cancelled"),
        ("expired", FailureKind::Expired, "batch_expired"),
    ] {
        let (_, summary) = run_lines(&[not_run("lesson_M0-L003", result_type)], |_| {});
        assert_eq!(summary.failures.len(), 1, "{result_type}");
        let failure = &summary.failures[0];
        assert_eq!(
            (
                failure.kind,
                failure.code.as_str(),
                failure.retryable,
                failure.status
            ),
            (kind, failure_code, true, None),
            "{result_type}"
        );
        assert_eq!(
            summary.outcomes[&code("M0-L003")],
            LessonOutcome::Failed { kind }
        );
    }
}

#[test]
fn usage_with_the_cache_reaches_the_summary_and_its_cost() {
    let first = succeeded(
        "lesson_M0-L001",
        r#"[{"type": "text", "text": "Data is recorded facts."}]"#,
        "\"end_turn\"",
        r#"{"input_tokens": 100, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 0, "output_tokens": 700, "service_tier": "batch"}"#,
    );
    let second = succeeded(
        "lesson_M0-L002",
        r#"[{"type": "text", "text": "Kinds of data abound."}]"#,
        "\"end_turn\"",
        r#"{"input_tokens": 120, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2000, "output_tokens": 800, "service_tier": "batch"}"#,
    );
    let (_, summary) = run_lines(&[first, second], |_| {});
    assert_eq!(summary.written, 2);
    // Prompt tokens: input + cache writes + cache reads; cached: the reads.
    assert_eq!(summary.usage.requests, 2);
    assert_eq!(summary.usage.prompt_tokens, 100 + 2000 + 120 + 2000);
    assert_eq!(summary.usage.cached_tokens, 2000);
    assert_eq!(summary.usage.completion_tokens, 1500);
    let model = &summary.models["claude-sonnet-4-5-20250929"];
    assert_eq!(model.usage.prompt_tokens, 4220);
    // claude-sonnet-4-5 in Message Batches: $1.50 input, $0.15 cache reads, $7.50 output
    // per 1M tokens (cache writes billed as plain input).
    let expected = (2220.0 * 1.50 + 2000.0 * 0.15 + 1500.0 * 7.50) / 1e6;
    assert!(
        (summary.cost_usd.unwrap() - expected).abs() < 1e-12,
        "{:?} != {expected}",
        summary.cost_usd
    );
    assert!((model.cost_usd.unwrap() - expected).abs() < 1e-12);
    assert!(summary.unpriced_models.is_empty());
    // The manifest entry of each lesson carries its own usage and cost.
    let (_, entry) = summary
        .provenance
        .iter()
        .find(|(lesson_code, _)| *lesson_code == code("M0-L002"))
        .unwrap();
    let usage = entry.usage.as_ref().unwrap();
    assert_eq!((usage.prompt_tokens, usage.cached_tokens), (2120, 2000));
    let cost = (120.0 * 1.50 + 2000.0 * 0.15 + 800.0 * 7.50) / 1e6;
    assert!((entry.cost_usd.unwrap() - cost).abs() < 1e-12);
}

#[test]
fn thinking_is_left_out_and_text_blocks_are_joined() {
    let content = r###"[
        {"type": "thinking", "thinking": "The user wants a lesson. I will plan it.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "## Why it matters\n\nData is "},
        {"type": "text", "text": "recorded facts.", "citations": []},
        {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {}},
        {"type": "text", "text": "\n\nKeep it."}
    ]"###
    .replace('\n', "");
    let line = succeeded(
        "lesson_M0-L001",
        &content,
        "\"end_turn\"",
        r#"{"input_tokens": 10, "output_tokens": 90}"#,
    );
    let (dir, summary) = run_lines(&[line], |_| {});
    assert!(summary.is_clean(), "{summary:#?}");
    assert_eq!(
        lesson(&dir, "M0-L001.md"),
        "# Lesson M0-L001: What is data?\n\n## Why it matters\n\nData is recorded facts.\n\nKeep it.\n"
    );
}

#[test]
fn a_file_may_mix_both_providers_lines() {
    let dir = tempfile::tempdir().unwrap();
    let openai = fs::read_to_string(fixture("batch-output/success.jsonl")).unwrap();
    assert!(openai.contains("lesson_M0-L001"), "{openai}");
    let lines = [
        openai.trim_end().to_owned(),
        answered("lesson_M0-L002", "Kinds of data abound.", "end_turn"),
        errored("lesson_M0-L003", "overloaded_error"),
        not_run("lesson_M0-L004", "expired"),
    ];
    let results = dir.path().join("mixed.jsonl");
    fs::write(&results, lines.join("\n") + "\n").unwrap();
    let summary = run_file(dir.path(), &results, |_| {});
    assert_eq!(summary.lines_read, 4);
    assert!(summary.malformed.is_empty(), "{:#?}", summary.malformed);
    assert_eq!(summary.written, 2);
    let kinds: Vec<(String, FailureKind)> = summary
        .failures
        .iter()
        .map(|failure| (failure.lesson_code.to_string(), failure.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("M0-L003".to_owned(), FailureKind::ServerError),
            ("M0-L004".to_owned(), FailureKind::Expired)
        ]
    );
    // Both models' usage is counted, each at its own prices.
    assert_eq!(summary.usage.requests, 2);
    assert_eq!(
        summary.models.keys().collect::<Vec<_>>(),
        ["claude-sonnet-4-5-20250929", "gpt-4o-mini-2024-07-18"]
    );
    let claude = (10.0 * 1.50 + 20.0 * 7.50) / 1e6;
    let gpt = (812.0 * 0.075 + 1650.0 * 0.30) / 1e6;
    assert!((summary.cost_usd.unwrap() - (claude + gpt)).abs() < 1e-12);
}

#[test]
fn the_reference_lines_are_read() {
    // The reference doc's four lines, byte for byte: their custom_ids ("a" to "d") are no
    // lesson codes, so each is reported as such, never used as a path.
    let dir = tempfile::tempdir().unwrap();
    let summary = run_file(
        dir.path(),
        &fixture("anthropic-results/reference.jsonl"),
        |_| {},
    );
    assert_eq!(summary.lines_read, 4);
    let ids: Vec<&MalformedReason> = summary
        .malformed
        .iter()
        .map(|malformed| &malformed.reason)
        .collect();
    assert_eq!(
        ids,
        ["a", "b", "c", "d"]
            .map(|id| MalformedReason::InvalidCustomId {
                custom_id: id.to_owned()
            })
            .iter()
            .collect::<Vec<_>>()
    );
    assert!(!dir.path().join("out").join("a").exists());
}

#[test]
fn an_anthropic_line_of_an_unknown_shape_is_malformed() {
    // A `result` whose message lacks its content: not read as a lesson, reported.
    let line = r#"{"custom_id": "lesson_M0-L001", "result": {"type": "succeeded", "message": {"id": "msg_01", "model": "claude-sonnet-4-5"}}}"#;
    let (_, summary) = run_lines(&[line.to_owned()], |_| {});
    assert_eq!(summary.written, 0);
    assert_eq!(summary.malformed.len(), 1, "{summary:#?}");
    let MalformedReason::UnexpectedShape { message } = &summary.malformed[0].reason else {
        panic!("{:#?}", summary.malformed);
    };
    assert!(
        message
            .starts_with("an Anthropic result line of an unknown shape: missing field `content`"),
        "{message}"
    );
}
