//! The Anthropic Message Batches API: the create call's checks and error shape, the
//! lifecycle with its counts, cancel, expiry, seeded faults, upstream forwarding,
//! persistence, and result lines in the shape of the contract's real lines
//! (`/work/shared/reference/anthropic-message-batches.md`, copied below).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use batch_emulator::{Emulator, EmulatorConfig, Faults, Responder, Timing};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// The contract's result lines, one of each type, as the reference doc gives them.
const REFERENCE_LINES: [&str; 4] = [
    r##"{"custom_id": "a", "result": {"type": "succeeded", "message": {"model": "claude-…", "id": "msg_…", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "# Lesson …"}], "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 1200, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 2400, "service_tier": "batch"}}}}"##,
    r#"{"custom_id": "b", "result": {"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "…"}, "request_id": "…"}}}"#,
    r#"{"custom_id": "c", "result": {"type": "canceled"}}"#,
    r#"{"custom_id": "d", "result": {"type": "expired"}}"#,
];

/// A request for one lesson.
fn request(custom_id: &str, model: &str) -> Value {
    let code = custom_id.strip_prefix("lesson_").unwrap_or(custom_id);
    json!({
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": 4000,
            "system": [{"type": "text", "text": "You write clear lessons in Markdown.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": format!("# Lesson {code}: Working with data")}]}]
        }
    })
}

/// `n` lesson requests.
fn requests(n: usize) -> Value {
    let requests: Vec<Value> = (0..n)
        .map(|i| request(&format!("lesson_M0-L{:03}", i + 1), "claude-sonnet-4-5"))
        .collect();
    json!({ "requests": requests })
}

