//! Lines that look like module or lesson headings but are not read as one:
//! `## L005 Title [F]` (no colon), `##L004: Title` (no space, so no heading for CommonMark),
//! `- L002: Title` (a list item in a lesson map), `# M4294967296: Title` (a number too large).
//! Each gets what was expected and the likely fix, so a typo never drops a lesson silently.

use crate::model::parse_digits;
use crate::text::{lesson_code_heading, module_heading, module_item};

/// The most characters of the outline's text quoted in a message.
const QUOTE_CHARS: usize = 60;

/// What a reader looks out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Module and lesson headings (the lesson map).
    ModulesAndLessons,
    /// Module headings and items only (the nested outline: its lessons are free text).
    Modules,
}

/// A line that looks like a module or lesson heading but is not read as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NearMiss {
    /// A module heading that did not parse; the message says what was expected.
    Module {
        /// What was expected and the likely fix.
        message: String,
    },
    /// A lesson heading that did not parse.
    Lesson {
        /// The number it carries, so that its absence is not also reported as a gap.
        number: Option<u32>,
        /// What was expected and the likely fix.
        message: String,
    },
    /// A module or lesson number with more digits than fit: the prefix and digits as written.
    TooLarge {
        /// `M4294967296`.
        code: String,
    },
}

/// A heading (level 1 to 6, its text flattened) that no reader took as a module or lesson.
///
/// Below the open module's level (`module_level`), a module-like heading is taken for a section
/// or group named so, such as `## M365 Governance`, not for a module.
pub(crate) fn heading(
    text: &str,
    level: u8,
    module_level: Option<u8>,
    expect: Expect,
) -> Option<NearMiss> {
    let shape = Shape::of(text, expect)?;
    if shape.kind == Kind::Module && module_level.is_some_and(|module_level| level > module_level) {
        return None;
    }
    if shape.digits.len() > MAX_DIGITS {
        return Some(shape.too_large());
    }
    let hashes = "#".repeat(usize::from(level));
    let (expected, fix) = shape.repair(text);
    // A heading that parses as it is was read as a module or lesson before this was asked.
    let fix = fix?;
    Some(shape.near_miss(format!(
        "`{}` is not read as a {} heading: expected `{}`; {fix}",
        quote(&format!("{hashes} {text}")),
        shape.kind.name(),
        quote(&format!("{hashes} {expected}"))
    )))
}

/// A line of a paragraph (its text flattened) that may be a heading CommonMark did not see:
/// `##L004: Title` or `####### L004: Title`, and in a lesson map also `L004: Title` alone.
/// `section_level` is the level a lesson heading has there.
pub(crate) fn paragraph_line(line: &str, expect: Expect, section_level: u8) -> Option<NearMiss> {
    let hashes = line.bytes().take_while(|&byte| byte == b'#').count();
    if hashes == 0 {
        return lesson_line(line, expect, section_level, "the line is not a heading").map(
            |(number, message)| NearMiss::Lesson {
                number: Some(number),
                message: format!(
                    "{message}; start the line with `{}`",
                    heading_start(section_level)
                ),
            },
        );
    }
    let body = line[hashes..].trim_start();
    let shape = Shape::of(body, expect)?;
    if shape.digits.len() > MAX_DIGITS {
        return Some(shape.too_large());
    }
    let level = hashes.min(6);
    let (expected, fix) = shape.repair(body);
    let mut fixes = vec![if hashes > 6 {
        "a heading has at most six `#`".to_owned()
    } else {
        format!("add a space after `{}`", &line[..hashes])
    }];
    fixes.extend(fix);
    Some(shape.near_miss(format!(
        "`{}` is not a heading: expected `{}`; {}",
        quote(line),
        quote(&format!("{} {expected}", "#".repeat(level))),
        fixes.join(", and ")
    )))
}

/// A list item's text (flattened) in a lesson map: `L002: Title [F]` is a lesson written as an item.
pub(crate) fn list_item(text: &str, expect: Expect, section_level: u8) -> Option<NearMiss> {
    let (number, message) =
        lesson_line(text, expect, section_level, "a list item is not a heading")?;
    Some(NearMiss::Lesson {
        number: Some(number),
        message: format!("{message}; write it as a heading"),
    })
}

/// A nested outline's list item that looks like a module item but is not read as one:
/// `Module 2 Orchestration` (no colon), `Module2: Orchestration` (no space).
pub(crate) fn module_list_item(text: &str) -> Option<NearMiss> {
    let shape = Shape::of(text, Expect::Modules).filter(|shape| shape.word)?;
    if shape.digits.len() > MAX_DIGITS {
        return Some(shape.too_large());
    }
    let (expected, fix) = shape.repair(text);
    let fix = fix?;
    Some(shape.near_miss(format!(
        "`{}` is not read as a module: expected `{}`; {fix}",
        quote(text),
        quote(&expected)
    )))
}

/// Module and lesson numbers have at most this many digits (see `parse_digits`).
const MAX_DIGITS: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Module,
    Lesson,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Module => "module",
            Kind::Lesson => "lesson",
        }
    }
}

