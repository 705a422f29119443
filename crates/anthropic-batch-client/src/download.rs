//! A batch's results from its `results_url`: parsed lines as a stream, or the JSONL written to a
//! file. Either way the body is read chunk by chunk and never held whole in memory.

use std::path::{Path, PathBuf};

use futures::{Stream, TryStreamExt};
use reqwest::{Method, Response, Url};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio_util::io::StreamReader;

use crate::batches::BATCHES_PATH;
use crate::client::Client;
use crate::error::Error;
use crate::results::{BatchResultLine, MAX_RESULT_LINE_BYTES, parse_line};
use crate::types::MessageBatch;

/// The `Accept` header of a results download, as the official SDK sends it.
const RESULTS_ACCEPT: &str = "application/binary";

/// Size of the read buffer of the results stream and the write buffer of a download.
const BUFFER: usize = 256 * 1024;

impl Client {
    /// The results of an ended batch as a stream of parsed lines, read from the body as they
    /// arrive.
    ///
    /// The request is retried as any other; once lines flow, a broken connection ends the stream
    /// with an error (start again, or use [`Client::download_results_to`] for a file). A line
    /// that does not parse is one `Err` and the stream goes on; a line over
    /// [`MAX_RESULT_LINE_BYTES`] or a read error ends it.
    ///
    /// `results_url` is used when it is on the base URL's server; otherwise the key is not sent
    /// there and the same results are asked of the base URL (`/v1/messages/batches/{id}/results`).
    ///
    /// # Errors
    ///
    /// [`Error::ResultsNotReady`] before the batch has ended; [`Error::Api`] and the transport
    /// variants after the retries (e.g. [`ApiErrorKind::NotFound`](crate::ApiErrorKind::NotFound)
    /// once the results are gone, 29 days after creation). In the stream:
    /// [`Error::ResultLine`], [`Error::ResultLineTooLong`], [`Error::ReadResults`].
    pub async fn results(
        &self,
        batch: &MessageBatch,
    ) -> Result<impl Stream<Item = Result<BatchResultLine, Error>> + Send + 'static, Error> {
        let (url, path) = self.results_location(batch)?;
        let mut retries = 0;
        let response = self.open_results(&url, &path, &mut retries).await?;
        // Lines that break off later end the stream and are not retried: the call got through.
        self.recovered(retries, &Method::GET, &path);
        let body = Box::pin(
            response
                .bytes_stream()
                .map_err(|source| std::io::Error::other(source.without_url())),
        );
        let state = LineState {
            reader: BufReader::with_capacity(BUFFER, StreamReader::new(body)),
            buf: Vec::new(),
            line: 0,
            done: false,
        };
        Ok(futures::stream::unfold(state, next_line))
    }

    /// Writes the results JSONL of an ended batch to `dest`, streamed chunk by chunk, and returns
    /// its size.
    ///
    /// The bytes go to a temporary file in `dest`'s directory, renamed to `dest` once complete
    /// (replacing it). A failure, also in the middle of the body, is retried from the start under
    /// the retry policy; when it finally fails, or when the future is dropped, no partial file is
    /// left. Where the results come from is as for [`Client::results`].
    ///
    /// # Errors
    ///
    /// [`Error::ResultsNotReady`] before the batch has ended; [`Error::Io`] when the directory
    /// cannot be written; [`Error::Api`] and the transport variants after the retries.
    pub async fn download_results_to(
        &self,
        batch: &MessageBatch,
        dest: &Path,
    ) -> Result<u64, Error> {
        let (url, path) = self.results_location(batch)?;
        let dir = match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let method = Method::GET;
        let mut retries = 0;
        loop {
            let response = self.open_results(&url, &path, &mut retries).await?;
            let temp = tempfile::Builder::new()
                .prefix(".results.")
                .suffix(".part")
                .tempfile_in(&dir)
                .map_err(|source| io_error("create a temporary file in", &dir, source))?;
            match write_body(response, temp.path()).await {
                Ok(bytes) => {
                    temp.persist(dest)
                        .map_err(|err| io_error("rename a temporary file to", dest, err.error))?;
                    self.recovered(retries, &method, &path);
                    return Ok(bytes);
                }
                Err(BodyError::Io(source)) => return Err(io_error("write", temp.path(), source)),
                Err(BodyError::Transport(source)) => {
                    let failed = self.transport_failure(&method, &path, source, retries);
                    self.pause(failed, &mut retries, &method, &path).await?;
                }
            }
        }
    }

    /// Where the results of `batch` are fetched from, and the path that names the call in errors.
    fn results_location(&self, batch: &MessageBatch) -> Result<(Url, String), Error> {
        let Some(results_url) = &batch.results_url else {
            return Err(Error::ResultsNotReady {
                batch_id: batch.id.clone(),
                status: batch.processing_status,
            });
        };
        let url = match self.url("/").join(results_url) {
            Ok(url) if self.same_origin(&url) => url,
            _ => {
                tracing::warn!(
                    batch_id = %batch.id,
                    "results_url is on another server than the base url; asking the base url"
                );
                self.url(&format!("{BATCHES_PATH}/{}/results", batch.id))
            }
        };
        let path = url.path().to_owned();
        Ok((url, path))
    }

    /// Sends the results request with retries and returns the answer with its body unread.
    ///
    /// `retries` counts the retries already taken and is shared with the caller, so a download
    /// that starts over after a broken body keeps one retry budget.
    async fn open_results(
        &self,
        url: &Url,
        path: &str,
        retries: &mut u32,
    ) -> Result<Response, Error> {
        let method = Method::GET;
        loop {
            let builder = self
                .request(method.clone(), url.clone())
                .header(reqwest::header::ACCEPT, RESULTS_ACCEPT);
            match self.attempt(builder, &method, path, *retries).await {
                Ok(response) => return Ok(response),
                Err(failed) => self.pause(failed, retries, &method, path).await?,
            }
        }
    }
}

