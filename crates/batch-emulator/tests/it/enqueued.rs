//! The enqueued-token limit: per model, the prompt tokens of unfinished batches; the
//! batch that would pass it fails with `token_limit_exceeded`; peaks; restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use batch_emulator::{Emulator, EmulatorConfig, EmulatorStats};
use openai_batch_client::{Batch, BatchId, BatchStatus, Client, RequestCounts};
use serde_json::{Value, json};

use crate::support::*;

const MINI: &str = "gpt-4o-mini";
const FOUR_ONE: &str = "gpt-4.1-mini";

/// `n` requests of `model`, each with a long prompt, so a file holds a few thousand tokens.
fn requests(n: usize, model: &str) -> String {
    let background = "Data on public portals comes as tables. ".repeat(100);
    (0..n)
        .map(|i| {
            let line = json!({
                "custom_id": format!("lesson_M0-L{:03}", i + 1),
                "method": "POST",
                "url": CHAT,
                "body": {
                    "model": model,
                    "messages": [
                        {"role": "system", "content": background},
                        {"role": "user", "content": "# Lesson M0-L001: Tables\n\nWrite it."}
                    ]
                }
            });
            format!("{line}\n")
        })
        .collect()
}

/// The prompt tokens of `text`, as a finished batch bills them on a fresh emulator with
/// no limit; also checks that its enqueued count was exactly that and is given back.
async fn prompt_tokens(text: &str) -> u64 {
    let emulator = start(fast_config()).await;
    let client = client(&emulator);
    let batch = run_batch(&client, text).await;
    assert_terminal(&batch, BatchStatus::Completed);
    let tokens = batch.usage.as_ref().unwrap().input_tokens;
    let model = batch.model.clone().unwrap();
    assert!(tokens > 1000, "{tokens}");
    let stats = emulator.stats();
    assert_eq!(stats.peak_enqueued_tokens, tokens_of(&[(&model, tokens)]));
    assert_eq!(stats.enqueued_tokens, BTreeMap::new());
    assert_eq!(stats.token_limit_failures, 0);
    tokens
}

fn tokens_of(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs
        .iter()
        .map(|(model, n)| ((*model).to_owned(), *n))
        .collect()
}

/// Batches stay `in_progress` for about a second: one request at a time, 250 ms each.
fn slow_config(limit: u64) -> EmulatorConfig {
    let mut config = fast_config();
    config.timing.per_request = Duration::from_millis(250);
    config.concurrency = 1;
    config.enqueued_token_limit = Some(limit);
    config
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut groups: Vec<&str> = Vec::new();
    let mut end = digits.len();
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
}

/// Checks a batch refused by the limit: `failed`, the real API's error, nothing run.
async fn check_refused(emulator: &Emulator, batch: &Batch, model: &str, limit: u64) {
    assert_terminal(batch, BatchStatus::Failed);
    assert!(batch.failed_at.is_some(), "{batch:#?}");
    assert_eq!(batch.in_progress_at, None);
    assert_eq!(batch.request_counts, Some(RequestCounts::default()));
    assert_eq!(
        (&batch.output_file_id, &batch.error_file_id),
        (&None, &None)
    );
    let raw = get_json(emulator, &format!("batches/{}", batch.id)).await;
    assert_eq!(
        raw["errors"],
        json!({
            "object": "list",
            "data": [{
                "code": "token_limit_exceeded",
                "message": format!(
                    "Enqueued token limit reached for {model} in organization org-emulator. \
                     Limit: {} enqueued tokens. Please try again once some in_progress batches \
                     have been completed.",
                    thousands(limit)
                ),
                "param": null,
                "line": null
            }]
        })
    );
}

