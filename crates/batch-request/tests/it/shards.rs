//! Shard files: limits reached exactly and passed by one (requests, bytes, input tokens), one
//! model per shard, duplicate ids, an oversized request.

use std::path::Path;

use std::io::BufReader;

use batch_request::{
    Error, Estimator, LessonRequest, Limits, Placement, RequestSettings, Shard, ShardWriter,
    Template,
};
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
        if let Some(max) = limits.max_input_tokens {
            assert!(shard.estimate.input_tokens <= max, "{shard:?}");
        }
        all_ids.extend(ids_in(shard));
    }
    let expected_ids: Vec<String> = requests
        .iter()
        .map(|r| r.request.custom_id.clone())
        .collect();
    assert_eq!(all_ids, expected_ids);
    // Nothing but the shards is left in the directory (no temp files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), shards.len());
}

/// The ids of a shard file's requests, in file order.
fn ids_in(shard: &Shard) -> Vec<String> {
    let file = std::fs::File::open(&shard.path).unwrap();
    batch_request::read_request_lines(BufReader::new(file))
        .map(|line| line.unwrap().1.custom_id)
        .collect()
}

/// Input tokens of each request, as the shard writer's estimate counts them.
fn input_tokens(requests: &[LessonRequest]) -> Vec<u64> {
    let mut estimator = Estimator::new(&RequestSettings::default());
    requests
        .iter()
        .map(|request| estimator.add(request).input)
        .collect()
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
            ..Limits::default()
        },
        &[4],
    );
    check_shards(
        &requests(5, &settings),
        Limits {
            max_requests: 4,
            max_bytes: big,
            ..Limits::default()
        },
        &[4, 1],
    );
    check_shards(
        &requests(9, &settings),
        Limits {
            max_requests: 4,
            max_bytes: big,
            ..Limits::default()
        },
        &[4, 4, 1],
    );
    check_shards(
        &requests(1, &settings),
        Limits {
            max_requests: 1,
            max_bytes: big,
            ..Limits::default()
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
            ..Limits::default()
        },
        &[3, 3],
    );
    // One byte short of three lines: two per shard.
    check_shards(
        &requests,
        Limits {
            max_requests: many,
            max_bytes: 3 * len - 1,
            ..Limits::default()
        },
        &[2, 2, 2],
    );
    // One byte over three lines still holds three.
    check_shards(
        &requests,
        Limits {
            max_requests: many,
            max_bytes: 3 * len + 1,
            ..Limits::default()
        },
        &[3, 3],
    );
    // A line exactly as large as the limit has a shard of its own.
    check_shards(
        &requests,
        Limits {
            max_requests: many,
            max_bytes: len,
            ..Limits::default()
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
            ..Limits::default()
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
    let Error::RepeatedCustomId {
        custom_id,
        first_line,
        second_title,
        second_line,
    } = &err
    else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(custom_id, "lesson_M1-L001");
    assert_eq!(*first_line, 2);
    assert_eq!((second_title.as_str(), *second_line), ("A copy", 77));
    assert_eq!(
        err.to_string(),
        "custom_id `lesson_M1-L001` is used twice: by the lesson at outline line 2 and by lesson `A copy` (outline line 77)"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn ids_are_told_apart_by_their_spelling_not_only_their_lesson_code() {
    let mut requests = requests(2, &RequestSettings::default());
    // The same lesson code spelled another way is another id for the API.
    requests[1].request.custom_id = "lesson_M01-L001".to_owned();
    requests[1].code = requests[0].code;
    // An id of no lesson shape is kept by its text.
    let mut other = requests[0].clone();
    other.request.custom_id = "product-17".to_owned();
    requests.push(other.clone());
    let (_dir, result) = write(&requests, Limits::default());
    assert_eq!(result.unwrap()[0].requests, 3);
    requests.push(other);
    let (_dir, result) = write(&requests, Limits::default());
    assert!(
        matches!(&result, Err(Error::RepeatedCustomId { custom_id, .. }) if custom_id == "product-17"),
        "{result:?}"
    );
}

#[test]
fn input_token_limit_exactly_and_one_over() {
    let requests = requests(6, &RequestSettings::default());
    let tokens = input_tokens(&requests);
    assert!(tokens.iter().all(|&t| t == tokens[0]), "{tokens:?}");
    let one = tokens[0];
    let at = |max_input_tokens: u64| Limits {
        max_input_tokens: Some(max_input_tokens),
        ..Limits::default()
    };
    // Exactly three requests fit.
    check_shards(&requests, at(3 * one), &[3, 3]);
    // One token short of three: two per shard.
    check_shards(&requests, at(3 * one - 1), &[2, 2, 2]);
    // One token over three still holds three.
    check_shards(&requests, at(3 * one + 1), &[3, 3]);
    // A request exactly at the limit has a shard of its own.
    check_shards(&requests, at(one), &[1, 1, 1, 1, 1, 1]);
    // Whichever limit comes first cuts.
    check_shards(
        &requests,
        Limits {
            max_requests: 2,
            ..at(3 * one)
        },
        &[2, 2, 2],
    );
}

#[test]
fn input_token_limit_cuts_requests_of_different_sizes() {
    // Titles of growing length: a greedy cut in order, each shard at or under the limit.
    let curriculum = Curriculum {
        modules: vec![Module {
            lessons: (1..=12)
                .map(|number| Lesson {
                    title: "word ".repeat(number as usize * 7),
                    ..curriculum(1).modules[0].lessons[0].clone()
                })
                .enumerate()
                .map(|(index, lesson)| Lesson {
                    code: LessonCode::new(1, index as u32 + 1),
                    line: index + 2,
                    ..lesson
                })
                .collect(),
            ..curriculum(1).modules[0].clone()
        }],
        ..curriculum(1)
    };
    let settings = RequestSettings::default();
    let template = Template::parse("Write {{lesson_title}}.", Path::new("t.md")).unwrap();
    let requests =
        batch_request::build_requests(&curriculum, "", curriculum.lessons(), &template, &settings)
            .unwrap();
    let tokens = input_tokens(&requests);
    let max = tokens.iter().max().unwrap() + 40;
    let mut expected = vec![0];
    let mut sum = 0;
    for &t in &tokens {
        if sum + t > max {
            expected.push(0);
            sum = 0;
        }
        sum += t;
        *expected.last_mut().unwrap() += 1;
    }
    assert!(expected.len() > 3, "{expected:?}");
    let limits = Limits {
        max_input_tokens: Some(max),
        ..Limits::default()
    };
    check_shards(&requests, limits, &expected);
    let (_dir, result) = write(&requests, limits);
    let shards = result.unwrap();
    let total: u64 = shards.iter().map(|shard| shard.estimate.input_tokens).sum();
    assert_eq!(total, tokens.iter().sum::<u64>());
}

#[test]
fn a_request_over_the_token_limit_alone_names_it_and_both_numbers() {
    let requests = requests(3, &RequestSettings::default());
    let one = input_tokens(&requests)[0];
    let (dir, result) = write(
        &requests,
        Limits {
            max_input_tokens: Some(one - 1),
            ..Limits::default()
        },
    );
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::RequestOverTokenLimit { custom_id, input_tokens, max_input_tokens }
            if custom_id == "lesson_M1-L001" && *input_tokens == one && *max_input_tokens == one - 1),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("lesson_M1-L001")
            && message.contains(&one.to_string())
            && message.contains(&(one - 1).to_string()),
        "{message}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a partial shard was left"
    );
}

#[test]
fn push_says_which_shard_took_the_request() {
    let settings = RequestSettings::default();
    let requests = requests(5, &settings);
    let tokens = input_tokens(&requests);
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_requests: 2,
        ..Limits::default()
    };
    let mut writer = ShardWriter::new(dir.path(), "job", limits, &settings).unwrap();
    let placements: Vec<Placement> = requests
        .iter()
        .map(|request| writer.push(request).unwrap())
        .collect();
    let shards = writer.finish().unwrap();
    let numbers: Vec<usize> = placements.iter().map(|placement| placement.shard).collect();
    assert_eq!(numbers, [1, 1, 2, 2, 3]);
    for (placement, expected) in placements.iter().zip(&tokens) {
        assert_eq!(placement.tokens.input, *expected);
    }
    // The placements name the shards that hold the ids.
    for (index, shard) in shards.iter().enumerate() {
        let placed: Vec<&str> = requests
            .iter()
            .zip(&placements)
            .filter(|(_, placement)| placement.shard == index + 1)
            .map(|(request, _)| request.request.custom_id.as_str())
            .collect();
        assert_eq!(ids_in(shard), placed);
    }
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
            ..Limits::default()
        },
    );
    assert!(matches!(result, Err(Error::InvalidLimits { .. })));
    let (_dir, result) = write(
        &requests,
        Limits {
            max_input_tokens: Some(0),
            ..Limits::default()
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
