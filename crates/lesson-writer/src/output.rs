//! Lesson file names and atomic, idempotent writes.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use curriculum_parser::LessonCode;

use crate::Error;

/// Whether an existing lesson file with different content may be replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Keep the existing file; the lesson is counted as skipped.
    #[default]
    Forbid,
    /// Replace the existing file (atomically).
    Allow,
}

/// How a lesson file is named: a pattern with `{code}` (required) and `{slug}`.
///
/// The default is `{code}.md` (`M0-L001.md`); `{code}-{slug}.md` gives
/// `M0-L001-what-is-data.md` when the title is known and `M0-L001.md` otherwise.
/// Patterns may hold only ASCII letters, digits, `.`, `-` and `_` besides the
/// placeholders, so a name never leaves the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNamePattern {
    pattern: String,
}

impl FileNamePattern {
    /// `{code}.md`.
    pub const CODE: &str = "{code}.md";
    /// `{code}-{slug}.md`.
    pub const CODE_SLUG: &str = "{code}-{slug}.md";

    /// A validated pattern.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPattern`] when the pattern lacks `{code}`, has another
    /// placeholder, starts with `.`, or holds any other character.
    pub fn new(pattern: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidPattern {
            pattern: pattern.chars().take(80).collect(),
            reason,
        };
        if !pattern.contains("{code}") {
            return Err(invalid("it must contain {code}"));
        }
        let literal = pattern.replace("{code}", "").replace("{slug}", "");
        if !literal
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(invalid(
                "only {code}, {slug}, ASCII letters, digits, `.`, `-` and `_` are allowed",
            ));
        }
        if pattern.starts_with('.') || pattern.len() > 100 {
            return Err(invalid("it must not start with `.` or exceed 100 bytes"));
        }
        Ok(FileNamePattern {
            pattern: pattern.to_owned(),
        })
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The file name for a lesson. Without a title, `{slug}` and one `-` or `_`
    /// before it are dropped.
    pub fn file_name(&self, code: LessonCode, title: Option<&str>) -> String {
        let slug = title.map(slug).unwrap_or_default();
        let mut pattern = self.pattern.clone();
        if slug.is_empty() {
            for placeholder in ["-{slug}", "_{slug}", "{slug}"] {
                pattern = pattern.replace(placeholder, "");
            }
        }
        pattern
            .replace("{code}", &code.to_string())
            .replace("{slug}", &slug)
    }
}

impl Default for FileNamePattern {
    fn default() -> Self {
        FileNamePattern {
            pattern: Self::CODE.to_owned(),
        }
    }
}

impl FromStr for FileNamePattern {
    type Err = Error;

    fn from_str(pattern: &str) -> Result<Self, Error> {
        FileNamePattern::new(pattern)
    }
}

impl fmt::Display for FileNamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// A file-name slug of a title: lower-case ASCII letters and digits joined by `-`,
/// common accented letters folded, at most 60 bytes.
///
/// ```
/// assert_eq!(lesson_writer::slug("Données & “Governance” 101!"), "donnees-governance-101");
/// ```
pub fn slug(title: &str) -> String {
    const MAX: usize = 60;
    let mut out = String::new();
    for c in title.chars() {
        let folded = fold(c);
        if folded.is_ascii_alphanumeric() {
            if out.len() >= MAX {
                break;
            }
            out.push(folded.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Folds common Latin accented letters to ASCII; anything else is returned as is.
fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'a',
        'ç' | 'Ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
        'ñ' | 'Ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
        'ý' | 'ÿ' | 'Ý' => 'y',
        _ => c,
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// A new file was created.
    Created,
    /// An existing file with other content was replaced.
    Replaced,
    /// The file already held exactly this content.
    Unchanged,
    /// The file exists with other content and overwriting is forbidden.
    SkippedExisting,
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

/// Writes `text` to `path` atomically: a temp file in the same directory, then a
/// rename. Identical content is not rewritten; other content is replaced only
/// when `overwrite` allows it.
pub(crate) fn write_atomic(
    path: &Path,
    text: &str,
    overwrite: Overwrite,
    custom_id: &str,
    writer: &dyn FileWriter,
) -> Result<WriteOutcome, Error> {
    let exists = match fs::symlink_metadata(path) {
        Ok(meta) => {
            if meta.is_file() && meta.len() == text.len() as u64 {
                let existing = fs::read(path).map_err(|source| Error::ReadExisting {
                    path: path.to_path_buf(),
                    source,
                })?;
                if existing == text.as_bytes() {
                    return Ok(WriteOutcome::Unchanged);
                }
            }
            if overwrite == Overwrite::Forbid {
                return Ok(WriteOutcome::SkippedExisting);
            }
            true
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => false,
        Err(source) => {
            return Err(Error::ReadExisting {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        custom_id: custom_id.to_owned(),
        source,
    };
    // A dot-name ending in `.tmp`, so a crash never leaves anything named `*.md`.
    let mut temp = tempfile::Builder::new()
        .prefix(".lesson-writer-")
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
            Ok(WriteOutcome::SkippedExisting)
        }
        Err(err) => Err(write_error(err.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> LessonCode {
        "M0-L001".parse().unwrap()
    }

    #[test]
    fn patterns() {
        let check = |pattern: &str, title: Option<&str>, expected: &str| {
            let pattern = FileNamePattern::new(pattern).unwrap();
            assert_eq!(pattern.file_name(code(), title), expected);
        };
        check(FileNamePattern::CODE, Some("What is data?"), "M0-L001.md");
        check(
            FileNamePattern::CODE_SLUG,
            Some("What is data?"),
            "M0-L001-what-is-data.md",
        );
        check(FileNamePattern::CODE_SLUG, None, "M0-L001.md");
        check(FileNamePattern::CODE_SLUG, Some("¿?"), "M0-L001.md");
        check("lesson_{code}.markdown", None, "lesson_M0-L001.markdown");
    }

    #[test]
    fn bad_patterns_are_refused() {
        for pattern in [
            "{slug}.md",
            "../{code}.md",
            "{code}/x.md",
            ".{code}.md",
            "{code}{x}.md",
            "/{code}",
        ] {
            assert!(
                matches!(
                    FileNamePattern::new(pattern),
                    Err(Error::InvalidPattern { .. })
                ),
                "{pattern}"
            );
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("What is Data?"), "what-is-data");
        assert_eq!(slug("  --Ünïcode café--  "), "unicode-cafe");
        assert_eq!(slug("数据"), "");
        assert!(slug(&"long ".repeat(50)).len() <= 61);
    }

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
        let write = |text: &str, overwrite| {
            write_atomic(&path, text, overwrite, "id", &DiskWriter).unwrap()
        };
        assert_eq!(write("one\n", Overwrite::Forbid), WriteOutcome::Created);
        assert_eq!(write("one\n", Overwrite::Forbid), WriteOutcome::Unchanged);
        assert_eq!(
            write("two\n", Overwrite::Forbid),
            WriteOutcome::SkippedExisting
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\n");
        assert_eq!(write("two\n", Overwrite::Allow), WriteOutcome::Replaced);
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
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
            Overwrite::Forbid,
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
        let err =
            write_atomic(&path, "new text\n", Overwrite::Allow, "id", &FailingWriter).unwrap_err();
        assert!(matches!(err, Error::Write { .. }));
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
