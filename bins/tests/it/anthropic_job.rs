//! The whole job through Anthropic's Message Batches API (`--provider anthropic`, or a
//! `claude-*` model), against the emulator: a full course, a killed run resumed with one
//! batch, and canceled and expired results sent again.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anthropic_batch_client::{Client, ClientConfig, MessageBatch, ProcessingStatus};
use batch_emulator::{Emulator, EmulatorConfig, Timing};
use futures::TryStreamExt;
use openai_batch_client::Ledger;

use crate::{
    anthropic_client as client, code, datagov, emulator, generate_into, job_file, lesson_files,
    message_batches, run, stderr, stdout,
};

const KEY: &str = crate::ANTHROPIC_KEY;

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {}", stdout(output)))
}

/// A generate command on the Data Governance outline against the emulator's Message Batches
/// API, with Anthropic's key and base URL from the environment, as a real run would have them.
///
/// The batches are kept (`--keep-remote-files`), so the tests can count them afterwards.
fn generate_anthropic(dir: &Path, emulator: &Emulator) -> Command {
    let mut cmd = generate_into(dir, &datagov(), "out");
    cmd.args(["--provider", "anthropic", "--keep-remote-files"])
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", emulator.anthropic_base_url());
    cmd
}

fn ledger(dir: &Path) -> Option<Ledger> {
    job_file(&dir.join("work"), "ledger.json").and_then(|path| Ledger::load(&path).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claude_model_writes_all_336_lessons_through_message_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_into(dir.path(), &datagov(), "out");
    // The provider follows from the model; the built-in emulator needs no key.
    cmd.args([
        "--emulator",
        "--model",
        "claude-sonnet-4-5",
        "--yes",
        "--json",
    ]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["requested"], 336);
    assert_eq!(report["written"], 336);
    assert_eq!(report["failed"].as_array().unwrap().len(), 0);
    let batches = report["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert!(
        batches[0]["id"].as_str().unwrap().starts_with("msgbatch_"),
        "{batches:?}"
    );
    assert_eq!(batches[0]["status"], "completed");
    let files = lesson_files(&dir.path().join("out"));
    assert_eq!(files.len(), 336);
    assert!(!dir.path().join("out/rejected").exists());
    let lesson = std::fs::read_to_string(dir.path().join("out/M0-L001.md")).unwrap();
    assert!(lesson.starts_with("# Lesson M0-L001: "), "{lesson}");
    // The answers' usage, read from Anthropic's shape: the shared prefix is read from the
    // cache by every request after the first.
    let usage = &report["usage"];
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["cached_tokens"].as_u64().unwrap() > 0, "{usage}");
    let ledger = ledger(dir.path()).unwrap();
    assert_eq!(ledger.context["provider"], "anthropic");
    let results = ledger.shards[0].output_path.clone().unwrap();
    let first = std::fs::read_to_string(results).unwrap();
    assert!(
        first.lines().next().unwrap().contains(r#""result":"#),
        "the results are kept as Anthropic sent them"
    );

    // A rerun finds every lesson written and sends nothing.
    let mut rerun = generate_into(dir.path(), &datagov(), "out");
    rerun.args([
        "--emulator",
        "--model",
        "claude-sonnet-4-5",
        "--yes",
        "--json",
    ]);
    let output = run(rerun).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["already_generated"], 336);
    assert_eq!(report["requests_sent"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_while_waiting_resumes_with_the_same_message_batch() {
    let mut config = EmulatorConfig::fast();
    config.concurrency = 1;
    config.timing = Timing {
        validation: Duration::from_millis(50),
        per_request: Duration::from_millis(150),
        finalizing: Duration::from_millis(50),
    };
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_anthropic(dir.path(), &emulator);
    first
        .args(["--limit", "12"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = first.spawn().unwrap();
    let started = Instant::now();
    while !ledger(dir.path()).is_some_and(|l| l.shards.iter().any(|s| s.batch_id.is_some())) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no batch was created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let running = message_batches(&emulator).await;
    assert_eq!(running.len(), 1);
    assert_eq!(
        running[0].processing_status,
        ProcessingStatus::InProgress,
        "the batch ended before the kill"
    );

    let mut rerun = generate_anthropic(dir.path(), &emulator);
    rerun.args(["--limit", "12", "--json"]);
    let output = run(rerun).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(json(&output)["written"], 12);
    assert_eq!(lesson_files(&dir.path().join("out")).len(), 12);
    let all = message_batches(&emulator).await;
    assert_eq!(all.len(), 1, "the rerun created a second batch");
    assert_eq!(all[0].id, running[0].id);
    assert_eq!(all[0].processing_status, ProcessingStatus::Ended);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceled_results_are_sent_again_in_a_retry_round_of_the_same_run() {
    let config = crate::one_at_a_time(Duration::from_millis(100));
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_anthropic(dir.path(), &emulator);
    cmd.args(["--modules", "M0", "--json"]);
    let child = tokio::task::spawn_blocking(move || cmd.output().unwrap());
    // Cancel the first batch once a few of its requests have run (a running message batch
    // shows all its requests as processing, so the test waits a few requests' time).
    let started = Instant::now();
    let first = loop {
        let batches = message_batches(&emulator).await;
        if let Some(batch) = batches.last() {
            tokio::time::sleep(Duration::from_millis(400)).await;
            break batch.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the batch did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    client(&emulator).cancel_batch(&first.id).await.unwrap();
    let output = child.await.unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    let requested = report["requested"].as_u64().unwrap();
    assert!(requested > 20, "M0 has {requested} lessons");
    assert_eq!(report["written"].as_u64().unwrap(), requested);
    assert_eq!(report["rounds"], 2, "{report}");
    let batches = message_batches(&emulator).await;
    assert_eq!(
        batches.len(),
        2,
        "one retry batch for the canceled requests"
    );
    let first = batches.iter().find(|batch| batch.id == first.id).unwrap();
    let canceled = first.request_counts.canceled;
    assert!(canceled > 0, "{:?}", first.request_counts);
    let retry = batches.iter().find(|batch| batch.id != first.id).unwrap();
    assert_eq!(
        retry.request_counts.total(),
        canceled + first.request_counts.errored + first.request_counts.expired,
        "exactly the requests that did not succeed were sent again"
    );
    assert_eq!(
        lesson_files(&dir.path().join("out")).len() as u64,
        requested
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_results_are_failures_and_a_rerun_sends_only_them() {
    let mut config = crate::one_at_a_time(Duration::from_millis(150));
    config.completion_window = Duration::from_millis(1500);
    let expiring = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_anthropic(dir.path(), &expiring);
    first.args(["--modules", "M0", "--retry-failed", "0", "--json"]);
    let output = run(first).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    let total = report["requested"].as_u64().unwrap();
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
            .all(|f| f["code"] == "batch_expired" && f["retryable"] == true),
        "{failed:?}"
    );
    let batch = &message_batches(&expiring).await[0];
    assert_eq!(batch.request_counts.expired, total - written);

    let healthy = emulator(EmulatorConfig::fast()).await;
    let mut rerun = generate_anthropic(dir.path(), &healthy);
    rerun.args(["--modules", "M0", "--json"]);
    let output = run(rerun).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["already_generated"].as_u64().unwrap(), written);
    assert_eq!(report["requested"].as_u64().unwrap(), total - written);
    assert_eq!(lesson_files(&dir.path().join("out")).len() as u64, total);
    let sent = &message_batches(&healthy).await[0];
    assert_eq!(sent.request_counts.total(), total - written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_unfinished_openai_batches_refuses_to_switch_provider() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_into(dir.path(), &datagov(), "out");
    first.args(["--emulator", "--limit", "3", "--no-wait"]);
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let mut switch = generate_into(dir.path(), &datagov(), "out");
    switch.args(["--emulator", "--limit", "3", "--provider", "anthropic"]);
    let output = run(switch).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("unfinished batches are openai's") && err.contains("--provider openai"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_anthropic_key_is_named_and_nothing_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_into(dir.path(), &datagov(), "out");
    cmd.args(["--provider", "anthropic", "--limit", "1"])
        .env("OPENAI_API_KEY", "sk-openai-only");
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("ANTHROPIC_API_KEY is not set"), "{err}");
    assert!(!err.contains("sk-openai-only"), "{err}");
    assert!(!dir.path().join("work").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ledger_or_another_work_dir_takes_the_running_batch_over() {
    let config = crate::one_at_a_time(Duration::from_millis(100));
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_anthropic(dir.path(), &emulator);
    first.args(["--limit", "8", "--no-wait"]);
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(dir.path().join("out/.lesson-batch.sent.json").exists());
    let created = message_batches(&emulator).await;
    assert_eq!(created.len(), 1);

    // The same course into the same output directory, from another work dir: no ledger
    // knows the batch, the output directory does.
    let mut other = crate::generate_on(dir.path(), &datagov());
    other
        .args([
            "--out",
            "out",
            "--work-dir",
            "elsewhere",
            "--poll-interval",
            "0.05",
        ])
        .args([
            "--provider",
            "anthropic",
            "--keep-remote-files",
            "--limit",
            "8",
            "--json",
        ])
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", emulator.anthropic_base_url());
    let output = run(other).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(json(&output)["written"], 8);
    let all = message_batches(&emulator).await;
    assert_eq!(all.len(), 1, "a second batch was created");
    assert_eq!(all[0].id, created[0].id);
    assert!(
        !dir.path().join("out/.lesson-batch.sent.json").exists(),
        "the record is emptied once the lessons are written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_anthropic_key_exits_2_with_a_hint_and_is_never_shown() {
    let mut config = EmulatorConfig::fast();
    config.api_key = Some("sk-ant-the-right-one".to_owned());
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_anthropic(dir.path(), &emulator);
    cmd.args(["--limit", "2"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("hint: check ANTHROPIC_API_KEY"), "{err}");
    assert!(!err.contains(KEY), "{err}");
    assert!(message_batches_with_right_key(&emulator).await.is_empty());
}

async fn message_batches_with_right_key(emulator: &Emulator) -> Vec<MessageBatch> {
    Client::new(ClientConfig::new(
        emulator.anthropic_base_url(),
        secrecy::SecretString::from("sk-ant-the-right-one".to_owned()),
    ))
    .unwrap()
    .list_batches(Some(100))
    .try_collect()
    .await
    .unwrap()
}
