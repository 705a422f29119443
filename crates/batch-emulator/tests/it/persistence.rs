//! A data directory keeps files and batches across restarts.

use std::time::Duration;

use batch_emulator::Emulator;
use openai_batch_client::BatchStatus;

use crate::support::*;

#[tokio::test]
async fn a_restarted_emulator_knows_its_files_and_batches() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = fast_config();
    config.data_dir = Some(data_dir.path().to_owned());

    let emulator = start(config.clone()).await;
    let client = client(&emulator);
    let (text, _) = lesson_requests(5);
    let done = run_batch(&client, &text).await;
    assert_terminal(&done, BatchStatus::Completed);
    let output_lines = download_lines(&client, done.output_file_id.as_ref().unwrap()).await;
    let files_before = get_json(&emulator, "files").await;
    emulator.shutdown().await;

    let emulator = start(config).await;
    let client = crate::support::client(&emulator);
    let again = client.retrieve_batch(&done.id).await.unwrap();
    assert_eq!(again, done);
    assert_eq!(
        download_lines(&client, done.output_file_id.as_ref().unwrap()).await,
        output_lines
    );
    assert_eq!(get_json(&emulator, "files").await, files_before);
    // New objects list before the old ones.
    let newer = run_batch(&client, &text).await;
    let page = client.list_batches_page(None, None).await.unwrap();
    let ids: Vec<_> = page.data.iter().map(|batch| batch.id.clone()).collect();
    assert_eq!(ids, [newer.id, done.id]);
    // Records are files on disk.
    assert!(
        data_dir
            .path()
            .join("batches")
            .join(format!("{}.json", ids[1]))
            .exists()
    );
}

#[tokio::test]
async fn an_unfinished_batch_runs_again_after_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = fast_config();
    config.data_dir = Some(data_dir.path().to_owned());
    config.timing.per_request = Duration::from_millis(200);
    config.concurrency = 1;

    let emulator = start(config.clone()).await;
    let client = client(&emulator);
    let (text, _) = lesson_requests(10);
    let dir = tempfile::tempdir().unwrap();
    let file_id = upload_text(&client, dir.path(), "in.jsonl", &text).await;
    let batch = create(&client, file_id).await;
    wait_until(&client, &batch.id, |batch| {
        batch.status == BatchStatus::InProgress
    })
    .await;
    emulator.shutdown().await;

    config.timing.per_request = Duration::from_millis(1);
    let emulator = start(config).await;
    let client = crate::support::client(&emulator);
    let (finished, _) = wait(&client, &batch.id).await;
    assert_terminal(&finished, BatchStatus::Completed);
    assert_eq!(finished.counts().completed, 10);
    assert_eq!(finished.created_at, batch.created_at);
    assert_eq!(finished.expires_at, batch.expires_at);
}

#[tokio::test]
async fn a_malformed_state_file_is_skipped_and_the_rest_still_loads() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = fast_config();
    config.data_dir = Some(data_dir.path().to_owned());
    let emulator = start(config.clone()).await;
    let client = client(&emulator);
    let (text, _) = lesson_requests(2);
    let done = run_batch(&client, &text).await;
    emulator.shutdown().await;

    // A truncated batch record, a file record of the wrong shape, garbage attempt counts.
    let broken_batch = data_dir.path().join("batches/batch_broken.json");
    std::fs::write(&broken_batch, "{\"seq\": 3, \"batch\": {\"id\": ").unwrap();
    std::fs::write(data_dir.path().join("files/file-broken.json"), "[1, 2]").unwrap();
    std::fs::write(data_dir.path().join("attempts.json"), "not json").unwrap();

    let emulator = Emulator::start(config)
        .await
        .expect("a bad record does not stop the emulator from starting");
    let client = crate::support::client(&emulator);
    assert_eq!(client.retrieve_batch(&done.id).await.unwrap(), done);
    let page = client.list_batches_page(None, None).await.unwrap();
    assert_eq!(page.data.len(), 1, "the broken batch is not listed");
    assert!(broken_batch.exists(), "the bad file is left for its owner");
    // And it keeps working.
    let again = run_batch(&client, &text).await;
    assert_terminal(&again, BatchStatus::Completed);
}
