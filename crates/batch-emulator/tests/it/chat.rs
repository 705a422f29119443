//! `POST /v1/chat/completions`: answered at once by the offline responder or the upstream,
//! creating no batch and no file.

use std::time::Duration;

use batch_emulator::Responder;
use batch_request::ResponseBody;
use openai_batch_client::{ApiErrorKind, Error};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

fn body(prompt: &str) -> Value {
    json!({"model": "gpt-4o-mini", "max_completion_tokens": 4000,
           "messages": [{"role": "system", "content": "Write a lesson."}, {"role": "user", "content": prompt}]})
}

#[tokio::test]
async fn the_offline_responder_answers_at_once_and_creates_no_batch() {
    let emulator = start(fast_config()).await;

    let answer: ResponseBody = client(&emulator)
        .chat_completion(&body("Write Lesson M0-L001: Reading a data catalog"))
        .await
        .unwrap();

    let choice = &answer.choices[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    let content = choice.message.content.as_deref().unwrap();
    assert!(
        content.starts_with("# Lesson M0-L001: Reading a data catalog\n"),
        "{content}"
    );
    let usage = answer.usage.unwrap();
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    assert_eq!(answer.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(get_json(&emulator, "batches").await["data"], json!([]));
    assert_eq!(get_json(&emulator, "files").await["data"], json!([]));
}

#[tokio::test]
async fn the_upstream_answers_through_the_emulator() {
    let upstream = MockServer::start().await;
    let completion = json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "llama3.2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "# From upstream"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    });
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer up-key"))
        .and(body_json(body("hello")))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion.clone()))
        .expect(1)
        .mount(&upstream)
        .await;
    let mut config = fast_config();
    config.responder = Responder::Upstream {
        url: format!("{}/v1", upstream.uri()),
        key: Some("up-key".into()),
        concurrency: 1,
        timeout: Duration::from_secs(5),
    };
    let emulator = start(config).await;

    let answer: Value = client(&emulator)
        .chat_completion(&body("hello"))
        .await
        .unwrap();

    assert_eq!(answer, completion);
}

#[tokio::test]
async fn an_upstream_error_comes_back_as_it_came() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "model not found", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}})))
        .mount(&upstream)
        .await;
    let mut config = fast_config();
    config.responder = Responder::Upstream {
        url: format!("{}/v1", upstream.uri()),
        key: None,
        concurrency: 1,
        timeout: Duration::from_secs(5),
    };
    let emulator = start(config).await;

    let err = client(&emulator)
        .chat_completion::<_, Value>(&body("hello"))
        .await
        .unwrap_err();

    let Error::Api(api) = &err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(api.kind, ApiErrorKind::BadRequest);
    assert_eq!(api.code.as_deref(), Some("model_not_found"));
    assert_eq!(api.message, "model not found");
}

#[tokio::test]
async fn a_body_without_a_model_is_refused() {
    let emulator = start(fast_config()).await;

    let response = http()
        .post(format!("{}/chat/completions", emulator.base_url()))
        .bearer_auth("k")
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["param"], "model");
    assert_eq!(answer["error"]["code"], "missing_required_parameter");
}
