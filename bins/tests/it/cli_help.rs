//! Issue 13: the help texts, the flags' validation, the guards before costly actions, the
//! template checks and the paths read from `lessons.toml`, as the user sees them.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use batch_emulator::EmulatorConfig;

use crate::{
    as_pairs, batches, code, command, datagov, emulator, generate_against, generate_on, job_file,
    regex_escape, run, stderr, success_results_in,
};

/// Runs `command` with a fixed help width (clap reads COLUMNS when not on a terminal).
fn output(mut command: Command) -> Output {
    command.env("COLUMNS", "100");
    command.output().expect("the binary starts")
}

/// [`output`], asserting that the command exits with `expected`.
fn output_exiting(command: Command, expected: i32) -> Output {
    let out = output(command);
    assert_eq!(code(&out), expected, "{}", stderr(&out));
    out
}

/// Asserts that `dir` holds the one lesson file `M0-L001.md`.
fn assert_one_lesson_in(dir: &Path) {
    assert_eq!(crate::lesson_files(dir), ["M0-L001.md"]);
}

/// Redacts what changes from run to run: temp dirs, ports, batch ids.
fn filters(dir: &Path) -> Vec<(String, String)> {
    vec![
        (regex_escape(&dir.display().to_string()), "[DIR]".to_owned()),
        (r"127\.0\.0\.1:\d+".to_owned(), "[HOST]".to_owned()),
        (r"batch_[A-Za-z0-9_-]+".to_owned(), "[BATCH]".to_owned()),
    ]
}

/// The lines of `text` from the first that contains `from` on.
fn from_line(text: &str, from: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.contains(from))
        .unwrap_or_else(|| panic!("no line with {from:?} in:\n{text}"));
    lines[start..].join("\n")
}

#[test]
fn help_texts_are_grouped_with_examples_and_the_short_one_fits_a_screen() {
    let dir = tempfile::tempdir().unwrap();
    for (bin, name) in [
        ("generate", "generate-datagov-lessons-batch"),
        ("check", "check-batch-status"),
        ("process", "process-batch-results"),
    ] {
        let mut short = command(bin, dir.path());
        short.arg("-h");
        let short = output(short);
        assert_eq!(code(&short), 0);
        let short = String::from_utf8(short.stdout).unwrap();
        assert!(
            short.lines().count() <= 60,
            "{name} -h has {} lines:\n{short}",
            short.lines().count()
        );
        assert!(short.contains("Examples:"), "{short}");
        insta::assert_snapshot!(format!("{name}_short_help"), short);

        let mut long = command(bin, dir.path());
        long.arg("--help");
        let long = output(long);
        assert_eq!(code(&long), 0);
        let long = String::from_utf8(long.stdout).unwrap();
        assert!(long.contains("Exit codes:"), "{long}");
        insta::assert_snapshot!(format!("{name}_long_help"), long);
    }
}

#[test]
fn amounts_and_intervals_that_would_switch_a_guard_off_are_refused_by_clap() {
    let dir = tempfile::tempdir().unwrap();
    let mut texts = Vec::new();
    // `bin` with `args` (and the test key when `key`) exits 2; what it says is kept.
    let mut refused = |bin: &str, args: &[&str], key: bool| {
        let mut cmd = command(bin, dir.path());
        cmd.args(args);
        if key {
            cmd.env("OPENAI_API_KEY", "sk-test-key");
        }
        let out = output(cmd);
        assert_eq!(code(&out), 2, "{bin} {args:?}: {}", stderr(&out));
        texts.push(format!("$ {bin} {}\n{}", args.join(" "), stderr(&out)));
    };
    for flags in [
        &["--budget", "NaN"][..],
        &["--budget", "inf"],
        &["--budget=-1"],
        &["--confirm-above", "x"],
        &["--poll-interval", "0"],
        &["--max-poll-interval", "0"],
    ] {
        refused("generate", flags, false);
    }
    // Below 1 s, a remote server is refused before anything is done.
    refused(
        "generate",
        &[
            "--base-url",
            "https://api.example.invalid/v1",
            "--poll-interval",
            "0.5",
        ],
        true,
    );
    refused(
        "check",
        &[
            "batch_1",
            "--wait",
            "--poll-interval",
            "0.5",
            "--base-url",
            "https://api.example.invalid/v1",
        ],
        true,
    );
    insta::assert_snapshot!(texts.join("\n"));
}

#[test]
fn only_takes_lesson_codes_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_on(dir.path(), &datagov());
    cmd.args(["--only", "m0-l001,Lesson_m1-l002", "--dry-run", "--json"]);
    let out = output_exiting(cmd, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["estimate"]["requests"], 2, "{report}");
}

#[test]
fn cancel_off_a_terminal_without_yes_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("check", dir.path());
    // Port 9 (discard) on loopback: nothing may be sent anyway.
    cmd.args(["batch_1", "--cancel", "--base-url", "http://127.0.0.1:9/v1"])
        .env("OPENAI_API_KEY", "sk-test-key");
    let out = output_exiting(cmd, 2);
    insta::assert_snapshot!(stderr(&out));
}

