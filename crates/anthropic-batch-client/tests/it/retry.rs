//! Retries as the official SDK does: 529, 5xx, 429 with retry-after; none on 400; create only
//! when no batch can exist.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anthropic_batch_client::{
    ApiErrorKind, Client, Error, ErrorType, MessageBatch, MessageBatchId, RetryEvent, RetryProgress,
};
use futures::StreamExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{api_error, batch, client, config, request, succeeded_line};

/// Mounts `n` answers of `status` (with `headers`) to `GET /v1/messages/batches/mb_1`, then success.
async fn failing_then_ok(status: u16, headers: &[(&str, &str)], n: u64) -> MockServer {
    let server = MockServer::start().await;
    let mut failure = ResponseTemplate::new(status)
        .set_body_json(api_error("overloaded_error", "Overloaded"))
        .insert_header("request-id", "req_fail");
    for (name, value) in headers {
        failure = failure.insert_header(*name, *value);
    }
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches/mb_1"))
        .respond_with(failure)
        .up_to_n_times(n)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches/mb_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(batch("mb_1", "in_progress", None)))
        .mount(&server)
        .await;
    server
}

async fn received(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap()
}

#[tokio::test]
async fn overloaded_and_server_errors_are_retried_twice() {
    for status in [529, 500, 503] {
        let server = failing_then_ok(status, &[], 2).await;
        let batch = client(&server.uri())
            .retrieve_batch(&MessageBatchId::from("mb_1"))
            .await
            .unwrap();
        assert_eq!(batch.id.as_str(), "mb_1");
        let requests = received(&server).await;
        let counts: Vec<_> = requests
            .iter()
            .map(|request| {
                request.headers["x-stainless-retry-count"]
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(counts, ["0", "1", "2"], "{status}");
    }
}

#[tokio::test]
async fn after_two_retries_the_error_keeps_the_api_error_shape_and_request_id() {
    let server = failing_then_ok(529, &[], 5).await;
    let err = client(&server.uri())
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap_err();
    assert_eq!(received(&server).await.len(), 3);
    let api = err.api().unwrap();
    assert_eq!(api.kind, ApiErrorKind::Overloaded);
    assert_eq!(api.error_type, Some(ErrorType::OverloadedError));
    assert_eq!(api.message, "Overloaded");
    assert_eq!(
        api.request_id.as_deref(),
        Some("req_fail"),
        "the header wins"
    );
    assert_eq!(api.attempts, 3);
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        "GET /v1/messages/batches/mb_1 failed: overloaded (HTTP 529, overloaded_error, request id req_fail) after 3 attempts: Overloaded"
    );
}

#[tokio::test]
async fn rate_limits_wait_as_long_as_retry_after_asks() {
    let server = failing_then_ok(429, &[("retry-after-ms", "300")], 1).await;
    let started = Instant::now();
    client(&server.uri())
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(received(&server).await.len(), 2);

    let server = failing_then_ok(429, &[("retry-after", "1")], 1).await;
    let started = Instant::now();
    client(&server.uri())
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_bad_request_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches/nope"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(api_error("invalid_request_error", "batch id is malformed")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .retrieve_batch(&MessageBatchId::from("nope"))
        .await
        .unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.kind, ApiErrorKind::BadRequest);
    assert_eq!(api.error_type, Some(ErrorType::InvalidRequestError));
    assert_eq!(api.message, "batch id is malformed");
    assert_eq!(
        api.request_id.as_deref(),
        Some("req_body"),
        "from the body without the header"
    );
    assert_eq!(api.attempts, 1);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_body_that_is_no_error_object_is_quoted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>no</html>"))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.kind, ApiErrorKind::NotFound);
    assert_eq!(api.error_type, None);
    assert_eq!(api.message, "<html>no</html>");
}

#[tokio::test]
async fn create_retries_a_refusal_but_not_a_failure_after_which_a_batch_may_exist() {
    for (status, attempts, ambiguous) in [(529, 2, false), (429, 2, false), (500, 1, true)] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/messages/batches"))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(api_error("api_error", "failed")),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/messages/batches"))
            .respond_with(ResponseTemplate::new(200).set_body_json(batch(
                "mb_1",
                "in_progress",
                None,
            )))
            .mount(&server)
            .await;
        let result = client(&server.uri()).create_batch(&[request("a")]).await;
        assert_eq!(received(&server).await.len(), attempts, "{status}");
        match result {
            Ok(batch) => assert!(!ambiguous && batch.id.as_str() == "mb_1"),
            Err(err) => {
                assert!(ambiguous, "{status}: {err}");
                assert!(err.is_ambiguous());
            }
        }
    }
}

