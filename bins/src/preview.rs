//! `generate-datagov-lessons-batch --preview`: the cost at standard prices, the question, and
//! the lessons' paths and actual cost. The workflow is `lesson_job`'s (`Job::plan_preview`,
//! `Job::preview`).

use std::sync::Arc;

use anyhow::Context;
use lesson_job::{Job, PreviewCost, PreviewOutcome, PreviewPlan, PreviewReport, Provider};
use secrecy::SecretString;
use serde_json::json;

use crate::ExitStatus;
use crate::format::{count, plural, usd};
use crate::generate::Args;
use crate::key::{self, KeySource};
use crate::progress::Reporter;
use crate::report::Billing;
use crate::term::Shown;

/// Runs a preview of `args.preview`'s lessons: prices them, asks above --confirm-above,
/// sends them and writes them to `<out>/preview/`.
///
/// # Errors
///
/// A lesson code that does not parse or is not in the outline (input), a refused question,
/// the key, the server, or writing the files.
pub async fn run(
    args: &Args,
    job: &Job,
    reporter: &Reporter,
    key: Option<(SecretString, KeySource)>,
) -> anyhow::Result<ExitStatus> {
    let codes = args
        .preview
        .iter()
        .map(|code| crate::select::parse_code(code))
        .collect::<anyhow::Result<Vec<_>>>()?;
    reporter.say("Step 2: Building the preview requests (no batch)...");
    let plan = job.plan_preview(&codes)?;
    let billing = Billing::from_emulator(args.emulator);
    say_cost(reporter, &plan, billing);
    if let (Some(budget), Some(max)) = (args.budget, plan.cost.max_usd)
        && max > budget
    {
        return Err(lesson_job::Error::OverBudget { max, budget }.into());
    }
    crate::generate::confirm_cost(
        args,
        plan.cost.max_usd,
        plan.cost.expected_usd,
        job.curriculum().warnings.len(),
    )?;

    let interrupt = crate::interrupt::Interrupt::listen().context("cannot listen for Ctrl-C")?;
    // A preview creates no batch and no file on the server, so the emulator keeps nothing:
    // it runs in memory, and nothing of the preview lands in the job's folder.
    let emulator = crate::generate::start_emulator(args, reporter, None).await?;
    let provider = job.provider();
    let (api_key, base_url) = match (&emulator, key) {
        (Some(emulator), _) => (
            SecretString::from("emulator".to_owned()),
            key::emulator_url(provider, emulator),
        ),
        (None, key) => {
            let (api_key, source) = match key {
                Some(key) => key,
                None => key::load_api_key(
                    provider,
                    args.api.api_key_file.as_deref(),
                    crate::Command::Generate,
                )?,
            };
            let base_url = key::base_url(provider, args.api.base_url.as_deref());
            reporter.say(format!(
                "  Using the API key from {} with {}",
                Shown(&source),
                Shown(openai_batch_client::redacted_url(&base_url))
            ));
            (api_key, base_url)
        }
    };
    let bars = Arc::new(reporter.job_progress());
    let client = key::connect(provider, base_url, api_key, bars.clone())?;
    let endpoint = match provider {
        Provider::OpenAi => "the chat completions endpoint",
        Provider::Anthropic => "Anthropic's messages endpoint",
    };
    reporter.say(format!(
        "Step 3: Sending {} to {endpoint}...",
        plural(plan.cost.requests, "request")
    ));
    let outcome = tokio::select! {
        report = job.preview(&plan, client, &*bars) => Some(report),
        () = interrupt.pressed() => None,
    };
    bars.finish();
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    let Some(report) = outcome else {
        crate::output::errln!(
            "Interrupted: the preview's files written so far are in {}; nothing else was written.",
            Shown(plan.dir.display())
        );
        return Ok(ExitStatus::Interrupted);
    };
    let report = report.context("cannot finish the preview")?;
    say_report(reporter, &report, billing);
    if args.output.json {
        crate::print_json(&report_json(&plan.cost, &report))?;
    }
    Ok(if report.failed().next().is_some() {
        ExitStatus::Partial
    } else {
        ExitStatus::Success
    })
}

