//! Text from data (titles, file names, server messages) reaches the terminal with its control
//! characters shown escaped (`\e`, `\a`, `\b`, `\u{…}`), never raw (issue 12).

use std::path::Path;

use batch_emulator::EmulatorConfig;

use crate::{
    code, command, emulator, generate_against, generate_into, generate_on, lesson_files, run,
    stderr, stdout,
};

/// ESC[2J clears the screen, OSC 0 retitles the window, OSC 8 draws a link, BEL rings,
/// backspace rubs out, U+202E reverses what follows.
const OUTLINE: &str = "# M0: Basics \u{1b}]0;pwned\u{7}\n\
## L001: Clear\u{1b}[2J screen [F]\n\
## L002: A \u{1b}]8;;https://evil.example\u{7}fake link\u{1b}]8;;\u{7} here [F]\n\
## L003: Ring\u{7} and rub\u{8}\u{8}out [I]\n\
## L004: “Govern the Data That Matters”: café → データ ✅ [F]\n\
## L005: txt\u{202e}gpj.exe [F]\n";

/// The characters that act on a terminal; `\n` is ours and allowed.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

fn assert_shown_escaped(text: &str) {
    assert!(
        raw_controls(text).is_empty(),
        "raw control characters {:?} in:\n{}",
        raw_controls(text),
        text.escape_debug()
    );
}

fn outline_in(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, OUTLINE).unwrap();
    path
}

