//! Shard files: limits reached exactly and passed by one, one model per shard, duplicate ids,
//! an oversized request.

use std::path::Path;

use batch_request::{Error, LessonRequest, Limits, RequestSettings, Shard, Template};
use curriculum_parser::{Curriculum, Format, Lesson, LessonCode, Module};

use crate::support::validate_request_line;

/// A curriculum of `n` lessons in one module, every prompt the same length.
fn curriculum(n: u32) -> Curriculum {
    Curriculum {
        title: None,
        format: Format::LessonMap,
        modules: vec![Module {
            number: 1,
            title: "Module".to_owned(),
            line: 1,
            lessons: (1..=n)
                .map(|number| Lesson {
                    code: LessonCode::new(1, number),
                    title: format!("Lesson {number:03}"),
                    complexity: Some("F".parse().unwrap()),
                    section: None,
                    line: 1 + number as usize,
                })
                .collect(),
            labs: vec![],
        }],
        warnings: vec![],
    }
}

fn requests(n: u32, settings: &RequestSettings) -> Vec<LessonRequest> {
    let curriculum = curriculum(n);
    let template = Template::parse(
        "Write {{lesson_title}} ({{lesson_code}}).",
        Path::new("t.md"),
    )
    .unwrap();
    batch_request::build_requests(&curriculum, "", curriculum.lessons(), &template, settings)
        .unwrap()
}

fn line_len(request: &LessonRequest) -> u64 {
    serde_json::to_vec(&request.request).unwrap().len() as u64 + 1
}

fn write(
    requests: &[LessonRequest],
    limits: Limits,
) -> (tempfile::TempDir, Result<Vec<Shard>, Error>) {
    let dir = tempfile::tempdir().unwrap();
    let result = batch_request::write_shards(
        requests,
        dir.path(),
        "job",
        limits,
        &RequestSettings::default(),
    );
    (dir, result)
}

/// Checks the shard sizes and that the files hold exactly the requests, in order.
fn check_shards(requests: &[LessonRequest], limits: Limits, expected_counts: &[usize]) {
    let (dir, result) = write(requests, limits);
    let shards = result.unwrap();
    let counts: Vec<usize> = shards.iter().map(|shard| shard.requests).collect();
    assert_eq!(counts, expected_counts, "{limits:?}");
    let mut all_ids = Vec::new();
    for (index, shard) in shards.iter().enumerate() {
        assert_eq!(
            shard.path,
            dir.path().join(format!("job_input_{:03}.jsonl", index + 1))
        );
        let text = std::fs::read_to_string(&shard.path).unwrap();
        assert_eq!(text.len() as u64, shard.bytes);
        assert!(shard.bytes <= limits.max_bytes && shard.requests <= limits.max_requests);
        assert_eq!(text.lines().count(), shard.requests);
        for line in text.lines() {
            assert!(validate_request_line(line).is_empty());
        }
        assert_eq!(shard.estimate.requests as usize, shard.requests);
        all_ids.extend(shard.custom_ids.iter().cloned());
    }
    let expected_ids: Vec<String> = requests
        .iter()
        .map(|r| r.request.custom_id.clone())
        .collect();
    assert_eq!(all_ids, expected_ids);
    // Nothing but the shards is left in the directory (no temp files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), shards.len());
}

#[test]
fn request_count_limit_exactly_and_one_over() {
    let settings = RequestSettings::default();
    let big = Limits::default().max_bytes;
    check_shards(
        &requests(4, &settings),
        Limits {
            max_requests: 4,
            max_bytes: big,
        },
        &[4],
    );
    check_shards(
        &requests(5, &settings),
        Limits {
            max_requests: 4,
            max_bytes: big,
        },
        &[4, 1],
    );
    check_shards(
        &requests(9, &settings),
        Limits {
            max_requests: 4,
            max_bytes: big,
        },
        &[4, 4, 1],
    );
    check_shards(
        &requests(1, &settings),
        Limits {
            max_requests: 1,
            max_bytes: big,
        },
        &[1],
    );
}

