//! The commands in a pseudo-terminal, as a course author sees them (issue 13): the progress
//! line fits 70 and 120 columns and never wraps, with percent, time left and a completion
//! line; Ctrl-C during an upload or a download stops cleanly with the resume line and exit
//! 130; and off a terminal, or with `NO_COLOR`, no escape codes at all.

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use batch_emulator::{EmulatorConfig, Endpoint, HttpFault, HttpFaultKind, Timing};
use nix::pty::{OpenptyResult, Winsize, openpty};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{code, command, emulator, generate_against, run, stderr};

/// Eight lessons: enough requests for the counts to move while the test watches.
const OUTLINE: &str = "# M0: Basics\n\
## L001: One [F]\n## L002: Two [F]\n## L003: Three [F]\n## L004: Four [F]\n\
## L005: Five [F]\n## L006: Six [F]\n## L007: Seven [F]\n## L008: Eight [F]\n";

fn outline(dir: &Path) -> PathBuf {
    let path = dir.join("outline.md");
    std::fs::write(&path, OUTLINE).unwrap();
    path
}

/// generate `--yes` on the eight lessons of [`OUTLINE`], written into `dir`, against the
/// server at `base_url`.
fn generate_eight(dir: &Path, base_url: &str) -> Command {
    let outline = outline(dir);
    let mut cmd = generate_against(dir, &outline, "out", base_url);
    cmd.arg("--yes");
    cmd
}

/// An emulator whose first answer at `endpoint` is a server error.
fn one_server_error_at(endpoint: Endpoint) -> EmulatorConfig {
    let mut config = EmulatorConfig::fast();
    config.faults.http = vec![HttpFault {
        endpoint,
        kind: HttpFaultKind::ServerError,
        times: 1,
    }];
    config
}

/// Runs [`generate_eight`] against an emulator with `config`, `more` adding to its command;
/// asserts that it succeeds and returns its stderr.
async fn generate_eight_succeeds(
    config: EmulatorConfig,
    more: impl FnOnce(&mut Command),
) -> String {
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_eight(dir.path(), emulator.base_url());
    more(&mut cmd);
    let output = run(cmd).await;
    let err = stderr(&output);
    assert_eq!(code(&output), 0, "{err}");
    err
}

