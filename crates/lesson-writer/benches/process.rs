//! Throughput and peak memory of `process` on 10,000 results of about 25 KB each,
//! against `cat` and a straightforward Python `json.loads`-per-line processor.
#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use curriculum_parser::{Curriculum, Format, Lesson, LessonCode, Module};
use lesson_writer::{ProcessConfig, process};

const LESSONS: u32 = 10_000;
const PER_MODULE: u32 = 500;
const CONTENT_BYTES: usize = 25_000;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("output.jsonl");
    let curriculum = curriculum();
    let started = Instant::now();
    let bytes = generate(&input, &curriculum);
    let mb = bytes as f64 / 1e6;
    println!(
        "input: {LESSONS} results, {mb:.1} MB, generated in {:.2?}",
        started.elapsed()
    );
    let tmpfs = Path::new("/dev/shm")
        .is_dir()
        .then(|| tempfile::tempdir_in("/dev/shm").ok())
        .flatten();

    let run = |out: &Path, label: &str| {
        let mut config = ProcessConfig::new(out);
        config.curriculum = Some(&curriculum);
        // Forget earlier peaks so VmHWM measures this run only.
        let reset = fs::write("/proc/self/clear_refs", "5").is_ok();
        let cpu = cpu_seconds(false);
        let started = Instant::now();
        let summary = process(Some(&input), None, &config).expect("process");
        let wall = started.elapsed();
        let cpu = cpu_seconds(false) - cpu;
        let rss = vm_hwm_kib() as f64 / 1024.0;
        println!(
            "lesson-writer {label}: {wall:.2?} wall, {:.0} MB/s, {cpu:.2} s CPU, peak RSS {rss:.1} MB{}, written {}, unchanged {}, failed {}",
            mb / wall.as_secs_f64(),
            if reset { "" } else { " (not reset)" },
            summary.written,
            summary.unchanged,
            summary.failures.len()
        );
        (wall, summary)
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python_baseline.py");
    let python = |out: &Path, extra: &str, label: &str| {
        let command = format!(
            "python3 '{}' '{}' '{}' {extra}",
            script.display(),
            input.display(),
            out.display()
        );
        let timed = time_shell(&command);
        match timed {
            Some((wall, cpu)) => println!(
                "python json.loads {label}: {wall:.2?} wall, {:.0} MB/s, {cpu:.2} s CPU",
                mb / wall.as_secs_f64()
            ),
            None => println!("python3 not available: baseline {label} skipped"),
        }
        timed.map(|(wall, _)| wall)
    };

    // Creating 10,000 files on ext4 costs more right after many deletions (the
    // inode allocator skips recently freed inodes), so the two processors take
    // turns on disk, in both orders, and each is credited with its faster run.
    let mut rust_disk = Duration::MAX;
    let mut python_disk: Option<Duration> = None;
    for round in 1..=2 {
        let mut rust = || {
            let (wall, summary) = run(&dir.path().join(format!("lessons-{round}")), "out on disk");
            assert_eq!(summary.written, u64::from(LESSONS));
            if round == 1 {
                println!("  cleanup rules fired: {:?}", summary.rules_applied);
            }
            rust_disk = rust_disk.min(wall);
        };
        let mut python = || {
            let python_out = dir.path().join(format!("python-{round}"));
            if let Some(wall) = python(&python_out, "", "out on disk") {
                python_disk = Some(python_disk.map_or(wall, |best| best.min(wall)));
            }
        };
        if round == 1 {
            rust();
            python();
        } else {
            python();
            rust();
        }
    }
    let (rerun, summary) = run(&dir.path().join("lessons-2"), "rerun, nothing to write");
    assert_eq!(summary.unchanged, u64::from(LESSONS));
    let on_tmpfs = tmpfs
        .as_ref()
        .map(|tmpfs| run(&tmpfs.path().join("lessons"), "out on tmpfs").0);
    let python_tmpfs = tmpfs
        .as_ref()
        .and_then(|tmpfs| python(&tmpfs.path().join("python"), "", "out on tmpfs"));
    let python_parse = python(&dir.path().join("python-parse"), "--no-write", "parse only");

    if let Some((wall, _)) = time_shell(&format!("cat '{}' > /dev/null", input.display())) {
        println!(
            "cat FILE > /dev/null: {wall:.2?}, {:.0} MB/s",
            mb / wall.as_secs_f64()
        );
    }

    let ratio = |python: Option<Duration>, rust: Option<Duration>, label: &str| {
        if let (Some(python), Some(rust)) = (python, rust) {
            println!(
                "speed-up over python, {label}: {:.1}x",
                python.as_secs_f64() / rust.as_secs_f64()
            );
        }
    };
    ratio(python_disk, Some(rust_disk), "out on disk, best of two");
    ratio(python_tmpfs, on_tmpfs, "out on tmpfs");
    ratio(
        python_parse,
        Some(rerun),
        "python parse only vs lesson-writer rerun",
    );
}

