//! The emulator's state: file metadata and contents, batches, and their optional
//! persistence under a data directory (JSON records written atomically).
//!
//! Layout: `files/<id>.content` holds a file's bytes (in memory mode too, in a
//! private temp dir), `files/<id>.json` its metadata, `batches/<id>.json` a
//! batch and `attempts.json` how many times each `custom_id` ran, the last three only
//! with a data directory. A record that cannot be read is skipped with a warning.
//!
//! The enqueued-token sums live under the same lock as the batches, so a batch gives
//! back its tokens in the very update that makes it terminal.
//! A file past its `expires_at` (read on a clock tests can move forward) is gone for
//! every caller; an expired file found at start is removed from the data directory.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use openai_batch_client::{Batch, BatchId, FileId, FileObject, ListPage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tempfile::{NamedTempFile, TempDir, TempPath};
use tokio_util::sync::CancellationToken;

use crate::enqueued::{EmulatorStats, Enqueued, LimitExceeded};
use crate::{Error, ids};

/// Files and batches, shared by the HTTP handlers and the batch runners.
pub(crate) struct Store {
    files_dir: PathBuf,
    /// Where batch records go; `None` in memory mode.
    batches_dir: Option<PathBuf>,
    state: Arc<Mutex<State>>,
    /// Serialises batch record writes, each of which reads the batch when it runs, so
    /// the last write always holds the latest state.
    persist_lock: Arc<Mutex<()>>,
    /// Disk writes still running, so a shutdown can wait for them.
    writes: Arc<Writes>,
    next_seq: AtomicU64,
    /// Seconds added to the real clock when deciding whether a file has expired.
    file_clock_offset: AtomicI64,
    /// How many times each `custom_id` has run, over every batch of this emulator.
    attempts: Arc<Mutex<HashMap<String, u32>>>,
    /// Where [`Store::save_attempts`] writes them; `None` in memory mode.
    attempts_path: Option<PathBuf>,
    /// Owns the contents in memory mode; removed on drop.
    _temp_dir: Option<TempDir>,
}

#[derive(Default)]
struct State {
    files: HashMap<FileId, FileEntry>,
    batches: HashMap<BatchId, BatchEntry>,
    enqueued: Enqueued,
}

struct FileEntry {
    seq: u64,
    object: FileObject,
}

struct BatchEntry {
    seq: u64,
    batch: Batch,
    cancel: CancellationToken,
}

#[derive(Serialize, Deserialize)]
struct FileRecord {
    seq: u64,
    file: FileObject,
}

#[derive(Serialize, Deserialize)]
struct BatchRecord {
    seq: u64,
    batch: Batch,
}

/// `attempts.json`: the runs of each `custom_id`, so seeded faults go on from where they were.
#[derive(Serialize, Deserialize, Default)]
struct AttemptsRecord {
    attempts: HashMap<String, u32>,
}

