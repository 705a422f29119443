//! The job runner: a full run, a resume from every step boundary, terminal statuses, many shards.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openai_batch_client::{
    ApiErrorKind, BatchId, BatchStatus, Error, FileId, JobConfig, JobRunner, Ledger, PollConfig,
    RequestCounts, ShardInput, ShardRecord, ShardStage, sha256_file,
};
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::matchers::{body_string_contains, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{self, Events};

pub(crate) const OUTPUT: &str =
    "{\"custom_id\":\"shard_001.jsonl-0\"}\n{\"custom_id\":\"shard_001.jsonl-1\"}\n";
pub(crate) const ERRORS: &str = "{\"custom_id\":\"shard_001.jsonl-2\"}\n";

/// The id of the one-shard job's shard (not its file name): the downloads are named after it.
pub(crate) const SHARD_ID: &str = "r01-001";

/// A one-shard job in a scratch directory.
pub(crate) struct Job {
    pub(crate) dir: TempDir,
    pub(crate) shard: PathBuf,
    pub(crate) ledger: PathBuf,
}

impl Job {
    pub(crate) fn new() -> Job {
        let dir = tempfile::tempdir().unwrap();
        let shard = support::write_shard(dir.path(), "shard_001.jsonl", 3);
        let ledger = dir.path().join("work/demo.ledger.json");
        Job { dir, shard, ledger }
    }

    /// The shard as submitted.
    pub(crate) fn input(&self) -> ShardInput {
        ShardInput::new(SHARD_ID, &self.shard)
    }

    pub(crate) fn out(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    pub(crate) fn runner(&self, server: &MockServer) -> (JobRunner, Arc<Events>) {
        self.runner_with(server, fast_config())
    }

    pub(crate) fn runner_with(
        &self,
        server: &MockServer,
        config: JobConfig,
    ) -> (JobRunner, Arc<Events>) {
        let events = Arc::new(Events::default());
        let runner = JobRunner::new(support::client(&server.uri()), &self.ledger, config)
            .unwrap()
            .with_progress(events.clone());
        (runner, events)
    }

    /// Writes a ledger whose one shard is changed by `state`; returns the run id.
    pub(crate) async fn ledger_at(&self, state: impl FnOnce(&mut ShardRecord)) -> String {
        let (sha256, bytes) = sha256_file(&self.shard).await.unwrap();
        let mut ledger = Ledger::load_or_create(&self.ledger).unwrap();
        let mut shard = ShardRecord::new(0, SHARD_ID, self.shard.clone(), sha256, bytes);
        state(&mut shard);
        ledger.shards.push(shard);
        ledger.save(&self.ledger).unwrap();
        ledger.run_id
    }

    pub(crate) fn metadata(&self, run_id: &str) -> Value {
        let sha256 = sha256_hex(&self.shard);
        json!({"run_id": run_id, "shard": SHARD_ID, "shard_sha256": sha256, "attempt": "1"})
    }
}

/// A job config that polls every few milliseconds.
pub(crate) fn fast_config() -> JobConfig {
    JobConfig {
        poll: PollConfig {
            initial_interval: Duration::from_millis(5),
            max_interval: Duration::from_millis(20),
            backoff: 2.0,
            ..PollConfig::default()
        },
        ..JobConfig::default()
    }
}

pub(crate) fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// How many times each endpoint of a one-shard job must be called.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Expect {
    pub(crate) upload: u64,
    pub(crate) retrieve_file: u64,
    pub(crate) create: u64,
    pub(crate) list: u64,
    pub(crate) download_output: u64,
    pub(crate) download_errors: u64,
}

/// The one-shard API: upload gives `file-in-1`, create gives `batch_1`, which polls as
/// `in_progress` then `terminal`; the list holds `listed`.
pub(crate) async fn mount_api(
    server: &MockServer,
    expect: Expect,
    terminal: Value,
    listed: Vec<Value>,
) {
    Mock::given(method("POST"))
        .and(path("/files"))
        .and(body_string_contains("name=\"purpose\"\r\n\r\nbatch"))
        .and(body_string_contains("filename=\"shard_001.jsonl\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(support::file(
            "file-in-1",
            "shard_001.jsonl",
            3,
        )))
        .expect(expect.upload)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/file-in-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(support::file(
            "file-in-1",
            "shard_001.jsonl",
            3,
        )))
        .expect(expect.retrieve_file)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(support::batch_counts(
                "batch_1",
                "validating",
                0,
                0,
                0,
            )),
        )
        .expect(expect.create)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/batches"))
        .respond_with(ResponseTemplate::new(200).set_body_json(support::page(listed, false)))
        .expect(expect.list)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(support::batch_counts(
                "batch_1",
                "in_progress",
                3,
                1,
                0,
            )),
        )
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/batches/batch_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(terminal))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/file-out/content"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(OUTPUT, "application/octet-stream"))
        .expect(expect.download_output)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/file-err/content"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ERRORS, "application/octet-stream"))
        .expect(expect.download_errors)
        .mount(server)
        .await;
}

