//! The upstream responder against a wiremock chat-completions server.

use std::collections::BTreeMap;
use std::time::Duration;

use batch_emulator::Responder;
use openai_batch_client::BatchStatus;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1, "model": "llama3.2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
                  "prompt_tokens_details": {"cached_tokens": 2}}
    })
}

fn line(custom_id: &str, prompt: &str) -> String {
    json!({"custom_id": custom_id, "method": "POST", "url": CHAT,
           "body": {"model": "llama3.2", "messages": [{"role": "user", "content": prompt}]}})
    .to_string()
}

fn upstream_config(url: String, timeout: Duration) -> batch_emulator::EmulatorConfig {
    let mut config = fast_config();
    config.responder = Responder::Upstream {
        url,
        key: Some("up-key".into()),
        concurrency: 2,
        timeout,
    };
    config
}

#[tokio::test]
async fn success_upstream_500_and_timeout_land_where_the_batch_api_puts_them() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("please-fail"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {
            "message": "model crashed", "type": "server_error", "param": null, "code": null}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("please-hang"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("late"))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer up-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("# Hello from upstream")))
        .mount(&server)
        .await;

    let config = upstream_config(format!("{}/v1/", server.uri()), Duration::from_millis(300));
    let emulator = start(config).await;
    let client = client(&emulator);
    let text = [
        line("ok-1", "say hi"),
        line("ok-2", "say hello"),
        line("bad", "please-fail"),
        line("slow", "please-hang"),
    ]
    .join("\n");
    let batch = run_batch(&client, &text).await;
    assert_terminal(&batch, BatchStatus::Completed);
    let counts = batch.counts();
    assert_eq!((counts.total, counts.completed, counts.failed), (4, 2, 2));

    let output = download_lines(&client, batch.output_file_id.as_ref().unwrap()).await;
    assert_eq!(output.len(), 2);
    for line in &output {
        assert_eq!(line["response"]["status_code"], 200);
        assert_eq!(
            line["response"]["body"],
            completion("# Hello from upstream"),
            "recorded as is"
        );
    }
    let usage = batch.usage.unwrap();
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.total_tokens),
        (22, 14, 36)
    );
    assert_eq!(usage.input_tokens_details.unwrap().cached_tokens, 4);

    let errors = download_lines(&client, batch.error_file_id.as_ref().unwrap()).await;
    let by_id: BTreeMap<&str, &Value> = errors
        .iter()
        .map(|line| (line["custom_id"].as_str().unwrap(), line))
        .collect();
    let failed = by_id["bad"];
    assert_eq!(failed["response"]["status_code"], 500);
    assert_eq!(
        failed["response"]["body"]["error"]["message"],
        "model crashed"
    );
    assert!(failed["error"].is_null());
    let timed_out = by_id["slow"];
    assert!(timed_out["response"].is_null());
    assert_eq!(timed_out["error"]["code"], "request_timeout");
    assert_eq!(
        timed_out["error"]["message"],
        format!(
            "The upstream call to {}/v1/chat/completions timed out after 0.3 s.",
            server.uri()
        )
    );
    parse_result_lines(&errors);
}

#[tokio::test]
async fn an_unreachable_upstream_is_recorded_as_refused_not_as_a_timeout() {
    // Bind a port, then free it, so nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let emulator = start(upstream_config(url.clone(), Duration::from_secs(30))).await;
    let client = client(&emulator);
    let started = std::time::Instant::now();
    let batch = run_batch(&client, &line("a", "hi")).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "refused at once, not after the timeout"
    );
    assert_terminal(&batch, BatchStatus::Completed);
    assert!(batch.output_file_id.is_none(), "nothing succeeded");
    let errors = download_lines(&client, batch.error_file_id.as_ref().unwrap()).await;
    assert!(errors[0]["response"].is_null());
    assert_eq!(errors[0]["error"]["code"], "upstream_unreachable");
    assert_eq!(
        errors[0]["error"]["message"],
        format!(
            "The emulator could not connect to the upstream server at {url}/chat/completions: connection refused."
        )
    );
    parse_result_lines(&errors);
}

#[tokio::test]
async fn a_non_json_upstream_error_is_wrapped_in_an_error_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .mount(&server)
        .await;
    let emulator = start(upstream_config(server.uri(), Duration::from_secs(2))).await;
    let client = client(&emulator);
    let batch = run_batch(&client, &line("a", "hi")).await;
    let errors = download_lines(&client, batch.error_file_id.as_ref().unwrap()).await;
    assert_eq!(errors[0]["response"]["status_code"], 503);
    assert_eq!(
        errors[0]["response"]["body"]["error"]["message"],
        "overloaded"
    );
}
