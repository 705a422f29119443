//! A message batch's results: the runner's output and error lines turned into
//! Anthropic result lines (`succeeded`, `errored`, `canceled`, `expired`), streamed.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::anthropic::batch::Missing;
use crate::anthropic::convert::{CachedPrefix, Message, apply_cache, message_from_completion};
use crate::anthropic::error::{ErrorObject, error_type};
use crate::ids;

/// One line of the results JSONL.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct ResultLine<'a> {
    pub(crate) custom_id: &'a str,
    pub(crate) result: BatchResult<'a>,
}

/// `result`: one of the four types.
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum BatchResult<'a> {
    /// The request's `Message`.
    Succeeded { message: Message },
    /// An `ErrorResponse`.
    Errored { error: ErrorResponse<'a> },
    /// The batch was cancelled before the request ran.
    Canceled,
    /// The batch expired before the request ran.
    Expired,
}

/// `{"type": "error", "error": {"type", "message"}, "request_id"}`.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct ErrorResponse<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorObject<'a>,
    request_id: String,
}

impl<'a> BatchResult<'a> {
    /// An `errored` result.
    pub(crate) fn errored(kind: &'a str, message: &'a str) -> Self {
        BatchResult::Errored {
            error: ErrorResponse {
                kind: "error",
                error: ErrorObject { kind, message },
                request_id: ids::anthropic_id("req_"),
            },
        }
    }
}

/// Where a message batch's results come from.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// The runner's output file (succeeded requests).
    pub(crate) output: Option<PathBuf>,
    /// The runner's error file (every other written result).
    pub(crate) errors: Option<PathBuf>,
    /// The internal input file, read for the requests no line was written for.
    pub(crate) input: PathBuf,
    /// Whether some requests have no written line.
    pub(crate) missing: bool,
    /// What those requests become.
    pub(crate) missing_as: Missing,
    /// The error type and message of a batch the emulator failed (used for missing requests).
    pub(crate) failure: (&'static str, String),
}

/// The emulated prompt cache of one results stream: each request's cached prefix, and
/// the prefixes already written.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    prefixes: HashMap<String, CachedPrefix>,
    written: HashSet<u64>,
}

/// What [`Cache`] reads of an input line.
#[derive(Deserialize)]
struct InputCache {
    custom_id: String,
    #[serde(default)]
    cache: Option<CachedPrefix>,
}

impl Cache {
    /// Reads each request's cached prefix from the internal input file.
    fn read(input: &std::path::Path) -> io::Result<Cache> {
        let mut cache = Cache::default();
        let mut reader = BufReader::with_capacity(256 * 1024, std::fs::File::open(input)?);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line)? > 0 {
            if let Ok(InputCache {
                custom_id,
                cache: Some(prefix),
            }) = serde_json::from_slice(&line)
            {
                cache.prefixes.insert(custom_id, prefix);
            }
            line.clear();
        }
        Ok(cache)
    }
}

