//! The Files API: streamed upload of a JSONL file, retrieve, delete, and streamed download to disk.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method, Response};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;

use crate::client::{Client, Failed};
use crate::error::Error;
use crate::progress::Progress;
use crate::retry::{self, Failure, Verdict};
use crate::types::{DeletedFile, FileId, FileObject, ListPage};

/// The shortest file expiry the Files API accepts, in seconds (1 hour).
pub const MIN_FILE_EXPIRY_SECS: u64 = 3600;
/// The longest file expiry the Files API accepts, in seconds (30 days).
pub const MAX_FILE_EXPIRY_SECS: u64 = 2_592_000;

/// Refuses an expiry the Files API would refuse.
pub(crate) fn check_expiry(seconds: u64) -> Result<(), Error> {
    if (MIN_FILE_EXPIRY_SECS..=MAX_FILE_EXPIRY_SECS).contains(&seconds) {
        Ok(())
    } else {
        Err(Error::InvalidExpiry { seconds })
    }
}

/// Size of the chunks read from disk for an upload.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// Size of the write buffer of a download.
const DOWNLOAD_BUFFER: usize = 1024 * 1024;

impl Client {
    /// Uploads a JSONL file with `purpose=batch`, streamed from disk.
    ///
    /// The multipart `file` part is named after the file, with `.jsonl` appended when it
    /// has another extension (the Batch API accepts only `.jsonl`). A retried upload reopens the
    /// file and starts again, telling `progress` through [`Progress::on_start`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, [`Error::Api`] and the transport variants
    /// when the upload fails after its retries, [`Error::Decode`] for an unexpected answer.
    pub async fn upload_file(
        &self,
        path: &Path,
        progress: Arc<dyn Progress>,
    ) -> Result<FileObject, Error> {
        self.upload_file_expiring(path, None, progress).await
    }

