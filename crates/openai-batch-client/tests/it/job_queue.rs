//! `JobRunner::drive` under the organization's enqueued-token limit, against the batch
//! emulator enforcing one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use batch_emulator::{Emulator, EmulatorConfig};
use openai_batch_client::{
    BatchStatus, Client, ClientConfig, CreateBatchRequest, JobConfig, JobRunner, PollConfig,
    ShardInput, TokenLimitBackoff,
};

use crate::support::Events;

/// The emulator's limit: two of the shards below never fit at once.
const LIMIT: u64 = 1_000;

async fn limited_emulator(per_request: Duration) -> Emulator {
    let mut config = EmulatorConfig::fast();
    config.enqueued_token_limit = Some(LIMIT);
    config.timing.per_request = per_request;
    config.concurrency = 1;
    Emulator::start(config).await.unwrap()
}

fn client(emulator: &Emulator) -> Client {
    Client::new(ClientConfig::new(emulator.base_url(), "sk-test".into())).unwrap()
}

/// A shard of `requests` requests of about 150 input tokens each.
fn shard(dir: &Path, name: &str, requests: usize) -> PathBuf {
    let path = dir.join(format!("{name}.jsonl"));
    let text = "govern the data that matters ".repeat(28);
    let lines: String = (0..requests)
        .map(|n| {
            let line = serde_json::json!({
                "custom_id": format!("{name}-{n}"),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": format!("{n}: {text}")}],
                    "max_completion_tokens": 50,
                },
            });
            format!("{line}\n")
        })
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

fn config(limits: &[(&str, u64)]) -> JobConfig {
    JobConfig {
        poll: PollConfig {
            initial_interval: Duration::from_millis(20),
            max_interval: Duration::from_millis(100),
            ..PollConfig::default()
        },
        enqueued_token_limits: limits
            .iter()
            .map(|(model, limit)| ((*model).to_owned(), *limit))
            .collect(),
        token_limit_backoff: TokenLimitBackoff {
            initial: Duration::from_millis(200),
            max: Duration::from_millis(400),
            max_attempts: 40,
        },
        ..JobConfig::default()
    }
}

#[tokio::test]
async fn told_the_limit_the_runner_submits_one_shard_after_another_within_it() {
    let emulator = limited_emulator(Duration::from_millis(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<ShardInput> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            ShardInput::new(*name, shard(dir.path(), name, 4)).with_tokens("gpt-4o-mini", 700)
        })
        .collect();
    let events = Arc::new(Events::default());
    let runner = JobRunner::new(
        client(&emulator),
        dir.path().join("ledger.json"),
        config(&[("gpt-4o-mini", LIMIT)]),
    )
    .unwrap()
    .with_progress(events.clone());

    runner
        .drive(&inputs, &dir.path().join("out"))
        .await
        .unwrap();

    let stats = emulator.stats();
    assert_eq!(stats.token_limit_failures, 0);
    assert!(stats.peak_enqueued_tokens["gpt-4o-mini"] <= LIMIT);
    for shard in runner.shards() {
        assert_eq!(shard.status, Some(BatchStatus::Completed), "{}", shard.id);
        assert!(shard.output_path.as_deref().is_some_and(Path::is_file));
        assert!(shard.attempts.is_empty());
    }
    let lines = events.lines();
    assert!(
        lines.iter().any(|line| line.contains("waiting: 2")),
        "two shards should wait while the first runs: {lines:#?}"
    );
}

