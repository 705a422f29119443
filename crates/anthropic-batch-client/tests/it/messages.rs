//! One message answered at once (`POST /v1/messages`) against wiremock: the body and
//! headers, the answer, the SDK's retries, and a refused request kept as an API error.

use anthropic_batch_client::{
    ANTHROPIC_VERSION, ApiErrorKind, ErrorType, MessageParam, MessageParams, StopReason,
    SystemPrompt, TextBlockParam,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEY, api_error, client};

fn params() -> MessageParams {
    MessageParams {
        model: "claude-sonnet-4-5".to_owned(),
        max_tokens: 8192,
        system: Some(SystemPrompt::Blocks(vec![TextBlockParam::cached(
            "You write lessons.",
        )])),
        messages: vec![MessageParam::user("Write lesson M0-L001.")],
        extra: [("temperature".to_owned(), json!(0.5))].into(),
    }
}

fn message() -> serde_json::Value {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "# Lesson M0-L001"}, {"type": "text", "text": "\n\nBody."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 30, "cache_creation_input_tokens": 1200,
                  "cache_read_input_tokens": 0, "output_tokens": 400, "service_tier": "standard"}
    })
}

#[tokio::test]
async fn create_message_sends_the_params_with_the_headers_and_reads_the_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", ANTHROPIC_VERSION))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 8192,
            "system": [{"type": "text", "text": "You write lessons.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "Write lesson M0-L001."}],
            "temperature": 0.5
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(message()))
        .expect(1)
        .mount(&server)
        .await;

    let answer = client(&server.uri())
        .create_message(&params())
        .await
        .unwrap();

    assert_eq!(answer.id, "msg_01");
    assert_eq!(answer.text(), "# Lesson M0-L001\n\nBody.");
    assert_eq!(answer.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(answer.usage.input_tokens, 30);
    assert_eq!(answer.usage.cache_creation_input_tokens, Some(1200));
    assert_eq!(answer.usage.output_tokens, 400);
    assert_eq!(answer.usage.service_tier.as_deref(), Some("standard"));
}

#[tokio::test]
async fn an_overloaded_api_is_retried_as_the_sdk_retries_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(529).set_body_json(api_error("overloaded_error", "Overloaded")),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message()))
        .mount(&server)
        .await;

    let answer = client(&server.uri())
        .create_message(&params())
        .await
        .unwrap();

    assert_eq!(answer.id, "msg_01");
    let counts: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| {
            request.headers["x-stainless-retry-count"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(counts, ["0", "1", "2"]);
}

#[tokio::test]
async fn an_invalid_request_is_final_and_keeps_the_api_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(api_error(
                    "invalid_request_error",
                    "max_tokens: 100000 > 64000, which is the maximum allowed",
                ))
                .insert_header("request-id", "req_400"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server.uri())
        .create_message(&params())
        .await
        .unwrap_err();

    let api = err.api().expect("an API error");
    assert_eq!(api.kind, ApiErrorKind::BadRequest);
    assert_eq!(api.status, 400);
    assert_eq!(api.path, "/v1/messages");
    assert_eq!(api.error_type, Some(ErrorType::InvalidRequestError));
    assert_eq!(
        api.message,
        "max_tokens: 100000 > 64000, which is the maximum allowed"
    );
    assert_eq!(api.request_id.as_deref(), Some("req_400"));
    assert_eq!(api.attempts, 1);
    assert!(!err.to_string().contains(KEY));
}
