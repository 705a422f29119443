//! Shards known by id, paths kept relative to the ledger, the caller's context, the job key.

use std::path::Path;

use openai_batch_client::{Error, JobConfig, JobRunner, Ledger, ShardInput};
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::job::{ERRORS, Expect, Job, OUTPUT, SHARD_ID, fast_config, mount_api, terminal};
use crate::support;

/// Every call of a one-shard job, once.
const ALL_ONCE: Expect = Expect {
    upload: 1,
    retrieve_file: 0,
    create: 1,
    list: 0,
    download_output: 1,
    download_errors: 1,
};

async fn mount_all_once(server: &MockServer) {
    mount_api(
        server,
        ALL_ONCE,
        terminal("completed", Some("file-out"), Some("file-err")),
        vec![],
    )
    .await;
}

async fn n_requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn a_shard_is_known_by_its_id_wherever_its_file_is() {
    let job = Job::new();
    let server = MockServer::start().await;
    mount_all_once(&server).await;
    let (runner, _events) = job.runner(&server);
    runner.run(&[job.input()], &job.out()).await.unwrap();
    let requests = n_requests(&server).await;

    // The file moves; its id says it is the same shard, already done.
    let moved = job.dir.path().join("elsewhere/renamed.jsonl");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&job.shard, &moved).unwrap();
    let (again, events) = job.runner(&server);
    let indices = again
        .submit(&[ShardInput::new(SHARD_ID, &moved)])
        .await
        .unwrap();

    assert_eq!(indices, [0]);
    assert_eq!(n_requests(&server).await, requests);
    assert!(events.lines().is_empty(), "{:?}", events.lines());
    assert_eq!(again.shards().len(), 1);
    assert_eq!(again.shards()[0].input_path, moved);
    assert_eq!(again.shards()[0].name(), SHARD_ID);
    assert_eq!(Ledger::load(&job.ledger).unwrap(), again.ledger());
    server.verify().await;
}

#[tokio::test]
async fn ids_are_checked_before_anything_is_recorded() {
    let job = Job::new();
    let server = MockServer::start().await;
    let (runner, _events) = job.runner(&server);

    let err = runner
        .submit(&[job.input(), job.input()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DuplicateShardId { ref id } if id == SHARD_ID),
        "{err:?}"
    );
    let escape = ShardInput::new("../escape", &job.shard);
    let err = runner.submit(&[job.input(), escape]).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidShardId { ref id, .. } if id == "../escape"),
        "{err:?}"
    );

    assert!(runner.shards().is_empty());
    assert!(Ledger::load(&job.ledger).unwrap().shards.is_empty());
    assert_eq!(n_requests(&server).await, 0);
}

#[tokio::test]
async fn a_work_dir_moved_as_a_whole_keeps_its_ledger_valid() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let shard = support::write_shard(&work, "shard_001.jsonl", 3);
    let ledger = work.join("job.ledger.json");
    let server = MockServer::start().await;
    mount_all_once(&server).await;
    let runner = JobRunner::new(support::client(&server.uri()), &ledger, fast_config()).unwrap();
    let input = ShardInput::new(SHARD_ID, &shard);
    runner.run(&[input], &work.join("results")).await.unwrap();

    // On disk, the paths inside the work dir are relative to it.
    let raw: Value = serde_json::from_slice(&std::fs::read(&ledger).unwrap()).unwrap();
    let stored = &raw["shards"][0];
    assert_eq!(stored["id"], SHARD_ID);
    assert_eq!(stored["input_path"], "shard_001.jsonl");
    let stored_path = |key: &str| Path::new(stored[key].as_str().unwrap()).to_path_buf();
    let results = Path::new("results");
    assert_eq!(
        stored_path("output_path"),
        results.join("r01-001_output.jsonl")
    );
    assert_eq!(
        stored_path("error_path"),
        results.join("r01-001_errors.jsonl")
    );

    let moved = root.path().join("moved");
    std::fs::rename(&work, &moved).unwrap();
    let requests = n_requests(&server).await;
    let ledger = moved.join("job.ledger.json");
    let runner = JobRunner::open(support::client(&server.uri()), &ledger, fast_config()).unwrap();

    let ready = runner.ready();
    let shard = &ready[0];
    assert_eq!(shard.input_path, moved.join("shard_001.jsonl"));
    let output = moved.join("results/r01-001_output.jsonl");
    let errors = moved.join("results/r01-001_errors.jsonl");
    assert_eq!(shard.output_path.as_deref(), Some(output.as_path()));
    assert_eq!(shard.error_path.as_deref(), Some(errors.as_path()));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), OUTPUT);
    assert_eq!(std::fs::read_to_string(&errors).unwrap(), ERRORS);
    let input = ShardInput::new(SHARD_ID, moved.join("shard_001.jsonl"));
    runner.run(&[input], &moved.join("results")).await.unwrap();
    assert_eq!(n_requests(&server).await, requests, "nothing is sent again");
    server.verify().await;
}

#[tokio::test]
async fn the_context_is_kept_with_the_job() {
    let job = Job::new();
    let server = MockServer::start().await;
    let (runner, _events) = job.runner(&server);
    assert!(runner.context().is_empty());
    let context = json!({"job_id": "demo-1", "selection": {"modules": [0, 2]}});
    let context = context.as_object().unwrap().clone();

    runner.set_context(context.clone()).unwrap();

    assert_eq!(runner.context(), context);
    let reopened =
        JobRunner::open(support::client(&server.uri()), &job.ledger, fast_config()).unwrap();
    assert_eq!(reopened.context(), context);
    let on_disk = Ledger::load(&job.ledger).unwrap();
    assert_eq!(on_disk.version, 2);
    assert_eq!(on_disk.context, context);
    assert_eq!(n_requests(&server).await, 0);
}

#[tokio::test]
async fn a_job_key_must_name_a_metadata_value() {
    let job = Job::new();
    let config = JobConfig {
        job_key: Some("job_id".to_owned()),
        ..fast_config()
    };
    let client = support::client("http://127.0.0.1:9");

    let err = JobRunner::new(client, &job.ledger, config).unwrap_err();

    assert!(
        matches!(err, Error::InvalidJobKey { ref key, .. } if key == "job_id"),
        "{err:?}"
    );
    assert!(!job.ledger.exists(), "nothing is written for a bad config");
}