#[tokio::test]
async fn a_shard_refused_while_other_work_fills_the_queue_is_created_again_after_a_wait() {
    // Someone else's batch holds the queue for a while.
    let emulator = limited_emulator(Duration::from_millis(150)).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let other = shard(dir.path(), "other", 5);
    let file = client.upload_file(&other, Arc::new(())).await.unwrap();
    let foreign = client
        .create_batch(&CreateBatchRequest::new(file.id, "/v1/chat/completions"))
        .await
        .unwrap();
    let events = Arc::new(Events::default());
    let runner = JobRunner::new(client.clone(), dir.path().join("ledger.json"), config(&[]))
        .unwrap()
        .with_progress(events.clone());
    let input =
        ShardInput::new("mine", shard(dir.path(), "mine", 4)).with_tokens("gpt-4o-mini", 600);

    runner
        .drive(&[input], &dir.path().join("out"))
        .await
        .unwrap();

    let shard = &runner.shards()[0];
    assert_eq!(shard.status, Some(BatchStatus::Completed));
    assert!(
        !shard.attempts.is_empty(),
        "never refused: {:#?}",
        events.lines()
    );
    for attempt in &shard.attempts {
        assert_eq!(attempt.error_codes, ["token_limit_exceeded"]);
        assert_eq!(attempt.status, Some(BatchStatus::Failed));
    }
    let lines = events.lines();
    let waits: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("TokenLimitRetry"))
        .collect();
    assert!(
        waits.iter().any(|line| !line.contains("delay: 0ns")),
        "with none of its own batches running, the runner waits before trying again: {lines:#?}"
    );
    let uploads = lines
        .iter()
        .filter(|line| line.contains(" uploaded "))
        .count();
    assert_eq!(
        uploads, 1,
        "every attempt reuses the uploaded file: {lines:#?}"
    );
    let foreign = client.retrieve_batch(&foreign.id).await.unwrap();
    assert_eq!(foreign.status, BatchStatus::Completed);
}

#[tokio::test]
async fn a_shard_over_the_limit_alone_is_refused_before_anything_is_sent() {
    let emulator = limited_emulator(Duration::from_millis(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let runner = JobRunner::new(
        client(&emulator),
        dir.path().join("ledger.json"),
        config(&[("gpt-4o-mini", LIMIT)]),
    )
    .unwrap();
    let input =
        ShardInput::new("big", shard(dir.path(), "big", 9)).with_tokens("gpt-4o-mini", 1_400);

    let error = runner.submit(&[input]).await.unwrap_err();

    assert!(
        error
            .to_string()
            .contains("more than its enqueued-token limit of 1000"),
        "{error}"
    );
    assert!(runner.shards().is_empty());
    assert_eq!(emulator.stats().token_limit_failures, 0);
}

#[tokio::test]
async fn finished_shards_files_are_deleted_from_the_server() {
    let emulator = limited_emulator(Duration::from_millis(5)).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let runner =
        JobRunner::new(client.clone(), dir.path().join("ledger.json"), config(&[])).unwrap();
    let input = ShardInput::new("s", shard(dir.path(), "s", 2)).with_tokens("gpt-4o-mini", 300);
    runner
        .drive(&[input], &dir.path().join("out"))
        .await
        .unwrap();
    let before = client.list_files_page(None, None, None).await.unwrap().data;
    assert_eq!(before.len(), 2, "input and output: {before:?}");
    assert!(
        before
            .iter()
            .filter(|file| file.purpose == "batch")
            .all(|file| file.expires_at.is_some()),
        "uploads expire: {before:?}"
    );

    // Keeping the results deletes the input only; then everything.
    assert_eq!(runner.delete_remote_files(0, true).await.unwrap(), 1);
    let left = client.list_files_page(None, None, None).await.unwrap().data;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].purpose, "batch_output");
    assert_eq!(runner.delete_remote_files(0, false).await.unwrap(), 1);
    assert!(
        client
            .list_files_page(None, None, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );
    // Recorded: nothing is asked for again.
    assert_eq!(runner.delete_remote_files(0, false).await.unwrap(), 0);
    let shard = &runner.shards()[0];
    assert!(shard.input_file_deleted && shard.result_files_deleted);
    // The local copy stays.
    assert!(shard.output_path.as_deref().is_some_and(Path::is_file));
}
