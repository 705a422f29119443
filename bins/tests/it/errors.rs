//! Errors and hints (issue 13): exit codes from the error's kind, hints that name only the
//! command's own flags and never a paying action for a typo, keys and URLs, `--json` on
//! failure, closed pipes, and the modes of the files written.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use batch_emulator::EmulatorConfig;

use crate::{
    code, command, datagov, emulator, generate_against, generate_into, job_file, run,
    run_one_line_batch, stderr, stdout, success_results_in,
};

/// `text` with the temp dir replaced (the rest, ports and ids, by [`snap!`]'s filters).
fn redacted(text: &str, dir: &Path) -> String {
    let mut text = text.to_owned();
    for spelling in [
        dir.canonicalize().unwrap().display().to_string(),
        dir.display().to_string(),
    ] {
        text = text.replace(&spelling, "[DIR]");
    }
    text
}

/// `insta::assert_snapshot!` with what changes from run to run filtered out.
macro_rules! snap {
    ($name:expr, $text:expr) => {
        insta::with_settings!({filters => vec![
            (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
            (r"batch_[0-9a-f]{8,}", "batch_[ID]"),
            (r"file-[A-Za-z0-9]{8,}", "file-[ID]"),
            (r"datagov-[0-9a-f]{8}", "datagov-[JOB]"),
            (r"req_[0-9a-f]{8,}", "req_[ID]"),
        ]}, {
            insta::assert_snapshot!($name, $text);
        })
    };
}

/// The error part of a command's stderr (from `error:` on), redacted.
fn error_text(output: &Output, dir: &Path) -> String {
    let text = stderr(output);
    let start = text.find("error:").unwrap_or(0);
    redacted(&text[start..], dir)
}

fn check_no_key(dir: &Path) -> Command {
    command("check", dir)
}

#[tokio::test]
async fn a_missing_key_names_only_the_command_s_own_flags() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(check_no_key(dir.path())).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = error_text(&output, dir.path());
    assert!(
        !text.contains("--emulator") && !text.contains("--dry-run"),
        "{text}"
    );
    snap!("check_missing_key", text);

    let mut generate = command("generate", dir.path());
    generate.args(["--content"]).arg(datagov());
    let output = run(generate).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    snap!("generate_missing_key", error_text(&output, dir.path()));
}

#[tokio::test]
async fn an_empty_key_and_a_two_line_key_file_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut empty = check_no_key(dir.path());
    empty.env("OPENAI_API_KEY", "");
    let output = run(empty).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    snap!("empty_key", error_text(&output, dir.path()));

    std::fs::write(dir.path().join("key.txt"), "sk-one\nsk-two\n").unwrap();
    let mut two_lines = check_no_key(dir.path());
    two_lines.args(["--api-key-file", "key.txt"]);
    let output = run(two_lines).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = error_text(&output, dir.path());
    assert!(!text.contains("sk-one"), "the key is shown: {text}");
    snap!("two_line_key_file", text);
}

#[tokio::test]
async fn a_wrong_key_exits_as_a_key_problem_and_json_says_so() {
    let mut config = EmulatorConfig::fast();
    config.api_key = Some("sk-right".to_owned());
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("check", dir.path());
    cmd.args(["--list", "--json", "--base-url", emulator.base_url()])
        .env("OPENAI_API_KEY", "sk-wrong");
    let output = run(cmd).await;
    // README, "Exit codes": key problems are 2.
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    snap!("wrong_key", error_text(&output, dir.path()));
    // One JSON document on stdout, even on failure.
    let document: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", stdout(&output)));
    assert_eq!(document["exit_code"], 2);
    assert_eq!(document["error"]["kind"], "key");
    snap!(
        "json_failure",
        redacted(
            &serde_json::to_string_pretty(&document).unwrap(),
            dir.path()
        )
    );
}

#[tokio::test]
async fn a_mistyped_batch_id_is_never_told_to_pay_again() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("check", dir.path());
    cmd.args([
        "batch_typo",
        "--cancel",
        "--yes",
        "--base-url",
        emulator.base_url(),
    ])
    .env("OPENAI_API_KEY", "sk-test-key");
    let output = run(cmd).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let text = error_text(&output, dir.path());
    assert!(!text.contains("--new"), "{text}");
    snap!("mistyped_batch_id", text);
}

