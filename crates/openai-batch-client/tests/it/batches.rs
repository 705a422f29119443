//! Batches API: create, retrieve, cancel, list over pages, unknown statuses, and safe create retries.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use openai_batch_client::{
    ApiErrorKind, BatchId, BatchStatus, Client, CreateBatchRequest, FileId, RUN_ID_KEY,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, KEY};

fn request_with_run_id() -> CreateBatchRequest {
    let mut request = CreateBatchRequest::new(FileId::from("file-in"), "/v1/chat/completions");
    request.metadata = BTreeMap::from([
        (RUN_ID_KEY.to_owned(), "0123456789abcdef".to_owned()),
        ("shard".to_owned(), "a.jsonl".to_owned()),
    ]);
    request
}

fn batch_with_metadata(id: &str, run_id: &str) -> serde_json::Value {
    let mut batch = support::batch(id, "validating");
    batch["metadata"] = json!({"run_id": run_id, "shard": "a.jsonl"});
    batch
}

#[tokio::test]
async fn create_posts_the_json_body_with_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("openai-organization", "org-test"))
        .and(header("openai-project", "proj-test"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "input_file_id": "file-in",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {"run_id": "0123456789abcdef", "shard": "a.jsonl"}
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(batch_with_metadata("batch_1", "0123456789abcdef")),
        )
        .expect(1)
        .mount(&server)
        .await;

    let batch = support::client(&server.uri())
        .create_batch(&request_with_run_id())
        .await
        .unwrap();

    assert_eq!(batch.id, BatchId::from("batch_1"));
    assert_eq!(batch.status, BatchStatus::Validating);
    assert_eq!(batch.metadata_value(RUN_ID_KEY), Some("0123456789abcdef"));
}

#[tokio::test]
async fn headers_without_organization_or_project() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(support::batch("batch_1", "completed")),
        )
        .mount(&server)
        .await;
    let mut config = support::config(&server.uri());
    config.organization = None;
    config.project = None;

    Client::new(config)
        .unwrap()
        .retrieve_batch(&BatchId::from("batch_1"))
        .await
        .unwrap();

    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        request.headers["authorization"],
        format!("Bearer {KEY}").as_str()
    );
    assert!(!request.headers.contains_key("openai-organization"));
    assert!(!request.headers.contains_key("openai-project"));
    assert_eq!(request.headers["x-stainless-retry-count"], "0");
}

#[tokio::test]
async fn retrieve_parses_an_unknown_status() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_new"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(support::batch("batch_new", "paused_by_a_new_feature")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let batch = support::client(&server.uri())
        .retrieve_batch(&BatchId::from("batch_new"))
        .await
        .unwrap();
    assert_eq!(batch.status, BatchStatus::Unknown);
}

#[tokio::test]
async fn cancel_posts_without_a_body_and_a_finished_batch_is_a_conflict() {
    let server = MockServer::start().await;
    let mut cancelling = support::batch("batch_1", "cancelling");
    cancelling["cancelling_at"] = json!(1_800_000_100);
    Mock::given(method("POST"))
        .and(path("/batches/batch_1/cancel"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelling))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/batches/batch_done/cancel"))
        .respond_with(ResponseTemplate::new(409).set_body_json(support::api_error(
            "Cannot cancel a batch with status 'completed'.",
            "invalid_request_error",
            None,
        )))
        .mount(&server)
        .await;
    let client = support::client(&server.uri());

    let batch = client
        .cancel_batch(&BatchId::from("batch_1"))
        .await
        .unwrap();
    assert_eq!(batch.status, BatchStatus::Cancelling);
    assert_eq!(batch.cancelling_at, Some(1_800_000_100));
    let request = &server.received_requests().await.unwrap()[0];
    assert!(request.body.is_empty());

    let err = client
        .cancel_batch(&BatchId::from("batch_done"))
        .await
        .unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::Conflict));
    // 409 is retryable in the SDK's policy; the POST budget is 2 retries.
    assert_eq!(err.api().unwrap().attempts, 3);
}

