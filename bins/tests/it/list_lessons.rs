//! `generate-datagov-lessons-batch --list-lessons` (issue 2's first command).

use crate::{code, command, datagov, run, stderr, stdout};

#[tokio::test]
async fn lists_the_data_governance_curriculum() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("generate", dir.path());
    cmd.arg("--list-lessons").arg("--content").arg(datagov());
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("Found 336 lessons across 15 modules"),
        "{text}"
    );
    assert!(text.contains("M14"), "{text}");
    assert!(text.contains("M0-L001"), "{text}");
}

#[tokio::test]
async fn list_lessons_json_is_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("generate", dir.path());
    cmd.args(["--list-lessons", "--json", "--content"])
        .arg(datagov());
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["modules_total"], 15);
    assert_eq!(doc["lessons_total"], 336);
    assert_eq!(doc["format"], "lesson-map");
    let first = &doc["modules"][0];
    assert_eq!(first["code"], "M0");
    assert_eq!(first["number"], 0);
    assert_eq!(first["lessons"][0]["code"], "M0-L001");
    assert_eq!(first["lessons"][0]["number"], 1);
    assert!(first["lessons"][0]["line"].as_u64().unwrap() > 0);
    let total: usize = doc["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["lessons"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 336);
}

#[tokio::test]
async fn default_content_path_is_relative_to_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("src/data/data_gov");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(datagov(), target.join("Content Structure.md")).unwrap();
    let mut cmd = command("generate", dir.path());
    cmd.arg("--list-lessons");
    let output = run(cmd).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains("Found 336 lessons across 15 modules"));
}

#[tokio::test]
async fn a_parse_error_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let outline = dir.path().join("bad.md");
    std::fs::write(
        &outline,
        "# M0: Basics\n## L001: One [F]\n## L001: Again [F]\n",
    )
    .unwrap();
    let mut cmd = command("generate", dir.path());
    cmd.arg("--list-lessons").arg("--content").arg(&outline);
    let output = run(cmd).await;
    assert_eq!(code(&output), 2);
    let err = stderr(&output);
    assert!(err.contains("bad.md"), "{err}");
    assert!(err.contains(":3"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[tokio::test]
async fn a_missing_outline_exits_2_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("generate", dir.path());
    cmd.arg("--list-lessons");
    let output = run(cmd).await;
    assert_eq!(code(&output), 2);
    let err = stderr(&output);
    assert!(err.contains("Content Structure.md"), "{err}");
    assert!(err.contains("--content"), "{err}");
}
