//! Transfer benchmark: a 1 GiB download and a 200 MB upload against a raw HTTP server on
//! loopback, reporting throughput and peak RSS (target: under 64 MB).

#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use openai_batch_client::{Client, ClientConfig, FileId, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DOWNLOAD_BYTES: u64 = 1024 * 1024 * 1024;
const UPLOAD_BYTES: u64 = 200 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

#[tokio::main]
async fn main() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base_url = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(serve(listener));
    let client =
        Client::new(ClientConfig::new(base_url, SecretString::from("sk-bench"))).expect("client");
    let dir = tempfile::tempdir().expect("temporary directory");

    let input = dir.path().join("upload.jsonl");
    write_input(&input);
    let started = Instant::now();
    let file = client
        .upload_file(&input, Arc::new(()))
        .await
        .expect("upload");
    let upload = started.elapsed();
    assert_eq!(file.bytes, UPLOAD_BYTES, "the server saw every byte");
    std::fs::remove_file(&input).expect("remove upload input");

    let dest = dir.path().join("download.jsonl");
    let started = Instant::now();
    let bytes = client
        .download_file_to(&FileId::from("file-big"), &dest, Arc::new(()))
        .await
        .expect("download");
    let download = started.elapsed();
    assert_eq!(bytes, DOWNLOAD_BYTES);
    assert_eq!(
        std::fs::metadata(&dest).expect("downloaded file").len(),
        DOWNLOAD_BYTES
    );

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "upload   {:>6.0} MiB in {:>6.2} s: {:>7.1} MiB/s",
        mib(UPLOAD_BYTES),
        upload.as_secs_f64(),
        mib(UPLOAD_BYTES) / upload.as_secs_f64()
    );
    println!(
        "download {:>6.0} MiB in {:>6.2} s: {:>7.1} MiB/s",
        mib(DOWNLOAD_BYTES),
        download.as_secs_f64(),
        mib(DOWNLOAD_BYTES) / download.as_secs_f64()
    );
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS (VmHWM, client and server together): {:.1} MiB (target < 64 MB)",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
}

/// Writes the upload input in chunks, never holding it whole.
fn write_input(path: &std::path::Path) {
    let line =
        b"{\"custom_id\":\"x\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{}}\n";
    let chunk: Vec<u8> = line.iter().copied().cycle().take(CHUNK).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create input"));
    let mut left = UPLOAD_BYTES;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        file.write_all(&chunk[..n]).expect("write input");
        left -= n as u64;
    }
    file.flush().expect("flush input");
}

/// A minimal HTTP/1.1 server: `POST /files` counts and discards the body, any `GET` streams
/// 1 GiB. One request per connection.
async fn serve(listener: TcpListener) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let _ = handle(socket).await;
        });
    }
}

async fn handle(mut socket: TcpStream) -> std::io::Result<()> {
    let mut buffer = vec![0u8; CHUNK];
    let mut head = Vec::new();
    let body_start = loop {
        let n = socket.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
    if text.starts_with("post") {
        let length: u64 = text
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        let mut received = (head.len() - body_start) as u64;
        while received < length {
            let n = socket.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            received += n as u64;
        }
        // The multipart envelope is small; report the file part's size as the upload's.
        let envelope = length.saturating_sub(UPLOAD_BYTES);
        let body = format!(
            r#"{{"id":"file-up","object":"file","bytes":{},"created_at":1,"filename":"upload.jsonl","purpose":"batch"}}"#,
            received - envelope.min(received)
        );
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await?;
    } else {
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {DOWNLOAD_BYTES}\r\nconnection: close\r\n\r\n"
        );
        socket.write_all(answer.as_bytes()).await?;
        let chunk = vec![b'x'; CHUNK];
        let mut left = DOWNLOAD_BYTES;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            socket.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
    }
    socket.shutdown().await
}

/// Peak resident set size in KiB, from `VmHWM` in /proc/self/status.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}