/// A terminal batch with the given files.
pub(crate) fn terminal(status: &str, output: Option<&str>, errors: Option<&str>) -> Value {
    let mut batch = support::batch_counts("batch_1", status, 3, 2, 1);
    batch["input_file_id"] = json!("file-in-1");
    batch["output_file_id"] = json!(output);
    batch["error_file_id"] = json!(errors);
    batch
}

/// Polls made for `batch_1`.
async fn polls(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| request.url.path() == "/batches/batch_1")
        .count()
}

#[tokio::test]
async fn a_full_run_then_a_resumed_run_repeat_nothing() {
    let job = Job::new();
    let server = MockServer::start().await;
    let all_once = Expect {
        upload: 1,
        create: 1,
        download_output: 1,
        download_errors: 1,
        ..Expect::default()
    };
    mount_api(
        &server,
        all_once,
        terminal("completed", Some("file-out"), Some("file-err")),
        vec![],
    )
    .await;
    let (runner, events) = job.runner(&server);

    let indices = runner.submit(&[job.input()]).await.unwrap();
    assert_eq!(indices, [0]);
    assert_eq!(runner.shards()[0].stage(), ShardStage::Submitted);
    assert_eq!(runner.unfinished().len(), 1);
    runner.wait().await.unwrap();
    runner.download(&job.out()).await.unwrap();

    let create = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|request| request.url.path() == "/batches" && request.method.as_str() == "POST")
        .unwrap();
    let body: Value = create.body_json().unwrap();
    assert_eq!(
        body,
        json!({
            "input_file_id": "file-in-1",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": job.metadata(&runner.run_id()),
        })
    );
    let shard = &runner.shards()[0];
    assert_eq!(shard.batch_id, Some(BatchId::from("batch_1")));
    assert_eq!(shard.status, Some(BatchStatus::Completed));
    assert_eq!(
        shard.counts,
        Some(RequestCounts {
            total: 3,
            completed: 2,
            failed: 1
        })
    );
    let output_path = job.out().join("r01-001_output.jsonl");
    let error_path = job.out().join("r01-001_errors.jsonl");
    assert_eq!(shard.output_path.as_deref(), Some(output_path.as_path()));
    assert_eq!(shard.error_path.as_deref(), Some(error_path.as_path()));
    assert_eq!(std::fs::read_to_string(&output_path).unwrap(), OUTPUT);
    assert_eq!(std::fs::read_to_string(&error_path).unwrap(), ERRORS);
    assert!(runner.unfinished().is_empty());
    assert_eq!(runner.ready().len(), 1);
    let shard_bytes = std::fs::metadata(&job.shard).unwrap().len();
    assert_eq!(events.upload_bytes.load(Ordering::SeqCst), shard_bytes);
    assert_eq!(
        events.download_bytes.load(Ordering::SeqCst),
        (OUTPUT.len() + ERRORS.len()) as u64
    );
    let lines = events.lines();
    assert_eq!(
        lines,
        [
            format!("0 upload {shard_bytes}"),
            "0 uploaded file-in-1".to_owned(),
            "0 created batch_1".to_owned(),
            "0 in_progress 1/0/3".to_owned(),
            "0 completed 2/1/3".to_owned(),
            "0 download file-out".to_owned(),
            format!("0 downloaded {}", OUTPUT.len()),
            "0 download file-err".to_owned(),
            format!("0 downloaded {}", ERRORS.len()),
        ]
    );
    runner.mark_handed_on(0).unwrap();
    assert!(runner.ready().is_empty());
    let polled = polls(&server).await;

    // A second process on the same ledger: every step is already done.
    let (again, events) = job.runner(&server);
    again.run(&[job.input()], &job.out()).await.unwrap();
    assert_eq!(polls(&server).await, polled, "no poll of a terminal batch");
    assert!(events.lines().is_empty(), "{:?}", events.lines());
    assert_eq!(again.shards()[0].stage(), ShardStage::HandedOn);
    let on_disk = Ledger::load(&job.ledger).unwrap();
    assert_eq!(on_disk.version, 2);
    assert_eq!(on_disk, again.ledger());
    server.verify().await;
}

