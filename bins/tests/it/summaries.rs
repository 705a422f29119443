//! Issue 13: summaries grouped by reason, cost everywhere, `check-batch-status --list` and
//! `--emulator`, and the numbers' formatting, as the user sees them.

use std::path::Path;
use std::process::Command;

use batch_emulator::EmulatorConfig;
use cli::report::{Billing, outcome_lines};
use curriculum_parser::LessonCode;
use lesson_job::{FailedLesson, FailureKind, JobReport, KeptLesson, KeptReason};

use crate::{
    as_pairs, code, command, datagov, emulator, generate_into, generate_on, regex_escape, repo,
    run, stderr, stdout,
};

/// Redacts what changes from run to run: temp dirs, ports, batch and file ids, dates and
/// times, durations.
fn filters(dir: &Path) -> Vec<(String, String)> {
    let mut filters = Vec::new();
    // The temp dir as the program sees it (macOS resolves /var to /private/var).
    for dir in [dir.to_path_buf(), dir.canonicalize().unwrap()] {
        filters.push((regex_escape(&dir.display().to_string()), "[DIR]".to_owned()));
    }
    filters.extend([
        (r"127\.0\.0\.1:\d+".to_owned(), "[HOST]".to_owned()),
        (r"batch_[A-Za-z0-9]{8,}".to_owned(), "[BATCH]".to_owned()),
        (r"file-[A-Za-z0-9]+".to_owned(), "[FILE]".to_owned()),
        (
            r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?( [A-Z+0-9:-]+)?".to_owned(),
            "[TIME]".to_owned(),
        ),
        (r"\d+h \d\dm \d\ds".to_owned(), "[DURATION]".to_owned()),
        (r"-[0-9a-f]{8}/".to_owned(), "-[JOB]/".to_owned()),
    ]);
    filters
}

fn lesson(code: &str) -> LessonCode {
    code.parse().unwrap()
}

fn failed(code: &str, kind: FailureKind, error_code: &str, reason: &str) -> FailedLesson {
    FailedLesson {
        custom_id: format!("lesson_{code}"),
        lesson_code: lesson(code),
        kind: Some(kind),
        code: error_code.to_owned(),
        reason: reason.to_owned(),
        retryable: kind.retryable(),
        rejected_file: None,
    }
}

/// Codes `M<module>-L001` to `M<module>-L<n>`.
fn codes(module: u32, n: u32) -> impl Iterator<Item = String> {
    (1..=n).map(move |l| format!("M{module}-L{l:03}"))
}

/// A report with every outcome: written, unchanged, kept (both reasons), failed (several
/// reasons, one of them shared by many), missing and still running.
fn every_outcome() -> JobReport {
    let mut report = JobReport {
        written: 41,
        unchanged: 2,
        requested: 41 + 2 + 3 + 272 + 3 + 2 + 23 + 5,
        requests_sent: 336,
        rounds: 2,
        ..JobReport::default()
    };
    report.kept = ["M0-L001", "M0-L002"]
        .into_iter()
        .map(|code| KeptLesson {
            lesson_code: lesson(code),
            reason: KeptReason::Exists,
            path: format!("lessons/{code}.md").into(),
        })
        .chain(std::iter::once(KeptLesson {
            lesson_code: lesson("M0-L003"),
            reason: KeptReason::EditedByHand,
            path: "lessons/M0-L003.md".into(),
        }))
        .collect();
    // The cancelled batch: modules 2 to 13, 272 lessons in all.
    let cancelled: Vec<String> = (2..=13)
        .flat_map(|module| codes(module, if module == 13 { 8 } else { 24 }))
        .collect();
    assert_eq!(cancelled.len(), 272);
    report.failed = cancelled
        .iter()
        .map(|code| {
            failed(
                code,
                FailureKind::Cancelled,
                "batch_cancelled",
                "request did not run (batch_cancelled): the batch was cancelled; resubmit it",
            )
        })
        .collect();
    report
        .failed
        .extend(["M1-L001", "M1-L002", "M1-L003"].map(|code| {
            failed(
                code,
                FailureKind::InvalidRequest,
                "unsupported_value",
                "HTTP 400: temperature does not support 0 with this model",
            )
        }));
    report.failed.extend(["M1-L004", "M1-L005"].map(|code| {
        failed(
            code,
            FailureKind::Truncated,
            "length",
            "cut off at max_completion_tokens",
        )
    }));
    report.missing = codes(14, 23).map(|code| lesson(&code)).collect();
    report.pending = codes(15, 5).map(|code| lesson(&code)).collect();
    report.usage.requests = 43;
    report.usage.prompt_tokens = 1_234_567;
    report.usage.cached_tokens = 1_024;
    report.usage.completion_tokens = 98_765;
    report.cost_usd.actual = Some(0.0041);
    report.batches = Vec::new();
    report
}

