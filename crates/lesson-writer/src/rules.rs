//! The cleanup rules' implementations: each finds blocks and cuts or inserts lines.

use crate::markdown::{Block, BlockKind};

// Phrases matched at the start of a raw heading (or paragraph) line, lower case, after
// leading `#`, `*`, `_` and whitespace.
pub(crate) const PROMPT_LINE: &str = "llm prompt:";
pub(crate) const CONTEXT_SECTION: &str = "context & parameters";
pub(crate) const SCHEMA_SECTION: &str = "content output schema";
pub(crate) const GOVERNANCE_NOTES: &str = "quality and governance notes";
const SECTION_ONE: &str = "section 1:";

/// Preambles longer than this are content, not chat, and are kept.
const MAX_PREAMBLE_BYTES: usize = 600;
const MAX_PREAMBLE_PARAGRAPHS: usize = 3;

/// Turns `\r\n` and lone `\r` into `\n`.
pub(crate) fn line_ends(text: &str) -> Option<String> {
    text.contains('\r')
        .then(|| text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Drops leading blank lines and trailing whitespace; ends with one `\n`.
pub(crate) fn final_newline(text: &str) -> Option<String> {
    let start = text
        .split_inclusive('\n')
        .take_while(|line| line.trim().is_empty())
        .map(str::len)
        .sum::<usize>();
    let body = text[start.min(text.len())..].trim_end();
    let cleaned = if body.is_empty() {
        String::new()
    } else {
        format!("{body}\n")
    };
    (cleaned != text).then_some(cleaned)
}

/// [`final_newline`] without a copy in the common case (no leading blank line).
pub(crate) fn final_newline_owned(mut text: String) -> (String, bool) {
    let leading_blank = text
        .split_inclusive('\n')
        .next()
        .is_some_and(|line| line.trim().is_empty());
    if leading_blank || text.is_empty() {
        return match final_newline(&text) {
            Some(changed) => (changed, true),
            None => (text, false),
        };
    }
    let end = text.trim_end().len();
    if end + 1 == text.len() && text.ends_with('\n') {
        return (text, false);
    }
    text.truncate(end);
    text.push('\n');
    (text, true)
}

/// A text with its lines and top-level blocks.
pub(crate) struct Doc<'a> {
    /// Lines with their `\n`; line `n` (1-based) is `lines[n - 1]`.
    lines: Vec<&'a str>,
    blocks: &'a [Block],
}

impl<'a> Doc<'a> {
    pub(crate) fn new(text: &'a str, blocks: &'a [Block]) -> Self {
        Doc {
            lines: text.split_inclusive('\n').collect(),
            blocks,
        }
    }

    /// Line `n` (1-based) without its line end; empty past the end.
    fn line(&self, n: usize) -> &'a str {
        self.lines
            .get(n.wrapping_sub(1))
            .map_or("", |line| line.trim_end_matches('\n'))
    }

    fn last_line(&self) -> usize {
        self.lines.len()
    }

    /// The text without the given inclusive 1-based line ranges.
    fn without(&self, ranges: &[(usize, usize)]) -> String {
        let mut out = String::new();
        for (index, line) in self.lines.iter().enumerate() {
            let n = index + 1;
            if !ranges.iter().any(|&(from, to)| (from..=to).contains(&n)) {
                out.push_str(line);
            }
        }
        out
    }

    /// The lowercased start of a block's first line, past `#`, `*`, `_` and spaces.
    fn phrase(&self, block: &Block) -> String {
        let line = self
            .line(block.start)
            .trim_start_matches(|c: char| c == '#' || c == '*' || c == '_' || c.is_whitespace());
        let end = line
            .char_indices()
            .nth(GOVERNANCE_NOTES.len())
            .map_or(line.len(), |(at, _)| at);
        line[..end].to_ascii_lowercase()
    }

    pub(crate) fn outer_fence(&self) -> Option<String> {
        let first = self.blocks.first()?;
        let BlockKind::CodeBlock {
            fenced: true,
            info,
            closed,
        } = &first.kind
        else {
            return None;
        };
        let word = info.split_whitespace().next().unwrap_or_default();
        let labelled = word.eq_ignore_ascii_case("markdown") || word.eq_ignore_ascii_case("md");
        if !labelled && !word.is_empty() {
            return None;
        }
        let last_text_line = (1..=self.last_line())
            .rev()
            .find(|&n| !self.line(n).trim().is_empty())?;
        let fence_char = self.line(first.start).trim_start().chars().next()?;
        let is_bare_fence = |n: usize| {
            let line = self.line(n).trim();
            line.len() >= 3 && line.chars().all(|c| c == fence_char)
        };
        let last = self.blocks.last()?;
        match (self.blocks.len(), *closed) {
            // One block: the fence closes at the last line, or never closes.
            (1, true) if first.end == last_text_line && is_bare_fence(first.end) => {
                Some(self.without(&[(first.start, first.start), (first.end, first.end)]))
            }
            (1, false) if labelled => Some(self.without(&[(first.start, first.start)])),
            // Inner fences closed the wrapper early; its closing fence is then left
            // as an empty, unclosed block on the last line.
            (n, _) if n > 1 && last.start == last_text_line && is_bare_fence(last.start) => {
                let unclosed_bare = matches!(
                    &last.kind,
                    BlockKind::CodeBlock { fenced: true, info, closed: false } if info.is_empty()
                );
                unclosed_bare.then(|| {
                    self.without(&[(first.start, first.start), (last.start, last_text_line)])
                })
            }
            _ => None,
        }
    }

    pub(crate) fn remove_headings(&self, phrase: &str) -> Option<String> {
        let ranges: Vec<(usize, usize)> = self
            .blocks
            .iter()
            .filter(|block| matches!(block.kind, BlockKind::Heading(_)))
            .filter(|block| self.phrase(block).starts_with(phrase))
            .map(|block| (block.start, block.end))
            .collect();
        (!ranges.is_empty()).then(|| self.without(&ranges))
    }

    pub(crate) fn remove_sections(&self, phrase: &str) -> Option<String> {
        let mut ranges = Vec::new();
        let mut index = 0;
        while let Some(block) = self.blocks.get(index) {
            index += 1;
            let BlockKind::Heading(level) = block.kind else {
                continue;
            };
            if !self.phrase(block).starts_with(phrase) {
                continue;
            }
            let next = self.blocks[index..]
                .iter()
                .position(|next| matches!(next.kind, BlockKind::Heading(l) if l <= level));
            match next {
                Some(offset) => {
                    index += offset;
                    ranges.push((block.start, self.blocks[index].start - 1));
                }
                None => {
                    ranges.push((block.start, self.last_line()));
                    break;
                }
            }
        }
        (!ranges.is_empty()).then(|| self.without(&ranges))
    }

    pub(crate) fn governance_notes(&self) -> Option<String> {
        let start = self.blocks.windows(2).find_map(|pair| {
            (pair[0].kind == BlockKind::ThematicBreak
                && self.phrase(&pair[1]).starts_with(GOVERNANCE_NOTES))
            .then_some(pair[0].start)
        })?;
        Some(self.without(&[(start, self.last_line())]))
    }

    pub(crate) fn lesson_start(&self) -> Option<String> {
        let is_start = |block: &Block| match block.kind {
            BlockKind::Heading(level) => {
                let phrase = self.phrase(block);
                (level == 1 && (phrase == "lesson" || phrase.starts_with("lesson ")))
                    || phrase.starts_with(SECTION_ONE)
            }
            _ => false,
        };
        let found = self
            .blocks
            .iter()
            .position(|block| is_start(block) && self.phrase(block).starts_with("lesson"))
            .or_else(|| self.blocks.iter().position(is_start))?;
        (found > 0).then(|| self.without(&[(1, self.blocks[found].start - 1)]))
    }

    pub(crate) fn preamble(&self) -> Option<String> {
        let heading = self
            .blocks
            .iter()
            .position(|block| matches!(block.kind, BlockKind::Heading(_)))?;
        if heading == 0 {
            return None;
        }
        let before = &self.blocks[..heading];
        let chat_only = before
            .iter()
            .all(|block| matches!(block.kind, BlockKind::Paragraph | BlockKind::ThematicBreak));
        let paragraphs = before
            .iter()
            .filter(|block| block.kind == BlockKind::Paragraph)
            .count();
        let end = self.blocks[heading].start - 1;
        let bytes: usize = (1..=end).map(|n| self.line(n).len()).sum();
        (chat_only && paragraphs <= MAX_PREAMBLE_PARAGRAPHS && bytes <= MAX_PREAMBLE_BYTES)
            .then(|| self.without(&[(1, end)]))
    }

    pub(crate) fn heading(&self, canonical: &str) -> Option<String> {
        let Some(first) = self.blocks.first() else {
            return Some(format!("{canonical}\n"));
        };
        if first.kind == BlockKind::Heading(1) {
            if first.start == first.end && self.line(first.start) == canonical {
                return None;
            }
            let rest = self.without(&[(1, first.end)]);
            return Some(format!("{canonical}\n{rest}"));
        }
        let rest = self.without(&[(1, first.start - 1)]);
        Some(format!("{canonical}\n\n{rest}"))
    }
}

