//! Lesson provenance: `.lesson-batch.json` in the output directory records, for each
//! lesson file this tool wrote, the request that produced it and the file as written.
//!
//! A lesson is *stale* when the request it would be generated from now differs from the
//! recorded one, and *edited by hand* when its file differs from the recorded hash.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use curriculum_parser::LessonCode;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::output::{TEMP_PREFIX, sha256_hex};

/// The manifest's file name inside the output directory.
pub const MANIFEST_FILE: &str = ".lesson-batch.json";

/// The schema version this crate reads and writes.
pub const MANIFEST_VERSION: u32 = 1;

/// What the output directory holds and where each lesson came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Schema version, [`MANIFEST_VERSION`].
    pub version: u32,
    /// The outline this directory's lessons are generated from (absolute), once a job
    /// claimed the directory.
    #[serde(default)]
    pub outline: Option<PathBuf>,
    /// The id of the job that owns the directory.
    #[serde(default)]
    pub job_id: Option<String>,
    /// One entry per lesson file written by this tool.
    #[serde(default)]
    pub lessons: BTreeMap<LessonCode, ManifestEntry>,
}

/// Where one lesson file came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The file's name in the output directory.
    pub file: String,
    /// SHA-256 of the file as written (lowercase hex).
    pub file_sha256: String,
    /// Hash of the request that produced it (model, messages, parameters), when known.
    #[serde(default)]
    pub request_sha256: Option<String>,
    /// The lesson title the request was built with.
    #[serde(default)]
    pub title: Option<String>,
    /// The model that answered, as the response named it.
    #[serde(default)]
    pub model: Option<String>,
    /// The batch the answer came from.
    #[serde(default)]
    pub batch_id: Option<String>,
    /// Tokens the request used.
    #[serde(default)]
    pub usage: Option<LessonUsage>,
    /// Its cost in USD at batch prices, when the model has a price.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// When the file was written (Unix seconds).
    pub written_at: i64,
}

/// Tokens of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonUsage {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// The cached part of the input tokens.
    pub cached_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
}

/// What the manifest says of a lesson file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileProvenance {
    /// Written by this tool and unchanged since.
    Recorded,
    /// Written by this tool, then changed: never overwritten without `--force`.
    EditedByHand,
    /// Not in the manifest (written before it existed, or by someone else).
    Unknown,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            outline: None,
            job_id: None,
            lessons: BTreeMap::new(),
        }
    }
}

impl Manifest {
    /// The manifest file of `out_dir`.
    pub fn path(out_dir: &Path) -> PathBuf {
        out_dir.join(MANIFEST_FILE)
    }