/// Issue 13: every outcome in a summary of at most about 15 lines, failures grouped by reason
/// with counts and code ranges; the 272 lessons of a cancelled batch are one line.
#[test]
fn a_summary_groups_every_outcome_by_reason() {
    let report = every_outcome();
    let lines = outcome_lines(&report, false, Billing::Billed);
    assert!(
        lines.len() <= 15,
        "{} lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.contains("not run (batch cancelled)"))
            .count(),
        1
    );
    insta::assert_snapshot!("summary_every_outcome", lines.join("\n"));

    // -v lists every lesson, one line each.
    let verbose = outcome_lines(&report, true, Billing::Billed);
    assert!(verbose.len() > 272 + 23, "{}", verbose.len());
    assert!(
        verbose
            .iter()
            .any(|line| line.starts_with("  failed M13-L008:"))
    );
}

/// Issue 13: the cost when nothing was downloaded is the estimate, from prices, never
/// "unknown (no price for this model)"; an emulator run says nothing was billed.
#[test]
fn the_cost_line_is_the_estimate_until_results_are_downloaded() {
    let pending = JobReport {
        requested: 23,
        pending: codes(0, 23).map(|code| lesson(&code)).collect(),
        requests_sent: 23,
        rounds: 1,
        cost_usd: lesson_job::CostReport {
            estimated: Some(0.0193),
            actual: None,
        },
        ..JobReport::default()
    };
    let billed = outcome_lines(&pending, false, Billing::Billed).join("\n");
    assert!(!billed.contains("unknown"), "{billed}");
    let emulated = outcome_lines(&pending, false, Billing::Emulator).join("\n");
    let mut downloaded = every_outcome();
    downloaded.pending.clear();
    downloaded.requested -= 5;
    let emulated_downloaded = outcome_lines(&downloaded, false, Billing::Emulator).join("\n");
    insta::assert_snapshot!(
        "cost_lines",
        format!(
            "-- nothing downloaded --\n{billed}\n-- nothing downloaded, emulator --\n{emulated}\n-- downloaded, emulator --\n{emulated_downloaded}"
        )
    );
}

