//! Bad input: asynchronous validation failures (every code), synchronous create and upload errors.

use openai_batch_client::{ApiErrorKind, BatchError, BatchStatus, CreateBatchRequest, Error};
use serde_json::{Value, json};

use crate::support::*;

/// Runs each file as a batch and checks it fails with exactly `(code, param, line)`.
#[tokio::test]
async fn every_validation_failure_code() {
    let mut config = fast_config();
    config.max_requests = 3;
    let emulator = start(config).await;
    let client = client(&emulator);
    let ok = |id: &str| request_line(id, "A title", "gpt-4o-mini");
    let with = |body: Value| {
        json!({"custom_id": "x", "method": "POST", "url": CHAT, "body": body}).to_string()
    };
    let cases: Vec<(String, &str, Option<&str>, Option<u64>)> = vec![
        (String::new(), "empty_file", None, None),
        (format!("{}\n{{\"custom_id\": \n", ok("a")), "invalid_json_line", None, Some(2)),
        (
            json!({"method": "POST", "url": CHAT, "body": {"model": "m", "messages": []}}).to_string(),
            "missing_required_parameter",
            Some("custom_id"),
            Some(1),
        ),
        (
            json!({"custom_id": "a", "url": CHAT, "body": {"model": "m", "messages": []}}).to_string(),
            "missing_required_parameter",
            Some("method"),
            Some(1),
        ),
        (
            json!({"custom_id": "a", "method": "POST", "body": {"model": "m", "messages": []}}).to_string(),
            "missing_required_parameter",
            Some("url"),
            Some(1),
        ),
        (
            json!({"custom_id": "a", "method": "POST", "url": CHAT}).to_string(),
            "missing_required_parameter",
            Some("body"),
            Some(1),
        ),
        (
            json!({"custom_id": 5, "method": "POST", "url": CHAT, "body": {"model": "m", "messages": []}}).to_string(),
            "invalid_type",
            Some("custom_id"),
            Some(1),
        ),
        (
            json!({"custom_id": "a", "method": "GET", "url": CHAT, "body": {"model": "m", "messages": []}}).to_string(),
            "invalid_value",
            Some("method"),
            Some(1),
        ),
        (
            format!("{}\n{}", ok("a"), ok("b").replace(CHAT, "/v1/embeddings")),
            "invalid_url",
            Some("url"),
            Some(2),
        ),
        (with(json!({"messages": []})), "invalid_request", Some("body.model"), Some(1)),
        (with(json!({"model": "m"})), "invalid_request", Some("body.messages"), Some(1)),
        (
            with(json!({"model": "m", "messages": [], "stream": true})),
            "streaming_unsupported",
            Some("body.stream"),
            Some(1),
        ),
        (
            format!("{}\n{}\n{}\n", ok("a"), ok("b"), ok("a")),
            "duplicate_custom_id",
            Some("custom_id"),
            Some(3),
        ),
        (
            format!("{}\n{}\n", ok("a"), request_line("b", "T", "gpt-4.1-mini")),
            "model_mismatch",
            Some("body.model"),
            Some(2),
        ),
        (
            format!("{}\n{}\n{}\n{}\n", ok("a"), ok("b"), ok("c"), ok("d")),
            "too_many_tasks",
            None,
            None,
        ),
    ];
    let runs = cases.iter().map(|(text, ..)| run_batch(&client, text));
    let batches = futures::future::join_all(runs).await;
    for ((text, code, param, line), batch) in cases.iter().zip(batches) {
        assert_terminal(&batch, BatchStatus::Failed);
        let errors = batch.errors.as_ref().expect("errors are set");
        assert_eq!(errors.object.as_deref(), Some("list"));
        let got: Vec<(Option<&str>, Option<&str>, Option<u64>)> = errors
            .data
            .iter()
            .map(|error| (error.code.as_deref(), error.param.as_deref(), error.line))
            .collect();
        assert_eq!(got, [(Some(*code), *param, *line)], "{text}");
        assert!(
            errors.data[0]
                .message
                .as_ref()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(batch.failed_at.is_some() && batch.in_progress_at.is_none());
        assert_eq!(batch.counts().total, 0);
        assert!(batch.output_file_id.is_none() && batch.error_file_id.is_none());
    }
}

#[tokio::test]
async fn messages_are_the_real_ones() {
    let emulator = start(fast_config()).await;
    let client = client(&emulator);
    let line = request_line("a", "T", "m");
    let batch = run_batch(&client, &format!("{line}\n{line}\n")).await;
    assert_eq!(
        batch.errors.unwrap().data,
        [BatchError {
            code: Some("duplicate_custom_id".into()),
            message: Some(
                "The custom_id for this request is a duplicate of another request. \
                 The custom_id parameter must be unique for each request in a batch."
                    .into()
            ),
            param: Some("custom_id".into()),
            line: Some(2),
        }]
    );
    let stream = json!({"custom_id": "a", "method": "POST", "url": CHAT,
        "body": {"model": "m", "messages": [], "stream": true}});
    let batch = run_batch(&client, &stream.to_string()).await;
    assert_eq!(
        batch.errors.unwrap().data[0].message.as_deref(),
        Some("Chat Completions: Streaming is not supported in the Batch API.")
    );
}

/// A file deleted between create and validation fails the batch like the real API.
#[tokio::test]
async fn an_input_file_deleted_before_validation_fails_the_batch() {
    let mut config = fast_config();
    config.timing.validation = std::time::Duration::from_millis(300);
    let emulator = start(config).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let file_id = upload_text(
        &client,
        dir.path(),
        "in.jsonl",
        &request_line("a", "T", "m"),
    )
    .await;
    let batch = create(&client, file_id.clone()).await;
    client.delete_file(&file_id).await.unwrap();
    let (batch, _) = wait(&client, &batch.id).await;
    assert_terminal(&batch, BatchStatus::Failed);
    let error = &batch.errors.unwrap().data[0];
    assert_eq!(error.code.as_deref(), Some("invalid_request"));
    assert_eq!(error.param.as_deref(), Some("file_id"));
    assert_eq!(error.line, None);
}

fn api_error(error: &Error) -> (ApiErrorKind, Option<&str>, Option<&str>) {
    let api = error
        .api()
        .unwrap_or_else(|| panic!("an API error: {error:?}"));
    (api.kind, api.code.as_deref(), api.param.as_deref())
}

#[tokio::test]
async fn malformed_create_parameters_are_400_at_once() {
    let emulator = start(fast_config()).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let file_id = upload_text(
        &client,
        dir.path(),
        "in.jsonl",
        &request_line("a", "T", "m"),
    )
    .await;

    let bad_endpoint = CreateBatchRequest::new(file_id.clone(), "/v1/invalid/endpoint");
    let error = client.create_batch(&bad_endpoint).await.unwrap_err();
    assert_eq!(
        api_error(&error),
        (
            ApiErrorKind::BadRequest,
            Some("invalid_value"),
            Some("endpoint")
        )
    );
    assert!(
        error.api().unwrap().message.starts_with(
            "Invalid value: '/v1/invalid/endpoint'. Supported values are: '/v1/responses', '/v1/chat/completions'"
        ),
        "{error}"
    );
    assert_eq!(
        error.api().unwrap().error_type.as_deref(),
        Some("invalid_request_error")
    );

    let mut bad_window = CreateBatchRequest::new(file_id.clone(), CHAT);
    bad_window.completion_window = "48h".into();
    let error = client.create_batch(&bad_window).await.unwrap_err();
    assert_eq!(
        api_error(&error),
        (
            ApiErrorKind::BadRequest,
            Some("invalid_value"),
            Some("completion_window")
        )
    );

    let unknown = CreateBatchRequest::new("file-doesnotexist".into(), CHAT);
    let error = client.create_batch(&unknown).await.unwrap_err();
    assert_eq!(
        api_error(&error),
        (
            ApiErrorKind::BadRequest,
            Some("invalid_request"),
            Some("input_file_id")
        )
    );

    // Metadata breaks, sent raw since the client only sends string maps.
    let url = format!("{}/batches", emulator.base_url());
    let post = |body: Value| {
        let url = url.clone();
        async move {
            let response = http()
                .post(url)
                .bearer_auth("k")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["error"]["code"].clone(),
                body["error"]["param"].clone(),
            )
        }
    };
    let base = |metadata: Value| json!({"input_file_id": file_id.as_str(), "endpoint": CHAT, "completion_window": "24h", "metadata": metadata});
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (
            base(json!({"tags": ["a", "b"]})),
            "invalid_type",
            json!("metadata.tags"),
        ),
        (base(json!({"n": 1})), "invalid_type", json!("metadata.n")),
        (
            base(Value::Object(many)),
            "object_above_max_properties",
            json!("metadata"),
        ),
        (
            base(json!({"k".repeat(65): "v"})),
            "string_above_max_length",
            json!("metadata"),
        ),
        (
            base(json!({"k": "v".repeat(513)})),
            "string_above_max_length",
            json!("metadata.k"),
        ),
        (
            json!({"endpoint": CHAT, "completion_window": "24h"}),
            "missing_required_parameter",
            json!("input_file_id"),
        ),
    ];
    for (body, code, param) in cases {
        assert_eq!(
            post(body.clone()).await,
            (400, json!(code), param),
            "{body}"
        );
    }
    // The limits themselves are allowed.
    let fine: serde_json::Map<String, Value> = (0..16)
        .map(|i| (format!("{i:0>64}"), json!("v".repeat(512))))
        .collect();
    assert_eq!(post(base(Value::Object(fine))).await.0, 200);
    let not_json = http()
        .post(&url)
        .bearer_auth("k")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
}