/// The estimate at standard prices, before anything is sent.
fn say_cost(reporter: &Reporter, plan: &PreviewPlan, billing: Billing) {
    let cost = &plan.cost;
    reporter.say(format!(
        "Preview: {} to {}, {} input tokens, {} output tokens expected ({} at most)",
        plural(cost.requests, "request"),
        Shown(&plan.model),
        count(cost.input_tokens),
        count(cost.expected_output_tokens),
        count(cost.max_output_tokens)
    ));
    reporter.say(format!(
        "  cost at standard prices (no batch discount): expected {}, upper bound {}{}",
        usd(cost.expected_usd),
        usd(cost.max_usd),
        billing.suffix()
    ));
}

/// Each lesson's path or failure, then the cost from the reported usage.
fn say_report(reporter: &Reporter, report: &PreviewReport, billing: Billing) {
    for lesson in &report.lessons {
        match &lesson.outcome {
            PreviewOutcome::Written { path, below_spec } => {
                reporter.say(format!("  {}: {}", lesson.code, Shown(path.display())));
                if let Some(short) = below_spec {
                    let mut what = Vec::new();
                    if short.words < short.min_words {
                        what.push(format!("{} of {} words", short.words, short.min_words));
                    }
                    if !short.missing_sections.is_empty() {
                        what.push(format!(
                            "missing {}",
                            Shown(short.missing_sections.join(", "))
                        ));
                    }
                    reporter.warn(format!(
                        "{} is below the quality bar ({}); a batch would keep it in rejected/",
                        lesson.code,
                        what.join("; ")
                    ));
                }
            }
            PreviewOutcome::Failed { kind, reason } => {
                reporter.warn(format!(
                    "{} got no lesson ({kind}): {}",
                    lesson.code,
                    Shown(reason)
                ));
            }
        }
    }
    reporter.say(format!(
        "Cost: {} at standard prices, from the usage reported ({} input and {} output tokens){}",
        usd(report.cost_usd),
        count(report.usage.prompt_tokens),
        count(report.usage.completion_tokens),
        billing.suffix()
    ));
    reporter.say(format!(
        "Preview only: nothing was written to the course, and no batch was created. The files are in {}.",
        Shown(report.dir.display())
    ));
}

/// The `--json` document of a preview.
fn report_json(estimate: &PreviewCost, report: &PreviewReport) -> serde_json::Value {
    let lessons: Vec<serde_json::Value> = report
        .lessons
        .iter()
        .map(|lesson| {
            let mut entry = json!({
                "lesson_code": lesson.code.to_string(),
                "title": lesson.title,
                "usage": lesson.usage,
                "cost_usd": lesson.cost_usd,
            });
            match &lesson.outcome {
                PreviewOutcome::Written { path, below_spec } => {
                    entry["status"] = json!("written");
                    entry["path"] = json!(path);
                    entry["below_spec"] = json!(below_spec.as_ref().map(|short| json!({
                        "words": short.words,
                        "min_words": short.min_words,
                        "missing_sections": short.missing_sections,
                    })));
                }
                PreviewOutcome::Failed { kind, reason } => {
                    entry["status"] = json!("failed");
                    entry["failure_kind"] = json!(kind);
                    entry["reason"] = json!(reason);
                }
            }
            entry
        })
        .collect();
    json!({
        "preview": true,
        "dir": report.dir,
        "model": report.model,
        "estimate": {
            "requests": estimate.requests,
            "input_tokens": estimate.input_tokens,
            "expected_output_tokens": estimate.expected_output_tokens,
            "max_output_tokens": estimate.max_output_tokens,
            "expected_usd": estimate.expected_usd,
            "max_usd": estimate.max_usd,
            "prices": "standard",
        },
        "lessons": lessons,
        "usage": report.usage,
        "cost_usd": report.cost_usd,
    })
}
