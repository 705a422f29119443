//! The job ledger: what was uploaded, created, seen and downloaded per shard, as versioned JSON.
//!
//! The ledger is written atomically (temporary file in the same directory, then rename) after
//! every step, with the intent of a step recorded before it starts, so a crash at any point
//! leaves a state the job runner can resume from without repeating paid work.
//!
//! Paths are absolute in memory; on disk a path inside the ledger's directory is stored relative
//! to that directory, so a work dir can be moved and nothing depends on the current directory.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::batches::unix_now;
use crate::error::Error;
use crate::types::{BatchError, BatchId, BatchStatus, FileId, RequestCounts};

/// The schema version this crate reads and writes. Bump it when the shape changes.
///
/// Version 2 keys shards by a caller-given id, stores paths relative to the ledger's
/// directory and holds the caller's [`Ledger::context`]; version 1 is not read.
pub const LEDGER_VERSION: u32 = 2;

/// The state of one job: a run id, the caller's context and the shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Schema version, [`LEDGER_VERSION`].
    pub version: u32,
    /// Random id of this job (16 hex chars), stored in every batch's metadata.
    pub run_id: String,
    /// When the ledger was created (Unix seconds).
    pub created_at: i64,
    /// Opaque data the caller keeps with the job (e.g. what identifies it); this crate never
    /// reads it.
    #[serde(default)]
    pub context: serde_json::Map<String, serde_json::Value>,
    /// The shards, in the order they were added; a shard's index is its position.
    pub shards: Vec<ShardRecord>,
}

/// Everything known about one shard.
///
/// Paths are absolute once loaded by [`Ledger::load`] or registered by the
/// [`JobRunner`](crate::JobRunner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Position in [`Ledger::shards`].
    pub index: usize,
    /// The caller's stable name of the shard, unique in the ledger: the runner matches shards
    /// by it, puts it in the batch metadata and names the downloads after it.
    pub id: String,
    /// The input JSONL file.
    pub input_path: PathBuf,
    /// SHA-256 of the input file (lowercase hex).
    pub sha256: String,
    /// Size of the input file.
    pub bytes: u64,
    /// Batch attempt, starting at 1; [`JobRunner::retry_shard`](crate::JobRunner::retry_shard)
    /// increments it.
    pub attempt: u32,
    /// The model of the shard's requests, when the caller said (it is what the
    /// organization's enqueued-token limit is counted by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The shard's estimated input tokens, when the caller said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// The earlier batches of this shard, one per attempt given up on (oldest first), e.g.
    /// those refused with `token_limit_exceeded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptRecord>,
    /// Intent: an upload was started (Unix seconds).
    #[serde(default)]
    pub upload_requested_at: Option<i64>,
    /// Result: the uploaded file.
    #[serde(default)]
    pub input_file_id: Option<FileId>,
    /// Intent: a create was started (Unix seconds).
    #[serde(default)]
    pub create_requested_at: Option<i64>,
    /// Result: the created batch.
    #[serde(default)]
    pub batch_id: Option<BatchId>,
    /// Last status seen.
    #[serde(default)]
    pub status: Option<BatchStatus>,
    /// Last counts seen.
    #[serde(default)]
    pub counts: Option<RequestCounts>,
    /// Output file of the terminal batch.
    #[serde(default)]
    pub output_file_id: Option<FileId>,
    /// Error file of the terminal batch.
    #[serde(default)]
    pub error_file_id: Option<FileId>,
    /// `errors.data` of a failed batch.
    #[serde(default)]
    pub errors: Vec<BatchError>,
    /// Where the output file was downloaded.
    #[serde(default)]
    pub output_path: Option<PathBuf>,
    /// Where the error file was downloaded.
    #[serde(default)]
    pub error_path: Option<PathBuf>,
    /// Set once every file of the terminal batch is downloaded (or there was none).
    #[serde(default)]
    pub downloaded_at: Option<i64>,
    /// The caller took the results over.
    #[serde(default)]
    pub handed_on: bool,
    /// When the batch was first seen terminal (Unix seconds, this machine's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_at: Option<i64>,
    /// The input file was deleted from the server (or was already gone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub input_file_deleted: bool,
    /// The output and error files were deleted from the server (or were already gone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub result_files_deleted: bool,
    /// Last change of this record (Unix seconds).
    pub updated_at: i64,
}

