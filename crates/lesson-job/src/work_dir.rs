//! What a work dir holds across jobs: every job folder's ledger, for `check-batch-status`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use curriculum_parser::LessonCode;
use openai_batch_client::{BatchId, Ledger};

use crate::Error;
use crate::identity::{Fingerprint, LEDGER_FILE};
use crate::round::{SentLesson, read_requests};

/// A batch recorded by a job's ledger.
#[derive(Debug, Clone)]
pub struct RecordedBatch {
    /// The job folder.
    pub job_dir: PathBuf,
    /// What the job was made from (its output directory among it), when recorded.
    pub fingerprint: Option<Fingerprint>,
    /// The lessons the batch asked for, with their titles and request hashes.
    pub lessons: BTreeMap<LessonCode, SentLesson>,
}

/// Every job ledger of `work_dir` (`<work-dir>/*/ledger.json`); none when it does not exist.
fn ledgers(work_dir: &Path) -> Result<Vec<(PathBuf, Ledger)>, Error> {
    let entries = match fs::read_dir(work_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::io("list", work_dir, source)),
    };
    let mut ledgers = Vec::new();
    for entry in entries {
        let dir = entry
            .map_err(|source| Error::io("list", work_dir, source))?
            .path();
        let path = dir.join(LEDGER_FILE);
        if path.is_file() {
            ledgers.push((dir, Ledger::load(&path)?));
        }
    }
    Ok(ledgers)
}

/// The batch of the ledger entry updated last, across the work dir's jobs.
///
/// # Errors
///
/// [`Error::Io`] when the work dir cannot be listed, [`Error::Client`] for a ledger that
/// cannot be read.
pub fn latest_batch(work_dir: &Path) -> Result<Option<BatchId>, Error> {
    Ok(ledgers(work_dir)?
        .into_iter()
        .flat_map(|(_, ledger)| ledger.shards)
        .filter_map(|shard| Some((shard.updated_at, shard.batch_id?)))
        .max_by_key(|(at, _)| *at)
        .map(|(_, id)| id))
}

/// The job and lessons of `batch_id`, when a ledger of the work dir recorded it.
///
/// # Errors
///
/// As [`latest_batch`], and [`Error::Io`] / [`Error::JobFile`] for the shard's requests file.
pub fn recorded_batch(work_dir: &Path, batch_id: &BatchId) -> Result<Option<RecordedBatch>, Error> {
    for (dir, ledger) in ledgers(work_dir)? {
        if let Some(shard) = ledger
            .shards
            .iter()
            .find(|shard| shard.batch_id.as_ref() == Some(batch_id))
        {
            return Ok(Some(RecordedBatch {
                job_dir: dir,
                fingerprint: serde_json::from_value(serde_json::Value::Object(
                    ledger.context.clone(),
                ))
                .ok(),
                lessons: read_requests(&shard.input_path)?,
            }));
        }
    }
    Ok(None)
}
