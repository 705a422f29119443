//! `generate-datagov-lessons-batch`: the whole workflow against the emulator.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batch_emulator::{EmulatorConfig, Timing};
use openai_batch_client::{BatchStatus, Ledger};

use crate::{
    batches, code, datagov, emulator, generate_against, generate_into, input_of, job_file,
    lesson_files, run, stderr, stdout,
};

/// A generate command on the Data Governance fixture, writing into `dir`.
fn generate(dir: &Path) -> Command {
    generate_into(dir, &datagov(), "out")
}

/// The same, against an emulator reached by URL with a key, as a real run would be.
fn generate_at(dir: &Path, base_url: &str) -> Command {
    generate_against(dir, &datagov(), "out", base_url)
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err}): {}",
            stdout(output)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_writes_336_lessons_and_a_rerun_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate(dir.path());
    cmd.args(["--emulator", "--json"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["lessons_total"], 336);
    assert_eq!(report["requested"], 336);
    assert_eq!(report["written"], 336);
    assert_eq!(report["failed"].as_array().unwrap().len(), 0);
    assert_eq!(report["batches"][0]["status"], "completed");
    assert!(report["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let files = lesson_files(&dir.path().join("out"));
    assert_eq!(files.len(), 336);
    // The emulator's placeholder lessons pass the quality gate's defaults (issue 12).
    assert!(!dir.path().join("out/rejected").exists());
    assert_eq!(files[0], "M0-L001.md");
    let lesson = std::fs::read_to_string(dir.path().join("out/M0-L001.md")).unwrap();
    assert!(lesson.starts_with("# Lesson M0-L001: "), "{lesson}");
    let err = stderr(&output);
    for step in [
        "Step 1: Parsing Content Structure.md",
        "Found 336 lessons across 15 modules",
        "Estimate:",
        "Step 7",
    ] {
        assert!(err.contains(step), "missing {step:?} in {err}");
    }

    let before = std::fs::metadata(dir.path().join("out/M0-L001.md"))
        .unwrap()
        .modified()
        .unwrap();
    let mut again = generate(dir.path());
    again.args(["--emulator", "--json"]);
    let output = run(again).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["requested"], 0);
    assert_eq!(report["written"], 0);
    assert_eq!(report["already_generated"], 336);
    assert!(stderr(&output).contains("Nothing to do"));
    let after = std::fs::metadata(dir.path().join("out/M0-L001.md"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "the rerun rewrote a lesson");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_generates_only_the_first_lessons() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_at(dir.path(), emulator.base_url());
    cmd.args(["--limit", "3"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        lesson_files(&dir.path().join("out")),
        ["M0-L001.md", "M0-L002.md", "M0-L003.md"]
    );
    let all = batches(&emulator).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].counts().total, 3);
    assert!(stderr(&output).contains("Using the API key from OPENAI_API_KEY"));
    assert!(!stderr(&output).contains("sk-test-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sends_nothing_and_writes_the_shards() {
    // A listener that would see any connection; the key is absent on purpose.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate(dir.path());
    cmd.args(["--dry-run", "--json", "--base-url", &url]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        listener.accept().is_err(),
        "the dry run connected to the API"
    );
    let report = json(&output);
    assert_eq!(report["estimate"]["requests"], 336);
    assert!(report["estimate"]["input_tokens"].as_u64().unwrap() > 100_000);
    assert!(
        report["estimate"]["max_usd"].as_f64().unwrap()
            > report["estimate"]["expected_usd"].as_f64().unwrap()
    );
    let shards = report["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 1);
    let shard = dir.path().join(shards[0]["path"].as_str().unwrap());
    let text = std::fs::read_to_string(&shard).unwrap();
    assert_eq!(text.lines().count(), 336);
    assert!(text.starts_with(
        r#"{"custom_id":"lesson_M0-L001","method":"POST","url":"/v1/chat/completions""#
    ));
    assert!(
        job_file(&dir.path().join("work"), "ledger.json").is_none_or(|ledger| !ledger.exists())
    );
    assert!(lesson_files(&dir.path().join("out")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_then_a_rerun_attaches_to_the_same_batch() {
    let mut config = EmulatorConfig::fast();
    config.timing.validation = Duration::from_millis(300);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_at(dir.path(), emulator.base_url());
    first.args(["--limit", "5", "--no-wait", "--json"]);
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    let batch_id = report["batches"][0]["id"].as_str().unwrap().to_owned();
    assert!(stderr(&output).contains(&batch_id));
    assert!(lesson_files(&dir.path().join("out")).is_empty());

    let mut second = generate_at(dir.path(), emulator.base_url());
    second.args(["--limit", "5", "--json"]);
    let output = run(second).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stderr(&output).contains("Attaching"), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["batches"][0]["id"], batch_id.as_str());
    assert_eq!(report["written"], 5);
    assert_eq!(
        batches(&emulator).await.len(),
        1,
        "the rerun submitted again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_while_waiting_resumes_without_submitting_again() {
    let mut config = EmulatorConfig::fast();
    config.concurrency = 1;
    config.timing = Timing {
        validation: Duration::from_millis(50),
        per_request: Duration::from_millis(150),
        finalizing: Duration::from_millis(50),
    };
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_at(dir.path(), emulator.base_url());
    first
        .args(["--limit", "12"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = first.spawn().unwrap();
    let started = Instant::now();
    loop {
        let submitted = job_file(&dir.path().join("work"), "ledger.json")
            .and_then(|ledger| Ledger::load(&ledger).ok())
            .is_some_and(|l| l.shards.iter().any(|s| s.batch_id.is_some()));
        if submitted {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no batch was submitted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let running = batches(&emulator).await;
    assert_eq!(running.len(), 1);
    assert!(
        !running[0].status.is_terminal(),
        "the batch finished before the kill"
    );

    let mut rerun = generate_at(dir.path(), emulator.base_url());
    rerun.args(["--limit", "12", "--json"]);
    let output = run(rerun).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(json(&output)["written"], 12);
    assert_eq!(lesson_files(&dir.path().join("out")).len(), 12);
    let all = batches(&emulator).await;
    assert_eq!(all.len(), 1, "the rerun submitted a second batch");
    assert_eq!(all[0].status, BatchStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_batch_keeps_its_partial_results_and_a_rerun_completes_the_rest() {
    let mut config = EmulatorConfig::fast();
    config.concurrency = 1;
    config.completion_window = Duration::from_millis(1500);
    config.timing = Timing {
        validation: Duration::from_millis(10),
        per_request: Duration::from_millis(150),
        finalizing: Duration::from_millis(10),
    };
    let expiring = emulator(config).await;
    crate::warm_up(&expiring).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_at(dir.path(), expiring.base_url());
    first.args(["--modules", "M0", "--retry-failed", "0", "--json"]);
    let output = run(first).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    let total = report["requested"].as_u64().unwrap();
    assert!(total > 20, "M0 has {total} lessons");
    assert_eq!(report["batches"][0]["status"], "expired");
    let written = report["written"].as_u64().unwrap();
    assert!(
        written > 0 && written < total,
        "written {written} of {total}"
    );
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len() as u64, total - written);
    assert!(
        failed
            .iter()
            .all(|f| f["code"] == "batch_expired" && f["retryable"] == true)
    );
    let failures =
        std::fs::read_to_string(job_file(&dir.path().join("work"), "failures.jsonl").unwrap())
            .unwrap();
    assert_eq!(failures.lines().count() as u64, total - written);

    let healthy = emulator(EmulatorConfig::fast()).await;
    let mut rerun = generate_at(dir.path(), healthy.base_url());
    rerun.args(["--modules", "M0", "--json"]);
    let output = run(rerun).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["already_generated"].as_u64().unwrap(), written);
    assert_eq!(
        report["requested"].as_u64().unwrap(),
        total - written,
        "{}",
        stderr(&output)
    );
    assert_eq!(lesson_files(&dir.path().join("out")).len() as u64, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_requests_exit_3_and_only_retryable_ones_are_resubmitted() {
    let mut config = EmulatorConfig::fast();
    config.faults.seed = 7;
    config.faults.server_error_share = 0.15;
    config.faults.bad_request_share = 0.15;
    config.faults.length_share = 0.15;
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_at(dir.path(), emulator.base_url());
    cmd.args([
        "--limit",
        "40",
        "--retry-failed",
        "1",
        "--max-completion-tokens",
        "4000",
        "--json",
    ]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    let failed = report["failed"].as_array().unwrap();
    let retryable: Vec<&serde_json::Value> =
        failed.iter().filter(|f| f["retryable"] == true).collect();
    let permanent: Vec<&serde_json::Value> =
        failed.iter().filter(|f| f["retryable"] == false).collect();
    assert!(!permanent.is_empty() && !retryable.is_empty(), "{failed:?}");
    assert!(
        permanent.iter().all(|f| f["code"] == "unsupported_value"),
        "{permanent:?}"
    );
    let truncated: Vec<&str> = failed
        .iter()
        .filter(|f| f["code"] == "length")
        .map(|f| f["lesson_code"].as_str().unwrap())
        .collect();
    let written = report["written"].as_u64().unwrap();
    assert_eq!(written + failed.len() as u64, 40);

    // Newest first: the retry batch holds exactly the retryable failures of the first round:
    // its 500s and truncated answers, never its 400s.
    let all = batches(&emulator).await;
    assert_eq!(all.len(), 2, "one retry round");
    assert_eq!(all[1].counts().total, 40);
    let first_round = outcomes(dir.path(), &all[1]);
    let of_round_one = |outcome: &str| -> Vec<String> {
        first_round
            .iter()
            .filter(|(_, o)| *o == outcome)
            .map(|(id, _)| id.trim_start_matches("lesson_").to_owned())
            .collect()
    };
    let (server_errors, cut, bad) = (
        of_round_one("500"),
        of_round_one("length"),
        of_round_one("400"),
    );
    assert!(
        !server_errors.is_empty() && !cut.is_empty() && !bad.is_empty(),
        "{first_round:?}"
    );
    assert_eq!(
        all[0].counts().total,
        (server_errors.len() + cut.len()) as u64
    );
    // The emulator draws a retry's transient faults anew, so the retry round recovers some.
    assert!(all[0].counts().completed > 0, "{:?}", all[0]);
    assert!(
        retryable.len() < server_errors.len() + cut.len(),
        "{failed:?}"
    );

    // The retry input: no permanent failure in it, and truncated lessons got a larger budget.
    let text = input_of(&dir.path().join("work"), &all[0]);
    for line in text.lines() {
        let line: batch_request::RequestLine = serde_json::from_str(line).unwrap();
        let code = line.custom_id.trim_start_matches("lesson_");
        assert!(!bad.iter().any(|bad| bad == code), "{code} was resubmitted");
        let expected = if cut.iter().any(|cut| cut == code) {
            8000
        } else {
            4000
        };
        assert_eq!(line.body.max_completion_tokens, Some(expected), "{code}");
    }

    let failures =
        std::fs::read_to_string(job_file(&dir.path().join("work"), "failures.jsonl").unwrap())
            .unwrap();
    assert_eq!(failures.lines().count(), failed.len());
    for code in truncated {
        assert!(!dir.path().join(format!("out/{code}.md")).exists());
        assert!(dir.path().join(format!("out/rejected/{code}.md")).exists());
    }
}

/// Each request's outcome in a batch, from the result files the job downloaded (its ledger
/// names them): `200`, `length`, or the error status.
fn outcomes(
    dir: &Path,
    batch: &openai_batch_client::Batch,
) -> std::collections::BTreeMap<String, String> {
    let ledger = Ledger::load(&job_file(&dir.join("work"), "ledger.json").unwrap()).unwrap();
    let shard = ledger
        .shards
        .iter()
        .find(|shard| shard.batch_id.as_ref() == Some(&batch.id))
        .expect("the batch is in the ledger");
    let mut outcomes = std::collections::BTreeMap::new();
    for path in [&shard.output_path, &shard.error_path]
        .into_iter()
        .flatten()
    {
        let text = std::fs::read_to_string(dir.join(path)).unwrap();
        for line in text.lines() {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            let response = &line["response"];
            let outcome = if response["body"]["choices"][0]["finish_reason"] == "length" {
                "length".to_owned()
            } else {
                response["status_code"].to_string()
            };
            outcomes.insert(line["custom_id"].as_str().unwrap().to_owned(), outcome);
        }
    }
    outcomes
}

#[tokio::test]
async fn a_budget_below_the_upper_bound_refuses_to_submit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate(dir.path());
    cmd.args(["--emulator", "--budget", "0.01"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("exceeds the budget $0.01 by"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(
        job_file(&dir.path().join("work"), "ledger.json").is_none_or(|ledger| !ledger.exists())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_exits_2_as_a_key_problem_without_showing_the_key() {
    let mut config = EmulatorConfig::fast();
    config.api_key = Some("sk-the-right-key".to_owned());
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate(dir.path());
    cmd.args(["--limit", "1", "--base-url", emulator.base_url(), "-v"])
        .env("OPENAI_API_KEY", "sk-wrong-SECRET-4242");
    let output = run(cmd).await;
    // README, "Exit codes": every key problem is 2.
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(all.contains("OPENAI_API_KEY"), "{all}");
    assert!(!all.contains("SECRET-4242"), "the key leaked: {all}");
    assert!(
        crate::batches_with_key(&emulator, "sk-the-right-key")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_missing_key_fails_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(generate(dir.path())).await;
    assert_eq!(code(&output), 2);
    let err = stderr(&output);
    assert!(err.contains("OPENAI_API_KEY"), "{err}");
    assert!(err.contains("--emulator"), "{err}");
    assert!(!err.contains("Step 1"), "work started: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_waiting_leaves_the_batch_running_and_prints_the_resume_command() {
    let mut config = EmulatorConfig::fast();
    config.concurrency = 1;
    config.timing.per_request = Duration::from_millis(200);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_at(dir.path(), emulator.base_url());
    first
        .args(["--limit", "10", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = first.spawn().unwrap();
    let started = Instant::now();
    while !job_file(&dir.path().join("work"), "ledger.json")
        .and_then(|ledger| Ledger::load(&ledger).ok())
        .is_some_and(|l| l.shards.iter().any(|s| s.batch_id.is_some()))
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no batch was submitted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {}",
            stdout(&output),
            stderr(&output)
        )
    });
    assert_eq!(report["batches"].as_array().unwrap().len(), 1);
    let err = stderr(&output);
    assert!(err.contains("keep running on the server"), "{err}");
    assert!(
        err.contains("generate-datagov-lessons-batch") && err.contains("--limit 10"),
        "{err}"
    );
    let all = batches(&emulator).await;
    assert_eq!(all.len(), 1);
    assert!(
        !all[0].status.is_terminal(),
        "the batch was stopped with the command"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_with_yes_archives_the_unfinished_ledger_and_takes_over_a_batch_still_running() {
    let mut config = EmulatorConfig::fast();
    // Long enough that the batch is still validating when --new runs.
    config.timing.validation = Duration::from_millis(6000);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_at(dir.path(), emulator.base_url());
    first.args(["--limit", "2", "--no-wait"]);
    assert_eq!(code(&run(first).await), 0);

    // Without --yes and without a terminal, --new refuses.
    let mut refused = generate_at(dir.path(), emulator.base_url());
    refused.args(["--limit", "2", "--new"]).stdin(Stdio::null());
    let output = run(refused).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(stderr(&output).contains("--yes"));
    assert_eq!(batches(&emulator).await.len(), 1);

    // The same requests are still running on the server: taken over, not paid for twice.
    let mut again = generate_at(dir.path(), emulator.base_url());
    again.args(["--limit", "2", "--new", "--yes"]);
    let output = run(again).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stderr(&output).contains("archived"), "{}", stderr(&output));
    assert_eq!(batches(&emulator).await.len(), 1);
    let job_dir = job_file(&dir.path().join("work"), "").unwrap();
    let archived = std::fs::read_dir(job_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("archived")
        })
        .count();
    assert_eq!(archived, 1);
    assert_eq!(lesson_files(&dir.path().join("out")).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_read_from_openaiapikey_txt_as_the_old_scripts_did() {
    let mut config = EmulatorConfig::fast();
    config.api_key = Some("sk-from-file".to_owned());
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("openaiapikey.txt"), "sk-from-file\n").unwrap();
    let mut cmd = generate(dir.path());
    cmd.args(["--limit", "1", "--base-url", emulator.base_url()]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("Using the API key from openaiapikey.txt"),
        "{err}"
    );
    assert!(!err.contains("sk-from-file"), "{err}");
    assert_eq!(lesson_files(&dir.path().join("out")), ["M0-L001.md"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_emulator_keeps_its_batches_so_no_wait_then_rerun_attaches() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate(dir.path());
    first.args(["--emulator", "--limit", "4", "--no-wait", "--json"]);
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let batch_id = json(&output)["batches"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The rerun asks for 6: it finishes the earlier batch of 4 and submits the other 2 in
    // the same run.
    let mut rerun = generate(dir.path());
    rerun.args(["--emulator", "--limit", "6", "--json"]);
    let output = run(rerun).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert!(stderr(&output).contains("Attaching"), "{}", stderr(&output));
    assert_eq!(report["batches"][0]["id"], batch_id.as_str());
    assert_eq!(report["batches"].as_array().unwrap().len(), 2);
    assert_eq!(report["requested"], 6);
    assert_eq!(report["written"], 6);
    assert_eq!(report["requests_sent"], 2);
    assert_eq!(lesson_files(&dir.path().join("out")).len(), 6);
}