#[cfg(test)]
mod tests {
    use curriculum_parser::LessonCode;

    use crate::Rule;

    fn code() -> LessonCode {
        "M0-L001".parse().unwrap()
    }

    /// Checks one rule alone: `None` means the rule must leave the text alone.
    fn check(rule: Rule, input: &str, expected: Option<&str>) {
        let got = rule.apply(input, code(), Some("Intro"));
        assert_eq!(got.as_deref(), expected, "{rule} on {input:?}");
    }

    #[test]
    fn line_ends() {
        check(Rule::LineEnds, "a\r\nb\rc\n", Some("a\nb\nc\n"));
        check(Rule::LineEnds, "a\nb\n", None);
    }

    #[test]
    fn outer_fence() {
        check(
            Rule::OuterFence,
            "```markdown\n# Lesson\n\nText.\n```\n",
            Some("# Lesson\n\nText.\n"),
        );
        check(Rule::OuterFence, "\n```md\n# A\n```\n\n", Some("\n# A\n\n"));
        check(
            Rule::OuterFence,
            "````\n# A\n```py\nx\n```\n````\n",
            Some("# A\n```py\nx\n```\n"),
        );
        // Inner fences closed the wrapper early.
        check(
            Rule::OuterFence,
            "```markdown\n# A\n```python\nx = 1\n```\nText.\n```\n",
            Some("# A\n```python\nx = 1\n```\nText.\n"),
        );
        // Never closed.
        check(
            Rule::OuterFence,
            "```markdown\n# A\ntext\n",
            Some("# A\ntext\n"),
        );
        // Not a wrapper: a lesson that starts and ends with code blocks.
        check(Rule::OuterFence, "```python\nx\n```\n", None);
        check(Rule::OuterFence, "```\nx\n```\nText.\n```\ny\n```\n", None);
        check(
            Rule::OuterFence,
            "```markdown\n# A\n```\nLet me know!\n",
            None,
        );
        check(Rule::OuterFence, "# A\n```\nx\n```\n", None);
    }

