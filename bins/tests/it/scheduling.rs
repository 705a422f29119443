//! The organization's enqueued-token limit, the files a run leaves on the server, and the
//! budget of a whole run.

use std::path::Path;
use std::process::Command;

use batch_emulator::{Emulator, EmulatorConfig};
use openai_batch_client::{BatchStatus, Client, ClientConfig, Ledger};

use crate::{
    batches, code, command, datagov, emulator, generate_against, job_file, lesson_files, run,
    stderr,
};

/// The limit the emulator enforces in these tests; the Data Governance course holds about
/// 1,025,000 input tokens, so it needs at least three batches one after another.
const LIMIT: u64 = 400_000;

/// An emulator that enforces [`LIMIT`] on gpt-4o-mini's enqueued input tokens, with
/// batches of 100 requests that run for about two seconds, so that batches created together
/// overlap.
async fn limited_emulator() -> Emulator {
    let mut config = EmulatorConfig::fast();
    config.enqueued_token_limit = Some(LIMIT);
    config.timing.per_request = std::time::Duration::from_millis(40);
    config.concurrency = 2;
    emulator(config).await
}

/// A generate command on the whole Data Governance course against `emulator`.
fn generate(dir: &Path, emulator: &Emulator) -> Command {
    generate_against(dir, &datagov(), "out", emulator.base_url())
}

/// `check-batch-status --cleanup` on `dir/work` against `emulator`.
fn cleanup(dir: &Path, emulator: &Emulator) -> Command {
    let mut cmd = command("check", dir);
    cmd.args(["--cleanup", "--work-dir", "work", "--base-url"])
        .arg(emulator.base_url())
        .env("OPENAI_API_KEY", "sk-test-key");
    cmd
}

/// A client of the emulator.
fn client(emulator: &Emulator) -> Client {
    Client::new(ClientConfig::new(
        emulator.base_url(),
        secrecy::SecretString::from("sk-test-key".to_owned()),
    ))
    .unwrap()
}

