//! The Files API: upload (multipart, streamed to disk, with `expires_after`), retrieve,
//! content, delete, list. An expired file is gone, as if deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Multipart, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use openai_batch_client::{DeletedFile, FileId, FileObject, ListPage};
use tokio::io::AsyncWriteExt;

use crate::api_error::ApiFailure;
use crate::ids;
use crate::server::{CutDownload, Shared, cut_body};
use crate::store::Order;

/// Purposes the real API accepts for upload.
const PURPOSES: [&str; 6] = [
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];
/// The real API's limit for one file of any purpose: 512 MB.
pub(crate) const MAX_ANY_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// `purpose=batch` files expire after 30 days unless `expires_after` says otherwise.
const BATCH_FILE_LIFETIME: i64 = 30 * 24 * 60 * 60;
/// The range of `expires_after[seconds]`: 1 hour to 30 days.
const EXPIRES_AFTER_SECONDS: std::ops::RangeInclusive<i64> = 3600..=2_592_000;

/// `POST /files`.
pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<FileObject>, ApiFailure> {
    let mut multipart = multipart.map_err(|rejection| {
        ApiFailure::bad_request(
            format!("Invalid multipart body: {}.", rejection.body_text()),
            None,
            None,
        )
    })?;
    let any_limit = shared.config.max_file_bytes.max(MAX_ANY_FILE_BYTES);
    let mut purpose: Option<String> = None;
    let mut anchor: Option<String> = None;
    let mut seconds: Option<String> = None;
    let mut upload: Option<(String, tempfile::TempPath, u64)> = None;
    let mut too_big: Option<u64> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or("") {
            "purpose" => purpose = Some(field.text().await.map_err(multipart_error)?),
            // Checked once the whole body is read, so the client reads the error answer.
            "expires_after[anchor]" => anchor = Some(field.text().await.map_err(multipart_error)?),
            "expires_after[seconds]" => {
                seconds = Some(field.text().await.map_err(multipart_error)?);
            }
            "file" => {
                let filename = field.file_name().unwrap_or("upload").to_owned();
                let temp = shared
                    .store
                    .temp_file()
                    .map_err(|_| ApiFailure::internal("cannot create a temp file"))?;
                let (file, path) = temp.into_parts();
                let mut file = tokio::io::BufWriter::with_capacity(
                    256 * 1024,
                    tokio::fs::File::from_std(file),
                );
                // When `purpose` came first, a batch input stops at its own limit.
                let limit = if purpose.as_deref() == Some("batch") {
                    shared.config.max_file_bytes
                } else {
                    any_limit
                };
                let mut bytes: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    bytes += chunk.len() as u64;
                    if bytes > any_limit {
                        return Err(too_large(limit));
                    }
                    // Past the limit the rest is read and dropped, so the client still
                    // reads the error answer rather than a reset connection.
                    if bytes <= limit {
                        file.write_all(&chunk)
                            .await
                            .map_err(|_| ApiFailure::internal("cannot write the upload"))?;
                    }
                }
                if bytes > limit {
                    too_big = Some(limit);
                }
                file.flush()
                    .await
                    .map_err(|_| ApiFailure::internal("cannot write the upload"))?;
                upload = Some((filename, path, bytes));
            }
            // Other fields are read and ignored.
            _ => while field.chunk().await.map_err(multipart_error)?.is_some() {},
        }
    }
    if let Some(limit) = too_big {
        return Err(too_large(limit));
    }
    let purpose = purpose.ok_or_else(|| ApiFailure::missing("purpose"))?;
    let (filename, path, bytes) = upload.ok_or_else(|| ApiFailure::missing("file"))?;
    let expires_after = check_expires_after(anchor.as_deref(), seconds.as_deref())?;
    if !PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiFailure::bad_request(
            format!(
                "Invalid value: '{purpose}'. Supported values are: 'assistants', 'batch', \
                 'fine-tune', 'vision', 'user_data', and 'evals'."
            ),
            Some("purpose"),
            Some("invalid_value"),
        ));
    }
    if purpose == "batch" {
        if bytes > shared.config.max_file_bytes {
            return Err(too_large(shared.config.max_file_bytes));
        }
        // The content counts, not the name: the official SDK names a raw-bytes upload `upload`.
        let content = path.to_path_buf();
        let jsonl = tokio::task::spawn_blocking(move || is_jsonl(&content))
            .await
            .map_err(|_| ApiFailure::internal("cannot read the upload"))?
            .map_err(|_| ApiFailure::internal("cannot read the upload"))?;
        if !jsonl {
            return Err(ApiFailure::bad_request(
                "Invalid file format for Batch API. Must be .jsonl",
                Some("file"),
                Some("invalid_file_format"),
            ));
        }
    }
    let created_at = ids::now();
    let expires_at = match (expires_after, purpose.as_str()) {
        (Some(seconds), _) => Some(created_at + seconds),
        (None, "batch") => Some(created_at + BATCH_FILE_LIFETIME),
        (None, _) => None,
    };
    let object = FileObject {
        id: FileId(ids::file_id()),
        object: "file".to_owned(),
        bytes,
        created_at,
        filename,
        purpose,
        status: Some("processed".to_owned()),
        expires_at,
    };
    shared
        .store
        .add_file(object.clone(), path)
        .await
        .map_err(|_| ApiFailure::internal("cannot store the upload"))?;
    tracing::debug!(id = %object.id, bytes, "file uploaded");
    Ok(Json(object))
}