/// A call with the Anthropic headers.
fn call(emulator: &Emulator, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    http()
        .request(method, format!("{}{path}", emulator.anthropic_base_url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
}

/// Sends a call; returns its status and JSON body.
async fn send(builder: reqwest::RequestBuilder) -> (u16, Value) {
    let response = builder.send().await.expect("the emulator answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// Sends `method` to the batch `id`'s URL followed by `suffix` (`""`, `"/cancel"`, `"/results"`);
/// returns its status and JSON body.
async fn on_batch(emulator: &Emulator, method: Method, id: &str, suffix: &str) -> (u16, Value) {
    send(call(
        emulator,
        method,
        &format!("/v1/messages/batches/{id}{suffix}"),
    ))
    .await
}

/// Sends a GET to `path`; returns its status and JSON body.
async fn get(emulator: &Emulator, path: &str) -> (u16, Value) {
    send(call(emulator, Method::GET, path)).await
}

/// Checks an answer's status and its Anthropic error type.
fn assert_error(status: u16, error: &Value, expected: u16, error_type: &str) {
    assert_eq!(
        (status, error["error"]["type"].as_str()),
        (expected, Some(error_type)),
        "{error}"
    );
}

/// A batch's RFC 3339 time `field`.
fn time(batch: &Value, field: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(batch[field].as_str().unwrap()).unwrap()
}

async fn create(emulator: &Emulator, body: &Value) -> Value {
    let (status, batch) =
        send(call(emulator, Method::POST, "/v1/messages/batches").json(body)).await;
    assert_eq!(status, 200, "{batch}");
    batch
}

/// Creates a batch of `body` and returns its id.
async fn create_id(emulator: &Emulator, body: &Value) -> String {
    create(emulator, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn retrieve(emulator: &Emulator, id: &str) -> Value {
    let (status, batch) = on_batch(emulator, Method::GET, id, "").await;
    assert_eq!(status, 200, "{batch}");
    batch
}

/// Polls until the batch has ended.
async fn wait_ended(emulator: &Emulator, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let batch = retrieve(emulator, id).await;
        if batch["processing_status"] == "ended" {
            return batch;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ended: {batch}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The raw result lines, fetched from the batch's `results_url` as the SDK does.
async fn results(emulator: &Emulator, batch: &Value) -> Vec<String> {
    let url = batch["results_url"]
        .as_str()
        .expect("an ended batch has a results_url");
    let response = http()
        .get(url)
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .header("accept", "application/binary")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "every line ends with a newline"
    );
    let _ = emulator;
    text.lines().map(str::to_owned).collect()
}

fn parse(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// How many lines have each `result.type`.
fn kinds(lines: &[Value]) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    for line in lines {
        *kinds
            .entry(line["result"]["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    kinds
}

/// Waits for the batch `id` to end and returns it with its result lines, checked against its
/// counts for `n` requests.
async fn ended_with_lines(emulator: &Emulator, id: &str, n: u64) -> (Value, Vec<Value>) {
    let ended = wait_ended(emulator, id).await;
    let lines = parse(&results(emulator, &ended).await);
    check_counts(&ended, &lines, n);
    (ended, lines)
}

/// Checks the counts against the lines: each request once, each count its lines.
fn check_counts(batch: &Value, lines: &[Value], n: u64) {
    let counts = &batch["request_counts"];
    assert_eq!(counts["processing"], 0, "{batch}");
    let kinds = kinds(lines);
    for kind in ["succeeded", "errored", "canceled", "expired"] {
        assert_eq!(
            counts[kind].as_u64(),
            Some(kinds.get(kind).copied().unwrap_or(0)),
            "{kind}: {batch}"
        );
    }
    let ids: HashSet<&str> = lines
        .iter()
        .map(|line| line["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len() as u64, n, "each request has one line");
    assert_eq!(lines.len() as u64, n);
}

#[tokio::test]
async fn the_create_call_refuses_what_the_real_api_refuses() {
    let emulator = start(fast_config()).await;
    let check = |body: Value, message: &'static str| {
        let emulator = &emulator;
        async move {
            let (got, error) =
                send(call(emulator, Method::POST, "/v1/messages/batches").json(&body)).await;
            assert_eq!(got, 400, "{error}");
            assert_eq!(error["type"], "error", "{error}");
            assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
            let text = error["error"]["message"].as_str().unwrap();
            assert!(text.starts_with(message), "{text}");
        }
    };
    for (body, message) in [
        (json!({}), "requests: Field required"),
        (
            json!({"requests": []}),
            "requests: List should have at least 1 item",
        ),
        (
            json!({"requests": [request("lesson_M0-L001", "m"), request("lesson.M0-L002", "m")]}),
            "requests.1.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
        (
            json!({"requests": [request(&"a".repeat(65), "m")]}),
            "requests.0.custom_id: String should match pattern",
        ),
        (
            json!({"requests": [request("a", "m"), request("a", "m")]}),
            "requests.1.custom_id: Duplicate custom_id 'a'",
        ),
    ] {
        check(body, message).await;
    }
    for field in ["model", "max_tokens", "messages"] {
        let mut bad = request("a", "m");
        bad["params"].as_object_mut().unwrap().remove(field);
        let expected: &'static str = match field {
            "model" => "requests.0.params.model: Field required",
            "max_tokens" => "requests.0.params.max_tokens: Field required",
            _ => "requests.0.params.messages: Field required",
        };
        check(json!({"requests": [bad]}), expected).await;
    }
    let too_many: Vec<Value> = (0..100_001)
        .map(|i| json!({"custom_id": format!("r{i}"), "params": {"model": "m", "max_tokens": 1, "messages": []}}))
        .collect();
    check(
        json!({"requests": too_many}),
        "requests: List should have at most 100000 items after validation, not 100001",
    )
    .await;

    // Headers: a key (any non-empty one) and a version.
    let url = format!("{}/v1/messages/batches", emulator.anthropic_base_url());
    let (status, error) = send(http().get(&url).header("anthropic-version", "2023-06-01")).await;
    assert_error(status, &error, 401, "authentication_error");
    let (status, error) = send(http().get(&url).header("x-api-key", "k")).await;
    assert_error(status, &error, 400, "invalid_request_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic-version")
    );

    // Unknown ids and URLs are 404 in the Anthropic shape; nothing was created.
    let (status, error) = get(&emulator, "/v1/messages/batches/msgbatch_nope").await;
    assert_error(status, &error, 404, "not_found_error");
    let (status, error) = get(&emulator, "/v1/messages/nowhere").await;
    assert_eq!(
        (status, error["type"].as_str()),
        (404, Some("error")),
        "{error}"
    );
    let (_, page) = get(&emulator, "/v1/messages/batches").await;
    assert_eq!(page["data"], json!([]), "{page}");
}

#[tokio::test]
async fn a_batch_ends_with_every_request_succeeded_and_stays_out_of_the_openai_routes() {
    let emulator = start(fast_config()).await;
    // Models may differ within one message batch.
    let body = json!({"requests": [
        request("lesson_M0-L001", "claude-sonnet-4-5"),
        request("lesson_M0-L002", "claude-haiku-4-5"),
        request("lesson_M0-L003", "claude-sonnet-4-5"),
    ]});
    let created = create(&emulator, &body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msgbatch_"), "{id}");
    assert_eq!(created["type"], "message_batch");
    assert_eq!(created["processing_status"], "in_progress");
    assert_eq!(
        created["request_counts"],
        json!({"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0})
    );
    assert!(created["results_url"].is_null() && created["ended_at"].is_null());
    let (status, early) = on_batch(&emulator, Method::GET, &id, "/results").await;
    assert_eq!(status, 400, "{early}");
    let (status, early) = on_batch(&emulator, Method::DELETE, &id, "").await;
    assert_eq!(status, 400, "{early}");

    let ended = wait_ended(&emulator, &id).await;
    assert_eq!(
        ended["results_url"],
        format!(
            "{}/v1/messages/batches/{id}/results",
            emulator.anthropic_base_url()
        )
    );
    let created_at = time(&ended, "created_at");
    let expires_at = time(&ended, "expires_at");
    assert_eq!(expires_at - created_at, chrono::TimeDelta::hours(24));
    assert!(chrono::DateTime::parse_from_rfc3339(ended["ended_at"].as_str().unwrap()).is_ok());
    let lines = parse(&results(&emulator, &ended).await);
    check_counts(&ended, &lines, 3);
    assert_eq!(ended["request_counts"]["succeeded"], 3);
    for line in &lines {
        let message = &line["result"]["message"];
        let code = &line["custom_id"].as_str().unwrap()[7..];
        let text = message["content"][0]["text"].as_str().unwrap();
        assert!(
            text.starts_with(&format!("# Lesson {code}: Working with data\n")),
            "{text}"
        );
        assert_eq!(message["stop_reason"], "end_turn");
        assert!(message["usage"]["input_tokens"].as_u64().unwrap() > 0);
        assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);
    }
    let model = |custom_id: &str| {
        lines
            .iter()
            .find(|line| line["custom_id"] == custom_id)
            .unwrap()["result"]["message"]["model"]
            .clone()
    };
    assert_eq!(model("lesson_M0-L002"), "claude-haiku-4-5");

    // Neither the batch nor its files show through the OpenAI routes.
    let openai = get_json(&emulator, &format!("batches/{id}")).await;
    assert_eq!(openai["error"]["type"], "invalid_request_error", "{openai}");
    assert_eq!(get_json(&emulator, "batches").await["data"], json!([]));
    assert_eq!(get_json(&emulator, "files").await["data"], json!([]));

    // Cancelling an ended batch is refused; deleting it works once.
    let (status, _) = on_batch(&emulator, Method::POST, &id, "/cancel").await;
    assert_eq!(status, 400);
    let (status, deleted) = on_batch(&emulator, Method::DELETE, &id, "").await;
    assert_eq!(
        (status, deleted),
        (200, json!({"id": id, "type": "message_batch_deleted"}))
    );
    let (status, _) = on_batch(&emulator, Method::GET, &id, "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn lists_page_most_recent_first_both_ways() {
    let emulator = start(fast_config()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = json!({"requests": [request(&format!("r{i}"), "m")]});
        ids.push(create_id(&emulator, &body).await);
    }
    ids.reverse();
    let page = |query: String| {
        let emulator = &emulator;
        async move {
            let (status, page) = send(call(
                emulator,
                Method::GET,
                &format!("/v1/messages/batches{query}"),
            ))
            .await;
            assert_eq!(status, 200, "{page}");
            let data: Vec<String> = page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["id"].as_str().unwrap().to_owned())
                .collect();
            (
                data,
                page["has_more"].as_bool().unwrap(),
                page["first_id"].clone(),
                page["last_id"].clone(),
            )
        }
    };
    let (data, more, first, last) = page("?limit=2".into()).await;
    assert_eq!((data.as_slice(), more), (&ids[0..2], true));
    assert_eq!((first, last), (json!(ids[0]), json!(ids[1])));
    let (data, more, ..) = page(format!("?limit=2&after_id={}", ids[1])).await;
    assert_eq!((data.as_slice(), more), (&ids[2..4], true));
    let (data, more, ..) = page(format!("?limit=2&after_id={}", ids[3])).await;
    assert_eq!((data.as_slice(), more), (&ids[4..5], false));
    let (data, more, ..) = page(format!("?limit=2&before_id={}", ids[4])).await;
    assert_eq!((data.as_slice(), more), (&ids[2..4], true));
    let (data, more, ..) = page(format!("?limit=2&before_id={}", ids[2])).await;
    assert_eq!((data.as_slice(), more), (&ids[0..2], false));
    let (data, more, ..) = page(String::new()).await;
    assert_eq!((data.len(), more), (5, false));
    let (status, error) = get(&emulator, "/v1/messages/batches?limit=0").await;
    assert_error(status, &error, 400, "invalid_request_error");
}

/// Slow requests, so a batch is still running when the test acts on it.
fn slow_config() -> EmulatorConfig {
    let mut config = fast_config();
    config.timing = Timing {
        validation: Duration::from_millis(10),
        per_request: Duration::from_millis(50),
        finalizing: Duration::from_millis(10),
    };
    config.concurrency = 2;
    config
}

#[tokio::test]
async fn a_canceled_batch_ends_with_canceled_results() {
    let emulator = start(slow_config()).await;
    let created = create(&emulator, &requests(30)).await;
    let id = created["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (status, canceling) = on_batch(&emulator, Method::POST, id, "/cancel").await;
    assert_eq!(status, 200, "{canceling}");
    assert_eq!(canceling["processing_status"], "canceling");
    assert!(canceling["cancel_initiated_at"].is_string());
    assert_eq!(
        canceling["request_counts"]["processing"], 30,
        "no counts before the end"
    );
    let (ended, _) = ended_with_lines(&emulator, id, 30).await;
    let counts = &ended["request_counts"];
    assert!(counts["canceled"].as_u64().unwrap() > 0, "{ended}");
    assert!(
        counts["succeeded"].as_u64().unwrap() > 0,
        "requests already running finish: {ended}"
    );
    assert_eq!(counts["errored"], 0);
}

#[tokio::test]
async fn a_batch_canceled_before_it_ran_lists_every_request_as_canceled() {
    let mut config = slow_config();
    config.timing.validation = Duration::from_millis(500);
    let emulator = start(config).await;
    let id = create_id(&emulator, &requests(4)).await;
    on_batch(&emulator, Method::POST, &id, "/cancel").await;
    let (ended, _) = ended_with_lines(&emulator, &id, 4).await;
    assert_eq!(ended["request_counts"]["canceled"], 4);
}

#[tokio::test]
async fn an_expired_batch_ends_with_expired_results() {
    let mut config = slow_config();
    config.completion_window = Duration::from_millis(300);
    let emulator = start(config).await;
    let id = create_id(&emulator, &requests(40)).await;
    let (ended, lines) = ended_with_lines(&emulator, &id, 40).await;
    let counts = &ended["request_counts"];
    assert!(counts["expired"].as_u64().unwrap() > 0, "{ended}");
    assert!(counts["succeeded"].as_u64().unwrap() > 0, "{ended}");
    assert_eq!(
        lines
            .iter()
            .find(|line| line["result"]["type"] == "expired")
            .unwrap()["result"],
        json!({"type": "expired"})
    );
}

#[tokio::test]
async fn seeded_faults_become_errored_results_and_cut_answers() {
    let mut config = fast_config();
    config.faults = Faults {
        seed: 7,
        server_error_share: 0.15,
        rate_limit_share: 0.15,
        bad_request_share: 0.15,
        length_share: 0.2,
        ..Faults::default()
    };
    let emulator = start(config).await;
    let id = create_id(&emulator, &requests(60)).await;
    let (_, lines) = ended_with_lines(&emulator, &id, 60).await;
    let mut error_types = BTreeMap::<String, u64>::new();
    let mut cut = 0;
    for line in &lines {
        let result = &line["result"];
        match result["type"].as_str().unwrap() {
            "errored" => {
                assert_eq!(result["error"]["type"], "error");
                assert!(
                    result["error"]["request_id"]
                        .as_str()
                        .unwrap()
                        .starts_with("req_")
                );
                *error_types
                    .entry(
                        result["error"]["error"]["type"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    )
                    .or_default() += 1;
            }
            "succeeded" if result["message"]["stop_reason"] == "max_tokens" => cut += 1,
            "succeeded" => assert_eq!(result["message"]["stop_reason"], "end_turn"),
            other => panic!("unexpected {other}"),
        }
    }
    for kind in ["invalid_request_error", "api_error", "rate_limit_error"] {
        assert!(
            error_types.get(kind).is_some_and(|n| *n > 0),
            "{kind}: {error_types:?}"
        );
    }
    assert_eq!(error_types.len(), 3, "{error_types:?}");
    assert!(cut > 0, "some answers are cut to max_tokens");
}

#[tokio::test]
async fn upstream_forwarding_sends_a_chat_completion_and_returns_a_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "llama3.2",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "# From upstream"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 10}}
        })))
        .mount(&server)
        .await;
    let mut config = fast_config();
    config.responder = Responder::Upstream {
        url: format!("{}/v1", server.uri()),
        key: None,
        concurrency: 2,
        timeout: Duration::from_secs(5),
    };
    let emulator = start(config).await;
    let id = create_id(
        &emulator,
        &json!({"requests": [request("lesson_M0-L001", "llama3.2")]}),
    )
    .await;
    let ended = wait_ended(&emulator, &id).await;
    let lines = parse(&results(&emulator, &ended).await);
    let message = &lines[0]["result"]["message"];
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "# From upstream"}])
    );
    assert_eq!(message["model"], "llama3.2");
    assert_eq!(message["usage"]["input_tokens"], 20);
    assert_eq!(message["usage"]["cache_read_input_tokens"], 10);
    assert_eq!(message["usage"]["output_tokens"], 7);

    let received = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "llama3.2",
            "max_tokens": 4000,
            "messages": [
                {"role": "system", "content": "You write clear lessons in Markdown."},
                {"role": "user", "content": "# Lesson M0-L001: Working with data"}
            ]
        })
    );
}

