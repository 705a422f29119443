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
        &[Rule::LessonStart],
    );
}

#[test]
fn preamble_before_another_heading() {
    check(
        "preamble.jsonl",
        "M0-L002.md",
        "# Lesson M0-L002: Kinds of data\n\n## Why kinds matter\n\nStructured and unstructured.\n",
        &[Rule::Preamble, Rule::Heading],
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

#[test]
fn without_a_curriculum_no_heading_is_invented() {
    let (dir, summary) = run_with(Some("preamble.jsonl"), None, |config| {
        config.curriculum = None;
    });
    assert_eq!(summary.written, 2);
    assert_eq!(
        lesson(&dir, "M0-L002.md"),
        "## Why kinds matter\n\nStructured and unstructured.\n"
    );
}
