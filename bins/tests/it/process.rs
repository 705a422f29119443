//! `process-batch-results` on the output and error fixtures.

use std::path::PathBuf;

use crate::{code, command, lesson_files, repo, run, stderr, success_results_in};

fn fixture(path: &str) -> PathBuf {
    repo().join("fixtures").join(path)
}

#[tokio::test]
async fn writes_successes_and_lists_failures_with_retryable_flags() {
    let dir = tempfile::tempdir().unwrap();
    let results = success_results_in(dir.path());
    let mut cmd = command("process", dir.path());
    // The fixture's answer is a 22-word stub, below the quality gate's bar.
    cmd.arg(&results)
        .arg("--errors")
        .arg(fixture("batch-errors/mixed.jsonl"))
        .args(["--out", "lessons", "--json", "--accept-below-spec"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert_eq!(lesson_files(&dir.path().join("lessons")), ["M0-L001.md"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["written"], 1);
    let failed = report["failed"].as_array().unwrap();
    let by_code = |code: &str| {
        failed
            .iter()
            .find(|f| f["lesson_code"] == code)
            .unwrap_or_else(|| panic!("{code} not in {failed:?}"))
    };
    assert_eq!(by_code("M0-L002")["retryable"], false);
    assert_eq!(by_code("M0-L003")["retryable"], true);
    assert_eq!(by_code("M0-L004")["retryable"], true);
    assert_eq!(by_code("M0-L005")["code"], "batch_expired");
    assert_eq!(by_code("M0-L006")["code"], "batch_cancelled");
    assert!(
        failed.iter().all(|f| f["lesson_code"] != "M0-L001"),
        "the success was overridden"
    );
    let failures =
        std::fs::read_to_string(dir.path().join("results.jsonl.failures.jsonl")).unwrap();
    assert_eq!(failures.lines().count(), failed.len());

    // A second run writes nothing and keeps the lesson.
    let mut again = command("process", dir.path());
    again
        .arg(&results)
        .args(["--out", "lessons", "--json", "--accept-below-spec"]);
    let output = run(again).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["written"], 0);
}

#[tokio::test]
async fn content_gives_titles_and_reports_missing_lessons() {
    let dir = tempfile::tempdir().unwrap();
    let outline = dir.path().join("outline.md");
    std::fs::write(
        &outline,
        "# M0: Basics\n## L001: What Is Data Governance? [F]\n## L002: Missing One [I]\n",
    )
    .unwrap();
    let results = success_results_in(dir.path());
    let mut cmd = command("process", dir.path());
    cmd.arg(&results)
        .arg("lessons-map.json")
        .arg("--content")
        .arg(&outline)
        .args([
            "--out",
            "lessons",
            "--file-name",
            "{code}-{slug}.md",
            "--json",
            // The fixture's answer is a 22-word stub, below the quality gate's bar.
            "--accept-below-spec",
        ]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("lessons map"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        lesson_files(&dir.path().join("lessons")),
        ["M0-L001-what-is-data-governance.md"]
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["failed"].as_array().unwrap().len(), 0);
    assert_eq!(report["missing"], serde_json::json!(["M0-L002"]));
    assert_eq!(report["requested"], 2);
    let failures =
        std::fs::read_to_string(dir.path().join("results.jsonl.failures.jsonl")).unwrap();
    assert!(failures.contains(r#""code":"missing""#), "{failures}");
}

#[tokio::test]
async fn a_missing_results_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("process", dir.path());
    cmd.arg("nope.jsonl");
    let output = run(cmd).await;
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("nope.jsonl"));
}

/// A lesson body of some 240 words, above the quality gate's default bar.
fn long_body() -> String {
    "Data is a set of recorded facts that a team keeps, checks and uses to decide. "
        .repeat(15)
        .trim_end()
        .to_owned()
}

/// An output line for `code` whose answer is `content`, finished with `stop`, no `refusal`.
fn answer_line(code: &str, content: &str) -> String {
    let content = serde_json::to_string(content).unwrap();
    format!(
        r#"{{"id":"batch_req_{code}","custom_id":"lesson_{code}","response":{{"status_code":200,"body":{{"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":{content},"refusal":null}},"finish_reason":"stop"}}]}}}},"error":null}}"#
    ) + "\n"
}

/// Runs `process-batch-results --out lessons --json` on `results` (written into a temp dir)
/// with extra `args`; returns the dir, the exit code and the JSON report.
async fn process_results(
    results: &[u8],
    args: &[&str],
) -> (tempfile::TempDir, i32, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("outline.md"),
        "# M0: Basics\n## L001: What is data? [F]\n## L002: Kinds of data [F]\n## L003: Keys [F]\n## L004: Risky topic [F]\n",
    )
    .unwrap();
    let path = dir.path().join("results.jsonl");
    std::fs::write(&path, results).unwrap();
    let mut cmd = command("process", dir.path());
    cmd.arg(&path)
        .args(["--out", "lessons", "--json"])
        .args(args);
    let output = run(cmd).await;
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", stderr(&output)));
    (dir, code(&output), report)
}

/// Issue 12: "Sure! Here is the lesson..." + an outer ```markdown fence + "Let me know if you
/// want any changes!" is written as the bare lesson.
#[tokio::test]
async fn a_chat_wrapper_comes_out_as_the_bare_lesson() {
    let body = long_body();
    let answer = format!(
        "Sure! Here is the lesson you asked for.\n\n```markdown\n# Lesson M0-L001: What is data?\n\n{body}\n\n```sql\nSELECT 1;\n```\n```\n\nLet me know if you want any changes!"
    );
    let (dir, code, report) = process_results(
        answer_line("M0-L001", &answer).as_bytes(),
        &["--content", "outline.md"],
    )
    .await;
    assert_eq!(report["written"], 1, "{report}");
    assert_eq!(code, 3, "the other lessons of the outline are missing");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lessons/M0-L001.md")).unwrap(),
        format!(
            "# Lesson M0-L001: What is data?\n\n{}\n\n```sql\nSELECT 1;\n```\n",
            body
        )
    );
}

/// Issue 12: "I'm sorry, but I can't help with that." (finish_reason `stop`, no `refusal`)
/// is not written as M0-L004.md: it fails `refused_in_text`, exit 3.
#[tokio::test]
async fn a_refusal_in_the_text_fails_and_is_not_written() {
    let results = answer_line(
        "M0-L001",
        &format!("# Lesson M0-L001: What is data?\n\n{}", long_body()),
    ) + &answer_line("M0-L004", "I'm sorry, but I can't help with that.");
    let (dir, code, report) = process_results(results.as_bytes(), &[]).await;
    assert_eq!(code, 3, "{report}");
    assert_eq!(lesson_files(&dir.path().join("lessons")), ["M0-L001.md"]);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["lesson_code"], "M0-L004");
    assert_eq!(failed[0]["kind"], "refused_in_text");
    assert_eq!(failed[0]["code"], "refused_in_text");
    assert_eq!(failed[0]["retryable"], false);
    let rejected = failed[0]["rejected_file"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join(rejected)).unwrap(),
        "I'm sorry, but I can't help with that."
    );
}

