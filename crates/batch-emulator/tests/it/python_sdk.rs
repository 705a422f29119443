//! Python clients against the emulator: the official OpenAI Python SDK, parasail's
//! `openai-batch`, an unmodified third-party batch client, and the official Anthropic
//! Python SDK (Message Batches). Required when `CI` is set;
//! skipped (saying so) elsewhere when the module cannot be imported.

use std::process::Command;
use std::time::Duration;

use batch_emulator::{EmulatorConfig, Timing};
use openai_batch_client::{BatchId, BatchStatus};
use serde_json::Value;

use crate::support::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_sdk_check.py");
const OPENAI_BATCH_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_batch_check.py");
const ANTHROPIC_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/anthropic_sdk_check.py");

/// Whether `python3` can import `module`. With `CI` set a missing module fails the test,
/// rather than passing unseen; `package` is what `.ci/run` installs.
#[allow(clippy::print_stderr)] // A skipped check says so in the test output.
fn available(module: &str, package: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the Python module `{module}` is not installed: `python3 -m pip install {package}` (.ci/run does)"
        );
        eprintln!(
            "SKIPPED (CI is not set): the Python module `{module}` is not installed (`pip install {package}` enables this check)"
        );
    }
    found
}

/// Runs a check script against `base_url` off the async runtime, with none of the caller's
/// OpenAI variables; checks it succeeded and returns its last stdout line, a JSON summary.
async fn run_script(script: &'static str, base_url: &str) -> Value {
    let base_url = base_url.to_owned();
    let work_dir = tempfile::tempdir().unwrap();
    let dir = work_dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new("python3");
        command.arg(script).arg(&base_url).arg(&dir);
        for var in [
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "PARASAIL_API_KEY",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "ANTHROPIC_BASE_URL",
        ] {
            command.env_remove(var);
        }
        command.output().expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let summary: Value = serde_json::from_str(last).expect("a JSON summary line");
    assert_eq!(summary["ok"], true);
    summary
}

/// An emulator slow enough that a script cancels its 40-request batch while it runs.
fn cancellable_config() -> EmulatorConfig {
    let mut config = fast_config();
    config.timing = Timing {
        validation: Duration::from_millis(20),
        per_request: Duration::from_millis(20),
        finalizing: Duration::from_millis(20),
    };
    config.concurrency = 2;
    config
}

#[tokio::test]
async fn the_official_python_sdk_works_against_the_emulator() {
    if !available("openai", "openai") {
        return;
    }
    let emulator = start(cancellable_config()).await;
    let summary = run_script(SCRIPT, emulator.base_url()).await;
    eprintln!("checked with openai-python {}", summary["sdk"]);

    // What the SDK did is visible to our own client too.
    let client = client(&emulator);
    let batch_id = BatchId::from(summary["batch"].as_str().unwrap());
    let batch = client.retrieve_batch(&batch_id).await.unwrap();
    assert_eq!(batch.status, BatchStatus::Completed);
    assert_eq!(batch.metadata_value("run_id"), Some("python-sdk"));
    let input = client.retrieve_file(&batch.input_file_id).await.unwrap();
    assert_eq!(
        input.filename, "upload",
        "the raw-bytes upload fed the batch"
    );
    let cancelled = BatchId::from(summary["cancelled"].as_str().unwrap());
    let cancelled = client.retrieve_batch(&cancelled).await.unwrap();
    assert_eq!(cancelled.status, BatchStatus::Cancelled);
}

#[tokio::test]
async fn the_third_party_openai_batch_client_works_against_the_emulator() {
    if !available("openai_batch", "openai-batch httpx") {
        return;
    }
    let emulator = start(fast_config()).await;
    let summary = run_script(OPENAI_BATCH_SCRIPT, emulator.base_url()).await;
    eprintln!("checked with openai-batch {}", summary["openai_batch"]);

    // It uploaded raw bytes (the SDK names them `upload`) and ran one batch to the end.
    let client = client(&emulator);
    let batch_id = BatchId::from(summary["batch"].as_str().unwrap());
    let batch = client.retrieve_batch(&batch_id).await.unwrap();
    assert_eq!(batch.status, BatchStatus::Completed);
    assert_eq!(batch.metadata_value("run_id"), Some("openai-batch"));
    let input = client.retrieve_file(&batch.input_file_id).await.unwrap();
    assert_eq!(input.filename, "upload");
    assert_eq!(batch.counts().completed, 3);
}

#[tokio::test]
async fn the_official_anthropic_python_sdk_works_against_the_emulator() {
    if !available("anthropic", "anthropic") {
        return;
    }
    let emulator = start(cancellable_config()).await;
    let summary = run_script(ANTHROPIC_SCRIPT, &emulator.anthropic_base_url()).await;
    eprintln!("checked with anthropic-sdk-python {}", summary["sdk"]);

    // What the SDK did is visible over plain HTTP too: the deleted batch is gone, the
    // canceled one ended, and neither shows through the OpenAI routes.
    let get = |path: String| {
        http()
            .get(format!("{}{path}", emulator.anthropic_base_url()))
            .header("x-api-key", "k")
            .header("anthropic-version", "2023-06-01")
            .send()
    };
    let deleted = summary["batch"].as_str().unwrap();
    let gone = get(format!("/v1/messages/batches/{deleted}"))
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let canceled = summary["canceled"].as_str().unwrap();
    let batch: Value = get(format!("/v1/messages/batches/{canceled}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(batch["processing_status"], "ended");
    let openai = get_json(&emulator, "batches").await;
    assert_eq!(openai["data"], serde_json::json!([]), "{openai}");
}