/// Writes the results file line by line; returns its size in bytes.
fn generate(path: &Path, curriculum: &Curriculum) -> u64 {
    let mut out = BufWriter::new(fs::File::create(path).expect("create input"));
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for lesson in curriculum.lessons() {
        // Like real answers, without a final newline.
        let body = lesson_body(lesson, &mut rng).trim_end().to_owned();
        let content = match lesson.code.lesson() % 10 {
            // A tenth wrapped in a fence, a tenth with a chat preamble: the slow path.
            3 => format!("```markdown\n{body}\n```"),
            7 => format!("Sure! Here is the lesson you asked for:\n\n{body}"),
            _ => body,
        };
        let line = serde_json::json!({
            "id": format!("batch_req_{:032x}", next(&mut rng)),
            "custom_id": lesson.code.custom_id(),
            "response": {
                "status_code": 200,
                "request_id": format!("{:032x}", next(&mut rng)),
                "body": {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": 1_736_489_777,
                    "model": "gpt-4o-mini-2024-07-18",
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
                        "logprobs": null,
                        "finish_reason": "stop"
                    }],
                    "usage": {
                        "prompt_tokens": 812, "completion_tokens": 6200, "total_tokens": 7012,
                        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}
                    },
                    "service_tier": "default",
                    "system_fingerprint": "fp_bench"
                }
            },
            "error": null
        });
        serde_json::to_writer(&mut out, &line).expect("write line");
        out.write_all(b"\n").expect("write newline");
    }
    out.flush().expect("flush");
    fs::metadata(path).expect("stat input").len()
}

const PARAGRAPHS: [&str; 6] = [
    "Data governance is the set of decisions about who may do what with which data, and why. It covers “ownership”, quality, retention and access — the données that an organisation depends on.",
    "A data steward answers for one domain: they define terms, approve changes to critical fields and are the first contact when a report looks wrong. Stewards don't own systems; they own meaning.",
    "Quality has several dimensions: accuracy, completeness, timeliness, consistency and validity. Each needs a measurable rule, e.g. \"no customer without a country code\", and an owner who acts on breaches.",
    "Lineage shows where a number came from: source tables, transformations and reports. With lineage, a change to a source can be checked against every downstream consumer before it ships.",
    "Retention rules say how long each record class is kept and how it is destroyed. They balance legal holds, privacy law and the cost of storage; \"keep everything forever\" is a decision too.",
    "Access is granted by role, reviewed on a schedule and logged. Least privilege means a person sees what their job needs, for as long as it needs it, and nothing else.",
];

const CODE: &str = "```sql\nSELECT customer_id, country_code\nFROM customers\nWHERE country_code IS NULL;  -- quality rule: every customer has a country\n```\n";

/// A lesson of about [`CONTENT_BYTES`] bytes: canonical heading, sections, lists,
/// code blocks, a table.
fn lesson_body(lesson: &Lesson, rng: &mut u64) -> String {
    let mut body = format!("# Lesson {}: {}\n\n", lesson.code, lesson.title);
    let mut section = 1;
    while body.len() < CONTENT_BYTES {
        body.push_str(&format!(
            "## Section {section}: Topic {}\n\n",
            next(rng) % 97
        ));
        for _ in 0..3 {
            body.push_str(PARAGRAPHS[(next(rng) % 6) as usize]);
            body.push_str("\n\n");
        }
        body.push_str("- Define the rule.\n- Name the owner.\n- Measure and report.\n\n");
        if section % 2 == 0 {
            body.push_str(CODE);
            body.push('\n');
        }
        if section % 3 == 0 {
            body.push_str("| Dimension | Rule | Owner |\n|---|---|---|\n| Accuracy | matches source | steward |\n| Timeliness | < 24 h | platform |\n\n");
        }
        section += 1;
    }
    body
}

fn curriculum() -> Curriculum {
    let modules = (0..LESSONS / PER_MODULE)
        .map(|module| Module {
            number: module,
            title: format!("Module {module}"),
            line: 1,
            lessons: (1..=PER_MODULE)
                .map(|lesson| Lesson {
                    code: LessonCode::new(module, lesson),
                    title: format!("Governing data, part {lesson}"),
                    complexity: None,
                    section: None,
                    line: lesson as usize,
                })
                .collect(),
            labs: Vec::new(),
        })
        .collect();
    Curriculum {
        title: Some("Bench".to_owned()),
        format: Format::LessonMap,
        modules,
        warnings: Vec::new(),
    }
}

/// xorshift64: deterministic variety without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs a shell command; its wall time and CPU seconds, `None` when it fails.
fn time_shell(command: &str) -> Option<(Duration, f64)> {
    let cpu = cpu_seconds(true);
    let started = Instant::now();
    let status = Command::new("sh").arg("-c").arg(command).status().ok()?;
    let wall = started.elapsed();
    status.success().then(|| (wall, cpu_seconds(true) - cpu))
}

/// User plus system CPU seconds of this process (all threads) or of its waited-for
/// children, from `/proc/self/stat` at the usual 100 ticks per second.
fn cpu_seconds(children: bool) -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    let (user, system) = if children { (13, 14) } else { (11, 12) };
    let ticks = fields.get(user).unwrap_or(&0) + fields.get(system).unwrap_or(&0);
    ticks as f64 / 100.0
}