/// Counts the disk writes in flight.
#[derive(Default)]
struct Writes {
    pending: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One write in flight; counted from creation to drop.
struct WriteGuard(Arc<Writes>);

impl WriteGuard {
    fn new(writes: Arc<Writes>) -> Self {
        writes.pending.fetch_add(1, Ordering::SeqCst);
        WriteGuard(writes)
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Sort order of a file list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Asc,
    Desc,
}

impl Store {
    /// Opens the store: in a fresh temp dir, or under `data_dir` with its saved records.
    ///
    /// Returns the store and the ids of batches that were still running when the
    /// previous emulator stopped.
    pub(crate) fn open(data_dir: Option<&Path>) -> Result<(Store, Vec<BatchId>), Error> {
        let Some(data_dir) = data_dir else {
            let temp_dir = tempfile::Builder::new()
                .prefix("batch-emulator-")
                .tempdir()
                .map_err(|source| Error::Storage {
                    path: std::env::temp_dir(),
                    source,
                })?;
            let files_dir = temp_dir.path().join("files");
            create_dir(&files_dir)?;
            let store = Store {
                files_dir,
                batches_dir: None,
                state: Arc::default(),
                persist_lock: Arc::default(),
                writes: Arc::default(),
                next_seq: AtomicU64::new(1),
                file_clock_offset: AtomicI64::new(0),
                attempts: Arc::default(),
                attempts_path: None,
                _temp_dir: Some(temp_dir),
            };
            return Ok((store, Vec::new()));
        };
        let files_dir = data_dir.join("files");
        let batches_dir = data_dir.join("batches");
        create_dir(&files_dir)?;
        create_dir(&batches_dir)?;
        let mut state = State::default();
        let mut max_seq = 0;
        for path in json_records(&files_dir)? {
            let Some(record) = read_record::<FileRecord>(&path) else {
                continue;
            };
            let content = files_dir.join(format!("{}.content", record.file.id));
            if !content.exists() {
                tracing::warn!(path = %path.display(), "file record without content, skipped");
                continue;
            }
            if is_expired(&record.file, ids::now()) {
                tracing::debug!(id = %record.file.id, "file expired while stopped, removed");
                remove_if_present(&content)
                    .and_then(|()| remove_if_present(&path))
                    .map_err(|source| Error::Storage {
                        path: path.clone(),
                        source,
                    })?;
                continue;
            }
            max_seq = max_seq.max(record.seq);
            state.files.insert(
                record.file.id.clone(),
                FileEntry {
                    seq: record.seq,
                    object: record.file,
                },
            );
        }
        let mut resume = Vec::new();
        for path in json_records(&batches_dir)? {
            let Some(record) = read_record::<BatchRecord>(&path) else {
                continue;
            };
            max_seq = max_seq.max(record.seq);
            if !record.batch.status.is_terminal() {
                resume.push(record.batch.id.clone());
            }
            state.batches.insert(
                record.batch.id.clone(),
                BatchEntry {
                    seq: record.seq,
                    batch: record.batch,
                    cancel: CancellationToken::new(),
                },
            );
        }
        let attempts_path = data_dir.join(ATTEMPTS_FILE);
        let attempts = if attempts_path.exists() {
            read_record::<AttemptsRecord>(&attempts_path).unwrap_or_default()
        } else {
            AttemptsRecord::default()
        };
        let store = Store {
            files_dir,
            batches_dir: Some(batches_dir),
            state: Arc::new(Mutex::new(state)),
            persist_lock: Arc::default(),
            writes: Arc::default(),
            next_seq: AtomicU64::new(max_seq + 1),
            file_clock_offset: AtomicI64::new(0),
            attempts: Arc::new(Mutex::new(attempts.attempts)),
            attempts_path: Some(attempts_path),
            _temp_dir: None,
        };
        Ok((store, resume))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Runs a disk write on a blocking thread, counted until it ends even when the task
    /// awaiting it is aborted, so [`Store::flush`] can wait for it.
    fn spawn_write<T: Send + 'static>(
        &self,
        write: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let pending = WriteGuard::new(Arc::clone(&self.writes));
        tokio::task::spawn_blocking(move || {
            let _pending = pending;
            write()
        })
    }

