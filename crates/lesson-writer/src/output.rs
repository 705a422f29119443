//! Atomic, idempotent lesson writes, the overwrite policy, and leftover temp files.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, KeptReason};

/// The name prefix of the temp files this crate writes (always ending in `.tmp`).
pub const TEMP_PREFIX: &str = ".lesson-writer-";

/// Whether an existing lesson file with different content may be replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Keep the existing file; the lesson is counted as kept ([`KeptReason::Exists`]).
    #[default]
    Forbid,
    /// Replace a file only when the manifest shows this tool wrote it and it was not
    /// changed since; a file edited by hand is kept ([`KeptReason::EditedByHand`]), and so
    /// is one the manifest does not know ([`KeptReason::Exists`]).
    IfUnedited,
    /// Replace the existing file (atomically).
    Allow,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// A new file was created (or an empty one replaced).
    Created,
    /// An existing file with other content was replaced.
    Replaced,
    /// The file already held exactly this content.
    Unchanged,
    /// The file exists with other content and was not replaced.
    Kept(KeptReason),
}

/// Writes the bytes of a file; the seam tests use to simulate a failing disk.
pub(crate) trait FileWriter: Sync {
    /// Writes all of `bytes` to `file`.
    fn write(&self, file: &mut fs::File, bytes: &[u8]) -> io::Result<()>;
}

/// The real writer.
pub(crate) struct DiskWriter;

impl FileWriter for DiskWriter {
    fn write(&self, file: &mut fs::File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)?;
        file.flush()
    }
}

/// `dir/name`, checked to sit directly inside `dir`.
pub(crate) fn path_in(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let path = dir.join(name);
    let direct = path.parent() == Some(dir)
        && path.file_name().and_then(|name| name.to_str()) == Some(name)
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0']);
    if direct {
        Ok(path)
    } else {
        Err(Error::OutsideOutDir {
            path,
            out_dir: dir.to_path_buf(),
        })
    }
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Decides whether an existing file with other content may be replaced: `Ok` to
/// replace, or the reason it is kept. Called with the existing file's bytes.
pub(crate) type MayReplace<'a> = &'a dyn Fn(&[u8]) -> Result<(), KeptReason>;

/// The policy of [`Overwrite`] for a file the manifest recorded with `recorded_sha256`.
pub(crate) fn policy(
    overwrite: Overwrite,
    recorded_sha256: Option<&str>,
    existing: &[u8],
) -> Result<(), KeptReason> {
    match overwrite {
        Overwrite::Allow => Ok(()),
        Overwrite::Forbid => Err(KeptReason::Exists),
        Overwrite::IfUnedited => match recorded_sha256 {
            None => Err(KeptReason::Exists),
            Some(recorded) if recorded == sha256_hex(existing) => Ok(()),
            Some(_) => Err(KeptReason::EditedByHand),
        },
    }
}

/// Writes `text` to `path` atomically: a temp file in the same directory, then a
/// rename. Identical content is not rewritten; an empty file (no lesson) is
/// replaced; other content is replaced only when `may_replace` allows it.
pub(crate) fn write_atomic(
    path: &Path,
    text: &str,
    may_replace: MayReplace<'_>,
    custom_id: &str,
    writer: &dyn FileWriter,
) -> Result<WriteOutcome, Error> {
    let read_error = |source| Error::ReadExisting {
        path: path.to_path_buf(),
        source,
    };
    let exists = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == 0 => true,
        Ok(meta) => {
            let existing = if meta.is_file() {
                fs::read(path).map_err(read_error)?
            } else {
                // A directory or a special file: never replaced, nothing to compare.
                return Ok(WriteOutcome::Kept(KeptReason::Exists));
            };
            if existing == text.as_bytes() {
                return Ok(WriteOutcome::Unchanged);
            }
            if let Err(reason) = may_replace(&existing) {
                return Ok(WriteOutcome::Kept(reason));
            }
            true
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => false,
        Err(source) => return Err(read_error(source)),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        custom_id: custom_id.to_owned(),
        source,
    };
    // A dot-name ending in `.tmp`, so a crash never leaves anything named `*.md`.
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    // As `open(2)` with 0o666 would: the umask decides (0644 under umask 022), not
    // tempfile's 0600, for a file the user reads and shares.
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut temp = builder
        .prefix(TEMP_PREFIX)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_error)?;
    writer
        .write(temp.as_file_mut(), text.as_bytes())
        .map_err(write_error)?;
    if exists {
        temp.persist(path).map_err(|err| write_error(err.error))?;
        return Ok(WriteOutcome::Replaced);
    }
    match temp.persist_noclobber(path) {
        Ok(_) => Ok(WriteOutcome::Created),
        // Someone created the file since we looked: theirs stays.
        Err(err) if err.error.kind() == io::ErrorKind::AlreadyExists => {
            Ok(WriteOutcome::Kept(KeptReason::Exists))
        }
        Err(err) => Err(write_error(err.error)),
    }
}

/// Whether `name` is one of this crate's temp files.
pub fn is_temp_file(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp")
}