#[tokio::test]
async fn message_batches_survive_a_restart_with_their_results() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = fast_config();
    config.data_dir = Some(data_dir.path().to_owned());
    let emulator = start(config.clone()).await;
    let id = create_id(&emulator, &requests(3)).await;
    let before = wait_ended(&emulator, &id).await;
    let lines_before = parse(&results(&emulator, &before).await);
    emulator.shutdown().await;

    let emulator = start(config).await;
    let after = retrieve(&emulator, &id).await;
    assert_eq!(after["request_counts"], before["request_counts"]);
    assert_eq!(after["ended_at"], before["ended_at"]);
    let lines_after = parse(&results(&emulator, &after).await);
    let texts = |lines: &[Value]| {
        let mut texts: Vec<String> = lines
            .iter()
            .map(|line| line["result"]["message"]["content"][0]["text"].to_string())
            .collect();
        texts.sort();
        texts
    };
    assert_eq!(texts(&lines_after), texts(&lines_before));
}

/// Every object's keys, recursively, in order of appearance in the raw text.
fn key_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            let path = format!("{prefix}/{key}");
            out.push(path.clone());
            key_paths(child, &path, out);
        }
    } else if let Value::Array(items) = value {
        for item in items {
            key_paths(item, &format!("{prefix}[]"), out);
        }
    }
}

