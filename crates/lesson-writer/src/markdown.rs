//! The top-level block structure of a Markdown text, from comrak, with line ranges.
//!
//! Cleanup rules find headings, thematic breaks and code blocks here and then cut
//! the raw text by whole lines, so text they keep stays byte for byte as it was.

use comrak::nodes::NodeValue;
use comrak::{Arena, Options, parse_document};

/// One top-level block with its 1-based, inclusive line range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// What the block is.
    pub(crate) kind: BlockKind,
    /// First line.
    pub(crate) start: usize,
    /// Last line.
    pub(crate) end: usize,
}

/// The kinds of block the cleanup rules care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// An ATX or setext heading of level 1 to 6.
    Heading(u8),
    /// A `---`, `***` or `___` line.
    ThematicBreak,
    /// A fenced or indented code block.
    CodeBlock {
        /// Whether it is fenced (```` ``` ```` or `~~~`).
        fenced: bool,
        /// The info string after the opening fence.
        info: String,
        /// Whether a closing fence was found.
        closed: bool,
    },
    /// A paragraph.
    Paragraph,
    /// Anything else (lists, block quotes, HTML, tables...).
    Other,
}

/// The top-level blocks of `text`, in order.
pub(crate) fn blocks(text: &str) -> Vec<Block> {
    let arena = Arena::new();
    let options = Options::default();
    let root = parse_document(&arena, text, &options);
    root.children()
        .map(|node| {
            let ast = node.data();
            let (start, end) = (ast.sourcepos.start.line, ast.sourcepos.end.line);
            let kind = match &ast.value {
                NodeValue::Heading(heading) => BlockKind::Heading(heading.level),
                NodeValue::ThematicBreak => BlockKind::ThematicBreak,
                NodeValue::CodeBlock(code) => BlockKind::CodeBlock {
                    fenced: code.fenced,
                    info: code.info.clone(),
                    closed: code.closed,
                },
                NodeValue::Paragraph => BlockKind::Paragraph,
                _ => BlockKind::Other,
            };
            Block {
                kind,
                start,
                end: end.max(start),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(String, usize, usize)> {
        blocks(text)
            .into_iter()
            .map(|block| {
                let name = match block.kind {
                    BlockKind::Heading(level) => format!("h{level}"),
                    BlockKind::ThematicBreak => "hr".to_owned(),
                    BlockKind::CodeBlock { info, closed, .. } => format!("code {info} {closed}"),
                    BlockKind::Paragraph => "p".to_owned(),
                    BlockKind::Other => "other".to_owned(),
                };
                (name, block.start, block.end)
            })
            .collect()
    }

    #[test]
    fn finds_blocks_with_line_ranges() {
        let text = r#"Sure!

## **Context & Parameters**
text
more

```python
# not a heading
---
```

Title
=====

---
- a
- b
"#;
        let got = kinds(text);
        let want: Vec<(String, usize, usize)> = vec![
            ("p".into(), 1, 1),
            ("h2".into(), 3, 3),
            ("p".into(), 4, 5),
            ("code python true".into(), 7, 10),
            ("h1".into(), 12, 13),
            ("hr".into(), 15, 15),
            ("other".into(), 16, 17),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn unclosed_fence_runs_to_the_end() {
        assert_eq!(kinds("```\na\n\nb\n"), vec![("code  false".into(), 1, 4)]);
    }
}
