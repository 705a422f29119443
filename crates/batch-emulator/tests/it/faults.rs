//! Every injected fault: seeded request failures and `length`, and API-level 429, 500,
//! dropped connections and cut downloads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use batch_emulator::{Endpoint, Faults, HttpFault, HttpFaultKind};
use openai_batch_client::{BatchStatus, Client, ClientConfig, RetryPolicy, SecretString};
use serde_json::Value;

use crate::support::*;

fn seeded_faults(seed: u64) -> Faults {
    Faults {
        seed,
        server_error_share: 0.15,
        rate_limit_share: 0.15,
        length_share: 0.25,
        ..Faults::default()
    }
}

/// Runs 100 requests with seeded faults; returns (500 ids, 429 ids, length ids).
async fn run_with_faults(seed: u64) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let mut config = fast_config();
    config.faults = seeded_faults(seed);
    let emulator = start(config).await;
    let client = client(&emulator);
    let (text, _) = lesson_requests(100);
    let batch = run_batch(&client, &text).await;
    assert_terminal(&batch, BatchStatus::Completed);
    let errors = download_lines(&client, batch.error_file_id.as_ref().unwrap()).await;
    let output = download_lines(&client, batch.output_file_id.as_ref().unwrap()).await;
    assert_eq!(batch.counts().failed, errors.len() as u64);
    let ids_with = |lines: &[Value], status: u64| -> BTreeSet<String> {
        lines
            .iter()
            .filter(|line| line["response"]["status_code"] == status)
            .map(|line| line["custom_id"].as_str().unwrap().to_owned())
            .collect()
    };
    for line in &errors {
        let error = &line["response"]["body"]["error"];
        match line["response"]["status_code"].as_u64() {
            Some(500) => assert_eq!(error["type"], "server_error"),
            Some(429) => assert_eq!(error["code"], "rate_limit_exceeded"),
            other => panic!("unexpected status {other:?}"),
        }
    }
    let length: BTreeSet<String> = output
        .iter()
        .filter(|line| line["response"]["body"]["choices"][0]["finish_reason"] == "length")
        .map(|line| line["custom_id"].as_str().unwrap().to_owned())
        .collect();
    (ids_with(&errors, 500), ids_with(&errors, 429), length)
}

#[tokio::test]
async fn seeded_request_faults_are_deterministic() {
    let (first, second) = tokio::join!(run_with_faults(7), run_with_faults(7));
    assert_eq!(first, second, "same seed, same faults");
    let (server_errors, rate_limited, length) = &first;
    for (name, ids) in [
        ("500", server_errors),
        ("429", rate_limited),
        ("length", length),
    ] {
        assert!(
            (5..=45).contains(&ids.len()),
            "{name}: {} of 100",
            ids.len()
        );
    }
    assert!(server_errors.is_disjoint(rate_limited));
    let other = run_with_faults(8).await;
    assert_ne!(first, other, "another seed, other faults");
}

fn config_with(faults: Vec<HttpFault>, cut_downloads: u32) -> batch_emulator::EmulatorConfig {
    let mut config = fast_config();
    config.faults = Faults {
        http: faults,
        cut_downloads,
        ..Faults::default()
    };
    config
}

fn no_retry_client(emulator: &batch_emulator::Emulator) -> Client {
    let mut config = ClientConfig::new(emulator.base_url(), SecretString::from("k".to_owned()));
    config.retry = RetryPolicy::none();
    Client::new(config).unwrap()
}

#[tokio::test]
async fn rate_limited_calls_answer_429_with_retry_after_then_recover() {
    let fault = HttpFault {
        endpoint: Endpoint::ListBatches,
        kind: HttpFaultKind::RateLimited {
            retry_after: Duration::from_millis(20),
        },
        times: 2,
    };
    let emulator = start(config_with(vec![fault], 0)).await;
    let url = format!("{}/batches", emulator.base_url());
    let response = http().get(&url).bearer_auth("k").send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["retry-after-ms"], "20");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    // The second call is still limited; the client retries past it.
    let page = client(&emulator)
        .list_batches_page(None, None)
        .await
        .unwrap();
    assert!(page.data.is_empty());
    let response = http().get(&url).bearer_auth("k").send().await.unwrap();
    assert_eq!(response.status(), 200, "only the first calls fail");
}

#[tokio::test]
async fn server_errors_on_upload_are_retried_by_the_client() {
    let fault = HttpFault {
        endpoint: Endpoint::UploadFile,
        kind: HttpFaultKind::ServerError,
        times: 1,
    };
    let emulator = start(config_with(vec![fault], 0)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "in.jsonl", &request_line("a", "T", "m"));
    let error = no_retry_client(&emulator)
        .upload_file(&path, Arc::new(()))
        .await
        .unwrap_err();
    let api = error.api().unwrap();
    assert_eq!(
        (api.status, api.error_type.as_deref()),
        (500, Some("server_error"))
    );
    let file = client(&emulator)
        .upload_file(&path, Arc::new(()))
        .await
        .unwrap();
    assert_eq!(file.filename, "in.jsonl");
}

