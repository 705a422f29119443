//! Issue 12, the outline cases: heading typos warn with file:line (or fail with `--strict`),
//! an empty title or a number too large fails naming the line, a module heading typo is named.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::{code, command, generate_on, repo, run, stderr, stdout, success_results_in};

/// An outline whose line 3 looks like a lesson heading but has no colon: before issue 12,
/// it was dropped without a word.
const TYPO: &str = "# M0: Basics\n## L001: One [F]\n## L002 Two [F]\n## L003: Three [F]\n";

const TYPO_WARNING: &str = ":3: `## L002 Two [F]` is not read as a lesson heading: \
     expected `## L002: Two [F]`; add a colon after L002";

fn write_outline(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("outline.md");
    std::fs::write(&path, text).unwrap();
    path
}

/// `generate-datagov-lessons-batch --content <outline> <args>` in `dir`, with no key: only
/// runs that send nothing get past the key.
async fn generate(dir: &Path, outline: &Path, args: &[&str]) -> Output {
    let mut cmd = generate_on(dir, outline);
    cmd.args(args);
    run(cmd).await
}

#[tokio::test]
async fn a_dry_run_shows_the_warnings_with_file_and_line_before_the_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let outline = write_outline(dir.path(), TYPO);
    let output = generate(dir.path(), &outline, &["--dry-run"]).await;
    // Not on a terminal: the warnings are shown and the run goes on.
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    let warning = format!("warning: {}{TYPO_WARNING}", outline.display());
    let at = err.find(&warning).unwrap_or_else(|| panic!("{err}"));
    let estimate = err
        .find("Estimate: 2 requests")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(at < estimate, "{err}");
    assert!(err.contains("Found 2 lessons across 1 modules"), "{err}");
}

#[tokio::test]
async fn strict_turns_warnings_into_errors() {
    let dir = tempfile::tempdir().unwrap();
    let outline = write_outline(dir.path(), TYPO);
    for args in [
        &["--dry-run", "--strict"][..],
        &["--list-lessons", "--strict"],
    ] {
        let output = generate(dir.path(), &outline, args).await;
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        let err = stderr(&output);
        assert!(err.contains(TYPO_WARNING), "{err}");
        assert!(
            err.contains("has 1 warning (above), and --strict makes them errors"),
            "{err}"
        );
        assert!(
            err.contains("hint: fix the outline at those lines"),
            "{err}"
        );
        assert!(!err.contains("Estimate:"), "{err}");
        assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    }
    // Without warnings, --strict changes nothing.
    let clean = write_outline(dir.path(), "# M0: Basics\n## L001: One [F]\n");
    let output = generate(dir.path(), &clean, &["--list-lessons", "--strict"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
}

#[tokio::test]
async fn list_lessons_json_carries_the_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let outline = write_outline(dir.path(), TYPO);
    let output = generate(dir.path(), &outline, &["--list-lessons", "--json"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["lessons_total"], 2);
    assert_eq!(doc["warnings"][0]["line"], 3);
    let message = doc["warnings"][0]["message"].as_str().unwrap();
    assert!(TYPO_WARNING.ends_with(message), "{message}");
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn gaps_in_lesson_numbers_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let outline = write_outline(
        dir.path(),
        "# M0: Basics\n## L001: One [F]\n## L003: Three [F]\n",
    );
    let output = generate(dir.path(), &outline, &["--list-lessons"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "warning: {}:3: M0-L002 is missing: numbers jump from L001 to L003",
            outline.display()
        )),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn an_empty_title_or_a_number_too_large_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        (
            "# M0: Basics\n## L001: One [F]\n## L005: \n",
            ":3: lesson M0-L005 has no title",
        ),
        ("# M4: Basics\n## L00\n", ":2: lesson M4-L000 has no title"),
        (
            "# M4294967296: Huge\n## L001: One [F]\n",
            ":1: the number in `M4294967296` is too large",
        ),
        (
            "# M0: Basics\n## L99999999999999999999: Huge [F]\n",
            ":2: the number in `L99999999999999999999` is too large",
        ),
    ] {
        let outline = write_outline(dir.path(), text);
        let output = generate(dir.path(), &outline, &["--dry-run"]).await;
        assert_eq!(code(&output), 2, "{text:?}: {}", stderr(&output));
        let err = stderr(&output);
        assert!(
            err.contains(&format!("{}{expected}", outline.display())),
            "{text:?}: {err}"
        );
        assert!(!err.contains("no lessons found"), "{err}");
        assert!(!err.contains("Estimate:"), "{err}");
    }
}

#[tokio::test]
async fn a_module_heading_typo_is_named_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let outline = repo().join("fixtures/outlines/error-module-heading-typo.md");
    let output = generate(dir.path(), &outline, &["--list-lessons"]).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "{}:46: `# M1 Operating Model, Roles & RACI — Lesson Map` is not read as a module heading",
            outline.display()
        )),
        "{err}"
    );
    assert!(err.contains("add a colon after M1"), "{err}");
    assert!(
        err.contains(":49: lesson M0-L001 appears twice (first at line 14)"),
        "{err}"
    );
}

#[tokio::test]
async fn process_batch_results_shows_the_outline_warnings_and_honours_strict() {
    let dir = tempfile::tempdir().unwrap();
    let outline = write_outline(dir.path(), TYPO);
    let results = success_results_in(dir.path());
    let process = |strict: bool| {
        let mut cmd = command("process", dir.path());
        cmd.arg(&results)
            .arg("--content")
            .arg(&outline)
            .args(["--out", "lessons"]);
        if strict {
            cmd.arg("--strict");
        }
        run(cmd)
    };
    let output = process(true).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains(TYPO_WARNING),
        "{}",
        stderr(&output)
    );
    assert!(
        !dir.path().join("lessons").exists(),
        "--strict wrote lessons"
    );
    let output = process(false).await;
    assert_ne!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains(TYPO_WARNING),
        "{}",
        stderr(&output)
    );
    assert!(dir.path().join("lessons").exists());
}
