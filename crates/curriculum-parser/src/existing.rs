//! Which lessons already have a file in an output directory.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use crate::error::Error;
use crate::model::LessonCode;

/// The lesson codes that already have a Markdown file in `dir`.
///
/// Recognises `M0-L001.md`, `lesson_M0-L001.md` and slugged names such as
/// `M01-L011-prompt-engineering-principles.md`; codes compare numerically, so that file counts as `M1-L011`.
/// Other files and subdirectories are ignored; a missing directory gives an empty set.
///
/// # Errors
///
/// [`Error::Read`] when `dir` exists but cannot be listed.
pub fn existing_lessons(dir: &Path) -> Result<BTreeSet<LessonCode>, Error> {
    let read_error = |source| Error::Read {
        path: dir.to_path_buf(),
        line: 0,
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(err) => return Err(read_error(err)),
    };
    let mut codes = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(read_error)?;
        let name = entry.file_name();
        let Some(code) = name.to_str().and_then(code_from_file_name) else {
            continue;
        };
        // `Path::is_file` follows symlinks, so a linked lesson file counts too.
        if entry.path().is_file() {
            codes.insert(code);
        }
    }
    Ok(codes)
}

/// `M01-L011-some-slug.md` gives `M1-L011`; a name that is not a lesson file gives `None`.
fn code_from_file_name(name: &str) -> Option<LessonCode> {
    let (stem, extension) = name.rsplit_once('.')?;
    if !extension.eq_ignore_ascii_case("md") {
        return None;
    }
    let after_prefix = stem.strip_prefix("lesson_").unwrap_or(stem);
    let lesson_start = stem.len() - after_prefix.len() + after_prefix.find("-L")? + 2;
    let code_end = stem[lesson_start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(stem.len(), |end| lesson_start + end);
    if !matches!(stem[code_end..].chars().next(), None | Some('-' | '_')) {
        return None;
    }
    stem[..code_end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_to_codes() {
        let check = |name: &str, expected: Option<&str>| {
            let expected = expected.map(|code| code.parse::<LessonCode>().unwrap());
            assert_eq!(code_from_file_name(name), expected, "{name}");
        };
        check("M0-L001.md", Some("M0-L001"));
        check("M01-L011-prompt-engineering-principles.md", Some("M1-L011"));
        check("M12-L024_data-contracts.md", Some("M12-L024"));
        check("lesson_M3-L002.md", Some("M3-L002"));
        check("M0-L001.MD", Some("M0-L001"));
        check("M2-L1000.md", Some("M2-L1000"));
        check("M0-L001.md.tmp", None);
        check("M0-L001.txt", None);
        check("M0-L001", None);
        check("M0-L001x.md", None);
        check("M0-L.md", None);
        check("M0-Lx-slug.md", None);
        check("notes.md", None);
        check("README.md", None);
        check("x_M0-L001.md", None);
        check(".md", None);
    }
}
