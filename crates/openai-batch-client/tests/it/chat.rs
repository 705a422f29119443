//! Chat Completions: one request answered right away, with the client's retries and error shape.

use openai_batch_client::{ApiErrorKind, Error};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

use crate::support::{self, KEY};

fn body() -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Write lessons."}, {"role": "user", "content": "Lesson M0-L001: Intro"}],
        "max_completion_tokens": 100
    })
}

fn completion() -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_800_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "# Lesson", "refusal": null}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}
    })
}

/// A mock of `POST /chat/completions`.
fn chat_mock() -> MockBuilder {
    Mock::given(method("POST")).and(path("/chat/completions"))
}

/// Sends [`body`] to `server` with the test client.
async fn chat(server: &MockServer) -> Result<Value, Error> {
    support::client(&server.uri())
        .chat_completion(&body())
        .await
}

#[tokio::test]
async fn posts_the_body_and_decodes_the_answer() {
    let server = MockServer::start().await;
    chat_mock()
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(body()))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion()))
        .expect(1)
        .mount(&server)
        .await;

    let answer = chat(&server).await.unwrap();

    assert_eq!(answer, completion());
}

#[tokio::test]
async fn a_server_error_is_retried() {
    let server = MockServer::start().await;
    chat_mock()
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"error": {"message": "boom", "type": "server_error", "param": null, "code": null}}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    chat_mock()
        .respond_with(ResponseTemplate::new(200).set_body_json(completion()))
        .expect(1)
        .mount(&server)
        .await;

    let answer = chat(&server).await.unwrap();

    assert_eq!(answer["id"], "chatcmpl-1");
}

#[tokio::test]
async fn a_bad_request_is_an_api_error_without_the_key() {
    let server = MockServer::start().await;
    chat_mock()
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-request-id", "req_123")
                .set_body_json(json!({"error": {
                    "message": format!("Unsupported value for key {KEY}"),
                    "type": "invalid_request_error",
                    "param": "temperature",
                    "code": "unsupported_value"
                }})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let err = chat(&server).await.unwrap_err();

    let Error::Api(api) = &err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(api.kind, ApiErrorKind::BadRequest);
    assert_eq!(
        (api.method.as_str(), api.path.as_str()),
        ("POST", "/chat/completions")
    );
    assert_eq!(api.status, 400);
    assert_eq!(api.code.as_deref(), Some("unsupported_value"));
    assert_eq!(api.param.as_deref(), Some("temperature"));
    assert_eq!(api.request_id.as_deref(), Some("req_123"));
    assert_eq!(api.attempts, 1);
    let text = format!("{err} {err:?}");
    assert!(!text.contains(KEY), "the key leaked: {text}");
}

#[tokio::test]
async fn an_answer_of_another_shape_is_a_decode_error() {
    let server = MockServer::start().await;
    chat_mock()
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>", "text/html"))
        .mount(&server)
        .await;

    let err = chat(&server).await.unwrap_err();

    assert!(
        matches!(&err, Error::Decode { path, status: 200, .. } if path == "/chat/completions"),
        "{err:?}"
    );
}