#[tokio::test]
async fn list_follows_three_pages() {
    let server = MockServer::start().await;
    let pages = [
        (None, vec!["b6", "b5"], true),
        (Some("b5"), vec!["b4", "b3"], true),
        (Some("b3"), vec!["b2", "b1"], false),
    ];
    for (after, ids, has_more) in pages {
        let data = ids
            .iter()
            .map(|id| support::batch(id, "completed"))
            .collect();
        let mock = Mock::given(method("GET"))
            .and(path("/batches"))
            .and(query_param("limit", "2"));
        let mock = match after {
            Some(after) => mock.and(query_param("after", after)),
            None => mock.and(query_param_is_missing("after")),
        };
        mock.respond_with(ResponseTemplate::new(200).set_body_json(support::page(data, has_more)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = support::client(&server.uri());

    let batches: Vec<_> = client.list_batches(Some(2)).try_collect().await.unwrap();

    let ids: Vec<&str> = batches.iter().map(|batch| batch.id.as_str()).collect();
    assert_eq!(ids, ["b6", "b5", "b4", "b3", "b2", "b1"]);
}

#[tokio::test]
async fn list_page_passes_after_and_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/batches"))
        .and(query_param("after", "b9"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [support::batch("b8", "failed")], "has_more": false}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let page = support::client(&server.uri())
        .list_batches_page(Some("b9"), Some(100))
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.last_id, None, "first_id and last_id are optional");
    assert!(!page.has_more);
}

/// Mounts `GET /batches` answering one page.
async fn mount_list(server: &MockServer, data: Vec<serde_json::Value>, expect: u64) {
    Mock::given(method("GET"))
        .and(path("/batches"))
        .respond_with(ResponseTemplate::new(200).set_body_json(support::page(data, false)))
        .expect(expect)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_create_lost_to_a_server_error_is_found_by_metadata_not_created_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    // The batch did get created; another run's batch on the same file must not match.
    let mut other_file = batch_with_metadata("batch_other_file", "0123456789abcdef");
    other_file["input_file_id"] = json!("file-other");
    let data = vec![
        batch_with_metadata("batch_other_run", "ffffffffffffffff"),
        other_file,
        batch_with_metadata("batch_ours", "0123456789abcdef"),
    ];
    mount_list(&server, data, 1).await;

    let batch = support::client(&server.uri())
        .create_batch(&request_with_run_id())
        .await
        .unwrap();

    assert_eq!(batch.id, BatchId::from("batch_ours"));
}

#[tokio::test]
async fn a_create_lost_to_a_timeout_is_looked_up_first() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(batch_with_metadata("batch_ours", "0123456789abcdef"))
                .set_delay(Duration::from_secs(2)),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_list(
        &server,
        vec![batch_with_metadata("batch_ours", "0123456789abcdef")],
        1,
    )
    .await;
    let mut config = support::config(&server.uri());
    config.timeouts.request = Duration::from_millis(200);

    let batch = Client::new(config)
        .unwrap()
        .create_batch(&request_with_run_id())
        .await
        .unwrap();

    assert_eq!(batch.id, BatchId::from("batch_ours"));
}

#[tokio::test]
async fn a_create_not_found_after_a_server_error_is_sent_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(batch_with_metadata("batch_new", "0123456789abcdef")),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_list(
        &server,
        vec![batch_with_metadata("batch_other_run", "ffffffffffffffff")],
        1,
    )
    .await;

    let batch = support::client(&server.uri())
        .create_batch(&request_with_run_id())
        .await
        .unwrap();

    assert_eq!(batch.id, BatchId::from("batch_new"));
}

#[tokio::test]
async fn a_create_without_run_id_is_never_retried_after_an_ambiguous_failure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(ResponseTemplate::new(500).insert_header("x-request-id", "req_500"))
        .expect(1)
        .mount(&server)
        .await;
    mount_list(&server, vec![], 0).await;
    let request = CreateBatchRequest::new(FileId::from("file-in"), "/v1/chat/completions");

    let err = support::client(&server.uri())
        .create_batch(&request)
        .await
        .unwrap_err();

    assert_eq!(err.api_kind(), Some(ApiErrorKind::Server));
    assert_eq!(err.request_id(), Some("req_500"));
    assert_eq!(err.api().unwrap().attempts, 1);
}

#[tokio::test]
async fn a_rate_limited_create_is_retried_without_looking() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after-ms", "5"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(batch_with_metadata("batch_1", "0123456789abcdef")),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_list(&server, vec![], 0).await;

    let batch = support::client(&server.uri())
        .create_batch(&request_with_run_id())
        .await
        .unwrap();
    assert_eq!(batch.id, BatchId::from("batch_1"));
}

#[tokio::test]
async fn find_batch_stops_at_the_cutoff() {
    let server = MockServer::start().await;
    let mut old = batch_with_metadata("batch_old", "0123456789abcdef");
    old["created_at"] = json!(1_000);
    mount_list(&server, vec![old], 2).await;
    let client = support::client(&server.uri());
    let metadata = request_with_run_id().metadata;
    let file_id = FileId::from("file-in");

    let found = client
        .find_batch(&file_id, &metadata, Some(2_000))
        .await
        .unwrap();
    assert_eq!(found, None);
    let found = client.find_batch(&file_id, &metadata, None).await.unwrap();
    assert_eq!(
        found.map(|batch| batch.id),
        Some(BatchId::from("batch_old"))
    );
}
