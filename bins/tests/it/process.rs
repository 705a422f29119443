//! `process-batch-results` on the output and error fixtures.

use std::path::PathBuf;

use crate::{code, command, lesson_files, repo, run, stderr};

fn fixture(path: &str) -> PathBuf {
    repo().join("fixtures").join(path)
}

#[tokio::test]
async fn writes_successes_and_lists_failures_with_retryable_flags() {
    let dir = tempfile::tempdir().unwrap();
    // Copy the results so the failures file lands in the tempdir, beside them.
    let results = dir.path().join("results.jsonl");
    std::fs::copy(fixture("batch-output/success.jsonl"), &results).unwrap();
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
    // Copy the results so the failures file lands in the tempdir, beside them.
    let results = dir.path().join("results.jsonl");
    std::fs::copy(fixture("batch-output/success.jsonl"), &results).unwrap();
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