    /// Waits until every disk write started so far has ended.
    ///
    /// A shutdown calls this after stopping the batch runs, so the next start reads the
    /// last state they showed, not an older record.
    pub(crate) async fn flush(&self) {
        loop {
            let idle = self.writes.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.writes.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Where a file's bytes live.
    pub(crate) fn content_path(&self, id: &FileId) -> PathBuf {
        self.files_dir.join(format!("{id}.content"))
    }

    /// A temp file next to the contents, to be renamed into place by [`Store::add_file`].
    pub(crate) fn temp_file(&self) -> io::Result<NamedTempFile> {
        NamedTempFile::new_in(&self.files_dir)
    }

    /// Registers a file whose bytes are in `temp`.
    pub(crate) async fn add_file(&self, object: FileObject, temp: TempPath) -> io::Result<()> {
        let content = self.content_path(&object.id);
        let seq = self.next_seq();
        let record_path = self
            .batches_dir
            .is_some()
            .then(|| self.files_dir.join(format!("{}.json", object.id)));
        let record = FileRecord {
            seq,
            file: object.clone(),
        };
        let files_dir = self.files_dir.clone();
        self.spawn_write(move || -> io::Result<()> {
            temp.persist(&content).map_err(|error| error.error)?;
            if let Some(record_path) = record_path {
                write_record(&files_dir, &record_path, &record)?;
            }
            Ok(())
        })
        .await
        .map_err(io::Error::other)??;
        self.lock()
            .files
            .insert(object.id.clone(), FileEntry { seq, object });
        Ok(())
    }

    /// Now, on the clock that decides whether a file has expired (and a message batch's
    /// results are archived).
    pub(crate) fn file_clock(&self) -> i64 {
        ids::now().saturating_add(self.file_clock_offset.load(Ordering::Relaxed))
    }

    /// Moves the file-expiry clock forward by `seconds`.
    pub(crate) fn advance_file_clock(&self, seconds: i64) {
        self.file_clock_offset.fetch_add(seconds, Ordering::Relaxed);
    }

    /// A file's metadata; `None` once it has expired.
    pub(crate) fn file(&self, id: &FileId) -> Option<FileObject> {
        let now = self.file_clock();
        self.lock()
            .files
            .get(id)
            .filter(|entry| !is_expired(&entry.object, now))
            .map(|entry| entry.object.clone())
    }

    /// A file the Files API may show: not expired, and not one of the message batches' own.
    pub(crate) fn api_file(&self, id: &FileId) -> Option<FileObject> {
        self.file(id)
            .filter(|file| !crate::anthropic::is_internal_purpose(&file.purpose))
    }

    /// Whether a file, expired or not, is one of the message batches' own.
    pub(crate) fn is_internal_file(&self, id: &FileId) -> bool {
        self.lock()
            .files
            .get(id)
            .is_some_and(|entry| crate::anthropic::is_internal_purpose(&entry.object.purpose))
    }

    /// Deletes a file; `false` when it did not exist or had expired (its bytes go either way).
    pub(crate) async fn delete_file(&self, id: &FileId) -> io::Result<bool> {
        let now = self.file_clock();
        let Some(entry) = self.lock().files.remove(id) else {
            return Ok(false);
        };
        let live = !is_expired(&entry.object, now);
        let content = self.content_path(id);
        let record = self.files_dir.join(format!("{id}.json"));
        self.spawn_write(move || -> io::Result<()> {
            remove_if_present(&record)?;
            remove_if_present(&content)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(live)
    }

    /// One page of files, optionally of one purpose.
    pub(crate) fn list_files(
        &self,
        purpose: Option<&str>,
        order: Order,
        after: Option<&str>,
        limit: usize,
    ) -> ListPage<FileObject> {
        let now = self.file_clock();
        let mut files: Vec<(u64, FileObject)> = self
            .lock()
            .files
            .values()
            .filter(|entry| !is_expired(&entry.object, now))
            .filter(|entry| !crate::anthropic::is_internal_purpose(&entry.object.purpose))
            .filter(|entry| purpose.is_none_or(|purpose| entry.object.purpose == purpose))
            .map(|entry| (entry.seq, entry.object.clone()))
            .collect();
        files.sort_by_key(|(seq, _)| *seq);
        if order == Order::Desc {
            files.reverse();
        }
        page(
            files.into_iter().map(|(_, file)| file).collect(),
            |file| file.id.as_str(),
            after,
            limit,
        )
    }

    /// Registers a new batch; returns the token that cancels its run.
    pub(crate) fn insert_batch(&self, batch: Batch) -> CancellationToken {
        let cancel = CancellationToken::new();
        let seq = self.next_seq();
        self.lock().batches.insert(
            batch.id.clone(),
            BatchEntry {
                seq,
                batch,
                cancel: cancel.clone(),
            },
        );
        cancel
    }

    /// A batch.
    pub(crate) fn batch(&self, id: &BatchId) -> Option<Batch> {
        self.lock().batches.get(id).map(|entry| entry.batch.clone())
    }

    /// The token that cancels a batch's run.
    pub(crate) fn cancel_token(&self, id: &BatchId) -> Option<CancellationToken> {
        self.lock()
            .batches
            .get(id)
            .map(|entry| entry.cancel.clone())
    }

    /// Changes a batch in memory and returns the new state; see [`Store::save_batch`].
    ///
    /// A change that makes the batch terminal gives back its enqueued tokens.
    pub(crate) fn update_batch<T>(
        &self,
        id: &BatchId,
        change: impl FnOnce(&mut Batch) -> T,
    ) -> Option<T> {
        let mut state = self.lock();
        let entry = state.batches.get_mut(id)?;
        let result = change(&mut entry.batch);
        if entry.batch.status.is_terminal() {
            state.enqueued.release(id);
        }
        Some(result)
    }

    /// Enqueues a batch's prompt tokens (per model) unless that would take a model past
    /// `limit`; the check and the reservation happen under one lock.
    ///
    /// A terminal or unknown batch reserves nothing.
    pub(crate) fn reserve_tokens(
        &self,
        id: &BatchId,
        tokens: BTreeMap<String, u64>,
        limit: Option<u64>,
    ) -> Result<(), LimitExceeded> {
        let mut state = self.lock();
        match state.batches.get(id) {
            Some(entry) if !entry.batch.status.is_terminal() => {
                state.enqueued.reserve(id, tokens, limit)
            }
            _ => Ok(()),
        }
    }

    /// The enqueued-token sums, their peaks and the refusals.
    pub(crate) fn stats(&self) -> EmulatorStats {
        self.lock().enqueued.stats()
    }

    /// Writes a batch's current state to its record (data directory mode only).
    pub(crate) async fn save_batch(&self, id: &BatchId) -> io::Result<()> {
        let Some(batches_dir) = self.batches_dir.clone() else {
            return Ok(());
        };
        let state = Arc::clone(&self.state);
        let persist_lock = Arc::clone(&self.persist_lock);
        let id = id.clone();
        // Everything happens on the blocking thread, so a run aborted while awaiting
        // it still leaves its latest state on disk.
        self.spawn_write(move || {
            let _guard = lock(&persist_lock);
            let Some(record) = lock(&state).batches.get(&id).map(|entry| BatchRecord {
                seq: entry.seq,
                batch: entry.batch.clone(),
            }) else {
                return Ok(());
            };
            let path = batches_dir.join(format!("{id}.json"));
            write_record(&batches_dir, &path, &record)
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Counts a run of `custom_id` and returns how many runs it had before this one.
    pub(crate) fn next_attempt(&self, custom_id: &str) -> u32 {
        let mut attempts = lock(&self.attempts);
        if let Some(count) = attempts.get_mut(custom_id) {
            let attempt = *count;
            *count = count.saturating_add(1);
            attempt
        } else {
            attempts.insert(custom_id.to_owned(), 1);
            0
        }
    }

    /// Writes the attempt counts to `attempts.json` (data directory mode only).
    pub(crate) async fn save_attempts(&self) -> io::Result<()> {
        let Some(path) = self.attempts_path.clone() else {
            return Ok(());
        };
        let attempts = Arc::clone(&self.attempts);
        let persist_lock = Arc::clone(&self.persist_lock);
        self.spawn_write(move || {
            let _guard = lock(&persist_lock);
            let record = AttemptsRecord {
                attempts: lock(&attempts).clone(),
            };
            let dir = path.parent().unwrap_or(Path::new("."));
            write_record(dir, &path, &record)
        })
        .await
        .map_err(io::Error::other)?
    }

    /// One page of the OpenAI batches (message batches left out), newest first.
    pub(crate) fn list_batches(&self, after: Option<&str>, limit: usize) -> ListPage<Batch> {
        page(
            self.batches_newest_first(|batch| !crate::anthropic::is_message_batch(batch)),
            |batch| batch.id.as_str(),
            after,
            limit,
        )
    }

    /// The batches that `keep` accepts, newest first.
    pub(crate) fn batches_newest_first(&self, keep: impl Fn(&Batch) -> bool) -> Vec<Batch> {
        let mut batches: Vec<(u64, Batch)> = self
            .lock()
            .batches
            .values()
            .filter(|entry| keep(&entry.batch))
            .map(|entry| (entry.seq, entry.batch.clone()))
            .collect();
        batches.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        batches.into_iter().map(|(_, batch)| batch).collect()
    }

    /// Forgets a batch and removes its record (data directory mode).
    pub(crate) async fn remove_batch(&self, id: &BatchId) -> io::Result<()> {
        self.lock().batches.remove(id);
        let Some(batches_dir) = self.batches_dir.clone() else {
            return Ok(());
        };
        let persist_lock = Arc::clone(&self.persist_lock);
        let path = batches_dir.join(format!("{id}.json"));
        self.spawn_write(move || {
            let _guard = lock(&persist_lock);
            remove_if_present(&path)
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// The attempt counts' file in a data directory.
const ATTEMPTS_FILE: &str = "attempts.json";

/// Cuts one page out of `items` (already in list order): the items after `after`, at most `limit`.
///
/// An `after` that names no item gives an empty page.
fn page<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    after: Option<&str>,
    limit: usize,
) -> ListPage<T> {
    let start = match after {
        None => 0,
        Some(after) => items
            .iter()
            .position(|item| id(item) == after)
            .map_or(items.len(), |at| at + 1),
    };
    let has_more = items.len() > start + limit;
    let data: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    ListPage {
        object: Some("list".to_owned()),
        first_id: data.first().map(|item| id(item).to_owned()),
        last_id: data.last().map(|item| id(item).to_owned()),
        has_more,
        data,
    }
}

/// Locks a mutex; a panic while holding it leaves plain data behind, so keep using it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a file's `expires_at` has passed at `now`.
fn is_expired(file: &FileObject, now: i64) -> bool {
    file.expires_at.is_some_and(|expires_at| expires_at <= now)
}

fn create_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|source| Error::Storage {
        path: path.to_owned(),
        source,
    })
}

/// The `*.json` records of a directory; leftover temp files of an interrupted write are removed.
fn json_records(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let storage = |source| Error::Storage {
        path: dir.to_owned(),
        source,
    };
    let mut records = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(storage)? {
        let path = entry.map_err(storage)?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if name.starts_with(".tmp") {
            // A write that never reached its rename; best effort, it is garbage either way.
            let _ = std::fs::remove_file(&path);
        } else if name.ends_with(".json") {
            records.push(path);
        }
    }
    records.sort();
    Ok(records)
}

/// A saved record, or `None` (with a warning naming the file) when it cannot be read or
/// is not a record: one bad file must not keep the emulator, and the state it still
/// knows, from starting. The file is left in place for its owner to inspect.
fn read_record<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let parsed = std::fs::read(path)
        .map_err(|error| error.to_string())
        .and_then(|text| serde_json::from_slice(&text).map_err(|error| error.to_string()));
    match parsed {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::warn!(
                path = %path.display(),
                %error,
                "skipping a malformed state file of the data directory (move it away or delete it)"
            );
            None
        }
    }
}

/// Writes JSON to a temp file in `dir`, then renames it over `path`.
fn write_record(dir: &Path, path: &Path, record: &impl Serialize) -> io::Result<()> {
    let mut temp = NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut temp, record)?;
    temp.write_all(b"\n")?;
    temp.as_file().sync_data()?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(page: &ListPage<String>) -> Vec<&str> {
        page.data.iter().map(String::as_str).collect()
    }

    #[test]
    fn pages_follow_after_and_limit() {
        let items: Vec<String> = ["e", "d", "c", "b", "a"].map(String::from).to_vec();
        let first = page(items.clone(), |s| s.as_str(), None, 2);
        assert_eq!(ids(&first), ["e", "d"]);
        assert!(first.has_more);
        assert_eq!(first.first_id.as_deref(), Some("e"));
        assert_eq!(first.last_id.as_deref(), Some("d"));
        let last = page(items.clone(), |s| s.as_str(), Some("c"), 2);
        assert_eq!(ids(&last), ["b", "a"]);
        assert!(!last.has_more);
        let unknown = page(items, |s| s.as_str(), Some("zz"), 2);
        assert!(unknown.data.is_empty() && unknown.first_id.is_none() && !unknown.has_more);
    }
}