    #[test]
    fn prompt_line() {
        check(
            Rule::PromptLine,
            "# LLM Prompt: write a lesson\n# Lesson M0-L001: Intro\nText.\n",
            Some("# Lesson M0-L001: Intro\nText.\n"),
        );
        check(Rule::PromptLine, "Text about the LLM Prompt: here.\n", None);
        check(Rule::PromptLine, "```\n# LLM Prompt: in code\n```\n", None);
    }

    #[test]
    fn context_section() {
        check(
            Rule::ContextSection,
            "## **Context & Parameters**\n- audience: analysts\n\n```\nkeep? no\n```\n\n# Lesson M0-L001: Intro\nText.\n",
            Some("# Lesson M0-L001: Intro\nText.\n"),
        );
        check(
            Rule::ContextSection,
            "# Lesson\n## Context & Parameters\nx\n### Sub\ny\n## Section 1: Real\nz\n",
            Some("# Lesson\n## Section 1: Real\nz\n"),
        );
        check(
            Rule::ContextSection,
            "# Lesson\nContext & Parameters matter.\n",
            None,
        );
    }

    #[test]
    fn schema_section() {
        check(
            Rule::SchemaSection,
            "# Lesson\nText.\n\n## **Content Output Schema (Markdown)**\n1. Title\n2. Sections\n",
            Some("# Lesson\nText.\n\n"),
        );
        check(Rule::SchemaSection, "# Lesson\n## Output\n", None);
    }

