//! Taking over the unfinished batch of a lost ledger: what is taken over, what is not, and the
//! one list it costs.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use openai_batch_client::{
    BatchId, BatchStatus, FileId, JobConfig, Ledger, RequestCounts, ShardInput, ShardStage,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::job::{Create, Job, SHARD_ID, Upload, fast_config, sha256_hex};
use crate::support;

/// A job whose batches carry `job_id=demo-1`, which identifies it across ledgers.
fn job_config() -> JobConfig {
    JobConfig {
        metadata: BTreeMap::from([("job_id".to_owned(), "demo-1".to_owned())]),
        job_key: Some("job_id".to_owned()),
        ..fast_config()
    }
}

/// A batch created by another ledger of the same job for a shard with `sha256`.
fn lost(id: &str, status: &str, sha256: &str) -> Value {
    let mut batch = support::batch_counts(id, status, 3, 1, 0);
    batch["input_file_id"] = json!(format!("file-{id}"));
    batch["created_at"] = json!(unix_now() - 3600);
    batch["metadata"] = json!({"job_id": "demo-1", "run_id": "0123456789abcdef",
        "shard": SHARD_ID, "shard_sha256": sha256, "attempt": "1"});
    batch
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// How many lists, uploads and creates a test allows.
struct Calls {
    list: u64,
    upload: u64,
    create: u64,
}

/// Lists `listed` as one page of 100 (a next page exists when `more`, and must not be fetched);
/// uploads and creates name files and batches after the shard file.
async fn mount(server: &MockServer, listed: Vec<Value>, more: bool, calls: Calls) {
    let last = listed
        .last()
        .map(|batch| batch["id"].as_str().unwrap().to_owned());
    Mock::given(method("GET"))
        .and(path("/batches"))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(support::page(listed, more)))
        .expect(calls.list)
        .mount(server)
        .await;
    if let Some(last) = last.filter(|_| more) {
        Mock::given(method("GET"))
            .and(path("/batches"))
            .and(query_param("after", last.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(support::page(vec![], false)))
            .expect(0)
            .mount(server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/files"))
        .respond_with(Upload)
        .expect(calls.upload)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(Create)
        .expect(calls.create)
        .mount(server)
        .await;
}

#[tokio::test]
async fn an_unfinished_batch_of_the_same_job_and_content_is_taken_over() {
    for status in ["validating", "in_progress", "finalizing"] {
        let job = Job::new();
        let server = MockServer::start().await;
        let sha256 = sha256_hex(&job.shard);
        let calls = Calls {
            list: 1,
            upload: 0,
            create: 0,
        };
        mount(
            &server,
            vec![lost("batch_lost", status, &sha256)],
            false,
            calls,
        )
        .await;
        let (runner, events) = job.runner_with(&server, job_config());

        assert_eq!(runner.submit(&[job.input()]).await.unwrap(), [0]);

        server.verify().await;
        let shard = &runner.shards()[0];
        assert_eq!(
            shard.batch_id,
            Some(BatchId::from("batch_lost")),
            "{status}"
        );
        assert_eq!(shard.status.map(BatchStatus::as_str), Some(status));
        let counts = RequestCounts {
            total: 3,
            completed: 1,
            failed: 0,
        };
        assert_eq!(shard.counts, Some(counts));
        assert_eq!(shard.input_file_id, Some(FileId::from("file-batch_lost")));
        assert_eq!(shard.create_requested_at, None);
        assert_eq!(shard.stage(), ShardStage::Submitted);
        assert_eq!(events.lines(), ["0 adopted batch_lost"]);
        assert_eq!(Ledger::load(&job.ledger).unwrap(), runner.ledger());

        // Every shard has its batch now: submitting again lists nothing (still one list).
        runner.submit(&[job.input()]).await.unwrap();
        server.verify().await;
    }
}

#[tokio::test]
async fn finished_old_and_foreign_batches_are_not_taken_over_and_one_list_serves_all_shards() {
    let job = Job::new();
    let second = support::write_shard(job.dir.path(), "shard_002.jsonl", 2);
    let sha256 = sha256_hex(&job.shard);
    let mut listed: Vec<Value> = ["completed", "failed", "expired", "cancelled", "cancelling"]
        .iter()
        .map(|status| lost(&format!("batch_{status}"), status, &sha256))
        .collect();
    let mut other_job = lost("batch_other_job", "in_progress", &sha256);
    other_job["metadata"]["job_id"] = json!("demo-2");
    let other_content = lost("batch_other_content", "in_progress", &"0".repeat(64));
    let mut no_job = lost("batch_no_job", "in_progress", &sha256);
    no_job["metadata"].as_object_mut().unwrap().remove("job_id");
    // Older than 48 hours: it ends the search, and the next page is never fetched.
    let mut old = lost("batch_old", "in_progress", &sha256);
    old["created_at"] = json!(unix_now() - 49 * 3600);
    listed.extend([other_job, other_content, no_job, old]);
    let server = MockServer::start().await;
    let calls = Calls {
        list: 1,
        upload: 2,
        create: 2,
    };
    mount(&server, listed, true, calls).await;
    let (runner, events) = job.runner_with(&server, job_config());

    let inputs = [job.input(), ShardInput::new("r01-002", &second)];
    assert_eq!(runner.submit(&inputs).await.unwrap(), [0, 1]);

    server.verify().await;
    let batch_ids: Vec<Option<BatchId>> = runner
        .shards()
        .into_iter()
        .map(|shard| shard.batch_id)
        .collect();
    assert_eq!(
        batch_ids,
        [
            Some(BatchId::from("batch-shard_001")),
            Some(BatchId::from("batch-shard_002"))
        ]
    );
    assert!(
        !events.lines().iter().any(|line| line.contains("adopted")),
        "{:?}",
        events.lines()
    );
    for request in server.received_requests().await.unwrap() {
        if request.url.path() == "/batches" && request.method.as_str() == "POST" {
            let body: Value = request.body_json().unwrap();
            assert_eq!(body["metadata"]["job_id"], "demo-1");
        }
    }
}

#[tokio::test]
async fn a_batch_is_never_taken_over_by_two_shards() {
    let job = Job::new();
    let twin = job.dir.path().join("twin.jsonl");
    std::fs::copy(&job.shard, &twin).unwrap();
    let listed = vec![lost("batch_lost", "in_progress", &sha256_hex(&job.shard))];
    let server = MockServer::start().await;
    let calls = Calls {
        list: 1,
        upload: 1,
        create: 1,
    };
    mount(&server, listed, false, calls).await;
    let (runner, events) = job.runner_with(&server, job_config());

    // Two shards of the same content in one call: one takes the batch, the other creates.
    let inputs = [job.input(), ShardInput::new("r01-002", &twin)];
    runner.submit(&inputs).await.unwrap();

    server.verify().await;
    let mut batch_ids: Vec<String> = runner
        .shards()
        .into_iter()
        .map(|shard| shard.batch_id.unwrap().0)
        .collect();
    batch_ids.sort();
    let created = if batch_ids[0] == "batch-shard_001" {
        "batch-shard_001"
    } else {
        "batch-twin"
    };
    assert_eq!(batch_ids, [created, "batch_lost"]);
    let mut lines = events.lines();
    lines.sort();
    assert!(
        lines
            .iter()
            .any(|line| line.ends_with("adopted batch_lost"))
    );
    assert!(
        lines
            .iter()
            .any(|line| line.ends_with(&format!("created {created}")))
    );
}

#[tokio::test]
async fn a_batch_recorded_by_an_earlier_round_is_not_taken_over_again() {
    let job = Job::new();
    let twin = job.dir.path().join("twin.jsonl");
    std::fs::copy(&job.shard, &twin).unwrap();
    let listed = vec![lost("batch_lost", "in_progress", &sha256_hex(&job.shard))];
    let server = MockServer::start().await;
    let calls = Calls {
        list: 2,
        upload: 1,
        create: 1,
    };
    mount(&server, listed, false, calls).await;
    let (runner, events) = job.runner_with(&server, job_config());

    runner.submit(&[job.input()]).await.unwrap();
    runner
        .submit(&[ShardInput::new("r01-002", &twin)])
        .await
        .unwrap();

    server.verify().await;
    let twin_bytes = std::fs::metadata(&twin).unwrap().len();
    assert_eq!(
        events.lines(),
        [
            "0 adopted batch_lost".to_owned(),
            format!("1 upload {twin_bytes}"),
            "1 uploaded file-twin".to_owned(),
            "1 created batch-twin".to_owned(),
        ]
    );
}

#[tokio::test]
async fn without_a_job_key_nothing_is_listed() {
    let job = Job::new();
    let listed = vec![lost("batch_lost", "in_progress", &sha256_hex(&job.shard))];
    let server = MockServer::start().await;
    let calls = Calls {
        list: 0,
        upload: 1,
        create: 1,
    };
    mount(&server, listed, false, calls).await;
    let config = JobConfig {
        job_key: None,
        ..job_config()
    };
    let (runner, _events) = job.runner_with(&server, config);

    runner.submit(&[job.input()]).await.unwrap();

    server.verify().await;
    let shard = &runner.shards()[0];
    assert_eq!(shard.batch_id, Some(BatchId::from("batch-shard_001")));
}
