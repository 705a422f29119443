//! Submission rounds in the work dir: the job's name and ledger, fresh shard names per round,
//! the shards themselves, and the lessons a round asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::path::Path;

use anyhow::Context;
use batch_request::{LessonRequest, Limits, RequestBuilder, RequestSettings, Shard, Template};
use curriculum_parser::{Curriculum, Lesson};
use openai_batch_client::{JobRunner, Ledger, ShardRecord};

use crate::generate::Args;

/// The job name: `--job`, else the outline's folder name, kept to `[A-Za-z0-9_-]`.
pub(crate) fn job_name(args: &Args) -> String {
    let raw = args.job.clone().unwrap_or_else(|| {
        args.content
            .parent()
            .and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = name.trim_matches('_').to_owned();
    if name.is_empty() {
        "lessons".to_owned()
    } else {
        name
    }
}

pub(crate) fn load_ledger(path: &Path) -> anyhow::Result<Option<Ledger>> {
    if !path.exists() {
        return Ok(None);
    }
    Ledger::load(path)
        .map(Some)
        .with_context(|| format!("cannot read the ledger {}", path.display()))
}

/// Shards whose results have not been handed on yet: they are attached to, never resubmitted.
pub(crate) fn pending(ledger: &Ledger) -> Vec<ShardRecord> {
    ledger
        .shards
        .iter()
        .filter(|shard| !shard.handed_on)
        .cloned()
        .collect()
}

pub(crate) fn archive_ledger(path: &Path) -> anyhow::Result<()> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let archived = path.with_extension(format!("archived-{stamp}.json"));
    std::fs::rename(path, &archived)
        .with_context(|| format!("cannot archive the ledger {}", path.display()))
}

/// The next round number: one more than any `<job>-rNN_input_*.jsonl` in the work dir, so a
/// round never reuses the file names of an earlier one.
pub(crate) fn next_round(work_dir: &Path, job: &str) -> anyhow::Result<u32> {
    let prefix = format!("{job}-r");
    let mut last = 0;
    let entries = match std::fs::read_dir(work_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(1),
        Err(err) => {
            return Err(anyhow::Error::new(err)
                .context(format!("cannot read the work dir {}", work_dir.display())));
        }
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(&prefix)
            && let Some((digits, _)) = rest.split_once("_input_")
            && let Ok(round) = digits.parse::<u32>()
        {
            last = last.max(round);
        }
    }
    Ok(last + 1)
}

#[allow(clippy::too_many_arguments)] // Each is a distinct input of one build step.
pub(crate) fn build_shards(
    curriculum: &Curriculum,
    outline_text: &str,
    template: &Template,
    settings: &RequestSettings,
    lessons: &[(&Lesson, Option<u32>)],
    work_dir: &Path,
    name: &str,
) -> anyhow::Result<Vec<Shard>> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create the work dir {}", work_dir.display()))?;
    let builder = RequestBuilder::new(curriculum, outline_text, template, settings);
    let requests = lessons
        .iter()
        .map(|(lesson, tokens)| {
            let mut request: LessonRequest = builder.build(lesson)?;
            if let Some(tokens) = tokens {
                request.request.body.max_completion_tokens = Some(*tokens);
            }
            Ok(request)
        })
        .collect::<Result<Vec<_>, batch_request::Error>>()?;
    Ok(batch_request::write_shards(
        &requests,
        work_dir,
        name,
        Limits::default(),
        settings,
    )?)
}

/// The custom ids of the shards that are not handed on yet (this round's requests).
pub(crate) fn round_custom_ids(
    runner: &JobRunner,
) -> anyhow::Result<BTreeMap<usize, BTreeSet<String>>> {
    let mut ids = BTreeMap::new();
    for shard in runner.shards().iter().filter(|shard| !shard.handed_on) {
        ids.insert(shard.index, shard_custom_ids(&shard.input_path)?);
    }
    Ok(ids)
}

/// The custom ids of a shard file, read line by line.
///
/// # Errors
///
/// When the file cannot be read or a line is not a request line.
pub fn shard_custom_ids(path: &Path) -> anyhow::Result<BTreeSet<String>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the shard {}", path.display()))?;
    let mut ids = BTreeSet::new();
    for line in batch_request::read_request_lines(BufReader::new(file)) {
        let (_, line) =
            line.with_context(|| format!("cannot read the shard {}", path.display()))?;
        ids.insert(line.custom_id);
    }
    Ok(ids)
}

/// A larger `max_completion_tokens` for a truncated lesson: double, within the model's
/// known output limit; `None` when the model allows no more.
pub(crate) fn larger_budget(model: &str, current: u32) -> Option<u32> {
    let limit = batch_request::max_output_tokens(model)?;
    let larger = current.saturating_mul(2).min(limit);
    (larger > current).then_some(larger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_never_reuse_an_earlier_rounds_names() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            next_round(&dir.path().join("missing"), "datagov").unwrap(),
            1
        );
        for name in [
            "datagov-r01_input_001.jsonl",
            "datagov-r03_input_002.jsonl",
            "datagov-dry-run_input_001.jsonl",
            "other-r09_input_001.jsonl",
            "datagov-r07_input_001_output.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        // r07 counts: its output file shares the round's prefix.
        assert_eq!(next_round(dir.path(), "datagov").unwrap(), 8);
        assert_eq!(next_round(dir.path(), "other").unwrap(), 10);
    }

    #[test]
    fn larger_budgets_stay_within_the_models_limit() {
        assert_eq!(larger_budget("gpt-4o-mini", 4000), Some(8000));
        assert_eq!(larger_budget("gpt-4o-mini", 16_384), None);
        assert_eq!(
            larger_budget("gpt-4o-mini-2024-07-18", 10_000),
            Some(16_384)
        );
        assert_eq!(larger_budget("gpt-5-mini", 16_384), Some(32_768));
        assert_eq!(larger_budget("llama3.1", 4000), None);
    }
}