#[tokio::test]
async fn list_lessons_shows_escape_sequences_in_titles_escaped_and_keeps_unicode() {
    let dir = tempfile::tempdir().unwrap();
    let outline = outline_in(dir.path(), "outline.md");
    let mut cmd = generate_on(dir.path(), &outline);
    cmd.arg("--list-lessons");
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert_shown_escaped(&text);
    assert_shown_escaped(&stderr(&output));
    for shown in [
        "Basics \\e]0;pwned\\a",
        "Clear\\e[2J screen",
        "A \\e]8;;https://evil.example\\afake link\\e]8;;\\a here",
        "Ring\\a and rub\\b\\bout",
        "txt\\u{202e}gpj.exe",
        "“Govern the Data That Matters”: café → データ ✅",
    ] {
        assert!(text.contains(shown), "`{shown}` not in:\n{text}");
    }
    assert!(text.contains("Found 5 lessons across 1 modules"), "{text}");

    // --json keeps the titles as they are: serde escapes the C0 controls in the document
    // (printable and format characters such as U+202E stay as they are in JSON).
    let mut cmd = generate_on(dir.path(), &outline);
    cmd.args(["--list-lessons", "--json"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let json = stdout(&output);
    assert!(!json.contains(['\u{1b}', '\u{7}', '\u{8}']), "{json}");
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["modules"][0]["title"], "Basics \u{1b}]0;pwned\u{7}");
    assert_eq!(
        doc["modules"][0]["lessons"][0]["title"],
        "Clear\u{1b}[2J screen"
    );
}

#[tokio::test]
async fn a_dry_run_shows_file_names_with_escape_sequences_escaped_in_its_step_lines() {
    let dir = tempfile::tempdir().unwrap();
    let outline = outline_in(dir.path(), "evil\u{1b}]0;pwned\u{7}.md");
    let mut cmd = generate_into(dir.path(), &outline, "out\u{1b}[2J");
    cmd.arg("--dry-run");
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert_shown_escaped(&err);
    assert!(
        err.contains("Step 1: Parsing evil\\e]0;pwned\\a.md..."),
        "{err}"
    );
    assert!(
        err.contains("Step 2: Checking out\\e[2J for generated lessons..."),
        "{err}"
    );
    assert!(err.contains("Estimate: 5 requests"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_run_prints_no_raw_escape_sequences() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let outline = outline_in(dir.path(), "evil\u{1b}]0;pwned\u{7}.md");
    let cmd = generate_against(dir.path(), &outline, "out\u{1b}[2J", emulator.base_url());
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert_shown_escaped(&err);
    assert!(
        err.contains("Step 7: Writing lessons to ") && err.contains("/out\\e[2J...\n"),
        "{err}"
    );
    assert_eq!(lesson_files(&dir.path().join("out\u{1b}[2J")).len(), 5);
}

#[tokio::test]
async fn an_error_embedding_a_file_name_shows_its_escape_sequences_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let outline = dir.path().join("bad\u{1b}]0;pwned\u{7}.md");
    std::fs::write(
        &outline,
        "# M0: Basics\n## L001: One [F]\n## L001: Again\u{1b}[2J [F]\n",
    )
    .unwrap();
    let mut cmd = generate_on(dir.path(), &outline);
    cmd.arg("--list-lessons");
    let output = run(cmd).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert_shown_escaped(&err);
    assert!(err.contains("error: "), "{err}");
    assert!(err.contains("bad\\e]0;pwned\\a.md:3"), "{err}");
    assert!(err.contains("\nhint: "), "{err}");
}

#[tokio::test]
async fn process_batch_results_shows_server_messages_and_ids_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results\u{1b}]0;pwned\u{7}.jsonl");
    let lines = [
        serde_json::json!({
            "id": "batch_req_1",
            "custom_id": "lesson_M0-L002",
            "response": {"status_code": 400, "request_id": "r1", "body": {"error": {
                "message": "bad value\u{1b}[2J\nhint: fake line\u{7}",
                "type": "invalid_request_error",
                "param": "temperature\u{8}",
                "code": "unsupported_value"
            }}},
            "error": null
        }),
        serde_json::json!({
            "id": "batch_req_2",
            "custom_id": "lesson_M0-L001\u{1b}]0;x\u{7}",
            "response": null,
            "error": {"code": "server_error\u{1b}[31m", "message": "oops\u{1b}]8;;x\u{7}"}
        }),
    ];
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(&results, text).unwrap();
    let mut cmd = command("process", dir.path());
    cmd.arg(&results).args(["--out", "lessons"]);
    let output = run(cmd).await;
    let err = stderr(&output);
    assert_eq!(code(&output), 3, "{err}");
    assert_shown_escaped(&err);
    assert_shown_escaped(&stdout(&output));
    assert!(err.contains("results\\e]0;pwned\\a.jsonl"), "{err}");
    assert!(err.contains("M0-L002"), "{err}");
    assert!(err.contains("bad value\\e[2J"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_batch_status_shows_the_servers_metadata_and_ids_escaped() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.jsonl");
    let line = r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}}"#;
    std::fs::write(&input, format!("{line}\n")).unwrap();
    let client = openai_batch_client::Client::new(openai_batch_client::ClientConfig::new(
        emulator.base_url(),
        secrecy::SecretString::from("sk-test".to_owned()),
    ))
    .unwrap();
    let file = client
        .upload_file(&input, std::sync::Arc::new(()))
        .await
        .unwrap();
    let mut request = openai_batch_client::CreateBatchRequest::new(file.id, "/v1/chat/completions");
    // The --list table shows the `job` metadata (issue 13).
    request.metadata.insert(
        "job".to_owned(),
        "\u{1b}]0;pwned\u{7}\u{1b}]8;;https://evil.example\u{7}link\u{8}".to_owned(),
    );
    client.create_batch(&request).await.unwrap();

    let mut cmd = command("check", dir.path());
    cmd.args(["--list", "--base-url", emulator.base_url()])
        .env("OPENAI_API_KEY", "sk-test")
        .env("COLUMNS", "400");
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert_shown_escaped(&text);
    assert!(
        text.contains("\\e]0;pwned\\a\\e]8;;https://evil.example\\alink\\b"),
        "{text}"
    );
}

#[tokio::test]
async fn the_emulator_binary_shows_a_data_dir_with_escape_sequences_escaped_in_its_error() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the state directory should be: the emulator cannot start.
    let data_dir = dir.path().join("state\u{1b}]0;pwned\u{7}");
    std::fs::write(&data_dir, "not a directory").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_batch-emulator"));
    cmd.arg("--data-dir").arg(&data_dir).current_dir(dir.path());
    let output = run(cmd).await;
    let err = stderr(&output);
    // A file where a directory is needed is the user's input to fix: exit 2, naming the flag.
    assert_eq!(code(&output), 2, "{err}");
    assert!(err.contains("--data-dir"), "{err}");
    assert_shown_escaped(&err);
    assert!(err.contains("error: "), "{err}");
    assert!(err.contains("state\\e]0;pwned\\a"), "{err}");
}
