//! Times `parse` on generated 10,000-lesson outlines (lesson map and nested) and prints the median.
//!
//! Run with `cargo bench -p curriculum-parser`; the target is under 50 ms per outline in release.

#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use curriculum_parser::{Format, parse};

const MODULES: u32 = 100;
const LESSONS_PER_MODULE: u32 = 100;
const SECTION_EVERY: u32 = 10;
const RUNS: usize = 21;
const TAGS: [&str; 7] = ["F", "I", "A", "E", "F-I", "I-A", "A-E"];

fn main() {
    // `cargo bench` passes `--bench`; a plain run (e.g. `cargo test --benches`) only checks it works.
    let runs = if std::env::args().any(|arg| arg == "--bench") {
        RUNS
    } else {
        1
    };
    for (format, outline) in [
        (Format::LessonMap, lesson_map()),
        (Format::Nested, nested()),
    ] {
        let parse_time = median(runs, || {
            let curriculum = parse(black_box(&outline), Path::new("generated.md"))
                .expect("the generated outline parses");
            assert_eq!(curriculum.format, format);
            assert_eq!(
                curriculum.lesson_count(),
                (MODULES * LESSONS_PER_MODULE) as usize
            );
        });
        // The share of the time that is comrak building the AST, for comparison.
        let comrak_time = median(runs, || {
            let arena = comrak::Arena::new();
            black_box(comrak::parse_document(
                &arena,
                black_box(&outline),
                &comrak::Options::default(),
            ));
        });
        println!(
            "parse {:<10} {} lessons, {} KiB: median of {runs} runs {:.1} ms (comrak AST alone {:.1} ms)",
            format.as_str(),
            MODULES * LESSONS_PER_MODULE,
            outline.len() / 1024,
            parse_time.as_secs_f64() * 1000.0,
            comrak_time.as_secs_f64() * 1000.0,
        );
    }
}

/// The median wall time of `runs` calls of `work`.
fn median(runs: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Format A: legend, file comments, `# M<n>: ... — Lesson Map`, sections and `## L<nnn>: ... [tag]`.
fn lesson_map() -> String {
    let mut out = String::from(
        "# Generated Curriculum — Content Structure\n\nComplexity Legend\n\
         [F] Foundational — Basic concepts, prerequisites\n[I] Intermediate — Applied practice\n\n",
    );
    for module in 0..MODULES {
        let _ = writeln!(out, "<!-- File: GEN-{module:03}—lesson-map.md -->");
        let _ = writeln!(
            out,
            "# M{module}: Module {module} Title & Scope — Lesson Map\n"
        );
        for lesson in 1..=LESSONS_PER_MODULE {
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
                tag(lesson)
            );
        }
        out.push('\n');
    }
    out
}

/// Format B: `## Module <n>: ...` headings, `###` groups, nested bullets and labs.
fn nested() -> String {
    let mut out = String::from("# Generated Curriculum\n\n");
    for module in 1..=MODULES {
        let _ = writeln!(out, "## Module {module}: Module {module} Title & Scope\n");
        for lesson in 1..=LESSONS_PER_MODULE {
            if lesson % SECTION_EVERY == 1 {
                let _ = writeln!(out, "\n### Group {}", lesson / SECTION_EVERY + 1);
                out.push_str("- Topic Area\n");
            }
            let _ = writeln!(out, "  - {} [{}]", title(module, lesson), tag(lesson));
            if lesson % SECTION_EVERY == 0 {
                out.push_str("  - *Lab: Practise the Section*\n");
            }
        }
        out.push('\n');
    }
    out
}

/// A lesson title with the markup and punctuation real outlines use.
fn title(module: u32, lesson: u32) -> String {
    match lesson % 4 {
        0 => format!("Governing *Critical* Data Elements in Domain {module}, Part {lesson}"),
        1 => format!("Using `GRANT` & `REVOKE`: Access Patterns {lesson}"),
        2 => format!("Lineage → Impact: “Who” Owns What’s Next, Case {lesson}"),
        _ => format!(
            "Policies, Standards & Controls for [Topic](https://example.com/{lesson}) {lesson}"
        ),
    }
}

fn tag(lesson: u32) -> &'static str {
    TAGS[lesson as usize % TAGS.len()]
}
