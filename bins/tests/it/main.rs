//! End-to-end tests: the real binaries against the in-process batch emulator on loopback.

mod anthropic_job;
mod anthropic_results;
mod check;
mod check_anthropic;
mod cli_help;
mod context_window;
#[cfg(unix)]
mod emulator_cli;
mod errors;
mod generate;
mod job;
mod list_lessons;
mod outline;
mod preview;
mod process;
mod provenance;
#[cfg(unix)]
mod pty;
mod quality;
mod scheduling;
mod summaries;
mod terminal;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use batch_emulator::{Emulator, EmulatorConfig};
use openai_batch_client::{Batch, Client, ClientConfig};

/// The Data Governance outline (15 modules, 336 lessons).
pub(crate) fn datagov() -> PathBuf {
    repo().join("fixtures/datagov/Content Structure.md")
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One of the commands, run in `cwd` with none of the OpenAI variables of the caller's
/// environment, so tests never pick up a real key or endpoint.
pub(crate) fn command(bin: &str, cwd: &Path) -> Command {
    let path = match bin {
        "generate" => env!("CARGO_BIN_EXE_generate-datagov-lessons-batch"),
        "check" => env!("CARGO_BIN_EXE_check-batch-status"),
        "process" => env!("CARGO_BIN_EXE_process-batch-results"),
        other => panic!("unknown binary {other}"),
    };
    let mut command = Command::new(path);
    command.current_dir(cwd);
    for var in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
    ] {
        command.env_remove(var);
    }
    command
}

/// `generate-datagov-lessons-batch` in `dir` on the outline `outline`, with nothing else set.
pub(crate) fn generate_on(dir: &Path, outline: &Path) -> Command {
    let mut cmd = command("generate", dir);
    cmd.arg("--content").arg(outline);
    cmd
}

/// The same, writing into `dir/<out>` and `dir/work` and polling fast.
pub(crate) fn generate_into(dir: &Path, outline: &Path, out: &str) -> Command {
    let mut cmd = generate_on(dir, outline);
    cmd.args(["--out", out, "--work-dir", "work"]).args([
        "--poll-interval",
        "0.05",
        "--max-poll-interval",
        "0.2",
    ]);
    cmd
}

/// The same, against an emulator reached by `base_url` with the test key, as a real run
/// would be.
pub(crate) fn generate_against(dir: &Path, outline: &Path, out: &str, base_url: &str) -> Command {
    let mut cmd = generate_into(dir, outline, out);
    cmd.args(["--base-url", base_url])
        .env("OPENAI_API_KEY", "sk-test-key");
    cmd
}

/// An emulator that runs one request at a time, `per_request` each (validation and
/// finalizing 10 ms), so a test can act while a batch runs.
pub(crate) fn one_at_a_time(per_request: Duration) -> EmulatorConfig {
    let mut config = EmulatorConfig::fast();
    config.concurrency = 1;
    config.timing = batch_emulator::Timing {
        validation: Duration::from_millis(10),
        per_request,
        finalizing: Duration::from_millis(10),
    };
    config
}

/// The Anthropic key the tests give the emulator.
pub(crate) const ANTHROPIC_KEY: &str = "sk-ant-test";

/// An Anthropic client of the emulator's Message Batches API.
pub(crate) fn anthropic_client(emulator: &Emulator) -> anthropic_batch_client::Client {
    anthropic_batch_client::Client::new(anthropic_batch_client::ClientConfig::new(
        emulator.anthropic_base_url(),
        secrecy::SecretString::from(ANTHROPIC_KEY.to_owned()),
    ))
    .unwrap()
}

/// Every message batch the emulator knows, newest first.
pub(crate) async fn message_batches(
    emulator: &Emulator,
) -> Vec<anthropic_batch_client::MessageBatch> {
    use futures::TryStreamExt;
    anthropic_client(emulator)
        .list_batches(Some(100))
        .try_collect()
        .await
        .unwrap()
}

/// Runs a command off the async runtime, so the in-process emulator keeps serving.
pub(crate) async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("the binary starts"))
        .await
        .expect("the blocking task finishes")
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

pub(crate) async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("the emulator starts")
}

/// Every batch the emulator knows, newest first.
pub(crate) async fn batches(emulator: &Emulator) -> Vec<Batch> {
    batches_with_key(emulator, "sk-test-key").await
}

/// Every batch the emulator knows, asked with `key`.
pub(crate) async fn batches_with_key(emulator: &Emulator, key: &str) -> Vec<Batch> {
    let client = Client::new(ClientConfig::new(
        emulator.base_url(),
        secrecy::SecretString::from(key.to_owned()),
    ))
    .unwrap();
    let page = client.list_batches_page(None, Some(100)).await.unwrap();
    page.data
}

/// The text of the shard a batch was created from, as the job folder in `work` keeps it
/// (the server's copy is deleted once the lessons are written).
pub(crate) fn input_of(work: &Path, batch: &Batch) -> String {
    let shard = batch.metadata_value("shard").expect("a batch of a job");
    let path = job_file(work, &format!("{shard}.jsonl")).expect("a job folder");
    std::fs::read_to_string(&path).unwrap()
}

/// Runs one one-request batch to its end, so one-time costs of the emulator (its tokenizer)
/// are paid before a test measures time against a completion window.
pub(crate) async fn warm_up(emulator: &Emulator) {
    let line = r#"{"custom_id":"warm-up","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}}"#;
    run_one_line_batch(emulator.base_url(), line).await;
}

/// Uploads `line` as a one-request input file to the server at `base_url`, creates a batch of
/// it and polls it to its end; returns the finished batch.
pub(crate) async fn run_one_line_batch(base_url: &str, line: &str) -> Batch {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-line.jsonl");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let client = Client::new(ClientConfig::new(
        base_url,
        secrecy::SecretString::from("sk-test-key".to_owned()),
    ))
    .unwrap();
    let file = client
        .upload_file(&path, std::sync::Arc::new(()))
        .await
        .unwrap();
    let batch = client
        .create_batch(&openai_batch_client::CreateBatchRequest::new(
            file.id,
            "/v1/chat/completions",
        ))
        .await
        .unwrap();
    let config = openai_batch_client::PollConfig {
        initial_interval: std::time::Duration::from_millis(20),
        max_interval: std::time::Duration::from_millis(50),
        ..openai_batch_client::PollConfig::default()
    };
    client
        .wait_for_batch(&batch.id, &config, |_| {})
        .await
        .unwrap()
}

/// `text` as a regex that matches it literally (for insta's filters, e.g. a temp dir).
pub(crate) fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// Owned filter pairs as the `&str` pairs `insta::with_settings!` takes.
pub(crate) fn as_pairs(filters: &[(String, String)]) -> Vec<(&str, &str)> {
    filters
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect()
}

/// A copy of the one-answer results fixture at `dir/results.jsonl`, so the failures file
/// process-batch-results writes beside it lands in `dir`; returns its path.
pub(crate) fn success_results_in(dir: &Path) -> PathBuf {
    let results = dir.join("results.jsonl");
    std::fs::copy(repo().join("fixtures/batch-output/success.jsonl"), &results).unwrap();
    results
}

/// The lesson files in `dir`, sorted.
pub(crate) fn lesson_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".md"))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// A file of the one job in `work` (`<work>/<name>-<id>/<file>`), whether it exists yet
/// or not; `None` while no job folder exists.
pub(crate) fn job_file(work: &Path, file: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(work)
        .ok()?
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    assert!(
        dirs.len() <= 1,
        "more than one job folder in {}: {dirs:?}",
        work.display()
    );
    dirs.pop().map(|dir| dir.join(file))
}
