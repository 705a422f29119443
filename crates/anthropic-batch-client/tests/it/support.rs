//! Shared helpers: clients on loopback servers, batch objects, error bodies, raw TCP servers.

use std::time::Duration;

use anthropic_batch_client::{
    BatchRequest, Client, ClientConfig, CustomId, MessageParam, MessageParams, RetryPolicy,
    SecretString, Timeouts,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The key every test client sends; it must never show up in an error.
pub(crate) const KEY: &str = "sk-ant-test-SECRET-7d3e91b0c4";

/// Retries as the SDK does, but in milliseconds.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        ..RetryPolicy::default()
    }
}

/// A config for a loopback server.
pub(crate) fn config(base_url: &str) -> ClientConfig {
    ClientConfig {
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

/// A message batch object with the given id and status, results at `results_url` when given.
pub(crate) fn batch(id: &str, status: &str, results_url: Option<String>) -> Value {
    let ended = status == "ended";
    json!({
        "id": id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": if ended { 0 } else { 2 },
            "succeeded": if ended { 2 } else { 0 },
            "errored": 0, "canceled": 0, "expired": 0
        },
        "ended_at": if ended { json!("2026-12-04T11:00:00Z") } else { Value::Null },
        "created_at": "2026-12-04T10:00:00.123456Z",
        "expires_at": "2026-12-05T10:00:00.123456Z",
        "archived_at": null,
        "cancel_initiated_at": null,
        "results_url": results_url
    })
}

/// A list page of batches.
pub(crate) fn page(data: Vec<Value>, has_more: bool) -> Value {
    let first_id = data.first().map(|batch| batch["id"].clone());
    let last_id = data.last().map(|batch| batch["id"].clone());
    json!({"data": data, "has_more": has_more, "first_id": first_id, "last_id": last_id})
}

/// An error body in Anthropic's shape.
pub(crate) fn api_error(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_body"})
}

/// A request with a plain user message.
pub(crate) fn request(custom_id: &str) -> BatchRequest {
    BatchRequest {
        custom_id: CustomId::new(custom_id).unwrap(),
        params: MessageParams {
            model: "claude-sonnet-4-5".to_owned(),
            max_tokens: 1024,
            system: None,
            messages: vec![MessageParam::user(format!("Write {custom_id}"))],
            extra: Default::default(),
        },
    }
}

/// A succeeded result line for `custom_id`.
pub(crate) fn succeeded_line(custom_id: &str, text: &str) -> String {
    let line = json!({"custom_id": custom_id, "result": {"type": "succeeded", "message": {
        "id": format!("msg_{custom_id}"), "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 20, "service_tier": "batch"}}}});
    format!("{line}\n")
}

/// A raw HTTP/1.1 server on loopback: each accepted connection is handed to `serve`, with its
/// 0-based number, after the request head has been read.
pub(crate) async fn raw_server<F, Fut>(serve: F) -> String
where
    F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            read_head(&mut stream).await;
            tokio::spawn(serve(n, stream));
            n += 1;
        }
    });
    format!("http://{addr}")
}

/// Reads a request head (the requests of these tests have no body).
async fn read_head(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
}

/// Writes a response head announcing `len` bytes of body.
pub(crate) async fn write_head(stream: &mut TcpStream, len: usize) {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/binary\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
}