/// One earlier batch of a shard, kept when the shard was submitted again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The attempt number (the batch metadata's `attempt`).
    pub attempt: u32,
    /// The batch, when one was created.
    pub batch_id: Option<BatchId>,
    /// Its last status seen.
    pub status: Option<BatchStatus>,
    /// The `code`s of its `errors.data`, e.g. `token_limit_exceeded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<String>,
    /// When its create was asked for (Unix seconds).
    pub created_at: Option<i64>,
    /// When it was given up on and the shard reset (Unix seconds).
    pub ended_at: i64,
}

/// Where a shard stands, derived from its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardStage {
    /// Registered, nothing sent.
    New,
    /// An upload started but its file id was not recorded.
    Uploading,
    /// Uploaded; no batch asked for.
    Uploaded,
    /// A create started but its batch id was not recorded.
    Creating,
    /// A batch exists and is not terminal.
    Submitted,
    /// The batch is terminal; downloads are pending.
    Terminal,
    /// Everything is downloaded; the caller has not taken the results over.
    Downloaded,
    /// The caller took the results over.
    HandedOn,
}

impl ShardRecord {
    /// A new record for an input file.
    pub fn new(
        index: usize,
        id: impl Into<String>,
        input_path: PathBuf,
        sha256: String,
        bytes: u64,
    ) -> Self {
        ShardRecord {
            index,
            id: id.into(),
            input_path,
            sha256,
            bytes,
            attempt: 1,
            model: None,
            input_tokens: None,
            attempts: Vec::new(),
            upload_requested_at: None,
            input_file_id: None,
            create_requested_at: None,
            batch_id: None,
            status: None,
            counts: None,
            output_file_id: None,
            error_file_id: None,
            errors: Vec::new(),
            output_path: None,
            error_path: None,
            downloaded_at: None,
            handed_on: false,
            terminal_at: None,
            input_file_deleted: false,
            result_files_deleted: false,
            updated_at: unix_now(),
        }
    }

    /// Where this shard stands.
    pub fn stage(&self) -> ShardStage {
        if self.handed_on {
            ShardStage::HandedOn
        } else if self.downloaded_at.is_some() {
            ShardStage::Downloaded
        } else if self.status.is_some_and(BatchStatus::is_terminal) {
            ShardStage::Terminal
        } else if self.batch_id.is_some() {
            ShardStage::Submitted
        } else if self.create_requested_at.is_some() {
            ShardStage::Creating
        } else if self.input_file_id.is_some() {
            ShardStage::Uploaded
        } else if self.upload_requested_at.is_some() {
            ShardStage::Uploading
        } else {
            ShardStage::New
        }
    }

    /// Whether work remains before the results are on disk.
    pub fn is_unfinished(&self) -> bool {
        self.downloaded_at.is_none()
    }

    /// Whether the batch failed because the organization's enqueued-token limit was reached:
    /// nothing ran, and the same input can be submitted again later
    /// ([`JobRunner::retry_shard`](crate::JobRunner::retry_shard)).
    pub fn token_limit_exceeded(&self) -> bool {
        self.status == Some(BatchStatus::Failed)
            && self
                .errors
                .iter()
                .any(|error| error.code.as_deref() == Some("token_limit_exceeded"))
    }

    /// Whether the batch was created (or a create was asked for) and is not terminal yet: it
    /// counts against the organization's enqueued-token limit.
    pub fn is_in_flight(&self) -> bool {
        (self.batch_id.is_some() || self.create_requested_at.is_some())
            && !self.status.is_some_and(BatchStatus::is_terminal)
    }