/// A results file of `n_cancelled` lessons of a cancelled batch after `n_done` answers.
fn cancelled_batch_results(dir: &Path, n_done: usize, n_cancelled: usize) -> (String, String) {
    let success = std::fs::read_to_string(repo().join("fixtures/batch-output/success.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let all: Vec<String> = (0..15)
        .flat_map(|module| codes(module, 25).collect::<Vec<_>>())
        .collect();
    let output: String = all[..n_done]
        .iter()
        .map(|code| {
            success
                .replace("lesson_M0-L001", &format!("lesson_{code}"))
                .replace("# Lesson M0-L001", &format!("# Lesson {code}"))
                + "\n"
        })
        .collect();
    let errors: String = all[n_done..n_done + n_cancelled]
        .iter()
        .enumerate()
        .map(|(i, code)| {
            format!(
                r#"{{"id": "batch_req_{i:032}", "custom_id": "lesson_{code}", "response": null, "error": {{"code": "batch_cancelled", "message": "The batch was cancelled before this request executed."}}}}"#
            ) + "\n"
        })
        .collect();
    let output_path = dir.join("batch_abc123_output.jsonl");
    let errors_path = dir.join("batch_abc123_errors.jsonl");
    std::fs::write(&output_path, output).unwrap();
    std::fs::write(&errors_path, errors).unwrap();
    (
        output_path.display().to_string(),
        errors_path.display().to_string(),
    )
}

/// Issue 13: process-batch-results on a cancelled batch's files: 272 failures in one line,
/// the full list in the failures file and with -v.
#[tokio::test]
async fn a_cancelled_batch_is_one_line_per_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (output, errors) = cancelled_batch_results(dir.path(), 3, 272);
    let mut cmd = command("process", dir.path());
    cmd.arg(&output)
        .args(["--errors", &errors])
        .args(["--out", "lessons", "--accept-below-spec"]);
    let result = run(cmd).await;
    assert_eq!(code(&result), 3, "{}", stderr(&result));
    let text = stderr(&result);
    assert!(text.lines().count() <= 15, "{text}");
    let filters = filters(dir.path());
    insta::with_settings!({filters => as_pairs(&filters)}, {
        insta::assert_snapshot!("process_cancelled_batch", text);
    });
    let failures = std::fs::read_to_string(format!("{output}.failures.jsonl")).unwrap();
    assert_eq!(failures.lines().count(), 272);

    let mut verbose = command("process", dir.path());
    verbose.arg(&output).args(["--errors", &errors]).args([
        "--out",
        "lessons",
        "--accept-below-spec",
        "-v",
    ]);
    let result = run(verbose).await;
    assert!(
        stderr(&result)
            .lines()
            .filter(|line| line.starts_with("  failed "))
            .count()
            == 272,
        "{}",
        stderr(&result)
    );
}

/// Issue 13, item 12: an input shard or a directory given as the results file is named for
/// what it is (exit 2), instead of a warning per line or "no such results file".
#[tokio::test]
async fn not_a_results_file_is_named_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("r01_input_001.jsonl");
    std::fs::write(
        &shard,
        "{\"custom_id\":\"lesson_M0-L001\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}}\n"
            .repeat(3),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("results")).unwrap();
    let mut texts = Vec::new();
    for path in ["r01_input_001.jsonl", "results", "nothing-here.jsonl"] {
        let mut cmd = command("process", dir.path());
        cmd.arg(path).args(["--out", "lessons"]);
        let result = run(cmd).await;
        assert_eq!(code(&result), 2, "{}", stderr(&result));
        texts.push(format!(
            "$ process-batch-results {path}\n{}",
            stderr(&result)
        ));
    }
    assert!(!dir.path().join("lessons").exists());
    insta::assert_snapshot!("process_not_a_results_file", texts.join("\n"));
}

/// A `--dry-run` of generate on `limit` lessons in `dir`, `more` flags added; asserts that it
/// succeeds.
fn dry_run(dir: &Path, limit: &str, more: &[&str]) -> std::process::Output {
    let mut cmd = generate_on(dir, &datagov());
    cmd.args(["--out", "lessons", "--work-dir", "work"])
        .args(["--limit", limit, "--dry-run"])
        .args(more);
    let result = cmd.output().unwrap();
    assert_eq!(code(&result), 0, "{}", stderr(&result));
    result
}

/// Issue 13, item 12: --limit 0 says so, instead of "every lesson already has a file".
#[test]
fn limit_zero_says_it_selects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let result = dry_run(dir.path(), "0", &[]);
    let text = stderr(&result);
    assert!(!text.contains("already has a file"), "{text}");
    let last = text.lines().last().unwrap_or_default().to_owned();
    insta::assert_snapshot!("generate_limit_zero", last);
}

