//! Issue 12, the context window: a lesson whose request cannot fit its model's context window
//! (a 200,000-character title) stops the run before anything is sent, naming the lesson;
//! `[context_window]` in `lessons.toml` moves the limit.

use std::path::Path;
use std::process::Output;

use batch_emulator::{Emulator, EmulatorConfig};

use crate::{
    batches, code, emulator, generate_against, generate_into, job_file, lesson_files, run, stderr,
};

/// A title of 200,000 characters that the tokenizer cannot merge much.
fn huge_title() -> String {
    let mut title = String::new();
    for number in 0u32.. {
        if title.len() >= 200_000 {
            break;
        }
        title.push_str(&format!("{number:x}q"));
    }
    title.truncate(200_000);
    title
}

/// The outline the runs read, in their working directory.
const OUTLINE: &str = "outline.md";

/// An outline of three lessons whose second (line 3) has `title`.
fn write_outline(dir: &Path, title: &str) {
    let text = format!(
        "# M0: Basics — Lesson Map\n## L001: Intro [F]\n## L002: {title} [F]\n## L003: Roles [F]\n"
    );
    std::fs::write(dir.join(OUTLINE), text).unwrap();
}

/// `generate-datagov-lessons-batch` on [`OUTLINE`] in `dir` with `args`.
async fn generate(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = generate_into(dir, Path::new(OUTLINE), "out");
    cmd.args(args);
    run(cmd).await
}

/// The same, against `emulator` with the test key.
async fn generate_against_emulator(dir: &Path, emulator: &Emulator, args: &[&str]) -> Output {
    let mut cmd = generate_against(dir, Path::new(OUTLINE), "out", emulator.base_url());
    cmd.args(args);
    run(cmd).await
}

/// The request files (`*.jsonl`) anywhere under the job folder of `work`.
fn request_files(work: &Path) -> Vec<String> {
    let Some(ledger) = job_file(work, "ledger.json") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut dirs = vec![ledger.parent().unwrap().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "jsonl") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// The error names the huge lesson with its line, its tokens against the window, and a hint.
fn check_refusal(output: &Output, title: &str) {
    assert_eq!(code(output), 2, "{}", stderr(output));
    let err = stderr(output);
    assert!(
        err.contains("requests do not fit their model's context window"),
        "{err}"
    );
    let named = format!(
        "lesson M0-L002 `{}…` (200000 characters) at outline line 3: ",
        &title[..60]
    );
    assert!(err.contains(&named), "{err}");
    assert!(err.contains("+ 16384 max_completion_tokens = "), "{err}");
    assert!(
        err.contains("over the 128000-token window of gpt-4o-mini"),
        "{err}"
    );
    assert!(err.contains("hint: nothing was sent"), "{err}");
    // The message shows the title cut, not its 200,000 characters.
    assert!(err.len() < 5_000, "{} bytes of stderr", err.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_title_over_the_context_window_exits_2_naming_the_lesson_and_sends_nothing() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let title = huge_title();
    write_outline(dir.path(), &title);
    let output = generate_against_emulator(dir.path(), &emulator, &[]).await;
    check_refusal(&output, &title);
    assert!(batches(&emulator).await.is_empty(), "a batch was created");
    let work = dir.path().join("work");
    assert!(job_file(&work, "ledger.json").is_none_or(|ledger| !ledger.exists()));
    assert_eq!(request_files(&work), Vec::<String>::new());
    assert!(lesson_files(&dir.path().join("out")).is_empty());
}

#[tokio::test]
async fn a_dry_run_refuses_too_and_a_context_window_setting_lets_it_through() {
    let dir = tempfile::tempdir().unwrap();
    let title = huge_title();
    write_outline(dir.path(), &title);
    let output = generate(dir.path(), &["--dry-run"]).await;
    check_refusal(&output, &title);
    let work = dir.path().join("work");
    assert_eq!(request_files(&work), Vec::<String>::new());

    // With a larger window for the model in lessons.toml, the same dry run builds the shard.
    std::fs::write(
        dir.path().join("lessons.toml"),
        "[context_window]\ngpt-4o-mini = 2000000\n",
    )
    .unwrap();
    let output = generate(dir.path(), &["--dry-run"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let files = request_files(&work);
    assert!(
        files
            .iter()
            .any(|file| file.ends_with("dry-run_input_001.jsonl")),
        "{files:?}"
    );
}

#[tokio::test]
async fn the_built_in_emulator_run_refuses_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let title = huge_title();
    write_outline(dir.path(), &title);
    let output = generate(dir.path(), &["--emulator"]).await;
    check_refusal(&output, &title);
    let work = dir.path().join("work");
    assert!(job_file(&work, "ledger.json").is_none_or(|ledger| !ledger.exists()));
    assert_eq!(request_files(&work), Vec::<String>::new());
    assert!(lesson_files(&dir.path().join("out")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_whose_larger_budget_would_pass_the_window_is_not_sent() {
    // Every answer is cut at its budget; the retry would double max_completion_tokens from
    // 2000 to 4000, which the window set below leaves no room for.
    let mut config = EmulatorConfig::fast();
    config.faults.seed = 1;
    config.faults.length_share = 1.0;
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(OUTLINE),
        "# M0: Basics — Lesson Map\n## L001: Intro [F]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("lessons.toml"),
        "max_completion_tokens = 2000\n",
    )
    .unwrap();
    let output = generate(dir.path(), &["--dry-run", "--json"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let input = report["estimate"]["input_tokens"].as_u64().unwrap();
    std::fs::write(
        dir.path().join("lessons.toml"),
        format!(
            "max_completion_tokens = 2000\n[context_window]\ngpt-4o-mini = {}\n",
            input + 3000
        ),
    )
    .unwrap();

    let output =
        generate_against_emulator(dir.path(), &emulator, &["--retry-failed", "1", "--json"]).await;
    // The run ends as a truncated lesson does when the model allows no more: exit 3, the
    // lesson failed, one batch sent.
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["failed"][0]["lesson_code"], "M0-L001", "{report}");
    assert_eq!(report["failed"][0]["code"], "length", "{report}");
    assert_eq!(batches(&emulator).await.len(), 1);
}