    /// The shard's id, used in batch metadata and download names.
    pub fn name(&self) -> &str {
        &self.id
    }

    /// Every path of the record, to resolve or relativize them together.
    fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        std::iter::once(&mut self.input_path)
            .chain(self.output_path.as_mut())
            .chain(self.error_path.as_mut())
    }
}

impl Ledger {
    /// An empty ledger with a fresh random run id.
    pub fn new() -> Self {
        Ledger {
            version: LEDGER_VERSION,
            run_id: format!("{:016x}", rand::random::<u64>()),
            created_at: unix_now(),
            context: serde_json::Map::new(),
            shards: Vec::new(),
        }
    }

    /// Reads a ledger, resolving the relative paths it stores against its directory, so every
    /// path of the result is absolute whatever the current directory.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when it cannot be read, [`Error::LedgerVersion`] for another schema
    /// version, [`Error::LedgerParse`] when it is not a ledger.
    pub fn load(path: &Path) -> Result<Ledger, Error> {
        let text = std::fs::read(path).map_err(|source| Error::io("read", path, source))?;
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned =
            serde_json::from_slice(&text).map_err(|source| Error::LedgerParse {
                path: path.to_path_buf(),
                source,
            })?;
        if versioned.version != LEDGER_VERSION {
            return Err(Error::LedgerVersion {
                path: path.to_path_buf(),
                found: versioned.version,
                supported: LEDGER_VERSION,
            });
        }
        let mut ledger: Ledger =
            serde_json::from_slice(&text).map_err(|source| Error::LedgerParse {
                path: path.to_path_buf(),
                source,
            })?;
        let dir = ledger_dir(path)?;
        for shard in &mut ledger.shards {
            for stored in shard.paths_mut() {
                if stored.is_relative() {
                    *stored = dir.join(&*stored);
                }
            }
        }
        Ok(ledger)
    }

    /// Reads the ledger at `path`, or creates (and writes) an empty one, with its directory,
    /// when there is none.
    ///
    /// # Errors
    ///
    /// As [`Ledger::load`] and [`Ledger::save`].
    pub fn load_or_create(path: &Path) -> Result<Ledger, Error> {
        if path.exists() {
            return Ledger::load(path);
        }
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::io("create", dir, source))?;
        }
        let ledger = Ledger::new();
        ledger.save(path)?;
        Ok(ledger)
    }

    /// Writes the ledger atomically: a temporary file in the same directory, synced, then renamed.
    ///
    /// A path inside the ledger's directory is written relative to it, any other path absolute.
    /// A relative path in memory is taken as relative to the current directory (as the
    /// [`JobRunner`](crate::JobRunner) never leaves one).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be written or the current directory is needed
    /// and unknown.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let dir = ledger_dir(path)?;
        let mut stored = self.clone();
        for shard in &mut stored.shards {
            for path in shard.paths_mut() {
                *path = stored_path(path, &dir)?;
            }
        }
        let mut builder = tempfile::Builder::new();
        #[cfg(unix)]
        // As `open(2)` with 0o666 would: the umask decides (0644 under umask 022), not
        // tempfile's 0600, for a file the user reads and shares.
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut temp = builder
            .tempfile_in(&dir)
            .map_err(|source| Error::io("create a temporary file in", &dir, source))?;
        let json = serde_json::to_vec_pretty(&stored).expect("a ledger always serializes");
        temp.write_all(&json)
            .and_then(|()| temp.write_all(b"\n"))
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|source| Error::io("write", temp.path().to_path_buf(), source))?;
        temp.persist(path)
            .map_err(|err| Error::io("rename a ledger to", path, err.error))?;
        Ok(())
    }

    /// The shard with the id `id`.
    pub fn shard_by_id(&self, id: &str) -> Option<&ShardRecord> {
        self.shards.iter().find(|shard| shard.id == id)
    }

    /// The shard at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownShard`] when there is none.
    pub fn shard(&self, index: usize) -> Result<&ShardRecord, Error> {
        self.shards.get(index).ok_or(Error::UnknownShard { index })
    }

    /// The shard at `index`, mutable.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownShard`] when there is none.
    pub fn shard_mut(&mut self, index: usize) -> Result<&mut ShardRecord, Error> {
        self.shards
            .get_mut(index)
            .ok_or(Error::UnknownShard { index })
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
    }
}