/// Why writing a body to a file stopped.
enum BodyError {
    /// The file could not be written.
    Io(std::io::Error),
    /// The body broke off.
    Transport(reqwest::Error),
}

/// Writes the body to the file at `path` chunk by chunk; returns its size.
async fn write_body(mut response: Response, path: &Path) -> Result<u64, BodyError> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .await
        .map_err(BodyError::Io)?;
    let mut writer = BufWriter::with_capacity(BUFFER, file);
    let mut bytes = 0;
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        writer.write_all(&chunk).await.map_err(BodyError::Io)?;
        bytes += chunk.len() as u64;
    }
    writer.flush().await.map_err(BodyError::Io)?;
    writer.get_ref().sync_all().await.map_err(BodyError::Io)?;
    Ok(bytes)
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Where the results stream stands.
struct LineState<R> {
    reader: R,
    buf: Vec<u8>,
    /// The 1-based number of the line last read.
    line: usize,
    done: bool,
}

/// The next result of the stream: skips blank lines, ends after the last line or a fatal error.
async fn next_line<R: AsyncBufRead + Unpin>(
    mut state: LineState<R>,
) -> Option<(Result<BatchResultLine, Error>, LineState<R>)> {
    while !state.done {
        state.buf.clear();
        state.line += 1;
        match read_line_capped(&mut state.reader, &mut state.buf, MAX_RESULT_LINE_BYTES).await {
            Ok(LineRead::Eof) => state.done = true,
            Ok(LineRead::Line) => {
                let text = state.buf.strip_suffix(b"\n").unwrap_or(&state.buf);
                if let Some(result) = parse_line(text, state.line) {
                    return Some((result, state));
                }
            }
            Ok(LineRead::TooLong) => {
                state.done = true;
                let error = Error::ResultLineTooLong {
                    line: state.line,
                    max: MAX_RESULT_LINE_BYTES,
                };
                return Some((Err(error), state));
            }
            Err(source) => {
                state.done = true;
                let error = Error::ReadResults {
                    line: state.line,
                    source,
                };
                return Some((Err(error), state));
            }
        }
    }
    None
}

/// What [`read_line_capped`] found.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A line (with its `\n`, unless it is the last one) is in the buffer.
    Line,
    /// The end of the body, nothing read.
    Eof,
    /// The line passes the cap; the buffer holds its start.
    TooLong,
}

/// Reads one line into `buf` without ever holding more than `max` bytes of it (plus its `\n`).
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (take, complete) = match available.iter().position(|&byte| byte == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        let content = if complete { take - 1 } else { take };
        if buf.len() + content > max {
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        if complete {
            return Ok(LineRead::Line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(text: &[u8], max: usize) -> Vec<(LineRead, Vec<u8>)> {
        // A tiny buffer, so lines cross buffer boundaries.
        let mut reader = BufReader::with_capacity(3, text);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let read = read_line_capped(&mut reader, &mut buf, max).await.unwrap();
            let stop = read != LineRead::Line;
            out.push((read, buf));
            if stop {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn lines_are_read_across_buffers_and_capped() {
        let read = lines(b"abcdefg\nhi\nlast", 10).await;
        assert_eq!(
            read,
            [
                (LineRead::Line, b"abcdefg\n".to_vec()),
                (LineRead::Line, b"hi\n".to_vec()),
                (LineRead::Line, b"last".to_vec()),
                (LineRead::Eof, Vec::new()),
            ]
        );
        let read = lines(b"0123456789\n0123456789x\n", 10).await;
        assert_eq!(read[0], (LineRead::Line, b"0123456789\n".to_vec()));
        assert_eq!(read[1].0, LineRead::TooLong);
        assert!(read[1].1.len() <= 10);
    }
}
