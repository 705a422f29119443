//! Which request produced which lesson: file names, provenance and staleness, two courses in
//! one work dir, id spellings, counts that add up, and retries that can succeed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use batch_emulator::EmulatorConfig;

use crate::{
    batches, code, command, datagov, emulator, generate_against, input_of, lesson_files, run,
    stderr, stdout,
};

/// A generate command on `outline`, writing into `dir/out` and `dir/work`, against `url`.
fn generate(dir: &Path, outline: &Path, url: &str) -> Command {
    generate_against(dir, outline, "out", url)
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err}): {}\n{}",
            stdout(output),
            stderr(output)
        )
    })
}

/// Every requested lesson has exactly one outcome.
fn assert_counts_add_up(report: &serde_json::Value) {
    let len = |key: &str| report[key].as_array().unwrap().len() as u64;
    let sum = report["written"].as_u64().unwrap()
        + report["unchanged"].as_u64().unwrap()
        + len("kept")
        + len("failed")
        + len("missing")
        + len("pending");
    assert_eq!(sum, report["requested"].as_u64().unwrap(), "{report:#}");
}

/// An emulator whose batches stay unfinished for a while, so a run can be stopped mid-batch.
async fn slow_emulator() -> batch_emulator::Emulator {
    let mut config = EmulatorConfig::fast();
    config.timing.validation = Duration::from_millis(1500);
    emulator(config).await
}

fn first_line(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_file_names_are_recognised_so_a_rerun_submits_nothing() {
    let emulator = emulator(EmulatorConfig::fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let only = ["--only", "M0-L001,M0-L002,M0-L003"];
    let mut first = generate(dir.path(), &datagov(), emulator.base_url());
    first.args(only).args(["--file-name", "lesson-{code}.md"]);
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        lesson_files(&dir.path().join("out")),
        [
            "lesson-M0-L001.md",
            "lesson-M0-L002.md",
            "lesson-M0-L003.md"
        ]
    );

    let mut again = generate(dir.path(), &datagov(), emulator.base_url());
    again
        .args(only)
        .args(["--file-name", "lesson-{code}.md", "--json"]);
    let output = run(again).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("3 already generated, 0 to generate"),
        "{}",
        stderr(&output)
    );
    assert_eq!(json(&output)["requests_sent"], 0);
    assert_eq!(batches(&emulator).await.len(), 1, "the rerun paid again");

    // `--limit` takes the next lessons, never the ones already there.
    let mut next = generate(dir.path(), &datagov(), emulator.base_url());
    next.args(["--limit", "2", "--file-name", "lesson-{code}.md"]);
    let output = run(next).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(batches(&emulator).await[0].counts().total, 2);
    assert_eq!(lesson_files(&dir.path().join("out")).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outline_edited_mid_batch_gives_a_stale_lesson_that_stale_regenerates_alone() {
    let emulator = slow_emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let outline = dir.path().join("course/Content Structure.md");
    std::fs::create_dir_all(outline.parent().unwrap()).unwrap();
    let original = std::fs::read_to_string(datagov()).unwrap();
    std::fs::write(&outline, &original).unwrap();
    let only = ["--only", "M0-L001,M0-L002,M0-L003"];
    let mut first = generate(dir.path(), &outline, emulator.base_url());
    first.args(only).arg("--no-wait");
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    // M0-L001 is retitled while its batch runs.
    let old_title = original
        .lines()
        .find_map(|line| line.strip_prefix("## L001: "))
        .unwrap()
        .trim_end_matches(" [F]")
        .to_owned();
    let edited = original.replacen(
        &format!("L001: {old_title}"),
        "L001: Data Governance in One Page",
        1,
    );
    std::fs::write(&outline, &edited).unwrap();
    let mut attach = generate(dir.path(), &outline, emulator.base_url());
    attach.args(only).arg("--json");
    let output = run(attach).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("1 lesson was generated from an earlier version of the outline: M0-L001 (title changed); run with --stale to regenerate it"),
        "{err}"
    );
    let report = json(&output);
    assert_eq!(report["stale_written"][0]["lesson_code"], "M0-L001");
    // The heading is the one of the request that produced the body.
    let out = dir.path().join("out");
    assert_eq!(
        first_line(out.join("M0-L001.md")),
        format!("# Lesson M0-L001: {old_title}")
    );

    let mut list = command("generate", dir.path());
    list.arg("--content")
        .arg(&outline)
        .args(["--out", "out", "--list-lessons"]);
    let listed = stdout(&run(list).await);
    let line = |code: &str| {
        listed
            .lines()
            .find(|line| line.contains(code))
            .unwrap_or_else(|| panic!("{code} not listed: {listed}"))
            .to_owned()
    };
    assert!(
        line("M0-L001").contains("(stale: title changed)"),
        "{listed}"
    );
    assert!(line("M0-L002").contains("(generated)"), "{listed}");

    // M0-L002 is edited by hand, then retitled too: --stale keeps it.
    let by_hand = "# Lesson M0-L002: mine\n\nWritten by hand.\n";
    std::fs::write(out.join("M0-L002.md"), by_hand).unwrap();
    let retitled = edited.replacen("L002: ", "L002: Renamed ", 1);
    std::fs::write(&outline, retitled).unwrap();
    let mut stale = generate(dir.path(), &outline, emulator.base_url());
    stale.args(only).args(["--stale", "--json"]);
    let output = run(stale).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_counts_add_up(&report);
    assert_eq!(report["requests_sent"], 1, "{report:#}");
    assert_eq!(report["written"], 1);
    assert_eq!(report["kept"][0]["lesson_code"], "M0-L002");
    assert_eq!(report["kept"][0]["reason"], "edited_by_hand");
    assert!(
        stderr(&output).contains("1 kept (edited by hand): M0-L002; --force overwrites them"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        first_line(out.join("M0-L001.md")),
        "# Lesson M0-L001: Data Governance in One Page"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("M0-L002.md")).unwrap(),
        by_hand
    );
    let all = batches(&emulator).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].counts().total, 1, "--stale sent only M0-L001");
}