/// Resumes a one-shard job from the ledger state `state` and runs it to the end.
async fn check_resume(
    state: impl FnOnce(&mut ShardRecord),
    expect: Expect,
    listed: impl FnOnce(&str, Value) -> Vec<Value>,
) -> (Job, JobRunner, Arc<Events>) {
    let job = Job::new();
    let run_id = job.ledger_at(state).await;
    std::fs::create_dir_all(job.out()).unwrap();
    let server = MockServer::start().await;
    let listed = listed(&run_id, job.metadata(&run_id));
    mount_api(
        &server,
        expect,
        terminal("completed", Some("file-out"), Some("file-err")),
        listed,
    )
    .await;
    let (runner, events) = job.runner(&server);

    runner.run(&[job.input()], &job.out()).await.unwrap();

    server.verify().await;
    let shard = &runner.shards()[0];
    assert_eq!(shard.input_file_id, Some(FileId::from("file-in-1")));
    assert_eq!(shard.batch_id, Some(BatchId::from("batch_1")));
    assert_eq!(shard.status, Some(BatchStatus::Completed));
    assert_eq!(shard.stage(), ShardStage::Downloaded);
    let output = job.out().join("r01-001_output.jsonl");
    assert_eq!(std::fs::read_to_string(output).unwrap(), OUTPUT);
    let errors = job.out().join("r01-001_errors.jsonl");
    assert_eq!(std::fs::read_to_string(errors).unwrap(), ERRORS);
    (job, runner, events)
}

fn no_batches(_: &str, _: Value) -> Vec<Value> {
    Vec::new()
}

const DOWNLOADS: Expect = Expect {
    upload: 0,
    retrieve_file: 0,
    create: 0,
    list: 0,
    download_output: 1,
    download_errors: 1,
};

#[tokio::test]
async fn resume_after_the_upload_intent_uploads_again() {
    let expect = Expect {
        upload: 1,
        create: 1,
        ..DOWNLOADS
    };
    check_resume(
        |shard| shard.upload_requested_at = Some(1),
        expect,
        no_batches,
    )
    .await;
}

#[tokio::test]
async fn resume_after_the_upload_checks_the_file_and_creates() {
    let expect = Expect {
        retrieve_file: 1,
        create: 1,
        ..DOWNLOADS
    };
    check_resume(
        |shard| {
            shard.upload_requested_at = Some(1);
            shard.input_file_id = Some(FileId::from("file-in-1"));
        },
        expect,
        no_batches,
    )
    .await;
}

#[tokio::test]
async fn resume_after_the_upload_of_a_vanished_file_uploads_again() {
    let expect = Expect {
        upload: 1,
        create: 1,
        ..DOWNLOADS
    };
    // `file-gone` is unknown to the server: 404.
    check_resume(
        |shard| shard.input_file_id = Some(FileId::from("file-gone")),
        expect,
        no_batches,
    )
    .await;
}

#[tokio::test]
async fn resume_after_the_create_intent_finds_the_lost_batch_by_metadata() {
    let expect = Expect {
        list: 1,
        ..DOWNLOADS
    };
    let (_job, _runner, events) = check_resume(
        |shard| {
            shard.input_file_id = Some(FileId::from("file-in-1"));
            shard.create_requested_at = Some(batch_created_at());
        },
        expect,
        |run_id, metadata| {
            let mut ours = support::batch_counts("batch_1", "in_progress", 3, 0, 0);
            ours["input_file_id"] = json!("file-in-1");
            ours["metadata"] = metadata.clone();
            // The same shard of another run, and an earlier attempt of this one, must not match.
            let mut other_run = ours.clone();
            other_run["id"] = json!("batch_other_run");
            other_run["metadata"]["run_id"] = json!(format!("x{}", &run_id[1..]));
            let mut other_attempt = ours.clone();
            other_attempt["id"] = json!("batch_other_attempt");
            other_attempt["metadata"]["attempt"] = json!("0");
            vec![other_run, other_attempt, ours]
        },
    )
    .await;
    assert_eq!(events.lines()[0], "0 recovered batch_1");
}

