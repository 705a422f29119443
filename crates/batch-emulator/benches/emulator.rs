//! 50,000 requests through the offline responder end to end: upload, create, wait, download.
//!
//! Reports the time of each phase and the peak RSS of the process (the emulator runs
//! in-process, so `VmHWM` covers it and the client).

#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use batch_emulator::{Emulator, EmulatorConfig, Timing};
use openai_batch_client::{
    BatchStatus, Client, ClientConfig, CreateBatchRequest, PollConfig, SecretString,
};

const REQUESTS: usize = 50_000;

const TEMPLATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../prompts/LESSON_GENERATION_PROMPT_GENERIC.md"
));

/// Writes the input file line by line; returns its size.
fn write_input(path: &Path) -> u64 {
    // About 1.6 KB of the real prompt per request keeps 50,000 of them under the 200 MB limit.
    let cut = TEMPLATE
        .char_indices()
        .map(|(at, _)| at)
        .find(|at| *at >= 1600)
        .unwrap_or(TEMPLATE.len());
    let template = &TEMPLATE[..cut];
    let mut out = BufWriter::new(std::fs::File::create(path).expect("create the input"));
    for i in 0..REQUESTS {
        let code = format!("M{}-L{:03}", i / 100, i % 100 + 1);
        let title = format!("Working with open data, part {}", i + 1);
        let prompt = template
            .replace("{{lesson_code}}", &code)
            .replace("{{lesson_title}}", &title);
        let line = serde_json::json!({
            "custom_id": format!("lesson_{code}"),
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You are an experienced instructional designer."},
                    {"role": "user", "content": prompt}
                ],
                "max_completion_tokens": 16000
            }
        });
        serde_json::to_writer(&mut out, &line).expect("write a line");
        out.write_all(b"\n").expect("write a line");
    }
    out.flush().expect("flush the input");
    std::fs::metadata(path).expect("stat the input").len()
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let input = dir.path().join("requests.jsonl");
    let started = Instant::now();
    let input_bytes = write_input(&input);
    println!(
        "input: {REQUESTS} requests, {:.1} MB, written in {:.2?}",
        input_bytes as f64 / 1e6,
        started.elapsed()
    );
    let rss_before = peak_rss_kib();

    let config = EmulatorConfig {
        timing: Timing::instant(),
        concurrency: 64,
        ..EmulatorConfig::default()
    };
    let started = Instant::now();
    let emulator = Emulator::start(config).await.expect("the emulator starts");
    println!("start (tokenizer loaded): {:.2?}", started.elapsed());
    let client = Client::new(ClientConfig::new(
        emulator.base_url(),
        SecretString::from("sk-bench".to_owned()),
    ))
    .expect("a client");

    let total = Instant::now();
    let upload = client
        .upload_file(&input, Arc::new(()))
        .await
        .expect("upload");
    let uploaded = total.elapsed();
    let batch = client
        .create_batch(&CreateBatchRequest::new(
            upload.id.clone(),
            "/v1/chat/completions",
        ))
        .await
        .expect("create");
    let poll = PollConfig {
        initial_interval: Duration::from_millis(100),
        max_interval: Duration::from_millis(100),
        ..PollConfig::default()
    };
    let batch = client
        .wait_for_batch(&batch.id, &poll, |_| {})
        .await
        .expect("wait");
    let ran = total.elapsed();
    assert_eq!(batch.status, BatchStatus::Completed);
    let output = dir.path().join("output.jsonl");
    let output_bytes = client
        .download_file_to(
            batch.output_file_id.as_ref().expect("an output file"),
            &output,
            Arc::new(()),
        )
        .await
        .expect("download");
    let all = total.elapsed();
    let lines = BufReader::new(std::fs::File::open(&output).expect("open the output"))
        .lines()
        .count();
    assert_eq!(lines, REQUESTS);
    let usage = batch.usage.expect("usage");

    println!("upload: {:.2?}", uploaded);
    println!("create + run + wait: {:.2?}", ran - uploaded);
    println!(
        "download: {:.2?} ({:.1} MB)",
        all - ran,
        output_bytes as f64 / 1e6
    );
    println!(
        "end to end: {:.2?} for {REQUESTS} requests ({:.0} requests/s)",
        all,
        REQUESTS as f64 / all.as_secs_f64()
    );
    println!(
        "tokens counted: {} input, {} output",
        usage.input_tokens, usage.output_tokens
    );
    if let (Some(before), Some(peak)) = (rss_before, peak_rss_kib()) {
        println!(
            "peak RSS (VmHWM): {:.1} MiB (before the emulator started: {:.1} MiB)",
            peak as f64 / 1024.0,
            before as f64 / 1024.0
        );
    }
    emulator.shutdown().await;
}
