//! Lesson file names: the one place that writes them and recognises them.
//!
//! [`FileNamePattern::file_name`] names a lesson's file; [`FileNamePattern::code_of`]
//! reads a lesson code back from a name the same pattern wrote (or from a name of the
//! shapes earlier tools wrote); [`existing_lessons`] lists an output directory with it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use curriculum_parser::LessonCode;

use crate::Error;

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

impl FileNamePattern {
    /// The lesson code of a file name this pattern writes, e.g. `M0-L001` for
    /// `lesson-M0-L001.md` under `lesson-{code}.md`.
    ///
    /// Names of the shapes earlier tools wrote are recognised under every pattern:
    /// `M0-L001.md`, `lesson_M0-L001.md` and slugged `M01-L011-some-title.md`.
    /// Codes compare numerically, so `M01-L011` is `M1-L011`.
    ///
    /// ```
    /// use lesson_writer::FileNamePattern;
    /// let pattern = FileNamePattern::new("lesson-{code}.md")?;
    /// assert_eq!(pattern.code_of("lesson-M0-L001.md").unwrap().to_string(), "M0-L001");
    /// assert_eq!(pattern.code_of("M3-L010.md").unwrap().to_string(), "M3-L010");
    /// assert!(pattern.code_of("notes.md").is_none());
    /// # Ok::<(), lesson_writer::Error>(())
    /// ```
    pub fn code_of(&self, name: &str) -> Option<LessonCode> {
        matches_pattern(&self.pattern, name).or_else(|| legacy_code(name))
    }
}

/// Matches `name` against `pattern`: `{code}` is a lesson code, `{slug}` a run of
/// slug characters; a `{slug}` with one `-` or `_` before it may be absent altogether,
/// as [`FileNamePattern::file_name`] drops it for an empty slug.
fn matches_pattern(pattern: &str, name: &str) -> Option<LessonCode> {
    let without_slug = pattern
        .replace("-{slug}", "")
        .replace("_{slug}", "")
        .replace("{slug}", "");
    match_tokens(pattern, name, None).or_else(|| match_tokens(&without_slug, name, None))
}

/// Matches `text` against `pattern` from the left: literal text, `{code}` (the longest
/// `M<digits>-L<digits>` run) and `{slug}` (one or more of `a-z`, `0-9`, `-`).
fn match_tokens(pattern: &str, text: &str, code: Option<LessonCode>) -> Option<LessonCode> {
    let next = ["{code}", "{slug}"]
        .into_iter()
        .filter_map(|token| pattern.find(token).map(|at| (at, token)))
        .min();
    let Some((at, token)) = next else {
        return if pattern == text { code } else { None };
    };
    let text = text.strip_prefix(&pattern[..at])?;
    let rest = &pattern[at + token.len()..];
    if token == "{code}" {
        let end = code_run(text);
        let found: LessonCode = text[..end].parse().ok()?;
        match_tokens(rest, &text[end..], Some(found))
    } else {
        let run = text
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            .count();
        // Try every split of the run: the rest of the pattern may start with `-`.
        (1..=run)
            .rev()
            .find_map(|len| match_tokens(rest, &text[len..], code))
    }
}

/// The length of the `M<digits>-L<digits>` run at the start of `text` (0 when none).
fn code_run(text: &str) -> usize {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'M') {
        return 0;
    }
    let mut end = 1;
    let mut seen_l = false;
    while end < bytes.len() {
        match bytes[end] {
            b'0'..=b'9' => end += 1,
            b'-' if !seen_l && bytes.get(end + 1) == Some(&b'L') => {
                seen_l = true;
                end += 2;
            }
            _ => break,
        }
    }
    end
}