/// Issue 13, item 12: one request reads `1 request`, and the estimate's numbers have
/// thousands separators.
#[test]
fn one_request_is_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let result = dry_run(dir.path(), "1", &[]);
    let text = stderr(&result);
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("request") && !line.contains("token limit"))
        .collect();
    assert!(!text.contains("1 requests"), "{text}");
    let filters = [
        (r"\$[0-9.,<]+", "[USD]"),
        (r"\d{1,3}(,\d{3})+|\d{4,}", "[N]"),
        (r"\d+\.\d KB", "[SIZE]"),
        (r"\d+% of", "[P]% of"),
        (r"\S*dry-run\S*\.jsonl", "[SHARD]"),
    ];
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!("generate_one_request", lines.join("\n"));
    });
}

/// Issue 13, item 12: `--dry-run --json` counts the lessons whose requests the shards hold;
/// the estimate reads with separators and plurals.
#[test]
fn a_dry_run_reports_what_its_shards_request() {
    let dir = tempfile::tempdir().unwrap();
    let result = dry_run(dir.path(), "23", &["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    let in_shards: u64 = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|shard| shard["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(in_shards, 23);
    assert_eq!(report["requested"], 23);
    let text = stderr(&result);
    assert!(text.contains("(23 requests, "), "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("Estimate: 23 requests, ") && line.contains(',')),
        "{text}"
    );
}

/// A quick start (`--emulator`) on `limit` lessons into `dir/lessons`, its job in `dir/work`;
/// asserts that it succeeds and returns its stderr.
fn quick_start(dir: &Path, limit: &str, wait: bool) -> String {
    let mut cmd = generate_into(dir, &datagov(), "lessons");
    cmd.args(["--emulator", "--limit", limit]);
    if !wait {
        cmd.arg("--no-wait");
    }
    let output = cmd.output().unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    stderr(&output)
}

fn check_in(dir: &Path) -> Command {
    let mut cmd = command("check", dir);
    cmd.args(["--work-dir", "work"]);
    cmd
}

/// The `  cost:` line of check-batch-status's report `shown`.
fn cost_line(shown: &str) -> &str {
    shown
        .lines()
        .find(|line| line.starts_with("  cost:"))
        .unwrap_or_else(|| panic!("no cost line in:\n{shown}"))
}

/// `insta::assert_snapshot!` of a cost line, its amounts and token counts redacted.
fn assert_cost_snapshot(name: &str, cost: &str) {
    let filters = [
        (r"\$[0-9.<]+", "[USD]"),
        (r"\d[\d,]* (input|output) tokens", "[N] $1 tokens"),
        (r"\(\d[\d,]* cached\)", "([N] cached)"),
    ];
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!(name, cost);
    });
}