/// Past this many bytes without a newline, the first line of an upload is not judged.
const FIRST_LINE_LIMIT: u64 = 8 * 1024 * 1024;

/// Whether a batch upload is JSONL, judged like the real API's upload: its first non-blank
/// line is JSON. Later lines, and an empty file, are for batch validation to report, line
/// by line (`invalid_json_line`, `empty_file`).
fn is_jsonl(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::{BufRead as _, Read as _};

    let mut reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(FIRST_LINE_LIMIT)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(true);
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if read as u64 == FIRST_LINE_LIMIT && line.last() != Some(&b'\n') {
            // Too long to judge here; validation reads it whole.
            return Ok(true);
        }
        return Ok(serde_json::from_slice::<serde::de::IgnoredAny>(&line).is_ok());
    }
}

/// Checks `expires_after[anchor]` and `expires_after[seconds]`: both or neither, the
/// anchor `created_at`, the seconds an integer from 3600 to 2592000. Returns the seconds.
fn check_expires_after(
    anchor: Option<&str>,
    seconds: Option<&str>,
) -> Result<Option<i64>, ApiFailure> {
    let (anchor, seconds) = match (anchor, seconds) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(ApiFailure::missing("expires_after.seconds")),
        (None, Some(_)) => return Err(ApiFailure::missing("expires_after.anchor")),
        (Some(anchor), Some(seconds)) => (anchor, seconds),
    };
    if anchor != "created_at" {
        return Err(ApiFailure::bad_request(
            format!(
                "Invalid value for 'expires_after.anchor': '{anchor}'. Supported values are: 'created_at'."
            ),
            Some("expires_after.anchor"),
            Some("invalid_value"),
        ));
    }
    let Ok(value) = seconds.trim().parse::<i64>() else {
        return Err(ApiFailure::bad_request(
            format!(
                "Invalid type for 'expires_after.seconds': expected an integer, but got '{seconds}' instead."
            ),
            Some("expires_after.seconds"),
            Some("invalid_type"),
        ));
    };
    if value < *EXPIRES_AFTER_SECONDS.start() {
        return Err(ApiFailure::bad_request(
            format!(
                "Invalid 'expires_after.seconds': integer below minimum value. Expected a value \
                 >= {}, but got {value} instead.",
                EXPIRES_AFTER_SECONDS.start()
            ),
            Some("expires_after.seconds"),
            Some("integer_below_min_value"),
        ));
    }
    if value > *EXPIRES_AFTER_SECONDS.end() {
        return Err(ApiFailure::bad_request(
            format!(
                "Invalid 'expires_after.seconds': integer above maximum value. Expected a value \
                 <= {}, but got {value} instead.",
                EXPIRES_AFTER_SECONDS.end()
            ),
            Some("expires_after.seconds"),
            Some("integer_above_max_value"),
        ));
    }
    Ok(Some(value))
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiFailure {
    ApiFailure::bad_request(
        format!("Invalid multipart body: {}.", error.body_text()),
        None,
        None,
    )
}

fn too_large(limit: u64) -> ApiFailure {
    ApiFailure::bad_request(
        format!("File is too large: the maximum size is {limit} bytes."),
        Some("file"),
        Some("file_too_large"),
    )
}

fn no_such_file(id: &str) -> ApiFailure {
    ApiFailure::not_found(format!("No such File object: {id}"), Some("id"))
}

/// `GET /files/{id}`.
pub(crate) async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(file_id): Path<String>,
) -> Result<Json<FileObject>, ApiFailure> {
    shared
        .store
        .api_file(&FileId(file_id.clone()))
        .map(Json)
        .ok_or_else(|| no_such_file(&file_id))
}

