//! The cleanup pipeline: named rules that turn a model's answer into a lesson file.
//!
//! Rules find structure with comrak (see `markdown.rs`) and cut or insert whole
//! lines, so the text they keep is byte-identical and a code block is never changed:
//! it is kept whole or, inside a removed section, removed whole.

use std::fmt;

use curriculum_parser::LessonCode;
use serde::Serialize;

use crate::markdown::{self, Block, BlockKind};

/// One cleanup step. [`Rule::ALL`] lists them in the order [`clean`] runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Turn `\r\n` and lone `\r` line ends into `\n`.
    LineEnds,
    /// Strip a code fence (```` ```markdown ````, ```` ```md ```` or bare) wrapping the
    /// whole answer, also when inner code blocks closed it early.
    OuterFence,
    /// Remove a `# LLM Prompt: ...` heading line.
    PromptLine,
    /// Remove a `## **Context & Parameters**` section (up to the next heading of the
    /// same or a higher level).
    ContextSection,
    /// Remove a `## **Content Output Schema ...` section.
    SchemaSection,
    /// Remove a trailing `---` followed by `Quality and governance notes...`, to the end.
    GovernanceNotes,
    /// When the answer does not start with it, cut to the first `# Lesson ...` heading
    /// or, failing that, the first `Section 1:` heading.
    LessonStart,
    /// Drop a short chat preamble ("Sure! Here is the lesson:") before the first heading.
    Preamble,
    /// Make the first line `# Lesson M0-L001: <title>` when the title is known:
    /// replace a first level-1 heading, or insert the heading.
    Heading,
    /// Drop leading blank lines and trailing whitespace; end with exactly one `\n`.
    FinalNewline,
}

/// The result of [`clean`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    /// The lesson text.
    pub text: String,
    /// The rules that changed the text, in the order they ran.
    pub rules_applied: Vec<Rule>,
}

impl Rule {
    /// Every rule, in the order [`clean`] applies them.
    pub const ALL: [Rule; 10] = [
        Rule::LineEnds,
        Rule::OuterFence,
        Rule::PromptLine,
        Rule::ContextSection,
        Rule::SchemaSection,
        Rule::GovernanceNotes,
        Rule::LessonStart,
        Rule::Preamble,
        Rule::Heading,
        Rule::FinalNewline,
    ];

