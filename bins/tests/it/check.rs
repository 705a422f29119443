//! `check-batch-status`: status, download of partial results, cancel, list.

use std::path::Path;
use std::time::{Duration, Instant};

use batch_emulator::{Emulator, EmulatorConfig};
use openai_batch_client::{BatchId, BatchStatus, Client, ClientConfig, CreateBatchRequest};

use crate::{code, command, emulator, run, stderr, stdout};

fn client(emulator: &Emulator) -> Client {
    Client::new(ClientConfig::new(
        emulator.base_url(),
        secrecy::SecretString::from("sk-test".to_owned()),
    ))
    .unwrap()
}

/// Uploads `n` requests and creates a batch from them.
async fn submit(emulator: &Emulator, dir: &Path, n: usize) -> BatchId {
    let path = dir.join("input.jsonl");
    let mut text = String::new();
    for i in 1..=n {
        text.push_str(&format!(
            r#"{{"custom_id":"lesson_M0-L{i:03}","method":"POST","url":"/v1/chat/completions","body":{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"Write Lesson M0-L{i:03}: Topic {i}"}}]}}}}"#
        ));
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let client = client(emulator);
    let file = client
        .upload_file(&path, std::sync::Arc::new(()))
        .await
        .unwrap();
    let batch = client
        .create_batch(&CreateBatchRequest::new(file.id, "/v1/chat/completions"))
        .await
        .unwrap();
    batch.id
}

async fn wait_for(emulator: &Emulator, id: &BatchId, status: BatchStatus) {
    let client = client(emulator);
    let started = Instant::now();
    loop {
        let batch = client.retrieve_batch(id).await.unwrap();
        if batch.status == status {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "stuck at {}",
            batch.status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn slow() -> EmulatorConfig {
    crate::one_at_a_time(Duration::from_millis(120))
}

fn check(dir: &Path, emulator: &Emulator) -> std::process::Command {
    let mut cmd = command("check", dir);
    cmd.args(["--base-url", emulator.base_url(), "--work-dir", "work"])
        .env("OPENAI_API_KEY", "sk-test");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_the_partial_results_of_an_expired_batch() {
    let mut config = slow();
    config.completion_window = Duration::from_millis(800);
    let emulator = emulator(config).await;
    crate::warm_up(&emulator).await;
    let dir = tempfile::tempdir().unwrap();
    let id = submit(&emulator, dir.path(), 10).await;
    wait_for(&emulator, &id, BatchStatus::Expired).await;
    let mut cmd = check(dir.path(), &emulator);
    cmd.arg(id.as_str()).arg("--download");
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("status:      expired"),
        "{}",
        stdout(&output)
    );
    let out = std::fs::read_to_string(dir.path().join(format!("work/{id}_output.jsonl"))).unwrap();
    let errors =
        std::fs::read_to_string(dir.path().join(format!("work/{id}_errors.jsonl"))).unwrap();
    let (done, expired) = (out.lines().count(), errors.lines().count());
    assert!(done > 0, "no partial output: {}", stdout(&output));
    assert_eq!(done + expired, 10);
    assert!(errors.lines().all(|l| l.contains("batch_expired")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancels_and_downloads_the_partial_results_of_a_cancelled_batch() {
    let emulator = emulator(slow()).await;
    let dir = tempfile::tempdir().unwrap();
    let id = submit(&emulator, dir.path(), 10).await;
    wait_for(&emulator, &id, BatchStatus::InProgress).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cancel = check(dir.path(), &emulator);
    cancel.arg(id.as_str()).args(["--cancel", "--yes"]);
    let output = run(cancel).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Cancel requested"),
        "{}",
        stderr(&output)
    );
    wait_for(&emulator, &id, BatchStatus::Cancelled).await;

    let mut cmd = check(dir.path(), &emulator);
    cmd.arg(id.as_str()).args(["--download", "--json"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["batch"]["status"], "cancelled");
    let errors = std::fs::read_to_string(
        doc["error_path"]
            .as_str()
            .map(|p| dir.path().join(p))
            .unwrap(),
    )
    .unwrap();
    assert!(errors.lines().all(|l| l.contains("batch_cancelled")));
    let output_lines = match doc["output_path"].as_str() {
        Some(path) => std::fs::read_to_string(dir.path().join(path))
            .unwrap()
            .lines()
            .count(),
        None => 0,
    };
    assert_eq!(output_lines + errors.lines().count(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_recent_batches_and_reports_a_failed_one_with_exit_1() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    // A file with a duplicate custom_id fails validation.
    let path = dir.path().join("bad.jsonl");
    let line = r#"{"custom_id":"lesson_M0-L001","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}}"#;
    std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
    let client = client(&emulator);
    let file = client
        .upload_file(&path, std::sync::Arc::new(()))
        .await
        .unwrap();
    let batch = client
        .create_batch(&CreateBatchRequest::new(file.id, "/v1/chat/completions"))
        .await
        .unwrap();
    wait_for(&emulator, &batch.id, BatchStatus::Failed).await;

    let mut cmd = check(dir.path(), &emulator);
    cmd.arg(batch.id.as_str());
    let output = run(cmd).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("duplicate_custom_id"), "{text}");
    assert!(text.contains("line 2"), "{text}");

    let mut list = check(dir.path(), &emulator);
    list.arg("--list");
    let output = run(list).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains(batch.id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_id_it_waits_for_the_ledgers_latest_batch_and_processes_it() {
    let mut config = EmulatorConfig::fast();
    config.timing.validation = Duration::from_millis(300);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut submit = command("generate", dir.path());
    submit
        .arg("--content")
        .arg(crate::datagov())
        .args([
            "--out",
            "out",
            "--work-dir",
            "work",
            "--limit",
            "3",
            "--no-wait",
            "--json",
        ])
        .args(["--base-url", emulator.base_url()])
        .env("OPENAI_API_KEY", "sk-test");
    let output = run(submit).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let submitted: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let id = submitted["batches"][0]["id"].as_str().unwrap().to_owned();

    let mut cmd = check(dir.path(), &emulator);
    cmd.args([
        "--wait",
        "--process",
        "--poll-interval",
        "0.05",
        "--out",
        "out",
        "--json",
    ])
    .arg("--content")
    .arg(crate::datagov());
    let output = run(cmd).await;
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["batch"]["id"], id.as_str());
    assert_eq!(doc["batch"]["status"], "completed");
    assert_eq!(doc["process"]["written"], 3);
    assert_eq!(
        crate::lesson_files(&dir.path().join("out")),
        ["M0-L001.md", "M0-L002.md", "M0-L003.md"]
    );
    // The ledger knows what was sent, so the outline's other lessons are not "missing".
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(doc["process"]["failed"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_batch_exits_1_with_a_hint_to_check_the_id() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = check(dir.path(), &emulator);
    cmd.arg("batch_0000000000000000000000000000dead");
    let output = run(cmd).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("batch_0000000000000000000000000000dead"),
        "{err}"
    );
    // A batch id typed by hand: a typo, never a reason to pay again with --new.
    assert!(err.contains("hint: check the batch id"), "{err}");
    assert!(!err.contains("--new"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_id_and_with_no_batch_recorded_it_exits_2_with_a_hint() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(check(dir.path(), &emulator)).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("no batch id given, and no batch recorded in work"),
        "{err}"
    );
    assert!(err.contains("hint: pass a batch id"), "{err}");
}