/// `GET /files/{id}/content`: the raw bytes, streamed from disk, whatever `Accept` says.
pub(crate) async fn content(
    State(shared): State<Arc<Shared>>,
    Path(file_id): Path<String>,
    cut: Option<Extension<CutDownload>>,
) -> Result<Response, ApiFailure> {
    let id = FileId(file_id.clone());
    let object = shared
        .store
        .api_file(&id)
        .ok_or_else(|| no_such_file(&file_id))?;
    let file = tokio::fs::File::open(shared.store.content_path(&id))
        .await
        .map_err(|_| no_such_file(&file_id))?;
    let mut body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    if cut.is_some() {
        tracing::debug!(%id, "fault: cutting the download midway");
        body = cut_body(body, object.bytes / 2);
    }
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        object.filename.replace(['"', '\\', '\r', '\n'], "_")
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// `DELETE /files/{id}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(file_id): Path<String>,
) -> Result<Json<DeletedFile>, ApiFailure> {
    let id = FileId(file_id.clone());
    if shared.store.is_internal_file(&id) {
        return Err(no_such_file(&file_id));
    }
    match shared.store.delete_file(&id).await {
        Ok(true) => Ok(Json(DeletedFile {
            id,
            object: "file".to_owned(),
            deleted: true,
        })),
        Ok(false) => Err(no_such_file(&file_id)),
        Err(_) => Err(ApiFailure::internal("cannot delete the file")),
    }
}

/// `GET /files?purpose=&limit=&order=&after=`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<ListPage<FileObject>>, ApiFailure> {
    let Query(query) = query.map_err(|rejection| {
        ApiFailure::bad_request(
            format!("Invalid query: {}.", rejection.body_text()),
            None,
            None,
        )
    })?;
    let limit = parse_limit(query.get("limit"), 10_000, 10_000)?;
    let order = match query.get("order").map(String::as_str) {
        None | Some("desc") => Order::Desc,
        Some("asc") => Order::Asc,
        Some(other) => {
            return Err(ApiFailure::bad_request(
                format!("Invalid value: '{other}'. Supported values are: 'asc' and 'desc'."),
                Some("order"),
                Some("invalid_value"),
            ));
        }
    };
    Ok(Json(shared.store.list_files(
        query.get("purpose").map(String::as_str),
        order,
        query.get("after").map(String::as_str),
        limit,
    )))
}

/// Parses a `limit` query parameter: 1 to `max`, `default` when absent.
pub(crate) fn parse_limit(
    value: Option<&String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiFailure> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.parse::<usize>() {
        Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
        _ => Err(ApiFailure::bad_request(
            format!("Invalid 'limit': '{value}'. Expected an integer from 1 to {max}."),
            Some("limit"),
            Some("invalid_value"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok(seconds)` or `Err((code, param))`.
    fn check(anchor: Option<&str>, seconds: Option<&str>) -> Result<Option<i64>, (String, String)> {
        check_expires_after(anchor, seconds).map_err(|failure| {
            assert_eq!(failure.status, axum::http::StatusCode::BAD_REQUEST);
            (
                failure.error.code.unwrap_or_default(),
                failure.error.param.unwrap_or_default(),
            )
        })
    }

    fn err(code: &str, param: &str) -> Result<Option<i64>, (String, String)> {
        Err((code.to_owned(), param.to_owned()))
    }

    #[test]
    fn expires_after_bounds_and_anchor() {
        let anchor = Some("created_at");
        assert_eq!(check(None, None), Ok(None));
        assert_eq!(check(anchor, Some("3600")), Ok(Some(3600)));
        assert_eq!(check(anchor, Some("2592000")), Ok(Some(2_592_000)));
        assert_eq!(
            check(anchor, Some("3599")),
            err("integer_below_min_value", "expires_after.seconds")
        );
        assert_eq!(
            check(anchor, Some("2592001")),
            err("integer_above_max_value", "expires_after.seconds")
        );
        assert_eq!(
            check(anchor, Some("1h")),
            err("invalid_type", "expires_after.seconds")
        );
        assert_eq!(
            check(anchor, Some("3600.5")),
            err("invalid_type", "expires_after.seconds")
        );
        assert_eq!(
            check(Some("last_active_at"), Some("3600")),
            err("invalid_value", "expires_after.anchor")
        );
        assert_eq!(
            check(None, Some("3600")),
            err("missing_required_parameter", "expires_after.anchor")
        );
        assert_eq!(
            check(anchor, None),
            err("missing_required_parameter", "expires_after.seconds")
        );
    }
}
