//! `process-batch-results` on Anthropic Message Batches results (issue 14): the reference
//! doc's result lines byte for byte, Claude prices in the summary, and the approximate
//! estimate of Claude requests measured against the emulator.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anthropic_batch_client::{
    BatchRequest, BatchResult, Client, ClientConfig, CustomId, MessageParam, MessageParams,
    ProcessingStatus, SecretString, SystemPrompt, TextBlockParam,
};
use batch_emulator::EmulatorConfig;
use batch_request::{RequestSettings, Template};
use serde_json::Value;

use crate::{code, command, lesson_files, repo, run, stderr, stdout};

/// The reference doc's four result lines (`shared/reference/anthropic-message-batches.md`,
/// the JSON block of "Result lines"), kept byte for byte in the fixture.
fn reference_lines() -> Vec<String> {
    let text =
        std::fs::read_to_string(repo().join("fixtures/anthropic-results/reference.jsonl")).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 4);
    lines
}

/// `line` with its `custom_id` (`"a"` to `"d"`) set to `custom_id`, nothing else changed.
fn with_custom_id(line: &str, custom_id: &str) -> String {
    let (before, after) = line.split_once(r#""custom_id": ""#).expect("a custom_id");
    let (_, rest) = after.split_once('"').unwrap();
    let changed = format!(r#"{before}"custom_id": "{custom_id}"{rest}"#);
    assert_eq!(changed.len(), line.len() - 1 + custom_id.len(), "{changed}");
    changed
}

/// An outline of module 0 with lessons 1 to 4.
fn outline_in(dir: &Path) -> PathBuf {
    let outline = dir.join("outline.md");
    std::fs::write(
        &outline,
        "# M0: Basics — Lesson Map\n## L001: What Is Data Governance? [F]\n## L002: Data Owners [I]\n## L003: Data Stewards [I]\n## L004: Data Quality [A]\n",
    )
    .unwrap();
    outline
}

/// `process-batch-results` on `lines` (written to `dir/results.jsonl`) for the lessons of
/// `outline_in`, into `dir/<out>`, with `args`.
async fn process(dir: &Path, lines: &[String], out: &str, args: &[&str]) -> Output {
    let results = dir.join("results.jsonl");
    std::fs::write(&results, lines.join("\n") + "\n").unwrap();
    let outline = outline_in(dir);
    let mut cmd = command("process", dir);
    cmd.arg(&results)
        .arg("--content")
        .arg(&outline)
        .args(["--out", out])
        .args(args);
    run(cmd).await
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}\n{}", stdout(output), stderr(output)))
}

/// The one failure of a `--json` report, for `lesson`.
fn failure<'a>(report: &'a Value, lesson: &str) -> &'a Value {
    report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|failure| failure["lesson_code"] == lesson)
        .unwrap_or_else(|| panic!("{lesson} not failed in {report:#}"))
}

/// Every requested lesson has one outcome.
fn assert_counts_add_up(report: &Value) {
    let length = |key: &str| report[key].as_array().unwrap().len() as u64;
    let total = report["written"].as_u64().unwrap()
        + report["unchanged"].as_u64().unwrap()
        + length("kept")
        + length("failed")
        + length("missing")
        + length("pending");
    assert_eq!(total, report["requested"].as_u64().unwrap(), "{report:#}");
}

