//! Random bytes and random JSON-ish lines never panic and never write outside the
//! output directory.

use std::path::Path;

use lesson_writer::{Input, ProcessConfig, process_inputs};
use proptest::prelude::*;

use crate::support::{curriculum, files};

/// Pieces that exercise the cleanup rules and the JSON shapes.
fn markdown_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("# Lesson M0-L001: What is data?\n".to_owned()),
        Just("```markdown\n".to_owned()),
        Just("```\n".to_owned()),
        Just("~~~\n".to_owned()),
        Just("---\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\n".to_owned()),
        Just("# LLM Prompt: x\n".to_owned()),
        Just("## **Context & Parameters**\n".to_owned()),
        Just("## **Content Output Schema\n".to_owned()),
        Just("Quality and governance notes\n".to_owned()),
        Just("## Section 1: A\n".to_owned()),
        Just("Sure! Here is the lesson:\n".to_owned()),
        Just("    indented\n".to_owned()),
        Just("> quote\n".to_owned()),
        Just("- item\n".to_owned()),
        "[ -~]{0,20}",
        "\\PC{0,10}",
    ]
}

fn content() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(
        prop::collection::vec(markdown_piece(), 0..12).prop_map(|pieces| pieces.concat()),
    )
}

fn custom_id() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..3, 0u32..5).prop_map(|(module, lesson)| format!("lesson_M{module}-L{lesson:03}")),
        (0u32..3, 0u32..5).prop_map(|(module, lesson)| format!("M{module}-L{lesson}")),
        "[a-zA-Z0-9_./\\\\-]{0,24}",
        "\\PC{0,12}",
    ]
}

fn json_line() -> impl Strategy<Value = String> {
    let finish = prop_oneof![
        Just(serde_json::json!("stop")),
        Just(serde_json::json!("length")),
        Just(serde_json::json!("content_filter")),
        Just(serde_json::json!("tool_calls")),
        Just(serde_json::Value::Null),
    ];
    let status = prop_oneof![
        Just(200u16),
        Just(400),
        Just(408),
        Just(429),
        Just(500),
        0u16..1000
    ];
    let error_code = prop_oneof![
        Just("batch_expired".to_owned()),
        Just("batch_cancelled".to_owned()),
        Just("request_timeout".to_owned()),
        "[a-z_]{0,12}",
    ];
    let answer = (custom_id(), status, content(), proptest::option::of("\\PC{0,20}"), finish, 0u64..100_000)
        .prop_map(|(id, status, content, refusal, finish, tokens)| {
            serde_json::json!({
                "id": "batch_req_1",
                "custom_id": id,
                "response": {"status_code": status, "body": {
                    "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": refusal}, "finish_reason": finish}],
                    "usage": {"prompt_tokens": tokens, "completion_tokens": tokens, "total_tokens": tokens * 2},
                    "error": {"message": "m", "type": "t", "code": null},
                }},
                "error": null,
            })
            .to_string()
        });
    let failure = (custom_id(), error_code).prop_map(|(id, code)| {
        serde_json::json!({"custom_id": id, "response": null, "error": {"code": code, "message": "m"}}).to_string()
    });
    let noise = prop_oneof![
        Just("{".to_owned()),
        Just("null".to_owned()),
        Just("{\"custom_id\": 5}".to_owned()),
        Just(
            "{\"custom_id\": \"M0-L001\", \"response\": {\"status_code\": 200, \"body\": []}}"
                .to_owned()
        ),
        "\\PC{0,40}",
    ];
    prop_oneof![4 => answer, 2 => failure, 1 => noise]
}

/// Runs on `input` and checks every file sits in the output directory or `rejected/`.
fn check_run(input: &[u8], max_line_bytes: usize) {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("a/b/out");
    let curriculum = curriculum();
    let mut config = ProcessConfig::new(&out);
    config.curriculum = Some(&curriculum);
    config.max_line_bytes = max_line_bytes;
    config.workers = 2;
    let summary = process_inputs(vec![Input::new("output.jsonl", input)], &config).unwrap();
    for name in files(root.path()).keys() {
        let rest = name
            .strip_prefix("a/b/out/")
            .unwrap_or_else(|| panic!("{name} outside out/"));
        let rest = rest.strip_prefix("rejected/").unwrap_or(rest);
        assert!(!rest.contains('/') && rest.ends_with(".md"), "{name}");
        assert!(
            lesson_writer::lesson_code(rest.trim_end_matches(".md")).is_some(),
            "{name}"
        );
    }
    assert!(summary.written as usize + summary.rejected_files as usize <= files(&out).len());
    assert!(Path::new(&out).is_dir());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..2048), cap in 1usize..300) {
        check_run(&input, cap);
    }

    #[test]
    fn random_json_lines_never_panic(lines in prop::collection::vec(json_line(), 0..12)) {
        let input = lines.join("\n");
        check_run(input.as_bytes(), 1 << 20);
    }
}
