//! `POST /v1/messages`: one Messages API request answered at once by the offline responder
//! or the upstream, in Anthropic's shapes (the `Message`, its usage, the error object),
//! creating no batch and no file.

use std::time::Duration;

use batch_emulator::{Emulator, Responder};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

fn params(prompt: &str) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 4000,
        "system": [{"type": "text", "text": "Write a lesson.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": prompt}]
    })
}

/// Sends `body` to `POST /v1/messages` with the Anthropic headers (key `key`); returns the
/// status, the `request-id` header and the JSON body.
async fn post_message(emulator: &Emulator, key: &str, body: &Value) -> (u16, String, Value) {
    let response = http()
        .post(format!("{}/v1/messages", emulator.anthropic_base_url()))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .expect("the emulator answers");
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("request-id")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        request_id,
        response.json().await.expect("a JSON body"),
    )
}

/// The message batches the emulator lists.
async fn message_batches(emulator: &Emulator) -> Value {
    http()
        .get(format!(
            "{}/v1/messages/batches",
            emulator.anthropic_base_url()
        ))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn upstream_responder(upstream: &MockServer) -> Responder {
    Responder::Upstream {
        url: format!("{}/v1", upstream.uri()),
        key: Some("up-key".into()),
        concurrency: 1,
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn the_offline_responder_answers_a_message_at_once_and_creates_no_batch() {
    let emulator = start(fast_config()).await;

    let (status, _, message) = post_message(
        &emulator,
        "sk-ant-test",
        &params("Write Lesson M0-L001: Reading a data catalog"),
    )
    .await;

    assert_eq!(status, 200, "{message}");
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-sonnet-4-5");
    assert!(
        message["id"].as_str().unwrap().starts_with("msg_"),
        "{message}"
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["stop_sequence"], Value::Null);
    assert_eq!(message["content"][0]["type"], "text");
    let text = message["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("# Lesson M0-L001: Reading a data catalog\n"),
        "{text}"
    );
    let usage = &message["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(
        usage["cache_creation"],
        json!({"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0})
    );
    assert_eq!(usage["service_tier"], "standard");

    assert_eq!(message_batches(&emulator).await["data"], json!([]));
    assert_eq!(get_json(&emulator, "batches").await["data"], json!([]));
    assert_eq!(get_json(&emulator, "files").await["data"], json!([]));
    let stats = emulator.stats();
    assert!(stats.peak_enqueued_tokens.is_empty(), "{stats:?}");
}

#[tokio::test]
async fn a_small_max_tokens_cuts_the_answer_as_max_tokens() {
    let emulator = start(fast_config()).await;
    let mut body = params("Write Lesson M0-L002: Owners");
    body["max_tokens"] = json!(5);

    let (status, _, message) = post_message(&emulator, "sk-ant-test", &body).await;

    assert_eq!(status, 200, "{message}");
    assert_eq!(message["stop_reason"], "max_tokens");
    assert_eq!(message["usage"]["output_tokens"], 5);
}

#[tokio::test]
async fn bad_bodies_and_headers_get_anthropic_errors() {
    let emulator = start(fast_config()).await;
    let check = |(status, request_id, error): (u16, String, Value),
                 expected: u16,
                 kind: &str,
                 message: &str| {
        assert_eq!(status, expected, "{error}");
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["error"]["type"], kind, "{error}");
        assert_eq!(error["error"]["message"], message, "{error}");
        assert!(request_id.starts_with("req_"), "{request_id}");
        assert_eq!(error["request_id"], request_id.as_str());
    };

    let mut no_max_tokens = params("hi");
    no_max_tokens.as_object_mut().unwrap().remove("max_tokens");
    check(
        post_message(&emulator, "sk-ant-test", &no_max_tokens).await,
        400,
        "invalid_request_error",
        "max_tokens: Field required",
    );
    let mut no_model = params("hi");
    no_model.as_object_mut().unwrap().remove("model");
    check(
        post_message(&emulator, "sk-ant-test", &no_model).await,
        400,
        "invalid_request_error",
        "model: Field required",
    );
    let mut text_messages = params("hi");
    text_messages["messages"] = json!("hi");
    check(
        post_message(&emulator, "sk-ant-test", &text_messages).await,
        400,
        "invalid_request_error",
        "messages: Input should be a valid list",
    );
    let mut streamed = params("hi");
    streamed["stream"] = json!(true);
    check(
        post_message(&emulator, "sk-ant-test", &streamed).await,
        400,
        "invalid_request_error",
        "stream: The batch emulator does not stream answers; leave `stream` unset.",
    );
    check(
        post_message(&emulator, " ", &params("hi")).await,
        401,
        "authentication_error",
        "x-api-key header is required (or Authorization: Bearer)",
    );
}

#[tokio::test]
async fn the_upstream_answers_a_message_as_a_chat_completion() {
    let upstream = MockServer::start().await;
    let completion = json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "llama3.2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "# From upstream"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    });
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer up-key"))
        .and(body_json(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "Write a lesson."},
                {"role": "user", "content": "hello"}
            ],
            "max_tokens": 4000
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion))
        .expect(1)
        .mount(&upstream)
        .await;
    let mut config = fast_config();
    config.responder = upstream_responder(&upstream);
    let emulator = start(config).await;

    let (status, _, message) = post_message(&emulator, "sk-ant-test", &params("hello")).await;

    assert_eq!(status, 200, "{message}");
    assert_eq!(message["model"], "llama3.2");
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "# From upstream"}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["input_tokens"], 11);
    assert_eq!(message["usage"]["output_tokens"], 3);
    assert_eq!(message["usage"]["service_tier"], "standard");
}

#[tokio::test]
async fn an_upstream_refusal_comes_back_in_anthropic_shape() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
            "message": "model 'claude-sonnet-4-5' not found", "type": "invalid_request_error"}})))
        .mount(&upstream)
        .await;
    let mut config = fast_config();
    config.responder = upstream_responder(&upstream);
    let emulator = start(config).await;

    let (status, _, error) = post_message(&emulator, "sk-ant-test", &params("hello")).await;

    assert_eq!(status, 404, "{error}");
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "not_found_error");
    assert_eq!(
        error["error"]["message"],
        "model 'claude-sonnet-4-5' not found"
    );
}
