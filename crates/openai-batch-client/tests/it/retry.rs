//! Retries as the official SDK does them, final errors, and the key absent from every error.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use openai_batch_client::{
    ApiErrorKind, BatchId, Client, ClientConfig, Error, FileId, SecretString,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, KEY};

/// Mounts `GET /batches/batch_1` answering `first` once, then a batch.
async fn fail_once_then_succeed(first: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(first)
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(support::batch("batch_1", "in_progress")),
        )
        .expect(1)
        .mount(&server)
        .await;
    server
}

async fn retrieve(base_url: &str) -> Result<openai_batch_client::Batch, Error> {
    support::client(base_url)
        .retrieve_batch(&BatchId::from("batch_1"))
        .await
}

#[tokio::test]
async fn retries_a_429_after_its_retry_after_seconds() {
    let server = fail_once_then_succeed(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "0.2")
            .set_body_json(support::api_error(
                "Rate limit reached",
                "requests",
                Some("rate_limit_exceeded"),
            )),
    )
    .await;
    let started = Instant::now();

    let batch = retrieve(&server.uri()).await.unwrap();

    assert_eq!(batch.id, BatchId::from("batch_1"));
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "waited as told"
    );
    let requests = server.received_requests().await.unwrap();
    let counts: Vec<_> = requests
        .iter()
        .map(|request| {
            request.headers["x-stainless-retry-count"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(counts, ["0", "1"]);
}

#[tokio::test]
async fn retries_a_429_after_its_retry_after_ms() {
    let server =
        fail_once_then_succeed(ResponseTemplate::new(429).insert_header("retry-after-ms", "150"))
            .await;
    let started = Instant::now();
    retrieve(&server.uri()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn retries_a_500_then_succeeds() {
    let server = fail_once_then_succeed(ResponseTemplate::new(500)).await;
    retrieve(&server.uri()).await.unwrap();
}

#[tokio::test]
async fn retries_a_dropped_connection_then_succeeds() {
    let batch = support::batch("batch_1", "in_progress");
    let (base_url, connections) =
        support::raw_server(move |n| (n > 0).then(|| support::http_json(&batch))).await;

    let batch = retrieve(&base_url).await.unwrap();

    assert_eq!(batch.id, BatchId::from("batch_1"));
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn dropped_connections_exhaust_the_retries() {
    let (base_url, connections) = support::raw_server(|_| None).await;

    let err = retrieve(&base_url).await.unwrap_err();

    assert!(
        matches!(&err, Error::Connection { method, path, attempts: 6, .. } if method == "GET" && path == "/batches/batch_1"),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        connections.load(Ordering::SeqCst),
        6,
        "GET: 1 try + 5 retries"
    );
}

#[tokio::test]
async fn server_errors_exhaust_the_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("x-request-id", "req_abc")
                .set_body_json(support::api_error(
                    "The server is overloaded",
                    "server_error",
                    None,
                )),
        )
        .expect(6)
        .mount(&server)
        .await;

    let err = retrieve(&server.uri()).await.unwrap_err();

    let Error::Api(api) = &err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(api.kind, ApiErrorKind::Server);
    assert_eq!(api.status, 503);
    assert_eq!(api.attempts, 6);
    assert_eq!(api.request_id.as_deref(), Some("req_abc"));
    assert_eq!(api.message, "The server is overloaded");
    assert_eq!(
        err.to_string(),
        "GET /batches/batch_1 failed: server error (HTTP 503, request id req_abc) after 6 attempts: The server is overloaded"
    );
}

#[tokio::test]
async fn a_post_gets_fewer_retries_than_a_get() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/batches/batch_1/cancel"))
        .respond_with(ResponseTemplate::new(502))
        .expect(3)
        .mount(&server)
        .await;
    let err = support::client(&server.uri())
        .cancel_batch(&BatchId::from("batch_1"))
        .await
        .unwrap_err();
    assert_eq!(err.api().unwrap().attempts, 3);
}

#[tokio::test]
async fn timeouts_are_retried_and_reported() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(support::batch("batch_1", "in_progress"))
                .set_delay(Duration::from_secs(2)),
        )
        .expect(3)
        .mount(&server)
        .await;
    let mut config = support::config(&server.uri());
    config.timeouts.request = Duration::from_millis(100);
    config.retry.max_retries_get = 2;

    let err = Client::new(config)
        .unwrap()
        .retrieve_batch(&BatchId::from("batch_1"))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Timeout { attempts: 3, .. }), "{err:?}");
    assert!(err.is_retryable());
}

