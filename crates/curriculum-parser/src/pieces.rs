//! Parses an outline piece by piece, so that only one piece's syntax tree is in memory at a time,
//! cutting the text only where comrak reads the pieces into the same blocks as the whole.

use std::ops::ControlFlow;

use comrak::nodes::{AstNode, NodeValue};
use comrak::{Arena, Options, parse_document};

/// About how much text one piece holds; comrak's tree of it is some twenty times larger.
pub(crate) const PIECE_BYTES: usize = 64 * 1024;

/// Parses `text` piece by piece with comrak and calls `read` with each piece's root
/// and the number of lines before the piece, until `read` breaks or the text ends.
///
/// A piece ends just before a line that starts a block wherever it stands:
/// an ATX heading (`#` to `######` at column 0, then a space, a tab or the line end)
/// or a bullet item with text (`-`, `+` or `*` at column 0, then a space or a tab).
/// Such a line interrupts a paragraph, lacks the indentation that continues a list item
/// and the `>` that continues a block quote, and ends an indented code block,
/// so only a fenced code block or an HTML block can hold it as content:
/// a piece may end there only when neither is among its last blocks (the chain of last children),
/// and otherwise grows to a later such line.
/// Cut before a bullet, one list becomes two lists, which the readers read as one.
/// Link reference definitions (`[label]: url`) hold for the whole document and a lone CR
/// ends a line for comrak but not for the line count here,
/// so a text with `]:` or a lone CR is parsed whole.
pub(crate) fn read_pieces(
    text: &str,
    piece_bytes: usize,
    mut read: impl for<'a> FnMut(&'a AstNode<'a>, usize) -> ControlFlow<()>,
) {
    let options = Options::default();
    if !may_split(text) {
        let arena = Arena::new();
        let _ = read(parse_document(&arena, text, &options), 0);
        return;
    }
    let mut start = 0;
    let mut lines_before = 0;
    while start < text.len() {
        let mut want = piece_bytes.max(1);
        loop {
            let end = next_block_line(text, start.saturating_add(want));
            let piece = &text[start..end];
            let arena = Arena::new();
            let root = parse_document(&arena, piece, &options);
            if end < text.len() && ends_in_open_content(root) {
                // Past this end, and at least twice as far each time,
                // so that a long fence is parsed a few times, not once per block line in it.
                want = (end - start + 1).max(want.saturating_mul(2));
                continue;
            }
            if read(root, lines_before).is_break() {
                return;
            }
            lines_before += piece.bytes().filter(|&byte| byte == b'\n').count();
            start = end;
            break;
        }
    }
}

/// Whether cutting the text at block lines keeps comrak's reading of it.
fn may_split(text: &str) -> bool {
    let bytes = text.as_bytes();
    let lone_cr = text
        .match_indices('\r')
        .any(|(at, _)| bytes.get(at + 1) != Some(&b'\n'));
    !lone_cr && !text.contains("]:")
}

