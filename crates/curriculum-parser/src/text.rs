//! The plain text of headings and list items, and the small grammars inside it:
//! `M0: Title`, `L001: Title`, `Module 1: Title`, `Lab: Title` and `[F-I]` tags.

use comrak::nodes::{AstNode, NodeValue};

use crate::model::{Complexity, Level, parse_digits};

/// What a trailing `[...]` group of a lesson title turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag<'t> {
    /// No tag: the title does not end in a tag-shaped bracket group.
    Absent,
    /// A complexity tag such as `[F]` or `[I-A]`.
    Known(Complexity),
    /// Tag-shaped (single letters or level names) but not a complexity, such as `[X]`; the text inside.
    Unknown(&'t str),
}

/// The plain text of a node's inlines.
///
/// Emphasis, links and other markup are dropped but their text kept, code spans keep their content,
/// inline HTML (comments included) is dropped, line breaks become spaces,
/// and every run of whitespace (non-breaking spaces included) becomes one space, trimmed at both ends.
pub(crate) fn inline_text<'a>(node: &'a AstNode<'a>) -> String {
    let mut text = String::new();
    collect_inlines(node, &mut text);
    collapse(text)
}

/// The plain text of each source line of a paragraph, flattened as [`inline_text`] does.
pub(crate) fn inline_lines<'a>(node: &'a AstNode<'a>) -> Vec<String> {
    let mut lines = vec![String::new()];
    collect_lines(node, &mut lines);
    lines.into_iter().map(collapse).collect()
}

/// Every run of whitespace as one space, trimmed at both ends.
fn collapse(text: String) -> String {
    if is_collapsed(&text) {
        return text;
    }
    // `split_whitespace` splits at U+00A0, U+2007 and U+202F too, the non-breaking spaces.
    let mut collapsed = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed
}

/// A module heading, `M0: Title — Lesson Map` or `Module 1: Title`:
/// the number and the title, without a `— Lesson Map` suffix.
pub(crate) fn module_heading(text: &str) -> Option<(u32, &str)> {
    let (number, title) = module_item(text).or_else(|| numbered(text.strip_prefix('M')?))?;
    Some((number, strip_lesson_map_suffix(title)))
}

/// A lesson heading, `L001: Title [F]`: the number and the rest.
pub(crate) fn lesson_code_heading(text: &str) -> Option<(u32, &str)> {
    numbered(text.strip_prefix('L')?)
}

/// A module list item, `Module 1: Title` (any case): the number and the title.
pub(crate) fn module_item(text: &str) -> Option<(u32, &str)> {
    let word = text.get(..6)?;
    if !word.eq_ignore_ascii_case("module") {
        return None;
    }
    let rest = &text[6..];
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    numbered(rest.trim_start())
}

/// `Lab: Title` (any case): the title.
pub(crate) fn lab_title(text: &str) -> Option<&str> {
    let word = text.get(..3)?;
    if !word.eq_ignore_ascii_case("lab") {
        return None;
    }
    Some(text[3..].trim_start().strip_prefix(':')?.trim())
}

/// Splits a trailing complexity tag off a title: `Scope & Value [F-I]` gives `Scope & Value` and the tag.
///
/// A trailing bracket group is tag-shaped when it holds only single letters or level names
/// (`Foundational`, `Advanced`, ...) separated by spaces, dashes, slashes or commas.
/// Anything else, such as `[GDPR]`, stays part of the title.
pub(crate) fn split_tag(text: &str) -> (&str, Tag<'_>) {
    let Some(body) = text.strip_suffix(']') else {
        return (text, Tag::Absent);
    };
    let Some(open) = body.rfind('[') else {
        return (text, Tag::Absent);
    };
    let inner = &body[open + 1..];
    match parse_tag(inner) {
        None => (text, Tag::Absent),
        Some(tag) => (body[..open].trim_end(), tag),
    }
}

