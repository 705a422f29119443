//! Shard files: request lines split into `<job>_input_001.jsonl`, ... within the Batch API's
//! per-file limits, one model per file, `custom_id`s unique across the job.

use std::borrow::Borrow;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use crate::jsonl::encode_line;
use crate::{Error, Estimate, Estimator, LessonRequest, RequestSettings};

/// Per-file limits of a batch input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most requests in one file (OpenAI: 50,000).
    pub max_requests: usize,
    /// Most bytes in one file, newlines included (OpenAI: 209,715,200, i.e. 200 MiB).
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_requests: 50_000,
            max_bytes: 209_715_200,
        }
    }
}

/// One written shard file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// The file, `<dir>/<job>_input_001.jsonl`.
    pub path: PathBuf,
    /// Number of request lines.
    pub requests: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// The requests' ids, in file order.
    pub custom_ids: Vec<String>,
    /// The one model all its requests name.
    pub model: String,
    /// Tokens and cost of its requests.
    pub estimate: Estimate,
}

/// Writes lesson requests into shard files as they come, keeping each shard within the
/// [`Limits`]. Shards go to temp files in the target directory and are renamed into place only
/// by [`ShardWriter::finish`], so a failed job leaves no partial set of shards behind.
#[derive(Debug)]
pub struct ShardWriter {
    dir: PathBuf,
    job_name: String,
    limits: Limits,
    estimator: Estimator,
    /// custom_id -> (title, outline line) of the lesson that used it.
    seen: FxHashMap<String, (String, usize)>,
    open: Option<OpenShard>,
    closed: Vec<(Shard, NamedTempFile)>,
    buffer: Vec<u8>,
}

#[derive(Debug)]
struct OpenShard {
    file: BufWriter<NamedTempFile>,
    shard: Shard,
}

impl ShardWriter {
    /// Prepares to write shards of `job_name` into `dir` (which must exist).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLimits`] for a zero limit, [`Error::InvalidJobName`] for a name that is
    /// empty or holds anything but letters, digits, `-`, `_` and `.`.
    pub fn new(
        dir: &Path,
        job_name: &str,
        limits: Limits,
        settings: &RequestSettings,
    ) -> Result<ShardWriter, Error> {
        if limits.max_requests == 0 || limits.max_bytes == 0 {
            return Err(Error::InvalidLimits {
                reason: format!(
                    "max_requests ({}) and max_bytes ({}) must both be at least 1",
                    limits.max_requests, limits.max_bytes
                ),
            });
        }
        let name_ok = !job_name.is_empty()
            && !job_name.starts_with('.')
            && job_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(Error::InvalidJobName {
                name: job_name.to_owned(),
            });
        }
        Ok(ShardWriter {
            dir: dir.to_owned(),
            job_name: job_name.to_owned(),
            limits,
            estimator: Estimator::new(settings),
            seen: FxHashMap::default(),
            open: None,
            closed: Vec::new(),
            buffer: Vec::new(),
        })
    }

    /// Adds one request to the current shard, starting a new shard when a limit would be
    /// passed or the model changes.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateCustomId`] when an earlier request of the job has the same id,
    /// [`Error::RequestTooLarge`] when the line alone passes the byte limit,
    /// [`Error::WriteShard`] when the temp file cannot be created or written.
    pub fn push(&mut self, request: &LessonRequest) -> Result<(), Error> {
        let custom_id = &request.request.custom_id;
        if let Some((first_title, first_line)) = self.seen.get(custom_id) {
            return Err(Error::DuplicateCustomId {
                custom_id: custom_id.clone(),
                first_title: first_title.clone(),
                first_line: *first_line,
                second_title: request.title.clone(),
                second_line: request.line,
            });
        }
        self.buffer.clear();
        encode_line(&mut self.buffer, &request.request, custom_id)?;
        let bytes = self.buffer.len() as u64;
        if bytes > self.limits.max_bytes {
            return Err(Error::RequestTooLarge {
                custom_id: custom_id.clone(),
                bytes,
                max_bytes: self.limits.max_bytes,
            });
        }
        let model = &request.request.body.model;
        let fits = self.open.as_ref().is_some_and(|open| {
            open.shard.requests < self.limits.max_requests
                && open.shard.bytes + bytes <= self.limits.max_bytes
                && open.shard.model == *model
        });
        if !fits {
            self.close_open()?;
            self.open = Some(self.start(model)?);
        }
        let open = self.open.as_mut().expect("a shard was just opened");
        open.file
            .write_all(&self.buffer)
            .map_err(|source| Error::WriteShard {
                path: open.shard.path.clone(),
                source,
            })?;
        open.shard.requests += 1;
        open.shard.bytes += bytes;
        open.shard.custom_ids.push(custom_id.clone());
        self.estimator.add(request);
        self.seen
            .insert(custom_id.clone(), (request.title.clone(), request.line));
        Ok(())
    }

    /// Closes the last shard and renames every shard into place; returns them in order.
    ///
    /// # Errors
    ///
    /// [`Error::WriteShard`] when a file cannot be flushed, synced or renamed.
    pub fn finish(mut self) -> Result<Vec<Shard>, Error> {
        self.close_open()?;
        let mut shards = Vec::with_capacity(self.closed.len());
        for (shard, file) in self.closed {
            file.persist(&shard.path).map_err(|err| Error::WriteShard {
                path: shard.path.clone(),
                source: err.error,
            })?;
            shards.push(shard);
        }
        Ok(shards)
    }

    fn start(&self, model: &str) -> Result<OpenShard, Error> {
        let number = self.closed.len() + 1;
        let path = self
            .dir
            .join(format!("{}_input_{number:03}.jsonl", self.job_name));
        let file = NamedTempFile::new_in(&self.dir).map_err(|source| Error::WriteShard {
            path: path.clone(),
            source,
        })?;
        Ok(OpenShard {
            file: BufWriter::with_capacity(1 << 20, file),
            shard: Shard {
                path,
                requests: 0,
                bytes: 0,
                custom_ids: Vec::new(),
                model: model.to_owned(),
                estimate: Estimate::default(),
            },
        })
    }

    fn close_open(&mut self) -> Result<(), Error> {
        let Some(OpenShard { file, mut shard }) = self.open.take() else {
            return Ok(());
        };
        let write_error = |source| Error::WriteShard {
            path: shard.path.clone(),
            source,
        };
        let file = file
            .into_inner()
            .map_err(|err| write_error(err.into_error()))?;
        file.as_file().sync_all().map_err(write_error)?;
        shard.estimate = self.estimator.take();
        self.closed.push((shard, file));
        Ok(())
    }
}