/// The top-level keys of every object in a raw line, in the order they appear.
fn raw_key_order(raw: &str, keys: &[&str]) -> Vec<usize> {
    keys.iter()
        .map(|key| {
            raw.find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing in {raw}"))
        })
        .collect()
}

#[tokio::test]
async fn result_lines_have_the_reference_docs_shape() {
    let mut config = slow_config();
    config.faults = Faults {
        seed: 3,
        bad_request_share: 0.3,
        ..Faults::default()
    };
    config.completion_window = Duration::from_millis(400);
    let emulator = start(config).await;
    let expired = create_id(&emulator, &requests(40)).await;
    let canceled = create_id(&emulator, &requests(4)).await;
    on_batch(&emulator, Method::POST, &canceled, "/cancel").await;
    let mut lines = results(&emulator, &wait_ended(&emulator, &expired).await).await;
    lines.extend(results(&emulator, &wait_ended(&emulator, &canceled).await).await);

    for reference in REFERENCE_LINES {
        let reference: Value = serde_json::from_str(reference).unwrap();
        let kind = reference["result"]["type"].as_str().unwrap();
        let raw = lines
            .iter()
            .find(|line| serde_json::from_str::<Value>(line).unwrap()["result"]["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} line"));
        let line: Value = serde_json::from_str(raw).unwrap();
        let (mut expected, mut got) = (Vec::new(), Vec::new());
        key_paths(&reference, "", &mut expected);
        key_paths(&line, "", &mut got);
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{kind}: {raw}");
        // The same field order as the real lines.
        if kind == "succeeded" {
            let order = raw_key_order(
                raw,
                &[
                    "custom_id",
                    "result",
                    "model",
                    "id",
                    "role",
                    "content",
                    "stop_reason",
                    "stop_sequence",
                    "usage",
                    "input_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                    "cache_creation",
                    "output_tokens",
                    "service_tier",
                ],
            );
            assert!(order.is_sorted(), "{raw}");
            assert_eq!(line["result"]["message"]["usage"]["service_tier"], "batch");
        }
        if kind == "errored" {
            let order = raw_key_order(
                raw,
                &["custom_id", "result", "error", "message", "request_id"],
            );
            assert!(order.is_sorted(), "{raw}");
        }
    }
}