fn parse_tag(inner: &str) -> Option<Tag<'_>> {
    let is_range = |c: char| matches!(c, '-' | '–' | '—' | '/');
    let words = inner.split(|c: char| is_range(c) || c == ',' || c.is_whitespace());
    let mut levels = Vec::with_capacity(2);
    let mut any_unknown = false;
    for word in words.filter(|word| !word.is_empty()) {
        let mut chars = word.chars();
        let level = match (chars.next(), chars.next()) {
            (Some(letter), None) if letter.is_ascii_alphabetic() => Level::from_letter(letter),
            _ => Some(level_named(word)?),
        };
        match level {
            Some(level) => levels.push(level),
            None => any_unknown = true,
        }
    }
    let tag = Tag::Unknown(inner.trim());
    if any_unknown || inner.contains(',') {
        return (any_unknown || !levels.is_empty()).then_some(tag);
    }
    let ranges = inner.chars().filter(|&c| is_range(c)).count();
    Some(match (levels.as_slice(), ranges) {
        ([], _) => return None,
        ([level], 0) => Tag::Known(Complexity::single(*level)),
        ([from, to], 1) => Tag::Known(Complexity {
            from: *from,
            to: *to,
        }),
        _ => tag,
    })
}

fn level_named(word: &str) -> Option<Level> {
    [
        Level::Foundational,
        Level::Intermediate,
        Level::Advanced,
        Level::Expert,
    ]
    .into_iter()
    .find(|level| level.name().eq_ignore_ascii_case(word))
}

fn collect_inlines<'a>(node: &'a AstNode<'a>, out: &mut String) {
    for child in node.children() {
        match &child.data.borrow().value {
            NodeValue::Text(text) => out.push_str(text),
            NodeValue::Code(code) => out.push_str(&code.literal),
            NodeValue::SoftBreak | NodeValue::LineBreak => out.push(' '),
            // Comments and tags are not part of the title; blocks never sit inside inlines.
            NodeValue::HtmlInline(_) | NodeValue::Raw(_) => {}
            _ => collect_inlines(child, out),
        }
    }
}

/// As [`collect_inlines`], starting a new line at each line break.
fn collect_lines<'a>(node: &'a AstNode<'a>, lines: &mut Vec<String>) {
    for child in node.children() {
        match &child.data.borrow().value {
            NodeValue::SoftBreak | NodeValue::LineBreak => lines.push(String::new()),
            NodeValue::Text(text) => push_to_last(lines, text),
            NodeValue::Code(code) => push_to_last(lines, &code.literal),
            NodeValue::HtmlInline(_) | NodeValue::Raw(_) => {}
            _ => collect_lines(child, lines),
        }
    }
}

fn push_to_last(lines: &mut [String], text: &str) {
    if let Some(line) = lines.last_mut() {
        line.push_str(text);
    }
}

/// Whether `text` has only single spaces between words and none at either end,
/// so the common case needs no second copy.
fn is_collapsed(text: &str) -> bool {
    // Starting as if after a space makes a leading space fail.
    let mut after_space = true;
    for c in text.chars() {
        if c == ' ' {
            if after_space {
                return false;
            }
            after_space = true;
        } else if c.is_whitespace() {
            return false;
        } else {
            after_space = false;
        }
    }
    text.is_empty() || !after_space
}

/// `<number><sep><title>` after a prefix letter or word, where `sep` is `:` or a spaced dash.
fn numbered(rest: &str) -> Option<(u32, &str)> {
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let number = parse_digits(&rest[..digits_end], 1)?;
    let tail = &rest[digits_end..];
    let trimmed = tail.trim_start();
    if trimmed.is_empty() {
        return Some((number, ""));
    }
    if let Some(title) = trimmed.strip_prefix(':') {
        return Some((number, title.trim()));
    }
    // `M0 — Title` needs spaces around the dash, so `M0-L001` is not a module.
    let spaced = trimmed.len() < tail.len();
    let title = trimmed.strip_prefix(['—', '–', '-'])?;
    (spaced && title.starts_with(char::is_whitespace)).then(|| (number, title.trim()))
}

