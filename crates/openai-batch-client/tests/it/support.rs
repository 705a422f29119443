//! Shared helpers: clients on loopback servers, JSON objects, raw TCP servers, recorders.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openai_batch_client::{
    Client, ClientConfig, JobEvent, JobProgress, Progress, RetryPolicy, SecretString, Timeouts,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The key every test client sends; it must never show up in an error.
pub(crate) const KEY: &str = "sk-test-SECRET-4f9a2c7e1b";

/// Retries as the SDK does, but in milliseconds.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        ..RetryPolicy::default()
    }
}

/// A config for a loopback server, with organization and project set.
pub(crate) fn config(base_url: &str) -> ClientConfig {
    ClientConfig {
        organization: Some("org-test".to_owned()),
        project: Some("proj-test".to_owned()),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(10),
            read: Duration::from_secs(10),
        },
        retry: fast_retry(),
        ..ClientConfig::new(base_url, SecretString::from(KEY))
    }
}

/// A client for a loopback server.
pub(crate) fn client(base_url: &str) -> Client {
    Client::new(config(base_url)).unwrap()
}

/// A batch object with the given id and status.
pub(crate) fn batch(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": null,
        "input_file_id": "file-in",
        "completion_window": "24h",
        "status": status,
        "output_file_id": null,
        "error_file_id": null,
        "created_at": 1_800_000_000,
        "expires_at": 1_800_086_400,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": null
    })
}

/// `batch` with counts.
pub(crate) fn batch_counts(
    id: &str,
    status: &str,
    total: u64,
    completed: u64,
    failed: u64,
) -> Value {
    let mut value = batch(id, status);
    value["request_counts"] = json!({"total": total, "completed": completed, "failed": failed});
    value
}

/// A file object.
pub(crate) fn file(id: &str, filename: &str, bytes: u64) -> Value {
    json!({
        "id": id,
        "object": "file",
        "bytes": bytes,
        "created_at": 1_800_000_000,
        "filename": filename,
        "purpose": "batch",
        "status": "processed",
        "expires_at": null
    })
}

/// A list page.
pub(crate) fn page(data: Vec<Value>, has_more: bool) -> Value {
    let first_id = data.first().map(|batch| batch["id"].clone());
    let last_id = data.last().map(|batch| batch["id"].clone());
    json!({"object": "list", "data": data, "first_id": first_id, "last_id": last_id, "has_more": has_more})
}

/// An error body.
pub(crate) fn api_error(message: &str, error_type: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
}

/// Deterministic pseudo-random bytes.
pub(crate) fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Writes a shard file with `n` request lines and returns its path.
pub(crate) fn write_shard(dir: &Path, name: &str, n: usize) -> PathBuf {
    let path = dir.join(name);
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{{\"custom_id\":\"{name}-{i}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{}}}}\n"
            )
        })
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

/// The names of the entries of a directory, sorted.
pub(crate) fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A raw TCP server on loopback: the `n`th connection (0-based) gets `reply(n)` written after
/// the request head was read, then the connection is closed. `None` closes without a word.
pub(crate) async fn raw_server(
    reply: impl Fn(usize) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let reply = reply(n);
            tokio::spawn(async move {
                let Some(reply) = reply else {
                    drop(socket);
                    return;
                };
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = socket.write_all(&reply).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{address}"), connections)
}

/// An HTTP/1.1 answer with a JSON body.
pub(crate) fn http_json(value: &Value) -> Vec<u8> {
    let body = value.to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Records transfer progress.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) starts: Mutex<Vec<Option<u64>>>,
    pub(crate) bytes: AtomicU64,
}

impl Progress for Recorder {
    fn on_start(&self, total: Option<u64>) {
        self.starts.lock().unwrap().push(total);
        self.bytes.store(0, Ordering::SeqCst);
    }

    fn on_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::SeqCst);
    }
}

/// Records job events as short strings (byte events summed per shard).
#[derive(Debug, Default)]
pub(crate) struct Events {
    pub(crate) lines: Mutex<Vec<String>>,
    pub(crate) upload_bytes: AtomicU64,
    pub(crate) download_bytes: AtomicU64,
}

impl Events {
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl JobProgress for Events {
    fn on_event(&self, event: &JobEvent<'_>) {
        let line = match event {
            JobEvent::UploadStarted { shard, bytes, .. } => format!("{shard} upload {bytes}"),
            JobEvent::UploadBytes { n, .. } => {
                self.upload_bytes.fetch_add(*n, Ordering::SeqCst);
                return;
            }
            JobEvent::Uploaded { shard, file_id } => format!("{shard} uploaded {file_id}"),
            JobEvent::Created { shard, batch } => format!("{shard} created {}", batch.id),
            JobEvent::Recovered { shard, batch } => format!("{shard} recovered {}", batch.id),
            JobEvent::Adopted { shard, batch } => format!("{shard} adopted {}", batch.id),
            JobEvent::TokenLimitExceeded { shard, batch } => {
                format!("{shard} token limit exceeded {}", batch.id)
            }
            JobEvent::Changed { shard, batch } => {
                let counts = batch.counts();
                format!(
                    "{shard} {} {}/{}/{}",
                    batch.status, counts.completed, counts.failed, counts.total
                )
            }
            JobEvent::DownloadStarted { shard, file_id, .. } => {
                format!("{shard} download {file_id}")
            }
            JobEvent::DownloadBytes { n, .. } => {
                self.download_bytes.fetch_add(*n, Ordering::SeqCst);
                return;
            }
            JobEvent::Downloaded { shard, bytes, .. } => format!("{shard} downloaded {bytes}"),
            JobEvent::ShardFailed { shard, error } => format!("{shard} failed: {error}"),
            _ => format!("{event:?}"),
        };
        self.lines.lock().unwrap().push(line);
    }
}
