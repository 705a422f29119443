//! Golden files: the first request lines of the Data Governance fixture and the messages of
//! one of its lessons, byte for byte.
//!
//! Run with `UPDATE_GOLDEN=1` (or `BLESS=1`) to rewrite the golden files after an intended
//! change, then review the diff:
//! `UPDATE_GOLDEN=1 cargo test -p batch-request --test it golden`.

use std::path::{Path, PathBuf};

use batch_request::{RequestSettings, Template};

use crate::support::{LEGACY_TEMPLATE, build_datagov, fixture, to_jsonl, validate_request_line};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares the first three lines of `jsonl` with the golden file.
fn check_golden(name: &str, jsonl: &str) {
    let first_three: String = jsonl.split_inclusive('\n').take(3).collect();
    check_text(name, &first_three);
}

/// Compares `actual` with the golden file `name`, or rewrites the file when asked to.
fn check_text(name: &str, actual: &str) {
    let path = golden(name);
    let update = ["UPDATE_GOLDEN", "BLESS"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|value| value != "0"));
    if update {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if actual != expected {
        let line = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
        panic!(
            "{} differs from the build from line {} on (run with UPDATE_GOLDEN=1 to update, then review the diff)",
            path.display(),
            line + 1
        );
    }
}

fn check_all_lines_valid(jsonl: &str, count: usize) {
    assert!(jsonl.ends_with('\n'));
    assert!(!jsonl.contains("\n\n"), "blank line in the output");
    assert!(!jsonl.contains('\r'));
    let lines: Vec<&str> = jsonl.lines().collect();
    assert_eq!(lines.len(), count);
    for (index, line) in lines.iter().enumerate() {
        let problems = validate_request_line(line);
        assert!(problems.is_empty(), "line {}: {problems:?}", index + 1);
    }
}

#[test]
fn shipped_template_golden_and_valid() {
    let template = Template::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../prompts/LESSON_GENERATION_PROMPT_GENERIC.md"),
    )
    .unwrap();
    assert_eq!(template.placeholders(), Template::generic().placeholders());
    let requests = build_datagov(&template, &RequestSettings::default());
    assert_eq!(requests.len(), 336);
    let jsonl = to_jsonl(&requests);
    // UTF-8 as is: the fixture's typographic quotes and arrows are not escaped.
    assert!(jsonl.contains('“') && jsonl.contains('→'));
    assert!(!jsonl.contains("\\u"));
    for request in &requests {
        let messages = &request.request.body.messages;
        assert_eq!(messages.len(), 2, "{}", request.code);
        assert_eq!(
            (messages[0].role.as_str(), messages[1].role.as_str()),
            ("system", "user")
        );
        let prompt = &messages[1].content;
        assert!(prompt.starts_with(&format!("# Lesson {}: {}\n", request.code, request.title)));
        assert!(prompt.ends_with(&format!("# Lesson {}: {}\n", request.code, request.title)));
        for message in messages {
            assert!(!message.content.contains("{{"), "{}", request.code);
            assert!(
                !message.content.contains("<!-- lesson -->"),
                "{}",
                request.code
            );
        }
    }
    check_golden("datagov_generic_first3.jsonl", &jsonl);
    check_all_lines_valid(&jsonl, 336);
}

/// The exact messages of one lesson built with the shipped template: shared instructions and
/// outline in the system message, the lesson's own lines in the user message.
#[test]
fn shipped_template_messages_golden() {
    let requests = build_datagov(&Template::generic(), &RequestSettings::default());
    // M0-L002 has a prerequisite and two related lessons.
    let request = requests
        .iter()
        .find(|request| request.code.to_string() == "M0-L002")
        .unwrap();
    let mut json = serde_json::to_string_pretty(&request.request.body.messages).unwrap();
    json.push('\n');
    check_text("datagov_generic_messages.json", &json);
    let user = &request.request.body.messages[1].content;
    assert!(user.contains("- Builds on: M0-L001: What Is Data Governance? Scope, Value & Myths\n"));
    assert!(!user.contains("curriculum-outline"));
    let system = &request.request.body.messages[0].content;
    assert!(system.starts_with("You are an experienced instructional designer"));
    assert!(system.contains("<curriculum-outline title=\"Data Governance — Content Structure\">\n# Data Governance — Content Structure\n"));
    assert!(!system.contains("M0-L002"));
}

