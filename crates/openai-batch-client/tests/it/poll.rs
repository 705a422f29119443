//! `wait_for_batch`: the life of a batch seen through polls, and stopping at will.

use std::time::Duration;

use openai_batch_client::{ApiErrorKind, BatchId, BatchStatus, Client, PollConfig};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support;

fn fast_poll() -> PollConfig {
    PollConfig {
        initial_interval: Duration::from_millis(5),
        max_interval: Duration::from_millis(20),
        backoff: 2.0,
        ..PollConfig::default()
    }
}

/// Mounts `GET /batches/batch_1` answering each `(answer, times)` in turn.
async fn mount_sequence(server: &MockServer, answers: Vec<(Value, u64)>) {
    for (answer, times) in answers {
        Mock::given(method("GET"))
            .and(path("/batches/batch_1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .up_to_n_times(times)
            .expect(times)
            .mount(server)
            .await;
    }
}

#[tokio::test]
async fn follows_a_batch_from_validating_to_completed() {
    let server = MockServer::start().await;
    let mut completed = support::batch_counts("batch_1", "completed", 10, 9, 1);
    completed["output_file_id"] = "file-out".into();
    completed["error_file_id"] = "file-err".into();
    mount_sequence(
        &server,
        vec![
            (support::batch_counts("batch_1", "validating", 0, 0, 0), 2),
            (support::batch_counts("batch_1", "in_progress", 10, 0, 0), 1),
            (support::batch_counts("batch_1", "in_progress", 10, 4, 0), 3),
            (support::batch_counts("batch_1", "in_progress", 10, 9, 1), 1),
            (support::batch_counts("batch_1", "finalizing", 10, 9, 1), 2),
            (completed, 1),
        ],
    )
    .await;
    let mut seen = Vec::new();

    let batch = support::client(&server.uri())
        .wait_for_batch(&BatchId::from("batch_1"), &fast_poll(), |batch| {
            let counts = batch.counts();
            seen.push(format!(
                "{} {}/{}",
                batch.status, counts.completed, counts.failed
            ));
        })
        .await
        .unwrap();

    assert_eq!(batch.status, BatchStatus::Completed);
    assert_eq!(batch.output_file_id.unwrap().as_str(), "file-out");
    assert_eq!(
        seen,
        [
            "validating 0/0",
            "in_progress 0/0",
            "in_progress 4/0",
            "in_progress 9/1",
            "finalizing 9/1",
            "completed 9/1"
        ],
        "one call per change, none for repeated answers"
    );
}

#[tokio::test]
async fn returns_at_once_for_a_terminal_batch_and_waits_through_unknown_statuses() {
    let server = MockServer::start().await;
    mount_sequence(
        &server,
        vec![
            (support::batch("batch_1", "reticulating_splines"), 1),
            (support::batch("batch_1", "failed"), 1),
        ],
    )
    .await;
    let mut seen = Vec::new();
    let batch = support::client(&server.uri())
        .wait_for_batch(&BatchId::from("batch_1"), &fast_poll(), |batch| {
            seen.push(batch.status)
        })
        .await
        .unwrap();
    assert_eq!(batch.status, BatchStatus::Failed);
    assert_eq!(seen, [BatchStatus::Unknown, BatchStatus::Failed]);
}

#[tokio::test]
async fn dropping_the_wait_stops_polling_and_leaves_the_batch_alone() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(support::batch("batch_1", "in_progress")),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let batch_id = BatchId::from("batch_1");
    let config = fast_poll();

    let waited = tokio::time::timeout(
        Duration::from_millis(100),
        client.wait_for_batch(&batch_id, &config, |_| {}),
    )
    .await;

    assert!(waited.is_err(), "still in progress");
    let polls = server.received_requests().await.unwrap().len();
    assert!((3..=25).contains(&polls), "{polls} polls in 100 ms");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), polls);
}

#[tokio::test]
async fn polls_through_server_errors_up_to_a_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    mount_sequence(&server, vec![(support::batch("batch_1", "completed"), 1)]).await;
    let mut config = support::config(&server.uri());
    config.retry.max_retries_get = 0;
    let client = Client::new(config).unwrap();

    let batch = client
        .wait_for_batch(&BatchId::from("batch_1"), &fast_poll(), |_| {})
        .await
        .unwrap();
    assert_eq!(batch.status, BatchStatus::Completed);

    let strict = PollConfig {
        max_failures: 0,
        ..fast_poll()
    };
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = support::config(&server.uri());
    config.retry.max_retries_get = 0;
    let err = Client::new(config)
        .unwrap()
        .wait_for_batch(&BatchId::from("batch_1"), &strict, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::Server));
}

#[tokio::test]
async fn a_vanished_batch_ends_the_wait_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let err = support::client(&server.uri())
        .wait_for_batch(&BatchId::from("batch_1"), &fast_poll(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::NotFound));
}
