//! The in-order half of a run: joins results per lesson, writes files, counts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;

use curriculum_parser::LessonCode;

use crate::examine::{Answer, Done, LineResult};
use crate::output::{FileWriter, WriteOutcome, path_in, policy, sha256_hex, write_atomic};
use crate::summary::{
    Duplicate, Failure, Kept as KeptFile, LessonOutcome, Location, MAX_MALFORMED_LISTED, Malformed,
    ModelUsage, UsageTotals,
};
use crate::{Error, KeptReason, LessonUsage, ManifestEntry, ProcessConfig, REJECTED_DIR, Summary};

/// The first line seen for a lesson code, and whether it was a success.
struct Kept {
    location: Location,
    success: bool,
}

/// The in-order half of the pipeline: joins lines per lesson, writes, counts.
pub(crate) struct Commit<'c> {
    config: &'c ProcessConfig<'c>,
    writer: &'c dyn FileWriter,
    paths: &'c [(PathBuf, Option<String>)],
    summary: Summary,
    kept: HashMap<LessonCode, Kept>,
    failures: BTreeMap<LessonCode, Failure>,
    seen: BTreeSet<LessonCode>,
    unexpected: BTreeSet<LessonCode>,
    models: BTreeMap<String, UsageTotals>,
    rejected_dir_ready: bool,
}

impl<'c> Commit<'c> {
    pub(crate) fn new(
        config: &'c ProcessConfig<'c>,
        writer: &'c dyn FileWriter,
        paths: &'c [(PathBuf, Option<String>)],
    ) -> Self {
        Commit {
            config,
            writer,
            paths,
            summary: Summary::default(),
            kept: HashMap::new(),
            failures: BTreeMap::new(),
            seen: BTreeSet::new(),
            unexpected: BTreeSet::new(),
            models: BTreeMap::new(),
            rejected_dir_ready: false,
        }
    }