#[tokio::test]
async fn batch_uploads_are_judged_by_their_content_and_fit_the_size_limit() {
    let mut config = fast_config();
    config.max_file_bytes = 100;
    let emulator = start(config).await;
    let url = format!("{}/files", emulator.base_url());
    let upload = |name: &str, purpose: &str, bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .text("purpose", purpose.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
            );
        let request = http().post(&url).bearer_auth("k").multipart(form);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // Any name: the official SDK names a raw-bytes upload `upload`; case does not matter.
    // (Lines with a missing `method` and the like fail later, at batch validation.)
    let line = b"\n{\"custom_id\": \"a\"}\n";
    for name in ["upload", "input.JSONL", "input.txt", "requests.jsonl"] {
        let (status, body) = upload(name, "batch", line.to_vec()).await;
        assert_eq!(
            (status, body["filename"].clone()),
            (200, json!(name)),
            "{body}"
        );
    }
    // The content does: a body that is not JSONL gets the real API's error, whatever its name.
    let not_jsonl: [&[u8]; 3] = [
        b"custom_id,title\nlesson_M0-L001,Intro\n",
        b"\n\nJust some notes, not JSON.\n{}\n",
        b"%PDF-1.7\n\xff\xfe binary\n",
    ];
    for bytes in not_jsonl {
        let (status, body) = upload("requests.jsonl", "batch", bytes.to_vec()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"],
            json!({
                "message": "Invalid file format for Batch API. Must be .jsonl",
                "type": "invalid_request_error",
                "param": "file",
                "code": "invalid_file_format"
            })
        );
    }
    let (status, body) = upload("big.jsonl", "batch", vec![b' '; 101]).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("file_too_large"))
    );
    // A big upload over the limit still reads the answer (the client sends `purpose` first).
    let dir = tempfile::tempdir().unwrap();
    let big = write_file(dir.path(), "big.jsonl", &" ".repeat(8 << 20));
    let error = client(&emulator)
        .upload_file(&big, std::sync::Arc::new(()))
        .await
        .unwrap_err();
    let api = error
        .api()
        .unwrap_or_else(|| panic!("an API error: {error:?}"));
    assert_eq!(
        (api.status, api.code.as_deref()),
        (400, Some("file_too_large"))
    );
    let (status, body) = upload("ok.jsonl", "batch", vec![b' '; 100]).await;
    assert_eq!((status, body["bytes"].clone()), (200, json!(100)));
    // Other purposes are not batch inputs: any name, the general size limit.
    let (status, body) = upload("notes.txt", "user_data", vec![b'x'; 500]).await;
    assert_eq!((status, body["purpose"].clone()), (200, json!("user_data")));
    let (status, body) = upload("a.jsonl", "nonsense", b"{}".to_vec()).await;
    assert_eq!(
        (status, body["error"]["param"].clone()),
        (400, json!("purpose"))
    );
    // A file of another purpose cannot feed a batch.
    let other_id = upload("x.jsonl", "user_data", b"{}\n".to_vec()).await.1["id"].clone();
    let response = http()
        .post(format!("{}/batches", emulator.base_url()))
        .bearer_auth("k")
        .json(&json!({"input_file_id": other_id, "endpoint": CHAT, "completion_window": "24h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // No file part at all.
    let form = reqwest::multipart::Form::new().text("purpose", "batch");
    let response = http()
        .post(&url)
        .bearer_auth("k")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_required_parameter");
    assert_eq!(body["error"]["param"], "file");
}
