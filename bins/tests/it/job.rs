//! One job, whatever the user does: concurrent runs, another directory, a lost ledger, leftovers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use batch_emulator::EmulatorConfig;
use openai_batch_client::{BatchStatus, Ledger};

use crate::{batches, code, command, datagov, emulator, job_file, lesson_files, run, stderr};

/// What a run prints while another run holds the job's lock.
const WAITING: &str = "is working on this job; waiting";
/// The first three lessons, by code: a run started after another has finished them has
/// nothing to do (`--limit 3` would take the next three not yet generated).
const ONLY_3: &[&str] = &["--only", "M0-L001,M0-L002,M0-L003"];
/// The first four lessons, by code.
const ONLY_4: &[&str] = &["--only", "M0-L001,M0-L002,M0-L003,M0-L004"];
/// The first three lessons without a file, counting those already in an unfinished batch.
const LIMIT_3: &[&str] = &["--limit", "3"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_started_at_once_submit_one_batch_and_the_second_waits() {
    let emulator = emulator(slow_validation(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let first =
        spawn(generate_at(dir.path(), emulator.base_url(), &work, &out, ONLY_3).arg("--json"));
    let second =
        spawn(generate_at(dir.path(), emulator.base_url(), &work, &out, ONLY_3).arg("--json"));
    let (first, second) = (finish(first).await, finish(second).await);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(code(&second), 0, "{}", stderr(&second));

    let waited = [&first, &second]
        .iter()
        .filter(|output| stderr(output).contains(WAITING))
        .count();
    assert_eq!(
        waited,
        1,
        "exactly one run should wait for the other:\n--- first\n{}\n--- second\n{}",
        stderr(&first),
        stderr(&second)
    );
    assert_one_batch_wrote_each_lesson_once(&emulator, &out, &[&first, &second], 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_started_later_waits_for_the_first_and_submits_nothing() {
    let emulator = emulator(slow_validation(2000)).await;
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let started = Instant::now();
    let first =
        spawn(generate_at(dir.path(), emulator.base_url(), &work, &out, ONLY_3).arg("--json"));
    let first_pid = first.id();
    wait_for_lock_holder(&out, first_pid).await;
    // About half a second in, as a person starting the same command again would.
    if let Some(rest) = Duration::from_millis(500).checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    assert!(
        !batches(&emulator)
            .await
            .iter()
            .any(|batch| batch.status.is_terminal()),
        "the first run's batch finished before the second run started"
    );
    let second =
        spawn(generate_at(dir.path(), emulator.base_url(), &work, &out, ONLY_3).arg("--json"));
    let (first, second) = (finish(first).await, finish(second).await);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(code(&second), 0, "{}", stderr(&second));

    let err = stderr(&second);
    assert!(err.contains(WAITING), "{err}");
    assert!(
        err.contains(&format!("pid {first_pid}")),
        "the waiting line names the run it waits for: {err}"
    );
    assert!(!stderr(&first).contains(WAITING), "{}", stderr(&first));
    assert_one_batch_wrote_each_lesson_once(&emulator, &out, &[&first, &second], 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_while_another_run_holds_the_job_exits_1_and_submits_nothing() {
    let emulator = emulator(slow_validation(2000)).await;
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let first = spawn(&mut generate_at(
        dir.path(),
        emulator.base_url(),
        &work,
        &out,
        ONLY_3,
    ));
    let first_pid = first.id();
    wait_for_submitted(&work).await;

    let mut second = generate_at(dir.path(), emulator.base_url(), &work, &out, ONLY_3);
    second.arg("--no-wait");
    let refused = run(second).await;
    assert_eq!(code(&refused), 1, "{}", stderr(&refused));
    let err = stderr(&refused);
    assert!(err.contains("is working on this job"), "{err}");
    assert!(err.contains(&format!("pid {first_pid}")), "{err}");
    assert!(!err.contains(WAITING), "--no-wait waited: {err}");
    assert!(
        !err.contains("Step 2"),
        "work started under a held lock: {err}"
    );
    assert_eq!(batches(&emulator).await.len(), 1, "--no-wait submitted");

    let first = finish(first).await;
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(
        lesson_files(&out),
        ["M0-L001.md", "M0-L002.md", "M0-L003.md"]
    );
    let all = batches(&emulator).await;
    assert_eq!(all.len(), 1, "a second batch was submitted");
    assert_eq!(all[0].counts().total, 3);
    assert_eq!(all[0].status, BatchStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_on_the_built_in_emulator_at_once_make_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let built_in = |cwd: &Path| {
        let mut cmd = generate(cwd, &work, &out, ONLY_4);
        cmd.arg("--emulator");
        cmd
    };
    let first = spawn(&mut built_in(dir.path()));
    let second = spawn(&mut built_in(dir.path()));
    let (first, second) = (finish(first).await, finish(second).await);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert_eq!(
        lesson_files(&out),
        ["M0-L001.md", "M0-L002.md", "M0-L003.md", "M0-L004.md"]
    );
    let ledger = Ledger::load(&job_file(&work, "ledger.json").unwrap()).unwrap();
    let submitted = ledger
        .shards
        .iter()
        .filter(|shard| shard.batch_id.is_some())
        .count();
    assert_eq!(
        submitted,
        1,
        "{:?}\n--- first\n{}\n--- second\n{}",
        ledger.shards,
        stderr(&first),
        stderr(&second)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_from_another_directory_with_absolute_paths_attaches() {
    rerun_from_another_directory_attaches(|root| (root.join("A/work"), root.join("A/out"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_from_another_directory_with_relative_paths_attaches() {
    rerun_from_another_directory_attaches(|_| ("../A/work".into(), "../A/out".into())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ledger_adopts_the_batch_still_running_instead_of_submitting_again() {
    let emulator = emulator(slow_validation(2000)).await;
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let mut first = generate_at(dir.path(), emulator.base_url(), &work, &out, LIMIT_3);
    first.arg("--no-wait");
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let submitted = batches(&emulator).await;
    assert_eq!(submitted.len(), 1);
    assert!(
        !submitted[0].status.is_terminal(),
        "the batch finished before the ledger was lost"
    );

    let ledger = job_file(&work, "ledger.json").unwrap();
    std::fs::remove_file(&ledger).unwrap();
    let rerun = run(generate_at(
        dir.path(),
        emulator.base_url(),
        &work,
        &out,
        LIMIT_3,
    ))
    .await;
    let err = stderr(&rerun);
    assert_eq!(code(&rerun), 0, "{err}");
    assert!(err.contains("found batch"), "{err}");
    assert!(err.contains(submitted[0].id.as_str()), "{err}");
    let all = batches(&emulator).await;
    assert_eq!(all.len(), 1, "the rerun submitted again: {err}");
    assert_eq!(all[0].id, submitted[0].id);
    assert_eq!(all[0].status, BatchStatus::Completed);
    assert_eq!(
        lesson_files(&out),
        ["M0-L001.md", "M0-L002.md", "M0-L003.md"]
    );
    let recorded = Ledger::load(&ledger).unwrap();
    assert_eq!(
        recorded
            .shards
            .iter()
            .filter_map(|shard| shard.batch_id.as_ref())
            .collect::<Vec<_>>(),
        [&submitted[0].id],
        "the new ledger records the adopted batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_removes_the_temp_files_killed_runs_left_and_nothing_else() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let output = run(generate_at(
        dir.path(),
        emulator.base_url(),
        &work,
        &out,
        &["--limit", "1"],
    ))
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let job_dir = job_file(&work, "").unwrap();
    assert!(job_dir.is_dir(), "{}", job_dir.display());

    std::fs::create_dir_all(out.join("rejected")).unwrap();
    let ours = [
        out.join(".lesson-writer-abc123.tmp"),
        out.join("rejected/.lesson-writer-def456.tmp"),
        job_dir.join(".tmpAbC123"),
        job_dir.join(".r01_input_001_output.jsonl.x1y2z3.part"),
    ];
    let theirs = [
        out.join("notes.tmp"),
        out.join(".hidden"),
        out.join("keep.md"),
        work.join("other.tmp"),
        job_dir.join("notes.txt"),
    ];
    for path in ours.iter().chain(&theirs) {
        std::fs::write(path, "left here\n").unwrap();
    }

    let mut again = generate_at(
        dir.path(),
        emulator.base_url(),
        &work,
        &out,
        &["--limit", "2"],
    );
    again.arg("-v");
    let output = run(again).await;
    let err = stderr(&output);
    assert_eq!(code(&output), 0, "{err}");
    for path in &ours {
        assert!(!path.exists(), "{} was left: {err}", path.display());
    }
    for path in &theirs {
        assert!(path.exists(), "{} was removed: {err}", path.display());
        assert_eq!(std::fs::read_to_string(path).unwrap(), "left here\n");
    }
    assert_eq!(
        err.matches("left by an interrupted run").count(),
        ours.len(),
        "{err}"
    );
    // `--limit 2` takes the next two lessons without a file.
    assert_eq!(
        lesson_files(&out),
        ["M0-L001.md", "M0-L002.md", "M0-L003.md", "keep.md"]
    );
    assert_eq!(batches(&emulator).await.len(), 2);
}

/// The first run, from `<root>/A` with relative `--work-dir work --out out`, submits and
/// returns; the rerun, from `<root>/B` with the directories `dirs(root)` gives, must attach.
async fn rerun_from_another_directory_attaches(dirs: impl Fn(&Path) -> (PathBuf, PathBuf)) {
    let emulator = emulator(slow_validation(1500)).await;
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("A"), root.path().join("B"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let mut first = generate_at(
        &a,
        emulator.base_url(),
        Path::new("work"),
        Path::new("out"),
        LIMIT_3,
    );
    first.arg("--no-wait");
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let submitted = batches(&emulator).await;
    assert_eq!(submitted.len(), 1);
    assert!(
        !submitted[0].status.is_terminal(),
        "the batch finished before the rerun"
    );
    assert!(lesson_files(&a.join("out")).is_empty());

    let (work, out) = dirs(root.path());
    let rerun = run(generate_at(&b, emulator.base_url(), &work, &out, LIMIT_3)).await;
    let err = stderr(&rerun);
    assert_eq!(code(&rerun), 0, "{err}");
    assert!(err.contains("Attaching"), "{err}");
    assert!(err.contains(submitted[0].id.as_str()), "{err}");
    assert_eq!(
        lesson_files(&a.join("out")),
        ["M0-L001.md", "M0-L002.md", "M0-L003.md"]
    );
    assert_eq!(
        batches(&emulator).await.len(),
        1,
        "the rerun submitted again"
    );
    // One job folder, in A's work dir; nothing made under B.
    assert!(job_file(&a.join("work"), "ledger.json").unwrap().is_file());
    assert_eq!(std::fs::read_dir(&b).unwrap().count(), 0, "files under B");
}

/// A fast emulator whose batches stay `validating` for `millis`.
fn slow_validation(millis: u64) -> EmulatorConfig {
    let mut config = EmulatorConfig::fast();
    config.timing.validation = Duration::from_millis(millis);
    config
}

/// A generate command on the lessons `select` chooses (`--limit N`, `--only CODES`) of the
/// Data Governance fixture, run in `cwd` with the given directories, polling fast.
fn generate(cwd: &Path, work: &Path, out: &Path, select: &[&str]) -> Command {
    let mut cmd = command("generate", cwd);
    cmd.arg("--content")
        .arg(datagov())
        .arg("--work-dir")
        .arg(work)
        .arg("--out")
        .arg(out)
        .args(select)
        .args(["--poll-interval", "0.05", "--max-poll-interval", "0.2"]);
    cmd
}

/// The same, against an emulator reached by URL with a key.
fn generate_at(cwd: &Path, base_url: &str, work: &Path, out: &Path, select: &[&str]) -> Command {
    let mut cmd = generate(cwd, work, out, select);
    cmd.args(["--base-url", base_url])
        .env("OPENAI_API_KEY", "sk-test-key");
    cmd
}

/// Starts a command with its output captured, without waiting for it.
fn spawn(command: &mut Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Waits for a spawned command off the async runtime, so the emulator keeps serving.
async fn finish(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("the binary runs"))
        .await
        .expect("the blocking task finishes")
}

/// Waits until the process `pid` has written itself into the job's lock file in `out`.
async fn wait_for_lock_holder(out: &Path, pid: u32) {
    let lock = out.join(lesson_job::LOCK_FILE);
    let started = Instant::now();
    loop {
        let holder = std::fs::read_to_string(&lock)
            .ok()
            .and_then(|text| serde_json::from_str::<lesson_job::LockHolder>(&text).ok());
        if holder.is_some_and(|holder| holder.pid == pid) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the first run never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the job's ledger in `work` records a batch.
async fn wait_for_submitted(work: &Path) {
    let started = Instant::now();
    while !job_file(work, "ledger.json")
        .and_then(|ledger| Ledger::load(&ledger).ok())
        .is_some_and(|ledger| ledger.shards.iter().any(|shard| shard.batch_id.is_some()))
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no batch was submitted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One completed batch of `n` requests on the emulator, the first `n` lessons in `out`, and
/// the `--json` reports of `runs` writing each lesson once between them.
async fn assert_one_batch_wrote_each_lesson_once(
    emulator: &batch_emulator::Emulator,
    out: &Path,
    runs: &[&Output],
    n: usize,
) {
    let all = batches(emulator).await;
    assert_eq!(all.len(), 1, "{} batches were submitted", all.len());
    assert_eq!(all[0].counts().total, n as u64);
    assert_eq!(all[0].status, BatchStatus::Completed);
    let expected: Vec<String> = (1..=n).map(|i| format!("M0-L{i:03}.md")).collect();
    assert_eq!(lesson_files(out), expected);
    let written: u64 = runs
        .iter()
        .map(|output| {
            let report: serde_json::Value = serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|err| panic!("{err}: {}", stderr(output)));
            report["written"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(written, n as u64, "lessons were written more than once");
}