#[tokio::test]
async fn a_timed_out_create_is_not_sent_again_but_a_timed_out_read_is() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200)
        .set_body_json(batch("mb_1", "in_progress", None))
        .set_delay(Duration::from_secs(2));
    Mock::given(wiremock::matchers::any())
        .respond_with(slow)
        .mount(&server)
        .await;
    let mut config = config(&server.uri());
    config.timeouts.request = Duration::from_millis(200);
    let client = Client::new(config).unwrap();
    let err = client.create_batch(&[request("a")]).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 1, .. }), "{err:?}");
    assert!(err.is_ambiguous());
    assert_eq!(received(&server).await.len(), 1);
    let err = client
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 3, .. }), "{err:?}");
    assert_eq!(received(&server).await.len(), 4);
}

#[tokio::test]
async fn refused_connections_are_retried_then_reported() {
    // A port nobody listens on: bound, then released.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = client(&url)
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap_err();
    match &err {
        Error::Connection {
            attempts,
            maybe_sent,
            ..
        } => {
            assert_eq!(*attempts, 3);
            assert!(!maybe_sent);
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_ambiguous());
}

#[tokio::test]
async fn x_should_retry_false_stops_at_once() {
    let server = failing_then_ok(503, &[("x-should-retry", "false")], 1).await;
    let err = client(&server.uri())
        .retrieve_batch(&MessageBatchId::from("mb_1"))
        .await
        .unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::Server));
    assert_eq!(received(&server).await.len(), 1);
}

/// What a [`RetryProgress`] heard, each retry with the API status its error downcasts to.
#[derive(Default)]
struct Heard(Mutex<Vec<String>>);

impl Heard {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl RetryProgress for Heard {
    fn on_retry(&self, retry: &RetryEvent<'_>) {
        let status = retry
            .error
            .downcast_ref::<Error>()
            .and_then(Error::api)
            .map(|api| api.status);
        self.0.lock().unwrap().push(format!(
            "retry {} {} attempt {} of {} (status {status:?})",
            retry.method, retry.path, retry.attempt, retry.max_attempts
        ));
    }

    fn on_recovered(&self, method: &str, path: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("recovered {method} {path}"));
    }
}

/// A caller hears of each retry and of the call getting through, as with OpenAI's client, so an
/// Anthropic run does not fall silent while the API is overloaded.
#[tokio::test]
async fn the_retry_listener_hears_an_overloaded_retry_and_the_recovery() {
    let server = failing_then_ok(529, &[], 1).await;
    let heard = Arc::new(Heard::default());
    let client = client(&server.uri()).with_retry_progress(heard.clone());
    let id = MessageBatchId::from("mb_1");

    client.retrieve_batch(&id).await.unwrap();
    assert_eq!(
        heard.take(),
        [
            "retry GET /v1/messages/batches/mb_1 attempt 2 of 3 (status Some(529))",
            "recovered GET /v1/messages/batches/mb_1",
        ]
    );

    client.retrieve_batch(&id).await.unwrap();
    assert_eq!(
        heard.take(),
        Vec::<String>::new(),
        "no retry, nothing to tell"
    );
}

#[tokio::test]
async fn a_retried_create_is_reported_recovered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages/batches"))
        .respond_with(
            ResponseTemplate::new(529).set_body_json(api_error("overloaded_error", "Overloaded")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages/batches"))
        .respond_with(ResponseTemplate::new(200).set_body_json(batch("mb_1", "in_progress", None)))
        .mount(&server)
        .await;
    let heard = Arc::new(Heard::default());
    let client = client(&server.uri()).with_retry_progress(heard.clone());

    client.create_batch(&[request("a")]).await.unwrap();
    assert_eq!(
        heard.take(),
        [
            "retry POST /v1/messages/batches attempt 2 of 3 (status Some(529))",
            "recovered POST /v1/messages/batches",
        ]
    );
}

#[tokio::test]
async fn retried_results_downloads_are_reported_recovered() {
    let server = MockServer::start().await;
    let results_path = "/v1/messages/batches/mb_1/results";
    let fail_once = || {
        Mock::given(method("GET"))
            .and(path(results_path))
            .respond_with(ResponseTemplate::new(503).set_body_json(api_error("api_error", "down")))
            .up_to_n_times(1)
            .with_priority(1)
    };
    fail_once().mount(&server).await;
    Mock::given(method("GET"))
        .and(path(results_path))
        .respond_with(ResponseTemplate::new(200).set_body_string(succeeded_line("a", "# A")))
        .mount(&server)
        .await;
    let heard = Arc::new(Heard::default());
    let client = client(&server.uri()).with_retry_progress(heard.clone());
    let batch: MessageBatch = serde_json::from_value(batch(
        "mb_1",
        "ended",
        Some(format!("{}{results_path}", server.uri())),
    ))
    .unwrap();
    let expected = [
        "retry GET /v1/messages/batches/mb_1/results attempt 2 of 3 (status Some(503))",
        "recovered GET /v1/messages/batches/mb_1/results",
    ];

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("results.jsonl");
    client.download_results_to(&batch, &dest).await.unwrap();
    assert_eq!(heard.take(), expected);
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        succeeded_line("a", "# A")
    );

    fail_once().mount(&server).await;
    let lines: Vec<_> = client.results(&batch).await.unwrap().collect().await;
    assert_eq!(heard.take(), expected);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].is_ok(), "{lines:?}");
}
