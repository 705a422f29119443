//! The `batch-emulator` binary: stopping on SIGTERM, what it logs without `RUST_LOG`, and a
//! data directory with a malformed state file; and the built-in emulator of `generate`.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{code, datagov, generate_into, job_file, run, run_one_line_batch, stderr};

/// A `batch-emulator` started with `args`, its temp files under `tmp`, and no `RUST_LOG`.
struct Running {
    child: Child,
    base_url: String,
}

fn spawn(args: &[&str], tmp: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch-emulator"))
        .args([
            "--validation-ms",
            "10",
            "--per-request-ms",
            "2",
            "--finalizing-ms",
            "10",
        ])
        .args(args)
        .env("TMPDIR", tmp)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the emulator starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("the emulator printed no URL: {err}");
    }
    Running {
        child,
        base_url: line.trim().to_owned(),
    }
}

impl Running {
    /// Sends SIGTERM and waits for the exit; returns the status and everything on stderr.
    fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the emulator did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, err)
    }
}

/// The emulator's temp dirs (`batch-emulator-*`) under `tmp`.
fn temp_dirs(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("batch-emulator-"))
        .collect()
}

#[test]
fn sigterm_stops_it_cleanly_and_removes_its_temp_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = spawn(&[], tmp.path());
    assert!(emulator.base_url.starts_with("http://127.0.0.1:"));
    assert_eq!(
        temp_dirs(tmp.path()).len(),
        1,
        "the files live in a temp dir"
    );
    let (status, err) = emulator.terminate();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("stopping (SIGTERM)"), "{err}");
    assert_eq!(temp_dirs(tmp.path()), Vec::<String>::new(), "{err}");
}

#[test]
fn a_malformed_state_file_is_skipped_with_a_warning_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("batches")).unwrap();
    let broken = data.path().join("batches/batch_broken.json");
    std::fs::write(&broken, "{\"seq\": 1, \"batch\": ").unwrap();
    let data_dir = data.path().to_str().unwrap();
    let emulator = spawn(&["--data-dir", data_dir], tmp.path());
    let (status, err) = emulator.terminate();
    assert!(status.success(), "{status:?}: {err}");
    let warning = err
        .lines()
        .find(|line| line.contains("skipping a malformed state file"))
        .unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(&broken.display().to_string()), "{warning}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_are_logged_without_rust_log() {
    // Bind a port, then free it, so nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let tmp = tempfile::tempdir().unwrap();
    let emulator = spawn(&["--upstream", &upstream], tmp.path());

    let line = r#"{"custom_id":"lesson_M0-L001","method":"POST","url":"/v1/chat/completions","body":{"model":"llama3.2","messages":[{"role":"user","content":"Hello"}]}}"#;
    let batch = run_one_line_batch(&emulator.base_url, line).await;
    assert_eq!(batch.counts().failed, 1);

    let (status, err) = tokio::task::spawn_blocking(move || emulator.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    let logged = err
        .lines()
        .find(|line| line.contains("upstream call failed"))
        .unwrap_or_else(|| panic!("nothing logged: {err}"));
    assert!(logged.contains("INFO"), "{logged}");
    assert!(logged.contains("lesson_M0-L001"), "{logged}");
    assert!(logged.contains("upstream_unreachable"), "{logged}");
    assert!(
        logged.to_lowercase().contains("connection refused"),
        "{logged}"
    );
}

/// The built-in emulator of `generate --emulator` keeps its state in the job folder; a
/// broken record there no longer blocks the run, and the warning says which file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_with_the_emulator_skips_a_malformed_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let generate = || {
        let mut cmd = generate_into(dir.path(), &datagov(), "out");
        cmd.arg("--emulator").env_remove("RUST_LOG");
        cmd
    };
    let mut first = generate();
    first.args(["--limit", "1"]);
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let state = job_file(&dir.path().join("work"), "emulator").expect("a job folder");
    let broken = state.join("batches/batch_broken.json");
    std::fs::write(&broken, "not json").unwrap();

    let mut again = generate();
    again.args(["--limit", "2"]);
    let output = run(again).await;
    let err = stderr(&output);
    assert_eq!(code(&output), 0, "{err}");
    assert!(err.contains("skipping a malformed state file"), "{err}");
    assert!(err.contains(&broken.display().to_string()), "{err}");
}