/// A small outline in `dir/<folder>/course/outline.md`.
fn small_outline(dir: &Path, folder: &str, titles: &[&str]) -> PathBuf {
    let path = dir.join(folder).join("course/outline.md");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = format!("# M0: {folder} basics\n");
    for (n, title) in titles.iter().enumerate() {
        text.push_str(&format!("## L{:03}: {title} [F]\n", n + 1));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_courses_in_folders_of_the_same_name_share_a_work_dir_without_mixing() {
    let emulator = slow_emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let a = small_outline(dir.path(), "a", &["Alpha one", "Alpha two"]);
    let b = small_outline(dir.path(), "b", &["Beta one", "Beta two", "Beta three"]);
    let course =
        |outline: &Path, out: &str| generate_against(dir.path(), outline, out, emulator.base_url());
    let mut first = course(&a, "out-a");
    first.arg("--no-wait");
    assert_eq!(code(&run(first).await), 0);

    let output = run(course(&b, "out-b")).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("Attaching"),
        "{}",
        stderr(&output)
    );
    assert_eq!(lesson_files(&dir.path().join("out-b")).len(), 3);
    for n in 1..=3 {
        let line = first_line(dir.path().join(format!("out-b/M0-L00{n}.md")));
        assert!(line.contains("Beta"), "{line}");
    }
    let output = run(course(&a, "out-a")).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stderr(&output).contains("Attaching"), "{}", stderr(&output));
    assert_eq!(lesson_files(&dir.path().join("out-a")).len(), 2);
    for n in 1..=2 {
        let line = first_line(dir.path().join(format!("out-a/M0-L00{n}.md")));
        assert!(line.contains("Alpha"), "{line}");
    }
    assert_eq!(batches(&emulator).await.len(), 2);

    // Another outline into a directory that holds course A's lessons is refused.
    let output = run(course(&b, "out-a")).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("a/course/outline.md") && err.contains("b/course/outline.md"),
        "{err}"
    );
    assert_eq!(batches(&emulator).await.len(), 2);
}