/// `command` started with a pseudo-terminal of `cols` columns as its stdin, stdout and
/// stderr, without `NO_COLOR` unless `env` sets it; returns the child and the terminal's
/// reading end.
fn spawn_in_pty(mut command: Command, cols: u16, env: &[(&str, &str)]) -> (Child, std::fs::File) {
    let size = Winsize {
        ws_row: 40,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let OpenptyResult { master, slave } = openpty(Some(&size), None).expect("a pty opens");
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    command
        .stdin(stdio(&slave))
        .stdout(stdio(&slave))
        .stderr(stdio(&slave))
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().expect("the binary starts");
    // Only the child holds the terminal's end now: reading stops when it exits.
    drop(command);
    drop(slave);
    (child, std::fs::File::from(master))
}

/// Everything the terminal shows until the child closes it (a read fails with EIO then).
fn read_all(mut master: std::fs::File) -> String {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = master.read(&mut buffer) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The screen's rows as drawn, `cols` wide: escape sequences removed, split at `\r` and `\n`
/// (a redraw starts with `\r`), then into rows of `cols` columns, since the progress library
/// pads every line it draws to the terminal's width and lets the terminal move to the next
/// row (a line wider than the terminal takes two rows or more).
fn drawn_rows(raw: &str, cols: usize) -> Vec<String> {
    let plain = console::strip_ansi_codes(raw);
    let mut rows = Vec::new();
    for segment in plain.split(['\r', '\n']) {
        let chars: Vec<char> = segment.chars().collect();
        for row in chars.chunks(cols) {
            let row: String = row.iter().collect();
            if !row.trim().is_empty() {
                rows.push(row.trim_end().to_owned());
            }
        }
    }
    rows
}

/// Runs generate against a slow emulator in a terminal `cols` wide; returns what it drew.
async fn generate_in_terminal(cols: u16) -> String {
    let mut config = EmulatorConfig::fast();
    config.timing = Timing {
        validation: Duration::from_millis(600),
        per_request: Duration::from_millis(500),
        finalizing: Duration::from_millis(300),
    };
    config.concurrency = 1;
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let cmd = generate_eight(dir.path(), emulator.base_url());
    let (raw, status) = tokio::task::spawn_blocking(move || {
        let (mut child, master) = spawn_in_pty(cmd, cols, &[]);
        let raw = read_all(master);
        (raw, child.wait().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "{raw}");
    raw
}

fn assert_progress_fits(raw: &str, cols: usize) {
    let lines = drawn_rows(raw, cols);
    let progress: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("elapsed") || line.contains(" left"))
        .collect();
    assert!(!progress.is_empty(), "no progress line in:\n{raw:?}");
    for line in &progress {
        // A progress line starts its row (spinner, id) and ends in it: a row holding the
        // rest of a wrapped one would start with anything else. A line as wide as the
        // terminal wraps on some terminals: narrower, always.
        let mut chars = line.chars();
        let (spinner, rest) = (chars.next().unwrap(), chars.as_str());
        assert!(
            !spinner.is_ascii() && rest.starts_with(" batch_"),
            "a progress line wrapped at {cols} columns: {line:?} in\n{lines:#?}"
        );
        assert!(
            console::measure_text_width(line) < cols,
            "{} columns at {cols}: {line:?}",
            console::measure_text_width(line)
        );
    }
    let has = |needle: &str| progress.iter().any(|line| line.contains(needle));
    assert!(
        progress
            .iter()
            .any(|line| line.contains("%)") && line.contains('/')),
        "no percent in {progress:#?}"
    );
    assert!(has(" left"), "no time left in {progress:#?}");
    assert!(
        !progress.iter().any(|line| line.contains("0/0")),
        "0/0 while validating in {progress:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains(" completed: 8/8 done")),
        "no completion line in {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_line_fits_70_columns_with_percent_time_left_and_completion() {
    let raw = generate_in_terminal(70).await;
    assert_progress_fits(&raw, 70);
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_line_fits_120_columns_with_percent_time_left_and_completion() {
    let raw = generate_in_terminal(120).await;
    assert_progress_fits(&raw, 120);
}

/// A server whose answer to `POST /files` or to a download never comes in time.
async fn stalling_server(stall_upload: bool) -> MockServer {
    let server = MockServer::start().await;
    let stall = Duration::from_secs(60);
    Mock::given(method("GET"))
        .and(path("/v1/batches"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "object": "list", "data": [], "has_more": false
        })))
        .mount(&server)
        .await;
    let file = serde_json::json!({
        "id": "file-in", "object": "file", "bytes": 100, "created_at": 1,
        "filename": "in.jsonl", "purpose": "batch"
    });
    let upload = ResponseTemplate::new(200).set_body_json(file);
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(if stall_upload {
            upload.set_delay(stall)
        } else {
            upload
        })
        .mount(&server)
        .await;
    let batch = serde_json::json!({
        "id": "batch_stalled", "object": "batch", "endpoint": "/v1/chat/completions",
        "input_file_id": "file-in", "completion_window": "24h", "status": "completed",
        "output_file_id": "file-out", "created_at": chrono_now(),
        "request_counts": {"total": 8, "completed": 8, "failed": 0}
    });
    Mock::given(method("POST"))
        .and(path("/v1/batches"))
        .respond_with(ResponseTemplate::new(200).set_body_json(batch.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/batches/batch_stalled$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(batch))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/files/file-out/content"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("{}\n")
                .set_delay(stall),
        )
        .mount(&server)
        .await;
    server
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Every file below `dir`, recursively.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// Runs generate against `server` (piped, not in a terminal) and sends it SIGINT once `ready`
/// says so, given the run's directory and its stderr so far; returns its exit code, stderr
/// and directory.
async fn interrupt_generate(
    server: &MockServer,
    ready: impl Fn(&Path, &str) -> bool + Send + 'static,
) -> (i32, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cmd = generate_eight(dir.path(), &format!("{}/v1", server.uri()));
    let (code, err) = interrupt_when(cmd, dir.path(), ready).await;
    (code, err, dir)
}

/// Runs `cmd` (piped, not in a terminal) and sends it SIGINT once `ready` says so, given
/// `root` and its stderr so far; returns its exit code and stderr.
async fn interrupt_when(
    mut cmd: Command,
    root: &Path,
    ready: impl Fn(&Path, &str) -> bool + Send + 'static,
) -> (i32, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let root = root.to_path_buf();
    let (status, err) = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let reader = {
            let said = said.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 1024];
                while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                    said.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            })
        };
        let started = Instant::now();
        while !ready(&root, &said.lock().unwrap()) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the step never started"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "ended before Ctrl-C: {}",
                said.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Ctrl-C, as the terminal sends it.
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        kill(pid, Signal::SIGINT).unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        let said = said.lock().unwrap().clone();
        (status, said)
    })
    .await
    .unwrap();
    (status.code().expect("exited, not killed"), err)
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_upload_stops_with_the_resume_line_and_exit_130() {
    let server = stalling_server(true).await;
    let (code, err, _dir) =
        interrupt_generate(&server, |_, said| said.contains("uploading ")).await;
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("Interrupted"), "{err}");
    assert!(
        err.contains("No batch was created yet, so nothing runs on the server"),
        "{err}"
    );
    assert!(
        err.contains("Resume (attaches, submits nothing new) with:"),
        "{err}"
    );
    let resume = err.lines().last().unwrap();
    assert!(
        resume.contains("--base-url") && resume.contains("--work-dir work"),
        "the resume line reaches the same server and work dir: {resume}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_download_keeps_no_partial_file_and_says_the_batch_ran() {
    let server = stalling_server(false).await;
    // The download's temporary file exists from the moment its request is sent.
    let (code, err, dir) = interrupt_generate(&server, |root, _| {
        files_below(root)
            .iter()
            .any(|file| file.to_string_lossy().ends_with(".part"))
    })
    .await;
    assert_eq!(code, 130, "{err}");
    assert!(
        err.contains("Resume (attaches, submits nothing new) with:"),
        "{err}"
    );
    let left: Vec<PathBuf> = files_below(dir.path())
        .into_iter()
        .filter(|file| {
            let name = file.to_string_lossy();
            name.ends_with(".part") || name.contains("_output.jsonl")
        })
        .collect();
    assert!(left.is_empty(), "partial download kept: {left:?}");
}