#[test]
fn above_confirm_above_without_a_terminal_is_refused_unless_yes() {
    let dir = tempfile::tempdir().unwrap();
    let above_confirm_above = |yes: bool| {
        let mut cmd = generate_on(dir.path(), &datagov());
        cmd.args([
            "--emulator",
            "--limit",
            "2",
            "--confirm-above",
            "0",
            "--out",
            "out",
            "--work-dir",
            "work",
        ]);
        if yes {
            cmd.arg("--yes");
        }
        cmd
    };
    let out = output_exiting(above_confirm_above(false), 2);
    let err = stderr(&out);
    insta::with_settings!({filters => as_pairs(&filters(dir.path()))}, {
        insta::assert_snapshot!(from_line(&err, "error:"));
    });
    assert!(crate::lesson_files(&dir.path().join("out")).is_empty());

    output_exiting(above_confirm_above(true), 0);
    assert_eq!(crate::lesson_files(&dir.path().join("out")).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_names_the_batches_that_keep_running_and_how_to_cancel_them() {
    let mut config = EmulatorConfig::fast();
    // Long enough that the batch is still validating when --new runs.
    config.timing.validation = Duration::from_millis(4000);
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate_against(dir.path(), &datagov(), "out", emulator.base_url());
    first.args(["--limit", "2", "--no-wait"]);
    assert_eq!(code(&run(first).await), 0);
    let running = batches(&emulator).await;
    assert_eq!(running.len(), 1);

    let mut again = generate_against(dir.path(), &datagov(), "out", emulator.base_url());
    again.args(["--limit", "2", "--new", "--yes"]);
    let out = run(again).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let said: Vec<&str> = err
        .lines()
        .skip_while(|line| !line.contains("Still running on the server"))
        .take(2)
        .collect();
    assert!(
        said.len() == 2 && said[1].contains(running[0].id.as_str()),
        "{err}"
    );
    insta::with_settings!({filters => as_pairs(&filters(dir.path()))}, {
        insta::assert_snapshot!(said.join("\n"));
    });
}

#[test]
fn single_braces_warn_with_the_fix_and_all_unknown_placeholders_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("single.md"),
        "Write lesson {lesson_code}: {{lesson_title}}\nFor { audience }.\n",
    )
    .unwrap();
    let mut cmd = generate_on(dir.path(), &datagov());
    cmd.args(["--prompt", "single.md", "--dry-run", "--limit", "1"]);
    let out = output_exiting(cmd, 0);
    let warnings: Vec<String> = stderr(&out)
        .lines()
        .filter(|line| line.starts_with("warning:") && line.contains("single braces"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 2, "{}", stderr(&out));
    insta::assert_snapshot!("single_brace_warning", warnings.join("\n"));

    std::fs::write(
        dir.path().join("unknown.md"),
        "{{lesson_code}} {{titel}}\n\n{{ audeince }} and {{sektion}}\n",
    )
    .unwrap();
    let mut cmd = generate_on(dir.path(), &datagov());
    cmd.args(["--prompt", "unknown.md", "--dry-run"]);
    let out = output_exiting(cmd, 2);
    insta::assert_snapshot!(
        "all_unknown_placeholders",
        from_line(&stderr(&out), "error:")
    );
}

#[test]
fn paths_come_from_lessons_toml_relative_to_it_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(datagov(), project.join("outline.md")).unwrap();
    std::fs::write(
        project.join("lessons.toml"),
        "[paths]\ncontent = \"outline.md\"\nout = \"lessons\"\nwork_dir = \"work\"\n",
    )
    .unwrap();
    // Run from elsewhere: the paths are read from the settings file's directory.
    let generate = |more: &[&str]| {
        let mut cmd = command("generate", dir.path());
        cmd.args([
            "--config",
            "project/lessons.toml",
            "--emulator",
            "--limit",
            "1",
        ])
        .args(more);
        cmd
    };
    output_exiting(generate(&[]), 0);
    assert_one_lesson_in(&project.join("lessons"));
    assert!(job_file(&project.join("work"), "ledger.json").is_some());
    assert!(!dir.path().join("src").exists() && !dir.path().join("scripts").exists());

    // A flag wins over the settings file.
    output_exiting(generate(&["--out", "elsewhere"]), 0);
    assert_one_lesson_in(&dir.path().join("elsewhere"));

    // check-batch-status reads the work dir from the same table.
    let mut cmd = command("check", dir.path());
    cmd.args(["--config", "project/lessons.toml", "--emulator", "--json"]);
    output_exiting(cmd, 0);
}

#[test]
fn process_batch_results_takes_out_from_lessons_toml_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let results = success_results_in(dir.path());
    std::fs::write(
        dir.path().join("lessons.toml"),
        "[paths]\nout = \"from-settings\"\n",
    )
    .unwrap();
    let process = |more: &[&str]| {
        let mut cmd = command("process", dir.path());
        cmd.arg(&results).arg("--accept-below-spec").args(more);
        cmd
    };
    output_exiting(process(&[]), 0);
    assert_one_lesson_in(&dir.path().join("from-settings"));

    output_exiting(process(&["--out", "from-flag"]), 0);
    assert_one_lesson_in(&dir.path().join("from-flag"));
}