#[tokio::test]
async fn results_are_archived_29_days_after_creation() {
    let emulator = start(fast_config()).await;
    let id = create_id(&emulator, &requests(2)).await;
    let ended = wait_ended(&emulator, &id).await;
    assert!(ended["archived_at"].is_null());
    emulator.advance_file_clock(Duration::from_secs(29 * 24 * 60 * 60 - 60));
    assert_eq!(
        results(&emulator, &ended).await.len(),
        2,
        "still there on day 28"
    );
    emulator.advance_file_clock(Duration::from_secs(60));
    let archived = retrieve(&emulator, &id).await;
    let created_at = time(&archived, "created_at");
    let archived_at = time(&archived, "archived_at");
    assert_eq!(archived_at - created_at, chrono::TimeDelta::days(29));
    assert_eq!(
        archived["request_counts"], ended["request_counts"],
        "the batch stays visible"
    );
    let (status, error) = on_batch(&emulator, Method::GET, &id, "/results").await;
    assert_error(status, &error, 404, "not_found_error");
}

#[tokio::test]
async fn api_faults_on_message_batch_endpoints_answer_in_the_anthropic_shape() {
    use batch_emulator::{Endpoint, HttpFault, HttpFaultKind};

    let mut config = fast_config();
    config.faults.http = vec![
        HttpFault {
            endpoint: "messages.batches.create".parse().unwrap(),
            kind: HttpFaultKind::RateLimited {
                retry_after: Duration::from_millis(1500),
            },
            times: 1,
        },
        HttpFault {
            endpoint: Endpoint::RetrieveMessageBatch,
            kind: HttpFaultKind::ServerError,
            times: 1,
        },
    ];
    let emulator = start(config).await;
    let limited = call(&emulator, Method::POST, "/v1/messages/batches")
        .json(&requests(1))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "2");
    assert_eq!(limited.headers()["retry-after-ms"], "1500");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    let id = create_id(&emulator, &requests(1)).await;
    let (status, body) = on_batch(&emulator, Method::GET, &id, "").await;
    assert_error(status, &body, 500, "api_error");
    assert_eq!(
        retrieve(&emulator, &id).await["id"],
        id.as_str(),
        "only the first call fails"
    );
}