    /// As [`Client::upload_file`], with `expires_after[anchor]=created_at` and
    /// `expires_after[seconds]` when `expires_after` is given: the server deletes the file by
    /// itself that many seconds after the upload (without it, batch files live 30 days).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidExpiry`] for an expiry outside 3,600 to 2,592,000 seconds (nothing is
    /// sent); otherwise as [`Client::upload_file`].
    pub async fn upload_file_expiring(
        &self,
        path: &Path,
        expires_after: Option<u64>,
        progress: Arc<dyn Progress>,
    ) -> Result<FileObject, Error> {
        if let Some(seconds) = expires_after {
            check_expiry(seconds)?;
        }
        let filename = upload_name(path);
        let method = Method::POST;
        let max_retries = self.max_retries(&method);
        let mut retries = 0;
        loop {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|source| Error::io("open", path, source))?;
            let len = file
                .metadata()
                .await
                .map_err(|source| Error::io("read metadata of", path, source))?
                .len();
            progress.on_start(Some(len));
            let counter = Arc::clone(&progress);
            let stream = ReaderStream::with_capacity(file, UPLOAD_CHUNK)
                .inspect_ok(move |chunk| counter.on_bytes(chunk.len() as u64));
            let part = Part::stream_with_length(Body::wrap_stream(stream), len)
                .file_name(filename.clone())
                .mime_str("application/octet-stream")
                .expect("a constant MIME type parses");
            let mut form = Form::new().text("purpose", "batch");
            if let Some(seconds) = expires_after {
                form = form
                    .text("expires_after[anchor]", "created_at")
                    .text("expires_after[seconds]", seconds.to_string());
            }
            let form = form.part("file", part);
            let builder = self.request(method.clone(), "/files").multipart(form);
            match self
                .attempt_json(builder, &method, "/files", retries, max_retries)
                .await
            {
                Ok(file) => {
                    self.recovered(retries, &method, "/files");
                    return Ok(file);
                }
                Err(failed) => self.pause(failed, &mut retries, &method, "/files").await?,
            }
        }
    }

    /// One page of the account's files, newest first: those after the file id `after`, at
    /// most `limit` (1 to 10,000) of them, only of `purpose` when given (`batch`,
    /// `batch_output`).
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve_file`].
    pub async fn list_files_page(
        &self,
        purpose: Option<&str>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ListPage<FileObject>, Error> {
        let purpose: Vec<(&str, &str)> = purpose.map(|p| ("purpose", p)).into_iter().collect();
        self.list_page("/files", &purpose, after, limit).await
    }

    /// Retrieves a file's metadata.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with [`ApiErrorKind::NotFound`](crate::ApiErrorKind::NotFound) when the
    /// file is gone; otherwise as [`Client::upload_file`].
    pub async fn retrieve_file(&self, file_id: &FileId) -> Result<FileObject, Error> {
        let path = format!("/files/{file_id}");
        self.send_json(Method::GET, &path, |builder| builder).await
    }

    /// Deletes a file.
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve_file`].
    pub async fn delete_file(&self, file_id: &FileId) -> Result<DeletedFile, Error> {
        let path = format!("/files/{file_id}");
        self.send_json(Method::DELETE, &path, |builder| builder)
            .await
    }

    /// Downloads a file's content to `dest`, streamed chunk by chunk, and returns its size.
    ///
    /// The bytes go to a temporary file in `dest`'s directory, renamed to `dest` once complete
    /// (replacing it). A failure, also in the middle of the body, is retried from the start
    /// under the `GET` retry budget; when it finally fails, or when the future is dropped,
    /// no partial file is left behind.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be written, [`Error::Api`] and the transport
    /// variants after the retries, [`Error::IncompleteDownload`] when the body is shorter than
    /// its `Content-Length`.
    pub async fn download_file_to(
        &self,
        file_id: &FileId,
        dest: &Path,
        progress: Arc<dyn Progress>,
    ) -> Result<u64, Error> {
        let path = format!("/files/{file_id}/content");
        let dir = match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "download".to_owned());
        let mut builder = tempfile::Builder::new();
        #[cfg(unix)]
        // As `open(2)` with 0o666 would: the umask decides (0644 under umask 022), not
        // tempfile's 0600, for a file the user reads and shares.
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let temp = builder
            .prefix(&format!(".{name}."))
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(|source| Error::io("create a temporary file in", &dir, source))?;
        let std_file = temp
            .as_file()
            .try_clone()
            .map_err(|source| Error::io("open", temp.path(), source))?;
        let mut file = tokio::fs::File::from_std(std_file);
        let method = Method::GET;
        let max_retries = self.max_retries(&method);
        let mut retries = 0;
        let bytes = loop {
            let builder = self
                .request(method.clone(), &path)
                .header(reqwest::header::ACCEPT, "application/binary");
            let attempt = match self
                .attempt(builder, &method, &path, retries, max_retries)
                .await
            {
                Ok(response) => {
                    let sink = Sink {
                        file: &mut file,
                        temp_path: temp.path(),
                        file_id,
                        progress: progress.as_ref(),
                    };
                    self.stream_body(response, sink, &path, retries, max_retries)
                        .await
                }
                Err(failed) => Err(failed),
            };
            match attempt {
                Ok(bytes) => {
                    self.recovered(retries, &method, &path);
                    break bytes;
                }
                Err(failed) => self.pause(failed, &mut retries, &method, &path).await?,
            }
        };
        drop(file);
        temp.persist(dest)
            .map_err(|err| Error::io("rename a download to", dest, err.error))?;
        Ok(bytes)
    }

    /// Writes one answer's body to the temporary file, from its start.
    async fn stream_body(
        &self,
        mut response: Response,
        sink: Sink<'_>,
        path: &str,
        retries: u32,
        max_retries: u32,
    ) -> Result<u64, Failed> {
        let write_failed = |source| Failed {
            error: Error::io("write", sink.temp_path, source),
            verdict: Verdict::Stop,
            ambiguous: false,
        };
        sink.file.set_len(0).await.map_err(write_failed)?;
        sink.file
            .seek(SeekFrom::Start(0))
            .await
            .map_err(write_failed)?;
        let expected = response.content_length();
        sink.progress.on_start(expected);
        let mut writer = BufWriter::with_capacity(DOWNLOAD_BUFFER, &mut *sink.file);
        let mut received = 0u64;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(source) => {
                    return Err(self.transport_failure(
                        &Method::GET,
                        path,
                        source,
                        retries,
                        max_retries,
                    ));
                }
            };
            writer.write_all(&chunk).await.map_err(write_failed)?;
            received += chunk.len() as u64;
            sink.progress.on_bytes(chunk.len() as u64);
        }
        writer.flush().await.map_err(write_failed)?;
        drop(writer);
        if let Some(expected) = expected.filter(|&expected| expected != received) {
            let verdict = retry::classify(
                &self.config().retry,
                Failure::Transport,
                retries,
                max_retries,
                rand::random(),
            );
            return Err(Failed {
                error: Error::IncompleteDownload {
                    file_id: sink.file_id.clone(),
                    expected,
                    received,
                },
                verdict,
                ambiguous: false,
            });
        }
        sink.file.sync_all().await.map_err(write_failed)?;
        Ok(received)
    }
}

/// Where a download's body goes.
struct Sink<'a> {
    file: &'a mut tokio::fs::File,
    temp_path: &'a Path,
    file_id: &'a FileId,
    progress: &'a dyn Progress,
}

/// The multipart filename of an upload: the file's name, ending in `.jsonl`.
fn upload_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".to_owned());
    if name.ends_with(".jsonl") {
        name
    } else {
        format!("{name}.jsonl")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_end_in_jsonl() {
        assert_eq!(
            upload_name(Path::new("/a/b/shard_001.jsonl")),
            "shard_001.jsonl"
        );
        assert_eq!(upload_name(Path::new("shard.txt")), "shard.txt.jsonl");
        assert_eq!(upload_name(Path::new("/")), "input.jsonl");
    }
}