/// Removes the temp files an earlier, killed run left in `dir` and its `rejected/`
/// folder: only names of this crate's own making ([`is_temp_file`]), nothing else.
/// Call it only while no other run writes into `dir` (under the job's lock).
/// Returns the removed files; a missing directory has none.
///
/// # Errors
///
/// [`Error::ListDir`] when a directory cannot be listed, [`Error::RemoveLeftover`]
/// when a leftover cannot be removed.
pub fn remove_leftovers(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    for dir in [dir.to_path_buf(), dir.join(crate::REJECTED_DIR)] {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::ListDir { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| Error::ListDir {
                path: dir.clone(),
                source,
            })?;
            let is_ours = entry.file_name().to_str().is_some_and(is_temp_file)
                && entry.file_type().is_ok_and(|kind| kind.is_file());
            if is_ours {
                let path = entry.path();
                fs::remove_file(&path).map_err(|source| Error::RemoveLeftover {
                    path: path.clone(),
                    source,
                })?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_directory() {
        let dir = Path::new("/tmp/out");
        assert_eq!(path_in(dir, "M0-L001.md").unwrap(), dir.join("M0-L001.md"));
        for name in ["../x.md", "a/b.md", "/etc/passwd", "..", ".", "", ".hidden"] {
            assert!(
                matches!(path_in(dir, name), Err(Error::OutsideOutDir { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn writes_are_idempotent_and_respect_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("M0-L001.md");
        let write = |text: &str, overwrite: Overwrite, recorded: Option<&str>| {
            let may = move |existing: &[u8]| policy(overwrite, recorded, existing);
            write_atomic(&path, text, &may, "id", &DiskWriter).unwrap()
        };
        assert_eq!(
            write("one\n", Overwrite::Forbid, None),
            WriteOutcome::Created
        );
        assert_eq!(
            write("one\n", Overwrite::Forbid, None),
            WriteOutcome::Unchanged
        );
        assert_eq!(
            write("two\n", Overwrite::Forbid, None),
            WriteOutcome::Kept(KeptReason::Exists)
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\n");
        // Unedited since written: replaced; edited (other hash): kept; unknown: kept.
        let one = sha256_hex(b"one\n");
        assert_eq!(
            write(
                "two\n",
                Overwrite::IfUnedited,
                Some("0".repeat(64).as_str())
            ),
            WriteOutcome::Kept(KeptReason::EditedByHand)
        );
        assert_eq!(
            write("two\n", Overwrite::IfUnedited, None),
            WriteOutcome::Kept(KeptReason::Exists)
        );
        assert_eq!(
            write("two\n", Overwrite::IfUnedited, Some(&one)),
            WriteOutcome::Replaced
        );
        assert_eq!(
            write("three\n", Overwrite::Allow, None),
            WriteOutcome::Replaced
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "three\n");
        // An empty file is no lesson: replaced whatever the policy.
        fs::write(&path, "").unwrap();
        assert_eq!(
            write("four\n", Overwrite::Forbid, None),
            WriteOutcome::Replaced
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn leftovers_of_our_own_naming_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(crate::REJECTED_DIR)).unwrap();
        let ours = [
            dir.path().join(".lesson-writer-abc123.tmp"),
            dir.path().join("rejected/.lesson-writer-x.tmp"),
        ];
        let theirs = [
            dir.path().join("M0-L001.md"),
            dir.path().join(".lesson-writer-notes.md"),
            dir.path().join("other.tmp"),
            dir.path().join(".tmpAbC123"),
        ];
        for path in ours.iter().chain(&theirs) {
            fs::write(path, "x").unwrap();
        }
        let mut removed = remove_leftovers(dir.path()).unwrap();
        removed.sort();
        let mut expected = ours.to_vec();
        expected.sort();
        assert_eq!(removed, expected);
        assert!(theirs.iter().all(|path| path.exists()));
        assert!(
            remove_leftovers(&dir.path().join("missing"))
                .unwrap()
                .is_empty()
        );
    }

    /// Writes half the bytes, then fails, as a full disk would.
    struct FailingWriter;

    impl FileWriter for FailingWriter {
        fn write(&self, file: &mut fs::File, bytes: &[u8]) -> io::Result<()> {
            file.write_all(&bytes[..bytes.len() / 2])?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("M0-L001.md");
        let err = write_atomic(
            &path,
            "# Lesson\n",
            &|_: &[u8]| Err(KeptReason::Exists),
            "lesson_M0-L001",
            &FailingWriter,
        )
        .unwrap_err();
        match err {
            Error::Write {
                path: failed,
                custom_id,
                source,
            } => {
                assert_eq!(failed, path);
                assert_eq!(custom_id, "lesson_M0-L001");
                assert_eq!(source.kind(), io::ErrorKind::StorageFull);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        // Replacing an existing file: the old content survives a failed write.
        fs::write(&path, "old\n").unwrap();
        let err = write_atomic(
            &path,
            "new text\n",
            &|_: &[u8]| Ok(()),
            "id",
            &FailingWriter,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Write { .. }));
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
