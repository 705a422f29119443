//! Files API: multipart upload, retrieve, delete, streamed download, and no partial files.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use openai_batch_client::{ApiErrorKind, Error, FileId};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, KEY, Recorder};

#[tokio::test]
async fn upload_streams_a_multipart_form_with_purpose_batch() {
    let dir = tempfile::tempdir().unwrap();
    let shard = support::write_shard(dir.path(), "shard_001.jsonl", 500);
    let content = std::fs::read(&shard).unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/files"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("openai-organization", "org-test"))
        .and(header("openai-project", "proj-test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(support::file(
            "file-abc",
            "shard_001.jsonl",
            content.len() as u64,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let recorder = Arc::new(Recorder::default());

    let file = support::client(&server.uri())
        .upload_file(&shard, recorder.clone())
        .await
        .unwrap();

    assert_eq!(file.id, FileId::from("file-abc"));
    assert_eq!(file.purpose, "batch");
    assert_eq!(
        *recorder.starts.lock().unwrap(),
        [Some(content.len() as u64)]
    );
    assert_eq!(recorder.bytes.load(Ordering::SeqCst), content.len() as u64);
    let requests = server.received_requests().await.unwrap();
    let request = &requests[0];
    let content_type = request.headers["content-type"].to_str().unwrap();
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .expect("a multipart body");
    let body = String::from_utf8(request.body.clone()).unwrap();
    let expected = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"shard_001.jsonl\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{}\r\n--{boundary}--\r\n",
        String::from_utf8(content).unwrap()
    );
    assert_eq!(body, expected);
    assert_eq!(
        request.headers["content-length"].to_str().unwrap(),
        body.len().to_string(),
        "the streamed form announces its length"
    );
}

#[tokio::test]
async fn a_retried_upload_sends_the_whole_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let shard = support::write_shard(dir.path(), "retry.jsonl", 2000);
    let content = std::fs::read(&shard).unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/files"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(support::file(
            "file-2",
            "retry.jsonl",
            content.len() as u64,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let recorder = Arc::new(Recorder::default());

    let file = support::client(&server.uri())
        .upload_file(&shard, recorder.clone())
        .await
        .unwrap();

    assert_eq!(file.id, FileId::from("file-2"));
    let starts = recorder.starts.lock().unwrap().clone();
    assert_eq!(starts, [Some(content.len() as u64); 2], "progress restarts");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        let needle = &content[content.len() - 200..];
        assert!(request.body.windows(200).any(|window| window == needle));
        assert!(request.body.len() > content.len());
    }
    assert_eq!(requests[1].headers["x-stainless-retry-count"], "1");
}

#[tokio::test]
async fn upload_of_a_missing_file_is_an_io_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let err = support::client("http://127.0.0.1:9")
        .upload_file(&missing, Arc::new(()))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Io { action: "open", path, .. } if *path == missing));
}

#[tokio::test]
async fn retrieve_and_delete_a_file() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/files/file-1"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(support::file("file-1", "a.jsonl", 3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/files/file-1"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("openai-project", "proj-test"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"id": "file-1", "object": "file", "deleted": true}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let id = FileId::from("file-1");

    let file = client.retrieve_file(&id).await.unwrap();
    assert_eq!((file.filename.as_str(), file.bytes), ("a.jsonl", 3));
    let deleted = client.delete_file(&id).await.unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.id, id);
}

#[tokio::test]
async fn retrieve_of_a_gone_file_is_not_found_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/files/file-gone"))
        .respond_with(ResponseTemplate::new(404).set_body_json(support::api_error(
            "No such File object: file-gone",
            "invalid_request_error",
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let err = support::client(&server.uri())
        .retrieve_file(&FileId::from("file-gone"))
        .await
        .unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::NotFound));
}

#[tokio::test]
async fn download_of_several_megabytes_is_byte_exact_and_atomic() {
    let content = support::pseudo_random(5 * 1024 * 1024 + 17);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/files/file-out/content"))
        .and(header("accept", "application/binary"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("openai-organization", "org-test"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(content.clone(), "application/octet-stream"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.jsonl");
    std::fs::write(&dest, "old content").unwrap();
    let recorder = Arc::new(Recorder::default());

    let bytes = support::client(&server.uri())
        .download_file_to(&FileId::from("file-out"), &dest, recorder.clone())
        .await
        .unwrap();

    assert_eq!(bytes, content.len() as u64);
    assert!(std::fs::read(&dest).unwrap() == content, "byte-exact");
    assert_eq!(
        *recorder.starts.lock().unwrap(),
        [Some(content.len() as u64)]
    );
    assert_eq!(recorder.bytes.load(Ordering::SeqCst), content.len() as u64);
    assert_eq!(support::dir_names(dir.path()), ["out.jsonl"]);
}

#[tokio::test]
async fn a_download_failing_mid_stream_leaves_no_partial_file() {
    // Announces 10 MB, sends 1 MB, hangs up: every time.
    let partial = support::pseudo_random(1024 * 1024);
    let (base_url, connections) = support::raw_server(move |_| {
        let mut reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 10485760\r\n\r\n".to_vec();
        reply.extend_from_slice(&partial);
        Some(reply)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.jsonl");
    std::fs::write(&dest, "previous complete download").unwrap();
    let recorder = Arc::new(Recorder::default());

    let err = support::client(&base_url)
        .download_file_to(&FileId::from("file-out"), &dest, recorder.clone())
        .await
        .unwrap_err();

    assert!(
        matches!(&err, Error::Connection { method, path, attempts: 6, .. } if method == "GET" && path == "/files/file-out/content"),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(connections.load(Ordering::SeqCst), 6, "1 try + 5 retries");
    assert_eq!(recorder.starts.lock().unwrap().len(), 6);
    assert_eq!(
        support::dir_names(dir.path()),
        ["out.jsonl"],
        "no temporary file left"
    );
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "previous complete download"
    );
}

#[tokio::test]
async fn a_download_that_fails_once_mid_stream_is_retried_from_the_start() {
    let content = support::pseudo_random(3 * 1024 * 1024);
    let reply_content = content.clone();
    let (base_url, connections) = support::raw_server(move |n| {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            reply_content.len()
        );
        let mut reply = head.into_bytes();
        let body = if n == 0 {
            &reply_content[..1024 * 1024]
        } else {
            &reply_content[..]
        };
        reply.extend_from_slice(body);
        Some(reply)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.jsonl");

    let bytes = support::client(&base_url)
        .download_file_to(&FileId::from("file-out"), &dest, Arc::new(()))
        .await
        .unwrap();

    assert_eq!(bytes, content.len() as u64);
    assert!(std::fs::read(&dest).unwrap() == content);
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    assert_eq!(support::dir_names(dir.path()), ["out.jsonl"]);
}

#[tokio::test]
async fn a_download_into_a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("no/such/dir/out.jsonl");
    let err = support::client("http://127.0.0.1:9")
        .download_file_to(&FileId::from("file-out"), &dest, Arc::new(()))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Io {
            action: "create a temporary file in",
            ..
        }
    ));
}