/// `M01-L011-some-slug.md`, `lesson_M3-L002.md` and `M0-L001.MD` give their code;
/// anything else gives `None`.
fn legacy_code(name: &str) -> Option<LessonCode> {
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

/// The lessons that have a file in `dir`, with the file: every regular, non-empty
/// file (symlinks followed) whose name [`FileNamePattern::code_of`] recognises.
/// A 0-byte file is not a lesson. When two files name the same lesson, the one the
/// pattern itself writes wins, else the first in name order.
///
/// A missing directory has no lessons.
///
/// # Errors
///
/// [`Error::ListDir`] when `dir` exists but cannot be listed.
pub fn existing_lessons(
    dir: &Path,
    pattern: &FileNamePattern,
) -> Result<BTreeMap<LessonCode, PathBuf>, Error> {
    let list_error = |source| Error::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(list_error(err)),
    };
    let mut found: Vec<(String, LessonCode, bool)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(list_error)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(code) = pattern.code_of(&name) else {
            continue;
        };
        // `fs::metadata` follows symlinks, so a linked lesson file counts too.
        let is_lesson =
            fs::metadata(entry.path()).is_ok_and(|meta| meta.is_file() && meta.len() > 0);
        if is_lesson {
            let own = matches_pattern(&pattern.pattern, &name).is_some();
            found.push((name, code, own));
        }
    }
    found.sort();
    let mut lessons: BTreeMap<LessonCode, (PathBuf, bool)> = BTreeMap::new();
    for (name, code, own) in found {
        let path = dir.join(&name);
        match lessons.get(&code) {
            Some((_, true)) => {}
            Some((_, false)) if !own => {}
            _ => {
                lessons.insert(code, (path, own));
            }
        }
    }
    Ok(lessons
        .into_iter()
        .map(|(code, (path, _))| (code, path))
        .collect())
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
            let name = pattern.file_name(code(), title);
            assert_eq!(name, expected);
            assert_eq!(pattern.code_of(&name), Some(code()), "{pattern} {name}");
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
        check("lesson-{code}.md", None, "lesson-M0-L001.md");
        check("{slug}-{code}.md", Some("Data 101"), "data-101-M0-L001.md");
        check("x{code}_{slug}.txt", Some("A b"), "xM0-L001_a-b.txt");
    }

    #[test]
    fn recognition_is_strict_about_the_patterns_literal_parts() {
        let pattern = FileNamePattern::new("lesson-{code}.md").unwrap();
        for name in [
            "lesson-M0-L001.md.tmp",
            "lesson-M0-L001.txt",
            "lesson-M0-L001x.md",
            "lesson-M0-L.md",
            "lessonM0-L001.md",
            ".lesson-writer-abc.tmp",
            "notes.md",
        ] {
            assert_eq!(pattern.code_of(name), None, "{name}");
        }
        let slugged = FileNamePattern::new(FileNamePattern::CODE_SLUG).unwrap();
        assert_eq!(
            slugged.code_of("M01-L011-prompt-engineering-principles.md"),
            Some("M1-L011".parse().unwrap())
        );
        // Not a name the pattern writes, but one earlier tools did.
        assert_eq!(
            slugged.code_of("M0-L001-Upper.md"),
            Some("M0-L001".parse().unwrap())
        );
    }

    #[test]
    fn legacy_names() {
        let check = |name: &str, expected: Option<&str>| {
            let expected = expected.map(|code| code.parse::<LessonCode>().unwrap());
            assert_eq!(legacy_code(name), expected, "{name}");
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
        check("x_M0-L001.md", None);
        check(".md", None);
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
    fn existing_lessons_follow_the_pattern_and_skip_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "lesson-M0-L001.md",
            "M01-L011-prompt-engineering-principles.md",
            "lesson_M3-L002.md",
            "lesson-M0-L002.md.tmp",
            "notes.md",
            "M4-L001.json",
        ] {
            fs::write(dir.path().join(name), "# lesson\n").unwrap();
        }
        fs::write(dir.path().join("lesson-M0-L003.md"), "").unwrap();
        fs::create_dir(dir.path().join("lesson-M5-L001.md")).unwrap();
        let pattern = FileNamePattern::new("lesson-{code}.md").unwrap();
        let found = existing_lessons(dir.path(), &pattern).unwrap();
        let codes: Vec<String> = found.keys().map(ToString::to_string).collect();
        assert_eq!(codes, ["M0-L001", "M1-L011", "M3-L002"]);
        assert_eq!(found[&code()], dir.path().join("lesson-M0-L001.md"));
        assert!(
            existing_lessons(&dir.path().join("missing"), &pattern)
                .unwrap()
                .is_empty()
        );
        let file = dir.path().join("notes.md");
        assert!(matches!(
            existing_lessons(&file, &pattern),
            Err(Error::ListDir { .. })
        ));
    }
}
