//! `generate-datagov-lessons-batch --preview`: a few lessons sent right away through the
//! provider's normal endpoint (OpenAI's chat completions, Anthropic's Messages API) into
//! `<out>/preview/`, with no batch, no ledger and nothing in the course (issue 14).

use std::path::Path;

use batch_emulator::EmulatorConfig;

use crate::{
    batches, code, datagov, emulator, generate_against, generate_into, run, stderr, stdout,
};

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err}): {}",
            stdout(output)
        )
    })
}

/// The names in a directory, sorted; empty when it does not exist.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Every file below `dir`, as paths relative to it.
fn files_below(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_writes_only_its_lessons_and_creates_no_batch() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_against(dir.path(), &datagov(), "out", emulator.base_url());
    cmd.args(["--preview", "M0-L001,m0-l002", "--json"]);

    let output = run(cmd).await;

    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let out = dir.path().join("out");
    assert_eq!(
        names(&out),
        ["preview"],
        "nothing in the course, no manifest"
    );
    assert_eq!(names(&out.join("preview")), ["M0-L001.md", "M0-L002.md"]);
    for code in ["M0-L001", "M0-L002"] {
        let lesson = std::fs::read_to_string(out.join(format!("preview/{code}.md"))).unwrap();
        assert!(
            lesson.starts_with(&format!("# Lesson {code}: ")),
            "{lesson}"
        );
    }
    assert!(batches(&emulator).await.is_empty(), "no batch was created");
    let work = files_below(&dir.path().join("work"));
    assert!(
        work.is_empty(),
        "no ledger, shard or other job file: {work:?}"
    );

    let report = json(&output);
    assert_eq!(report["preview"], true);
    assert_eq!(report["estimate"]["requests"], 2);
    assert_eq!(report["estimate"]["prices"], "standard");
    let expected = report["estimate"]["expected_usd"].as_f64().unwrap();
    let max = report["estimate"]["max_usd"].as_f64().unwrap();
    assert!(0.0 < expected && expected <= max, "{report}");
    let lessons = report["lessons"].as_array().unwrap();
    let codes: Vec<&str> = lessons
        .iter()
        .map(|lesson| lesson["lesson_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["M0-L001", "M0-L002"]);
    let mut sum = 0.0;
    for lesson in lessons {
        assert_eq!(lesson["status"], "written", "{lesson}");
        let path = lesson["path"].as_str().unwrap();
        assert!(
            Path::new(path).ends_with(format!(
                "preview/{}.md",
                lesson["lesson_code"].as_str().unwrap()
            )),
            "{path}"
        );
        assert!(lesson["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
        sum += lesson["cost_usd"].as_f64().unwrap();
    }
    let cost = report["cost_usd"].as_f64().unwrap();
    assert!(cost > 0.0 && (cost - sum).abs() < 1e-12, "{report}");
    assert_eq!(
        report["usage"]["prompt_tokens"].as_u64().unwrap(),
        lessons
            .iter()
            .map(|lesson| lesson["usage"]["prompt_tokens"].as_u64().unwrap())
            .sum::<u64>()
    );
    let err = stderr(&output);
    assert!(err.contains("cost at standard prices"), "{err}");
    assert!(err.contains("no batch was created"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_runs_on_the_built_in_emulator_and_leaves_no_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_into(dir.path(), &datagov(), "out");
    cmd.args(["--emulator", "--preview", "M3-L010"]);

    let output = run(cmd).await;

    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(names(&dir.path().join("out")), ["preview"]);
    assert_eq!(names(&dir.path().join("out/preview")), ["M3-L010.md"]);
    let work = files_below(&dir.path().join("work"));
    assert!(work.is_empty(), "the emulator kept nothing: {work:?}");
    let err = stderr(&output);
    assert!(
        err.contains("Sending 1 request to the chat completions endpoint"),
        "{err}"
    );
    assert!(err.contains("out/preview/M3-L010.md"), "{err}");
    assert!(err.contains("(emulator: nothing billed)"), "{err}");
    assert!(stdout(&output).is_empty(), "stdout carries only --json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_codes_are_an_input_error_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_into(dir.path(), &datagov(), "out");
    cmd.args(["--emulator", "--preview", "M0-L001,m99-l001,M98-L002"]);

    let output = run(cmd).await;

    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("M99-L001, M98-L002 are not lessons of the outline"),
        "{err}"
    );
    assert!(!err.contains("M0-L001, "), "only the unknown ones: {err}");
    assert!(!dir.path().join("out").exists(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_above_confirm_above_without_a_terminal_sends_nothing() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_against(dir.path(), &datagov(), "out", emulator.base_url());
    cmd.args(["--preview", "M0-L001", "--confirm-above", "0"]);

    let output = run(cmd).await;

    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("is above --confirm-above"), "{err}");
    assert!(!dir.path().join("out/preview").exists());
    assert!(batches(&emulator).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lesson_the_api_refuses_is_a_failure_and_exits_3() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    // The outline and related lessons name other lessons; the lesson's own message starts
    // with its heading.
    let asks_for = |code: &'static str| {
        move |request: &Request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            body["messages"]
                .as_array()
                .and_then(|messages| messages.last())
                .and_then(|message| message["content"].as_str())
                .is_some_and(|content| content.starts_with(&format!("# Lesson {code}:")))
        }
    };

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(asks_for("M0-L002"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": {
            "message": "Unsupported value: 'temperature'", "type": "invalid_request_error",
            "param": "temperature", "code": "unsupported_value"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sure! Here it is:\n\n## 1. Learning Objectives\nRead a catalog."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let base_url = format!("{}/v1", server.uri());
    let mut cmd = generate_against(dir.path(), &datagov(), "out", &base_url);
    cmd.args(["--preview", "M0-L001,M0-L002", "--json"]);

    let output = run(cmd).await;

    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    let lessons = report["lessons"].as_array().unwrap();
    assert_eq!(lessons[0]["status"], "written", "{report}");
    assert_eq!(lessons[1]["status"], "failed");
    assert_eq!(lessons[1]["failure_kind"], "invalid_request");
    assert!(
        lessons[1]["reason"]
            .as_str()
            .unwrap()
            .contains("Unsupported value"),
        "{report}"
    );
    // gpt-4o-mini at standard prices: $0.15 per 1M input, $0.60 per 1M output tokens.
    let cost = report["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - (1000.0 * 0.15 + 500.0 * 0.60) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    // Cleaned as a batch answer: the chat opening gone, the canonical heading added.
    let lesson = std::fs::read_to_string(dir.path().join("out/preview/M0-L001.md")).unwrap();
    assert!(lesson.starts_with("# Lesson M0-L001: "), "{lesson}");
    assert!(!lesson.contains("Sure!"), "{lesson}");
    assert_eq!(names(&dir.path().join("out/preview")), ["M0-L001.md"]);
    assert!(stderr(&output).contains("M0-L002 got no lesson (invalid_request)"));
}

/// The ids of the message batches the emulator knows (one page, more than a test makes).
async fn message_batches(emulator: &batch_emulator::Emulator) -> Vec<String> {
    let client = anthropic_batch_client::Client::new(anthropic_batch_client::ClientConfig::new(
        emulator.anthropic_base_url(),
        secrecy::SecretString::from("sk-ant-test-key".to_owned()),
    ))
    .unwrap();
    let params = anthropic_batch_client::ListParams {
        limit: Some(100),
        ..Default::default()
    };
    let page = client.list_batches_page(&params).await.unwrap();
    page.data
        .into_iter()
        .map(|batch| batch.id.as_str().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claude_preview_goes_to_anthropics_messages_endpoint_and_creates_no_batch() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_into(dir.path(), &datagov(), "out");
    cmd.args(["--model", "claude-sonnet-4-5", "--base-url"])
        .arg(emulator.anthropic_base_url())
        .args(["--preview", "M0-L001,M0-L002", "--json"])
        .env("ANTHROPIC_API_KEY", "sk-ant-test-key");

    let output = run(cmd).await;

    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let out = dir.path().join("out");
    assert_eq!(
        names(&out),
        ["preview"],
        "nothing in the course, no manifest"
    );
    assert_eq!(names(&out.join("preview")), ["M0-L001.md", "M0-L002.md"]);
    for code in ["M0-L001", "M0-L002"] {
        let lesson = std::fs::read_to_string(out.join(format!("preview/{code}.md"))).unwrap();
        assert!(
            lesson.starts_with(&format!("# Lesson {code}: ")),
            "{lesson}"
        );
    }
    let work = files_below(&dir.path().join("work"));
    assert!(
        work.is_empty(),
        "no ledger, shard or other job file: {work:?}"
    );
    assert!(
        message_batches(&emulator).await.is_empty(),
        "no message batch was created"
    );
    assert!(batches(&emulator).await.is_empty(), "nor an OpenAI batch");
    assert!(emulator.stats().peak_enqueued_tokens.is_empty());

    let report = json(&output);
    assert_eq!(report["model"], "claude-sonnet-4-5");
    assert_eq!(report["estimate"]["prices"], "standard");
    let lessons = report["lessons"].as_array().unwrap();
    let mut sum = 0.0;
    for lesson in lessons {
        assert_eq!(lesson["status"], "written", "{lesson}");
        assert!(lesson["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
        assert!(lesson["usage"]["completion_tokens"].as_u64().unwrap() > 0);
        sum += lesson["cost_usd"].as_f64().unwrap();
    }
    let cost = report["cost_usd"].as_f64().unwrap();
    assert!(cost > 0.0 && (cost - sum).abs() < 1e-12, "{report}");
    let err = stderr(&output);
    assert!(
        err.contains("Using the API key from ANTHROPIC_API_KEY"),
        "{err}"
    );
    assert!(
        err.contains("Sending 2 requests to Anthropic's messages endpoint"),
        "{err}"
    );
    assert!(err.contains("no batch was created"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_preview_runs_on_the_built_in_emulator_and_leaves_no_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_into(dir.path(), &datagov(), "out");
    cmd.args([
        "--emulator",
        "--provider",
        "anthropic",
        "--model",
        "claude-sonnet-4-5",
        "--preview",
        "M3-L010",
    ]);

    let output = run(cmd).await;

    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(names(&dir.path().join("out")), ["preview"]);
    assert_eq!(names(&dir.path().join("out/preview")), ["M3-L010.md"]);
    let work = files_below(&dir.path().join("work"));
    assert!(work.is_empty(), "the emulator kept nothing: {work:?}");
    let err = stderr(&output);
    assert!(
        err.contains("Sending 1 request to Anthropic's messages endpoint"),
        "{err}"
    );
    assert!(err.contains("out/preview/M3-L010.md"), "{err}");
    assert!(err.contains("(emulator: nothing billed)"), "{err}");
    assert!(stdout(&output).is_empty(), "stdout carries only --json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lesson_anthropic_refuses_is_a_failure_and_exits_3() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    let asks_for = |code: &'static str| {
        move |request: &Request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            body["messages"]
                .as_array()
                .and_then(|messages| messages.last())
                .and_then(|message| message["content"].as_str())
                .is_some_and(|content| content.starts_with(&format!("# Lesson {code}:")))
        }
    };
    // The batch's own parameters: the shared prefix a cached system block, max_tokens set,
    // nothing Anthropic does not take.
    let as_a_batch_would = |request: &Request| {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        body["model"] == "claude-sonnet-4-5"
            && body["max_tokens"].as_u64().is_some()
            && body["system"][0]["cache_control"]["type"] == "ephemeral"
            && body.get("prompt_cache_key").is_none()
            && body.get("max_completion_tokens").is_none()
    };

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(asks_for("M0-L002"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"type": "error",
            "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"},
            "request_id": "req_1"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-ant-test-key"))
        .and(header("anthropic-version", "2023-06-01"))
        .and(as_a_batch_would)
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Sure! Here it is:\n\n## 1. Learning Objectives\nRead a catalog."}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 1000, "output_tokens": 500, "service_tier": "standard"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = generate_into(dir.path(), &datagov(), "out");
    cmd.args(["--model", "claude-sonnet-4-5", "--base-url", &server.uri()])
        .args(["--preview", "M0-L001,M0-L002", "--json"])
        .env("ANTHROPIC_API_KEY", "sk-ant-test-key");

    let output = run(cmd).await;

    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    let lessons = report["lessons"].as_array().unwrap();
    assert_eq!(lessons[0]["status"], "written", "{report}");
    assert_eq!(lessons[1]["status"], "failed");
    assert_eq!(lessons[1]["failure_kind"], "invalid_request");
    assert!(
        lessons[1]["reason"]
            .as_str()
            .unwrap()
            .contains("prompt is too long"),
        "{report}"
    );
    // claude-sonnet-4-5 at standard prices: $3 per 1M input, $15 per 1M output tokens.
    let cost = report["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - (1000.0 * 3.0 + 500.0 * 15.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    let lesson = std::fs::read_to_string(dir.path().join("out/preview/M0-L001.md")).unwrap();
    assert!(lesson.starts_with("# Lesson M0-L001: "), "{lesson}");
    assert!(!lesson.contains("Sure!"), "{lesson}");
    assert_eq!(names(&dir.path().join("out")), ["preview"]);
    assert_eq!(names(&dir.path().join("out/preview")), ["M0-L001.md"]);
    assert!(stderr(&output).contains("M0-L002 got no lesson (invalid_request)"));
}
