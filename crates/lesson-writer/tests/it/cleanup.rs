//! Cleanup rules seen through whole runs: each fixture's answer and its lesson file.

use lesson_writer::Rule;

use crate::support::{lesson, run, run_with};

/// Checks the lesson file of a one-line fixture and the rules that fired.
fn check(fixture: &str, name: &str, expected: &str, rules: &[Rule]) {
    let (dir, summary) = run(Some(fixture), None);
    assert!(summary.failures.is_empty(), "{:#?}", summary.failures);
    assert_eq!(lesson(&dir, name), expected, "{fixture} {name}");
    for rule in rules {
        assert!(
            summary.rules_applied.contains_key(rule),
            "{fixture}: {rule} not in {:?}",
            summary.rules_applied
        );
    }
}

#[test]
fn fenced_answer() {
    check(
        "fenced.jsonl",
        "M0-L001.md",
        "# Lesson M0-L001: What is data?\n\nData is recorded facts.\n\n```python\nfacts = []\n```\n\nThat is all.\n",
        &[Rule::OuterFence],
    );
}

#[test]
fn preamble_before_the_lesson_heading() {
    check(
        "preamble.jsonl",
        "M0-L001.md",
        "# Lesson M0-L001: What is data?\n\nData is recorded facts.\n",
        &[Rule::ChatOpening],
    );
}

#[test]
fn preamble_before_another_heading() {
    check(
        "preamble.jsonl",
        "M0-L002.md",
        "# Lesson M0-L002: Kinds of data\n\n## Why kinds matter\n\nStructured and unstructured.\n",
        &[Rule::ChatOpening, Rule::Heading],
    );
}

#[test]
fn prompt_line() {
    check(
        "artifacts.jsonl",
        "M0-L001.md",
        "# Lesson M0-L001: What is data?\n\nData is recorded facts.\n",
        &[Rule::PromptLine],
    );
}

#[test]
fn context_section() {
    check(
        "artifacts.jsonl",
        "M0-L002.md",
        "# Lesson M0-L002: Kinds of data\n\nStructured and unstructured.\n",
        &[Rule::ContextSection],
    );
}

#[test]
fn schema_section() {
    check(
        "artifacts.jsonl",
        "M0-L003.md",
        "# Lesson M0-L003: Data quality\n\nAccuracy first.\n",
        &[Rule::SchemaSection, Rule::FinalNewline],
    );
}

#[test]
fn governance_notes() {
    check(
        "artifacts.jsonl",
        "M0-L004.md",
        "# Lesson M0-L004: Stewardship\n\nStewards own data.\n",
        &[Rule::GovernanceNotes, Rule::FinalNewline],
    );
}

#[test]
fn crlf_line_ends() {
    check(
        "crlf.jsonl",
        "M0-L001.md",
        "# Lesson M0-L001: What is data?\n\nData is recorded facts.\n",
        &[Rule::LineEnds, Rule::FinalNewline],
    );
}

#[test]
fn code_blocks_are_untouched() {
    let (dir, summary) = run(Some("code-blocks.jsonl"), None);
    let expected = "# Lesson M0-L001: What is data?\n\n```markdown\n# LLM Prompt: an example inside code\n## **Context & Parameters**\n\n---\n\nQuality and governance notes\n```\n\n    # indented code stays\n    ---\n\nEnd.\n";
    assert_eq!(lesson(&dir, "M0-L001.md"), expected);
    assert!(
        summary.rules_applied.is_empty(),
        "{:?}",
        summary.rules_applied
    );
}

/// Issue 12: without the outline (no `--content`), the heading is still ensured: the
/// answer's own title, else the code alone.
#[test]
fn without_a_curriculum_the_heading_has_the_code() {
    let (dir, summary) = run_with(Some("preamble.jsonl"), None, |config| {
        config.curriculum = None;
    });
    assert_eq!(summary.written, 2);
    assert_eq!(
        lesson(&dir, "M0-L001.md"),
        "# Lesson M0-L001: What is data?\n\nData is recorded facts.\n"
    );
    assert_eq!(
        lesson(&dir, "M0-L002.md"),
        "# Lesson M0-L002\n\n## Why kinds matter\n\nStructured and unstructured.\n"
    );
}

/// Issue 12: "Sure! Here is the lesson..." + an outer ```markdown fence + "Let me know if
/// you want any changes!" comes out as the bare lesson.
#[test]
fn chat_wrapper() {
    let (dir, summary) = run(Some("chat-wrapper.jsonl"), None);
    assert_eq!(
        lesson(&dir, "M0-L001.md"),
        "# Lesson M0-L001: What is data?\n\nData is recorded facts.\n\n```python\nfacts = []\n```\n\nThat is all.\n"
    );
    for rule in [Rule::ChatOpening, Rule::OuterFence, Rule::TrailingOffer] {
        assert_eq!(summary.rules_applied.get(&rule), Some(&1), "{rule}");
    }
}

/// Issue 12: a byte order mark in front of `# Lesson ...` inside an answer is removed.
#[test]
fn byte_order_mark_in_an_answer() {
    let (dir, summary) = run(Some("chat-wrapper.jsonl"), None);
    assert_eq!(
        lesson(&dir, "M0-L002.md"),
        "# Lesson M0-L002: Kinds of data\n\nStructured and unstructured.\n"
    );
    assert_eq!(summary.rules_applied.get(&Rule::Bom), Some(&1));
}

/// "Let me know" inside a lesson, and a lesson ending with a code block, are content.
#[test]
fn offers_inside_a_lesson_stay() {
    let (dir, _) = run(Some("chat-wrapper.jsonl"), None);
    assert_eq!(
        lesson(&dir, "M0-L003.md"),
        "# Lesson M0-L003: Data quality\n\nLet me know is what a reader says when a report is unclear; write so they need not.\n\n## Section 2: Checks\n\nCount the rows.\n\n```sql\nSELECT count(*) FROM facts;\n```\n"
    );
}

/// Issue 12: a byte order mark at the start of a results file does not lose line 1.
#[test]
fn byte_order_mark_at_the_start_of_a_results_file() {
    let (dir, summary) = run(Some("bom.jsonl"), None);
    assert!(summary.malformed.is_empty(), "{:?}", summary.malformed);
    assert_eq!(summary.written, 2);
    assert_eq!(
        lesson(&dir, "M0-L001.md"),
        "# Lesson M0-L001: What is data?\n\nData is recorded facts.\n"
    );
}
