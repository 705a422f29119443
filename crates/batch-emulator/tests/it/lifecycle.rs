//! The whole lifecycle of a 336-request batch, driven by openai-batch-client.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use batch_emulator::Timing;
use openai_batch_client::BatchStatus;

use crate::support::*;

#[tokio::test]
async fn full_lifecycle_of_336_requests() {
    let mut config = fast_config();
    config.timing = Timing {
        validation: Duration::from_millis(150),
        per_request: Duration::from_millis(10),
        finalizing: Duration::from_millis(200),
    };
    let emulator = start(config).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let (text, lessons) = lesson_requests(336);
    let input_id = upload_text(&client, dir.path(), "lessons.jsonl", &text).await;

    let input = client.retrieve_file(&input_id).await.unwrap();
    assert_eq!(input.purpose, "batch");
    assert_eq!(input.filename, "lessons.jsonl");
    assert_eq!(input.bytes, text.len() as u64);
    assert_eq!(input.status.as_deref(), Some("processed"));

    let created = create(&client, input_id.clone()).await;
    assert_eq!(created.status, BatchStatus::Validating);
    assert_eq!(created.endpoint, CHAT);
    assert_eq!(created.completion_window, "24h");
    assert_eq!(created.input_file_id, input_id);
    assert_eq!(created.expires_at, Some(created.created_at + 86_400));
    assert_eq!(created.counts().total, 0);
    assert!(created.id.as_str().starts_with("batch_") && created.id.as_str().len() == 38);
    assert!(created.in_progress_at.is_none() && created.output_file_id.is_none());

    let (batch, seen) = wait(&client, &created.id).await;
    assert_terminal(&batch, BatchStatus::Completed);

    // The statuses follow the real order, and counts only rise.
    let mut statuses: Vec<BatchStatus> = seen.iter().map(|batch| batch.status).collect();
    statuses.dedup();
    assert_eq!(
        statuses,
        [
            BatchStatus::Validating,
            BatchStatus::InProgress,
            BatchStatus::Finalizing,
            BatchStatus::Completed
        ],
        "observed {statuses:?}"
    );
    let completed_counts: Vec<u64> = seen.iter().map(|batch| batch.counts().completed).collect();
    assert!(completed_counts.windows(2).all(|pair| pair[0] <= pair[1]));
    let in_progress = seen
        .iter()
        .filter(|batch| batch.status == BatchStatus::InProgress)
        .count();
    assert!(
        in_progress >= 2,
        "counts were seen rising: {completed_counts:?}"
    );
    for state in &seen {
        match state.status {
            BatchStatus::Validating => assert_eq!(state.counts().total, 0),
            _ => assert_eq!(state.counts().total, 336),
        }
    }

    // Timestamps, set at the right moments.
    let in_progress_at = batch.in_progress_at.unwrap();
    let finalizing_at = batch.finalizing_at.unwrap();
    let completed_at = batch.completed_at.unwrap();
    assert!(batch.created_at <= in_progress_at);
    assert!(in_progress_at <= finalizing_at && finalizing_at <= completed_at);
    assert_eq!(
        (
            batch.failed_at,
            batch.expired_at,
            batch.cancelling_at,
            batch.cancelled_at
        ),
        (None, None, None, None)
    );
    assert_eq!(batch.expires_at, Some(batch.created_at + 86_400));
    assert_eq!(batch.model.as_deref(), Some("gpt-4o-mini"));
    assert!(batch.errors.is_none());
    let counts = batch.counts();
    assert_eq!(
        (counts.total, counts.completed, counts.failed),
        (336, 336, 0)
    );
    assert!(batch.error_file_id.is_none(), "nothing failed");

    // The output file.
    let output_id = batch.output_file_id.clone().unwrap();
    let output = client.retrieve_file(&output_id).await.unwrap();
    assert_eq!(output.purpose, "batch_output");
    assert_eq!(output.filename, format!("{}_output.jsonl", batch.id));
    let lines = download_lines(&client, &output_id).await;
    assert_eq!(lines.len(), 336);
    let parsed = parse_result_lines(&lines);

    let titles: BTreeMap<&str, &str> = lessons
        .iter()
        .map(|(id, title)| (id.as_str(), title.as_str()))
        .collect();
    let mut line_ids = HashSet::new();
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    for (raw, line) in lines.iter().zip(&parsed) {
        let id = line.id.clone().unwrap();
        assert!(id.starts_with("batch_req_") && id.len() == 42, "{id}");
        assert!(id[10..].chars().all(|c| c.is_ascii_hexdigit()));
        assert!(line_ids.insert(id));
        assert!(raw["error"].is_null() && raw.get("error").is_some());
        let response = line.response.as_ref().unwrap();
        assert_eq!(response.status_code, 200);
        assert_eq!(response.request_id.as_ref().unwrap().len(), 32);
        assert_eq!(raw["response"]["body"]["object"], "chat.completion");
        let choice = &response.body.choices[0];
        assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
        let content = choice.message.content.as_deref().unwrap();
        let code = line.custom_id.strip_prefix("lesson_").unwrap();
        let title = titles[line.custom_id.as_str()];
        assert!(
            content.starts_with(&format!("# Lesson {code}: {title}\n")),
            "{content}"
        );
        assert!(content.contains("local batch emulator"));
        let usage = response.body.usage.unwrap();
        assert!(usage.prompt_tokens > 20 && usage.completion_tokens > 100);
        assert_eq!(
            usage.total_tokens,
            usage.prompt_tokens + usage.completion_tokens
        );
        prompt_tokens += usage.prompt_tokens;
        completion_tokens += usage.completion_tokens;
    }
    let got: Vec<&str> = parsed.iter().map(|line| line.custom_id.as_str()).collect();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    let mut expected: Vec<&str> = titles.keys().copied().collect();
    expected.sort_unstable();
    assert_eq!(sorted, expected, "each request exactly once");
    let input_order: Vec<&str> = lessons.iter().map(|(id, _)| id.as_str()).collect();
    assert_ne!(got, input_order, "output order is not input order");

    // Usage sums the responses.
    let usage = batch.usage.unwrap();
    assert_eq!(usage.input_tokens, prompt_tokens);
    assert_eq!(usage.output_tokens, completion_tokens);
    assert_eq!(usage.total_tokens, prompt_tokens + completion_tokens);
    assert_eq!(usage.input_tokens_details.unwrap().cached_tokens, 0);

    emulator.shutdown().await;
}

#[tokio::test]
async fn a_small_token_limit_finishes_with_length() {
    let emulator = start(fast_config()).await;
    let client = client(&emulator);
    let line = request_line("lesson_M0-L001", "Short", "gpt-4o-mini").replace(
        "\"max_completion_tokens\":4000",
        "\"max_completion_tokens\":12",
    );
    assert!(line.contains(":12"), "{line}");
    let batch = run_batch(&client, &format!("{line}\n")).await;
    assert_terminal(&batch, BatchStatus::Completed);
    let lines = download_lines(&client, batch.output_file_id.as_ref().unwrap()).await;
    let line = &parse_result_lines(&lines)[0];
    let body = &line.response.as_ref().unwrap().body;
    assert_eq!(body.choices[0].finish_reason.as_deref(), Some("length"));
    assert_eq!(body.usage.unwrap().completion_tokens, 12);
    assert_eq!(batch.usage.unwrap().output_tokens, 12);
}
