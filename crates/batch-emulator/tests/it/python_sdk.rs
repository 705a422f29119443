//! The official OpenAI Python SDK against the emulator. Required when `CI` is set; skipped
//! (saying so) elsewhere when `python3 -c "import openai"` fails.

use std::process::Command;
use std::time::Duration;

use batch_emulator::Timing;
use openai_batch_client::{BatchId, BatchStatus};
use serde_json::Value;

use crate::support::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_sdk_check.py");

fn sdk_available() -> bool {
    Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[tokio::test]
async fn the_official_python_sdk_works_against_the_emulator() {
    if !sdk_available() {
        // In CI the check is required: a missing SDK fails it rather than passing unseen.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the OpenAI Python SDK is not installed: `python3 -m pip install openai` (.ci/run does)"
        );
        eprintln!(
            "SKIPPED (CI is not set): the OpenAI Python SDK is not installed (`pip install openai` enables this check)"
        );
        return;
    }
    let mut config = fast_config();
    // Slow enough that the script cancels its 40-request batch while it runs.
    config.timing = Timing {
        validation: Duration::from_millis(20),
        per_request: Duration::from_millis(20),
        finalizing: Duration::from_millis(20),
    };
    config.concurrency = 2;
    let emulator = start(config).await;
    let base_url = emulator.base_url().to_owned();
    let work_dir = tempfile::tempdir().unwrap();
    let dir = work_dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(SCRIPT)
            .arg(&base_url)
            .arg(&dir)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK script failed:\n{stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(summary["ok"], true);
    eprintln!("checked with openai-python {}", summary["sdk"]);

    // What the SDK did is visible to our own client too.
    let client = client(&emulator);
    let batch_id = BatchId::from(summary["batch"].as_str().unwrap());
    let batch = client.retrieve_batch(&batch_id).await.unwrap();
    assert_eq!(batch.status, BatchStatus::Completed);
    assert_eq!(batch.metadata_value("run_id"), Some("python-sdk"));
    let cancelled = BatchId::from(summary["cancelled"].as_str().unwrap());
    let cancelled = client.retrieve_batch(&cancelled).await.unwrap();
    assert_eq!(cancelled.status, BatchStatus::Cancelled);
}
