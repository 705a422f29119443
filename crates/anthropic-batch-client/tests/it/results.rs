//! Results from `results_url`: the reference lines, a large body, lines yielded before the body
//! ends, downloads to a file, and the checks before any request.

use std::sync::Arc;
use std::time::Duration;

use anthropic_batch_client::{
    BatchResult, BatchResultLine, Error, MessageBatch, ProcessingStatus, StopReason, read_results,
};
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEY, batch, client, raw_server, succeeded_line, write_head};

/// The reference contract's result lines, byte for byte.
const REFERENCE: &str = include_str!("../../../../fixtures/anthropic-results/reference.jsonl");

const RESULTS_PATH: &str = "/v1/messages/batches/mb_1/results";

fn ended(base_url: &str) -> MessageBatch {
    serde_json::from_value(batch(
        "mb_1",
        "ended",
        Some(format!("{base_url}{RESULTS_PATH}")),
    ))
    .unwrap()
}

async fn serve_results(body: Vec<u8>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(RESULTS_PATH))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(header("accept", "application/binary"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn the_reference_lines_stream_as_typed_results() {
    let server = serve_results(REFERENCE.as_bytes().to_vec()).await;
    let client = client(&server.uri());
    let lines: Vec<BatchResultLine> = client
        .results(&ended(&server.uri()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = lines.iter().map(|line| line.custom_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    let BatchResult::Succeeded { message } = &lines[0].result else {
        panic!("{:?}", lines[0]);
    };
    assert_eq!(message.text(), "# Lesson …");
    assert_eq!(message.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(message.usage.output_tokens, 2400);
    assert!(matches!(lines[1].result, BatchResult::Errored { .. }));
    assert_eq!(lines[2].result, BatchResult::Canceled);
    assert_eq!(lines[3].result, BatchResult::Expired);
    // The file reader gives the same lines.
    let from_file: Vec<_> = read_results(REFERENCE.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(from_file, lines);
}

#[tokio::test]
async fn a_large_body_streams_every_line_and_names_a_bad_one() {
    let n = 20_000;
    let text = "x".repeat(500);
    let mut body = Vec::new();
    for i in 0..n {
        body.extend_from_slice(succeeded_line(&format!("lesson_{i}"), &text).as_bytes());
        if i == 100 {
            body.extend_from_slice(b"{broken\n");
        }
    }
    assert!(body.len() > 10 * 1024 * 1024);
    let server = serve_results(body).await;
    let stream = client(&server.uri())
        .results(&ended(&server.uri()))
        .await
        .unwrap();
    let (mut good, mut bad) = (0, Vec::new());
    futures::pin_mut!(stream);
    while let Some(line) = stream.next().await {
        match line {
            Ok(line) => {
                assert_eq!(line.custom_id.as_str(), format!("lesson_{good}"));
                good += 1;
            }
            Err(Error::ResultLine { line, .. }) => bad.push(line),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(good, n);
    assert_eq!(bad, [102]);
}

#[tokio::test]
async fn lines_arrive_before_the_body_has_ended() {
    // The server sends one line, then waits until the test has that line parsed: a client that
    // buffered the body would wait forever (and the test time out).
    let first = succeeded_line("first", "one");
    let rest = succeeded_line("second", "two");
    let parsed = Arc::new(Notify::new());
    let signal = Arc::clone(&parsed);
    let (first_body, rest_body) = (first.clone(), rest.clone());
    let url = raw_server(move |_, mut stream| {
        let (first, rest, signal) = (first_body.clone(), rest_body.clone(), Arc::clone(&signal));
        async move {
            write_head(&mut stream, first.len() + rest.len()).await;
            stream.write_all(first.as_bytes()).await.unwrap();
            stream.flush().await.unwrap();
            signal.notified().await;
            stream.write_all(rest.as_bytes()).await.unwrap();
        }
    })
    .await;
    let stream = client(&url).results(&ended(&url)).await.unwrap();
    futures::pin_mut!(stream);
    let line = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the first line comes before the rest of the body")
        .unwrap()
        .unwrap();
    assert_eq!(line.custom_id.as_str(), "first");
    parsed.notify_one();
    let line = stream.next().await.unwrap().unwrap();
    assert_eq!(line.custom_id.as_str(), "second");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_download_broken_off_is_retried_and_leaves_only_the_file() {
    let body = REFERENCE.as_bytes().to_vec();
    let served = body.clone();
    let url = raw_server(move |n, mut stream| {
        let body = served.clone();
        async move {
            write_head(&mut stream, body.len()).await;
            // The first answer breaks off after 40 bytes.
            let len = if n == 0 { 40 } else { body.len() };
            stream.write_all(&body[..len]).await.unwrap();
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("mb_1_results.jsonl");
    let bytes = client(&url)
        .download_results_to(&ended(&url), &dest)
        .await
        .unwrap();
    assert_eq!(bytes, body.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("mb_1_results.jsonl")]);
}

#[tokio::test]
async fn no_results_before_the_batch_has_ended() {
    let server = MockServer::start().await;
    let running: MessageBatch = serde_json::from_value(batch("mb_1", "in_progress", None)).unwrap();
    let client = client(&server.uri());
    let err = client.results(&running).await.err().unwrap();
    assert!(
        matches!(
            &err,
            Error::ResultsNotReady { batch_id, status: ProcessingStatus::InProgress }
                if batch_id.as_str() == "mb_1"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "batch mb_1 has no results yet: it is in_progress"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = client
        .download_results_to(&running, &dir.path().join("r.jsonl"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ResultsNotReady { .. }));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn results_on_another_server_are_asked_of_the_base_url_instead() {
    let server = serve_results(REFERENCE.as_bytes().to_vec()).await;
    // A documentation address (TEST-NET-3) that must never be contacted with the key.
    let foreign: MessageBatch = serde_json::from_value(batch(
        "mb_1",
        "ended",
        Some(format!("http://203.0.113.9{RESULTS_PATH}")),
    ))
    .unwrap();
    let lines: Vec<_> = client(&server.uri())
        .results(&foreign)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(lines.len(), 4);
}
