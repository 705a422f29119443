//! `check-batch-status --cleanup`: what the work dir's jobs left on the servers, deleted
//! through each job's provider (OpenAI's files, Anthropic's handed-on message batches).

use lesson_job::{Provider, ProviderClient};

use super::{Args, connect};
use crate::ExitStatus;
use crate::format::{plural, plural_as};
use crate::progress::Reporter;
use crate::term::Shown;

/// Cleans the work dir's jobs: those of `--provider`, else of every provider their ledgers
/// record, each through its own key and base URL.
///
/// # Errors
///
/// A usage error when one `--base-url` would serve both providers; the keys', ledgers' and
/// clients' errors.
pub(super) async fn run(args: &Args, reporter: &Reporter) -> anyhow::Result<ExitStatus> {
    let providers = match args.api.provider {
        Some(provider) => vec![provider],
        None => lesson_job::recorded_providers(&args.work_dir)?,
    };
    if providers.len() > 1 && args.api.base_url.is_some() {
        return Err(crate::usage_error(
            format!(
                "--base-url names one server, and the jobs in {} use both OpenAI's and Anthropic's batches; nothing was deleted",
                Shown(args.work_dir.display())
            ),
            Some(
                "add --provider openai or --provider anthropic (or set OPENAI_BASE_URL and ANTHROPIC_BASE_URL instead)",
            ),
        ));
    }
    // With no job recorded there is nothing to clean: OpenAI's key is still asked for,
    // as before there was a choice.
    let providers = if providers.is_empty() {
        vec![Provider::OpenAi]
    } else {
        providers
    };
    let mut status = ExitStatus::Success;
    let mut jobs = Vec::new();
    for provider in providers {
        let client = connect(provider, args, reporter)?;
        let (cleaned, job_status) = cleanup(&client, args, reporter).await?;
        jobs.extend(cleaned);
        if job_status != ExitStatus::Success {
            status = job_status;
        }
    }
    cleanup_summary(&jobs, status, args, reporter)
}

/// Cleans the work dir's jobs of `client`'s provider; says what was done per job.
async fn cleanup(
    client: &ProviderClient,
    args: &Args,
    reporter: &Reporter,
) -> anyhow::Result<(Vec<lesson_job::CleanedJob>, ExitStatus)> {
    let jobs =
        lesson_job::clean_up_remote_files(client, &args.work_dir, false, "check-batch-status")
            .await?;
    let mut status = ExitStatus::Success;
    for job in &jobs {
        let name = Shown(job.job_dir.display());
        if let Some(holder) = &job.skipped_locked {
            reporter.say(format!(
                "{name}: skipped, {}",
                crate::report::waiting_line(holder.as_ref())
                    .trim_end_matches("; waiting (Ctrl-C to stop)")
            ));
            status = ExitStatus::Failure;
            continue;
        }
        if job.files_deleted > 0 {
            reporter.say(match job.provider {
                Provider::OpenAi => format!(
                    "{name}: deleted {} of {} from the server",
                    plural(job.files_deleted, "file"),
                    plural_as(job.shards_cleaned, "finished batch", "finished batches")
                ),
                Provider::Anthropic => format!(
                    "{name}: deleted {} from Anthropic's server (their results with them)",
                    plural_as(
                        job.shards_cleaned,
                        "ended message batch",
                        "ended message batches"
                    )
                ),
            });
        }
        for error in &job.errors {
            reporter.warn(format!("{name}: {}", Shown(error)));
            status = ExitStatus::Failure;
        }
    }
    Ok((jobs, status))
}

/// The `--cleanup` summary (or its JSON rows) across providers.
fn cleanup_summary(
    jobs: &[lesson_job::CleanedJob],
    status: ExitStatus,
    args: &Args,
    reporter: &Reporter,
) -> anyhow::Result<ExitStatus> {
    let files: usize = jobs
        .iter()
        .filter(|job| job.provider == Provider::OpenAi)
        .map(|job| job.files_deleted)
        .sum();
    let batches: usize = jobs
        .iter()
        .filter(|job| job.provider == Provider::Anthropic)
        .map(|job| job.shards_cleaned)
        .sum();
    if args.output.json {
        let rows: Vec<serde_json::Value> = jobs
            .iter()
            .map(|job| {
                serde_json::json!({
                    "job_dir": job.job_dir,
                    "provider": job.provider,
                    "files_deleted": job.files_deleted,
                    "skipped_locked": job.skipped_locked.is_some(),
                    "errors": job.errors,
                })
            })
            .collect();
        crate::print_json(&rows)?;
    }
    reporter.say(match (files, batches) {
        (0, 0) => format!(
            "Nothing to delete: no finished batch in {} has files left on the server.",
            Shown(args.work_dir.display())
        ),
        (files, 0) => format!(
            "Deleted {} from the server; the local copies stay in the work dir.",
            plural(files, "file")
        ),
        (0, batches) => format!(
            "Deleted {} from the server; the downloaded results stay in the work dir.",
            plural_as(batches, "message batch", "message batches")
        ),
        (files, batches) => format!(
            "Deleted {} and {} from the servers; the local copies stay in the work dir.",
            plural(files, "file"),
            plural_as(batches, "message batch", "message batches")
        ),
    });
    Ok(status)
}