/// `L005 ...`, `M1 ...`, `Lesson 5 ...` or `Module 1 ...`: a code-like start of a line.
struct Shape<'t> {
    kind: Kind,
    /// Whether the prefix is the word (`Module`, `Lesson`) rather than the letter.
    word: bool,
    /// The prefix as written, without the space after a word.
    prefix: &'t str,
    /// Whether a space follows the prefix.
    spaced: bool,
    digits: &'t str,
    /// The text after the digits.
    after: &'t str,
}

impl<'t> Shape<'t> {
    fn of(text: &'t str, expect: Expect) -> Option<Self> {
        let starts_with_word = |word: &str| {
            text.get(..word.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(word))
        };
        let (kind, word, prefix_len) = if starts_with_word("module") {
            (Kind::Module, true, 6)
        } else if starts_with_word("lesson") {
            (Kind::Lesson, true, 6)
        } else if text.starts_with('M') {
            (Kind::Module, false, 1)
        } else if text.starts_with('L') {
            (Kind::Lesson, false, 1)
        } else {
            return None;
        };
        if kind == Kind::Lesson && expect == Expect::Modules {
            return None;
        }
        let prefix = &text[..prefix_len];
        let rest = &text[prefix_len..];
        let trimmed = if word { rest.trim_start() } else { rest };
        let spaced = trimmed.len() < rest.len();
        let rest = trimmed;
        let n_digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        (n_digits > 0).then(|| Shape {
            kind,
            word,
            prefix,
            spaced,
            digits: &rest[..n_digits],
            after: &rest[n_digits..],
        })
    }

    fn too_large(&self) -> NearMiss {
        NearMiss::TooLarge {
            code: format!("{}{}", self.prefix, self.digits),
        }
    }

    fn near_miss(&self, message: String) -> NearMiss {
        match self.kind {
            Kind::Module => NearMiss::Module { message },
            Kind::Lesson => NearMiss::Lesson {
                number: parse_digits(self.digits, 1),
                message,
            },
        }
    }

    /// The text as it should have been written, and what to change (`None` when it parses as it is).
    fn repair(&self, text: &str) -> (String, Option<String>) {
        let parses = match (self.kind, self.word) {
            (Kind::Lesson, false) => lesson_code_heading(text).is_some(),
            (Kind::Lesson, true) => false,
            (Kind::Module, _) => module_heading(text).is_some() || module_item(text).is_some(),
        };
        if parses {
            return (text.to_owned(), None);
        }
        let title = self
            .after
            .trim_start()
            .trim_start_matches([':', '.', ')', '-', '–', '—'])
            .trim();
        let title = if title.is_empty() { "Title" } else { title };
        let (code, mut fixes) = match (self.kind, self.word) {
            (Kind::Lesson, true) => {
                let code = format!("L{:0>3}", self.digits);
                let fix = format!("a lesson heading starts with its code, `{code}`");
                (code, vec![fix])
            }
            (Kind::Module, true) => {
                let code = format!("{} {}", self.prefix, self.digits);
                let fixes = if self.spaced {
                    Vec::new()
                } else {
                    vec![format!("add a space after `{}`", self.prefix)]
                };
                (code, fixes)
            }
            (_, false) => (format!("{}{}", self.prefix, self.digits), Vec::new()),
        };
        let separator = self.after.trim_start();
        if !separator.starts_with(':') {
            fixes.push(if separator.starts_with(['.', ')', '-', '–', '—']) {
                format!("put a colon after {code} instead")
            } else {
                format!("add a colon after {code}")
            });
        }
        (format!("{code}: {title}"), Some(fixes.join(", and ")))
    }
}

/// A lesson line that is not a heading: its number and `` `L004: Title` is not read as a lesson
/// (<why>): expected `## L004: Title` ``.
fn lesson_line(text: &str, expect: Expect, section_level: u8, why: &str) -> Option<(u32, String)> {
    if expect != Expect::ModulesAndLessons {
        return None;
    }
    let (number, rest) = lesson_code_heading(text)?;
    if rest.is_empty() {
        return None;
    }
    Some((
        number,
        format!(
            "`{}` is not read as a lesson ({why}): expected `{}`",
            quote(text),
            quote(&format!("{}{text}", heading_start(section_level)))
        ),
    ))
}

/// `## ` for level 2.
fn heading_start(level: u8) -> String {
    format!("{} ", "#".repeat(usize::from(level)))
}

