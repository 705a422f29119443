//! `check-batch-status` on Anthropic message batches (issue 14), against the emulator's
//! Message Batches API: status with Anthropic's five counts, the results download and the
//! cost from its usage, cancel, lessons written from a job's batch found through its ledger,
//! the list, cleanup, the emulator's kept state, and ids given to the wrong provider.

use std::path::Path;
use std::time::{Duration, Instant};

use anthropic_batch_client::{
    BatchRequest, Client, CustomId, MessageBatch, MessageBatchId, MessageParam, MessageParams,
    ProcessingStatus,
};
use batch_emulator::{Emulator, EmulatorConfig};

use crate::{
    code, command, datagov, emulator, generate_into, lesson_files, message_batches, run, stderr,
    stdout,
};

const KEY: &str = crate::ANTHROPIC_KEY;

fn client(emulator: &Emulator) -> Client {
    crate::anthropic_client(emulator)
}

/// Creates a message batch of `n` lesson requests; returns its id.
async fn create(emulator: &Emulator, n: usize) -> MessageBatchId {
    let requests: Vec<BatchRequest> = (1..=n)
        .map(|i| BatchRequest {
            custom_id: CustomId::new(format!("lesson_M0-L{i:03}")).unwrap(),
            params: MessageParams {
                model: "claude-sonnet-4-5".to_owned(),
                max_tokens: 4000,
                system: None,
                messages: vec![MessageParam::user(format!(
                    "Write Lesson M0-L{i:03}: Topic {i}"
                ))],
                extra: Default::default(),
            },
        })
        .collect();
    client(emulator).create_batch(&requests).await.unwrap().id
}

