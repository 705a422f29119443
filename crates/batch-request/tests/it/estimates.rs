//! Estimates over the Data Governance fixture: the chunk-cache shortcut against an exact count,
//! output tokens and costs.

use batch_request::{Estimator, RequestSettings, Template};

use crate::support::build_datagov;

#[test]
fn shortcut_matches_exact_count_over_the_fixture() {
    let settings = RequestSettings::default();
    let requests = build_datagov(&Template::generic(), &settings);
    let mut estimator = Estimator::new(&settings);
    let mut shortcut = 0;
    let mut exact = 0;
    for request in &requests {
        let fast = estimator.add(request).input;
        let slow = Estimator::exact_input_tokens(&request.request.body);
        assert_eq!(fast, slow, "{}", request.code);
        shortcut += fast;
        exact += slow;
    }
    let error = (shortcut as f64 - exact as f64).abs() / exact as f64 * 100.0;
    println!(
        "input tokens over 336 lessons: shortcut {shortcut}, exact {exact}, error {error:.4}%"
    );
    let estimate = estimator.estimate();
    assert_eq!(estimate.input_tokens, exact);
    assert_eq!(estimate.requests, 336);
}

#[test]
fn output_tokens_and_costs_over_the_fixture() {
    let settings = RequestSettings::default();
    let requests = build_datagov(&Template::generic(), &settings);
    let estimate = batch_request::estimate(&requests, &settings);
    assert_eq!(estimate.max_output_tokens, 336 * 16384);
    let expected: u64 = requests
        .iter()
        .map(|r| u64::from(settings.expected_output_tokens(r.complexity)))
        .sum();
    assert_eq!(estimate.expected_output_tokens, expected);
    assert!(expected > 336 * 3750 && expected < 336 * 6500);
    let price = settings.price_table().get("gpt-4o-mini").copied().unwrap();
    let expected_usd = price.batch_cost(estimate.input_tokens, 0, expected);
    assert!((estimate.expected_usd.unwrap() - expected_usd).abs() < 1e-9);
    assert!((estimate.standard_usd.unwrap() - 2.0 * expected_usd).abs() < 1e-9);
    assert!(estimate.max_usd.unwrap() > estimate.expected_usd.unwrap());
    assert!(estimate.warnings.is_empty(), "{:?}", estimate.warnings);

    // A model with no price: tokens only, and a warning naming the setting.
    let settings = RequestSettings {
        model: "my-local-model".to_owned(),
        ..settings
    };
    let requests = build_datagov(&Template::generic(), &settings);
    let estimate = batch_request::estimate(&requests, &settings);
    assert!(estimate.input_tokens > 0);
    assert_eq!(
        (
            estimate.expected_usd,
            estimate.max_usd,
            estimate.standard_usd
        ),
        (None, None, None)
    );
    assert!(
        estimate
            .warnings
            .iter()
            .any(|w| w.contains("[prices.\"my-local-model\"]")),
        "{:?}",
        estimate.warnings
    );

    // ...until the settings give one.
    let settings = RequestSettings::from_toml_str(
        "model = \"my-local-model\"\n[prices.my-local-model]\ninput = 1.0\noutput = 2.0\n",
        "lessons.toml".as_ref(),
    )
    .unwrap();
    let estimate = batch_request::estimate(&requests, &settings);
    assert!(estimate.expected_usd.is_some());
}
