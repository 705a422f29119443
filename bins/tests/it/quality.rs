//! The quality gate (issue 12): answers that are no lesson are kept in `rejected/`, reported
//! `below_spec` and resubmitted once; `--accept-below-spec` writes them.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use batch_emulator::{EmulatorConfig, Responder};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{code, command, emulator, generate_against, lesson_files, repo, run, stderr, stdout};

/// A 40-word answer.
const FORTY_WORDS: &str = "Data is a set of recorded facts. Organizations collect it, store it \
    and use it to make decisions. Good data is accurate, complete and timely. Governance decides \
    who owns each data set and who may change it, and exactly when.";

/// A real lesson as an author's own template asks for it: long, with none of the built-in
/// template's sections.
fn own_lesson(code: &str, title: &str) -> String {
    format!(
        "# Lesson {code}: {title}\n\n## Overview\n\n{}\n\n## Exercises\n\n{}\n",
        "Data are recorded facts about people, things and events in the world. ".repeat(20),
        "Write down three data sets your team uses and who owns each of them. ".repeat(5)
    )
}

/// One output line whose answer is `content`.
fn result_line(code: &str, content: &str) -> String {
    let content = serde_json::to_string(content).unwrap();
    format!(
        r#"{{"custom_id":"lesson_{code}","response":{{"status_code":200,"body":{{"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":{content},"refusal":null}},"finish_reason":"stop"}}]}}}},"error":null}}"#
    ) + "\n"
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {}", stdout(output)))
}

fn failure<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|failure| failure["lesson_code"] == code)
        .unwrap_or_else(|| panic!("{code} did not fail: {report}"))
}

#[tokio::test]
async fn process_batch_results_rejects_a_forty_word_answer_unless_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    std::fs::write(
        &results,
        result_line("M0-L001", FORTY_WORDS)
            + &result_line("M0-L002", &own_lesson("M0-L002", "Kinds of data")),
    )
    .unwrap();
    let process = |extra: &[&str]| {
        let mut cmd = command("process", dir.path());
        cmd.arg(&results)
            .args(["--out", "lessons", "--json"])
            .args(extra);
        cmd
    };

    let output = run(process(&[])).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json_of(&output);
    // The template is unknown here: the long lesson without the built-in sections is written.
    assert_eq!(lesson_files(&dir.path().join("lessons")), ["M0-L002.md"]);
    assert_eq!(report["written"], 1);
    let short = failure(&report, "M0-L001");
    assert_eq!(short["kind"], "below_spec");
    assert_eq!(short["code"], "below_spec");
    assert_eq!(short["retryable"], true);
    assert!(
        short["reason"]
            .as_str()
            .unwrap()
            .contains("words, at least 200 expected"),
        "{short}"
    );
    let rejected = dir.path().join("lessons/rejected/M0-L001.md");
    assert_eq!(short["rejected_file"], "lessons/rejected/M0-L001.md");
    let kept = std::fs::read_to_string(&rejected).unwrap();
    assert!(kept.starts_with("<!-- below_spec: "), "{kept}");
    assert!(kept.contains("Data is a set of recorded facts."), "{kept}");
    let err = stderr(&output);
    assert!(
        err.contains("1 below spec: M0-L001;") && err.contains("--accept-below-spec"),
        "{err}"
    );
    let failures =
        std::fs::read_to_string(dir.path().join("results.jsonl.failures.jsonl")).unwrap();
    assert!(failures.contains(r#""kind":"below_spec""#), "{failures}");

    let output = run(process(&["--accept-below-spec"])).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(json_of(&output)["written"], 1);
    let lesson = std::fs::read_to_string(dir.path().join("lessons/M0-L001.md")).unwrap();
    assert!(
        lesson.contains("Data is a set of recorded facts."),
        "{lesson}"
    );
}

#[tokio::test]
async fn process_batch_results_checks_the_sections_the_settings_list() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    std::fs::write(
        &results,
        result_line("M0-L001", &own_lesson("M0-L001", "What is data?")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("lessons.toml"),
        "[quality]\nrequired_sections = [\"Overview\", \"Glossary\"]\n",
    )
    .unwrap();
    let mut cmd = command("process", dir.path());
    cmd.arg(&results).args(["--out", "lessons", "--json"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json_of(&output);
    let reason = failure(&report, "M0-L001")["reason"].as_str().unwrap();
    assert!(reason.contains("missing sections: Glossary"), "{reason}");
    assert!(lesson_files(&dir.path().join("lessons")).is_empty());
}

/// A three-lesson outline in `dir`.
fn outline(dir: &Path) -> PathBuf {
    let path = dir.join("outline.md");
    std::fs::write(
        &path,
        "# M0: Basics\n## L001: What is data? [F]\n## L002: Kinds of data [F]\n## L003: Owners [F]\n",
    )
    .unwrap();
    path
}

/// An emulator whose answers come from a local model that writes `own_lesson`s: real lessons,
/// but not in the built-in template's sections.
async fn emulator_answering_own_lessons() -> (MockServer, batch_emulator::Emulator) {
    let server = MockServer::start().await;
    let completion = json!({
        "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": own_lesson("M0-L001", "What is data?")}}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 300, "total_tokens": 1200}
    });
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion))
        .mount(&server)
        .await;
    let mut config = EmulatorConfig::fast();
    config.responder = Responder::Upstream {
        url: format!("{}/v1/", server.uri()),
        key: None,
        concurrency: 4,
        timeout: Duration::from_secs(10),
    };
    let emulator = emulator(config).await;
    (server, emulator)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lessons_missing_the_built_in_sections_are_resubmitted_once_then_kept_in_rejected() {
    let (server, emulator) = emulator_answering_own_lessons().await;
    let dir = tempfile::tempdir().unwrap();
    let outline = outline(dir.path());
    let mut cmd = generate_against(dir.path(), &outline, "out", emulator.base_url());
    // More rounds allowed than the gate's one resubmission.
    cmd.args(["--retry-failed", "3", "--json"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json_of(&output);
    assert_eq!(report["rounds"], 2, "{report}");
    assert_eq!(report["requests_sent"], 6, "{report}");
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
    assert!(lesson_files(&dir.path().join("out")).is_empty());
    for code in ["M0-L001", "M0-L002", "M0-L003"] {
        let failed = failure(&report, code);
        assert_eq!(failed["kind"], "below_spec");
        assert_eq!(failed["retryable"], false, "{failed}");
        let reason = failed["reason"].as_str().unwrap();
        assert!(
            reason.contains("missing sections: Learning Objectives")
                && reason.contains("not resubmitted again"),
            "{reason}"
        );
        assert!(dir.path().join(format!("out/rejected/{code}.md")).is_file());
    }

    // The same answers to an author's own (legacy) template are lessons.
    let legacy = repo().join("fixtures/legacy/lesson_prompt_template.md");
    let mut cmd = generate_against(dir.path(), &outline, "out-legacy", emulator.base_url());
    cmd.arg("--prompt").arg(&legacy).arg("--json");
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(json_of(&output)["written"], 3);
    assert_eq!(lesson_files(&dir.path().join("out-legacy")).len(), 3);

    // And --accept-below-spec writes them for the built-in template too, in one round.
    let mut cmd = generate_against(dir.path(), &outline, "out", emulator.base_url());
    cmd.args(["--accept-below-spec", "--json"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json_of(&output);
    assert_eq!(
        (report["written"].as_u64(), report["rounds"].as_u64()),
        (Some(3), Some(1))
    );
}