/// `Fundamentals — Lesson Map` gives `Fundamentals`; a title without the suffix is returned whole.
fn strip_lesson_map_suffix(title: &str) -> &str {
    const SUFFIX: &str = "lesson map";
    let Some(cut) = title.len().checked_sub(SUFFIX.len()) else {
        return title;
    };
    if !title.is_char_boundary(cut) || !title[cut..].eq_ignore_ascii_case(SUFFIX) {
        return title;
    }
    title[..cut]
        .trim_end()
        .strip_suffix(['—', '–', '-'])
        .map_or(title, str::trim_end)
}

#[cfg(test)]
mod tests {
    use comrak::{Arena, Options, parse_document};

    use super::*;

    /// The inline text of the first block of `markdown`.
    fn first_block_text(markdown: &str) -> String {
        let arena = Arena::new();
        let root = parse_document(&arena, markdown, &Options::default());
        let block = root.first_child().expect("one block");
        let block = match block.data.borrow().value {
            NodeValue::List(_) => block
                .first_child()
                .and_then(|item| item.first_child())
                .expect("an item with a paragraph"),
            _ => block,
        };
        inline_text(block)
    }

    #[test]
    fn inline_text_drops_markup_and_keeps_text() {
        let check = |markdown: &str, expected: &str| {
            assert_eq!(first_block_text(markdown), expected, "{markdown:?}");
        };
        check(
            "## L001: *Why* **Governance** Matters [F]",
            "L001: Why Governance Matters [F]",
        );
        check(
            "## L002: Using `GRANT` and `REVOKE` [I]",
            "L002: Using GRANT and REVOKE [I]",
        );
        check(
            "## L003: The [DAMA wheel](https://dama.org) Explained [F]",
            "L003: The DAMA wheel Explained [F]",
        );
        check(
            "## L004: Scope <!-- draft --> & Value [F]",
            "L004: Scope & Value [F]",
        );
        check(
            "## L005: Trailing Hashes [F] ##",
            "L005: Trailing Hashes [F]",
        );
        check(
            "## L006: Non\u{a0}breaking\u{a0}\u{a0}Spaces [F]",
            "L006: Non breaking Spaces [F]",
        );
        check(
            "## L007: Escaped \\*stars\\* [F]",
            "L007: Escaped *stars* [F]",
        );
        check(
            "## L008: Entities &amp; &nbsp;more [F]",
            "L008: Entities & more [F]",
        );
        check(
            "- **Module 1: Data\n  Engineering**",
            "Module 1: Data Engineering",
        );
        check("- *Lab: Build a Catalog*", "Lab: Build a Catalog");
        check("## L009: ***Bold [F]***", "L009: Bold [F]");
    }

    #[test]
    fn inline_text_keeps_unicode_punctuation() {
        let title = "L010: Lineage → Impact: “Who” Owns What’s Next‑Gen & Why [I-A]";
        assert_eq!(first_block_text(&format!("## {title}")), title);
    }

    #[test]
    fn whitespace_collapses() {
        for (text, collapsed) in [
            ("", true),
            ("a", true),
            ("a b", true),
            (" a", false),
            ("a ", false),
            ("a  b", false),
            ("a\tb", false),
            ("a\u{a0}b", false),
            ("a\u{2011}b", true),
            (" ", false),
        ] {
            assert_eq!(is_collapsed(text), collapsed, "{text:?}");
        }
    }