/// The reference doc's `succeeded` line, byte for byte but for its custom_id: its answer,
/// `# Lesson …`, is a heading and nothing else, so cleanup (which writes the lesson's own
/// heading) leaves no body: an empty answer, with or without `--accept-below-spec` (the
/// quality gate only sees answers with a body). Its usage is counted; its model,
/// `claude-…`, has no price.
#[tokio::test]
async fn the_reference_success_line_is_read_byte_for_byte() {
    let line = with_custom_id(&reference_lines()[0], "lesson_M0-L001");
    for args in [&["--json", "--accept-below-spec"][..], &["--json"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let output = process(dir.path(), std::slice::from_ref(&line), "lessons", args).await;
        assert_eq!(code(&output), 3, "{args:?}: {}", stderr(&output));
        let report = json(&output);
        assert_eq!(report["requested"], 4);
        assert_eq!(report["written"], 0);
        let failed = failure(&report, "M0-L001");
        assert_eq!(failed["kind"], "empty_content", "{failed:#}");
        assert_eq!(failed["code"], "empty_after_cleanup");
        assert_eq!(failed["retryable"], false);
        assert_eq!(
            report["missing"],
            serde_json::json!(["M0-L002", "M0-L003", "M0-L004"])
        );
        assert_counts_add_up(&report);
        assert_eq!(report["malformed"], serde_json::json!([]));
        let usage = &report["usage"];
        assert_eq!(
            (
                &usage["requests"],
                &usage["prompt_tokens"],
                &usage["cached_tokens"],
                &usage["completion_tokens"]
            ),
            (&1.into(), &1200.into(), &0.into(), &2400.into())
        );
        assert_eq!(report["cost_usd"]["actual"], Value::Null);
        assert!(lesson_files(&dir.path().join("lessons")).is_empty());
        assert!(!dir.path().join("lessons/rejected").exists());
    }
    // The summary a person reads.
    let dir = tempfile::tempdir().unwrap();
    let output = process(dir.path(), &[line], "lessons", &["--accept-below-spec"]).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let text = stdout(&output) + &stderr(&output);
    assert!(
        text.contains(
            "usage: 1,200 input tokens (0 cached), 2,400 output tokens; cost at batch prices: unknown"
        ),
        "{text}"
    );
}

/// The same line with a short body after the heading (only the text changed): written with
/// its heading under `--accept-below-spec`, else `below_spec` in `rejected/`.
#[tokio::test]
async fn the_reference_line_with_a_short_body_meets_the_quality_gate() {
    let line = with_custom_id(&reference_lines()[0], "lesson_M0-L001").replace(
        r##""text": "# Lesson …""##,
        r##""text": "# Lesson …\n\nData governance is how an organization decides who may do what with its data.""##,
    );
    assert!(line.contains("who may do what"), "{line}");
    let dir = tempfile::tempdir().unwrap();
    let output = process(
        dir.path(),
        std::slice::from_ref(&line),
        "lessons",
        &["--json", "--accept-below-spec"],
    )
    .await;
    // M0-L002 to M0-L004 are missing.
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["written"], 1, "{report:#}");
    assert_eq!(report["failed"], serde_json::json!([]));
    assert_counts_add_up(&report);
    assert_eq!(lesson_files(&dir.path().join("lessons")), ["M0-L001.md"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lessons/M0-L001.md")).unwrap(),
        "# Lesson M0-L001: What Is Data Governance?\n\nData governance is how an organization decides who may do what with its data.\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let output = process(dir.path(), &[line], "lessons", &["--json"]).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["written"], 0);
    let failed = failure(&report, "M0-L001");
    assert_eq!(failed["kind"], "below_spec", "{failed:#}");
    assert_eq!(failed["retryable"], true);
    assert_counts_add_up(&report);
    assert!(lesson_files(&dir.path().join("lessons")).is_empty());
    let rejected = std::fs::read_to_string(dir.path().join("lessons/rejected/M0-L001.md")).unwrap();
    assert!(rejected.starts_with("<!-- below_spec: "), "{rejected}");
    assert!(
        rejected.contains("# Lesson M0-L001: What Is Data Governance?\n\nData governance is how"),
        "{rejected}"
    );
}

/// The reference file as it is: custom ids `a` to `d` are no lesson codes, so each line is
/// reported as malformed (never a path, never a crash) and the lessons are missing.
#[tokio::test]
async fn the_untouched_reference_lines_are_invalid_custom_ids() {
    let dir = tempfile::tempdir().unwrap();
    let output = process(dir.path(), &reference_lines(), "lessons", &["--json"]).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    let malformed: Vec<&str> = report["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    assert_eq!(malformed.len(), 4, "{report:#}");
    for (index, id) in ["a", "b", "c", "d"].iter().enumerate() {
        assert!(
            malformed[index].ends_with(&format!(
                "results.jsonl:{}: custom_id `{id}` is not a lesson code (expected lesson_M0-L001 or M0-L001)",
                index + 1
            )),
            "{malformed:?}"
        );
    }
    assert_eq!(report["written"], 0);
    assert_eq!(report["missing"].as_array().unwrap().len(), 4);
    assert_counts_add_up(&report);
    assert!(!dir.path().join("lessons/a").exists());
    assert!(
        stderr(&output).contains("custom_id `a` is not a lesson code"),
        "{}",
        stderr(&output)
    );
}

/// The reference doc's errored, canceled and expired lines, with lesson custom ids.
#[tokio::test]
async fn the_other_reference_lines_give_their_failure_kinds() {
    let lines = reference_lines();
    let lines = [
        with_custom_id(&lines[1], "lesson_M0-L002"),
        with_custom_id(&lines[2], "lesson_M0-L003"),
        with_custom_id(&lines[3], "lesson_M0-L004"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let output = process(dir.path(), &lines, "lessons", &["--json"]).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    // lesson, kind, code, retryable.
    for (lesson, kind, failure_code, retryable) in [
        ("M0-L002", "invalid_request", "invalid_request_error", false),
        ("M0-L003", "cancelled", "batch_cancelled", true),
        ("M0-L004", "expired", "batch_expired", true),
    ] {
        let failed = failure(&report, lesson);
        assert_eq!(
            (&failed["kind"], &failed["code"], &failed["retryable"]),
            (&kind.into(), &failure_code.into(), &retryable.into()),
            "{failed:#}"
        );
    }
    assert_eq!(failure(&report, "M0-L002")["reason"], "HTTP 400: …");
    assert_eq!(report["missing"], serde_json::json!(["M0-L001"]));
    assert_counts_add_up(&report);
    assert_eq!(report["usage"]["requests"], 0);
}

/// A Claude model's usage is priced at Claude's Message Batches prices: claude-sonnet-4-5
/// at $1.50 input, $0.15 cache reads and $7.50 output per 1M tokens.
#[tokio::test]
async fn claude_usage_is_priced_at_claude_prices() {
    let body =
        "Data governance is how an organization decides who may do what with its data. ".repeat(20);
    let line = with_custom_id(&reference_lines()[0], "lesson_M0-L001")
        .replace("\"claude-…\"", "\"claude-sonnet-4-5-20250929\"")
        .replace(
            r##""text": "# Lesson …""##,
            &format!(r##""text": "# Lesson …\n\n{}""##, body.trim_end()),
        )
        .replace(
            r#""cache_read_input_tokens": 0"#,
            r#""cache_read_input_tokens": 3000"#,
        );
    let dir = tempfile::tempdir().unwrap();
    let output = process(
        dir.path(),
        std::slice::from_ref(&line),
        "lessons",
        &["--json"],
    )
    .await;
    let report = json(&output);
    assert_eq!(report["written"], 1, "{report:#}");
    // 1,200 input + 3,000 cache reads, 2,400 output.
    assert_eq!(report["usage"]["prompt_tokens"], 4200);
    assert_eq!(report["usage"]["cached_tokens"], 3000);
    let expected = (1200.0 * 1.50 + 3000.0 * 0.15 + 2400.0 * 7.50) / 1e6;
    let actual = report["cost_usd"]["actual"].as_f64().unwrap();
    assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");

    let dir = tempfile::tempdir().unwrap();
    let output = process(dir.path(), &[line], "lessons", &[]).await;
    let text = stdout(&output) + &stderr(&output);
    assert!(
        text.contains(
            "usage: 4,200 input tokens (3,000 cached), 2,400 output tokens; cost at batch prices: $0.02"
        ),
        "{text}"
    );
}

/// Issue 14: how the approximate estimate of Claude requests (`o200k_base` counts times 1.2)
/// compares with the usage the emulator reports for the same requests, sent as a message
/// batch. The emulator counts every model's input with `o200k_base`, with the same chat
/// overhead as the estimate, so its figure is the estimate's base: the ratio is the factor.
/// (Against the real API the ratio would show how far Claude's tokenizer is from the factor.)
#[tokio::test]
async fn the_claude_estimate_against_the_emulator() {
    let outline = crate::datagov();
    let text = std::fs::read_to_string(&outline).unwrap();
    let curriculum = curriculum_parser::parse(&text, &outline).unwrap();
    let settings = RequestSettings {
        model: "claude-sonnet-4-5".to_owned(),
        ..RequestSettings::default()
    };
    let requests = batch_request::build_requests(
        &curriculum,
        &text,
        curriculum.lessons().take(24),
        &Template::generic(),
        &settings,
    )
    .unwrap();
    let estimate = batch_request::estimate(&requests, &settings);
    assert!(estimate.approximate);
    assert_eq!(estimate.requests, 24);

    // As a message batch: the shared system message a cached block, the lesson's part the
    // user message.
    let batch_requests: Vec<BatchRequest> = requests
        .iter()
        .map(|request| {
            let body = &request.request.body;
            let system = body
                .messages
                .iter()
                .filter(|message| message.role == "system")
                .map(|message| TextBlockParam::cached(message.content.clone()))
                .collect::<Vec<_>>();
            let messages = body
                .messages
                .iter()
                .filter(|message| message.role == "user")
                .map(|message| MessageParam::user(message.content.clone()))
                .collect();
            BatchRequest {
                custom_id: CustomId::new(&request.request.custom_id).unwrap(),
                params: MessageParams {
                    model: body.model.clone(),
                    max_tokens: 4096,
                    system: (!system.is_empty()).then_some(SystemPrompt::Blocks(system)),
                    messages,
                    extra: Default::default(),
                },
            }
        })
        .collect();
    let emulator = crate::emulator(EmulatorConfig::fast()).await;
    let client = Client::new(ClientConfig::new(
        emulator.anthropic_base_url(),
        SecretString::from("sk-ant-test"),
    ))
    .unwrap();
    let mut batch = client.create_batch(&batch_requests).await.unwrap();
    for _ in 0..1000 {
        if batch.processing_status == ProcessingStatus::Ended {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        batch = client.retrieve_batch(&batch.id).await.unwrap();
    }
    assert_eq!(batch.processing_status, ProcessingStatus::Ended);
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    client.download_results_to(&batch, &results).await.unwrap();
    let file = std::io::BufReader::new(std::fs::File::open(&results).unwrap());
    let (mut served, mut cache_reads, mut n_results) = (0, 0, 0);
    for line in anthropic_batch_client::read_results(file) {
        let BatchResult::Succeeded { message } = line.unwrap().result else {
            panic!("a request of the batch did not succeed");
        };
        let usage = &message.usage;
        served += usage.input_tokens
            + usage.cache_creation_input_tokens.unwrap_or(0)
            + usage.cache_read_input_tokens.unwrap_or(0);
        cache_reads += usage.cache_read_input_tokens.unwrap_or(0);
        n_results += 1;
    }
    assert_eq!(n_results, 24);
    let ratio = estimate.input_tokens as f64 / served as f64;
    eprintln!(
        "24 datagov lessons for claude-sonnet-4-5: estimate {} input tokens (approximate), the emulator's usage {served} (o200k_base), ratio {ratio:.4}; cache reads {cache_reads}, estimated cache hits {}",
        estimate.input_tokens, estimate.cached_input_tokens
    );
    // Each message's count is scaled and rounded up, the reply priming is not.
    assert!((1.19..=1.21).contains(&ratio), "{ratio}");
}

/// Issue 14: a dry run for a Claude model says its estimate is approximate, in the text and
/// in `--json`; one for an OpenAI model does not.
#[tokio::test]
async fn a_claude_dry_run_says_its_estimate_is_approximate() {
    let dir = tempfile::tempdir().unwrap();
    let note = "(approximate: Claude's tokenizer is not public)";
    let mut cmd = crate::generate_into(dir.path(), &crate::datagov(), "claude");
    cmd.args(["--model", "claude-sonnet-4-5", "--dry-run"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output) + &stderr(&output);
    let estimate_line = text
        .lines()
        .find(|line| line.starts_with("Estimate: 336 requests, "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(estimate_line.ends_with(note), "{estimate_line}");
    let cost_line = text
        .lines()
        .find(|line| line.starts_with("  cost at batch prices: expected $"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(cost_line.ends_with(note), "{cost_line}");

    let mut cmd = crate::generate_into(dir.path(), &crate::datagov(), "claude");
    cmd.args(["--model", "claude-sonnet-4-5", "--dry-run", "--json"]);
    let claude = json(&run(cmd).await);
    assert_eq!(claude["estimate"]["approximate"], true, "{claude:#}");
    let mut cmd = crate::generate_into(dir.path(), &crate::datagov(), "openai");
    cmd.args(["--model", "gpt-4o-mini", "--dry-run", "--json"]);
    let openai = json(&run(cmd).await);
    assert_eq!(openai["estimate"]["approximate"], false, "{openai:#}");
    // The same prompts: Claude's estimate is o200k_base's times 1.2.
    let ratio = claude["estimate"]["input_tokens"].as_f64().unwrap()
        / openai["estimate"]["input_tokens"].as_f64().unwrap();
    assert!((1.19..=1.21).contains(&ratio), "{ratio}");

    let mut cmd = crate::generate_into(dir.path(), &crate::datagov(), "openai");
    cmd.args(["--model", "gpt-4o-mini", "--dry-run"]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output) + &stderr(&output);
    assert!(text.contains("Estimate: 336 requests, "), "{text}");
    assert!(!text.contains("approximate"), "{text}");
}