    #[test]
    fn governance_notes() {
        check(
            Rule::GovernanceNotes,
            "# Lesson\nText.\n\n---\n\n**Quality and governance notes:** reviewed.\n- a\n",
            Some("# Lesson\nText.\n\n"),
        );
        check(
            Rule::GovernanceNotes,
            "# Lesson\n\n---\n\n## Quality and Governance Notes\nx\n",
            Some("# Lesson\n\n"),
        );
        // A thematic break followed by something else stays.
        check(
            Rule::GovernanceNotes,
            "# Lesson\n\n---\n\nMore text.\n",
            None,
        );
        // Without the break, the phrase alone is content.
        check(
            Rule::GovernanceNotes,
            "# Lesson\n\nQuality and governance notes: x\n",
            None,
        );
    }

    #[test]
    fn lesson_start() {
        check(
            Rule::LessonStart,
            "Here you go.\n\n# Lesson M0-L001: Intro\nText.\n",
            Some("# Lesson M0-L001: Intro\nText.\n"),
        );
        check(
            Rule::LessonStart,
            "# Data 101\nIntro.\n## Section 1: Basics\nText.\n",
            Some("## Section 1: Basics\nText.\n"),
        );
        // A `# Lesson` heading wins over an earlier `Section 1:` heading.
        check(
            Rule::LessonStart,
            "## Section 1: Echo\nx\n# Lesson 1: Intro\ny\n",
            Some("# Lesson 1: Intro\ny\n"),
        );
        check(
            Rule::LessonStart,
            "# Lesson M0-L001: Intro\n## Section 1: A\n",
            None,
        );
        check(Rule::LessonStart, "Text.\n## Lesson plan\n", None);
    }

    #[test]
    fn preamble() {
        check(
            Rule::Preamble,
            "Sure! Here is the lesson:\n\n---\n\n## Why data\nText.\n",
            Some("## Why data\nText.\n"),
        );
        // A long run of text, or anything but paragraphs, is content.
        let long = format!("{}\n\n## A\n", "word ".repeat(200));
        check(Rule::Preamble, &long, None);
        check(Rule::Preamble, "- item\n\n## A\n", None);
        check(Rule::Preamble, "```\ncode\n```\n## A\n", None);
        check(Rule::Preamble, "No heading at all.\n", None);
    }

    #[test]
    fn heading() {
        check(Rule::Heading, "# Lesson M0-L001: Intro\nText.\n", None);
        check(
            Rule::Heading,
            "# Lesson 1 - Intro to data\nText.\n",
            Some("# Lesson M0-L001: Intro\nText.\n"),
        );
        check(
            Rule::Heading,
            "Old title\n=========\nText.\n",
            Some("# Lesson M0-L001: Intro\nText.\n"),
        );
        check(
            Rule::Heading,
            "\n## Section 1: A\nText.\n",
            Some("# Lesson M0-L001: Intro\n\n## Section 1: A\nText.\n"),
        );
        check(Rule::Heading, "", Some("# Lesson M0-L001: Intro\n"));
        // Without a title nothing is invented.
        assert_eq!(Rule::Heading.apply("Text.\n", code(), None), None);
    }

    #[test]
    fn final_newline() {
        check(
            Rule::FinalNewline,
            "\n \n# A\ntext  \n\n\n",
            Some("# A\ntext\n"),
        );
        check(Rule::FinalNewline, "# A", Some("# A\n"));
        check(Rule::FinalNewline, "# A\n", None);
        check(Rule::FinalNewline, "  indented first line\n", None);
    }
}