#[tokio::test]
async fn a_marked_shared_prefix_is_written_to_the_cache_once_and_read_after() {
    let emulator = start(fast_config()).await;
    let outline = "Module 1: Data basics. Lesson 1 covers tables, keys and joins. ".repeat(150);
    let body = |marked: bool| {
        let requests: Vec<Value> = (1..=4)
            .map(|i| {
                let mut request = request(&format!("lesson_M0-L00{i}"), "claude-sonnet-4-5");
                let mut block = json!({"type": "text", "text": outline});
                if marked {
                    block["cache_control"] = json!({"type": "ephemeral"});
                }
                request["params"]["system"] =
                    json!([{"type": "text", "text": "You write lessons."}, block]);
                request
            })
            .collect();
        json!({ "requests": requests })
    };
    let usages = |marked: bool| {
        let emulator = &emulator;
        let body = body(marked);
        async move {
            let id = create_id(emulator, &body).await;
            let ended = wait_ended(emulator, &id).await;
            parse(&results(emulator, &ended).await)
                .into_iter()
                .map(|line| {
                    (
                        line["custom_id"].as_str().unwrap().to_owned(),
                        line["result"]["message"]["usage"].clone(),
                    )
                })
                .collect::<BTreeMap<String, Value>>()
        }
    };
    let cached = usages(true).await;
    let plain = usages(false).await;
    let number = |usage: &Value, field: &str| usage[field].as_u64().unwrap();
    let mut writes = 0;
    let mut prefix_tokens = HashSet::new();
    for (custom_id, usage) in &cached {
        let written = number(usage, "cache_creation_input_tokens");
        let read = number(usage, "cache_read_input_tokens");
        assert_eq!(
            number(usage, "input_tokens") + written + read,
            number(&plain[custom_id], "input_tokens"),
            "{usage}"
        );
        assert_eq!(
            usage["cache_creation"]["ephemeral_5m_input_tokens"].as_u64(),
            Some(written)
        );
        if written > 0 {
            writes += 1;
            assert_eq!(read, 0);
        }
        prefix_tokens.insert(written + read);
    }
    assert_eq!(writes, 1, "one write, then reads: {cached:?}");
    assert_eq!(prefix_tokens.len(), 1, "{cached:?}");
    assert!(prefix_tokens.into_iter().next().unwrap() >= 1024);
    for usage in plain.values() {
        assert_eq!(
            (
                number(usage, "cache_creation_input_tokens"),
                number(usage, "cache_read_input_tokens")
            ),
            (0, 0)
        );
    }
}

#[tokio::test]
async fn a_message_batch_left_running_finishes_after_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = slow_config();
    config.data_dir = Some(data_dir.path().to_owned());
    let emulator = start(config.clone()).await;
    let id = create_id(&emulator, &requests(20)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        retrieve(&emulator, &id).await["processing_status"],
        "in_progress"
    );
    emulator.shutdown().await;

    let emulator = start(config).await;
    let (ended, _) = ended_with_lines(&emulator, &id, 20).await;
    assert_eq!(ended["request_counts"]["succeeded"], 20, "{ended}");
}