/// The Anthropic result line (newline included) for one line of the runner's output or
/// error file; `None` for a line that is not JSON. Returns its `custom_id` too.
pub(crate) fn convert_line(line: &[u8], cache: &mut Cache) -> Option<(String, Vec<u8>)> {
    let value: Value = serde_json::from_slice(line).ok()?;
    let custom_id = value.get("custom_id")?.as_str()?.to_owned();
    let response = value.get("response").filter(|response| !response.is_null());
    let status = response
        .and_then(|response| response.get("status_code"))
        .and_then(Value::as_u64);
    let body = response
        .and_then(|response| response.get("body"))
        .unwrap_or(&Value::Null);
    let result = match status {
        Some(200) => {
            let mut message = message_from_completion(body, "batch");
            if let Some(prefix) = cache.prefixes.get(&custom_id) {
                apply_cache(&mut message.usage, *prefix, &mut cache.written);
            }
            BatchResult::Succeeded { message }
        }
        Some(status) => {
            let message = body
                .get("error")
                .and_then(|error| error.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("The request failed.");
            let kind = u16::try_from(status).map_or("api_error", error_type);
            return Some(encode(&custom_id, BatchResult::errored(kind, message)));
        }
        None => {
            let error = value.get("error").unwrap_or(&Value::Null);
            let code = error.get("code").and_then(Value::as_str).unwrap_or("");
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("The request was not answered.");
            match code {
                "batch_cancelled" => BatchResult::Canceled,
                "batch_expired" => BatchResult::Expired,
                "request_timeout" => {
                    return Some(encode(
                        &custom_id,
                        BatchResult::errored("timeout_error", message),
                    ));
                }
                _ => {
                    return Some(encode(
                        &custom_id,
                        BatchResult::errored("api_error", message),
                    ));
                }
            }
        }
    };
    Some(encode(&custom_id, result))
}

fn encode(custom_id: &str, result: BatchResult<'_>) -> (String, Vec<u8>) {
    let mut bytes = serde_json::to_vec(&ResultLine { custom_id, result })
        .expect("a result line always serializes");
    bytes.push(b'\n');
    (custom_id.to_owned(), bytes)
}

/// Streams the results: the output lines, the error lines, then a line for each request
/// that has none, read from a blocking thread through a small channel so memory stays flat.
pub(crate) fn stream(sources: Sources) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(16);
    tokio::task::spawn_blocking(move || {
        if let Err(error) = produce(&sources, &tx) {
            tracing::error!(%error, "cannot read a message batch's results");
            // The receiver may be gone already; then nobody needs the error.
            let _ = tx.blocking_send(Err(error));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Body::from_stream(stream)
}

/// Sends the result lines in chunks of about 64 KiB; stops quietly when the client is gone.
fn produce(sources: &Sources, tx: &mpsc::Sender<io::Result<Bytes>>) -> io::Result<()> {
    let mut chunk = Vec::with_capacity(64 * 1024);
    let mut seen = HashSet::new();
    let mut cache = Cache::read(&sources.input)?;
    let send = |chunk: &mut Vec<u8>, force: bool| -> bool {
        if chunk.is_empty() || (!force && chunk.len() < 64 * 1024) {
            return true;
        }
        tx.blocking_send(Ok(Bytes::from(std::mem::take(chunk))))
            .is_ok()
    };
    for path in [&sources.output, &sources.errors].into_iter().flatten() {
        let mut reader = BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line)? > 0 {
            if let Some((custom_id, bytes)) = convert_line(&line, &mut cache) {
                chunk.extend_from_slice(&bytes);
                if sources.missing {
                    seen.insert(custom_id);
                }
            }
            line.clear();
            if !send(&mut chunk, false) {
                return Ok(());
            }
        }
    }
    if sources.missing {
        let mut reader = BufReader::with_capacity(256 * 1024, std::fs::File::open(&sources.input)?);
        let mut buffer = Vec::new();
        while let Some(request) = crate::validate::read_request(&mut reader, &mut buffer)? {
            if seen.contains(&request.custom_id) {
                continue;
            }
            let result = match sources.missing_as {
                Missing::Canceled => BatchResult::Canceled,
                Missing::Expired => BatchResult::Expired,
                Missing::Errored => BatchResult::errored(sources.failure.0, &sources.failure.1),
            };
            chunk.extend_from_slice(&encode(&request.custom_id, result).1);
            if !send(&mut chunk, false) {
                return Ok(());
            }
        }
    }
    send(&mut chunk, true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn convert(line: Value) -> Value {
        let (_, bytes) = convert_line(line.to_string().as_bytes(), &mut Cache::default()).unwrap();
        assert!(bytes.ends_with(b"\n"));
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn each_kind_of_line() {
        let success = convert(
            json!({"id": "batch_req_1", "custom_id": "a", "response": {"status_code": 200, "request_id": "r", "body": {
            "model": "claude-x", "choices": [{"message": {"content": "# Lesson"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5}
        }}, "error": null}),
        );
        assert_eq!(success["custom_id"], "a");
        assert_eq!(success["result"]["type"], "succeeded");
        assert_eq!(
            success["result"]["message"]["content"][0]["text"],
            "# Lesson"
        );
        assert_eq!(
            success["result"]["message"]["usage"]["service_tier"],
            "batch"
        );

        let bad = convert(
            json!({"custom_id": "b", "response": {"status_code": 400, "body": {"error": {"message": "Bad value", "type": "invalid_request_error"}}}, "error": null}),
        );
        assert_eq!(bad["result"]["type"], "errored");
        assert_eq!(bad["result"]["error"]["type"], "error");
        assert_eq!(
            bad["result"]["error"]["error"]["type"],
            "invalid_request_error"
        );
        assert_eq!(bad["result"]["error"]["error"]["message"], "Bad value");
        let limited = convert(
            json!({"custom_id": "b", "response": {"status_code": 429, "body": {}}, "error": null}),
        );
        assert_eq!(
            limited["result"]["error"]["error"]["type"],
            "rate_limit_error"
        );

        let line = |code: &str| json!({"custom_id": "c", "response": null, "error": {"code": code, "message": "m"}});
        assert_eq!(
            convert(line("batch_cancelled")),
            json!({"custom_id": "c", "result": {"type": "canceled"}})
        );
        assert_eq!(
            convert(line("batch_expired")),
            json!({"custom_id": "c", "result": {"type": "expired"}})
        );
        assert_eq!(
            convert(line("request_timeout"))["result"]["error"]["error"]["type"],
            "timeout_error"
        );
        assert_eq!(
            convert(line("upstream_unreachable"))["result"]["error"]["error"]["type"],
            "api_error"
        );
        assert!(convert_line(b"not json\n", &mut Cache::default()).is_none());
    }
}
