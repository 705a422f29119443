//! Cancel and expiry, both with partial output, and the 409 for finished batches.

use std::collections::HashSet;
use std::time::Duration;

use batch_emulator::Timing;
use openai_batch_client::{ApiErrorKind, BatchStatus};

use crate::support::*;

/// Slow requests, so a batch is still running when the test acts on it.
fn slow_config() -> batch_emulator::EmulatorConfig {
    let mut config = fast_config();
    config.timing = Timing {
        validation: Duration::from_millis(10),
        per_request: Duration::from_millis(50),
        finalizing: Duration::from_millis(10),
    };
    config.concurrency = 2;
    config
}

/// Checks that output and error files hold each request once, and returns the error lines' codes.
async fn check_partial_results(
    client: &openai_batch_client::Client,
    batch: &openai_batch_client::Batch,
    n: usize,
) -> Vec<String> {
    let counts = batch.counts();
    assert_eq!(counts.total, n as u64);
    assert_eq!(counts.completed + counts.failed, n as u64, "{counts:?}");
    assert!(
        counts.completed > 0 && counts.failed > 0,
        "partial: {counts:?}"
    );
    let output = download_lines(client, batch.output_file_id.as_ref().unwrap()).await;
    let errors = download_lines(client, batch.error_file_id.as_ref().unwrap()).await;
    assert_eq!(output.len() as u64, counts.completed);
    assert_eq!(errors.len() as u64, counts.failed);
    let mut ids = HashSet::new();
    for line in parse_result_lines(&output)
        .iter()
        .chain(&parse_result_lines(&errors))
    {
        assert!(
            ids.insert(line.custom_id.clone()),
            "{} twice",
            line.custom_id
        );
    }
    assert_eq!(ids.len(), n);
    for line in &errors {
        assert!(line["response"].is_null(), "{line}");
    }
    parse_result_lines(&errors)
        .into_iter()
        .map(|line| line.error.unwrap().code.unwrap())
        .collect()
}

#[tokio::test]
async fn cancel_keeps_partial_output_and_marks_the_rest_cancelled() {
    let emulator = start(slow_config()).await;
    let client = client(&emulator);
    let (text, _) = lesson_requests(200);
    let dir = tempfile::tempdir().unwrap();
    let file_id = upload_text(&client, dir.path(), "in.jsonl", &text).await;
    let batch = create(&client, file_id).await;
    wait_until(&client, &batch.id, |batch| batch.counts().completed >= 3).await;

    let cancelling = client.cancel_batch(&batch.id).await.unwrap();
    assert_eq!(cancelling.status, BatchStatus::Cancelling);
    assert!(cancelling.cancelling_at.is_some() && cancelling.cancelled_at.is_none());

    let (batch, _) = wait(&client, &batch.id).await;
    assert_terminal(&batch, BatchStatus::Cancelled);
    assert!(batch.cancelled_at.is_some() && batch.cancelling_at.is_some());
    assert!(batch.completed_at.is_none() && batch.finalizing_at.is_none());
    let codes = check_partial_results(&client, &batch, 200).await;
    assert!(
        codes.iter().all(|code| code == "batch_cancelled"),
        "{codes:?}"
    );
    let usage = batch.usage.unwrap();
    assert!(
        usage.output_tokens > 0,
        "finished requests count: {usage:?}"
    );

    // Cancelling again is allowed and changes nothing.
    let again = client.cancel_batch(&batch.id).await.unwrap();
    assert_eq!(again.status, BatchStatus::Cancelled);
}

#[tokio::test]
async fn cancel_while_validating_runs_nothing() {
    let mut config = fast_config();
    config.timing.validation = Duration::from_millis(500);
    let emulator = start(config).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let (text, _) = lesson_requests(3);
    let file_id = upload_text(&client, dir.path(), "in.jsonl", &text).await;
    let batch = create(&client, file_id).await;
    let cancelling = client.cancel_batch(&batch.id).await.unwrap();
    assert_eq!(cancelling.status, BatchStatus::Cancelling);
    let (batch, _) = wait(&client, &batch.id).await;
    assert_terminal(&batch, BatchStatus::Cancelled);
    assert!(batch.in_progress_at.is_none());
    assert!(batch.output_file_id.is_none() && batch.error_file_id.is_none());
}

#[tokio::test]
async fn finished_batches_cannot_be_cancelled() {
    let emulator = start(fast_config()).await;
    let client = client(&emulator);
    let (text, _) = lesson_requests(2);
    let completed = run_batch(&client, &text).await;
    assert_terminal(&completed, BatchStatus::Completed);
    let error = client.cancel_batch(&completed.id).await.unwrap_err();
    let api = error.api().unwrap();
    assert_eq!(api.kind, ApiErrorKind::Conflict);
    assert_eq!(api.status, 409);
    assert_eq!(
        api.message,
        "Cannot cancel a batch with status 'completed'."
    );

    let failed = run_batch(&client, "").await;
    assert_terminal(&failed, BatchStatus::Failed);
    let error = client.cancel_batch(&failed.id).await.unwrap_err();
    assert_eq!(
        error.api().unwrap().message,
        "Cannot cancel a batch with status 'failed'."
    );

    let error = client.cancel_batch(&"batch_nope".into()).await.unwrap_err();
    assert_eq!(error.api_kind(), Some(ApiErrorKind::NotFound));
}

#[tokio::test]
async fn expiry_keeps_partial_output_and_marks_the_rest_expired() {
    let mut config = slow_config();
    config.completion_window = Duration::from_millis(1500);
    let emulator = start(config).await;
    let client = client(&emulator);
    let (text, _) = lesson_requests(200);
    let dir = tempfile::tempdir().unwrap();
    let file_id = upload_text(&client, dir.path(), "in.jsonl", &text).await;
    let created = create(&client, file_id).await;
    assert_eq!(
        created.expires_at,
        Some(created.created_at + 2),
        "1.5 s rounds up"
    );

    let (batch, _) = wait(&client, &created.id).await;
    assert_terminal(&batch, BatchStatus::Expired);
    assert!(batch.expired_at.is_some() && batch.in_progress_at.is_some());
    assert!(batch.completed_at.is_none() && batch.cancelled_at.is_none());
    let codes = check_partial_results(&client, &batch, 200).await;
    assert!(
        codes.iter().all(|code| code == "batch_expired"),
        "{codes:?}"
    );
    let errors = download_lines(&client, batch.error_file_id.as_ref().unwrap()).await;
    assert_eq!(
        errors[0]["error"]["message"],
        "This request could not be executed before the completion window expired."
    );
    let error = client.cancel_batch(&batch.id).await.unwrap_err();
    assert_eq!(error.api_kind(), Some(ApiErrorKind::Conflict));
}