#[tokio::test]
async fn resume_after_the_create_intent_creates_when_no_batch_matches() {
    let expect = Expect {
        list: 1,
        retrieve_file: 1,
        create: 1,
        ..DOWNLOADS
    };
    check_resume(
        |shard| {
            shard.input_file_id = Some(FileId::from("file-in-1"));
            shard.create_requested_at = Some(batch_created_at());
        },
        expect,
        no_batches,
    )
    .await;
}

#[tokio::test]
async fn resume_after_the_create_only_polls_and_downloads() {
    check_resume(
        |shard| {
            shard.input_file_id = Some(FileId::from("file-in-1"));
            shard.create_requested_at = Some(1);
            shard.batch_id = Some(BatchId::from("batch_1"));
            shard.status = Some(BatchStatus::Validating);
        },
        DOWNLOADS,
        no_batches,
    )
    .await;
}

/// The state of a shard whose batch completed with both files.
fn terminal_state(shard: &mut ShardRecord) {
    shard.input_file_id = Some(FileId::from("file-in-1"));
    shard.create_requested_at = Some(1);
    shard.batch_id = Some(BatchId::from("batch_1"));
    shard.status = Some(BatchStatus::Completed);
    shard.output_file_id = Some(FileId::from("file-out"));
    shard.error_file_id = Some(FileId::from("file-err"));
}

#[tokio::test]
async fn resume_after_the_terminal_status_only_downloads() {
    let (_job, runner, _events) = check_resume(terminal_state, DOWNLOADS, no_batches).await;
    assert!(runner.unfinished().is_empty());
}

#[tokio::test]
async fn resume_after_the_output_download_fetches_only_the_error_file() {
    let job = Job::new();
    let output = job.out().join("r01-001_output.jsonl");
    std::fs::create_dir_all(job.out()).unwrap();
    std::fs::write(&output, OUTPUT).unwrap();
    let output_path = output.clone();
    job.ledger_at(|shard| {
        terminal_state(shard);
        shard.output_path = Some(output_path);
    })
    .await;
    let server = MockServer::start().await;
    let expect = Expect {
        download_errors: 1,
        ..Expect::default()
    };
    mount_api(&server, expect, terminal("completed", None, None), vec![]).await;
    let (runner, _events) = job.runner(&server);

    runner.run(&[job.input()], &job.out()).await.unwrap();

    server.verify().await;
    let shard = &runner.shards()[0];
    assert_eq!(shard.output_path.as_deref(), Some(output.as_path()));
    let errors = job.out().join("r01-001_errors.jsonl");
    assert_eq!(shard.error_path.as_deref(), Some(errors.as_path()));
    assert_eq!(polls(&server).await, 0);
}

#[tokio::test]
async fn resume_after_the_downloads_does_nothing() {
    let job = Job::new();
    job.ledger_at(|shard| {
        terminal_state(shard);
        shard.output_path = Some("out.jsonl".into());
        shard.error_path = Some("err.jsonl".into());
        shard.downloaded_at = Some(2);
    })
    .await;
    let server = MockServer::start().await;
    mount_api(
        &server,
        Expect::default(),
        terminal("completed", None, None),
        vec![],
    )
    .await;
    let (runner, events) = job.runner(&server);

    runner.run(&[job.input()], &job.out()).await.unwrap();

    server.verify().await;
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(events.lines().is_empty());
    assert_eq!(runner.ready().len(), 1, "downloaded, not yet handed on");
}

/// Runs a fresh one-shard job to a terminal batch `terminal`.
async fn run_to(terminal: Value, expect: Expect) -> (Job, JobRunner, Arc<Events>) {
    let job = Job::new();
    let server = MockServer::start().await;
    mount_api(&server, expect, terminal, vec![]).await;
    let (runner, events) = job.runner(&server);
    runner.run(&[job.input()], &job.out()).await.unwrap();
    server.verify().await;
    (job, runner, events)
}