/// Answers every `GET /batches/batch_1` with `response`, expecting exactly one request.
async fn check_final(response: ResponseTemplate, kind: ApiErrorKind) -> Error {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(response)
        .expect(1)
        .mount(&server)
        .await;
    let err = retrieve(&server.uri()).await.unwrap_err();
    assert_eq!(err.api_kind(), Some(kind), "{err:?}");
    assert_eq!(err.api().unwrap().attempts, 1);
    err
}

#[tokio::test]
async fn authentication_errors_are_final_with_a_hint() {
    let err = check_final(
        ResponseTemplate::new(401)
            .insert_header("x-request-id", "req_401")
            .set_body_json(support::api_error(
                "Incorrect API key provided: sk-test-***********c7e1b.",
                "invalid_request_error",
                Some("invalid_api_key"),
            )),
        ApiErrorKind::Authentication,
    )
    .await;
    assert_eq!(err.hint(), Some("check OPENAI_API_KEY"));
    assert!(!err.is_retryable());
    assert_eq!(err.request_id(), Some("req_401"));
    let api = err.api().unwrap();
    assert_eq!(api.code.as_deref(), Some("invalid_api_key"));
    assert_eq!(api.error_type.as_deref(), Some("invalid_request_error"));
}

#[tokio::test]
async fn other_client_errors_are_final() {
    let err = check_final(ResponseTemplate::new(400), ApiErrorKind::BadRequest).await;
    assert!(!err.is_retryable());
    let err = check_final(ResponseTemplate::new(403), ApiErrorKind::PermissionDenied).await;
    assert!(!err.is_retryable());
    let err = check_final(
        ResponseTemplate::new(404).set_body_json(serde_json::json!({"error": {
            "message": "No batch found with id 'batch_1'.", "type": "invalid_request_error",
            "param": "batch_id", "code": null}})),
        ApiErrorKind::NotFound,
    )
    .await;
    assert_eq!(err.api().unwrap().param.as_deref(), Some("batch_id"));
    // Even when the server says otherwise, a 404 cannot heal by waiting.
    check_final(
        ResponseTemplate::new(404).insert_header("x-should-retry", "true"),
        ApiErrorKind::NotFound,
    )
    .await;
}

