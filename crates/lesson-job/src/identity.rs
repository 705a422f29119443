//! Job identity: a job is one outline generating into one output directory; its id derives
//! from the canonical output directory, and its files live in one folder of the work dir.

use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

/// Batch metadata key holding the job id; batches of other jobs never match it.
pub const JOB_ID_KEY: &str = "job_id";
/// Batch metadata key holding the job's readable name.
pub const JOB_NAME_KEY: &str = "job";
/// The job folder's subfolder where the built-in emulator keeps its files and batches.
pub const EMULATOR_DIR: &str = "emulator";
/// Batch metadata key naming the tool.
pub const TOOL_KEY: &str = "tool";
/// The tool's name in batch metadata.
pub const TOOL_NAME: &str = "lesson-batch";

/// A job's id: 16 lowercase hex digits of the SHA-256 of the canonical output directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// The id of the job writing into `out_dir`, which must be canonical (absolute, with
    /// symlinks resolved), so that every spelling of the directory gives the same id.
    pub fn for_out_dir(out_dir: &Path) -> JobId {
        let digest = Sha256::digest(out_dir.as_os_str().as_encoded_bytes());
        JobId(hex(&digest[..8]))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// SHA-256 of bytes, lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Where a job's files are. Paths are absolute, so nothing depends on the current directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPaths {
    /// The output directory (canonical): lesson files, the manifest, the lock.
    pub out_dir: PathBuf,
    /// The work dir (canonical), shared by any number of jobs.
    pub work_dir: PathBuf,
    /// This job's folder in the work dir, `<work-dir>/<name>-<id prefix>`: ledger, shards,
    /// downloads, failures list.
    pub dir: PathBuf,
}

/// The ledger's file name inside a job folder.
pub const LEDGER_FILE: &str = "ledger.json";

/// The file in the output directory recording the job's unwritten message batches.
pub const SENT_BATCHES_FILE: &str = ".lesson-batch.sent.json";

impl JobPaths {
    /// Resolves the output and work directories (whether they exist yet or not; nothing is
    /// created) and names the job's folder.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a directory cannot be resolved.
    pub fn new(out_dir: &Path, work_dir: &Path, name: &str) -> Result<(JobPaths, JobId), Error> {
        let out_dir = canonical(out_dir)?;
        let work_dir = canonical(work_dir)?;
        let id = JobId::for_out_dir(&out_dir);
        let dir = work_dir.join(format!("{name}-{}", &id.as_str()[..8]));
        Ok((
            JobPaths {
                out_dir,
                work_dir,
                dir,
            },
            id,
        ))
    }

    /// The job's ledger.
    pub fn ledger(&self) -> PathBuf {
        self.dir.join(LEDGER_FILE)
    }

    /// The record of the job's message batches not written as lessons yet, in the output
    /// directory ([`SENT_BATCHES_FILE`]), so that a run with a lost ledger, or with another
    /// work dir, finds them: Anthropic's batches carry no metadata to be found by.
    pub fn sent_batches(&self) -> PathBuf {
        self.out_dir.join(SENT_BATCHES_FILE)
    }

    /// The failures list of the last run.
    pub fn failures(&self) -> PathBuf {
        self.dir.join("failures.jsonl")
    }

    /// Where a dry run writes its shards (never submitted).
    pub fn dry_run_dir(&self) -> PathBuf {
        self.dir.join("dry-run")
    }

    /// Where the built-in emulator keeps this job's files and batches (`<job>/emulator/`).
    pub fn emulator_dir(&self) -> PathBuf {
        self.dir.join(EMULATOR_DIR)
    }
}

/// `path` made absolute with symlinks resolved, for the part that exists; the rest (not
/// created yet) is appended with `.` and `..` resolved by name.
pub(crate) fn canonical(path: &Path) -> Result<PathBuf, Error> {
    let absolute =
        std::path::absolute(path).map_err(|source| Error::io("resolve", path, source))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        match fs::canonicalize(existing) {
            Ok(mut resolved) => {
                for part in rest.iter().rev() {
                    match part {
                        Component::ParentDir => {
                            resolved.pop();
                        }
                        Component::CurDir => {}
                        other => resolved.push(other.as_os_str()),
                    }
                }
                return Ok(resolved);
            }
            Err(source) => match (existing.parent(), existing.components().next_back()) {
                (Some(parent), Some(last)) => {
                    rest.push(last);
                    existing = parent;
                }
                _ => return Err(Error::io("resolve", path, source)),
            },
        }
    }
}

/// A job name fit for a folder: `[A-Za-z0-9_-]`, other characters as `_`, at most 40;
/// `lessons` when nothing is left.
pub fn job_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let name = name.trim_matches('_');
    if name.is_empty() {
        "lessons".to_owned()
    } else {
        name.to_owned()
    }
}

/// What a job was made from, stored in its ledger: the outline (path and content hash),
/// the template's and the settings' hashes, and the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The job id.
    pub job_id: JobId,
    /// The output directory.
    pub out_dir: PathBuf,
    /// The outline file.
    pub outline: PathBuf,
    /// SHA-256 of the outline's bytes.
    pub outline_sha256: String,
    /// SHA-256 of the parsed template.
    pub template_sha256: String,
    /// SHA-256 of the settings (JSON).
    pub settings_sha256: String,
    /// The model.
    pub model: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_canonical_output_directory() {
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        let (a, id_a) = JobPaths::new(&root.path().join("a/out"), &work, "course").unwrap();
        assert!(!work.exists(), "nothing is created");
        fs::create_dir_all(root.path().join("a")).unwrap();
        let (b, id_b) = JobPaths::new(&root.path().join("b/out"), &work, "course").unwrap();
        assert_ne!(id_a, id_b);
        assert_ne!(a.dir, b.dir, "same-named courses get their own folders");
        // Another spelling of the same directory is the same job.
        let (again, id_again) =
            JobPaths::new(&root.path().join("a/./x/../out"), &work, "course").unwrap();
        assert_eq!((again.dir, id_again), (a.dir.clone(), id_a.clone()));
        assert!(a.dir.is_absolute() && a.out_dir.is_absolute());
        assert_eq!(id_a.as_str().len(), 16);
    }

    #[test]
    fn names_are_folder_safe() {
        assert_eq!(job_name("data gov/../x"), "data_gov____x");
        assert_eq!(job_name("..."), "lessons");
        assert_eq!(job_name("course"), "course");
    }
}
