//! Parsing real-shaped output and error lines (shapes of `openai-batch-api.md` section 4).

use batch_request::{Error, ResultLine, read_result_lines, write_result_lines};

const OUTPUT: &str = concat!(
    r##"{"id": "batch_req_6f1b4c2a9e0d4b7c8a3f5e2d1c0b9a88", "custom_id": "lesson_M0-L001", "response": {"status_code": 200, "request_id": "0c3b1a2f9d8e7c6b5a4f3e2d1c0b9a87", "body": {"id": "chatcmpl-AbC123", "object": "chat.completion", "created": 1736489777, "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "message": {"role": "assistant", "content": "# Lesson M0-L001: What Is Data Governance?\n\n## 1. Learning Objectives\n…", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}], "usage": {"prompt_tokens": 2812, "completion_tokens": 4650, "total_tokens": 7462, "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}, "service_tier": "default", "system_fingerprint": "fp_0123456789"}}, "error": null}"##,
    "\n",
    r##"{"id": "batch_req_2", "custom_id": "lesson_M0-L002", "response": {"status_code": 200, "request_id": "r2", "body": {"id": "chatcmpl-2", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "message": {"role": "assistant", "content": "# Lesson M0-L002", "refusal": null}, "finish_reason": "length"}], "usage": {"prompt_tokens": 10, "completion_tokens": 16384, "total_tokens": 16394}}}, "error": null}"##,
    "\n",
);

const ERRORS: &str = concat!(
    r#"{"id": "batch_req_3", "custom_id": "lesson_M0-L003", "response": {"status_code": 400, "request_id": "r3", "body": {"error": {"message": "Unsupported value: 'temperature' does not support 0 with this model. Only the default (1) value is supported.", "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}}, "error": null}"#,
    "\n",
    r#"{"id": "batch_req_4", "custom_id": "lesson_M0-L004", "response": {"status_code": 500, "request_id": "r4", "body": {"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}}}, "error": null}"#,
    "\n",
    r#"{"id": "batch_req_5", "custom_id": "lesson_M0-L005", "response": null, "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}"#,
    "\n",
);

fn read(text: &str) -> Vec<(usize, ResultLine)> {
    read_result_lines(text.as_bytes())
        .map(Result::unwrap)
        .collect()
}

#[test]
fn success_lines() {
    let lines = read(OUTPUT);
    assert_eq!(lines.len(), 2);
    let (line_no, first) = &lines[0];
    assert_eq!((*line_no, first.custom_id.as_str()), (1, "lesson_M0-L001"));
    let response = first.response.as_ref().unwrap();
    assert_eq!(response.status_code, 200);
    assert_eq!(
        response.body.model.as_deref(),
        Some("gpt-4o-mini-2024-07-18")
    );
    let choice = &response.body.choices[0];
    assert!(
        choice
            .message
            .content
            .as_deref()
            .unwrap()
            .starts_with("# Lesson M0-L001: What Is Data Governance?\n")
    );
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    let usage = response.body.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens()
        ),
        (2812, 4650, 1024)
    );
    assert!(first.error.is_none());
    let second = &lines[1].1;
    let response = second.response.as_ref().unwrap();
    assert_eq!(
        response.body.choices[0].finish_reason.as_deref(),
        Some("length")
    );
    assert_eq!(response.body.usage.unwrap().cached_tokens(), 0);
}

#[test]
fn error_lines_of_both_shapes() {
    let lines = read(ERRORS);
    assert_eq!(lines.len(), 3);
    let bad_request = lines[0].1.response.as_ref().unwrap();
    assert_eq!(bad_request.status_code, 400);
    let error = bad_request.body.error.as_ref().unwrap();
    assert_eq!(error.kind.as_deref(), Some("invalid_request_error"));
    assert_eq!(error.param.as_deref(), Some("temperature"));
    assert_eq!(error.code.as_deref(), Some("unsupported_value"));

    let server = lines[1].1.response.as_ref().unwrap();
    assert_eq!(server.status_code, 500);
    let error = server.body.error.as_ref().unwrap();
    assert_eq!(
        (
            error.kind.as_deref(),
            error.param.as_deref(),
            error.code.as_deref()
        ),
        (Some("server_error"), None, None)
    );

    let expired = &lines[2].1;
    assert!(expired.response.is_none());
    let error = expired.error.as_ref().unwrap();
    assert_eq!(error.code.as_deref(), Some("batch_expired"));
    assert!(
        error
            .message
            .as_deref()
            .unwrap()
            .starts_with("This request could not be executed")
    );
}

#[test]
fn minimal_and_odd_lines() {
    // Missing optional fields, unknown fields, and an unknown error code are all fine.
    let text = "{\"custom_id\":\"lesson_M0-L006\"}\n{\"custom_id\":\"lesson_M0-L007\",\"response\":null,\"error\":{\"code\":\"batch_cancelled\"},\"new_field\":[1]}\n";
    let lines = read(text);
    assert!(lines[0].1.response.is_none() && lines[0].1.error.is_none());
    assert_eq!(
        lines[1].1.error.as_ref().unwrap().code.as_deref(),
        Some("batch_cancelled")
    );
    // A line without custom_id is an error naming its line; reading goes on.
    let items: Vec<_> =
        read_result_lines("{\"id\":\"x\"}\n{\"custom_id\":\"a\"}\n".as_bytes()).collect();
    assert!(matches!(items[0], Err(Error::ParseLine { line: 1, .. })));
    assert_eq!(items[1].as_ref().unwrap().1.custom_id, "a");
}

#[test]
fn result_lines_round_trip_through_the_writer() {
    let lines: Vec<ResultLine> = read(&format!("{OUTPUT}{ERRORS}"))
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    let mut out = Vec::new();
    write_result_lines(&mut out, &lines).unwrap();
    let back: Vec<ResultLine> = read(std::str::from_utf8(&out).unwrap())
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    assert_eq!(back, lines);
}
