//! Authentication, unknown paths, request ids, the Files endpoints and pagination.

use std::sync::Arc;

use openai_batch_client::{ApiErrorKind, FileId};
use serde_json::{Value, json};

use crate::support::*;

async fn get(url: &str, auth: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http().get(url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn authentication_failures() {
    let emulator = start(fast_config()).await;
    let url = format!("{}/batches", emulator.base_url());
    for auth in [
        None,
        Some("Bearer "),
        Some("Basic dXNlcjpwYXNz"),
        Some("sk-no-scheme"),
    ] {
        let (status, headers, body) = get(&url, auth).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["param"].is_null());
        assert!(headers.contains_key("x-request-id"));
    }
    // Any non-empty token works when no key is configured.
    assert_eq!(get(&url, Some("Bearer anything")).await.0, 200);

    let mut config = fast_config();
    config.api_key = Some("sk-local-1234567890".into());
    let locked = start(config).await;
    let wrong = client_with_key(&locked, "sk-wrong-1234567890");
    let error = wrong.list_batches_page(None, None).await.unwrap_err();
    let api = error.api().unwrap();
    assert_eq!(api.kind, ApiErrorKind::Authentication);
    assert_eq!(api.code.as_deref(), Some("invalid_api_key"));
    assert!(
        !api.message.contains("sk-wrong-1234567890"),
        "the key is masked"
    );
    // An upload with a wrong key reads the 401, not a broken connection.
    let dir = tempfile::tempdir().unwrap();
    let (text, _) = lesson_requests(200);
    let path = write_file(dir.path(), "in.jsonl", &text);
    let error = wrong.upload_file(&path, Arc::new(())).await.unwrap_err();
    assert_eq!(
        error.api_kind(),
        Some(ApiErrorKind::Authentication),
        "{error:?}"
    );
    let right = client_with_key(&locked, "sk-local-1234567890");
    assert!(
        right
            .list_batches_page(None, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_paths_are_404_with_the_error_body() {
    let emulator = start(fast_config()).await;
    let base = emulator.base_url();
    let (status, headers, body) = get(&format!("{base}/models"), Some("Bearer k")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["message"], "Invalid URL (GET /v1/models)");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(headers.contains_key("x-request-id"));
    let root = base.trim_end_matches("/v1");
    assert_eq!(
        get(&format!("{root}/batches"), Some("Bearer k")).await.0,
        404
    );
    let response = http()
        .put(format!("{base}/batches"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));
    let (status, _, body) = get(&format!("{base}/batches/batch_missing"), Some("Bearer k")).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        "No batch found with id 'batch_missing'."
    );
    let (status, headers, _) = get(&format!("{base}/batches"), Some("Bearer k")).await;
    assert_eq!(status, 200);
    let id = headers["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("req_") && id.len() == 36, "{id}");
}

#[tokio::test]
async fn files_upload_retrieve_content_list_delete() {
    let emulator = start(fast_config()).await;
    let client = client(&emulator);
    let base = emulator.base_url();
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{}\n", request_line("a", "T", "m"));
    let first = upload_text(&client, dir.path(), "first.jsonl", &text).await;
    let second = upload_text(&client, dir.path(), "second.jsonl", &text).await;
    assert!(first.as_str().starts_with("file-"));

    let file = client.retrieve_file(&first).await.unwrap();
    assert_eq!(
        (file.object.as_str(), file.bytes),
        ("file", text.len() as u64)
    );
    assert_eq!(file.expires_at, Some(file.created_at + 30 * 86_400));

    // Content: raw bytes whatever the Accept header, as the official SDK asks for them.
    for accept in ["application/binary", "application/json", "*/*"] {
        let response = http()
            .get(format!("{base}/files/{first}/content"))
            .bearer_auth("k")
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/octet-stream"
        );
        assert_eq!(
            response.headers()["content-disposition"],
            "attachment; filename=\"first.jsonl\""
        );
        assert_eq!(response.text().await.unwrap(), text);
    }
    let dest = dir.path().join("copy.jsonl");
    let bytes = client
        .download_file_to(&first, &dest, Arc::new(()))
        .await
        .unwrap();
    assert_eq!(bytes, text.len() as u64);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), text);

    // List: newest first by default, `order=asc`, purpose filter, pages.
    let list = |query: &str| get_list(format!("{base}/files{query}"));
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let page = list("").await;
    assert_eq!(page["object"], "list");
    assert_eq!(ids(&page), [second.0.clone(), first.0.clone()]);
    assert_eq!(
        ids(&list("?order=asc").await),
        [first.0.clone(), second.0.clone()]
    );
    assert!(ids(&list("?purpose=batch_output").await).is_empty());
    let page = list("?limit=1").await;
    assert_eq!(
        (ids(&page), page["has_more"].clone()),
        (vec![second.0.clone()], json!(true))
    );
    let page = list(&format!("?limit=1&after={second}")).await;
    assert_eq!(
        (ids(&page), page["has_more"].clone()),
        (vec![first.0.clone()], json!(false))
    );
    assert_eq!(page["first_id"], json!(first.0));
    assert_eq!(page["last_id"], json!(first.0));

    // Delete.
    let deleted = client.delete_file(&first).await.unwrap();
    assert_eq!((deleted.id.clone(), deleted.deleted), (first.clone(), true));
    let error = client.retrieve_file(&first).await.unwrap_err();
    assert_eq!(error.api_kind(), Some(ApiErrorKind::NotFound));
    assert_eq!(
        error.api().unwrap().message,
        format!("No such File object: {first}")
    );
    let error = client.delete_file(&first).await.unwrap_err();
    assert_eq!(error.api_kind(), Some(ApiErrorKind::NotFound));
    let error = client
        .download_file_to(&FileId::from("file-missing"), &dest, Arc::new(()))
        .await
        .unwrap_err();
    assert_eq!(error.api_kind(), Some(ApiErrorKind::NotFound));
}

async fn get_list(url: String) -> Value {
    let (status, _, body) = get(&url, Some("Bearer k")).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn batches_list_newest_first_in_pages() {
    use futures::TryStreamExt;

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
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(create(&client, file_id.clone()).await.id);
    }
    let newest_first: Vec<_> = created.iter().rev().cloned().collect();

    let page = client.list_batches_page(None, Some(2)).await.unwrap();
    let ids: Vec<_> = page.data.iter().map(|batch| batch.id.clone()).collect();
    assert_eq!(ids, newest_first[..2]);
    assert!(page.has_more);
    assert_eq!(page.object.as_deref(), Some("list"));
    assert_eq!(page.first_id.as_deref(), Some(newest_first[0].as_str()));
    assert_eq!(page.last_id.as_deref(), Some(newest_first[1].as_str()));
    let page = client
        .list_batches_page(page.last_id.as_deref(), Some(2))
        .await
        .unwrap();
    assert_eq!(page.data[0].id, newest_first[2]);
    let last = client
        .list_batches_page(Some(newest_first[3].as_str()), Some(2))
        .await
        .unwrap();
    assert_eq!(last.data.len(), 1);
    assert!(!last.has_more);

    // The client's stream walks every page.
    let all: Vec<_> = client.list_batches(Some(2)).try_collect().await.unwrap();
    let all: Vec<_> = all.into_iter().map(|batch| batch.id).collect();
    assert_eq!(all, newest_first);

    // Default limit 20, limits 1 to 100.
    let base = emulator.base_url();
    assert_eq!(
        get_list(format!("{base}/batches")).await["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    for bad in ["0", "101", "x"] {
        let (status, _, body) = get(&format!("{base}/batches?limit={bad}"), Some("Bearer k")).await;
        assert_eq!(
            (status, body["error"]["param"].clone()),
            (400, json!("limit")),
            "{bad}"
        );
    }
}

/// A client that shuts down its write side once the upload is sent (a half-close) still
/// reads the answer.
#[tokio::test]
async fn a_half_closed_upload_gets_its_response() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let emulator = start(fast_config()).await;
    let addr = emulator.base_url()["http://".len()..]
        .trim_end_matches("/v1")
        .to_owned();
    let line = request_line("a", "T", "gpt-4o-mini");
    let boundary = "----half-close-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{line}\n\r\n--{boundary}--\r\n"
    );
    let request = format!(
        "POST /v1/files HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer k\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_string(&mut answer),
    )
    .await
    .expect("the emulator answers a half-closed connection")
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let json = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let file: Value = serde_json::from_str(json).unwrap();
    assert_eq!(file["object"], "file");
    assert_eq!(file["bytes"], line.len() + 1);
}