#[tokio::test]
async fn completed_with_no_output_file_downloads_the_error_file() {
    let mut batch = terminal("completed", None, Some("file-err"));
    batch["output_file_id"] = json!("");
    let expect = Expect {
        upload: 1,
        create: 1,
        download_errors: 1,
        ..Expect::default()
    };
    let (job, runner, _events) = run_to(batch, expect).await;
    let shard = &runner.shards()[0];
    assert_eq!(shard.output_file_id, None);
    assert_eq!(shard.output_path, None);
    assert!(shard.error_path.is_some());
    assert_eq!(shard.stage(), ShardStage::Downloaded);
    assert_eq!(support::dir_names(&job.out()), ["r01-001_errors.jsonl"]);
}

#[tokio::test]
async fn expired_with_partial_output_downloads_both_files() {
    let expect = Expect {
        upload: 1,
        create: 1,
        download_output: 1,
        download_errors: 1,
        ..Expect::default()
    };
    let (job, runner, _events) = run_to(
        terminal("expired", Some("file-out"), Some("file-err")),
        expect,
    )
    .await;
    assert_eq!(runner.shards()[0].status, Some(BatchStatus::Expired));
    assert_eq!(
        support::dir_names(&job.out()),
        ["r01-001_errors.jsonl", "r01-001_output.jsonl"]
    );
}

#[tokio::test]
async fn cancelled_with_partial_output_downloads_it() {
    let expect = Expect {
        upload: 1,
        create: 1,
        download_output: 1,
        ..Expect::default()
    };
    let (job, _runner, _events) =
        run_to(terminal("cancelled", Some("file-out"), None), expect).await;
    assert_eq!(support::dir_names(&job.out()), ["r01-001_output.jsonl"]);
}

#[tokio::test]
async fn failed_records_the_errors_downloads_nothing_and_can_be_retried() {
    let mut failed = terminal("failed", None, None);
    failed["errors"] = json!({"object": "list", "data": [{
        "code": "token_limit_exceeded",
        "message": "Enqueued token limit reached for gpt-4o-mini in organization org-x. Limit: 2,000,000 enqueued tokens.",
        "param": null, "line": null}]});
    let expect = Expect {
        upload: 1,
        create: 1,
        ..Expect::default()
    };
    let (job, runner, events) = run_to(failed, expect).await;
    assert!(
        events
            .lines()
            .contains(&"0 token limit exceeded batch_1".to_owned())
    );
    let shard = runner.shards()[0].clone();
    assert_eq!(shard.status, Some(BatchStatus::Failed));
    assert!(shard.token_limit_exceeded());
    assert_eq!(
        shard.errors[0].code.as_deref(),
        Some("token_limit_exceeded")
    );
    assert_eq!(shard.stage(), ShardStage::Downloaded, "nothing to fetch");
    assert!(support::dir_names(&job.out()).is_empty());

    // Later: the same uploaded file goes into a new batch, attempt 2.
    assert!(runner.retry_shard(0).unwrap());
    let server = MockServer::start().await;
    let expect = Expect {
        retrieve_file: 1,
        create: 1,
        ..Expect::default()
    };
    mount_api(&server, expect, terminal("completed", None, None), vec![]).await;
    let (runner, _events) = job.runner(&server);
    runner.submit(&[]).await.unwrap();
    server.verify().await;
    let create = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|request| request.url.path() == "/batches")
        .unwrap();
    let body: Value = create.body_json().unwrap();
    assert_eq!(body["metadata"]["attempt"], "2");
    assert_eq!(body["input_file_id"], "file-in-1");
    assert_eq!(runner.shards()[0].attempt, 2);
}

