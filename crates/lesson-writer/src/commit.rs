//! The in-order half of a run: joins results per lesson, writes files, counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::PathBuf;

use curriculum_parser::LessonCode;

use crate::examine::{Answer, Done, LineResult};
use crate::output::{FileWriter, WriteOutcome, path_in, write_atomic};
use crate::summary::{
    Duplicate, Failure, Location, MAX_MALFORMED_LISTED, Malformed, ModelUsage, Skipped, UsageTotals,
};
use crate::{Error, Overwrite, ProcessConfig, REJECTED_DIR, Summary};

/// The first line seen for a lesson code, and whether it was a success.
struct Kept {
    location: Location,
    success: bool,
}

/// The in-order half of the pipeline: joins lines per lesson, writes, counts.
pub(crate) struct Commit<'c> {
    config: &'c ProcessConfig<'c>,
    writer: &'c dyn FileWriter,
    paths: &'c [PathBuf],
    summary: Summary,
    kept: HashMap<LessonCode, Kept>,
    failures: BTreeMap<LessonCode, Failure>,
    seen_ids: HashSet<String>,
    models: BTreeMap<String, UsageTotals>,
    rejected_dir_ready: bool,
}

impl<'c> Commit<'c> {
    pub(crate) fn new(
        config: &'c ProcessConfig<'c>,
        writer: &'c dyn FileWriter,
        paths: &'c [PathBuf],
    ) -> Self {
        Commit {
            config,
            writer,
            paths,
            summary: Summary::default(),
            kept: HashMap::new(),
            failures: BTreeMap::new(),
            seen_ids: HashSet::new(),
            models: BTreeMap::new(),
            rejected_dir_ready: false,
        }
    }

    pub(crate) fn commit(&mut self, done: Done) -> Result<(), Error> {
        self.summary.lines_read += 1;
        let location = Location {
            file: self.paths[done.input].clone(),
            line: done.line,
        };
        let parsed = match done.result {
            LineResult::Malformed(reason) => {
                tracing::debug!(%location, %reason, "malformed line");
                self.summary.malformed_count += 1;
                if self.summary.malformed.len() < MAX_MALFORMED_LISTED {
                    self.summary.malformed.push(Malformed { location, reason });
                }
                return Ok(());
            }
            LineResult::Parsed(parsed) => *parsed,
        };
        if let Some(usage) = &parsed.usage {
            self.summary.usage.add(usage);
            let model = parsed.model.clone().unwrap_or_else(|| "unknown".to_owned());
            self.models.entry(model).or_default().add(usage);
        }
        self.seen_ids.insert(parsed.custom_id.clone());
        let success = matches!(parsed.answer, Answer::Lesson { .. });
        if let Some(kept) = self.kept.get(&parsed.code) {
            // A success after a failure replaces it; anything else is a duplicate.
            if kept.success || !success {
                tracing::debug!(%location, kept = %kept.location, "duplicate result");
                self.summary.duplicates.push(Duplicate {
                    custom_id: parsed.custom_id,
                    lesson_code: parsed.code.to_string(),
                    location,
                    kept: kept.location.clone(),
                });
                return Ok(());
            }
            if let Some(failure) = self.failures.remove(&parsed.code) {
                self.summary.duplicates.push(Duplicate {
                    custom_id: failure.custom_id,
                    lesson_code: failure.lesson_code,
                    location: failure.location,
                    kept: location.clone(),
                });
            }
        }
        self.kept.insert(
            parsed.code,
            Kept {
                location: location.clone(),
                success,
            },
        );
        let title = self
            .config
            .curriculum
            .and_then(|curriculum| curriculum.lesson(parsed.code))
            .map(|lesson| lesson.title.as_str());
        let file_name = self.config.file_name.file_name(parsed.code, title);
        match parsed.answer {
            Answer::Lesson {
                text,
                rules,
                truncated,
            } => {
                for rule in rules {
                    *self.summary.rules_applied.entry(rule).or_default() += 1;
                }
                let path = path_in(&self.config.out_dir, &file_name)?;
                let outcome = write_atomic(
                    &path,
                    &text,
                    self.config.overwrite,
                    &parsed.custom_id,
                    self.writer,
                )?;
                tracing::debug!(path = %path.display(), ?outcome, "lesson");
                match outcome {
                    WriteOutcome::Created | WriteOutcome::Replaced => {
                        self.summary.written += 1;
                        self.summary.replaced += u64::from(outcome == WriteOutcome::Replaced);
                        self.summary.written_truncated += u64::from(truncated);
                    }
                    WriteOutcome::Unchanged => self.summary.unchanged += 1,
                    WriteOutcome::SkippedExisting => self.summary.skipped_existing.push(Skipped {
                        custom_id: parsed.custom_id,
                        path,
                    }),
                }
            }
            Answer::Failed {
                failed,
                rejected_text,
            } => {
                let rejected_file = match rejected_text {
                    Some(text) => Some(self.keep_rejected(&file_name, &text, &parsed.custom_id)?),
                    None => None,
                };
                let failure = Failure {
                    custom_id: parsed.custom_id,
                    lesson_code: parsed.code.to_string(),
                    retryable: failed.kind.retryable(),
                    kind: failed.kind,
                    code: failed.code,
                    reason: failed.reason,
                    status: failed.status,
                    location,
                    rejected_file,
                };
                self.failures.insert(parsed.code, failure);
            }
        }
        Ok(())
    }

    /// Keeps a truncated answer's text in `rejected/` for inspection.
    fn keep_rejected(
        &mut self,
        file_name: &str,
        text: &str,
        custom_id: &str,
    ) -> Result<PathBuf, Error> {
        let dir = self.config.out_dir.join(REJECTED_DIR);
        if !self.rejected_dir_ready {
            fs::create_dir_all(&dir).map_err(|source| Error::CreateDir {
                path: dir.clone(),
                source,
            })?;
            self.rejected_dir_ready = true;
        }
        let path = path_in(&dir, file_name)?;
        if write_atomic(&path, text, Overwrite::Allow, custom_id, self.writer)?
            != WriteOutcome::Unchanged
        {
            self.summary.rejected_files += 1;
        }
        Ok(path)
    }

    pub(crate) fn finish(mut self) -> Summary {
        let mut summary = self.summary;
        summary.failures = std::mem::take(&mut self.failures).into_values().collect();
        if let Some(expected) = &self.config.expected {
            summary.missing = expected
                .iter()
                .filter(|id| !self.seen_ids.contains(*id))
                .cloned()
                .collect();
            let mut unexpected: Vec<String> = self
                .seen_ids
                .into_iter()
                .filter(|id| !expected.contains(id))
                .collect();
            unexpected.sort();
            summary.unexpected = unexpected;
        }
        let mut total_cost = None;
        for (model, usage) in self.models {
            let cost_usd = self.config.prices.get(&model).map(|price| {
                price.batch_cost(
                    usage.prompt_tokens,
                    usage.cached_tokens,
                    usage.completion_tokens,
                )
            });
            match cost_usd {
                Some(cost) => *total_cost.get_or_insert(0.0) += cost,
                None => summary.unpriced_models.push(model.clone()),
            }
            summary.models.insert(model, ModelUsage { usage, cost_usd });
        }
        summary.cost_usd = total_cost;
        summary
    }
}
