//! File expiry (`expires_after`, the 30-day default, expired files gone) and `DELETE /files/{id}`.

use std::time::Duration;

use batch_emulator::Emulator;
use openai_batch_client::BatchStatus;
use serde_json::{Value, json};

use crate::support::*;

const HOUR: i64 = 3600;
const THIRTY_DAYS: i64 = 30 * 24 * HOUR;

/// Uploads `text` as `name` with extra form fields; returns the status and the JSON body.
async fn upload(emulator: &Emulator, fields: &[(&str, &str)], text: &str) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text((*name).to_owned(), (*value).to_owned());
    }
    let part = reqwest::multipart::Part::bytes(text.as_bytes().to_vec()).file_name("in.jsonl");
    let response = http()
        .post(format!("{}/files", emulator.base_url()))
        .bearer_auth("k")
        .multipart(form.part("file", part))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Uploads a one-request batch file with `expires_after[seconds]`, or none; returns its object.
async fn upload_expiring(emulator: &Emulator, seconds: Option<&str>) -> Value {
    let mut fields = vec![("purpose", "batch")];
    if let Some(seconds) = seconds {
        fields.push(("expires_after[anchor]", "created_at"));
        fields.push(("expires_after[seconds]", seconds));
    }
    let (status, body) = upload(emulator, &fields, &one_request()).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn one_request() -> String {
    format!(
        "{}\n",
        request_line("lesson_M0-L001", "Tables", "gpt-4o-mini")
    )
}

async fn call(emulator: &Emulator, method: reqwest::Method, path: &str) -> (u16, Value) {
    let response = http()
        .request(method, format!("{}{path}", emulator.base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn listed_ids(emulator: &Emulator) -> Vec<String> {
    let (status, page) = call(emulator, reqwest::Method::GET, "/files").await;
    assert_eq!(status, 200);
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn create_batch(emulator: &Emulator, input_file_id: &Value) -> (u16, Value) {
    let response = http()
        .post(format!("{}/batches", emulator.base_url()))
        .bearer_auth("k")
        .json(
            &json!({"input_file_id": input_file_id, "endpoint": CHAT, "completion_window": "24h"}),
        )
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn expires_after_sets_expires_at_and_batch_files_default_to_30_days() {
    let emulator = start(fast_config()).await;
    let check = |file: &Value, lifetime: Option<i64>| {
        let created_at = file["created_at"].as_i64().unwrap();
        assert_eq!(
            file["expires_at"],
            lifetime.map_or(Value::Null, |lifetime| json!(created_at + lifetime)),
            "{file}"
        );
    };
    let two_hours = upload_expiring(&emulator, Some("7200")).await;
    check(&two_hours, Some(2 * HOUR));
    let default = upload_expiring(&emulator, None).await;
    check(&default, Some(THIRTY_DAYS));
    let bounds = [("3600", HOUR), ("2592000", THIRTY_DAYS)];
    for (seconds, lifetime) in bounds {
        check(
            &upload_expiring(&emulator, Some(seconds)).await,
            Some(lifetime),
        );
    }
    // Other purposes persist until deleted, unless told otherwise.
    let (_, notes) = upload(&emulator, &[("purpose", "user_data")], "notes").await;
    check(&notes, None);
    let fields = [
        ("expires_after[seconds]", "3600"),
        ("purpose", "user_data"),
        ("expires_after[anchor]", "created_at"),
    ];
    let (_, expiring_notes) = upload(&emulator, &fields, "notes").await;
    check(&expiring_notes, Some(HOUR));
    // Retrieve shows the same.
    let id = two_hours["id"].as_str().unwrap();
    let (status, retrieved) = call(&emulator, reqwest::Method::GET, &format!("/files/{id}")).await;
    assert_eq!((status, retrieved), (200, two_hours));
}

/// Uploads with these `expires_after` fields and checks the 400 names `param` and `code`.
async fn check_invalid(
    emulator: &Emulator,
    anchor: Option<&str>,
    seconds: Option<&str>,
    param: &str,
    code: &str,
) {
    let mut fields = vec![("purpose", "batch")];
    fields.extend(anchor.map(|anchor| ("expires_after[anchor]", anchor)));
    fields.extend(seconds.map(|seconds| ("expires_after[seconds]", seconds)));
    let (status, body) = upload(emulator, &fields, &one_request()).await;
    assert_eq!(status, 400, "{fields:?}: {body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["param"], param, "{fields:?}: {body}");
    assert_eq!(body["error"]["code"], code, "{fields:?}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(param), "{message}");
}

#[tokio::test]
async fn invalid_expires_after_is_a_400_naming_the_parameter() {
    let emulator = start(fast_config()).await;
    let check =
        |anchor, seconds, param, code| check_invalid(&emulator, anchor, seconds, param, code);
    let anchor = Some("created_at");
    let seconds = "expires_after.seconds";
    check(anchor, Some("3599"), seconds, "integer_below_min_value").await;
    check(anchor, Some("2592001"), seconds, "integer_above_max_value").await;
    check(anchor, Some("an hour"), seconds, "invalid_type").await;
    check(anchor, None, seconds, "missing_required_parameter").await;
    let anchor_param = "expires_after.anchor";
    check(
        Some("last_active_at"),
        Some("3600"),
        anchor_param,
        "invalid_value",
    )
    .await;
    check(
        None,
        Some("3600"),
        anchor_param,
        "missing_required_parameter",
    )
    .await;
    // Nothing was stored.
    assert_eq!(listed_ids(&emulator).await, Vec::<String>::new());
}

#[tokio::test]
async fn an_expired_file_is_gone_like_a_deleted_one() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = fast_config();
    config.data_dir = Some(data_dir.path().to_owned());
    config.timing.validation = Duration::from_millis(300);
    let emulator = start(config).await;
    let one_hour = upload_expiring(&emulator, Some("3600")).await;
    let two_hours = upload_expiring(&emulator, Some("7200")).await;
    let thirty_days = upload_expiring(&emulator, None).await;
    let id = |file: &Value| file["id"].as_str().unwrap().to_owned();

    assert_eq!(
        listed_ids(&emulator).await,
        [id(&thirty_days), id(&two_hours), id(&one_hour)]
    );
    emulator.advance_file_clock(Duration::from_secs(3600));
    assert_eq!(
        listed_ids(&emulator).await,
        [id(&thirty_days), id(&two_hours)]
    );
    let gone = id(&one_hour);
    let not_found = json!({"error": {
        "message": format!("No such File object: {gone}"),
        "type": "invalid_request_error",
        "param": "id",
        "code": null
    }});
    for path in [format!("/files/{gone}"), format!("/files/{gone}/content")] {
        let (status, body) = call(&emulator, reqwest::Method::GET, &path).await;
        assert_eq!((status, &body), (404, &not_found), "{path}");
    }
    // A batch cannot use it, just as with a file that never existed.
    let (status, body) = create_batch(&emulator, &one_hour["id"]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        json!({
            "message": format!("Cannot find file {gone}, or organization does not have access to it."),
            "type": "invalid_request_error",
            "param": "input_file_id",
            "code": "invalid_request"
        })
    );
    // Deleting it answers 404 and removes its bytes.
    let content = data_dir
        .path()
        .join("files")
        .join(format!("{gone}.content"));
    assert!(content.exists());
    let (status, body) = call(
        &emulator,
        reqwest::Method::DELETE,
        &format!("/files/{gone}"),
    )
    .await;
    assert_eq!((status, body), (404, not_found));
    assert!(!content.exists());

    // A file that expires while its batch validates fails the batch like a missing file.
    let (status, batch) = create_batch(&emulator, &two_hours["id"]).await;
    assert_eq!(
        (status, batch["status"].clone()),
        (200, json!("validating"))
    );
    emulator.advance_file_clock(Duration::from_secs(3600));
    let client = client(&emulator);
    let batch_id = batch["id"].as_str().unwrap().into();
    let (batch, _) = wait(&client, &batch_id).await;
    assert_terminal(&batch, BatchStatus::Failed);
    let error = &batch.errors.as_ref().unwrap().data[0];
    assert_eq!(
        (error.code.as_deref(), error.param.as_deref()),
        (Some("invalid_request"), Some("file_id"))
    );
    assert_eq!(listed_ids(&emulator).await, [id(&thirty_days)]);
}

#[tokio::test]
async fn delete_answers_the_deleted_object_and_removes_the_bytes() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = fast_config();
    config.data_dir = Some(data_dir.path().to_owned());
    let emulator = start(config.clone()).await;
    let file = upload_expiring(&emulator, None).await;
    let kept = upload_expiring(&emulator, None).await;
    let id = file["id"].as_str().unwrap();
    let files_dir = data_dir.path().join("files");
    let content = files_dir.join(format!("{id}.content"));
    let record = files_dir.join(format!("{id}.json"));
    assert!(content.exists() && record.exists());

    let (status, body) = call(&emulator, reqwest::Method::DELETE, &format!("/files/{id}")).await;
    assert_eq!(
        (status, body),
        (200, json!({"id": id, "object": "file", "deleted": true}))
    );
    assert!(!content.exists() && !record.exists());
    let (status, _) = call(&emulator, reqwest::Method::GET, &format!("/files/{id}")).await;
    assert_eq!(status, 404);
    for unknown in [id, "file-unknown"] {
        let (status, body) = call(
            &emulator,
            reqwest::Method::DELETE,
            &format!("/files/{unknown}"),
        )
        .await;
        assert_eq!(status, 404, "{unknown}");
        assert_eq!(
            body["error"]["message"],
            format!("No such File object: {unknown}")
        );
    }
    let kept_id = kept["id"].as_str().unwrap().to_owned();
    assert_eq!(listed_ids(&emulator).await, std::slice::from_ref(&kept_id));

    // Still gone after a restart.
    emulator.shutdown().await;
    let emulator = start(config).await;
    assert_eq!(listed_ids(&emulator).await, [kept_id]);
}