/// Issue 12: a UTF-8 byte order mark at the start of a results file does not lose line 1.
#[tokio::test]
async fn a_byte_order_mark_at_the_start_of_the_results_file_keeps_line_1() {
    let body = long_body();
    let mut results = b"\xef\xbb\xbf".to_vec();
    results.extend(
        answer_line(
            "M0-L001",
            &format!("# Lesson M0-L001: What is data?\n\n{body}"),
        )
        .bytes(),
    );
    results.extend(
        answer_line(
            "M0-L002",
            &format!("# Lesson M0-L002: Kinds of data\n\n{body}"),
        )
        .bytes(),
    );
    let (dir, code, report) = process_results(&results, &[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["written"], 2);
    assert_eq!(
        report["malformed"].as_array().map_or(0, Vec::len),
        0,
        "{report}"
    );
    assert_eq!(
        lesson_files(&dir.path().join("lessons")),
        ["M0-L001.md", "M0-L002.md"]
    );
}

/// Issue 12: without --content the lesson heading is still ensured: the code from the
/// custom_id, the title from the answer's own heading, else the code alone.
#[tokio::test]
async fn without_content_the_heading_is_still_ensured() {
    let body = long_body();
    let results = answer_line(
        "M0-L002",
        &format!("## Section 1: Why kinds matter\n\n{body}"),
    ) + &answer_line("M0-L003", &format!("# Lesson 3 - Keys\n\n{body}"));
    let (dir, code, report) = process_results(results.as_bytes(), &[]).await;
    assert_eq!(code, 0, "{report}");
    let read = |name: &str| std::fs::read_to_string(dir.path().join("lessons").join(name)).unwrap();
    assert_eq!(
        read("M0-L002.md"),
        format!(
            "# Lesson M0-L002\n\n## Section 1: Why kinds matter\n\n{}\n",
            body
        )
    );
    assert_eq!(
        read("M0-L003.md"),
        format!("# Lesson M0-L003: Keys\n\n{}\n", body)
    );
}
