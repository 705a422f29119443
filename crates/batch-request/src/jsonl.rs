//! Streaming JSONL writers and readers for the Batch API line types.
//!
//! Writers put one compact JSON object per line, UTF-8 as is (no `\u` escapes for non-ASCII),
//! each ending in `\n`, with no blank lines. Readers go line by line, skip blank lines
//! (the API ends every file with `\n`) and report the 1-based line number with each item.

use std::io::{BufRead, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, RequestLine, ResultLine};

/// Writes request lines to `writer`, one per line; returns the number of bytes written.
///
/// # Errors
///
/// [`Error::WriteLine`] when the writer fails, [`Error::Serialize`] when a body cannot be
/// serialized.
pub fn write_request_lines<'a>(
    writer: impl Write,
    lines: impl IntoIterator<Item = &'a RequestLine>,
) -> Result<u64, Error> {
    write_lines(writer, lines, |line| &line.custom_id)
}

/// Writes result lines (output or error file) to `writer`, one per line; returns the number
/// of bytes written. The batch emulator and tests use it to produce real-shaped files.
///
/// # Errors
///
/// [`Error::WriteLine`] when the writer fails, [`Error::Serialize`] when a line cannot be
/// serialized.
pub fn write_result_lines<'a>(
    writer: impl Write,
    lines: impl IntoIterator<Item = &'a ResultLine>,
) -> Result<u64, Error> {
    write_lines(writer, lines, |line| &line.custom_id)
}

/// Writes any line type, one JSON object per line, naming the `custom_id` in errors.
fn write_lines<'a, T: Serialize + 'a>(
    mut writer: impl Write,
    lines: impl IntoIterator<Item = &'a T>,
    custom_id: impl Fn(&T) -> &str,
) -> Result<u64, Error> {
    let mut bytes = 0;
    let mut buffer = Vec::new();
    for line in lines {
        buffer.clear();
        encode_line(&mut buffer, line, custom_id(line))?;
        writer
            .write_all(&buffer)
            .map_err(|source| write_error(custom_id(line), source))?;
        bytes += buffer.len() as u64;
    }
    writer
        .flush()
        .map_err(|source| write_error("(flush)", source))?;
    Ok(bytes)
}

/// Reads request lines (a Batch API input file), skipping blank lines.
///
/// Each item is the 1-based line number and the parsed line.
pub fn read_request_lines(
    reader: impl BufRead,
) -> impl Iterator<Item = Result<(usize, RequestLine), Error>> {
    read_lines(reader)
}

/// Reads result lines (a Batch API output or error file), skipping blank lines.
///
/// Each item is the 1-based line number and the parsed line. A line that is not JSON or
/// lacks `custom_id` yields [`Error::ParseLine`] and reading goes on with the next line.
pub fn read_result_lines(
    reader: impl BufRead,
) -> impl Iterator<Item = Result<(usize, ResultLine), Error>> {
    read_lines(reader)
}

/// Appends one JSON line (`\n`-terminated) to `buffer`.
pub(crate) fn encode_line(
    buffer: &mut Vec<u8>,
    value: &impl Serialize,
    custom_id: &str,
) -> Result<(), Error> {
    serde_json::to_writer(&mut *buffer, value).map_err(|source| Error::Serialize {
        custom_id: custom_id.to_owned(),
        source,
    })?;
    buffer.push(b'\n');
    Ok(())
}

fn write_error(custom_id: &str, source: std::io::Error) -> Error {
    Error::WriteLine {
        custom_id: custom_id.to_owned(),
        source,
    }
}

fn read_lines<T: DeserializeOwned>(
    mut reader: impl BufRead,
) -> impl Iterator<Item = Result<(usize, T), Error>> {
    let mut buffer = Vec::new();
    let mut line_no = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        loop {
            buffer.clear();
            line_no += 1;
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    // After an I/O error the stream position is unknown: stop.
                    failed = true;
                    return Some(Err(Error::ReadLine {
                        line: line_no,
                        source,
                    }));
                }
            }
            let text = buffer.trim_ascii();
            if text.is_empty() {
                continue;
            }
            return Some(
                serde_json::from_slice(text)
                    .map(|value| (line_no, value))
                    .map_err(|source| Error::ParseLine {
                        line: line_no,
                        source,
                    }),
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CHAT_COMPLETIONS_URL, ChatMessage, ChatRequest};

    fn request(id: &str, content: &str) -> RequestLine {
        RequestLine {
            custom_id: id.into(),
            method: "POST".into(),
            url: CHAT_COMPLETIONS_URL.into(),
            body: ChatRequest {
                model: "gpt-4o-mini".into(),
                messages: vec![ChatMessage {
                    role: "user".into(),
                    content: content.into(),
                }],
                max_completion_tokens: Some(100),
                temperature: None,
                extra: serde_json::Map::new(),
            },
        }
    }

    #[test]
    fn writes_utf8_lines_and_reads_them_back() {
        let lines = [request("a", "Grüße\nzweite Zeile"), request("b", "日本")];
        let mut out = Vec::new();
        let bytes = write_request_lines(&mut out, &lines).unwrap();
        assert_eq!(bytes, out.len() as u64);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("Grüße\\nzweite Zeile"), "{text}");
        assert!(text.contains("日本"));
        assert_eq!(text.matches('\n').count(), 2);
        assert!(text.ends_with("}\n"));
        let back: Vec<_> = read_request_lines(out.as_slice())
            .map(Result::unwrap)
            .collect();
        assert_eq!(back, vec![(1, lines[0].clone()), (2, lines[1].clone())]);
    }

    #[test]
    fn reader_skips_blank_lines_and_keeps_going_after_a_bad_line() {
        let input = "\n{\"custom_id\":\"a\",\"response\":null,\"error\":{\"code\":\"batch_expired\"}}\r\nnot json\n\n{\"custom_id\":\"b\"}";
        let items: Vec<_> = read_result_lines(input.as_bytes()).collect();
        assert_eq!(items.len(), 3);
        let (line, first) = items[0].as_ref().unwrap();
        assert_eq!(
            (*line, first.error.as_ref().unwrap().code.as_deref()),
            (2, Some("batch_expired"))
        );
        assert!(matches!(items[1], Err(Error::ParseLine { line: 3, .. })));
        let (line, last) = items[2].as_ref().unwrap();
        assert_eq!((*line, last.custom_id.as_str()), (5, "b"));
    }

    #[test]
    fn reader_reports_invalid_utf8_and_goes_on() {
        let input: &[u8] =
            b"{\"custom_id\":\"a\"}\n{\"custom_id\":\"\xff\"}\n{\"custom_id\":\"b\"}\n";
        let items: Vec<_> = read_result_lines(input).collect();
        assert_eq!(items.len(), 3);
        assert!(matches!(items[1], Err(Error::ParseLine { line: 2, .. })));
        assert_eq!(items[2].as_ref().unwrap().1.custom_id, "b");
    }
}