/// Polls the batch until its processing status is `status`.
async fn wait_for(
    emulator: &Emulator,
    id: &MessageBatchId,
    status: ProcessingStatus,
) -> MessageBatch {
    let client = client(emulator);
    let started = Instant::now();
    loop {
        let batch = client.retrieve_batch(id).await.unwrap();
        if batch.processing_status == status {
            return batch;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "stuck at {}",
            batch.processing_status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn slow() -> EmulatorConfig {
    crate::one_at_a_time(Duration::from_millis(120))
}

/// check-batch-status against the emulator's Message Batches API with Anthropic's key (and
/// no OpenAI key: none is needed).
fn check(dir: &Path, emulator: &Emulator) -> std::process::Command {
    let mut cmd = command("check", dir);
    cmd.args([
        "--base-url",
        &emulator.anthropic_base_url(),
        "--work-dir",
        "work",
    ])
    .env("ANTHROPIC_API_KEY", KEY);
    cmd
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {}", stdout(output)))
}

/// generate on three lessons of the Data Governance outline through the emulator's Message
/// Batches API, with `args`.
fn generate_anthropic(dir: &Path, emulator: &Emulator, args: &[&str]) -> std::process::Command {
    let mut cmd = generate_into(dir, &datagov(), "out");
    cmd.args(["--provider", "anthropic", "--limit", "3", "--yes"])
        .args(args)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", emulator.anthropic_base_url());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_an_ended_message_batch_with_its_five_counts_downloads_it_and_prices_its_usage() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let id = create(&emulator, 3).await;
    wait_for(&emulator, &id, ProcessingStatus::Ended).await;

    // The id says which API: no --provider needed.
    let mut cmd = check(dir.path(), &emulator);
    cmd.arg(id.as_str());
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with(&format!("Message batch {id}\n")), "{text}");
    assert!(text.contains("  status:      ended\n"), "{text}");
    assert!(
        text.contains(
            "  requests:    3 total: 0 processing, 3 succeeded, 0 errored, 0 canceled, 0 expired\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("cost:        known once the results are downloaded (--download)"),
        "{text}"
    );

    let mut cmd = check(dir.path(), &emulator);
    cmd.arg(id.as_str()).args(["--download", "--json"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["provider"], "anthropic");
    assert_eq!(doc["batch"]["id"], id.as_str());
    assert_eq!(doc["batch"]["processing_status"], "ended");
    assert_eq!(doc["batch"]["request_counts"]["succeeded"], 3);
    // Named as OpenAI's downloads are: `<batch id>_output.jsonl` there, `_results` here.
    let path = format!("work/{id}_results.jsonl");
    assert_eq!(doc["output_path"], path.as_str());
    let results = std::fs::read_to_string(dir.path().join(&path)).unwrap();
    assert_eq!(results.lines().count(), 3, "{results}");
    assert!(
        results
            .lines()
            .all(|line| line.contains(r#""type":"succeeded""#)),
        "{results}"
    );
    // The cost comes from the results' usage (the batch reports none), at Claude's batch
    // prices.
    let cost = &doc["cost"];
    assert!(cost["input_tokens"].as_u64().unwrap() > 0, "{cost}");
    assert!(cost["output_tokens"].as_u64().unwrap() > 0, "{cost}");
    assert!(cost["usd"].as_f64().unwrap() > 0.0, "{cost}");
    assert_eq!(cost["is_final"], true);

    // Again: the file is kept, and the cost is shown from it.
    let mut cmd = check(dir.path(), &emulator);
    cmd.arg(id.as_str()).arg("--download");
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is already downloaded (--force downloads it again)"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("at batch prices, from the usage in the results"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancels_a_running_message_batch_only_when_confirmed_and_downloads_what_it_left() {
    let emulator = emulator(slow()).await;
    let dir = tempfile::tempdir().unwrap();
    let id = create(&emulator, 10).await;
    wait_for(&emulator, &id, ProcessingStatus::InProgress).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // No terminal to ask on, and no --yes: refused, and nothing is cancelled.
    let mut refused = check(dir.path(), &emulator);
    refused.arg(id.as_str()).arg("--cancel");
    let output = run(refused).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("nothing was cancelled"),
        "{}",
        stderr(&output)
    );
    let batch = client(&emulator).retrieve_batch(&id).await.unwrap();
    assert_eq!(batch.cancel_initiated_at, None);

    let mut cancel = check(dir.path(), &emulator);
    cancel.arg(id.as_str()).args(["--cancel", "--yes"]);
    let output = run(cancel).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("Cancel requested for {id}: now canceling")),
        "{}",
        stderr(&output)
    );

    let mut cmd = check(dir.path(), &emulator);
    cmd.arg(id.as_str())
        .args(["--wait", "--poll-interval", "0.05", "--download", "--json"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["batch"]["processing_status"], "ended");
    assert!(doc["batch"]["cancel_initiated_at"].is_string(), "{doc}");
    let counts = &doc["batch"]["request_counts"];
    let canceled = counts["canceled"].as_u64().unwrap();
    assert!(canceled > 0, "{counts}");
    let results =
        std::fs::read_to_string(dir.path().join(doc["output_path"].as_str().unwrap())).unwrap();
    assert_eq!(results.lines().count(), 10, "{results}");
    assert_eq!(
        results
            .lines()
            .filter(|line| line.contains(r#""type":"canceled""#))
            .count() as u64,
        canceled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_id_it_follows_the_ledgers_message_batch_and_writes_its_lessons() {
    let mut config = EmulatorConfig::fast();
    config.timing.validation = Duration::from_millis(300);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let output = run(generate_anthropic(
        dir.path(),
        &emulator,
        &["--no-wait", "--json"],
    ))
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let id = json(&output)["batches"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("msgbatch_"), "{id}");

    // --provider naming the other API than the ledger's is refused.
    let mut cmd = check(dir.path(), &emulator);
    cmd.args(["--provider", "openai"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "the work dir's latest batch {id} is Anthropic's, and --provider says openai"
        )),
        "{}",
        stderr(&output)
    );

    // No id and no --provider: the ledger says the latest batch is Anthropic's, so only
    // ANTHROPIC_API_KEY is needed.
    let mut cmd = check(dir.path(), &emulator);
    cmd.args([
        "--wait",
        "--process",
        "--poll-interval",
        "0.05",
        "--out",
        "out",
        "--json",
    ])
    .arg("--content")
    .arg(datagov());
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["provider"], "anthropic");
    assert_eq!(doc["batch"]["id"], id.as_str());
    assert_eq!(doc["batch"]["processing_status"], "ended");
    assert_eq!(doc["process"]["written"], 3);
    assert_eq!(doc["process"]["failed"].as_array().unwrap().len(), 0);
    assert_eq!(
        lesson_files(&dir.path().join("out")),
        ["M0-L001.md", "M0-L002.md", "M0-L003.md"]
    );
    let lesson = std::fs::read_to_string(dir.path().join("out/M0-L001.md")).unwrap();
    assert!(lesson.starts_with("# Lesson M0-L001: "), "{lesson}");
    assert!(
        dir.path()
            .join(format!("work/{id}_results.jsonl"))
            .is_file(),
        "the results are kept in the work dir"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_message_batches_with_provider_anthropic() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let first = create(&emulator, 2).await;
    let second = create(&emulator, 1).await;
    wait_for(&emulator, &first, ProcessingStatus::Ended).await;
    wait_for(&emulator, &second, ProcessingStatus::Ended).await;

    let mut list = check(dir.path(), &emulator);
    list.args(["--provider", "anthropic", "--list"]);
    let output = run(list).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let table = stdout(&output);
    assert!(table.starts_with("ID"), "{table}");
    for (id, done) in [(&first, "2/2"), (&second, "1/1")] {
        let row = table
            .lines()
            .find(|line| line.contains(id.as_str()))
            .unwrap_or_else(|| panic!("{id} not listed:\n{table}"));
        assert!(row.contains("completed"), "{row}");
        assert!(row.contains(done), "{row}");
    }

    let mut list = check(dir.path(), &emulator);
    list.args([
        "--provider",
        "anthropic",
        "--list",
        "--limit",
        "1",
        "--json",
    ]);
    let output = run(list).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let doc = json(&output);
    let batches = doc.as_array().unwrap();
    assert_eq!(batches.len(), 1, "{doc}");
    // Anthropic's own objects, newest first.
    assert_eq!(batches[0]["id"], second.as_str());
    assert_eq!(batches[0]["type"], "message_batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_of_the_other_provider_is_refused_before_anything_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    // No key and no server: the mismatch is found first.
    let mut cmd = command("check", dir.path());
    cmd.args(["--provider", "openai", "msgbatch_01abc"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(
            "msgbatch_01abc is an Anthropic message batch id (msgbatch_...), and --provider says openai"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: drop --provider (the id says which API), or pass --provider anthropic"),
        "{err}"
    );

    let mut cmd = command("check", dir.path());
    cmd.args(["--provider", "anthropic", "batch_abc"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("batch_abc is an OpenAI batch id (batch_...), and --provider says anthropic"),
        "{err}"
    );
    assert!(err.contains("or pass --provider openai"), "{err}");

    // A message batch id needs Anthropic's key, and the error names it.
    let mut cmd = command("check", dir.path());
    cmd.arg("msgbatch_01abc").env("OPENAI_API_KEY", "sk-test");
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("ANTHROPIC_API_KEY is not set"), "{err}");
    assert!(err.contains("hint: export ANTHROPIC_API_KEY="), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_message_batch_exits_1_with_a_hint_to_check_the_id() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = check(dir.path(), &emulator);
    cmd.arg("msgbatch_0000000000000000000000dead");
    let output = run(cmd).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("cannot check message batch msgbatch_0000000000000000000000dead"),
        "{err}"
    );
    assert!(
        err.contains("hint: check the batch id: check-batch-status --provider anthropic --list"),
        "{err}"
    );
    assert!(!err.contains("--new"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_the_message_batches_whose_lessons_are_written() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    // The job writes its lessons and keeps its batch on the server.
    let output = run(generate_anthropic(
        dir.path(),
        &emulator,
        &["--keep-remote-files"],
    ))
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let kept = message_batches(&emulator).await;
    assert_eq!(kept.len(), 1);
    // A message batch made by hand is none of the work dir's: it stays.
    let other = create(&emulator, 1).await;
    wait_for(&emulator, &other, ProcessingStatus::Ended).await;

    // The ledger says Anthropic: no OpenAI key is needed.
    let mut cmd = check(dir.path(), &emulator);
    cmd.args(["--cleanup", "--json"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("deleted 1 ended message batch from Anthropic's server"),
        "{err}"
    );
    let doc = json(&output);
    assert_eq!(doc[0]["provider"], "anthropic");
    assert_eq!(doc[0]["files_deleted"], 1);
    let left: Vec<String> = message_batches(&emulator)
        .await
        .into_iter()
        .map(|batch| batch.id.0)
        .collect();
    assert_eq!(left, [other.0]);

    // Recorded in the ledger: a second cleanup deletes nothing.
    let mut cmd = check(dir.path(), &emulator);
    cmd.arg("--cleanup");
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Nothing to delete"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulators_kept_state_shows_its_message_batches() {
    let dir = tempfile::tempdir().unwrap();
    // The quick start with Anthropic: the built-in emulator, its state kept in the job folder.
    let mut cmd = generate_into(dir.path(), &datagov(), "out");
    cmd.args([
        "--emulator",
        "--provider",
        "anthropic",
        "--limit",
        "2",
        "--keep-remote-files",
        "--yes",
        "--json",
    ]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let id = json(&output)["batches"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("msgbatch_"), "{id}");

    // No id: the ledger's latest batch, asked of the emulator's Message Batches API.
    let mut cmd = command("check", dir.path());
    cmd.args(["--emulator", "--work-dir", "work"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with(&format!("Message batch {id}\n")), "{text}");
    assert!(
        text.contains("2 total: 0 processing, 2 succeeded, 0 errored, 0 canceled, 0 expired"),
        "{text}"
    );

    let mut cmd = command("check", dir.path());
    cmd.args(["--emulator", "--work-dir", "work", "--download"])
        .arg(&id);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("(emulator: nothing billed)"),
        "{}",
        stdout(&output)
    );
    let results =
        std::fs::read_to_string(dir.path().join(format!("work/{id}_results.jsonl"))).unwrap();
    assert_eq!(results.lines().count(), 2, "{results}");

    // --list shows both APIs' batches of the state unless --provider says which.
    for provider in [None, Some("anthropic")] {
        let mut cmd = command("check", dir.path());
        cmd.args(["--emulator", "--work-dir", "work", "--list", "--json"]);
        if let Some(provider) = provider {
            cmd.args(["--provider", provider]);
        }
        let output = run(cmd).await;
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let doc = json(&output);
        let listed = doc.as_array().unwrap();
        assert_eq!(listed.len(), 1, "{doc}");
        assert_eq!(listed[0]["id"], id.as_str());
        assert_eq!(listed[0]["type"], "message_batch");
    }
    let mut cmd = command("check", dir.path());
    cmd.args([
        "--emulator",
        "--work-dir",
        "work",
        "--list",
        "--provider",
        "openai",
    ]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("No batches."),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_of_a_work_dir_with_both_providers_jobs_cleans_each_through_its_api() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut openai =
        crate::generate_against(dir.path(), &datagov(), "out-openai", emulator.base_url());
    openai.args(["--limit", "2", "--keep-remote-files", "--yes"]);
    let output = run(openai).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let output = run(generate_anthropic(
        dir.path(),
        &emulator,
        &["--keep-remote-files"],
    ))
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    // One --base-url cannot be both servers.
    let mut cmd = check(dir.path(), &emulator);
    cmd.arg("--cleanup").env("OPENAI_API_KEY", "sk-test-key");
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("--base-url names one server"), "{err}");
    assert!(
        err.contains("hint: add --provider openai or --provider anthropic"),
        "{err}"
    );
    assert_eq!(message_batches(&emulator).await.len(), 1);

    // Each provider's key and base URL from the environment: both are cleaned.
    let mut cmd = command("check", dir.path());
    cmd.args(["--cleanup", "--work-dir", "work", "--json"])
        .env("OPENAI_API_KEY", "sk-test-key")
        .env("OPENAI_BASE_URL", emulator.base_url())
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", emulator.anthropic_base_url());
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("from the servers"), "{err}");
    assert!(err.contains("and 1 message batch"), "{err}");
    let doc = json(&output);
    let mut providers: Vec<&str> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["provider"].as_str().unwrap())
        .collect();
    providers.sort_unstable();
    assert_eq!(providers, ["anthropic", "openai"]);
    assert!(message_batches(&emulator).await.is_empty());
    // The OpenAI job's files are gone from the server too (its batch stays: only files are
    // deleted there).
    for job in doc.as_array().unwrap() {
        assert!(job["files_deleted"].as_u64().unwrap() > 0, "{job}");
    }
}

/// Ctrl-C while waiting: the message batch runs on, and the command says so.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_waiting_leaves_the_message_batch_running() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let mut config = slow();
    config.timing.per_request = Duration::from_millis(500);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let id = create(&emulator, 10).await;
    let mut cmd = check(dir.path(), &emulator);
    cmd.arg(id.as_str())
        .args(["--wait", "--poll-interval", "0.05"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let output = tokio::task::spawn_blocking(move || {
        let child = cmd.spawn().unwrap();
        // Long enough to be polling, far from the batch's end.
        std::thread::sleep(Duration::from_millis(800));
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        kill(pid, Signal::SIGINT).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code(&output), 130, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains(&format!("Interrupted: batch {id}")), "{err}");
    assert!(err.contains("on the server"), "{err}");
    let batch = client(&emulator).retrieve_batch(&id).await.unwrap();
    assert_eq!(batch.processing_status, ProcessingStatus::InProgress);
    assert_eq!(batch.cancel_initiated_at, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_exits_2_naming_anthropic_api_key() {
    let mut config = EmulatorConfig::fast();
    config.api_key = Some("sk-ant-right".to_owned());
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["msgbatch_01abc"][..],
        &["--provider", "anthropic", "--list"],
    ] {
        let mut cmd = check(dir.path(), &emulator);
        cmd.args(args);
        let output = run(cmd).await;
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        let err = stderr(&output);
        assert!(
            err.contains("hint: check ANTHROPIC_API_KEY (or the file given with --api-key-file)"),
            "{args:?}: {err}"
        );
        assert!(!err.contains(KEY), "the key is never shown: {err}");
    }
}

/// Anthropic's retries show as OpenAI's do (issue 13's lines): an unreachable API is said at the
/// first retry instead of a silent wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_said_at_the_first_retry() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("check", dir.path());
    cmd.args(["msgbatch_01abc", "--work-dir", "work", "--base-url"])
        .arg(format!("http://127.0.0.1:{port}"))
        .env("ANTHROPIC_API_KEY", KEY);
    let output = run(cmd).await;
    let err = stderr(&output);
    assert_ne!(code(&output), 0, "{err}");
    let unreachable = err
        .lines()
        .find(|line| line.contains("server unreachable since "))
        .unwrap_or_else(|| panic!("no unreachable line in {err}"));
    assert!(
        unreachable.contains(", retrying (attempt 2 of 3): "),
        "{unreachable}"
    );
}

/// An overloaded answer (529) is a failing server, not an unreachable one, and the batch line
/// follows once it gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_api_is_said_and_so_is_its_recovery() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let batch_path = "/v1/messages/batches/msgbatch_01abc";
    Mock::given(method("GET"))
        .and(path(batch_path))
        .respond_with(ResponseTemplate::new(529).set_body_json(serde_json::json!({
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"}
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(batch_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "msgbatch_01abc", "type": "message_batch", "processing_status": "in_progress",
            "request_counts": {"processing": 2, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
            "ended_at": null, "created_at": "2026-12-04T10:00:00Z",
            "expires_at": "2026-12-05T10:00:00Z", "archived_at": null,
            "cancel_initiated_at": null, "results_url": null
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("check", dir.path());
    cmd.args(["msgbatch_01abc", "--work-dir", "work", "--base-url"])
        .arg(server.uri())
        .env("ANTHROPIC_API_KEY", KEY);
    let output = run(cmd).await;
    let err = stderr(&output);
    assert_eq!(code(&output), 0, "{err}");
    let failing = err
        .lines()
        .find(|line| line.contains("server failing since "))
        .unwrap_or_else(|| panic!("no failing line in {err}"));
    assert!(
        failing.contains(", retrying (attempt 2 of 3): "),
        "{failing}"
    );
    assert!(
        err.contains("server reachable again (failing since "),
        "{err}"
    );
    assert!(
        stdout(&output).contains("msgbatch_01abc"),
        "{}",
        stdout(&output)
    );
}
