//! The quality gate: answers that are no lesson are kept in `rejected/` as `below_spec`.

use std::path::Path;

use batch_request::{QualitySettings, Template};
use lesson_writer::{
    FailureKind, FileNamePattern, Input, LessonOutcome, ProcessConfig, QualityGate, Summary,
    existing_lessons, process_inputs,
};

/// One output line whose answer is `content`.
fn line(code: &str, content: &str) -> String {
    let content = serde_json::to_string(content).unwrap();
    format!(
        r#"{{"custom_id":"lesson_{code}","response":{{"status_code":200,"body":{{"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":{content},"refusal":null}},"finish_reason":"stop"}}]}}}},"error":null}}"#
    ) + "\n"
}

/// The answer, processed into `<dir>/out` through `gate`.
fn process(dir: &Path, content: &str, gate: QualityGate, accept_below_spec: bool) -> Summary {
    let lines = line("M0-L001", content);
    let mut config = ProcessConfig::new(dir.join("out"));
    config.quality = gate;
    config.accept_below_spec = accept_below_spec;
    process_inputs(vec![Input::new("output.jsonl", lines.as_bytes())], &config).unwrap()
}

/// A lesson with the ten sections of the built-in template, numbered as models number them.
fn full_lesson() -> String {
    let mut text = "# Lesson M0-L001: What is data?\n\n".to_owned();
    for (number, section) in [
        "Learning Objectives",
        "Why This Matters",
        "Core Concepts",
        "How It Works in Practice",
        "Worked Example",
        "Tools, Templates, and Artifacts",
        "Common Pitfalls",
        "Practice Exercise",
        "Knowledge Check",
        "Summary & Next Steps",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "## {}. {section}\n\nThis section explains one part of the topic in plain words, \
             with a short example a data steward meets at work every week.\n\n",
            number + 1
        ));
    }
    text
}

/// A 40-word answer.
const FORTY_WORDS: &str = "Data is a set of recorded facts. Organizations collect it, store it \
    and use it to make decisions. Good data is accurate, complete and timely. Governance decides \
    who owns each data set and who may change it, and exactly when.";

fn defaults_for(template: &Template) -> QualityGate {
    QualityGate::from_settings(&QualitySettings::default(), Some(template.sha256()))
}

fn legacy() -> Template {
    Template::parse(
        "prompt = f\"\"\"\nWrite the lesson.\n\"\"\"\n",
        Path::new("legacy.py"),
    )
    .unwrap()
}

#[test]
fn a_forty_word_answer_is_below_spec_and_kept_in_rejected() {
    assert_eq!(FORTY_WORDS.split_whitespace().count(), 40);
    let dir = tempfile::tempdir().unwrap();
    // Whatever the template: min_words applies to every lesson.
    for gate in [defaults_for(&Template::generic()), defaults_for(&legacy())] {
        let summary = process(dir.path(), FORTY_WORDS, gate, false);
        assert_eq!(summary.written, 0);
        let failure = &summary.failures[0];
        assert_eq!(failure.kind, FailureKind::BelowSpec);
        assert_eq!(failure.kind.as_str(), "below_spec");
        assert_eq!(failure.code, "below_spec");
        assert!(failure.retryable);
        // Forty words, and the lesson heading's when the cleaner adds one.
        assert!(
            failure.reason.contains("40 words, at least 200 expected")
                || failure.reason.contains("42 words, at least 200 expected"),
            "{}",
            failure.reason
        );
        assert_eq!(
            summary.outcomes[&failure.lesson_code],
            LessonOutcome::Failed {
                kind: FailureKind::BelowSpec
            }
        );
        let rejected = dir.path().join("out/rejected/M0-L001.md");
        assert_eq!(failure.rejected_file.as_deref(), Some(rejected.as_path()));
        let kept = std::fs::read_to_string(&rejected).unwrap();
        assert!(kept.starts_with("<!-- below_spec: 4"), "{kept}");
        assert!(kept.contains("Data is a set of recorded facts."), "{kept}");
        assert!(!dir.path().join("out/M0-L001.md").exists());
        // The lesson scanner never takes the rejected answer for a lesson.
        let found = existing_lessons(&dir.path().join("out"), &FileNamePattern::default()).unwrap();
        assert!(found.is_empty(), "{found:?}");
    }
}

#[test]
fn accept_below_spec_writes_it_as_a_lesson() {
    let dir = tempfile::tempdir().unwrap();
    let gate = defaults_for(&Template::generic());
    let summary = process(dir.path(), FORTY_WORDS, gate, true);
    assert_eq!((summary.written, summary.written_below_spec), (1, 1));
    assert!(summary.failures.is_empty());
    let lesson = std::fs::read_to_string(dir.path().join("out/M0-L001.md")).unwrap();
    assert!(
        lesson.contains("Data is a set of recorded facts."),
        "{lesson}"
    );
    assert!(!lesson.contains("below_spec"));
}

#[test]
fn missing_sections_count_only_for_the_built_in_template() {
    // Long enough, but with none of the built-in template's sections: an own template's lesson.
    let own = format!(
        "# Lesson M0-L001: What is data?\n\n## Overview\n\n{}\n\n## Exercises\n\nDo it.\n",
        "Data are recorded facts about the world. ".repeat(40)
    );
    let dir = tempfile::tempdir().unwrap();
    let summary = process(dir.path(), &own, defaults_for(&Template::generic()), false);
    let failure = &summary.failures[0];
    assert_eq!(failure.kind, FailureKind::BelowSpec);
    assert!(
        failure.reason.contains(
            "missing sections: Learning Objectives, Why This Matters, Core Concepts, \
             How It Works in Practice, Worked Example, Tools, Templates, Common Pitfalls, \
             Practice Exercise, Knowledge Check, Summary and Next Steps"
        ),
        "{}",
        failure.reason
    );
    assert!(!failure.reason.contains("words"), "{}", failure.reason);

    let dir = tempfile::tempdir().unwrap();
    let summary = process(dir.path(), &own, defaults_for(&legacy()), false);
    assert_eq!(summary.written, 1, "{:?}", summary.failures);
    // Unknown template (results processed on their own): min_words alone.
    let unknown = QualityGate::from_settings(&QualitySettings::default(), None);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(process(dir.path(), &own, unknown, false).written, 1);
    // A list the user sets applies to any template.
    let settings = QualitySettings {
        required_sections: Some(vec!["Overview".to_owned(), "Glossary".to_owned()]),
        ..QualitySettings::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let gate = QualityGate::from_settings(&settings, Some(legacy().sha256()));
    let summary = process(dir.path(), &own, gate, false);
    assert!(
        summary.failures[0]
            .reason
            .contains("missing sections: Glossary"),
        "{:?}",
        summary.failures
    );
}

#[test]
fn a_lesson_with_every_section_passes_the_defaults() {
    let lesson = full_lesson();
    let dir = tempfile::tempdir().unwrap();
    let summary = process(
        dir.path(),
        &lesson,
        defaults_for(&Template::generic()),
        false,
    );
    assert_eq!(summary.written, 1, "{:?}", summary.failures);
    assert_eq!(summary.written_below_spec, 0);

    // One section fewer is below spec, and only that section is named.
    let without = lesson.replace("## 9. Knowledge Check", "## 9. Quiz");
    let dir = tempfile::tempdir().unwrap();
    let summary = process(
        dir.path(),
        &without,
        defaults_for(&Template::generic()),
        false,
    );
    assert_eq!(
        summary.failures[0].reason,
        "answer below spec (missing sections: Knowledge Check); kept in rejected/"
    );
}
