//! The cleanup pipeline: named rules that turn a model's answer into a lesson file.
//!
//! Rules find structure with comrak (see `markdown.rs`) and cut or insert whole
//! lines, so the text they keep is byte-identical and a code block is never changed:
//! it is kept whole or, inside a removed section, removed whole.

use std::fmt;

use curriculum_parser::LessonCode;
use serde::Serialize;

use crate::chat::{self, OFFERS};
use crate::markdown::{self, Block};
use crate::rules::{
    CONTEXT_SECTION, Doc, GOVERNANCE_NOTES, PROMPT_LINE, SCHEMA_SECTION, atx_text, bom,
    final_newline, final_newline_owned, line_ends, title_in_heading,
};

/// One cleanup step. [`Rule::ALL`] lists them in the order [`clean`] runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Turn `\r\n` and lone `\r` line ends into `\n`.
    LineEnds,
    /// Remove a byte order mark (U+FEFF) at the start of the answer or of a line, so
    /// `\u{feff}# Lesson ...` is a heading again.
    Bom,
    /// Drop a short chat opening that is the answer's first paragraph: "Sure! / Certainly! /
    /// Of course! ..." always, "Here is / Here's / Below is ..." when a heading, a thematic
    /// break or a fence wrapping the lesson follows.
    ChatOpening,
    /// Strip a code fence (```` ```markdown ````, ```` ```md ```` or bare) wrapping the
    /// whole answer, also when inner code blocks closed it early and when chat offers
    /// follow it.
    OuterFence,
    /// Drop up to three short chat offers after the last real content ("Let me know if you
    /// want any changes!", "I hope this helps!", "Feel free to ask ...", "Would you like me
    /// to ..."), with the thematic breaks between them; offers inside the lesson stay.
    TrailingOffer,
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
    /// Make the first line `# Lesson M0-L001: <title>`, the code from the `custom_id`, the
    /// title from the outline when known, else from the answer's own level-1 heading, else
    /// none (`# Lesson M0-L001`): replace a first level-1 heading, or insert the heading.
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
    pub const ALL: [Rule; 13] = [
        Rule::LineEnds,
        Rule::Bom,
        Rule::ChatOpening,
        Rule::OuterFence,
        Rule::TrailingOffer,
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
            Rule::Bom => "bom",
            Rule::ChatOpening => "chat-opening",
            Rule::OuterFence => "outer-fence",
            Rule::TrailingOffer => "trailing-offer",
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
        !matches!(self, Rule::LineEnds | Rule::Bom | Rule::FinalNewline)
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
            Rule::Bom => bom(text),
            Rule::ChatOpening => doc.chat_opening(),
            Rule::OuterFence => doc.outer_fence(),
            Rule::TrailingOffer => doc.trailing_offer(),
            Rule::PromptLine => doc.remove_headings(PROMPT_LINE),
            Rule::ContextSection => doc.remove_sections(CONTEXT_SECTION),
            Rule::SchemaSection => doc.remove_sections(SCHEMA_SECTION),
            Rule::GovernanceNotes => doc.governance_notes(),
            Rule::LessonStart => doc.lesson_start(),
            Rule::Preamble => doc.preamble(),
            Rule::Heading => doc.heading(&canonical_heading(code, title.or(doc.own_title()))),
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
/// `title` is the lesson title from the curriculum; without it the heading takes the
/// title of the answer's own first heading, or none.
///
/// ```
/// use lesson_writer::{Rule, clean};
/// let code = "M0-L001".parse().unwrap();
/// let cleaned = clean("Sure! Here it is:\r\n\r\n## Section 1: Why\r\nBecause.", code, Some("Intro"));
/// assert_eq!(cleaned.text, "# Lesson M0-L001: Intro\n\n## Section 1: Why\nBecause.\n");
/// assert_eq!(cleaned.rules_applied, [Rule::LineEnds, Rule::ChatOpening, Rule::Heading, Rule::FinalNewline]);
/// ```
pub fn clean(text: &str, code: LessonCode, title: Option<&str>) -> Cleaned {
    clean_owned(text.to_owned(), code, title)
}

/// [`clean`] on an owned text, which the common case returns without a copy.
pub(crate) fn clean_owned(text: String, code: LessonCode, title: Option<&str>) -> Cleaned {
    let mut rules_applied = Vec::new();
    let mut text = text;
    for (rule, apply) in [
        (Rule::LineEnds, line_ends as fn(&str) -> Option<String>),
        (Rule::Bom, bom),
    ] {
        if let Some(changed) = apply(&text) {
            rules_applied.push(rule);
            text = changed;
        }
    }
    // The common case, an answer that follows the prompt, needs no parse at all:
    // only the rules that work on raw text can change it.
    if !is_clean(&text, code, title) {
        let structural = &Rule::ALL[RAW_RULES..Rule::ALL.len() - 1];
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

/// The rules at the start of [`Rule::ALL`] that work on raw text, before the fast path.
const RAW_RULES: usize = 2;

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
/// occurs anywhere (ASCII case ignored; offers only in [`chat::offer_region`], the end
/// where a trailing offer can lie), those rules cannot fire; a first line that is the
/// lesson heading rules out the opening, fence, preamble, start and heading rules.
fn is_clean(text: &str, code: LessonCode, title: Option<&str>) -> bool {
    let first_line = text.split('\n').next().unwrap_or_default();
    // The title the heading rule would use; an ATX line is a heading block of its own.
    let title = title.or_else(|| {
        first_line
            .starts_with("# ")
            .then(|| title_in_heading(atx_text(first_line)))
            .flatten()
    });
    if first_line != canonical_heading(code, title) {
        return false;
    }
    let lower = chat::normalize(text);
    let offers = chat::offer_region(&lower);
    ![
        PROMPT_LINE,
        CONTEXT_SECTION,
        SCHEMA_SECTION,
        GOVERNANCE_NOTES,
    ]
    .iter()
    .any(|phrase| lower.contains(phrase))
        && !OFFERS.iter().any(|phrase| offers.contains(phrase))
}

/// The heading every lesson starts with: `# Lesson M0-L001: <title>`, or `# Lesson M0-L001`
/// without a title.
pub(crate) fn canonical_heading(code: LessonCode, title: Option<&str>) -> String {
    let title: String = title
        .unwrap_or_default()
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if title.is_empty() {
        format!("# Lesson {code}")
    } else {
        format!("# Lesson {code}: {title}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> LessonCode {
        "M0-L001".parse().unwrap()
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
        assert_eq!(
            cleaned.rules_applied,
            [
                Rule::ChatOpening,
                Rule::OuterFence,
                Rule::PromptLine,
                Rule::Heading
            ]
        );
        assert_eq!(cleaned.text, "# Lesson M0-L001: Intro\n");

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

    /// Issue 12: chat wrappers come off whole, whatever their combination.
    #[test]
    fn chat_wrappers_come_off() {
        let lesson = "# Lesson M0-L001: Intro\n\nText.\n\n```python\nx = 1\n```\n";
        let wrapped = [
            "Sure! Here is the lesson…\n\n```markdown\n# Lesson M0-L001: Intro\n\nText.\n\n```python\nx = 1\n```\n```\n\nLet me know if you want any changes!",
            "Certainly! Here’s the lesson:\r\n\r\n```md\r\n\u{feff}# Lesson M0-L001: Intro\r\n\r\nText.\r\n\r\n```python\r\nx = 1\r\n```\r\n\r\nI hope this helps!\r\n```\r\n",
            "Of course.\n\n---\n\n# Lesson M0-L001: Intro\n\nText.\n\n```python\nx = 1\n```\n\n---\n\nI hope this helps!\n\nWould you like me to add exercises?\n",
            "\u{feff}# Lesson M0-L001: Intro\n\nText.\n\n```python\nx = 1\n```\n",
            "Here is the lesson:\n\n````markdown\n# Lesson 1 - Intro\n\nText.\n\n```python\nx = 1\n```\n````\n\nFeel free to ask for changes.\n",
        ];
        for input in wrapped {
            assert_eq!(clean(input, code(), None).text, lesson, "{input:?}");
            assert_eq!(
                clean(input, code(), Some("Intro")).text,
                lesson,
                "{input:?}"
            );
        }
    }

    #[test]
    fn fast_path_agrees_with_the_rules() {
        let inputs = [
            "# Lesson M0-L001: Intro\n\nText.\n",
            "# Lesson M0-L001: Intro\n\nText.\n\n",
            "# Lesson M0-L001: Intro\n\n## Section 1: A\n---\nQuality and governance notes\n",
            "# Lesson M0-L001: Other\nText.\n",
            "# Lesson 7\n## Section 1: x\n",
            "# Lesson M0-L001: Intro\n\nText.\n\nLet me know if you want changes!\n",
            "\u{feff}# Lesson M0-L001: Intro\n\nText.\n",
            "# Lesson M0-L001\n\nText.\n",
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

    #[test]
    fn fast_path_looks_for_offers_at_the_end_only() {
        let body = "Words of the lesson. ".repeat(100);
        let inputs = [
            format!("# Lesson M0-L001: Intro\n\nLet me know early.\n\n{body}\n"),
            format!("# Lesson M0-L001: Intro\n\n{body}\n\n---\n\nLet me know!\n\n***\n"),
        ];
        for input in &inputs {
            assert_eq!(
                clean(input, code(), Some("Intro")),
                clean_with_every_rule(input, code(), Some("Intro")),
            );
        }
        assert!(is_clean(&inputs[0], code(), Some("Intro")));
        assert!(!is_clean(&inputs[1], code(), Some("Intro")));
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
                    proptest::strategy::Just("\u{feff}# Lesson M0-L001: Intro\n"),
                    proptest::strategy::Just("# Lesson 1 - Intro\n"),
                    proptest::strategy::Just("Sure! Here it is:\n"),
                    proptest::strategy::Just("Here\u{2019}s the lesson:\n"),
                    proptest::strategy::Just("Let me know if you want changes!\n"),
                    proptest::strategy::Just("I hope this helps.\n"),
                ],
                0..10,
            ),
            titled in proptest::bool::ANY,
        ) {
            let text = pieces.concat();
            let title = titled.then_some("Intro");
            let full = clean_with_every_rule(&text, code(), title);
            let normalized = super::line_ends(&text).unwrap_or_else(|| text.clone());
            let normalized = super::bom(&normalized).unwrap_or(normalized);
            if is_clean(&normalized, code(), title) {
                let structural: Vec<Rule> = full.rules_applied.iter().copied()
                    .filter(|rule| !matches!(rule, Rule::LineEnds | Rule::Bom | Rule::FinalNewline))
                    .collect();
                proptest::prop_assert!(structural.is_empty(), "{:?}", full.rules_applied);
            }
            proptest::prop_assert_eq!(clean(&text, code(), title), full);
        }
    }
}