#[test]
fn legacy_template_golden_and_valid() {
    let template = Template::from_file(&fixture(LEGACY_TEMPLATE)).unwrap();
    assert!(template.is_legacy());
    let requests = build_datagov(&template, &RequestSettings::default());
    assert_eq!(requests.len(), 336);
    for request in &requests {
        let prompt = &request.request.body.messages[0].content;
        assert!(!prompt.contains("{lesson_details"), "{}", request.code);
        assert!(prompt.starts_with(
            "You are generating a polished, publication-ready lesson for a Data Governance Curriculum.\n"
        ));
        assert!(prompt.contains(
            "\n\n---\n\nYou are generating a polished, publication-ready lesson for a Data Governance Curriculum.\nFollow the canonical"
        ));
        assert!(prompt.contains("### CONTENT STRUCTURE REFERENCE (Curriculum Map - first 8000 chars for context):\n# Data Governance — Content Structure\n"));
        assert!(prompt.contains("[Content structure truncated for token limits."));
        // The f-string escape `{{...}}` is a literal brace.
        assert!(prompt.contains(r#"write it like {"rule": "not_null", "column": "customer_id"}."#));
        assert!(prompt.ends_with(&format!(
            "- Begin immediately with `# Lesson {}: {}`.\n\n---\n\n### FINAL OUTPUT\n\nDeliver the **final, learner-facing Markdown lesson**, cleanly formatted and publication-ready.",
            request.code, request.title
        )));
    }
    let jsonl = to_jsonl(&requests);
    check_golden("datagov_legacy_first3.jsonl", &jsonl);
    check_all_lines_valid(&jsonl, 336);
}

#[test]
fn legacy_wrapping_can_be_turned_off() {
    let template = Template::from_file(&fixture(LEGACY_TEMPLATE)).unwrap();
    let settings = RequestSettings {
        legacy_wrapping: Some(false),
        ..RequestSettings::default()
    };
    let requests = build_datagov(&template, &settings);
    let prompt = &requests[0].request.body.messages[0].content;
    assert!(prompt.starts_with(
        "You are generating a polished, publication-ready lesson for a Data Governance Curriculum.\nFollow the canonical"
    ));
    assert!(!prompt.contains("CONTENT STRUCTURE REFERENCE"));
}

#[test]
fn legacy_template_with_an_unknown_expression_is_refused() {
    let text = std::fs::read_to_string(fixture(LEGACY_TEMPLATE)).unwrap();
    let text = text.replace(
        "- Estimated Duration: {lesson_details['TIME']} minutes",
        "- Estimated Duration: {lesson_details['TIME']} minutes\n- Prompt Version: {PROMPT_VERSION}",
    );
    let err = Template::parse(&text, Path::new("old_prompt.md")).unwrap_err();
    assert!(
        matches!(&err, batch_request::Error::UnknownLegacyExpression { expression, line: 14, .. } if expression == "PROMPT_VERSION"),
        "{err:?}"
    );
}

#[test]
fn settings_replacements_reach_the_requests() {
    let settings = RequestSettings::from_toml_str(
        r#"
curriculum_name = "Snowflake Tuning"
[[replacements]]
from = "real governance programs: policies, stewardship roles, data quality rules, and lineage"
to = "real Snowflake accounts: warehouses, clustering keys, and query profiles"
"#,
        Path::new("lessons.toml"),
    )
    .unwrap();
    let template = Template::from_file(&fixture(LEGACY_TEMPLATE)).unwrap();
    let requests = build_datagov(&template, &settings);
    let prompt = &requests[5].request.body.messages[0].content;
    assert!(prompt.starts_with(
        "You are generating a polished, publication-ready lesson for a Snowflake Tuning Curriculum."
    ));
    assert!(prompt.contains(
        "examples from real Snowflake accounts: warehouses, clustering keys, and query profiles."
    ));
    assert!(!prompt.contains("stewardship roles"));
}