async fn stats_over_http(emulator: &Emulator) -> Value {
    let response = http()
        .get(format!("{}/emulator/stats", emulator.base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn in_progress(client: &Client, batch_id: &BatchId) -> Batch {
    wait_until(client, batch_id, |batch| {
        batch.status == BatchStatus::InProgress
    })
    .await
}

#[tokio::test]
async fn the_batch_that_would_pass_the_limit_fails_until_one_finishes() {
    let text = requests(4, MINI);
    let tokens = prompt_tokens(&text).await;
    let limit = 2 * tokens + tokens / 2;
    let emulator = start(slow_config(limit)).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let file_id = upload_text(&client, dir.path(), "in.jsonl", &text).await;

    let first = create(&client, file_id.clone()).await;
    let second = create(&client, file_id.clone()).await;
    in_progress(&client, &first.id).await;
    in_progress(&client, &second.id).await;
    assert_eq!(emulator.enqueued_tokens(), tokens_of(&[(MINI, 2 * tokens)]));

    // The third is created like any batch, then fails at validation.
    let third = create(&client, file_id.clone()).await;
    assert_eq!(third.status, BatchStatus::Validating);
    let (third, _) = wait(&client, &third.id).await;
    check_refused(&emulator, &third, MINI, limit).await;
    assert_eq!(
        stats_over_http(&emulator).await,
        json!({
            "enqueued_tokens": {MINI: 2 * tokens},
            "peak_enqueued_tokens": {MINI: 2 * tokens},
            "token_limit_failures": 1
        })
    );

    // Once the first finishes, a new batch fits again.
    let (first, _) = wait(&client, &first.id).await;
    assert_terminal(&first, BatchStatus::Completed);
    let fourth = create(&client, file_id).await;
    let (fourth, _) = wait(&client, &fourth.id).await;
    assert_terminal(&fourth, BatchStatus::Completed);
    assert_eq!(fourth.counts().completed, 4);
    let (second, _) = wait(&client, &second.id).await;
    assert_terminal(&second, BatchStatus::Completed);

    let stats = emulator.stats();
    assert_eq!(
        stats,
        EmulatorStats {
            enqueued_tokens: BTreeMap::new(),
            peak_enqueued_tokens: tokens_of(&[(MINI, 2 * tokens)]),
            token_limit_failures: 1,
        }
    );
    assert_eq!(emulator.peak_enqueued_tokens(), stats.peak_enqueued_tokens);
    let over_http: EmulatorStats =
        serde_json::from_value(stats_over_http(&emulator).await).unwrap();
    assert_eq!(over_http, stats);
}

#[tokio::test]
async fn each_model_has_its_own_sum_and_cancelled_batches_give_theirs_back() {
    let mini = requests(4, MINI);
    let four_one = requests(4, FOUR_ONE);
    let big = requests(8, FOUR_ONE);
    let tokens = prompt_tokens(&mini).await;
    assert_eq!(
        prompt_tokens(&four_one).await,
        tokens,
        "the model is not counted"
    );
    let limit = tokens + tokens / 2;
    let emulator = start(slow_config(limit)).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let mini_file = upload_text(&client, dir.path(), "mini.jsonl", &mini).await;
    let four_one_file = upload_text(&client, dir.path(), "four_one.jsonl", &four_one).await;
    let big_file = upload_text(&client, dir.path(), "big.jsonl", &big).await;

    // A batch over the limit on its own fails with nothing else enqueued.
    let (alone, _) = wait(&client, &create(&client, big_file).await.id).await;
    check_refused(&emulator, &alone, FOUR_ONE, limit).await;

    let mini_running = create(&client, mini_file.clone()).await;
    let four_one_running = create(&client, four_one_file.clone()).await;
    in_progress(&client, &mini_running.id).await;
    in_progress(&client, &four_one_running.id).await;
    assert_eq!(
        emulator.enqueued_tokens(),
        tokens_of(&[(MINI, tokens), (FOUR_ONE, tokens)])
    );
    let (mini_refused, _) = wait(&client, &create(&client, mini_file.clone()).await.id).await;
    check_refused(&emulator, &mini_refused, MINI, limit).await;
    let (four_one_refused, _) = wait(&client, &create(&client, four_one_file).await.id).await;
    check_refused(&emulator, &four_one_refused, FOUR_ONE, limit).await;
    assert_eq!(emulator.stats().token_limit_failures, 3);

    // A cancelled batch gives its tokens back.
    client.cancel_batch(&mini_running.id).await.unwrap();
    let (cancelled, _) = wait(&client, &mini_running.id).await;
    assert_terminal(&cancelled, BatchStatus::Cancelled);
    assert_eq!(emulator.enqueued_tokens(), tokens_of(&[(FOUR_ONE, tokens)]));
    let accepted = create(&client, mini_file).await;
    in_progress(&client, &accepted.id).await;
    assert_eq!(
        emulator.peak_enqueued_tokens(),
        tokens_of(&[(MINI, tokens), (FOUR_ONE, tokens)])
    );
}

#[tokio::test]
async fn a_restart_rebuilds_the_sums_from_unfinished_batches() {
    let text = requests(4, MINI);
    let tokens = prompt_tokens(&text).await;
    let limit = tokens + tokens / 2;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = slow_config(limit);
    config.data_dir = Some(data_dir.path().to_owned());

    let emulator = start(config.clone()).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let file_id = upload_text(&client, dir.path(), "in.jsonl", &text).await;
    let running = create(&client, file_id.clone()).await;
    in_progress(&client, &running.id).await;
    let refused = create(&client, file_id.clone()).await;
    let (refused, _) = wait(&client, &refused.id).await;
    assert_terminal(&refused, BatchStatus::Failed);
    emulator.shutdown().await;

    let emulator = start(config).await;
    let client = crate::support::client(&emulator);
    // The unfinished batch is counted before the first request is served.
    assert_eq!(emulator.enqueued_tokens(), tokens_of(&[(MINI, tokens)]));
    let again = create(&client, file_id.clone()).await;
    let (again, _) = wait(&client, &again.id).await;
    check_refused(&emulator, &again, MINI, limit).await;
    // The refused batch of the first run stays refused and counts for nothing.
    assert_terminal(
        &client.retrieve_batch(&refused.id).await.unwrap(),
        BatchStatus::Failed,
    );

    let (resumed, _) = wait(&client, &running.id).await;
    assert_terminal(&resumed, BatchStatus::Completed);
    assert_eq!(emulator.enqueued_tokens(), BTreeMap::new());
    let (after, _) = wait(&client, &create(&client, file_id).await.id).await;
    assert_terminal(&after, BatchStatus::Completed);
    let stats = emulator.stats();
    assert_eq!(stats.peak_enqueued_tokens, tokens_of(&[(MINI, tokens)]));
    assert_eq!(stats.token_limit_failures, 1);
}

#[tokio::test]
async fn batches_validating_together_never_pass_the_limit() {
    let text = requests(4, MINI);
    let tokens = prompt_tokens(&text).await;
    let limit = tokens + tokens / 2;
    let emulator = start(slow_config(limit)).await;
    let client = client(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let file_id = upload_text(&client, dir.path(), "in.jsonl", &text).await;
    let created = futures::future::join_all((0..6).map(|_| create(&client, file_id.clone()))).await;
    let mut finished = Vec::new();
    for batch in &created {
        finished.push(wait(&client, &batch.id).await.0);
    }
    let completed = finished
        .iter()
        .filter(|batch| batch.status == BatchStatus::Completed)
        .count();
    assert_eq!(completed, 1, "{finished:#?}");
    for batch in finished
        .iter()
        .filter(|batch| batch.status != BatchStatus::Completed)
    {
        check_refused(&emulator, batch, MINI, limit).await;
    }
    let stats = emulator.stats();
    assert_eq!(stats.peak_enqueued_tokens, tokens_of(&[(MINI, tokens)]));
    assert_eq!(stats.token_limit_failures, 5);
}