    pub(crate) fn commit(&mut self, done: Done) -> Result<(), Error> {
        self.summary.lines_read += 1;
        let (file, batch_id) = &self.paths[done.input];
        let location = Location {
            file: file.clone(),
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
        if self
            .config
            .accept
            .as_ref()
            .is_some_and(|accept| !accept.contains(&parsed.code))
        {
            tracing::debug!(%location, code = %parsed.code, "result for a lesson not expected");
            self.unexpected.insert(parsed.code);
            return Ok(());
        }
        self.seen.insert(parsed.code);
        let success = matches!(parsed.answer, Answer::Lesson { .. });
        if let Some(kept) = self.kept.get(&parsed.code) {
            // A success after a failure replaces it; anything else is a duplicate.
            if kept.success || !success {
                tracing::debug!(%location, kept = %kept.location, "duplicate result");
                self.summary.duplicates.push(Duplicate {
                    custom_id: parsed.custom_id,
                    lesson_code: parsed.code,
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
        let title = self.config.title_of(parsed.code);
        let file_name = self.file_name(parsed.code, title);
        match parsed.answer {
            Answer::Lesson {
                text,
                rules,
                truncated,
                below_spec,
            } => {
                for rule in rules {
                    *self.summary.rules_applied.entry(rule).or_default() += 1;
                }
                let path = path_in(&self.config.out_dir, &file_name)?;
                let recorded = self
                    .config
                    .manifest
                    .and_then(|manifest| manifest.lessons.get(&parsed.code))
                    .map(|entry| entry.file_sha256.as_str());
                let overwrite = self.config.overwrite;
                let may_replace = |existing: &[u8]| policy(overwrite, recorded, existing);
                let outcome =
                    write_atomic(&path, &text, &may_replace, &parsed.custom_id, self.writer)?;
                tracing::debug!(path = %path.display(), ?outcome, "lesson");
                let lesson_outcome = match outcome {
                    WriteOutcome::Created | WriteOutcome::Replaced => {
                        self.summary.written += 1;
                        self.summary.replaced += u64::from(outcome == WriteOutcome::Replaced);
                        self.summary.written_truncated += u64::from(truncated);
                        self.summary.written_below_spec += u64::from(below_spec);
                        LessonOutcome::Written
                    }
                    WriteOutcome::Unchanged => {
                        self.summary.unchanged += 1;
                        LessonOutcome::Unchanged
                    }
                    WriteOutcome::Kept(reason) => {
                        self.summary.kept.push(KeptFile {
                            lesson_code: parsed.code,
                            path,
                            reason,
                        });
                        LessonOutcome::Kept { reason }
                    }
                };
                if !matches!(lesson_outcome, LessonOutcome::Kept { .. }) {
                    let usage = parsed.usage.as_ref().map(|usage| LessonUsage {
                        prompt_tokens: usage.prompt_tokens,
                        cached_tokens: usage.cached_tokens(),
                        completion_tokens: usage.completion_tokens,
                    });
                    let cost_usd = match (&parsed.model, usage) {
                        (Some(model), Some(usage)) => self.config.prices.get(model).map(|price| {
                            price.batch_cost(
                                usage.prompt_tokens,
                                usage.cached_tokens,
                                usage.completion_tokens,
                            )
                        }),
                        _ => None,
                    };
                    let request = self
                        .config
                        .requests
                        .and_then(|requests| requests.get(&parsed.code));
                    self.summary.provenance.push((
                        parsed.code,
                        ManifestEntry {
                            file: file_name,
                            file_sha256: sha256_hex(text.as_bytes()),
                            request_sha256: request.map(|request| request.request_sha256.clone()),
                            title: title.map(str::to_owned),
                            model: parsed.model.clone(),
                            batch_id: batch_id.clone(),
                            usage,
                            cost_usd,
                            written_at: unix_now(),
                        },
                    ));
                }
                self.summary.outcomes.insert(parsed.code, lesson_outcome);
            }
            Answer::Failed {
                failed,
                rejected_text,
            } => {
                let rejected_file = match rejected_text {
                    Some(text) => Some(self.keep_rejected(&file_name, &text, &parsed.custom_id)?),
                    None => None,
                };
                self.summary
                    .outcomes
                    .insert(parsed.code, LessonOutcome::Failed { kind: failed.kind });
                let failure = Failure {
                    custom_id: parsed.custom_id,
                    lesson_code: parsed.code,
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

    /// The lesson's file name: the one the manifest recorded when that file is still
    /// there (a retitled lesson keeps its file), else the pattern's.
    fn file_name(&self, code: LessonCode, title: Option<&str>) -> String {
        let recorded = self
            .config
            .manifest
            .and_then(|manifest| manifest.lessons.get(&code))
            .map(|entry| entry.file.as_str())
            .filter(|name| {
                self.config.file_name.code_of(name) == Some(code)
                    && self.config.out_dir.join(name).is_file()
            });
        match recorded {
            Some(name) => name.to_owned(),
            None => self.config.file_name.file_name(code, title),
        }
    }

    /// Keeps a truncated, refused-in-text or below-spec answer's text in `rejected/` for
    /// inspection.
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
        let replace = |_: &[u8]| -> Result<(), KeptReason> { Ok(()) };
        if write_atomic(&path, text, &replace, custom_id, self.writer)? != WriteOutcome::Unchanged {
            self.summary.rejected_files += 1;
        }
        Ok(path)
    }

    pub(crate) fn finish(mut self) -> Summary {
        let mut summary = self.summary;
        summary.failures = std::mem::take(&mut self.failures).into_values().collect();
        if let Some(expected) = &self.config.expected {
            summary.missing = expected.difference(&self.seen).copied().collect();
            for code in &summary.missing {
                summary.outcomes.insert(*code, LessonOutcome::Missing);
            }
            if self.config.accept.is_none() {
                self.unexpected = self.seen.difference(expected).copied().collect();
            }
        }
        summary.unexpected = std::mem::take(&mut self.unexpected).into_iter().collect();
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

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}