#[tokio::test]
async fn a_shard_changed_after_upload_is_refused() {
    let job = Job::new();
    job.ledger_at(|shard| shard.input_file_id = Some(FileId::from("file-in-1")))
        .await;
    std::fs::write(&job.shard, "{\"changed\":true}\n").unwrap();
    let server = MockServer::start().await;
    let (runner, _events) = job.runner(&server);
    let err = runner.submit(&[job.input()]).await.unwrap_err();
    assert!(
        matches!(err, Error::ShardChanged { ref id, ref path, .. } if id == SHARD_ID && *path == job.shard),
        "{err:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// Create time of the batches the tests list, as the create intent of the ledger.
fn batch_created_at() -> i64 {
    1_800_000_000
}

/// A fake API for many shards: ids derive from the shard names.
pub(crate) struct Upload;

impl Respond for Upload {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body);
        let name = body
            .split("filename=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        let stem = name.trim_end_matches(".jsonl");
        ResponseTemplate::new(200).set_body_json(support::file(&format!("file-{stem}"), name, 1))
    }
}

pub(crate) struct Create;

impl Respond for Create {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = request.body_json().unwrap();
        let file_id = body["input_file_id"].as_str().unwrap();
        let stem = file_id.trim_start_matches("file-");
        let mut batch = support::batch(&format!("batch-{stem}"), "validating");
        batch["input_file_id"] = json!(file_id);
        batch["metadata"] = body["metadata"].clone();
        ResponseTemplate::new(200).set_body_json(batch)
    }
}

struct Retrieve;

impl Respond for Retrieve {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().trim_start_matches("/batches/");
        let stem = id.trim_start_matches("batch-");
        let mut batch = support::batch_counts(id, "completed", 1, 1, 0);
        batch["output_file_id"] = json!(format!("out-{stem}"));
        ResponseTemplate::new(200).set_body_json(batch)
    }
}

struct Content;

impl Respond for Content {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200)
            .set_body_raw(request.url.path().to_owned(), "application/octet-stream")
    }
}

#[tokio::test]
async fn many_shards_run_side_by_side_and_fail_separately() {
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<ShardInput> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|name| {
            let path = support::write_shard(dir.path(), &format!("{name}.jsonl"), 2);
            ShardInput::new(*name, path)
        })
        .collect();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/files"))
        .and(body_string_contains("filename=\"c.jsonl\""))
        .respond_with(ResponseTemplate::new(400).set_body_json(support::api_error(
            "Invalid file format for Batch API. Must be .jsonl",
            "invalid_request_error",
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/files"))
        .respond_with(Upload)
        .expect(4)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/batches"))
        .respond_with(Create)
        .expect(4)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/batches/batch-[a-e]$"))
        .respond_with(Retrieve)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/files/out-[a-e]/content$"))
        .respond_with(Content)
        .expect(4)
        .mount(&server)
        .await;
    let ledger = dir.path().join("many.json");
    let config = JobConfig {
        concurrency: 3,
        poll: PollConfig {
            initial_interval: Duration::from_millis(5),
            max_interval: Duration::from_millis(5),
            backoff: 1.5,
            ..PollConfig::default()
        },
        ..JobConfig::default()
    };
    let events = Arc::new(Events::default());
    let runner = JobRunner::new(support::client(&server.uri()), &ledger, config)
        .unwrap()
        .with_progress(events.clone());

    let err = runner.submit(&shards).await.unwrap_err();

    let Error::Shard {
        index,
        ref source,
        batch_id: None,
        ..
    } = err
    else {
        panic!("expected a shard error, got {err:?}")
    };
    assert_eq!(index, 2);
    assert_eq!(source.api_kind(), Some(ApiErrorKind::BadRequest));
    assert!(
        events
            .lines()
            .iter()
            .any(|line| line.starts_with("2 failed: POST /files failed: bad request"))
    );
    runner.wait().await.unwrap();
    let out = dir.path().join("out");
    runner.download(&out).await.unwrap();

    server.verify().await;
    let unfinished: Vec<usize> = runner
        .unfinished()
        .iter()
        .map(|shard| shard.index)
        .collect();
    assert_eq!(unfinished, [2]);
    for (index, shard) in runner.shards().iter().enumerate() {
        let name = ["a", "b", "c", "d", "e"][index];
        if index == 2 {
            assert_eq!(shard.stage(), ShardStage::Uploading);
            continue;
        }
        assert_eq!(shard.batch_id, Some(BatchId::from(format!("batch-{name}"))));
        let output = out.join(format!("{name}_output.jsonl"));
        assert_eq!(
            std::fs::read_to_string(output).unwrap(),
            format!("/files/out-{name}/content")
        );
    }
    let run_id = runner.run_id();
    for request in server.received_requests().await.unwrap() {
        if request.url.path() == "/batches" && request.method.as_str() == "POST" {
            let body: Value = request.body_json().unwrap();
            assert_eq!(body["metadata"]["run_id"], run_id.as_str());
        }
    }
}
