//! The cleanup rules' implementations: each finds blocks and cuts or inserts lines.

use crate::chat::{self, MAX_CHAT_BYTES, MAX_OFFERS};
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
        let labelled = fence_label(info)?;
        // Chat offers after the wrapper ("Let me know ...") stay for `trailing_offer`; the
        // wrapper ends before them.
        let blocks = &self.blocks[..self.trailing_offer_start().unwrap_or(self.blocks.len())];
        let text_end = if blocks.len() < self.blocks.len() {
            blocks.last()?.end
        } else {
            self.last_line()
        };
        let last_text_line = (1..=text_end)
            .rev()
            .find(|&n| !self.line(n).trim().is_empty())?;
        let fence_char = self.line(first.start).trim_start().chars().next()?;
        let is_bare_fence = |n: usize| {
            let line = self.line(n).trim();
            line.len() >= 3 && line.chars().all(|c| c == fence_char)
        };
        let last = blocks.last()?;
        match (blocks.len(), *closed) {
            // One block: the fence closes at the last line, or never closes.
            (1, true) if first.end == last_text_line && is_bare_fence(first.end) => {
                Some(self.without(&[(first.start, first.start), (first.end, first.end)]))
            }
            (1, false) if labelled => Some(self.without(&[(first.start, first.start)])),
            // Inner fences closed the wrapper early; its closing fence is then left
            // as an empty, unclosed block on the last line.
            // An offer after that closing fence is inside its block.
            (n, _)
                if n > 1
                    && is_bare_fence(last.start)
                    && (last.start == last_text_line || self.only_offers_after(last.start)) =>
            {
                let unclosed_bare = matches!(
                    &last.kind,
                    BlockKind::CodeBlock { fenced: true, info, closed: false } if info.is_empty()
                );
                unclosed_bare
                    .then(|| self.without(&[(first.start, first.start), (last.start, last.start)]))
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

    /// Drops a short chat opening that is the answer's first block ("Sure! Here is the
    /// lesson:"), with the thematic breaks after it; see [`chat::opening`].
    pub(crate) fn chat_opening(&self) -> Option<String> {
        let first = self.blocks.first()?;
        if first.kind != BlockKind::Paragraph || self.bytes(first) > MAX_CHAT_BYTES {
            return None;
        }
        let opening = chat::opening(self.line(first.start))?;
        let next = self.blocks[1..]
            .iter()
            .find(|block| block.kind != BlockKind::ThematicBreak)?;
        // A lead-in ("Here is ...") is chat when the lesson follows at once: a heading, a
        // fence wrapping a Markdown document, or anything after a thematic break.
        let lesson_follows = match &next.kind {
            BlockKind::Heading(_) => true,
            BlockKind::CodeBlock {
                fenced: true, info, ..
            } if fence_label(info).is_some() => (next.start + 1..=next.end)
                .map(|n| self.line(n).trim_start())
                .find(|line| !line.is_empty())
                .is_some_and(|line| line.starts_with('#')),
            _ => self.blocks[1].kind == BlockKind::ThematicBreak,
        };
        (opening == chat::Opening::Strong || lesson_follows)
            .then(|| self.without(&[(1, next.start - 1)]))
    }

    /// Drops short chat offers after the last real content ("Let me know if you want any
    /// changes!"), with the thematic breaks between them.
    pub(crate) fn trailing_offer(&self) -> Option<String> {
        let start = self.trailing_offer_start()?;
        Some(self.without(&[(self.blocks[start].start, self.last_line())]))
    }

    /// The index of the first block of a run of trailing offers and thematic breaks, when
    /// that run holds 1 to [`MAX_OFFERS`] short offer paragraphs and comes after content.
    fn trailing_offer_start(&self) -> Option<usize> {
        let mut start = self.blocks.len();
        let mut offers = 0;
        while let Some(block) = start.checked_sub(1).map(|index| &self.blocks[index]) {
            match block.kind {
                BlockKind::ThematicBreak => {}
                BlockKind::Paragraph if chat::is_offer(self.line(block.start)) => {
                    if self.bytes(block) > MAX_CHAT_BYTES {
                        return None;
                    }
                    offers += 1;
                }
                _ => break,
            }
            start -= 1;
        }
        (start > 0 && (1..=MAX_OFFERS).contains(&offers)).then_some(start)
    }

    /// Whether the lines after line `n` hold only blank lines and short offers.
    fn only_offers_after(&self, n: usize) -> bool {
        let lines: Vec<&str> = (n + 1..=self.last_line())
            .map(|n| self.line(n))
            .filter(|line| !line.trim().is_empty())
            .collect();
        !lines.is_empty()
            && lines.len() <= MAX_OFFERS
            && lines
                .iter()
                .all(|line| line.len() <= MAX_CHAT_BYTES && chat::is_offer(line))
    }

    /// The title in the answer's own first heading, when that is a level-1 heading:
    /// `Intro` from `# Lesson 1 - Intro` or `# Intro`; `None` from `# Lesson M0-L001`.
    pub(crate) fn own_title(&self) -> Option<&'a str> {
        let first = self.blocks.first()?;
        if first.kind != BlockKind::Heading(1) {
            return None;
        }
        let line = self.line(first.start);
        // A setext heading's text is its first line; an ATX one's is past the `#`.
        let text = if first.start == first.end {
            atx_text(line)
        } else {
            line.trim()
        };
        title_in_heading(text)
    }

    /// The bytes of a block's lines.
    fn bytes(&self, block: &Block) -> usize {
        (block.start..=block.end).map(|n| self.line(n).len()).sum()
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

/// For a fence's info string: `Some(true)` for `markdown` or `md`, `Some(false)` for none,
/// `None` for another language (not a wrapper).
fn fence_label(info: &str) -> Option<bool> {
    let word = info.split_whitespace().next().unwrap_or_default();
    let labelled = word.eq_ignore_ascii_case("markdown") || word.eq_ignore_ascii_case("md");
    (labelled || word.is_empty()).then_some(labelled)
}

/// An ATX heading line's text: past the opening `#`s, without a closing `#` sequence.
pub(crate) fn atx_text(line: &str) -> &str {
    let text = line.trim().trim_start_matches('#').trim();
    let without_closing = text.trim_end_matches('#');
    if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        text
    }
}

/// The title in a heading's text: past a leading `Lesson` and lesson number (`Lesson
/// M0-L001:`, `Lesson 1 -`) and emphasis; `None` when nothing is left.
pub(crate) fn title_in_heading(text: &str) -> Option<&str> {
    let text = text.trim().trim_matches(|c| c == '*' || c == '_').trim();
    let rest = match text.get(..6) {
        Some(word) if word.eq_ignore_ascii_case("lesson") => &text[6..],
        _ => text,
    };
    let title = if rest.len() < text.len() && !rest.starts_with(char::is_alphanumeric) {
        let rest = rest.trim_start();
        let number_end = rest
            .find(|c: char| c.is_whitespace() || c == ':')
            .unwrap_or(rest.len());
        let rest = if rest[..number_end].contains(|c: char| c.is_ascii_digit()) {
            &rest[number_end..]
        } else {
            rest
        };
        rest.trim_start_matches(|c: char| {
            c.is_whitespace() || matches!(c, ':' | '-' | '\u{2013}' | '\u{2014}' | '.' | '|')
        })
    } else {
        text
    };
    let title = title.trim();
    (!title.is_empty()).then_some(title)
}

/// Removes a byte order mark (U+FEFF) at the start of the text and of every line.
pub(crate) fn bom(text: &str) -> Option<String> {
    const BOM: char = '\u{feff}';
    (text.starts_with(BOM) || text.contains("\n\u{feff}")).then(|| {
        text.split_inclusive('\n')
            .map(|line| line.trim_start_matches(BOM))
            .collect()
    })
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
        // Offers after the wrapper stay, for the trailing-offer rule.
        check(
            Rule::OuterFence,
            "```markdown\n# A\n```\nLet me know!\n",
            Some("# A\nLet me know!\n"),
        );
        check(
            Rule::OuterFence,
            "```md\n# A\n```py\nx\n```\nText.\n```\n\nI hope this helps!\n",
            Some("# A\n```py\nx\n```\nText.\n\nI hope this helps!\n"),
        );
        // Text after the fence that is not an offer: not a wrapper.
        check(
            Rule::OuterFence,
            "```markdown\n# A\n```\nMore of the lesson.\n",
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
    }

    /// Issue 12: without the outline, the heading takes the answer's own title, or none.
    #[test]
    fn heading_without_a_title() {
        let check = |input: &str, expected: Option<&str>| {
            let got = Rule::Heading.apply(input, code(), None);
            assert_eq!(got.as_deref(), expected, "{input:?}");
        };
        check("# Lesson M0-L001: Intro\nText.\n", None);
        check("# Lesson M0-L001\nText.\n", None);
        check("Text.\n", Some("# Lesson M0-L001\n\nText.\n"));
        check(
            "# Lesson 1 - Intro to data\nText.\n",
            Some("# Lesson M0-L001: Intro to data\nText.\n"),
        );
        check(
            "# **Lesson M9-L009: Wrong code**\nText.\n",
            Some("# Lesson M0-L001: Wrong code\nText.\n"),
        );
        check(
            "Data basics\n===========\nText.\n",
            Some("# Lesson M0-L001: Data basics\nText.\n"),
        );
        check("# Lesson 7 #\nText.\n", Some("# Lesson M0-L001\nText.\n"));
        check(
            "## Section 1: A\nText.\n",
            Some("# Lesson M0-L001\n\n## Section 1: A\nText.\n"),
        );
    }

    #[test]
    fn titles_in_headings() {
        let cases = [
            ("Lesson M0-L001: Intro", Some("Intro")),
            ("Lesson 1 - Intro to data", Some("Intro to data")),
            ("Lesson 2.3 \u{2014} Keys", Some("Keys")),
            ("Lesson: Keys", Some("Keys")),
            ("**Lesson M0-L001: Keys**", Some("Keys")),
            ("Lessons learned", Some("Lessons learned")),
            ("Lesson plan for week 1", Some("plan for week 1")),
            ("Data quality", Some("Data quality")),
            ("Lesson M0-L001", None),
            ("Lesson", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(super::title_in_heading(text), expected, "{text:?}");
        }
        assert_eq!(super::atx_text("## Intro ##"), "Intro");
        assert_eq!(super::atx_text("# C#"), "C#");
    }

    #[test]
    fn bom() {
        check(
            Rule::Bom,
            "\u{feff}# Lesson\nText.\n",
            Some("# Lesson\nText.\n"),
        );
        check(
            Rule::Bom,
            "Sure!\n\u{feff}# Lesson\n",
            Some("Sure!\n# Lesson\n"),
        );
        check(Rule::Bom, "# Lesson\nA\u{feff}B\n", None);
    }

    #[test]
    fn chat_opening() {
        check(
            Rule::ChatOpening,
            "Sure! Here is the lesson:\n\n```markdown\n# Lesson\n```\n",
            Some("```markdown\n# Lesson\n```\n"),
        );
        check(
            Rule::ChatOpening,
            "Certainly.\n\nData is recorded facts.\n",
            Some("Data is recorded facts.\n"),
        );
        check(
            Rule::ChatOpening,
            "Here\u{2019}s the lesson you asked for:\n\n---\n\nData is facts.\n",
            Some("Data is facts.\n"),
        );
        check(
            Rule::ChatOpening,
            "Here is the lesson:\n## Section 1: A\n",
            Some("## Section 1: A\n"),
        );
        check(
            Rule::ChatOpening,
            "Here is the lesson:\n\n```md\n\n# Lesson\n```\n",
            Some("```md\n\n# Lesson\n```\n"),
        );
        // A lead-in followed by the lesson's own text or example is the lesson.
        check(
            Rule::ChatOpening,
            "Here is why data matters.\n\nIt is recorded facts.\n",
            None,
        );
        check(
            Rule::ChatOpening,
            "Here is a quick example:\n\n```python\nx = 1\n```\n",
            None,
        );
        check(
            Rule::ChatOpening,
            "Here is a Markdown table:\n\n```markdown\n| a |\n```\n",
            None,
        );
        // Nothing after it, a long paragraph, or another first block: kept.
        check(Rule::ChatOpening, "Sure!\n", None);
        let long = format!("Sure, {}\n\n# A\n", "word ".repeat(80));
        check(Rule::ChatOpening, &long, None);
        check(Rule::ChatOpening, "# Sure\n\nText.\n", None);
    }

    #[test]
    fn trailing_offer() {
        check(
            Rule::TrailingOffer,
            "# Lesson\n\nText.\n\nLet me know if you want any changes!\n",
            Some("# Lesson\n\nText.\n\n"),
        );
        check(
            Rule::TrailingOffer,
            "# Lesson\n\n```python\nx = 1\n```\n\n---\n\nI hope this helps!\n\n*Would you like me to add a quiz?*\n",
            Some("# Lesson\n\n```python\nx = 1\n```\n\n"),
        );
        // An offer inside the lesson, or a lesson ending with code, stays.
        check(
            Rule::TrailingOffer,
            "# Lesson\n\nLet me know is a phrase.\n\n## Section 2\n\nText.\n",
            None,
        );
        check(
            Rule::TrailingOffer,
            "# Lesson\n\nText.\n\n```python\nprint('Let me know')\n```\n",
            None,
        );
        check(
            Rule::TrailingOffer,
            "# Lesson\n\nFeel free to experiment with the thresholds above.\n",
            None,
        );
        // Long or many offers are content; an answer of offers only is left to the rest.
        let long = format!("# Lesson\n\nLet me know {}\n", "word ".repeat(80));
        check(Rule::TrailingOffer, &long, None);
        check(
            Rule::TrailingOffer,
            "# L\n\nLet me know.\n\nLet me know.\n\nLet me know.\n\nLet me know.\n",
            None,
        );
        check(Rule::TrailingOffer, "Let me know!\n", None);
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
