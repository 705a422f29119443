//! Benchmark: a whole dry run (`Job::open` and `Job::plan` with `dry_run`) of generated
//! outlines of 5,000, 50,000 and 100,000 lessons, each in a child process of its own so that
//! its peak RSS is its own. Prints wall time, requests per second and peak RSS, and fails when
//! a dry run's peak RSS passes 64 MB: the build streams, so memory must not grow with the
//! course.
#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use batch_request::{RequestSettings, Template};
use lesson_job::{Job, JobSpec, Selection};
use lesson_writer::{FileNamePattern, Manifest};

const SIZES: [u32; 3] = [5_000, 50_000, 100_000];
const LESSONS_PER_MODULE: u32 = 40;
const SECTION_EVERY: u32 = 6;
const TAGS: [&str; 7] = ["F", "I", "A", "E", "F-I", "I-A", "A-E"];
/// The most a dry run may hold at its peak, whatever the size of the course.
const MAX_PEAK_RSS_KB: u64 = 64 * 1024;
/// The child's argument: `--child <outline> <root>`.
const CHILD: &str = "--child";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == CHILD) {
        let outline = PathBuf::from(&args[at + 1]);
        let root = PathBuf::from(&args[at + 2]);
        child(&outline, &root);
        return ExitCode::SUCCESS;
    }
    let mut ok = true;
    for n_lessons in SIZES {
        let root = tempfile::tempdir().expect("temp dir");
        let outline = root.path().join("course").join("Content Structure.md");
        std::fs::create_dir_all(outline.parent().expect("a parent")).expect("course dir");
        let text = generate(n_lessons);
        std::fs::write(&outline, &text).expect("write the outline");
        let output = Command::new(std::env::current_exe().expect("own path"))
            .arg(CHILD)
            .arg(&outline)
            .arg(root.path())
            .output()
            .expect("run the child");
        assert!(
            output.status.success(),
            "the dry run of {n_lessons} lessons failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let field = |name: &str| -> u64 {
            stdout
                .split_whitespace()
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| panic!("the child reported no {name}: {stdout}"))
        };
        let (open_us, plan_us) = (field("open_us"), field("plan_us"));
        let (requests, shards, rss_kb) = (field("requests"), field("shards"), field("rss_kb"));
        let (open_rss_kb, plan_rss_kb) = (field("open_rss_kb"), field("plan_rss_kb"));
        assert_eq!(
            requests,
            u64::from(n_lessons),
            "every lesson gets a request"
        );
        let wall = (open_us + plan_us) as f64 / 1e6;
        let over = rss_kb > MAX_PEAK_RSS_KB;
        ok &= !over;
        println!(
            "dry run {n_lessons:>7} lessons ({:.1} MB outline): {:>7.0} ms wall (open {:.0} ms, plan {:.0} ms), {:>6.0} requests/s, {shards} shard(s), peak RSS {:.1} MB (open {:.1} MB, plan {:.1} MB){}",
            text.len() as f64 / 1e6,
            wall * 1000.0,
            open_us as f64 / 1000.0,
            plan_us as f64 / 1000.0,
            requests as f64 / wall,
            rss_kb as f64 / 1024.0,
            open_rss_kb as f64 / 1024.0,
            plan_rss_kb as f64 / 1024.0,
            if over { "  OVER 64 MB" } else { "" },
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        println!(
            "FAILED: a dry run's peak RSS passed {} MB",
            MAX_PEAK_RSS_KB / 1024
        );
        ExitCode::FAILURE
    }
}

/// One dry run, as `generate-datagov-lessons-batch --dry-run` makes it; reports on stdout.
fn child(outline: &Path, root: &Path) {
    let started = Instant::now();
    let job = Job::open(JobSpec {
        outline: outline.to_owned(),
        out_dir: root.join("lessons"),
        work_dir: root.join("work"),
        name: None,
        template: Template::generic(),
        settings: RequestSettings::default(),
        file_name: FileNamePattern::default(),
        max_enqueued_tokens: None,
        provider: None,
    })
    .expect("open the job");
    let open_us = started.elapsed().as_micros();
    let open_rss_kb = peak_rss_kb();
    // Forget the parser's peak, so that the plan's own is seen too.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let started = Instant::now();
    let manifest = Manifest::load(&job.paths().out_dir).expect("the manifest");
    let plan = job
        .plan(&manifest, &Selection::default(), true)
        .expect("plan");
    let plan_us = started.elapsed().as_micros();
    let plan_rss_kb = peak_rss_kb();
    println!(
        "open_us={open_us} plan_us={plan_us} requests={} shards={} open_rss_kb={open_rss_kb} plan_rss_kb={plan_rss_kb} rss_kb={}",
        plan.new_requests(),
        plan.shards.len(),
        if reset {
            open_rss_kb.max(plan_rss_kb)
        } else {
            plan_rss_kb
        }
    );
}

/// An outline of `n_lessons` lessons in the lesson-map format, 40 lessons to a module.
fn generate(n_lessons: u32) -> String {
    let mut out = String::from(
        "# Generated Curriculum — Content Structure\n\nComplexity Legend\n\
         [F] Foundational — Basic concepts, prerequisites\n[I] Intermediate — Applied practice\n\
         [A] Advanced — Design trade-offs\n[E] Expert — Strategy\n\n",
    );
    for module in 0..n_lessons.div_ceil(LESSONS_PER_MODULE) {
        let _ = writeln!(out, "<!-- File: GEN-{module:04}—lesson-map.md -->");
        let _ = writeln!(
            out,
            "# M{module}: Module {module} Governance & Practice — Lesson Map\n"
        );
        let first = module * LESSONS_PER_MODULE;
        for lesson in 1..=LESSONS_PER_MODULE.min(n_lessons - first) {
            if lesson % SECTION_EVERY == 1 {
                let _ = writeln!(
                    out,
                    "## Section {}: Concepts → Practice",
                    lesson / SECTION_EVERY + 1
                );
            }
            let _ = writeln!(
                out,
                "## L{lesson:03}: {} [{}]",
                title(module, lesson),
                TAGS[lesson as usize % TAGS.len()]
            );
        }
        out.push('\n');
    }
    out
}

/// A lesson title with the punctuation real outlines use.
fn title(module: u32, lesson: u32) -> String {
    match lesson % 4 {
        0 => format!("Governing Critical Data Elements in Domain {module}, Part {lesson}"),
        1 => format!("Using `GRANT` & `REVOKE`: Access Patterns {lesson}"),
        2 => format!("Lineage → Impact: “Who” Owns What’s Next, Case {module}.{lesson}"),
        _ => format!("Policies, Standards & Controls for Topic {module}-{lesson}"),
    }
}

/// The process's peak resident set size (`VmHWM`), in KiB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
