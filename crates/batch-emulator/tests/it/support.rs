//! Shared helpers: start an emulator, build a fast client, write request files, run and read batches.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use batch_emulator::{Emulator, EmulatorConfig, Timing};
use batch_request::ResultLine;
use openai_batch_client::{
    Batch, BatchId, BatchStatus, Client, ClientConfig, CreateBatchRequest, FileId, PollConfig,
    RetryPolicy, SecretString,
};
use serde_json::Value;

pub(crate) const CHAT: &str = "/v1/chat/completions";

/// A config whose steps take milliseconds.
pub(crate) fn fast_config() -> EmulatorConfig {
    EmulatorConfig {
        timing: Timing {
            validation: Duration::from_millis(10),
            per_request: Duration::from_millis(2),
            finalizing: Duration::from_millis(10),
        },
        concurrency: 8,
        ..EmulatorConfig::default()
    }
}

pub(crate) async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("the emulator starts")
}

/// Retries with millisecond delays.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries_get: 5,
        max_retries_post: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(5),
    }
}

pub(crate) fn client_with_key(emulator: &Emulator, key: &str) -> Client {
    let mut config = ClientConfig::new(emulator.base_url(), SecretString::from(key.to_owned()));
    config.retry = fast_retry();
    Client::new(config).expect("the client builds")
}

pub(crate) fn client(emulator: &Emulator) -> Client {
    client_with_key(emulator, "sk-test")
}

/// A plain HTTP client and the bearer header, for what the batch client does not expose.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// The raw JSON the emulator answers to `GET <base>/<path>` (key `k`).
pub(crate) async fn get_json(emulator: &Emulator, path: &str) -> Value {
    http()
        .get(format!("{}/{path}", emulator.base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// One request line asking for a lesson.
pub(crate) fn request_line(custom_id: &str, title: &str, model: &str) -> String {
    let code = custom_id.strip_prefix("lesson_").unwrap_or(custom_id);
    serde_json::json!({
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT,
        "body": {
            "model": model,
            "messages": [
                {"role": "system", "content": "You write clear lessons in Markdown."},
                {"role": "user", "content": format!("# Lesson {code}: {title}\n\nWrite this lesson for beginners.")}
            ],
            "max_completion_tokens": 4000
        }
    })
    .to_string()
}

/// `n` lesson requests `lesson_M<m>-L<nnn>`, returned as (custom_id, title) pairs too.
pub(crate) fn lesson_requests(n: usize) -> (String, Vec<(String, String)>) {
    let mut text = String::new();
    let mut lessons = Vec::new();
    for i in 0..n {
        let custom_id = format!("lesson_M{}-L{:03}", i / 50, i % 50 + 1);
        let title = format!("Working with data, part {}", i + 1);
        text.push_str(&request_line(&custom_id, &title, "gpt-4o-mini"));
        text.push('\n');
        lessons.push((custom_id, title));
    }
    (text, lessons)
}

pub(crate) fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("the scratch file is written");
    path
}

pub(crate) async fn upload_text(client: &Client, dir: &Path, name: &str, text: &str) -> FileId {
    let path = write_file(dir, name, text);
    client
        .upload_file(&path, Arc::new(()))
        .await
        .expect("the upload succeeds")
        .id
}

pub(crate) async fn create(client: &Client, input_file_id: FileId) -> Batch {
    client
        .create_batch(&CreateBatchRequest::new(input_file_id, CHAT))
        .await
        .expect("the batch is created")
}

pub(crate) fn fast_poll() -> PollConfig {
    PollConfig {
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
        ..PollConfig::default()
    }
}

/// Waits for a terminal status; returns the final batch and every observed state.
pub(crate) async fn wait(client: &Client, batch_id: &BatchId) -> (Batch, Vec<Batch>) {
    let mut seen = Vec::new();
    let batch = tokio::time::timeout(
        Duration::from_secs(120),
        client.wait_for_batch(batch_id, &fast_poll(), |batch| seen.push(batch.clone())),
    )
    .await
    .expect("the batch ends in time")
    .expect("polling works");
    (batch, seen)
}

/// Polls until `ready` holds for the batch.
pub(crate) async fn wait_until(
    client: &Client,
    batch_id: &BatchId,
    ready: impl Fn(&Batch) -> bool,
) -> Batch {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let batch = client
            .retrieve_batch(batch_id)
            .await
            .expect("retrieve works");
        if ready(&batch) {
            return batch;
        }
        assert!(
            !batch.status.is_terminal(),
            "ended before the condition held: {batch:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition never held: {batch:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Downloads a file with the client and returns its lines as raw JSON.
pub(crate) async fn download_lines(client: &Client, file_id: &FileId) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dest = dir.path().join("download.jsonl");
    client
        .download_file_to(file_id, &dest, Arc::new(()))
        .await
        .expect("the download succeeds");
    let text = std::fs::read_to_string(&dest).expect("the download is readable");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "every line ends with a newline"
    );
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// Parses lines with the contract's line type, proving they fit it.
pub(crate) fn parse_result_lines(lines: &[Value]) -> Vec<ResultLine> {
    lines
        .iter()
        .map(|line| serde_json::from_value(line.clone()).expect("a contract result line"))
        .collect()
}

/// Runs `text` as a batch to its end.
pub(crate) async fn run_batch(client: &Client, text: &str) -> Batch {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file_id = upload_text(client, dir.path(), "requests.jsonl", text).await;
    let batch = create(client, file_id).await;
    wait(client, &batch.id).await.0
}

pub(crate) fn assert_terminal(batch: &Batch, status: BatchStatus) {
    assert_eq!(batch.status, status, "{batch:#?}");
}