/// The start of the first line at or after `from` that starts a block wherever it stands
/// (see [`read_pieces`]), or the text's end.
fn next_block_line(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    if from >= bytes.len() {
        return bytes.len();
    }
    let mut at = from;
    if at > 0 && bytes[at - 1] != b'\n' {
        match bytes[at..].iter().position(|&byte| byte == b'\n') {
            Some(newline) => at += newline + 1,
            None => return bytes.len(),
        }
    }
    while at < bytes.len() {
        let line_end = bytes[at..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(bytes.len(), |newline| at + newline);
        if starts_block(&bytes[at..line_end]) {
            return at;
        }
        at = line_end + 1;
    }
    bytes.len()
}

/// Whether a line (without its `\n`) is an ATX heading or a bullet item with text, at column 0.
fn starts_block(line: &[u8]) -> bool {
    let hashes = line.iter().take_while(|&&byte| byte == b'#').count();
    if hashes > 0 {
        return hashes <= 6 && matches!(line.get(hashes), None | Some(b' ' | b'\t' | b'\r'));
    }
    match line {
        // Text other than `-`, `*` and `_` makes it an item, not a thematic break (`- - -`) or an empty item.
        [b'-' | b'+' | b'*', b' ' | b'\t', rest @ ..] => rest
            .iter()
            .any(|byte| !matches!(byte, b'-' | b'*' | b'_' | b' ' | b'\t' | b'\r')),
        _ => false,
    }
}

/// Whether a code block or an HTML block is among the last blocks of the tree,
/// where a fence or an HTML block left open would take the next line as content.
fn ends_in_open_content<'a>(root: &'a AstNode<'a>) -> bool {
    let mut node = root.last_child();
    while let Some(block) = node {
        if matches!(
            block.data.borrow().value,
            NodeValue::CodeBlock(_) | NodeValue::HtmlBlock(_)
        ) {
            return true;
        }
        node = block.last_child();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::parse::parse_in_pieces;
    use crate::{Format, ParseOptions};

    /// The pieces `read_pieces` makes of `text`, as (lines before, top-level blocks).
    fn pieces(text: &str, piece_bytes: usize) -> Vec<(usize, usize)> {
        let mut pieces = Vec::new();
        read_pieces(text, piece_bytes, |root, lines_before| {
            pieces.push((lines_before, root.children().count()));
            ControlFlow::Continue(())
        });
        pieces
    }

    #[test]
    fn block_lines() {
        for (line, starts) in [
            ("# M0: A", true),
            ("## L001: B [F]", true),
            ("###### Six", true),
            ("#", true),
            ("##\r", true),
            ("####### Seven", false),
            ("#hashtag", false),
            (" # Indented", false),
            ("- Lesson [F]", true),
            ("* **Module 1: A**", true),
            ("+\tItem", true),
            ("- - -", false),
            ("* * *", false),
            ("- ", false),
            ("-", false),
            ("-item", false),
            ("1. Ordered", false),
            ("  - Nested", false),
            ("Prose", false),
        ] {
            assert_eq!(starts_block(line.as_bytes()), starts, "{line:?}");
        }
    }

    #[test]
    fn pieces_end_before_block_lines() {
        let text = "# M0: A\n## L001: B\nprose\n## L002: C\n";
        assert_eq!(next_block_line(text, 1), 8);
        assert_eq!(next_block_line(text, 8), 8);
        assert_eq!(next_block_line(text, 9), 25);
        assert_eq!(next_block_line(text, 25), 25);
        assert_eq!(next_block_line(text, 26), text.len());
        assert_eq!(next_block_line(text, 100), text.len());
    }

    #[test]
    fn a_piece_grows_past_an_open_fence() {
        let text =
            "# M0: A\n```\n# M1: In the fence\n## L001: Also\n```\nprose\n## L001: Out [F]\n";
        // The cuts before `# M1` and `## L001: Also` are in the fence; the one before `## L001: Out` is after it.
        assert_eq!(pieces(text, 1), [(0, 3), (6, 1)]);
        // The piece grows again when the fence is its last block, even closed.
        let text = "# M0: A\n```\n# M1: In the fence\n```\n## L001: Out [F]\n";
        assert_eq!(pieces(text, 1), [(0, 3)]);
        // Open at the end of the text, the fence takes the rest.
        assert_eq!(pieces("# M0: A\n```\n# M1: B\n", 1), [(0, 2)]);
    }

    #[test]
    fn link_definitions_and_lone_cr_keep_the_text_whole() {
        assert!(may_split("# M0: A\r\n## L001: B\r\n"));
        assert!(!may_split("# M0: A\r## L001: B\r"));
        assert!(!may_split(
            "# M0: A\n## L001: [B]\n\n[B]: https://example.com\n"
        ));
        assert_eq!(pieces("# M0: A\r## L001: B\r", 1).len(), 1);
    }

    /// Each result of parsing `text` in pieces of a few sizes, in each format and detected,
    /// is the one of parsing it whole, errors included; returns the most pieces it was cut into.
    fn check_same_in_pieces(text: &str) -> usize {
        let origin = Path::new("outline.md");
        let mut most_pieces = 0;
        for format in [None, Some(Format::LessonMap), Some(Format::Nested)] {
            let options = ParseOptions { format };
            let whole = format!("{:?}", parse_in_pieces(text, origin, &options, usize::MAX));
            for piece_bytes in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 1000, 4096] {
                let in_pieces = parse_in_pieces(text, origin, &options, piece_bytes);
                assert_eq!(
                    format!("{in_pieces:?}"),
                    whole,
                    "{format:?} in pieces of {piece_bytes} bytes: {text:?}"
                );
            }
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        read_pieces(text, 1, |_, _| {
            most_pieces += 1;
            ControlFlow::Continue(())
        });
        most_pieces
    }

    #[test]
    fn the_fixtures_read_the_same_in_pieces() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
        let mut paths = vec![PathBuf::from(fixtures).join("datagov/Content Structure.md")];
        for entry in fs::read_dir(PathBuf::from(fixtures).join("outlines")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|extension| extension == "md") {
                paths.push(path);
            }
        }
        let mut read = 0;
        for path in &paths {
            // The invalid UTF-8 fixture never reaches the parser.
            let Ok(text) = String::from_utf8(fs::read(path).unwrap()) else {
                continue;
            };
            let n_pieces = check_same_in_pieces(&text);
            assert!(n_pieces > 1, "{} was not cut", path.display());
            read += 1;
        }
        assert!(read >= 9, "only {read} fixtures");
    }

    #[test]
    fn generated_outlines_read_the_same_in_pieces() {
        let mut lesson_map = String::from("# Course — Content Structure\n\n[F] Foundational\n\n");
        let mut nested = String::from("# Course\n\n");
        for module in 0..12 {
            let _ = writeln!(lesson_map, "<!-- File: M{module}.md -->");
            let _ = writeln!(lesson_map, "# M{module}: Module {module} — Lesson Map\n");
            let _ = writeln!(nested, "- **Module {module}: Module {module}**");
            for lesson in 1..=20 {
                if lesson % 6 == 1 {
                    let _ = writeln!(lesson_map, "## Section {lesson}: Concepts → Practice");
                    let _ = writeln!(nested, "  - Group {lesson}");
                }
                let _ = writeln!(lesson_map, "## L{lesson:03}: Using `GRANT` {lesson} [F-I]");
                let _ = writeln!(nested, "    - Lesson *{lesson}* [I]");
            }
            lesson_map.push('\n');
        }
        assert!(check_same_in_pieces(&lesson_map) > 100);
        assert!(check_same_in_pieces(&nested) > 10);
        // A long fence full of block lines, in the middle of the outline.
        let cut = lesson_map.find("# M6:").unwrap();
        let mut fenced = lesson_map[..cut].to_owned();
        fenced.push_str("```markdown\n");
        fenced.push_str(&lesson_map[cut..].replace("# M9:", "```\n# M9:"));
        assert!(check_same_in_pieces(&fenced) > 50);
    }

    #[test]
    fn tricky_outlines_read_the_same_in_pieces() {
        for text in [
            "",
            "\n\n",
            // Fences that hold block lines, closed, open at the end, tilde, in a list, in a quote.
            "# M0: A\n## L001: One [F]\n```\n# M1: Not a module\n## L002: Not a lesson [F]\n- Not an item [F]\n```\n## L002: Two [F]\n",
            "# M0: A\n## L001: One [F]\n~~~~ md\n# M1: B\n~~~\n## L001: C [F]\n",
            "# M0: A\n## L001: One [F]\n```\n# M1: B\n## L001: C [F]\n",
            "# M0: A\n- item\n  ```\n# M1: B\n## L001: C [F]\n",
            "# M0: A\n> ```\n# M1: B\n## L001: C [F]\n> ```\n",
            "## Module 1: A\n- One [F]\n  ```\n- Two [F]\n  ```\n- Three [F]\n",
            "## Module 1: A\n```\n- One [F]\n## Module 2: B\n```\n- Two [F]\n",
            // HTML blocks: a comment across lines, a div up to a blank line, a script.
            "<!--\n# M0: Commented\n## L001: Out [F]\n-->\n# M1: B\n## L001: C [F]\n",
            "<!-- File: a.md -->\n# M0: A\n## L001: B [F]\n<!-- File: b.md -->\n# M1: C\n## L001: D [F]\n",
            "# M0: A\n## L001: One [F]\n<div>\n# M1: In HTML\n## L002: Also [F]\n\n## L002: Out [F]\n",
            "# M0: A\n<script>\n# M1\n\n## L001: x [F]\n</script>\n## L001: C [F]\n",
            "## Module 1: A\n- One [F]\n<div>\n- Two [F]\n\n- Three [F]\n",
            // CRLF, a byte order mark, a lone CR.
            "\u{feff}# M0: A\r\n## Core\r\n\r\n## L001: What [F]\r\n## L002: Two [I]\r\n",
            "\u{feff}## Module 1: A\r\n- One [F]\r\n  - Two [I]\r\n- Three\r\n",
            "# M0: A\r## L001: One [F]\r## L002: Two [F]\r",
            // Setext headings and thematic breaks beside block lines.
            "Course\n======\n\nM0: Setext Module\n---\n## L001: One [F]\nL002: Setext lesson\n---\n# M1: B\n## L001: x [F]\n",
            "# M0: A\nprose\n- - -\n## L001: One [F]\n* * *\n## L002: Two [F]\n",
            "## Module 1: A\nSetext Group\n---\n- One [F]\n- Two [I]\n",
            // Lazy continuation lines, paragraphs interrupted by block lines, indented code.
            "# M0: A\n> quote\n## L001: One [F]\n- item\nlazy\n## L002: Two [F]\n",
            "## Module 1: A\nprose\n- One [F]\n> quote\n- Two [F]\n    - code\n- Three [F]\n",
            "# M0: A\n    # M1: code\n## L001: One [F]\n",
            "## Module 1: A\n1. One [F]\n2. Two [F]\n\nprose\n2. not an item\n- Three [F]\n",
            "#hashtag\n# M0: A\n####### L001: Seven [F]\n## L001: One [F]\n#\n## L002: Two [F]\n",
            // Link reference definitions hold for the whole text.
            "# M0: A\n## L001: The [DAMA] Wheel [F]\n## L002: Tagged [F]\n\n[DAMA]: https://dama.org\n[F]: https://example.com\n",
            // Nested items, labs and module items on both sides of a cut.
            "## Module 1: A\n- Group\n  - One [F]\n- Two [I]\n  - *Lab: x*\n- **Module 2: B**\n  - Three [F]\n- *Lab: y*\n## Resources\n- Link\n",
            // Errors, and a format's error that another format's lessons override.
            "# M0: A\n## L001: One [F]\n## L002: Two [F]\n# M1: B\n# M0: Again\n",
            "# M0: A\n## L001: One [F]\n## L002: Two [F]\n## L001: Again [F]\n",
            "# M0: A\n## L001: One [F]\n## L002: Two [X]\n",
            "# Course\n- Orphan [F]\n# M0: A\n## L001: One [F]\n",
            "- Orphan [F]\n# Notes\n- More\n",
            "## Module 1: A\n- One [F]\n- Two [Q]\n## Module 1: B\n",
            "# Notes\n\n# M0: Truncated — Lesson Map\n## Section\n",
            // Issue 12: typos, gaps, empty titles and numbers too large.
            "# M0: A\n## L001: One [F]\n## L02 Two [F]\n##L003: Three\n- L004: Four\nL005: Five\n## L007: Seven [F]\n## L006: Six [F]\n",
            "# M0: A\n## L001: One [F]\n# M1 B\n## Section\n## L001: Again [F]\n",
            "# M0: A\n## L001: One [F]\n## L002: \n",
            "# M0: A\n## L001: One [F]\n# M4294967296: B\n",
            "## Module 1: A\n- One [F]\n- **Module 2 B**\n  - Two\n##Module 3: C\n- Three [F]\n",
        ] {
            check_same_in_pieces(text);
        }
    }
}