    /// The rule's kebab-case name (`outer-fence`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::LineEnds => "line-ends",
            Rule::OuterFence => "outer-fence",
            Rule::PromptLine => "prompt-line",
            Rule::ContextSection => "context-section",
            Rule::SchemaSection => "schema-section",
            Rule::GovernanceNotes => "governance-notes",
            Rule::LessonStart => "lesson-start",
            Rule::Preamble => "preamble",
            Rule::Heading => "heading",
            Rule::FinalNewline => "final-newline",
        }
    }

    /// Applies this rule alone; `None` when it changes nothing.
    ///
    /// Rules after [`Rule::LineEnds`] expect `\n` line ends.
    pub fn apply(self, text: &str, code: LessonCode, title: Option<&str>) -> Option<String> {
        let blocks = self.needs_blocks().then(|| markdown::blocks(text));
        self.run(text, blocks.as_deref().unwrap_or_default(), code, title)
    }

    fn needs_blocks(self) -> bool {
        !matches!(self, Rule::LineEnds | Rule::FinalNewline)
    }

    fn run(
        self,
        text: &str,
        blocks: &[Block],
        code: LessonCode,
        title: Option<&str>,
    ) -> Option<String> {
        let doc = Doc::new(text, blocks);
        match self {
            Rule::LineEnds => line_ends(text),
            Rule::OuterFence => doc.outer_fence(),
            Rule::PromptLine => doc.remove_headings(PROMPT_LINE),
            Rule::ContextSection => doc.remove_sections(CONTEXT_SECTION),
            Rule::SchemaSection => doc.remove_sections(SCHEMA_SECTION),
            Rule::GovernanceNotes => doc.governance_notes(),
            Rule::LessonStart => doc.lesson_start(),
            Rule::Preamble => doc.preamble(),
            Rule::Heading => title.and_then(|title| doc.heading(&canonical_heading(code, title))),
            Rule::FinalNewline => final_newline(text),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs every rule of [`Rule::ALL`] in order on a model's answer.
///
/// `title` is the lesson title from the curriculum; without it no heading is
/// inserted or replaced.
///
/// ```
/// use lesson_writer::{Rule, clean};
/// let code = "M0-L001".parse().unwrap();
/// let cleaned = clean("Sure! Here it is:\r\n\r\n## Section 1: Why\r\nBecause.", code, Some("Intro"));
/// assert_eq!(cleaned.text, "# Lesson M0-L001: Intro\n\n## Section 1: Why\nBecause.\n");
/// assert_eq!(cleaned.rules_applied, [Rule::LineEnds, Rule::LessonStart, Rule::Heading, Rule::FinalNewline]);
/// ```
pub fn clean(text: &str, code: LessonCode, title: Option<&str>) -> Cleaned {
    clean_owned(text.to_owned(), code, title)
}

/// [`clean`] on an owned text, which the common case returns without a copy.
pub(crate) fn clean_owned(text: String, code: LessonCode, title: Option<&str>) -> Cleaned {
    let mut rules_applied = Vec::new();
    let mut text = match line_ends(&text) {
        Some(normalized) => {
            rules_applied.push(Rule::LineEnds);
            normalized
        }
        None => text,
    };
    // The common case, an answer that follows the prompt, needs no parse at all:
    // only the two rules that work on raw text can change it.
    if !is_clean(&text, code, title) {
        let structural = &Rule::ALL[1..Rule::ALL.len() - 1];
        let mut blocks: Option<Vec<Block>> = None;
        for &rule in structural {
            // One parse serves every rule until one of them changes the text.
            let parsed = blocks.get_or_insert_with(|| markdown::blocks(&text));
            if let Some(changed) = rule.run(&text, parsed, code, title) {
                text = changed;
                blocks = None;
                rules_applied.push(rule);
                // Once the text passes the check, the remaining rules are no-ops too.
                if is_clean(&text, code, title) {
                    break;
                }
            }
        }
    }
    let (text, changed) = final_newline_owned(text);
    if changed {
        rules_applied.push(Rule::FinalNewline);
    }
    Cleaned {
        text,
        rules_applied,
    }
}

/// Every rule of [`Rule::ALL`] in order, without the fast path of [`is_clean`].
#[cfg(test)]
fn clean_with_every_rule(text: &str, code: LessonCode, title: Option<&str>) -> Cleaned {
    let mut text = text.to_owned();
    let mut rules_applied = Vec::new();
    for rule in Rule::ALL {
        if let Some(changed) = rule.apply(&text, code, title) {
            text = changed;
            rules_applied.push(rule);
        }
    }
    Cleaned {
        text,
        rules_applied,
    }
}

/// Whether no structural rule (all but the first and last) would change `text`
/// (which has `\n` line ends), decided without parsing, with a few substring searches.
///
/// Every rule that cuts matches a phrase on a raw line, so when none of the phrases
/// occurs anywhere (ASCII case ignored), those rules cannot fire; a first line that is
/// the lesson heading rules out the fence, preamble, start and heading rules.
fn is_clean(text: &str, code: LessonCode, title: Option<&str>) -> bool {
    let first_line = text.split('\n').next().unwrap_or_default();
    let heading_ok = match title {
        Some(title) => first_line == canonical_heading(code, title),
        None => first_line.starts_with("# Lesson "),
    };
    if !heading_ok {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    ![
        PROMPT_LINE,
        CONTEXT_SECTION,
        SCHEMA_SECTION,
        GOVERNANCE_NOTES,
    ]
    .iter()
    .any(|phrase| lower.contains(phrase))
}

/// The heading every lesson starts with: `# Lesson M0-L001: <title>`.
pub(crate) fn canonical_heading(code: LessonCode, title: &str) -> String {
    let title: String = title
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("# Lesson {code}: {title}")
}

// Phrases matched at the start of a raw heading (or paragraph) line, lower case, after
// leading `#`, `*`, `_` and whitespace.
const PROMPT_LINE: &str = "llm prompt:";
const CONTEXT_SECTION: &str = "context & parameters";
const SCHEMA_SECTION: &str = "content output schema";
const GOVERNANCE_NOTES: &str = "quality and governance notes";
const SECTION_ONE: &str = "section 1:";

/// Preambles longer than this are content, not chat, and are kept.
const MAX_PREAMBLE_BYTES: usize = 600;
const MAX_PREAMBLE_PARAGRAPHS: usize = 3;

fn line_ends(text: &str) -> Option<String> {
    text.contains('\r')
        .then(|| text.replace("\r\n", "\n").replace('\r', "\n"))
}

fn final_newline(text: &str) -> Option<String> {
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
fn final_newline_owned(mut text: String) -> (String, bool) {
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
struct Doc<'a> {
    /// Lines with their `\n`; line `n` (1-based) is `lines[n - 1]`.
    lines: Vec<&'a str>,
    blocks: &'a [Block],
}

impl<'a> Doc<'a> {
    fn new(text: &'a str, blocks: &'a [Block]) -> Self {
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

    fn outer_fence(&self) -> Option<String> {
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

    fn remove_headings(&self, phrase: &str) -> Option<String> {
        let ranges: Vec<(usize, usize)> = self
            .blocks
            .iter()
            .filter(|block| matches!(block.kind, BlockKind::Heading(_)))
            .filter(|block| self.phrase(block).starts_with(phrase))
            .map(|block| (block.start, block.end))
            .collect();
        (!ranges.is_empty()).then(|| self.without(&ranges))
    }

    fn remove_sections(&self, phrase: &str) -> Option<String> {
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

    fn governance_notes(&self) -> Option<String> {
        let start = self.blocks.windows(2).find_map(|pair| {
            (pair[0].kind == BlockKind::ThematicBreak
                && self.phrase(&pair[1]).starts_with(GOVERNANCE_NOTES))
            .then_some(pair[0].start)
        })?;
        Some(self.without(&[(start, self.last_line())]))
    }

    fn lesson_start(&self) -> Option<String> {
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

    fn preamble(&self) -> Option<String> {
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

    fn heading(&self, canonical: &str) -> Option<String> {
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
    use super::*;

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

    #[test]
    fn code_blocks_are_never_changed() {
        let code_block = "```markdown\n# LLM Prompt: example\n## **Context & Parameters**\n\n---\n\nQuality and governance notes\nSure!\r\n```\n";
        let input = format!(
            "# Lesson M0-L001: Intro\n\n{code_block}\n## Section 1: A\n\n~~~\n# Lesson 9\n~~~\n"
        );
        let normalized = code_block.replace("\r\n", "\n");
        let cleaned = clean(&input, code(), Some("Intro"));
        assert!(cleaned.text.contains(&normalized), "{}", cleaned.text);
        assert!(cleaned.text.contains("~~~\n# Lesson 9\n~~~\n"));
        assert_eq!(cleaned.rules_applied, [Rule::LineEnds]);
    }

    #[test]
    fn clean_runs_rules_in_order() {
        let input = "Sure! Here is the lesson:\n\n```markdown\n# LLM Prompt: x\n```\n";
        let cleaned = clean(input, code(), Some("Intro"));
        assert_eq!(cleaned.rules_applied, [Rule::Heading]);
        assert!(cleaned.text.starts_with("# Lesson M0-L001: Intro\n\nSure!"));

        let input = "```markdown\n# LLM Prompt: x\n## **Context & Parameters**\n- a\n\n# Lesson M0-L001: Intro\n\nBody.\n\n---\n\nQuality and governance notes: fine.\n```";
        let cleaned = clean(input, code(), Some("Intro"));
        assert_eq!(cleaned.text, "# Lesson M0-L001: Intro\n\nBody.\n");
        assert_eq!(
            cleaned.rules_applied,
            [
                Rule::OuterFence,
                Rule::PromptLine,
                Rule::ContextSection,
                Rule::GovernanceNotes,
                Rule::FinalNewline
            ]
        );
    }

    #[test]
    fn fast_path_agrees_with_the_rules() {
        let inputs = [
            "# Lesson M0-L001: Intro\n\nText.\n",
            "# Lesson M0-L001: Intro\n\nText.\n\n",
            "# Lesson M0-L001: Intro\n\n## Section 1: A\n---\nQuality and governance notes\n",
            "# Lesson M0-L001: Other\nText.\n",
            "# Lesson 7\n## Section 1: x\n",
        ];
        for input in inputs {
            for title in [Some("Intro"), None] {
                assert_eq!(
                    clean(input, code(), title),
                    clean_with_every_rule(input, code(), title),
                    "{input:?} {title:?}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_path_never_skips_a_rule(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("# Lesson M0-L001: Intro\n"),
                    proptest::strategy::Just("# Lesson ###\n"),
                    proptest::strategy::Just("```markdown\n"),
                    proptest::strategy::Just("```\n"),
                    proptest::strategy::Just("---\n"),
                    proptest::strategy::Just("\n"),
                    proptest::strategy::Just("  \n"),
                    proptest::strategy::Just("Text.\n"),
                    proptest::strategy::Just("# LLM Prompt: x\n"),
                    proptest::strategy::Just("## **Context & Parameters**\n"),
                    proptest::strategy::Just("## Content output schema\n"),
                    proptest::strategy::Just("QUALITY AND GOVERNANCE NOTES\n"),
                    proptest::strategy::Just("## Section 1: A\n"),
                    proptest::strategy::Just("Lesson\n=====\n"),
                    proptest::strategy::Just("    code\n"),
                    proptest::strategy::Just("x\r"),
                ],
                0..10,
            ),
            titled in proptest::bool::ANY,
        ) {
            let text = pieces.concat();
            let title = titled.then_some("Intro");
            let full = clean_with_every_rule(&text, code(), title);
            let normalized = super::line_ends(&text).unwrap_or_else(|| text.clone());
            if is_clean(&normalized, code(), title) {
                let structural: Vec<Rule> = full.rules_applied.iter().copied()
                    .filter(|rule| !matches!(rule, Rule::LineEnds | Rule::FinalNewline))
                    .collect();
                proptest::prop_assert!(structural.is_empty(), "{:?}", full.rules_applied);
            }
            proptest::prop_assert_eq!(clean(&text, code(), title), full);
        }
    }
}