#[test]
fn byte_limit_exactly_and_one_over() {
    let requests = requests(6, &RequestSettings::default());
    let len = line_len(&requests[0]);
    assert!(
        requests.iter().all(|r| line_len(r) == len),
        "lines differ in length"
    );
    let many = 1000;
    // Exactly three lines fit.
    check_shards(
        &requests,
        Limits {
            max_requests: many,
            max_bytes: 3 * len,
        },
        &[3, 3],
    );
    // One byte short of three lines: two per shard.
    check_shards(
        &requests,
        Limits {
            max_requests: many,
            max_bytes: 3 * len - 1,
        },
        &[2, 2, 2],
    );
    // One byte over three lines still holds three.
    check_shards(
        &requests,
        Limits {
            max_requests: many,
            max_bytes: 3 * len + 1,
        },
        &[3, 3],
    );
    // A line exactly as large as the limit has a shard of its own.
    check_shards(
        &requests,
        Limits {
            max_requests: many,
            max_bytes: len,
        },
        &[1, 1, 1, 1, 1, 1],
    );
}

#[test]
fn oversized_single_request_names_the_lesson() {
    let requests = requests(3, &RequestSettings::default());
    let len = line_len(&requests[0]);
    let (dir, result) = write(
        &requests,
        Limits {
            max_requests: 10,
            max_bytes: len - 1,
        },
    );
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::RequestTooLarge { custom_id, bytes, max_bytes } if custom_id == "lesson_M1-L001" && *bytes == len && *max_bytes == len - 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("lesson_M1-L001"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a partial shard was left"
    );
}

#[test]
fn duplicate_custom_id_names_both_lessons_and_leaves_no_files() {
    let mut requests = requests(3, &RequestSettings::default());
    let mut twin = requests[0].clone();
    twin.title = "A copy".to_owned();
    twin.line = 77;
    requests.push(twin);
    let (dir, result) = write(&requests, Limits::default());
    let err = result.unwrap_err();
    let Error::DuplicateCustomId {
        custom_id,
        first_title,
        first_line,
        second_title,
        second_line,
    } = &err
    else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(custom_id, "lesson_M1-L001");
    assert_eq!((first_title.as_str(), *first_line), ("Lesson 001", 2));
    assert_eq!((second_title.as_str(), *second_line), ("A copy", 77));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn one_model_per_shard() {
    let mut requests = requests(5, &RequestSettings::default());
    for request in &mut requests[2..4] {
        request.request.body.model = "gpt-5-mini".to_owned();
    }
    let (_dir, result) = write(&requests, Limits::default());
    let shards = result.unwrap();
    let summary: Vec<(&str, usize)> = shards
        .iter()
        .map(|s| (s.model.as_str(), s.requests))
        .collect();
    assert_eq!(
        summary,
        [("gpt-4o-mini", 2), ("gpt-5-mini", 2), ("gpt-4o-mini", 1)]
    );
}

#[test]
fn bad_limits_and_job_names() {
    let requests = requests(1, &RequestSettings::default());
    let (_dir, result) = write(
        &requests,
        Limits {
            max_requests: 0,
            max_bytes: 10,
        },
    );
    assert!(matches!(result, Err(Error::InvalidLimits { .. })));
    let dir = tempfile::tempdir().unwrap();
    for name in ["", "../up", "a/b", ".hidden", "space name"] {
        let result = batch_request::write_shards(
            &requests,
            dir.path(),
            name,
            Limits::default(),
            &RequestSettings::default(),
        );
        assert!(
            matches!(&result, Err(Error::InvalidJobName { name: got }) if got == name),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn missing_directory_is_a_write_error() {
    let requests = requests(1, &RequestSettings::default());
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let result = batch_request::write_shards(
        &requests,
        &missing,
        "job",
        Limits::default(),
        &RequestSettings::default(),
    );
    assert!(
        matches!(&result, Err(Error::WriteShard { path, .. }) if *path == missing.join("job_input_001.jsonl")),
        "{result:?}"
    );
}

#[test]
fn streaming_builder_into_shard_writer() {
    let curriculum = curriculum(7);
    let template = Template::parse("{{lesson_title}}", Path::new("t.md")).unwrap();
    let settings = RequestSettings::default();
    let builder = batch_request::RequestBuilder::new(&curriculum, "", &template, &settings);
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_requests: 3,
        ..Limits::default()
    };
    let mut writer =
        batch_request::ShardWriter::new(dir.path(), "stream", limits, &settings).unwrap();
    for request in builder.requests(curriculum.lessons()) {
        writer.push(&request.unwrap()).unwrap();
    }
    let shards = writer.finish().unwrap();
    assert_eq!(
        shards.iter().map(|s| s.requests).collect::<Vec<_>>(),
        [3, 3, 1]
    );
    let total = batch_request::Estimate::total(shards.iter().map(|s| &s.estimate));
    assert_eq!(total.requests, 7);
    assert_eq!(total.expected_output_tokens, 7 * 3750);
}