/// `path` made absolute against the current directory, without touching the disk.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|source| Error::io("resolve", path, source))
}

/// The absolute directory of a ledger file.
fn ledger_dir(path: &Path) -> Result<PathBuf, Error> {
    let path = absolute(path)?;
    Ok(path
        .parent()
        .map_or_else(|| path.clone(), Path::to_path_buf))
}

/// How a path is written in the ledger at `dir`: relative when it lies below `dir` (without
/// `..`), else absolute.
fn stored_path(path: &Path, dir: &Path) -> Result<PathBuf, Error> {
    let path = absolute(path)?;
    match path.strip_prefix(dir) {
        Ok(rest)
            if !rest.as_os_str().is_empty()
                && rest
                    .components()
                    .all(|component| matches!(component, Component::Normal(_))) =>
        {
            Ok(rest.to_path_buf())
        }
        _ => Ok(path),
    }
}

/// SHA-256 (lowercase hex) and size of a file, read in chunks.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read.
pub async fn sha256_file(path: &Path) -> Result<(String, u64), Error> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|source| Error::io("open", path, source))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .await
            .map_err(|source| Error::io("read", path, source))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    let digest = hasher.finalize();
    let hex = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok((hex, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs/demo.json");
        let mut ledger = Ledger::load_or_create(&path).unwrap();
        assert_eq!(ledger.run_id.len(), 16);
        assert!(ledger.run_id.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(ledger.context.is_empty());
        let input = dir.path().join("jobs/a.jsonl");
        ledger
            .shards
            .push(ShardRecord::new(0, "a", input, "00".repeat(32), 10));
        ledger
            .context
            .insert("job_id".into(), serde_json::json!("demo-1"));
        ledger.save(&path).unwrap();
        assert_eq!(Ledger::load_or_create(&path).unwrap(), ledger);
        assert_eq!(ledger.shard_by_id("a").map(|shard| shard.index), Some(0));
        assert!(ledger.shard_by_id("b").is_none());
        let only_ledger: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(only_ledger.len(), 1, "no temporary file is left");

        std::fs::write(&path, r#"{"version": 99, "whatever": true}"#).unwrap();
        assert!(matches!(
            Ledger::load(&path),
            Err(Error::LedgerVersion {
                found: 99,
                supported: 2,
                ..
            })
        ));
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            Ledger::load(&path),
            Err(Error::LedgerParse { .. })
        ));
    }

    #[test]
    fn a_version_1_ledger_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        let old = r#"{"version": 1, "run_id": "0123456789abcdef", "created_at": 1, "shards": [
            {"index": 0, "input_path": "a.jsonl", "sha256": "00", "bytes": 1, "attempt": 1, "updated_at": 1}]}"#;
        std::fs::write(&path, old).unwrap();
        let err = Ledger::load(&path).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LedgerVersion {
                    found: 1,
                    supported: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.ends_with("has schema version 1, this program reads only version 2"),
            "{message}"
        );
    }

    #[test]
    fn paths_inside_the_ledger_dir_are_stored_relative_and_others_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let path = work.join("job.json");
        let mut ledger = Ledger::load_or_create(&path).unwrap();
        let mut inside = ShardRecord::new(0, "a", work.join("a.jsonl"), String::new(), 0);
        inside.output_path = Some(work.join("results/a_output.jsonl"));
        let outside = dir.path().join("b.jsonl");
        let mut elsewhere = ShardRecord::new(1, "b", outside.clone(), String::new(), 0);
        // Below the directory only lexically: `..` takes it out again.
        elsewhere.error_path = Some(work.join("../b_errors.jsonl"));
        ledger.shards = vec![inside, elsewhere];
        ledger.save(&path).unwrap();

        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["version"], 2);
        assert_eq!(raw["context"], serde_json::json!({}));
        let shards = &raw["shards"];
        assert_eq!(shards[0]["id"], "a");
        assert_eq!(shards[0]["input_path"], "a.jsonl");
        assert_eq!(
            Path::new(shards[0]["output_path"].as_str().unwrap()),
            Path::new("results").join("a_output.jsonl")
        );
        assert_eq!(shards[0]["error_path"], serde_json::Value::Null);
        assert_eq!(
            Path::new(shards[1]["input_path"].as_str().unwrap()),
            outside
        );
        let error_path = Path::new(shards[1]["error_path"].as_str().unwrap());
        assert!(error_path.is_absolute(), "{}", error_path.display());

        assert_eq!(Ledger::load(&path).unwrap(), ledger);
    }

    #[test]
    fn relative_paths_resolve_against_the_ledger_dir_not_the_current_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moved/job.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let stored = r#"{"version": 2, "run_id": "0123456789abcdef", "created_at": 1,
            "context": {"job_id": "demo"},
            "shards": [{"index": 0, "id": "r01-001", "input_path": "r01_input_001.jsonl",
                "sha256": "00", "bytes": 1, "attempt": 1,
                "output_path": "results/r01-001_output.jsonl",
                "error_path": "/elsewhere/r01-001_errors.jsonl", "updated_at": 1}]}"#;
        std::fs::write(&path, stored).unwrap();

        let ledger = Ledger::load(&path).unwrap();

        let shard = &ledger.shards[0];
        let work = dir.path().join("moved");
        assert_eq!(shard.input_path, work.join("r01_input_001.jsonl"));
        assert_eq!(
            shard.output_path.as_deref(),
            Some(work.join("results/r01-001_output.jsonl").as_path())
        );
        assert_eq!(
            shard.error_path.as_deref(),
            Some(Path::new("/elsewhere/r01-001_errors.jsonl"))
        );
        assert_eq!(shard.name(), "r01-001");
        assert_eq!(ledger.context["job_id"], "demo");
    }

    #[tokio::test]
    async fn hashes_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, "abc").unwrap();
        let (hex, bytes) = sha256_file(&path).await.unwrap();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(bytes, 3);
    }

    #[test]
    fn stages_follow_the_record() {
        let mut shard = ShardRecord::new(0, "a", "a.jsonl".into(), String::new(), 0);
        assert_eq!(shard.stage(), ShardStage::New);
        shard.upload_requested_at = Some(1);
        assert_eq!(shard.stage(), ShardStage::Uploading);
        shard.input_file_id = Some(FileId::from("file-1"));
        assert_eq!(shard.stage(), ShardStage::Uploaded);
        shard.create_requested_at = Some(2);
        assert_eq!(shard.stage(), ShardStage::Creating);
        shard.batch_id = Some(BatchId::from("batch_1"));
        shard.status = Some(BatchStatus::InProgress);
        assert_eq!(shard.stage(), ShardStage::Submitted);
        shard.status = Some(BatchStatus::Failed);
        shard.errors.push(BatchError {
            code: Some("token_limit_exceeded".into()),
            ..BatchError::default()
        });
        assert_eq!(shard.stage(), ShardStage::Terminal);
        assert!(shard.token_limit_exceeded());
        shard.downloaded_at = Some(3);
        assert_eq!(shard.stage(), ShardStage::Downloaded);
        shard.handed_on = true;
        assert_eq!(shard.stage(), ShardStage::HandedOn);
    }
}
