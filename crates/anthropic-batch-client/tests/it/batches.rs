//! Create, retrieve, list, cancel and delete against wiremock.

use anthropic_batch_client::{
    ANTHROPIC_VERSION, Error, ListParams, MessageBatchId, ProcessingStatus,
};
use futures::TryStreamExt;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEY, batch, client, page, request};

#[tokio::test]
async fn create_sends_the_requests_inline_with_the_headers() {
    let server = MockServer::start().await;
    let expected = json!({"requests": [
        {"custom_id": "lesson_M0-L001", "params": {"model": "claude-sonnet-4-5", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Write lesson_M0-L001"}]}},
        {"custom_id": "lesson_M0-L002", "params": {"model": "claude-sonnet-4-5", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Write lesson_M0-L002"}]}}
    ]});
    Mock::given(method("POST"))
        .and(path("/v1/messages/batches"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", ANTHROPIC_VERSION))
        .and(header("content-type", "application/json"))
        .and(body_json(expected))
        .respond_with(ResponseTemplate::new(200).set_body_json(batch(
            "msgbatch_1",
            "in_progress",
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let created = client(&server.uri())
        .create_batch(&[request("lesson_M0-L001"), request("lesson_M0-L002")])
        .await
        .unwrap();
    assert_eq!(created.id, MessageBatchId::from("msgbatch_1"));
    assert_eq!(created.processing_status, ProcessingStatus::InProgress);
    assert_eq!(created.request_counts.processing, 2);
    assert_eq!(created.results_url, None);
}

#[tokio::test]
async fn create_refuses_what_the_api_would_refuse_without_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let err = client.create_batch(&[]).await.unwrap_err();
    assert!(matches!(err, Error::EmptyBatch), "{err:?}");
    let err = client
        .create_batch(&[request("a"), request("b"), request("a")])
        .await
        .unwrap_err();
    match err {
        Error::DuplicateCustomId { custom_id } => assert_eq!(custom_id.as_str(), "a"),
        other => panic!("{other:?}"),
    }
    let too_many = vec![request("a"); 100_001];
    let err = client.create_batch(&too_many).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManyRequests {
                count: 100_001,
                max: 100_000
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn retrieve_and_cancel_and_delete() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches/msgbatch_1"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", ANTHROPIC_VERSION))
        .respond_with(ResponseTemplate::new(200).set_body_json(batch(
            "msgbatch_1",
            "ended",
            Some("https://example.invalid/results".to_owned()),
        )))
        .mount(&server)
        .await;
    let mut canceling = batch("msgbatch_1", "canceling", None);
    canceling["cancel_initiated_at"] = json!("2026-12-04T10:30:00Z");
    Mock::given(method("POST"))
        .and(path("/v1/messages/batches/msgbatch_1/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(canceling))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/messages/batches/msgbatch_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "msgbatch_1", "type": "message_batch_deleted"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let id = MessageBatchId::from("msgbatch_1");
    let ended = client.retrieve_batch(&id).await.unwrap();
    assert!(ended.processing_status.is_terminal());
    assert_eq!(ended.request_counts.succeeded, 2);
    assert_eq!(ended.request_counts.total(), 2);
    assert_eq!(
        ended.ended_at.unwrap().to_rfc3339(),
        "2026-12-04T11:00:00+00:00"
    );
    let canceled = client.cancel_batch(&id).await.unwrap();
    assert_eq!(canceled.processing_status, ProcessingStatus::Canceling);
    assert!(canceled.cancel_initiated_at.is_some());
    let deleted = client.delete_batch(&id).await.unwrap();
    assert_eq!(deleted.id, id);
    assert_eq!(deleted.object_type, "message_batch_deleted");
}

#[tokio::test]
async fn list_pages_follow_last_id_until_has_more_is_false() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches"))
        .and(query_param("limit", "2"))
        .and(query_param_is_missing("after_id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![
                batch("mb_3", "in_progress", None),
                batch("mb_2", "ended", None),
            ],
            true,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches"))
        .and(query_param("limit", "2"))
        .and(query_param("after_id", "mb_2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(vec![batch("mb_1", "ended", None)], false)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let ids: Vec<String> = client
        .list_batches(Some(2))
        .map_ok(|batch| batch.id.0)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, ["mb_3", "mb_2", "mb_1"]);
}

#[tokio::test]
async fn a_list_page_sends_before_id_and_reads_the_cursors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches"))
        .and(query_param("before_id", "mb_1"))
        .and(query_param("limit", "1000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![
                batch("mb_3", "in_progress", None),
                batch("mb_2", "ended", None),
            ],
            false,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let params = ListParams {
        before_id: Some("mb_1".to_owned()),
        limit: Some(1000),
        ..ListParams::default()
    };
    let page = client(&server.uri())
        .list_batches_page(&params)
        .await
        .unwrap();
    assert_eq!(page.data.len(), 2);
    assert!(!page.has_more);
    assert_eq!(page.first_id.as_deref(), Some("mb_3"));
    assert_eq!(page.last_id.as_deref(), Some("mb_2"));
}