/// The job's ledger in `dir/work`.
fn ledger(dir: &Path) -> Ledger {
    Ledger::load(&job_file(&dir.join("work"), "ledger.json").expect("a job folder")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn told_the_limit_the_course_finishes_in_one_run_within_it() {
    // Fast batches: the runner, not the timing, keeps them apart.
    let mut config = EmulatorConfig::fast();
    config.enqueued_token_limit = Some(LIMIT);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate(dir.path(), &emulator);
    cmd.args(["--max-enqueued-tokens", &LIMIT.to_string()]);
    let output = run(cmd).await;
    let err = stderr(&output);
    assert_eq!(code(&output), 0, "{err}");

    assert_eq!(lesson_files(&dir.path().join("out")).len(), 336, "{err}");
    let stats = emulator.stats();
    let peak = stats.peak_enqueued_tokens["gpt-4o-mini"];
    assert!(peak <= LIMIT, "peak {peak} enqueued tokens passed {LIMIT}");
    // It was not one batch after another by accident: the course needs several.
    let all = batches(&emulator).await;
    assert!(all.len() >= 3, "{} batches for 1M tokens", all.len());
    assert!(
        all.iter()
            .all(|batch| batch.status == BatchStatus::Completed),
        "a batch failed: {:?}",
        all.iter().map(|batch| batch.status).collect::<Vec<_>>()
    );
    assert_eq!(stats.token_limit_failures, 0);
    assert!(err.contains("waiting for queue capacity"), "{err}");
    // Every shard ran once, with nothing left to retry.
    let ledger = ledger(dir.path());
    assert_eq!(ledger.shards.len(), all.len());
    assert!(ledger.shards.iter().all(|shard| shard.attempts.is_empty()));
    // The requests share their leading message, and the job id routes them to one cache.
    let job_id = ledger.context["job_id"].as_str().unwrap().to_owned();
    let mut system = None;
    for shard in &ledger.shards {
        let text = std::fs::read_to_string(&shard.input_path).unwrap();
        for line in text.lines() {
            let line: batch_request::RequestLine = serde_json::from_str(line).unwrap();
            assert_eq!(line.body.extra["prompt_cache_key"], job_id.as_str());
            assert_eq!(line.body.messages.len(), 2);
            let first = &line.body.messages[0];
            assert_eq!(first.role, "system");
            assert_eq!(
                system.get_or_insert_with(|| first.content.clone()),
                &first.content
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batches_are_recreated_until_the_course_finishes() {
    let emulator = limited_emulator().await;
    let dir = tempfile::tempdir().unwrap();
    // The tool's own limit for gpt-4o-mini (2,000,000) is above the emulator's, so it sends
    // every shard of 100 lessons (about 305,000 tokens each) at once.
    let mut cmd = generate(dir.path(), &emulator);
    cmd.args(["--batch-size", "100"]);
    let output = run(cmd).await;
    let err = stderr(&output);
    assert_eq!(code(&output), 0, "{err}");
    assert_eq!(lesson_files(&dir.path().join("out")).len(), 336, "{err}");

    let stats = emulator.stats();
    assert!(stats.token_limit_failures > 0, "nothing was refused: {err}");
    assert!(err.contains("enqueued-token limit"), "{err}");
    let all = batches(&emulator).await;
    let ledger = ledger(dir.path());
    assert_eq!(ledger.shards.len(), 4);
    for shard in &ledger.shards {
        // Exactly one completed batch per shard, and the refused ones recorded.
        assert_eq!(shard.status, Some(BatchStatus::Completed), "{}", shard.id);
        let id = shard.batch_id.as_ref().unwrap();
        let of_shard: Vec<_> = all
            .iter()
            .filter(|batch| batch.metadata_value("shard") == Some(shard.id.as_str()))
            .collect();
        let completed: Vec<_> = of_shard
            .iter()
            .filter(|batch| batch.status == BatchStatus::Completed)
            .collect();
        assert_eq!(completed.len(), 1, "{}", shard.id);
        assert_eq!(&completed[0].id, id);
        assert_eq!(of_shard.len(), shard.attempts.len() + 1, "{}", shard.id);
        for attempt in &shard.attempts {
            assert_eq!(attempt.error_codes, ["token_limit_exceeded"]);
        }
        // Every attempt was made from the same uploaded file: nothing was uploaded twice.
        assert!(
            of_shard
                .iter()
                .all(|batch| batch.input_file_id == completed[0].input_file_id)
        );
    }
    assert!(ledger.shards.iter().any(|shard| !shard.attempts.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_leaves_no_file_on_the_server_unless_asked_to_keep_them() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate(dir.path(), &emulator);
    cmd.args(["--limit", "5"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let files = client.list_files_page(None, None, Some(100)).await.unwrap();
    assert!(
        files.data.is_empty(),
        "left on the server: {:?}",
        files.data
    );
    // The local copies stay.
    let job = job_file(&dir.path().join("work"), "r01_input_001_output.jsonl");
    assert!(job.is_some_and(|path| path.is_file()));

    // Kept on request: the outputs stay, the uploaded shard goes.
    let mut cmd = generate(dir.path(), &emulator);
    cmd.args(["--limit", "5", "--keep-remote-files"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let files = client.list_files_page(None, None, Some(100)).await.unwrap();
    assert_eq!(files.data.len(), 1, "{:?}", files.data);
    assert_eq!(files.data[0].purpose, "batch_output");

    // check-batch-status --cleanup deletes what is left, and records it.
    let output = run(cleanup(dir.path(), &emulator)).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Deleted 1 file from the server"),
        "{}",
        stderr(&output)
    );
    let files = client.list_files_page(None, None, Some(100)).await.unwrap();
    assert!(
        files.data.is_empty(),
        "left on the server: {:?}",
        files.data
    );
    let output = run(cleanup(dir.path(), &emulator)).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Nothing to delete"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_round_that_could_pass_the_budget_is_not_submitted() {
    // Every answer is cut short, so every lesson is worth a retry with twice the tokens.
    let mut config = EmulatorConfig::fast();
    config.faults.length_share = 1.0;
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate(dir.path(), &emulator);
    // The first round's upper bound (about $0.005) fits; with what it costs, the retry
    // round's (about $0.008 more) does not.
    cmd.args([
        "--limit",
        "10",
        "--max-completion-tokens",
        "1000",
        "--budget",
        "0.006",
        "--json",
    ]);
    let output = run(cmd).await;
    let err = stderr(&output);
    assert_eq!(code(&output), 3, "{err}");
    assert!(err.contains("Budget: not resubmitting 10 lessons"), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let stopped = &report["budget_stopped"];
    assert_eq!(stopped["lessons"].as_array().unwrap().len(), 10, "{report}");
    let spent = stopped["spent_usd"].as_f64().unwrap();
    let next = stopped["next_round_usd"].as_f64().unwrap();
    assert!(spent > 0.0 && spent <= 0.006, "{report}");
    assert!(spent + next > 0.006, "{report}");
    assert_eq!(report["failed"].as_array().unwrap().len(), 10, "{report}");
    assert_eq!(report["rounds"], 1);
    // One batch only, and no shard of the round left behind to be attached to later.
    assert_eq!(batches(&emulator).await.len(), 1);
    let round_2 = job_file(&dir.path().join("work"), "r02_input_001.jsonl").unwrap();
    assert!(!round_2.exists(), "{} was left", round_2.display());
    assert!(!round_2.with_extension("lessons.jsonl").exists());
}