/// Writes `requests` into shard files `<dir>/<job_name>_input_001.jsonl`, ... and returns them.
///
/// ```
/// use batch_request::{Limits, RequestSettings, Template};
///
/// let outline = "# M0: Basics — Lesson Map\n## L001: One [F]\n## L002: Two [I]\n## L003: Three [A]\n";
/// let curriculum = curriculum_parser::parse(outline, "outline.md".as_ref()).unwrap();
/// let template = Template::parse("Write {{lesson_title}}.", "t.md".as_ref())?;
/// let settings = RequestSettings::default();
/// let requests = batch_request::build_requests(&curriculum, outline, curriculum.lessons(), &template, &settings)?;
/// let dir = tempfile::tempdir().unwrap();
/// let limits = Limits { max_requests: 2, ..Limits::default() };
/// let shards = batch_request::write_shards(&requests, dir.path(), "datagov", limits, &settings)?;
/// assert_eq!(shards.len(), 2);
/// assert!(shards[1].path.ends_with("datagov_input_002.jsonl"));
/// assert_eq!(shards[1].custom_ids, ["lesson_M0-L003"]);
/// # Ok::<(), batch_request::Error>(())
/// ```
///
/// # Errors
///
/// As [`ShardWriter::new`], [`ShardWriter::push`] and [`ShardWriter::finish`]; on error no
/// shard file is left behind.
pub fn write_shards<I>(
    requests: I,
    dir: &Path,
    job_name: &str,
    limits: Limits,
    settings: &RequestSettings,
) -> Result<Vec<Shard>, Error>
where
    I: IntoIterator,
    I::Item: Borrow<LessonRequest>,
{
    let mut writer = ShardWriter::new(dir, job_name, limits, settings)?;
    for request in requests {
        writer.push(request.borrow())?;
    }
    writer.finish()
}
