//! Benchmark: build, estimate and shard the requests of 336 and 50,000 generated lessons.
#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::path::Path;
use std::time::{Duration, Instant};

use batch_request::{
    Encoding, Estimator, Limits, RequestBuilder, RequestSettings, ShardWriter, Template,
};
use curriculum_parser::{Complexity, Curriculum, Format, Lesson, LessonCode, Level, Module};

const LESSONS_PER_MODULE: u32 = 24;

fn main() {
    let settings = RequestSettings::default();
    let template = Template::generic();

    let started = Instant::now();
    Encoding::O200kBase.count("warm up");
    println!(
        "tokenizer load (o200k_base, once per process): {} ms",
        started.elapsed().as_millis()
    );

    for n_lessons in [336, 50_000] {
        let (outline, curriculum) = generate(n_lessons);
        run(n_lessons, &outline, &curriculum, &template, &settings);
    }
    println!("peak RSS: {} MB", peak_rss_kb() / 1024);
}

fn run(
    n_lessons: u32,
    outline: &str,
    curriculum: &Curriculum,
    template: &Template,
    settings: &RequestSettings,
) {
    let builder = RequestBuilder::new(curriculum, outline, template, settings);

    // Build and estimate, timing each part.
    let mut estimator = Estimator::new(settings);
    let mut build_time = Duration::ZERO;
    let mut estimate_time = Duration::ZERO;
    let mut json_bytes = 0u64;
    let mut prompt_bytes = 0u64;
    for lesson in curriculum.lessons() {
        let started = Instant::now();
        let request = builder.build(lesson).unwrap();
        build_time += started.elapsed();
        prompt_bytes += request
            .request
            .body
            .messages
            .iter()
            .map(|m| m.content.len() as u64)
            .sum::<u64>();
        json_bytes += serde_json::to_vec(&request.request).unwrap().len() as u64 + 1;
        let started = Instant::now();
        estimator.add(&request);
        estimate_time += started.elapsed();
    }
    let estimate = estimator.estimate();

    // The same requests again, every chunk already cached: the cost of splitting and hashing.
    let mut warm_time = Duration::ZERO;
    for lesson in curriculum.lessons() {
        let request = builder.build(lesson).unwrap();
        let started = Instant::now();
        estimator.add(&request);
        warm_time += started.elapsed();
    }

    // The whole pipeline, streamed into shard files.
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut writer = ShardWriter::new(dir.path(), "bench", Limits::default(), settings).unwrap();
    for request in builder.requests(curriculum.lessons()) {
        writer.push(&request.unwrap()).unwrap();
    }
    let shards = writer.finish().unwrap();
    let pipeline_time = started.elapsed();
    let written: u64 = shards.iter().map(|shard| shard.bytes).sum();
    assert_eq!(written, json_bytes);

    let mb = json_bytes as f64 / 1e6;
    println!(
        "{n_lessons} lessons: {mb:.1} MB of JSONL ({:.1} MB of prompts), {} shard(s)",
        prompt_bytes as f64 / 1e6,
        shards.len()
    );
    println!(
        "  build:                 {:>8.1} ms  {:>7.0} MB/s",
        ms(build_time),
        mb / build_time.as_secs_f64()
    );
    println!(
        "  estimate:              {:>8.1} ms  {:>7.0} MB/s",
        ms(estimate_time),
        mb / estimate_time.as_secs_f64()
    );
    println!(
        "  estimate, warm cache:  {:>8.1} ms  {:>7.0} MB/s",
        ms(warm_time),
        mb / warm_time.as_secs_f64()
    );
    println!(
        "  build+estimate+shards: {:>8.1} ms  {:>7.0} MB/s (written to disk)",
        ms(pipeline_time),
        mb / pipeline_time.as_secs_f64()
    );
    println!(
        "  estimate: {} input tokens, {} expected / {} max output tokens, ${:.2} expected / ${:.2} max at batch prices, ${:.2} standard",
        estimate.input_tokens,
        estimate.expected_output_tokens,
        estimate.max_output_tokens,
        estimate.expected_usd.unwrap_or(f64::NAN),
        estimate.max_usd.unwrap_or(f64::NAN),
        estimate.standard_usd.unwrap_or(f64::NAN),
    );

    if n_lessons <= 1000 {
        // The shortcut against counting every prompt in one pass.
        let started = Instant::now();
        let exact: u64 = curriculum
            .lessons()
            .map(|lesson| {
                Estimator::exact_input_tokens(&builder.build(lesson).unwrap().request.body)
            })
            .sum();
        let exact_time = started.elapsed();
        let error = (estimate.input_tokens as f64 - exact as f64).abs() / exact as f64 * 100.0;
        println!(
            "  exact count (no cache): {:>7.1} ms; shortcut error {error:.4}% ({} vs {exact})",
            ms(exact_time),
            estimate.input_tokens
        );
    }
}

/// A curriculum of `n_lessons` lessons in modules of 24, and its outline text in the lesson-map
/// format (long enough that `{{curriculum}}` is cut at 8000 characters).
fn generate(n_lessons: u32) -> (String, Curriculum) {
    let levels = [
        Level::Foundational,
        Level::Intermediate,
        Level::Advanced,
        Level::Expert,
    ];
    let mut outline = String::from("# Generated Curriculum — Content Structure\n\n");
    let mut modules = Vec::new();
    let mut line = 3;
    for module_number in 0..n_lessons.div_ceil(LESSONS_PER_MODULE) {
        let title = format!("Module {module_number} Topics & Practices");
        outline.push_str(&format!("# M{module_number}: {title} — Lesson Map\n\n"));
        line += 2;
        let module_line = line - 2;
        let mut lessons = Vec::new();
        let first = module_number * LESSONS_PER_MODULE;
        for number in 1..=LESSONS_PER_MODULE.min(n_lessons - first) {
            if number % 6 == 1 {
                let section = format!("## Section {}\n", number / 6 + 1);
                outline.push_str(&section);
                line += 1;
            }
            let level = levels[(number as usize) % 4];
            let lesson_title = format!(
                "Governing “Topic {number}” of module {module_number}: Scope, Roles & Metrics"
            );
            outline.push_str(&format!(
                "## L{number:03}: {lesson_title} [{}]\n",
                level.letter()
            ));
            lessons.push(Lesson {
                code: LessonCode::new(module_number, number),
                title: lesson_title,
                complexity: Some(Complexity::single(level)),
                section: Some(format!("Section {}", number / 6 + 1).into()),
                line,
            });
            line += 1;
        }
        outline.push('\n');
        line += 1;
        modules.push(Module {
            number: module_number,
            title,
            line: module_line,
            lessons,
            labs: vec![],
        });
    }
    let curriculum = Curriculum {
        title: Some("Generated Curriculum".into()),
        format: Format::LessonMap,
        modules,
        warnings: vec![],
    };
    (outline, curriculum)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string(Path::new("/proc/self/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