#[tokio::test]
async fn a_key_inside_the_base_url_is_masked_and_its_query_kept() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    run_one_line_batch(
        emulator.base_url(),
        r#"{"custom_id":"one","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}}"#,
    )
    .await;
    let url = emulator
        .base_url()
        .replace("http://", "http://user:sk-in-url@")
        + "?key=sk-in-query";
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("check", dir.path());
    cmd.args(["--list", "-v", "--base-url", &url])
        .env("OPENAI_API_KEY", "sk-test-key");
    let output = run(cmd).await;
    // The query stays a query: the endpoint's path goes before it, so the listing works.
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(
        !all.contains("sk-in-url") && !all.contains("sk-in-query"),
        "{all}"
    );
    let line = stderr(&output)
        .lines()
        .find(|line| line.contains("Using the API key"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no key line in {}", stderr(&output)));
    snap!("masked_base_url", redacted(&line, dir.path()));
}

#[tokio::test]
async fn a_content_path_given_is_not_told_to_pass_content() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("generate", dir.path());
    cmd.args(["--content", "missing.md", "--dry-run"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    snap!("content_given_missing", error_text(&output, dir.path()));
}

/// A job in `dir/work` with one finished batch, through the emulator; returns its ledger.
async fn job_with_a_ledger(dir: &Path, base_url: &str) -> std::path::PathBuf {
    let mut cmd = generate_against(dir, &datagov(), "out", base_url);
    cmd.args(["--limit", "1"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    job_file(&dir.join("work"), "ledger.json").unwrap()
}

#[tokio::test]
async fn ledger_errors_get_a_hint_and_the_path_once() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = job_with_a_ledger(dir.path(), emulator.base_url()).await;
    let text = std::fs::read_to_string(&ledger).unwrap();
    let again = || {
        let mut cmd = generate_against(dir.path(), &datagov(), "out", emulator.base_url());
        cmd.args(["--limit", "2"]);
        cmd
    };
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["version"] = 99.into();
    std::fs::write(&ledger, value.to_string()).unwrap();
    let newer = run(again()).await;
    std::fs::write(&ledger, "{").unwrap();
    let damaged = run(again()).await;
    std::fs::remove_file(&ledger).unwrap();
    std::fs::create_dir(&ledger).unwrap();
    let directory = run(again()).await;
    for (name, output, exit) in [
        ("ledger_newer", &newer, 2),
        ("ledger_damaged", &damaged, 2),
        ("ledger_directory", &directory, 1),
    ] {
        assert_eq!(code(output), exit, "{name}: {}", stderr(output));
        let text = error_text(output, dir.path());
        assert_eq!(text.matches("ledger.json").count(), 1, "{name}: {text}");
        assert!(text.contains("hint:"), "{name}: {text}");
        snap!(name, text);
    }
}

#[tokio::test]
async fn a_deleted_requests_file_points_to_check_batch_status_process() {
    let mut config = EmulatorConfig::fast();
    config.timing.per_request = std::time::Duration::from_millis(400);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut submit = generate_against(dir.path(), &datagov(), "out", emulator.base_url());
    submit.args(["--limit", "1", "--no-wait"]);
    let output = run(submit).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    // The suggested command reaches the same server and work dir.
    let suggestion = stderr(&output)
        .lines()
        .find(|line| line.trim_start().starts_with("check-batch-status"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no suggestion in {}", stderr(&output)));
    assert!(suggestion.contains(emulator.base_url()), "{suggestion}");
    snap!("no_wait_suggestion", redacted(&suggestion, dir.path()));

    let work = dir.path().join("work");
    std::fs::remove_file(job_file(&work, "r01_input_001.lessons.jsonl").unwrap()).unwrap();
    let mut attach = generate_against(dir.path(), &datagov(), "out", emulator.base_url());
    attach.args(["--limit", "1"]);
    let output = run(attach).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    snap!("deleted_requests_file", error_text(&output, dir.path()));

    // The command the hint names gets the lessons out.
    let mut process = command("check", dir.path());
    process
        .args([
            "--process",
            "--wait",
            "--poll-interval",
            "1",
            "--work-dir",
            "work",
        ])
        .args(["--base-url", emulator.base_url()])
        .env("OPENAI_API_KEY", "sk-test-key");
    let output = run(process).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(crate::lesson_files(&dir.path().join("out")), ["M0-L001.md"]);
}

/// `cmd` run with stdout, or stderr, a pipe whose reading end is already closed, so its
/// first write fails with a broken pipe.
fn with_closed_pipe(mut cmd: Command, stream: &str) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    match stream {
        "stdout" => cmd.stdout(writer).stderr(Stdio::piped()),
        _ => cmd.stderr(writer).stdout(Stdio::piped()),
    };
    cmd.output().unwrap()
}

/// No panic and the quiet broken-pipe exit (141, as a shell shows for `yes | head -1`).
fn assert_quiet_stop(output: &Output, what: &str) {
    let text = format!("{}{}", stdout(output), stderr(output));
    assert!(!text.contains("panicked"), "{what}: {text}");
    assert!(!text.contains("error:"), "{what}: {text}");
    assert_eq!(code(output), 141, "{what}: {text}");
}

#[tokio::test]
async fn closed_pipes_end_every_command_quietly() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    run_one_line_batch(
        emulator.base_url(),
        r#"{"custom_id":"one","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}}"#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let base_url = emulator.base_url().to_owned();
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let dir = path.as_path();
        let mut list = command("generate", dir);
        list.arg("--content").arg(datagov()).arg("--list-lessons");
        assert_quiet_stop(&with_closed_pipe(list, "stdout"), "--list-lessons | head");

        let mut dry = generate_into(dir, &datagov(), "out");
        dry.arg("--dry-run");
        assert_quiet_stop(&with_closed_pipe(dry, "stderr"), "--dry-run 2>|closed");

        let check = |args: &[&str]| {
            let mut cmd = command("check", dir);
            cmd.args(args)
                .args(["--base-url", &base_url])
                .env("OPENAI_API_KEY", "sk-test-key");
            cmd
        };
        assert_quiet_stop(
            &with_closed_pipe(check(&["--list"]), "stdout"),
            "--list | head",
        );
        assert_quiet_stop(
            &with_closed_pipe(check(&["--list", "--json"]), "stdout"),
            "--list --json | head",
        );
        assert_quiet_stop(
            &with_closed_pipe(check(&["--list", "-v"]), "stderr"),
            "--list -v 2>|closed",
        );

        let results = success_results_in(dir);
        let process = || {
            let mut cmd = command("process", dir);
            cmd.arg(&results)
                .args(["--out", "processed", "--accept-below-spec"]);
            cmd
        };
        assert_quiet_stop(&with_closed_pipe(process(), "stderr"), "process 2>|closed");
        let mut json = process();
        json.arg("--json");
        assert_quiet_stop(&with_closed_pipe(json, "stdout"), "process --json | head");

        let emulator_bin = Command::new(env!("CARGO_BIN_EXE_batch-emulator"));
        assert_quiet_stop(
            &with_closed_pipe(emulator_bin, "stdout"),
            "batch-emulator | head",
        );
    })
    .await
    .unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn a_full_stderr_does_not_stop_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut dry = generate_into(dir.path(), &datagov(), "out");
    dry.args(["--dry-run", "--json"])
        .stderr(std::fs::File::create("/dev/full").unwrap());
    let output = run(dry).await;
    assert_eq!(code(&output), 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["requested"].is_number(), "{report}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_pipe_closed_in_the_middle_of_a_wait_ends_the_run_quietly() {
    use std::io::BufRead;
    let mut config = EmulatorConfig::fast();
    config.timing.per_request = std::time::Duration::from_millis(300);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_against(dir.path(), &datagov(), "out", emulator.base_url());
    cmd.args(["--limit", "3"]);
    let (reader, writer) = std::io::pipe().unwrap();
    cmd.stderr(writer).stdout(Stdio::null());
    let status = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let mut lines = std::io::BufReader::new(reader).lines();
        // Read until the wait begins, then go away, as `| head` does.
        for line in lines.by_ref() {
            if line.unwrap().starts_with("Step 5") {
                break;
            }
        }
        drop(lines);
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(141), "{status:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn lesson_files_respect_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    success_results_in(dir.path());
    let mut cmd = Command::new("sh");
    cmd.current_dir(dir.path())
        .arg("-c")
        .arg("umask 022 && exec \"$0\" results.jsonl --out lessons --accept-below-spec")
        .arg(env!("CARGO_BIN_EXE_process-batch-results"));
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    for name in ["lessons/M0-L001.md", "lessons/.lesson-batch.json"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{name}: {mode:o}");
    }
}

#[tokio::test]
async fn an_out_that_is_a_file_is_said_to_need_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("afile"), "").unwrap();
    let mut generate = generate_into(dir.path(), &datagov(), "afile");
    generate.arg("--dry-run");
    let output = run(generate).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = error_text(&output, dir.path());
    assert!(!text.contains("--content"), "{text}");
    snap!("generate_out_is_a_file", text);

    let mut process = command("process", dir.path());
    process
        .arg(crate::repo().join("fixtures/batch-output/success.jsonl"))
        .args(["--out", "afile"]);
    let output = run(process).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = error_text(&output, dir.path());
    assert!(!text.contains("--work-dir"), "{text}");
    snap!("process_out_is_a_file", text);
}

#[tokio::test]
async fn json_failures_cover_flags_clap_refuses_and_unreadable_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "model = 5\n").unwrap();
    for (bin, args) in [
        ("generate", &["--json", "--budget", "abc"][..]),
        ("check", &["--json", "--no-such-flag"][..]),
        ("process", &["--json"][..]),
        ("generate", &["--json", "--config", "bad.toml"][..]),
    ] {
        let mut cmd = command(bin, dir.path());
        cmd.args(args);
        let output = run(cmd).await;
        assert_eq!(code(&output), 2, "{bin} {args:?}: {}", stderr(&output));
        let document: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("{bin} {args:?}: {err}: {}", stdout(&output)));
        assert_eq!(document["exit_code"], 2, "{document}");
        assert_eq!(document["error"]["kind"], "input", "{document}");
        assert!(
            document["error"]["message"].as_str().unwrap().len() > 10,
            "{document}"
        );
    }
}