/// Issue 13: an emulator run's summary says nothing was billed; check-batch-status
/// --emulator starts the emulator on the state the quick start left and shows the batch, its
/// cost ("nothing billed") and the --list table.
#[tokio::test]
async fn the_quick_starts_batches_can_be_checked_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let summary = quick_start(dir.path(), "2", true);
    // The summary's line, after the estimate's.
    let cost = summary
        .lines()
        .rfind(|line| line.contains("cost at batch prices"))
        .unwrap_or_else(|| panic!("no cost line in:\n{summary}"));
    assert!(cost.ends_with("(emulator: nothing billed)"), "{cost}");
    assert!(!summary.contains("unknown"), "{summary}");

    let mut check = check_in(dir.path());
    check.arg("--emulator");
    let result = run(check).await;
    assert_eq!(code(&result), 0, "{}", stderr(&result));
    let shown = stdout(&result);
    assert!(shown.contains("status:      completed"), "{shown}");
    let cost = cost_line(&shown);
    assert!(
        cost.contains('$') && cost.ends_with("(emulator: nothing billed)"),
        "{cost}"
    );
    assert_cost_snapshot("check_emulator_cost", cost);

    // A second batch.
    quick_start(dir.path(), "4", true);
    for columns in ["70", "120"] {
        let mut list = check_in(dir.path());
        list.args(["--emulator", "--list"]).env("COLUMNS", columns);
        let result = run(list).await;
        assert_eq!(code(&result), 0, "{}", stderr(&result));
        let table = stdout(&result);
        let width: usize = columns.parse().unwrap();
        for line in table.lines() {
            assert!(line.chars().count() <= width, "{columns}: {line:?}");
        }
        assert_eq!(table.lines().count(), 3, "{table}");
        assert!(table.starts_with("ID"), "{table}");
        // The hash in the metadata never shows.
        assert!(!table.contains("shard_sha256"), "{table}");
        let filters = [
            (r"batch_[A-Za-z0-9]+(…[A-Za-z0-9]+)?", "[BATCH]"),
            (r"\d{4}-\d\d-\d\d( \d\d:\d\d)?", "[CREATED]"),
        ];
        insta::with_settings!({filters => filters}, {
            insta::assert_snapshot!(format!("check_list_{columns}_columns"), table);
        });
    }
    let mut json = check_in(dir.path());
    json.args(["--emulator", "--list", "--json"]);
    let result = run(json).await;
    assert_eq!(code(&result), 0, "{}", stderr(&result));
    let listed: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

/// Issue 13: check-batch-status --emulator without a quick start's state says where it looks.
#[test]
fn check_emulator_without_state_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = check_in(dir.path());
    cmd.arg("--emulator");
    let result = cmd.output().unwrap();
    assert_eq!(code(&result), 2, "{}", stderr(&result));
    insta::assert_snapshot!("check_emulator_no_state", stderr(&result));
}

/// Issue 13: check-batch-status shows a batch's cost from the usage the server reports, at
/// batch prices for a priced model.
#[tokio::test]
async fn check_shows_a_batchs_cost() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let line = r#"{"custom_id":"lesson_M0-L001","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Write a lesson"}]}}"#;
    let batch = crate::run_one_line_batch(emulator.base_url(), line).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = check_in(dir.path());
    cmd.arg(batch.id.as_str())
        .args(["--base-url", emulator.base_url()])
        .env("OPENAI_API_KEY", "sk-test-key");
    let result = run(cmd).await;
    assert_eq!(code(&result), 0, "{}", stderr(&result));
    let shown = stdout(&result);
    let cost = cost_line(&shown);
    assert!(
        cost.contains(" at batch prices, from the usage above"),
        "{cost}"
    );
    assert!(
        !cost.contains("unknown") && !cost.contains("nothing billed"),
        "{cost}"
    );
    assert_cost_snapshot("check_cost", cost);
}

/// Issue 13: a quick start left with --no-wait is finished through check-batch-status
/// --emulator: the emulator resumes the batch, --wait follows it and --process writes the
/// lessons (under the job's lock, which --emulator then only tests, so it does not wait on
/// itself).
#[tokio::test]
async fn check_emulator_finishes_a_quick_start_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let first = quick_start(dir.path(), "3", false);
    assert!(first.contains("3 still running"), "{first}");
    let mut check = check_in(dir.path());
    check.args([
        "--emulator",
        "--wait",
        "--process",
        "--poll-interval",
        "0.05",
    ]);
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), run(check))
        .await
        .expect("check-batch-status --emulator --process does not wait on its own lock");
    assert_eq!(code(&result), 0, "{}", stderr(&result));
    assert!(
        stdout(&result).contains("status:      completed"),
        "{}",
        stdout(&result)
    );
    assert_eq!(crate::lesson_files(&dir.path().join("lessons")).len(), 3);
    let summary = stderr(&result);
    assert!(
        summary.contains("Summary: 3 written") && summary.contains("(emulator: nothing billed)"),
        "{summary}"
    );
}