#[tokio::test]
async fn results_with_mixed_id_spellings_are_not_reported_missing() {
    let dir = tempfile::tempdir().unwrap();
    let outline = small_outline(dir.path(), "x", &["One", "Two"]);
    let line = |id: &str, text: &str| {
        let text = serde_json::to_string(text).unwrap();
        format!(
            r#"{{"custom_id":"{id}","response":{{"status_code":200,"body":{{"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":{text}}},"finish_reason":"stop"}}]}}}}}}"#
        ) + "\n"
    };
    let results = dir.path().join("results.jsonl");
    std::fs::write(
        &results,
        line("M0-L001", "# Lesson M0-L001: One\n\nBody.\n")
            + &line("lesson_M00-L002", "# Lesson M0-L002: Two\n\nBody.\n"),
    )
    .unwrap();
    let process = |dir: &Path| {
        let mut cmd = command("process", dir);
        // The answers are one-word stubs, below the quality gate's bar.
        cmd.arg(&results).arg("--content").arg(&outline).args([
            "--out",
            "lessons",
            "--json",
            "--accept-below-spec",
        ]);
        cmd
    };
    let output = run(process(dir.path())).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["written"], 2);
    assert_eq!(report["missing"].as_array().unwrap().len(), 0);
    assert_eq!(report["requested"], 2);
    assert_counts_add_up(&report);

    // A rerun counts the lessons as unchanged, not as nothing.
    let output = run(process(dir.path())).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(
        (report["written"].as_u64(), report["unchanged"].as_u64()),
        (Some(0), Some(2))
    );
    assert_counts_add_up(&report);
    assert!(
        stderr(&output).contains("2 unchanged"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_add_up_after_force_and_when_earlier_work_is_attached() {
    let emulator = slow_emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = generate(dir.path(), &datagov(), emulator.base_url());
    first.args(["--modules", "M0", "--no-wait", "--json"]);
    let output = run(first).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let m0 = json(&output)["pending"].as_array().unwrap().len();
    assert!(m0 > 10, "{m0}");

    // Asking for M1 while M0's batch runs: both are finished by this one run.
    let mut second = generate(dir.path(), &datagov(), emulator.base_url());
    second.args(["--modules", "M1", "--json"]);
    let output = run(second).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_counts_add_up(&report);
    let m1 = report["requests_sent"].as_u64().unwrap() as usize;
    assert_eq!(report["requested"].as_u64().unwrap() as usize, m0 + m1);
    assert_eq!(report["written"].as_u64().unwrap() as usize, m0 + m1);
    assert_eq!(lesson_files(&dir.path().join("out")).len(), m0 + m1);

    // --force after a complete run: every lesson paid for has an outcome.
    let mut force = generate(dir.path(), &datagov(), emulator.base_url());
    force.args(["--modules", "M1", "--force", "--json"]);
    let output = run(force).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_counts_add_up(&report);
    assert_eq!(report["requests_sent"].as_u64().unwrap() as usize, m1);
    assert_eq!(report["requested"].as_u64().unwrap() as usize, m1);
    assert_eq!(
        (report["written"].as_u64().unwrap() + report["unchanged"].as_u64().unwrap()) as usize,
        m1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_round_counts_lessons_once_and_truncation_at_the_models_limit_is_not_resubmitted() {
    let mut config = EmulatorConfig::fast();
    config.faults.seed = 11;
    config.faults.server_error_share = 0.2;
    config.faults.length_share = 0.2;
    let emulator = emulator(config).await;
    let dir = tempfile::tempdir().unwrap();
    // gpt-4o-mini allows 16,384 output tokens: a truncated answer cannot get more.
    let mut cmd = generate(dir.path(), &datagov(), emulator.base_url());
    cmd.args([
        "--limit",
        "30",
        "--retry-failed",
        "1",
        "--max-completion-tokens",
        "16384",
        "--json",
    ]);
    let output = run(cmd).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let report = json(&output);
    assert_counts_add_up(&report);
    assert_eq!(report["requested"], 30);
    assert_eq!(report["rounds"], 2);
    let failed = report["failed"].as_array().unwrap();
    let truncated: Vec<&serde_json::Value> =
        failed.iter().filter(|f| f["code"] == "length").collect();
    assert!(!truncated.is_empty(), "{failed:?}");
    for failure in &truncated {
        assert_eq!(failure["retryable"], false, "{failure}");
        assert!(
            failure["reason"]
                .as_str()
                .unwrap()
                .contains("truncated at the model's output limit"),
            "{failure}"
        );
    }
    // The retry batch holds the server errors only, never a truncated lesson.
    let all = batches(&emulator).await;
    assert_eq!(all.len(), 2);
    let sent = report["requests_sent"].as_u64().unwrap();
    assert_eq!(sent, 30 + all[0].counts().total);
    let retried = input_of(&dir.path().join("work"), &all[0]);
    for failure in truncated {
        let code = failure["lesson_code"].as_str().unwrap();
        assert!(
            !retried.contains(&format!("\"lesson_{code}\"")),
            "{code} was resubmitted"
        );
    }
}