    /// Reads the manifest of `out_dir`; an empty one when there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] when the file exists but cannot be read, is not a manifest, or
    /// has another schema version.
    pub fn load(out_dir: &Path) -> Result<Manifest, Error> {
        let path = Manifest::path(out_dir);
        let problem = |problem: String| Error::Manifest {
            path: path.clone(),
            problem,
        };
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(err) => return Err(problem(format!("cannot read it: {err}"))),
        };
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned = serde_json::from_slice(&bytes)
            .map_err(|err| problem(format!("not a lesson manifest: {err}")))?;
        if versioned.version != MANIFEST_VERSION {
            return Err(problem(format!(
                "schema version {} (this tool reads version {MANIFEST_VERSION})",
                versioned.version
            )));
        }
        serde_json::from_slice(&bytes)
            .map_err(|err| problem(format!("not a lesson manifest: {err}")))
    }

    /// Writes the manifest into `out_dir` atomically (temp file, then rename).
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] when it cannot be written.
    pub fn save(&self, out_dir: &Path) -> Result<(), Error> {
        let path = Manifest::path(out_dir);
        let problem = |err: io::Error| Error::Manifest {
            path: path.clone(),
            problem: format!("cannot write it: {err}"),
        };
        fs::create_dir_all(out_dir).map_err(problem)?;
        let mut builder = tempfile::Builder::new();
        #[cfg(unix)]
        // As `open(2)` with 0o666 would: the umask decides (0644 under umask 022), not
        // tempfile's 0600, for a file the user reads and shares.
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut temp = builder
            .prefix(TEMP_PREFIX)
            .suffix(".tmp")
            .tempfile_in(out_dir)
            .map_err(problem)?;
        let json = serde_json::to_vec(self)
            .map_err(io::Error::from)
            .map_err(problem)?;
        temp.write_all(&json)
            .and_then(|()| temp.write_all(b"\n"))
            .and_then(|()| temp.as_file().sync_all())
            .map_err(problem)?;
        temp.persist(&path).map_err(|err| problem(err.error))?;
        Ok(())
    }

    /// What the manifest says of `code`'s file with content `bytes`.
    pub fn provenance(&self, code: LessonCode, bytes: &[u8]) -> FileProvenance {
        match self.lessons.get(&code) {
            None => FileProvenance::Unknown,
            Some(entry) if entry.file_sha256 == sha256_hex(bytes) => FileProvenance::Recorded,
            Some(_) => FileProvenance::EditedByHand,
        }
    }

    /// [`Manifest::provenance`] of the file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::ReadExisting`] when the file cannot be read.
    pub fn provenance_of(&self, code: LessonCode, path: &Path) -> Result<FileProvenance, Error> {
        if !self.lessons.contains_key(&code) {
            return Ok(FileProvenance::Unknown);
        }
        let bytes = fs::read(path).map_err(|source| Error::ReadExisting {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(self.provenance(code, &bytes))
    }

    /// Records newly written lessons (from [`Summary::provenance`](crate::Summary::provenance)).
    /// An entry that knows less than the recorded one about the same file (no request
    /// hash, as from a results file processed on its own) keeps what was recorded.
    pub fn record(&mut self, entries: impl IntoIterator<Item = (LessonCode, ManifestEntry)>) {
        for (code, mut entry) in entries {
            if let Some(old) = self.lessons.get(&code)
                && old.file_sha256 == entry.file_sha256
                && entry.request_sha256.is_none()
            {
                entry.request_sha256.clone_from(&old.request_sha256);
                entry.title = entry.title.or_else(|| old.title.clone());
                entry.batch_id = entry.batch_id.or_else(|| old.batch_id.clone());
            }
            self.lessons.insert(code, entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str, request: Option<&str>) -> ManifestEntry {
        ManifestEntry {
            file: "M0-L001.md".into(),
            file_sha256: sha256_hex(text.as_bytes()),
            request_sha256: request.map(str::to_owned),
            title: Some("Intro".into()),
            model: Some("gpt-4o-mini".into()),
            batch_id: Some("batch_1".into()),
            usage: Some(LessonUsage::default()),
            cost_usd: Some(0.001),
            written_at: 1,
        }
    }

    #[test]
    fn round_trips_and_tells_recorded_edited_and_unknown_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Manifest::default());
        let code: LessonCode = "M0-L001".parse().unwrap();
        let mut manifest = Manifest::default();
        manifest.record([(code, entry("# Lesson\n", Some("abc")))]);
        manifest.save(dir.path()).unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(loaded, manifest);
        assert_eq!(
            loaded.provenance(code, b"# Lesson\n"),
            FileProvenance::Recorded
        );
        assert_eq!(
            loaded.provenance(code, b"# Edited\n"),
            FileProvenance::EditedByHand
        );
        let other: LessonCode = "M0-L002".parse().unwrap();
        assert_eq!(loaded.provenance(other, b"x"), FileProvenance::Unknown);
        // Only the manifest is in the directory: no temp file left.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        // Processing the same answer without request knowledge keeps the request hash.
        manifest.record([(code, entry("# Lesson\n", None))]);
        assert_eq!(
            manifest.lessons[&code].request_sha256.as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn a_broken_or_newer_manifest_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(Manifest::path(dir.path()), "{\"version\": 9}").unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(MANIFEST_FILE) && err.contains("version 9"),
            "{err}"
        );
        fs::write(Manifest::path(dir.path()), "nonsense").unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a lesson manifest"), "{err}");
    }
}