#[tokio::test]
async fn insufficient_quota_is_final() {
    let err = check_final(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_json(support::api_error(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                Some("insufficient_quota"),
            )),
        ApiErrorKind::QuotaExhausted,
    )
    .await;
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn x_should_retry_false_stops_a_server_error() {
    check_final(
        ResponseTemplate::new(503).insert_header("x-should-retry", "false"),
        ApiErrorKind::Server,
    )
    .await;
}

#[tokio::test]
async fn a_retry_after_above_the_cap_is_surfaced() {
    let err = check_final(
        ResponseTemplate::new(429).insert_header("retry-after", "121"),
        ApiErrorKind::RateLimited,
    )
    .await;
    assert_eq!(
        err.api().unwrap().retry_after,
        Some(Duration::from_secs(121))
    );
    assert!(err.is_retryable(), "later, by the caller");
}

#[tokio::test]
async fn a_non_json_answer_is_a_decode_error_with_a_short_excerpt() {
    let server = MockServer::start().await;
    let body = format!("<html>{}</html>", "x".repeat(10_000));
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/html"))
        .expect(1)
        .mount(&server)
        .await;
    let err = retrieve(&server.uri()).await.unwrap_err();
    let Error::Decode {
        status, excerpt, ..
    } = &err
    else {
        panic!("expected a decode error, got {err:?}")
    };
    assert_eq!(*status, 200);
    assert!(excerpt.starts_with("<html>xxx"));
    assert!(excerpt.chars().count() <= 200);
    assert!(err.to_string().len() < 300);
}

/// Every kind of error this client produces, from servers that echo the key where they can.
async fn every_error() -> Vec<Error> {
    let echo = format!("Incorrect API key provided: {KEY}");
    let server = MockServer::start().await;
    let answers = [
        (
            "/batches/e401",
            ResponseTemplate::new(401).set_body_json(support::api_error(
                &echo,
                "invalid_request_error",
                Some("invalid_api_key"),
            )),
        ),
        (
            "/batches/e403",
            ResponseTemplate::new(403).set_body_json(support::api_error(
                &echo,
                "invalid_request_error",
                None,
            )),
        ),
        (
            "/batches/e404",
            ResponseTemplate::new(404).set_body_raw(echo.clone(), "text/plain"),
        ),
        ("/batches/e409", ResponseTemplate::new(409)),
        (
            "/batches/e429",
            ResponseTemplate::new(429).set_body_json(support::api_error(
                &echo,
                "insufficient_quota",
                Some("insufficient_quota"),
            )),
        ),
        (
            "/batches/e500",
            ResponseTemplate::new(500).set_body_json(support::api_error(
                &echo,
                "server_error",
                None,
            )),
        ),
        (
            "/batches/decode",
            ResponseTemplate::new(200).set_body_raw(format!("not json {KEY}"), "text/plain"),
        ),
        (
            "/batches/slow",
            ResponseTemplate::new(200).set_delay(Duration::from_secs(2)),
        ),
    ];
    for (route, answer) in answers {
        Mock::given(path(route))
            .respond_with(answer)
            .mount(&server)
            .await;
    }
    let mut config = support::config(&server.uri());
    config.timeouts.request = Duration::from_millis(100);
    config.retry.max_retries_get = 1;
    config.retry.max_retries_post = 1;
    let client = Client::new(config).unwrap();
    let mut errors = Vec::new();
    for id in [
        "e401", "e403", "e404", "e409", "e429", "e500", "decode", "slow",
    ] {
        errors.push(client.retrieve_batch(&BatchId::from(id)).await.unwrap_err());
    }
    let (dropping, _) = support::raw_server(|_| None).await;
    errors.push(retrieve(&dropping).await.unwrap_err());
    let dir = tempfile::tempdir().unwrap();
    errors.push(
        client
            .upload_file(&dir.path().join("missing.jsonl"), Arc::new(()))
            .await
            .unwrap_err(),
    );
    errors.push(
        client
            .download_file_to(&FileId::from("f"), &dir.path().join("x/y"), Arc::new(()))
            .await
            .unwrap_err(),
    );
    let bad = ClientConfig::new("::not a url::", SecretString::from(KEY));
    errors.push(Client::new(bad).unwrap_err());
    errors
}

#[tokio::test]
async fn the_key_never_shows_in_an_error() {
    let errors = every_error().await;
    assert_eq!(errors.len(), 12);
    for err in &errors {
        let mut texts = vec![err.to_string(), format!("{err:?}"), format!("{err:#?}")];
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            texts.push(cause.to_string());
            texts.push(format!("{cause:?}"));
            source = cause.source();
        }
        for text in texts {
            assert!(!text.contains(KEY), "the key leaked: {text}");
        }
    }
    let redacted = errors[0].api().unwrap().message.clone();
    assert_eq!(redacted, "Incorrect API key provided: [REDACTED]");
}

/// What a [`openai_batch_client::RetryProgress`] heard.
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<String>>);

impl openai_batch_client::RetryProgress for Heard {
    fn on_retry(&self, retry: &openai_batch_client::RetryEvent<'_>) {
        self.0.lock().unwrap().push(format!(
            "retry {} {} attempt {} of {}: {}",
            retry.method, retry.path, retry.attempt, retry.max_attempts, retry.error
        ));
    }

    fn on_recovered(&self, method: &str, path: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("recovered {method} {path}"));
    }
}

/// Issue 13: a caller hears of each retry and of the request getting through, so it can say
/// that the server is unreachable instead of falling silent.
#[tokio::test]
async fn the_retry_listener_hears_each_retry_and_the_recovery() {
    let server = fail_once_then_succeed(ResponseTemplate::new(503)).await;
    let heard = Arc::new(Heard::default());
    let client = support::client(&server.uri()).with_retry_progress(heard.clone());

    client
        .retrieve_batch(&BatchId::from("batch_1"))
        .await
        .unwrap();

    let heard = heard.0.lock().unwrap().clone();
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert!(
        heard[0].starts_with("retry GET /batches/batch_1 attempt 2 of 6: "),
        "{heard:?}"
    );
    assert_eq!(heard[1], "recovered GET /batches/batch_1");
}