/// The text, cut to [`QUOTE_CHARS`] characters with an ellipsis.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(miss: Option<NearMiss>) -> String {
        match miss {
            Some(NearMiss::Module { message } | NearMiss::Lesson { message, .. }) => message,
            Some(NearMiss::TooLarge { code }) => format!("too large: {code}"),
            None => "-".to_owned(),
        }
    }

    #[test]
    fn headings() {
        let check = |text: &str, level: u8, expected: &str| {
            let got = message(heading(text, level, Some(1), Expect::ModulesAndLessons));
            assert_eq!(got, expected, "{text}");
        };
        check(
            "L005 Title [F]",
            2,
            "`## L005 Title [F]` is not read as a lesson heading: expected `## L005: Title [F]`; add a colon after L005",
        );
        check(
            "L05 Title [F]",
            2,
            "`## L05 Title [F]` is not read as a lesson heading: expected `## L05: Title [F]`; add a colon after L05",
        );
        check(
            "L01 …",
            2,
            "`## L01 …` is not read as a lesson heading: expected `## L01: …`; add a colon after L01",
        );
        check(
            "L007. Title",
            3,
            "`### L007. Title` is not read as a lesson heading: expected `### L007: Title`; put a colon after L007 instead",
        );
        check(
            "M1 Operating Model — Lesson Map",
            1,
            "`# M1 Operating Model — Lesson Map` is not read as a module heading: expected `# M1: Operating Model — Lesson Map`; add a colon after M1",
        );
        check(
            "Lesson 5: Title",
            2,
            "`## Lesson 5: Title` is not read as a lesson heading: expected `## L005: Title`; a lesson heading starts with its code, `L005`",
        );
        check(
            "Module2: Data",
            1,
            "`# Module2: Data` is not read as a module heading: expected `# Module 2: Data`; add a space after `Module`",
        );
        check(
            "Module 2 Data",
            1,
            "`# Module 2 Data` is not read as a module heading: expected `# Module 2: Data`; add a colon after Module 2",
        );
        check("M4294967296: Huge", 1, "too large: M4294967296");
        check(
            "L99999999999999999999: Huge",
            2,
            "too large: L99999999999999999999",
        );
        check(
            "L001: A very long title that goes on and on and on and on and on and on",
            2,
            "-",
        );
        for text in [
            "Core Concepts & Landscape",
            "Lessons learned",
            "Lab: Build",
            "M&A",
            "Metadata",
            "L: x",
            "Modules 1 to 3",
        ] {
            check(text, 2, "-");
        }
        // Nested outlines read lesson-like headings as groups.
        assert_eq!(heading("L005 Title", 2, Some(1), Expect::Modules), None);
        // Below the module level, a module-like heading is a section named so.
        assert_eq!(
            heading("M365 Governance", 2, Some(1), Expect::ModulesAndLessons),
            None
        );
        assert!(heading("M365 Governance", 1, Some(1), Expect::ModulesAndLessons).is_some());
        assert!(heading("M1 Governance", 2, None, Expect::ModulesAndLessons).is_some());
    }

    #[test]
    fn long_text_is_cut() {
        let title = "x".repeat(100);
        let got = message(heading(
            &format!("L005 {title}"),
            2,
            Some(1),
            Expect::ModulesAndLessons,
        ));
        assert!(
            got.starts_with(&format!("`## L005 {}…`", "x".repeat(52))),
            "{got}"
        );
    }

    #[test]
    fn paragraph_lines() {
        let check = |line: &str, expected: &str| {
            let got = message(paragraph_line(line, Expect::ModulesAndLessons, 2));
            assert_eq!(got, expected, "{line}");
        };
        check(
            "##L004: Title [F]",
            "`##L004: Title [F]` is not a heading: expected `## L004: Title [F]`; add a space after `##`",
        );
        check(
            "#M1: Operating Model",
            "`#M1: Operating Model` is not a heading: expected `# M1: Operating Model`; add a space after `#`",
        );
        check(
            "##L004 Title",
            "`##L004 Title` is not a heading: expected `## L004: Title`; add a space after `##`, and add a colon after L004",
        );
        check(
            "####### L004: Title",
            "`####### L004: Title` is not a heading: expected `###### L004: Title`; a heading has at most six `#`",
        );
        check(
            "L003: Lost Lesson [F]",
            "`L003: Lost Lesson [F]` is not read as a lesson (the line is not a heading): expected `## L003: Lost Lesson [F]`; start the line with `## `",
        );
        check("##M99999999999: x", "too large: M99999999999");
        for line in [
            "#hashtag",
            "## just text",
            "Lessons: none",
            "L2 support",
            "M1: prose",
        ] {
            check(line, "-");
        }
        assert_eq!(paragraph_line("L003: x", Expect::Modules, 2), None);
    }

    #[test]
    fn list_items() {
        assert_eq!(
            message(list_item(
                "L002: A Bullet [F]",
                Expect::ModulesAndLessons,
                2
            )),
            "`L002: A Bullet [F]` is not read as a lesson (a list item is not a heading): expected `## L002: A Bullet [F]`; write it as a heading"
        );
        assert_eq!(
            list_item("Learn the basics", Expect::ModulesAndLessons, 2),
            None
        );
        assert_eq!(
            message(module_list_item("Module 2 Orchestration")),
            "`Module 2 Orchestration` is not read as a module: expected `Module 2: Orchestration`; add a colon after Module 2"
        );
        assert_eq!(module_list_item("Module 2: Orchestration"), None);
        assert_eq!(module_list_item("M2 sensors"), None);
        assert_eq!(module_list_item("Modules overview"), None);
    }
}