    #[test]
    fn numbered_headings() {
        assert_eq!(
            module_heading("M0: Fundamentals"),
            Some((0, "Fundamentals"))
        );
        assert_eq!(module_heading("M12 : AI/ML"), Some((12, "AI/ML")));
        assert_eq!(module_heading("M03 — Quality"), Some((3, "Quality")));
        assert_eq!(module_heading("M7"), Some((7, "")));
        assert_eq!(module_heading("M0-L001: x"), None);
        assert_eq!(module_heading("Metadata"), None);
        assert_eq!(module_heading("M: x"), None);
        assert_eq!(module_heading("m1: x"), None);
        assert_eq!(
            module_heading("Module 4: Data Quality — Lesson Map"),
            Some((4, "Data Quality"))
        );
        assert_eq!(
            lesson_code_heading("L001: What Is It? [F]"),
            Some((1, "What Is It? [F]"))
        );
        assert_eq!(lesson_code_heading("L1000: Big"), Some((1000, "Big")));
        assert_eq!(lesson_code_heading("Lab: x"), None);
        assert_eq!(lesson_code_heading("L2 Support Triage"), None);
        assert_eq!(
            module_item("Module 1: AI Foundation"),
            Some((1, "AI Foundation"))
        );
        assert_eq!(module_item("MODULE 2 – Data"), Some((2, "Data")));
        assert_eq!(module_item("Modules 1: x"), None);
        assert_eq!(module_item("Module: x"), None);
        assert_eq!(module_item("Mod"), None);
        assert_eq!(lab_title("Lab: Build a Catalog"), Some("Build a Catalog"));
        assert_eq!(lab_title("LAB : x"), Some("x"));
        assert_eq!(lab_title("Labelling data"), None);
    }

    #[test]
    fn lesson_map_suffix_is_not_part_of_the_title() {
        let check = |heading: &str, title: &str| {
            assert_eq!(module_heading(heading), Some((14, title)), "{heading}");
        };
        check(
            "M14: Program Execution, KPIs & Change — Capstone — Lesson Map",
            "Program Execution, KPIs & Change — Capstone",
        );
        check(
            "M14: Program Execution, KPIs & Change — Capstone",
            "Program Execution, KPIs & Change — Capstone",
        );
        check("M14: Fundamentals – Lesson Map", "Fundamentals");
        check("M14: Fundamentals - lesson map", "Fundamentals");
        check("M14: Fundamentals Lesson Map", "Fundamentals Lesson Map");
        check("M14: — Lesson Map", "");
    }

    #[test]
    fn tags_split_off_titles() {
        let check = |text: &str, title: &str, tag: Tag<'_>| {
            assert_eq!(split_tag(text), (title, tag), "{text}");
        };
        let known = |text: &str| Tag::Known(text.parse().unwrap());
        check("Scope [F]", "Scope", known("F"));
        check("Scope [F-I]", "Scope", known("F-I"));
        check("Scope [I–A]", "Scope", known("I-A"));
        check("Scope [ F / I ]", "Scope", known("F-I"));
        check("Scope [e]", "Scope", known("E"));
        check("Scope [Advanced]", "Scope", known("A"));
        check("Scope [Intermediate-Expert]", "Scope", known("I-E"));
        check("Scope[F]", "Scope", known("F"));
        check("Scope", "Scope", Tag::Absent);
        check("Scope [GDPR]", "Scope [GDPR]", Tag::Absent);
        check("Scope [AI]", "Scope [AI]", Tag::Absent);
        check("Scope [EU AI Act]", "Scope [EU AI Act]", Tag::Absent);
        check("Scope [2024]", "Scope [2024]", Tag::Absent);
        check("Scope []", "Scope []", Tag::Absent);
        check("Scope ]", "Scope ]", Tag::Absent);
        check("Scope [X]", "Scope", Tag::Unknown("X"));
        check("Scope [F-Z]", "Scope", Tag::Unknown("F-Z"));
        check("Scope [F I]", "Scope", Tag::Unknown("F I"));
        check("Scope [F, I]", "Scope", Tag::Unknown("F, I"));
        check("Scope [F-I-A]", "Scope", Tag::Unknown("F-I-A"));
        check("Scope [F-]", "Scope", Tag::Unknown("F-"));
        check("[F]", "", known("F"));
    }
}