#[tokio::test]
async fn off_a_terminal_and_with_no_color_nothing_is_coloured() {
    // A usage error: its `error:` line is coloured only on a terminal without NO_COLOR.
    let dir = tempfile::tempdir().unwrap();
    let missing = |dir: &Path| {
        let mut cmd = command("generate", dir);
        cmd.args(["--content", "missing.md", "--dry-run"]);
        cmd
    };
    let output = run(missing(dir.path())).await;
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output)
            .lines()
            .any(|line| line.starts_with("error: ")),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains('\u{1b}'), "{:?}", stderr(&output));

    let in_terminal = move |env: &'static [(&'static str, &'static str)]| {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, master) = spawn_in_pty(missing(dir.path()), 120, env);
        let raw = read_all(master);
        assert_eq!(child.wait().unwrap().code(), Some(2), "{raw}");
        raw
    };
    let (coloured, plain) =
        tokio::task::spawn_blocking(move || (in_terminal(&[]), in_terminal(&[("NO_COLOR", "1")])))
            .await
            .unwrap();
    assert!(
        coloured.contains("\u{1b}[1m\u{1b}[31merror:\u{1b}[0m"),
        "on a terminal, error: is bold red like clap's: {coloured:?}"
    );
    assert!(plain.contains("error:"), "{plain:?}");
    assert!(
        !plain.contains('\u{1b}'),
        "NO_COLOR in a terminal: {plain:?}"
    );
}

/// Issue 13: check-batch-status retried silently for 14 s; now the retries show at once, and
/// Ctrl-C says the batch keeps running, with the command that looks again.
#[tokio::test(flavor = "multi_thread")]
async fn check_shows_the_server_unreachable_and_ctrl_c_says_the_batch_runs_on() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("check", dir.path());
    cmd.args(["batch_abc", "--wait", "--work-dir", "work", "--base-url"])
        .arg(format!("http://127.0.0.1:{port}/v1"))
        .env("OPENAI_API_KEY", "sk-test-key");
    let (code, err) = interrupt_when(cmd, dir.path(), |_, said| said.contains("retrying")).await;
    assert_eq!(code, 130, "{err}");
    let unreachable = err
        .lines()
        .find(|line| line.contains("server unreachable since "))
        .unwrap_or_else(|| panic!("no unreachable line in {err}"));
    assert!(
        unreachable.contains(", retrying (attempt 2 of "),
        "{unreachable}"
    );
    assert!(
        err.contains("Interrupted: batch batch_abc keeps running on the server"),
        "{err}"
    );
    assert!(err.contains("--base-url http://127.0.0.1:"), "{err}");
}

/// Issue 13: a retried upload was announced three times with no word about retrying.
#[tokio::test]
async fn a_retried_upload_is_announced_once_and_says_it_retries() {
    let err = generate_eight_succeeds(one_server_error_at(Endpoint::UploadFile), |_| {}).await;
    assert_eq!(err.matches("  uploading ").count(), 1, "{err}");
    // Step 6 comes between waiting and writing, once.
    assert_eq!(
        err.matches("Step 6: Downloading results").count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("  retrying upload (attempt 2 of 3): "),
        "{err}"
    );
}

/// Issue 13: `-v` showed developer logs (UTC, module paths, colour codes in a file); now the
/// tool's information lines carry the local time and no module path, and no colour off a
/// terminal.
#[tokio::test]
async fn verbose_logs_are_in_local_time_without_module_paths_or_colours() {
    // A create that fails with a 500 is looked up before it is retried, and says so in a log.
    let err = generate_eight_succeeds(one_server_error_at(Endpoint::CreateBatch), |cmd| {
        // Five hours east of UTC, as POSIX spells it.
        cmd.arg("-v").env("TZ", "XYZ-5").env_remove("RUST_LOG");
    })
    .await;
    let log = err
        .lines()
        .find(|line| line.contains("create batch failed ambiguously"))
        .unwrap_or_else(|| panic!("no log line in {err}"));
    assert!(
        !err.contains('\u{1b}'),
        "colour codes off a terminal: {log:?}"
    );
    assert!(!log.contains("openai_batch_client"), "a module path: {log}");
    let local_hour = (chrono_now() / 3600 + 5) % 24;
    let hour: i64 = log[..2]
        .parse()
        .unwrap_or_else(|_| panic!("no time first: {log}"));
    assert!(
        hour == local_hour || hour == (local_hour + 1) % 24,
        "not the local time ({local_hour}h): {log}"
    );
    assert_eq!(&log[2..3], ":", "{log}");
}