#[tokio::test]
async fn dropped_connections_get_no_answer() {
    let fault = HttpFault {
        endpoint: Endpoint::RetrieveBatch,
        kind: HttpFaultKind::DropConnection,
        times: 2,
    };
    let emulator = start(config_with(vec![fault], 0)).await;
    let client = client(&emulator);
    let (text, _) = lesson_requests(1);
    let dir = tempfile::tempdir().unwrap();
    let file_id = upload_text(&client, dir.path(), "in.jsonl", &text).await;
    let batch = create(&client, file_id).await;
    let url = format!("{}/batches/{}", emulator.base_url(), batch.id);
    let error = http().get(&url).bearer_auth("k").send().await.unwrap_err();
    assert!(error.is_request() && error.status().is_none(), "{error:?}");
    let error = no_retry_client(&emulator)
        .retrieve_batch(&batch.id)
        .await
        .unwrap_err();
    assert!(
        matches!(error, openai_batch_client::Error::Connection { .. }),
        "{error:?}"
    );
    // Later calls are answered, and the batch ran regardless.
    let (batch, _) = wait(&client, &batch.id).await;
    assert_terminal(&batch, BatchStatus::Completed);
}

#[tokio::test]
async fn cut_downloads_stop_midway_and_the_client_retries() {
    let emulator = start(config_with(Vec::new(), 2)).await;
    let client = client(&emulator);
    let (text, _) = lesson_requests(20);
    let batch = run_batch(&client, &text).await;
    let output_id = batch.output_file_id.clone().unwrap();
    let size = client.retrieve_file(&output_id).await.unwrap().bytes;

    let url = format!("{}/files/{output_id}/content", emulator.base_url());
    let mut response = http().get(&url).bearer_auth("k").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut received = 0u64;
    let outcome = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len() as u64,
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    assert!(outcome.is_err(), "the body ends with an error");
    assert_eq!(received, size / 2, "half of {size} bytes arrived");

    // The second cut download is retried by the client, which ends with every byte.
    let lines = download_lines(&client, &output_id).await;
    assert_eq!(lines.len(), 20);
    // No more faults: a plain download is whole.
    let whole = http()
        .get(&url)
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(whole.len() as u64, size);
}

/// Each request's outcome in a finished batch: `200`, `length`, or the error status.
async fn outcomes(client: &Client, batch: &openai_batch_client::Batch) -> BTreeMap<String, String> {
    let mut outcomes = BTreeMap::new();
    for file_id in [&batch.output_file_id, &batch.error_file_id]
        .into_iter()
        .flatten()
    {
        for line in download_lines(client, file_id).await {
            let response = &line["response"];
            let outcome = if response["body"]["choices"][0]["finish_reason"] == "length" {
                "length".to_owned()
            } else {
                response["status_code"].to_string()
            };
            outcomes.insert(line["custom_id"].as_str().unwrap().to_owned(), outcome);
        }
    }
    outcomes
}

/// The lines of `text` whose `custom_id` is in `ids`.
fn only(text: &str, ids: &BTreeSet<String>) -> String {
    text.lines()
        .filter(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            ids.contains(line["custom_id"].as_str().unwrap())
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Runs 60 seeded-fault requests, then resubmits the failed ones in a second batch;
/// returns both rounds' outcomes. With `data_dir`, the emulator restarts between rounds.
async fn two_rounds(
    data_dir: Option<&std::path::Path>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut config = fast_config();
    config.data_dir = data_dir.map(std::path::Path::to_owned);
    config.faults = Faults {
        seed: 5,
        server_error_share: 0.3,
        rate_limit_share: 0.2,
        bad_request_share: 0.1,
        length_share: 0.2,
        ..Faults::default()
    };
    let (text, _) = lesson_requests(60);
    let emulator = start(config.clone()).await;
    let first = outcomes(
        &client(&emulator),
        &run_batch(&client(&emulator), &text).await,
    )
    .await;
    let failed: BTreeSet<String> = first
        .iter()
        .filter(|(_, outcome)| *outcome != "200")
        .map(|(id, _)| id.clone())
        .collect();
    let emulator = if data_dir.is_some() {
        emulator.shutdown().await;
        start(config).await
    } else {
        emulator
    };
    let client = client(&emulator);
    let retry = run_batch(&client, &only(&text, &failed)).await;
    (first, outcomes(&client, &retry).await)
}

#[tokio::test]
async fn a_retried_request_can_recover_while_a_bad_request_fails_again() {
    let (first, second) = two_rounds(None).await;
    assert_eq!(first.len(), 60);
    let count = |outcomes: &BTreeMap<String, String>, outcome: &str| {
        outcomes.values().filter(|o| *o == outcome).count()
    };
    for outcome in ["500", "429", "400", "length"] {
        assert!(count(&first, outcome) > 0, "{outcome} in {first:?}");
    }
    // Every failure was resubmitted; a transient one can now succeed, a 400 cannot.
    let transient_before = |id: &String| ["500", "429", "length"].contains(&first[id].as_str());
    assert_eq!(second.len(), 60 - count(&first, "200"));
    let recovered: Vec<&String> = second
        .iter()
        .filter(|(id, outcome)| transient_before(id) && *outcome == "200")
        .map(|(id, _)| id)
        .collect();
    assert!(!recovered.is_empty(), "nothing recovered: {second:?}");
    for (id, outcome) in &second {
        if first[id] == "400" {
            assert_eq!(outcome, "400", "{id}: a bad request fails on every attempt");
        }
    }
}

#[tokio::test]
async fn attempts_survive_a_restart_with_a_data_directory() {
    let data_dir = tempfile::tempdir().unwrap();
    let (persisted, in_memory) = tokio::join!(two_rounds(Some(data_dir.path())), two_rounds(None));
    // The restarted emulator goes on counting, so its second round is the same one.
    assert_eq!(persisted, in_memory);
    let attempts: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir.path().join("attempts.json")).unwrap(),
    )
    .unwrap();
    let retried = persisted.1.keys().next().unwrap();
    assert_eq!(attempts["attempts"][retried], 2);
    assert_eq!(attempts["attempts"].as_object().unwrap().len(), 60);
}
