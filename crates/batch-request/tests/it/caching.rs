//! The shipped template is cache-friendly: over the Data Governance fixture every request starts
//! with the same system message, byte for byte, and that shared prefix is most of each prompt.

use batch_request::{Encoding, Estimator, RequestSettings, Template};

use crate::support::build_datagov;

/// The tokens of one message as the estimate counts them: 3 of chat overhead, role, content.
fn message_tokens(role: &str, content: &str) -> u64 {
    3 + Encoding::O200kBase.count(role) + Encoding::O200kBase.count(content)
}

#[test]
fn every_request_shares_its_leading_message_byte_for_byte() {
    let settings = RequestSettings::default();
    let requests = build_datagov(&Template::generic(), &settings);
    assert_eq!(requests.len(), 336);
    let first = &requests[0].request.body.messages;
    assert_eq!(first[0].role, "system");
    let shared_tokens = message_tokens(&first[0].role, &first[0].content);
    let mut smallest_share = f64::MAX;
    let mut user_messages = std::collections::HashSet::new();
    for request in &requests {
        let messages = &request.request.body.messages;
        assert_eq!(messages.len(), 2, "{}", request.code);
        assert_eq!(messages[0], first[0], "{}", request.code);
        assert!(
            user_messages.insert(&messages[1].content),
            "{}",
            request.code
        );
        let input = Estimator::exact_input_tokens(&request.request.body);
        let share = shared_tokens as f64 / input as f64;
        assert!(
            share >= 0.70,
            "{}: shared prefix {shared_tokens} of {input} input tokens ({:.1}%)",
            request.code,
            share * 100.0
        );
        smallest_share = smallest_share.min(share);
    }
    println!(
        "shared prefix: {shared_tokens} tokens per request; smallest share {:.1}% of a request's input",
        smallest_share * 100.0
    );
}

#[test]
fn estimate_reports_the_shared_prefix_and_the_cached_cost() {
    let settings = RequestSettings {
        model: "gpt-5-mini".to_owned(),
        ..RequestSettings::default()
    };
    let requests = build_datagov(&Template::generic(), &settings);
    let system = &requests[0].request.body.messages[0];
    let shared = message_tokens(&system.role, &system.content);
    assert!(shared >= 1024, "{shared}");

    let estimate = batch_request::estimate(&requests, &settings);
    assert_eq!(estimate.shared_prefix_tokens, shared);
    assert_eq!(estimate.shared_prefix_tokens_total, 336 * shared);
    let share = estimate.shared_prefix_tokens_total as f64 / estimate.input_tokens as f64;
    println!(
        "gpt-5-mini over 336 lessons: input {} tokens, shared prefix {} ({:.1}%), cached {}, expected ${:.4} without the cache, ${:.4} with it",
        estimate.input_tokens,
        estimate.shared_prefix_tokens_total,
        share * 100.0,
        estimate.cached_input_tokens,
        estimate.expected_usd.unwrap(),
        estimate.expected_usd_with_cache.unwrap(),
    );
    assert!(share >= 0.70);
    // One set: the first request pays in full, the other 335 hit the cache in 128-token steps.
    let cached = 1024 + (shared - 1024) / 128 * 128;
    assert_eq!(estimate.cached_input_tokens, 335 * cached);
    // The default reasoning allowance (medium, 3,000 per lesson) is part of the output.
    assert_eq!(estimate.expected_reasoning_tokens, 336 * 3000);
    let price = settings.price_table().get("gpt-5-mini").copied().unwrap();
    let expected = price.batch_cost(estimate.input_tokens, 0, estimate.expected_output_tokens);
    let with_cache = price.batch_cost(
        estimate.input_tokens,
        estimate.cached_input_tokens,
        estimate.expected_output_tokens,
    );
    assert!((estimate.expected_usd.unwrap() - expected).abs() < 1e-9);
    assert!((estimate.expected_usd_with_cache.unwrap() - with_cache).abs() < 1e-9);
    // The input part of the bill shrinks by at least half.
    let input_cost = |cached| price.batch_cost(estimate.input_tokens, cached, 0);
    assert!(input_cost(estimate.cached_input_tokens) < 0.5 * input_cost(0));

    // gpt-4o-mini has no batch cache discount: the prefix is reported, the cost is unchanged.
    let settings = RequestSettings::default();
    let requests = build_datagov(&Template::generic(), &settings);
    let estimate = batch_request::estimate(&requests, &settings);
    assert!(estimate.shared_prefix_tokens >= 1024);
    assert_eq!(estimate.cached_input_tokens, 0);
    assert_eq!(estimate.expected_reasoning_tokens, 0);
    assert_eq!(estimate.expected_usd_with_cache, estimate.expected_usd);
}

#[test]
fn shards_assume_one_full_price_request_each() {
    let settings = RequestSettings {
        model: "gpt-5-nano".to_owned(),
        ..RequestSettings::default()
    };
    let requests = build_datagov(&Template::generic(), &settings);
    let dir = tempfile::tempdir().unwrap();
    let limits = batch_request::Limits {
        max_requests: 100,
        ..batch_request::Limits::default()
    };
    let shards =
        batch_request::write_shards(&requests, dir.path(), "job", limits, &settings).unwrap();
    assert_eq!(shards.len(), 4);
    let total = batch_request::Estimate::total(shards.iter().map(|shard| &shard.estimate));
    let whole = batch_request::estimate(&requests, &settings);
    assert_eq!(total.shared_prefix_tokens, whole.shared_prefix_tokens);
    assert_eq!(
        total.shared_prefix_tokens_total,
        whole.shared_prefix_tokens_total
    );
    let per_request = whole.cached_input_tokens / 335;
    // Four shards, four requests at full price.
    assert_eq!(total.cached_input_tokens, (336 - 4) * per_request);
}

#[test]
fn legacy_templates_keep_one_user_message() {
    let template =
        Template::from_file(&crate::support::fixture(crate::support::LEGACY_TEMPLATE)).unwrap();
    let requests = build_datagov(&template, &RequestSettings::default());
    assert!(
        requests
            .iter()
            .all(|request| request.request.body.messages.len() == 1
                && request.request.body.messages[0].role == "user")
    );
    let estimate = batch_request::estimate(&requests, &RequestSettings::default());
    assert_eq!(estimate.shared_prefix_tokens, 0);
}
