//! The job: open it (outline, identity), lock it, plan a run, execute it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use batch_request::{Estimate, Limits, Provider, RequestSettings, Template};
use curriculum_parser::{Curriculum, Lesson, LessonCode};
use lesson_writer::{
    FailureKind, FileNamePattern, Input, KeptReason, LessonOutcome, Manifest, Overwrite,
    ProcessConfig, QualityGate, RequestedLesson,
};
use openai_batch_client::{
    BatchId, BatchStatus, DEFAULT_INPUT_EXPIRY_SECS, JobConfig, JobProgress, JobRunner, Ledger,
    PollConfig, ShardInput, ShardRecord, TokenLimitBackoff,
};

use crate::identity::{
    Fingerprint, JOB_ID_KEY, JOB_NAME_KEY, JobId, JobPaths, TOOL_KEY, TOOL_NAME, job_name,
    sha256_hex,
};
use crate::lock::{JobLock, LockHolder, LockWait};
use crate::observer::{JobObserver, Step};
use crate::provider::{
    AnthropicRunner, BatchProvider, PROVIDER_KEY, ProviderClient, ledger_provider,
};
use crate::report::{
    BatchReport, BudgetStop, FailedLesson, JobReport, KeptLesson, Outcomes, ShardReport,
    StaleLesson,
};
use crate::round::{
    RequestHasher, RoundShard, SentLesson, build_round, quotable_outline, read_requests, round_of,
    shard_limits,
};
use crate::select::{
    LessonState, LessonStatus, Selection, check_selection, in_scope, lesson_states, stale_reason,
};
use crate::{Error, StaleReason};

/// What a job is made of.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The outline file.
    pub outline: PathBuf,
    /// Where lesson files go; it identifies the job.
    pub out_dir: PathBuf,
    /// Where job folders live (ledger, shards, downloads); may be shared by many jobs.
    pub work_dir: PathBuf,
    /// The job's readable name [default: the outline's folder name].
    pub name: Option<String>,
    /// The prompt template.
    pub template: Template,
    /// The request settings.
    pub settings: RequestSettings,
    /// How lesson files are named.
    pub file_name: FileNamePattern,
    /// The organization's enqueued-token limit for the model, overriding the settings' and
    /// the built-in Tier 1 table's (see [`Job::enqueued_token_limit`]).
    pub max_enqueued_tokens: Option<u64>,
    /// The batch API to use [default: from the model: `claude-*` is Anthropic's].
    pub provider: Option<Provider>,
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Submit, record and return without waiting.
    pub no_wait: bool,
    /// Resubmit retryable failures up to this many more rounds.
    pub retry_rounds: u32,
    /// Overwrite lessons that have a file, edited ones included (`--force`).
    pub force: bool,
    /// Polling pace.
    pub poll: PollConfig,
    /// The most this run may spend, in USD at batch prices: a retry round whose upper-bound
    /// cost, added to what the run's results cost so far, would pass it is not submitted.
    /// (The first round is checked before the run, with [`Plan::check_budget`].)
    pub budget: Option<f64>,
    /// Keep the output and error files on the server after the lessons are written (the
    /// input files are deleted either way).
    pub keep_remote_files: bool,
    /// `expires_after` of uploaded shards, in seconds (3,600 to 2,592,000), or `None` for the
    /// server's default (30 days). Default: [`DEFAULT_INPUT_EXPIRY_SECS`] (7 days).
    pub input_expires_after: Option<u64>,
    /// Waiting after `token_limit_exceeded` (1 minute doubling to 30, by default).
    pub token_limit_backoff: TokenLimitBackoff,
    /// Write answers below the settings' `[quality]` bar as lessons instead of keeping them
    /// in `rejected/` as `below_spec` failures.
    pub accept_below_spec: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            no_wait: false,
            retry_rounds: 1,
            force: false,
            poll: PollConfig::default(),
            budget: None,
            keep_remote_files: false,
            input_expires_after: Some(DEFAULT_INPUT_EXPIRY_SECS),
            token_limit_backoff: TokenLimitBackoff::default(),
            accept_below_spec: false,
        }
    }
}

/// An opened job: the parsed outline and the job's identity and paths.
#[derive(Debug)]
pub struct Job {
    spec: JobSpec,
    outline: PathBuf,
    outline_text: String,
    outline_sha256: String,
    curriculum: Curriculum,
    name: String,
    id: JobId,
    paths: JobPaths,
}

/// Unfinished work of an earlier run that a run attaches to instead of submitting again.
#[derive(Debug, Clone)]
pub struct AttachedShard {
    /// The shard's id in the ledger.
    pub id: String,
    /// Its batch, once created.
    pub batch_id: Option<BatchId>,
    /// Its lessons.
    pub lessons: Vec<LessonCode>,
}

/// What a run will do: attach to earlier work and submit a new round.
#[derive(Debug)]
pub struct Plan {
    /// Lessons in scope (after `--only` and `--modules`).
    pub in_scope: usize,
    /// Lessons in scope that have a file.
    pub already_generated: usize,
    /// Lessons in scope that are stale (selected only with `--stale`).
    pub stale: Vec<StaleLesson>,
    /// Stale lessons edited by hand: kept, not submitted.
    pub kept_edited: Vec<LessonCode>,
    /// Unfinished shards of earlier runs.
    pub attach: Vec<AttachedShard>,
    /// The new round's number.
    pub round: u32,
    /// The new round's shards (empty when every selected lesson has a file).
    pub shards: Vec<RoundShard>,
    /// The estimate of the new shards.
    pub estimate: Option<Estimate>,
    requested: BTreeSet<LessonCode>,
    kept_paths: BTreeMap<LessonCode, PathBuf>,
}

impl Plan {
    /// Whether there is nothing to submit or attach to.
    pub fn is_empty(&self) -> bool {
        self.attach.is_empty() && self.shards.is_empty()
    }

    /// The lessons the run is answerable for.
    pub fn requested(&self) -> &BTreeSet<LessonCode> {
        &self.requested
    }

    /// Refuses the plan when the upper-bound cost of its new requests exceeds `budget` USD
    /// (or cannot be known, the model having no price).
    ///
    /// # Errors
    ///
    /// [`Error::OverBudget`], [`Error::NoPrice`], [`Error::InvalidBudget`].
    pub fn check_budget(&self, budget: f64, model: &str) -> Result<(), Error> {
        if !budget.is_finite() || budget < 0.0 {
            return Err(Error::InvalidBudget { budget });
        }
        let Some(estimate) = &self.estimate else {
            return Ok(());
        };
        match estimate.max_usd {
            Some(max) if max > budget => Err(Error::OverBudget { max, budget }),
            Some(_) => Ok(()),
            None => Err(Error::NoPrice {
                model: model.to_owned(),
            }),
        }
    }

    /// Requests in the new shards.
    pub fn new_requests(&self) -> usize {
        self.shards.iter().map(|shard| shard.shard.requests).sum()
    }
}

impl Job {
    /// Reads and parses the outline and works out the job's identity. Creates nothing and
    /// takes no lock.
    ///
    /// # Errors
    ///
    /// [`Error::Outline`] when the outline cannot be read or parsed, [`Error::Io`] for the
    /// directories.
    pub fn open(spec: JobSpec) -> Result<Job, Error> {
        let bytes = fs::read(&spec.outline).map_err(|source| {
            Error::Outline(curriculum_parser::Error::Read {
                path: spec.outline.clone(),
                line: 0,
                source,
            })
        })?;
        let outline_sha256 = sha256_hex(&bytes);
        let outline_text = match String::from_utf8(bytes) {
            Ok(text) => text,
            // The parser names the line and byte of the bad UTF-8.
            Err(_) => {
                return Err(curriculum_parser::parse_file(&spec.outline)
                    .err()
                    .map_or_else(
                        || {
                            Error::io(
                                "read",
                                &spec.outline,
                                std::io::ErrorKind::InvalidData.into(),
                            )
                        },
                        Error::Outline,
                    ));
            }
        };
        let curriculum = curriculum_parser::parse(&outline_text, &spec.outline)?;
        let outline_text = quotable_outline(outline_text, &spec.settings);
        let outline = fs::canonicalize(&spec.outline)
            .map_err(|source| Error::io("resolve", &spec.outline, source))?;
        let name = job_name(&spec.name.clone().unwrap_or_else(|| {
            outline
                .parent()
                .and_then(Path::file_name)
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        }));
        let (paths, id) = JobPaths::new(&spec.out_dir, &spec.work_dir, &name)?;
        Ok(Job {
            spec,
            outline,
            outline_text,
            outline_sha256,
            curriculum,
            name,
            id,
            paths,
        })
    }

    /// What the job was opened with.
    pub(crate) fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The part of the outline's text that requests quote.
    pub(crate) fn outline_text(&self) -> &str {
        &self.outline_text
    }

    /// The parsed outline.
    pub fn curriculum(&self) -> &Curriculum {
        &self.curriculum
    }

    /// The outline file (canonical).
    pub fn outline(&self) -> &Path {
        &self.outline
    }

    /// The job's readable name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// Where the job's files are.
    pub fn paths(&self) -> &JobPaths {
        &self.paths
    }

    /// The request settings.
    pub fn settings(&self) -> &RequestSettings {
        &self.spec.settings
    }

    /// The batch API the job uses: the spec's, else the model's ([`Provider::for_model`]).
    pub fn provider(&self) -> Provider {
        self.spec
            .provider
            .unwrap_or_else(|| Provider::for_model(&self.spec.settings.model))
    }

    /// What the job is made from, as its ledger records it.
    pub fn fingerprint(&self) -> Fingerprint {
        let settings = serde_json::to_vec(&self.spec.settings).unwrap_or_default();
        Fingerprint {
            job_id: self.id.clone(),
            out_dir: self.paths.out_dir.clone(),
            outline: self.outline.clone(),
            outline_sha256: self.outline_sha256.clone(),
            template_sha256: self.spec.template.sha256().to_owned(),
            settings_sha256: sha256_hex(&settings),
            model: self.spec.settings.model.clone(),
        }
    }

    /// The state of every lesson of the outline (not generated, generated, stale, edited by
    /// hand), for listing. Reads the lesson files the manifest knows.
    ///
    /// # Errors
    ///
    /// [`Error::Writer`] when the output directory, the manifest or a lesson cannot be read.
    pub fn lesson_states(&self) -> Result<Vec<LessonStatus>, Error> {
        let manifest = Manifest::load(&self.paths.out_dir)?;
        let existing = lesson_writer::existing_lessons(&self.paths.out_dir, &self.spec.file_name)?;
        let hasher = self.hasher();
        lesson_states(
            &self.curriculum,
            &existing,
            &manifest,
            &hasher,
            &self.spec.settings.model,
            true,
        )
        .map(|state| state.map(|(_, status)| status))
        .collect()
    }

    /// Takes the job's lock for `command` (see [`JobLock::acquire`]).
    ///
    /// # Errors
    ///
    /// As [`JobLock::acquire`].
    pub fn lock(
        &self,
        command: &str,
        wait: LockWait,
        on_wait: impl FnOnce(Option<&LockHolder>),
    ) -> Result<JobLock, Error> {
        JobLock::acquire(&self.paths.out_dir, command, wait, on_wait)
    }

    /// Reads the output directory's manifest and claims the directory for this outline.
    /// A directory whose manifest names another outline is refused unless `force`.
    ///
    /// # Errors
    ///
    /// [`Error::OutDirOfAnotherOutline`], or [`Error::Writer`] when the manifest cannot be
    /// read or written.
    pub fn claim(&self, _lock: &JobLock, force: bool) -> Result<Manifest, Error> {
        let mut manifest = Manifest::load(&self.paths.out_dir)?;
        if let Some(owner) = &manifest.outline
            && *owner != self.outline
            && !force
        {
            return Err(Error::OutDirOfAnotherOutline {
                out_dir: self.paths.out_dir.clone(),
                owner: owner.clone(),
                outline: self.outline.clone(),
            });
        }
        if manifest.outline.as_ref() != Some(&self.outline)
            || manifest.job_id.as_deref() != Some(self.id.as_str())
        {
            manifest.outline = Some(self.outline.clone());
            manifest.job_id = Some(self.id.to_string());
            manifest.save(&self.paths.out_dir)?;
        }
        Ok(manifest)
    }

    /// Removes the temp files killed runs left in the output directory and in the job's
    /// folder: only names of this tool's making. Returns them.
    ///
    /// # Errors
    ///
    /// [`Error::Writer`] or [`Error::Io`] when a directory cannot be listed or a file removed.
    pub fn remove_leftovers(&self, _lock: &JobLock) -> Result<Vec<PathBuf>, Error> {
        let mut removed = lesson_writer::remove_leftovers(&self.paths.out_dir)?;
        for dir in [self.paths.dir.clone(), self.paths.dry_run_dir()] {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(Error::io("list", &dir, source)),
            };
            for entry in entries {
                let entry = entry.map_err(|source| Error::io("list", &dir, source))?;
                let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
                let name = entry.file_name();
                if is_file && name.to_str().is_some_and(is_job_temp_file) {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(|source| Error::io("remove", &path, source))?;
                    removed.push(path);
                }
            }
        }
        Ok(removed)
    }

    /// Whether the ledger has unfinished work (batches not yet written as lessons).
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the ledger cannot be read.
    pub fn unfinished(&self) -> Result<Vec<AttachedShard>, Error> {
        let Some(ledger) = self.ledger()? else {
            return Ok(Vec::new());
        };
        ledger
            .shards
            .iter()
            .filter(|shard| !shard.handed_on)
            .map(|shard| {
                Ok(AttachedShard {
                    id: shard.id.clone(),
                    batch_id: shard.batch_id.clone(),
                    lessons: read_requests(&shard.input_path)?.into_keys().collect(),
                })
            })
            .collect()
    }

    /// Stops tracking the ledger's unfinished batches (`--new`): the ledger is renamed to
    /// `ledger.archived-<unix time>.json`. Returns the new name, if there was a ledger.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when it cannot be renamed.
    pub fn archive_ledger(&self, _lock: &JobLock) -> Result<Option<PathBuf>, Error> {
        let path = self.paths.ledger();
        if !path.exists() {
            return Ok(None);
        }
        let archived = self
            .paths
            .dir
            .join(format!("ledger.archived-{}.json", crate::unix_now()));
        fs::rename(&path, &archived).map_err(|source| Error::io("archive", &path, source))?;
        Ok(Some(archived))
    }

    fn ledger(&self) -> Result<Option<Ledger>, Error> {
        let path = self.paths.ledger();
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(Ledger::load(&path)?))
    }

    fn hasher(&self) -> RequestHasher<'_> {
        RequestHasher::new(&self.curriculum, &self.spec.template, &self.spec.settings)
    }

    /// The limits new shards are cut to: the settings' batch size and a share of the
    /// model's enqueued-token limit ([`Job::enqueued_token_limit`]).
    fn shard_limits(&self) -> Limits {
        let mut limits = shard_limits(&self.spec.settings, self.enqueued_token_limit());
        if self.provider() == Provider::Anthropic {
            // A message batch's requests go inline in one create call, held in memory while
            // it is sent: smaller shards keep that bounded however large the course.
            limits.max_bytes = limits
                .max_bytes
                .min(crate::provider::anthropic::MAX_SHARD_BYTES);
        }
        limits
    }

    /// Decides what a run does: attach to the ledger's unfinished shards, and build a new
    /// round for the selected lessons that have no file (all of them with `force`; stale
    /// ones too with `stale`), minus those in unfinished shards. The new shards are written
    /// (into the job folder, or its `dry-run/` folder); nothing is sent.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownLesson`] / [`Error::UnknownModule`] for a selection outside the
    /// outline; [`batch_request::Error::OverContextWindow`] (in [`Error::Request`], an input
    /// error) when requests do not fit their model's context window, dry run or not, with no
    /// shard written; errors reading the ledger, the output directory or writing shards.
    pub fn plan(
        &self,
        manifest: &Manifest,
        selection: &Selection,
        dry_run: bool,
    ) -> Result<Plan, Error> {
        check_selection(&self.curriculum, selection, &self.spec.outline)?;
        let ledger = self.ledger()?;
        let mut attach = Vec::new();
        let mut round = 1;
        if let Some(ledger) = &ledger {
            for shard in &ledger.shards {
                round = round.max(round_of(&shard.id).map_or(1, |r| r + 1));
                if !shard.handed_on {
                    attach.push(AttachedShard {
                        id: shard.id.clone(),
                        batch_id: shard.batch_id.clone(),
                        lessons: read_requests(&shard.input_path)?.into_keys().collect(),
                    });
                }
            }
        }
        if let Some(ledger) = &ledger
            && !attach.is_empty()
            && ledger_provider(ledger) != self.provider()
        {
            return Err(Error::ProviderMismatch {
                ledger: ledger_provider(ledger),
                requested: self.provider(),
            });
        }
        let pending: BTreeSet<LessonCode> = attach
            .iter()
            .flat_map(|shard| shard.lessons.iter().copied())
            .collect();
        let existing = lesson_writer::existing_lessons(&self.paths.out_dir, &self.spec.file_name)?;
        let hasher = self.hasher();
        let states = lesson_states(
            &self.curriculum,
            &existing,
            manifest,
            &hasher,
            &self.spec.settings.model,
            selection.stale,
        );
        let mut in_scope_count = 0;
        let mut already_generated = 0;
        let mut stale = Vec::new();
        let mut kept_edited = Vec::new();
        let mut kept_paths = BTreeMap::new();
        let mut chosen: Vec<&Lesson> = Vec::new();
        for state in states {
            let (lesson, status) = state?;
            if !in_scope(selection, lesson) {
                continue;
            }
            in_scope_count += 1;
            if status.file.is_some() {
                already_generated += 1;
            }
            let is_stale = |lesson: &Lesson| {
                manifest.lessons.get(&lesson.code).is_some_and(|entry| {
                    entry
                        .request_sha256
                        .as_deref()
                        .is_some_and(|recorded| recorded != hasher.hash(lesson))
                })
            };
            let choose = match status.state {
                LessonState::NotGenerated => true,
                _ if selection.force => true,
                LessonState::Stale { reason } => {
                    stale.push(StaleLesson {
                        lesson_code: lesson.code,
                        reason,
                    });
                    selection.stale
                }
                LessonState::EditedByHand if selection.stale && is_stale(lesson) => {
                    kept_edited.push(lesson.code);
                    if let Some(path) = &status.file {
                        kept_paths.insert(lesson.code, path.clone());
                    }
                    false
                }
                _ => false,
            };
            // `--limit` counts lessons already on their way in an unfinished batch: those
            // are attached to, not submitted again.
            if choose && selection.limit.is_none_or(|limit| chosen.len() < limit) {
                chosen.push(lesson);
            }
        }
        let mut selected = chosen;
        selected.retain(|lesson| !pending.contains(&lesson.code));
        let shards = if selected.is_empty() {
            Vec::new()
        } else {
            let (dir, name) = if dry_run {
                (self.paths.dry_run_dir(), "dry-run".to_owned())
            } else {
                (self.paths.dir.clone(), format!("r{round:02}"))
            };
            build_round(
                &self.curriculum,
                &self.outline_text,
                &self.spec.template,
                &self.spec.settings,
                &self.id.to_string(),
                self.shard_limits(),
                selected.iter().map(|lesson| (*lesson, None)),
                &dir,
                &name,
            )?
        };
        let estimate = (!shards.is_empty())
            .then(|| Estimate::total(shards.iter().map(|shard| &shard.shard.estimate)));
        let mut requested: BTreeSet<LessonCode> =
            selected.iter().map(|lesson| lesson.code).collect();
        requested.extend(pending);
        requested.extend(kept_edited.iter().copied());
        Ok(Plan {
            in_scope: in_scope_count,
            already_generated,
            stale,
            kept_edited,
            attach,
            round,
            shards,
            estimate,
            requested,
            kept_paths,
        })
    }

    /// A report of a run that sent nothing (a dry run, nothing to do) or was interrupted:
    /// the lessons without an outcome are pending, and the batches are the ledger's
    /// unfinished ones.
    pub fn report_of(&self, plan: &Plan) -> JobReport {
        let mut report = self.empty_report(plan);
        if let Ok(Some(ledger)) = self.ledger() {
            report.batches = ledger
                .shards
                .iter()
                .filter(|shard| !shard.handed_on)
                .filter_map(batch_report)
                .collect();
        }
        let mut outcomes = Outcomes::default();
        self.add_kept(plan, &mut outcomes);
        outcomes.finish(plan.requested.iter().copied(), &mut report);
        report
    }

    fn empty_report(&self, plan: &Plan) -> JobReport {
        JobReport {
            job: self.name.clone(),
            job_id: Some(self.id.clone()),
            lessons_total: self.curriculum.lesson_count(),
            already_generated: plan.already_generated,
            estimate: plan.estimate.clone(),
            shards: (!plan.shards.is_empty()).then(|| {
                plan.shards
                    .iter()
                    .map(|shard| ShardReport {
                        path: shard.shard.path.clone(),
                        requests: shard.shard.requests,
                        bytes: shard.shard.bytes,
                    })
                    .collect()
            }),
            cost_usd: crate::report::CostReport {
                estimated: plan
                    .estimate
                    .as_ref()
                    .and_then(|estimate| estimate.expected_usd),
                actual: None,
            },
            ledger: Some(self.paths.ledger()),
            ..JobReport::default()
        }
    }

    fn add_kept(&self, plan: &Plan, outcomes: &mut Outcomes) {
        for code in &plan.kept_edited {
            outcomes.set(
                *code,
                LessonOutcome::Kept {
                    reason: KeptReason::EditedByHand,
                },
            );
            outcomes.kept.insert(
                *code,
                KeptLesson {
                    lesson_code: *code,
                    reason: KeptReason::EditedByHand,
                    path: plan.kept_paths.get(code).cloned().unwrap_or_default(),
                },
            );
        }
    }

    /// Runs the plan: submits its round (and any shard of the ledger not yet created), waits,
    /// downloads, writes the lessons and records them in the manifest, and resubmits
    /// retryable failures for up to `options.retry_rounds` more rounds. With
    /// `options.no_wait` it returns once submitted. Dropping the future stops waiting; the
    /// batches run on, and the next run attaches to them.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for API and ledger failures, [`Error::Writer`] for lesson files,
    /// [`Error::Request`] when a retry round cannot be built.
    pub async fn execute(
        &self,
        plan: &Plan,
        manifest: &mut Manifest,
        client: impl Into<ProviderClient>,
        options: &RunOptions,
        observer: Arc<dyn JobObserver>,
    ) -> Result<JobReport, Error> {
        let client = client.into();
        if client.provider() != self.provider() {
            return Err(Error::ProviderMismatch {
                ledger: self.provider(),
                requested: client.provider(),
            });
        }
        let progress: Arc<dyn JobProgress> = observer.clone();
        match client {
            ProviderClient::OpenAi(client) => {
                let runner = JobRunner::new(client, self.paths.ledger(), self.job_config(options))?
                    .with_progress(progress);
                self.run(&runner, plan, manifest, options, observer).await
            }
            ProviderClient::Anthropic(client) => {
                let runner = AnthropicRunner::new(
                    client,
                    self.paths.ledger(),
                    Some(self.paths.sent_batches()),
                    options.poll.clone(),
                    progress,
                )?;
                self.run(&runner, plan, manifest, options, observer).await
            }
        }
    }

    /// [`Job::execute`] through one provider's runner.
    async fn run(
        &self,
        runner: &impl BatchProvider,
        plan: &Plan,
        manifest: &mut Manifest,
        options: &RunOptions,
        observer: Arc<dyn JobObserver>,
    ) -> Result<JobReport, Error> {
        let fingerprint = serde_json::to_value(self.fingerprint()).unwrap_or_default();
        if let serde_json::Value::Object(mut context) = fingerprint {
            context.insert(
                PROVIDER_KEY.to_owned(),
                serde_json::Value::from(self.provider().as_str()),
            );
            runner.set_context(context)?;
        }
        let mut report = self.empty_report(plan);
        let mut outcomes = Outcomes::default();
        self.add_kept(plan, &mut outcomes);
        let mut requested = plan.requested.clone();
        let mut touched: BTreeSet<String> =
            plan.attach.iter().map(|shard| shard.id.clone()).collect();
        let mut round = plan.round;
        let mut inputs: Vec<ShardInput> = to_inputs(&plan.shards);
        let mut new_requests = plan.new_requests();
        let mut retries_left = options.retry_rounds;
        // Lessons already resubmitted once for an answer below spec: a second is final.
        let mut resubmitted_below_spec: BTreeSet<LessonCode> = BTreeSet::new();
        loop {
            observer.step(Step::Submitting {
                round,
                requests: new_requests,
                provider: self.provider(),
            });
            touched.extend(inputs.iter().map(|input| input.id.clone()));
            if !inputs.is_empty() {
                report.rounds += 1;
                report.requests_sent += new_requests;
            }
            if options.no_wait {
                runner.submit(&inputs).await?;
                break;
            }
            observer.step(Step::Waiting);
            runner.drive(&inputs, &self.paths.dir).await?;
            observer.step(Step::Writing {
                out_dir: &self.paths.out_dir,
            });
            let handed_on: Vec<usize> = runner.ready().iter().map(|shard| shard.index).collect();
            let mut retry = self.write_ready(
                runner,
                manifest,
                options,
                &mut outcomes,
                &mut report,
                &*observer,
            )?;
            requested.extend(outcomes.outcomes.keys().copied());
            resubmit_below_spec_once(&mut retry, &mut outcomes, &mut resubmitted_below_spec);
            for index in handed_on {
                if let Err(error) = runner.clean_up(index, options.keep_remote_files).await {
                    observer.step(Step::CleanupFailed { error: &error });
                }
            }
            if retry.is_empty() || retries_left == 0 {
                break;
            }
            retries_left -= 1;
            let codes: Vec<LessonCode> = retry.iter().map(|(lesson, _)| lesson.code).collect();
            round += 1;
            let shards = match build_round(
                &self.curriculum,
                &self.outline_text,
                &self.spec.template,
                &self.spec.settings,
                &self.id.to_string(),
                self.shard_limits(),
                retry.iter().copied(),
                &self.paths.dir,
                &format!("r{round:02}"),
            ) {
                // A larger budget for a truncated lesson can take its request past the
                // model's context window: the round is not sent and the lessons keep the
                // failures they have, as when the model allows no more output.
                Err(Error::Request(err @ batch_request::Error::OverContextWindow { .. })) => {
                    tracing::warn!(%err, "the retry round is not sent");
                    break;
                }
                built => built?,
            };
            if let Some(budget) = options.budget {
                let spent = report.cost_usd.actual.unwrap_or(0.0);
                let next = Estimate::total(shards.iter().map(|shard| &shard.shard.estimate));
                let next_usd = next.max_usd.unwrap_or(f64::INFINITY);
                if spent + next_usd > budget {
                    let stop = BudgetStop {
                        lessons: codes,
                        spent_usd: spent,
                        next_round_usd: next.max_usd,
                        budget_usd: budget,
                    };
                    observer.step(Step::BudgetReached(&stop));
                    report.budget_stopped = Some(stop);
                    remove_round(&shards);
                    break;
                }
            }
            observer.step(Step::Retrying {
                lessons: &codes,
                rounds_left: retries_left,
            });
            new_requests = shards.iter().map(|shard| shard.shard.requests).sum();
            inputs = to_inputs(&shards);
        }
        report.batches = runner
            .shards()
            .iter()
            .filter(|shard| touched.contains(&shard.id))
            .filter_map(batch_report)
            .collect();
        outcomes.finish(requested, &mut report);
        if !options.no_wait {
            // The lessons are written: a failures list that cannot be is noted in the report
            // (`failures_file_error`), not an error that would lose the summary.
            let _ = report.write_failures(&self.paths.failures());
        }
        Ok(report)
    }

    /// Writes the lessons of every downloaded shard not handed on yet, records them in the
    /// manifest, marks the shards handed on, and returns the lessons worth another round
    /// with their token budget.
    fn write_ready(
        &self,
        runner: &impl BatchProvider,
        manifest: &mut Manifest,
        options: &RunOptions,
        outcomes: &mut Outcomes,
        report: &mut JobReport,
        observer: &dyn JobObserver,
    ) -> Result<Vec<(&Lesson, Option<u32>)>, Error> {
        let ready = runner.ready();
        let mut sent: BTreeMap<LessonCode, SentLesson> = BTreeMap::new();
        let mut inputs = Vec::new();
        for shard in &ready {
            let lessons = read_requests(&shard.input_path)?;
            if shard.status == Some(BatchStatus::Failed) {
                report.batch_failed = true;
                let token_limit = shard.token_limit_exceeded();
                observer.step(Step::BatchFailed {
                    batch_id: shard.batch_id.as_ref(),
                    errors: &shard.errors,
                    token_limit,
                });
                let reason = shard
                    .errors
                    .iter()
                    .map(|error| {
                        format!(
                            "{}: {}",
                            error.code.as_deref().unwrap_or("error"),
                            error.message.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                for code in lessons.keys() {
                    outcomes.set(
                        *code,
                        LessonOutcome::Failed {
                            kind: FailureKind::NotRun,
                        },
                    );
                    outcomes.failures.insert(
                        *code,
                        FailedLesson {
                            custom_id: code.custom_id(),
                            lesson_code: *code,
                            kind: Some(FailureKind::NotRun),
                            code: if token_limit {
                                "token_limit_exceeded".to_owned()
                            } else {
                                "batch_failed".to_owned()
                            },
                            reason: format!("the batch failed validation; nothing ran: {reason}"),
                            retryable: token_limit,
                            rejected_file: None,
                        },
                    );
                }
                continue;
            }
            for path in [&shard.output_path, &shard.error_path]
                .into_iter()
                .flatten()
            {
                let mut input = Input::open(path)?;
                if let Some(batch_id) = &shard.batch_id {
                    input = input.from_batch(batch_id.to_string());
                }
                inputs.push(input);
            }
            sent.extend(lessons);
        }
        let mut retry = Vec::new();
        if !sent.is_empty() {
            let expected: BTreeSet<LessonCode> = sent.keys().copied().collect();
            let requests: BTreeMap<LessonCode, RequestedLesson> = sent
                .iter()
                .map(|(code, lesson)| (*code, lesson.requested()))
                .collect();
            let mut config = ProcessConfig::new(&self.paths.out_dir);
            config.file_name = self.spec.file_name.clone();
            config.overwrite = if options.force {
                Overwrite::Allow
            } else {
                Overwrite::IfUnedited
            };
            config.expected = Some(expected.clone());
            config.accept = Some(expected);
            config.requests = Some(&requests);
            config.curriculum = Some(&self.curriculum);
            config.manifest = Some(manifest);
            config.prices = self.spec.settings.price_table();
            config.quality = self.quality_gate();
            config.accept_below_spec = options.accept_below_spec;
            let mut summary = lesson_writer::process_inputs(inputs, &config)?;
            let written = std::mem::take(&mut summary.provenance);
            // Answers of requests made from an earlier outline are written as generated,
            // and reported stale.
            let hasher = self.hasher();
            let mut stale = Vec::new();
            for (code, entry) in &written {
                let now = self.curriculum.lesson(*code);
                let recorded = sent.get(code).map(|lesson| lesson.request_sha256.as_str());
                if now.map(|lesson| hasher.hash(lesson)).as_deref() != recorded {
                    stale.push(StaleLesson {
                        lesson_code: *code,
                        reason: now.map_or(StaleReason::RequestChanged, |lesson| {
                            stale_reason(lesson, entry, &self.spec.settings.model)
                        }),
                    });
                }
            }
            manifest.record(written);
            manifest.save(&self.paths.out_dir)?;
            outcomes.add(&summary, report);
            if !stale.is_empty() {
                observer.step(Step::StaleWritten { lessons: &stale });
                report.stale_written.extend(stale);
            }
            for failure in summary.failures.iter().filter(|failure| failure.retryable) {
                let Some(lesson) = self.curriculum.lesson(failure.lesson_code) else {
                    continue;
                };
                let budget = sent
                    .get(&failure.lesson_code)
                    .map_or(self.spec.settings.max_completion_tokens, |lesson| {
                        lesson.max_completion_tokens
                    });
                if failure.kind == FailureKind::Truncated {
                    match larger_budget(&self.spec.settings.model, budget) {
                        Some(larger) => retry.push((lesson, Some(larger))),
                        None => {
                            if let Some(failed) = outcomes.failures.get_mut(&failure.lesson_code) {
                                failed.retryable = false;
                                failed.reason = format!(
                                    "truncated at the model's output limit ({budget} completion tokens): \
                                     a larger budget is not possible; shorten the lesson in the template"
                                );
                            }
                        }
                    }
                } else {
                    retry.push((lesson, Some(budget)));
                }
            }
            for code in &summary.missing {
                if let Some(lesson) = self.curriculum.lesson(*code) {
                    retry.push((
                        lesson,
                        sent.get(code).map(|sent| sent.max_completion_tokens),
                    ));
                }
            }
        }
        for shard in &ready {
            runner.mark_handed_on(shard.index)?;
        }
        Ok(retry)
    }

    /// What an answer needs to be written: the settings' `[quality]`, with the built-in
    /// template's sections when this job's template is the built-in one.
    pub fn quality_gate(&self) -> QualityGate {
        QualityGate::from_settings(
            &self.spec.settings.quality,
            Some(self.spec.template.sha256()),
        )
    }

    /// The organization's enqueued-token limit for this job's model: the spec's
    /// `max_enqueued_tokens`, else the settings' (`[enqueued_token_limit]`, else the built-in
    /// Tier 1 table); `None` when unknown. Shards are cut to fit it, and the runner keeps the
    /// job's unfinished batches within it.
    pub fn enqueued_token_limit(&self) -> Option<u64> {
        self.spec.max_enqueued_tokens.or_else(|| {
            self.spec
                .settings
                .enqueued_token_limit_for(&self.spec.settings.model)
        })
    }

    fn job_config(&self, options: &RunOptions) -> JobConfig {
        let mut config = JobConfig::default();
        config
            .metadata
            .insert(JOB_ID_KEY.to_owned(), self.id.to_string());
        config
            .metadata
            .insert(JOB_NAME_KEY.to_owned(), self.name.clone());
        config
            .metadata
            .insert(TOOL_KEY.to_owned(), TOOL_NAME.to_owned());
        config.job_key = Some(JOB_ID_KEY.to_owned());
        config.poll = options.poll.clone();
        config.input_expires_after = options.input_expires_after;
        config.token_limit_backoff = options.token_limit_backoff;
        // The runner keeps the job's unfinished batches within the share of the limit the
        // shards are cut to, so that the estimate's error never tips the sum over it.
        if let Some(limit) = self.shard_limits().max_input_tokens {
            config
                .enqueued_token_limits
                .insert(self.spec.settings.model.clone(), limit);
        }
        config
    }
}

/// Removes the files of a round that is not submitted, so it is not mistaken for work to
/// attach to.
fn remove_round(shards: &[RoundShard]) {
    for shard in shards {
        for path in [
            shard.shard.path.clone(),
            crate::round::requests_path(&shard.shard.path),
        ] {
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot remove an unsubmitted shard");
            }
        }
    }
}

fn to_inputs(shards: &[RoundShard]) -> Vec<ShardInput> {
    shards
        .iter()
        .map(|shard| {
            ShardInput::new(shard.id.clone(), shard.shard.path.clone())
                .with_tokens(shard.shard.model.clone(), shard.shard.estimate.input_tokens)
        })
        .collect()
}

fn batch_report(shard: &ShardRecord) -> Option<BatchReport> {
    Some(BatchReport {
        id: shard.batch_id.as_ref()?.to_string(),
        status: shard
            .status
            .map_or_else(|| "unknown".to_owned(), |status| status.to_string()),
        request_counts: shard.counts.unwrap_or_default(),
        output_file_id: shard.output_file_id.as_ref().map(ToString::to_string),
        error_file_id: shard.error_file_id.as_ref().map(ToString::to_string),
    })
}

/// Whether `name` is a temp file a killed run of this tool may have left in a job folder:
/// the lesson writer's and this crate's (`.lesson-writer-*.tmp`), the shard writer's and the
/// ledger's (`.tmp` and six letters or digits), and partial downloads (`.<name>.*.part`).
pub(crate) fn is_job_temp_file(name: &str) -> bool {
    let tempfile_default = name.len() == 10
        && name.starts_with(".tmp")
        && name[4..].bytes().all(|b| b.is_ascii_alphanumeric());
    let partial_download = name.starts_with('.') && name.ends_with(".part");
    lesson_writer::is_temp_file(name) || tempfile_default || partial_download
}

/// Keeps in `retry` a lesson whose answer was below spec only the first time in a run
/// (recorded in `resubmitted`): a model that misses the bar twice is not paid a third time,
/// and its failure becomes final.
fn resubmit_below_spec_once(
    retry: &mut Vec<(&Lesson, Option<u32>)>,
    outcomes: &mut Outcomes,
    resubmitted: &mut BTreeSet<LessonCode>,
) {
    retry.retain(|(lesson, _)| {
        let Some(failed) = outcomes.failures.get_mut(&lesson.code) else {
            return true;
        };
        if failed.kind != Some(FailureKind::BelowSpec) || resubmitted.insert(lesson.code) {
            return true;
        }
        failed.retryable = false;
        failed
            .reason
            .push_str("; below spec again after one resubmission: not resubmitted again");
        false
    });
}

/// A larger `max_completion_tokens` for a truncated lesson: double, within the model's
/// known output limit; `None` when the model allows no more (or its limit is unknown).
pub fn larger_budget(model: &str, current: u32) -> Option<u32> {
    let limit = batch_request::max_output_tokens(model)?;
    let larger = current.saturating_mul(2).min(limit);
    (larger > current).then_some(larger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_batch_shards_are_smaller_so_their_inline_create_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let outline = dir.path().join("course/outline.md");
        fs::create_dir_all(outline.parent().unwrap()).unwrap();
        fs::write(&outline, "# M0: Basics\n## L001: One [F]\n").unwrap();
        let open = |model: &str| {
            let settings = RequestSettings {
                model: model.to_owned(),
                ..RequestSettings::default()
            };
            Job::open(JobSpec {
                outline: outline.clone(),
                out_dir: dir.path().join("lessons"),
                work_dir: dir.path().join("work"),
                name: None,
                template: Template::generic(),
                settings,
                file_name: lesson_writer::FileNamePattern::default(),
                max_enqueued_tokens: None,
                provider: None,
            })
            .unwrap()
        };
        let claude = open("claude-sonnet-4-5");
        assert_eq!(claude.provider(), Provider::Anthropic);
        assert_eq!(
            claude.shard_limits().max_bytes,
            crate::provider::anthropic::MAX_SHARD_BYTES
        );
        let gpt = open("gpt-4o-mini");
        assert_eq!(gpt.shard_limits().max_bytes, Limits::default().max_bytes);
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

    #[test]
    fn an_answer_below_spec_is_resubmitted_once() {
        let lesson = |n: u32| Lesson {
            code: LessonCode::new(0, n),
            title: format!("Lesson {n}"),
            complexity: None,
            section: None,
            line: n as usize,
        };
        let (below, truncated, missing) = (lesson(1), lesson(2), lesson(3));
        let failed = |lesson: &Lesson, kind: FailureKind| FailedLesson {
            custom_id: lesson.code.custom_id(),
            lesson_code: lesson.code,
            kind: Some(kind),
            code: kind.to_string(),
            reason: "answer below spec".to_owned(),
            retryable: true,
            rejected_file: None,
        };
        let mut resubmitted = BTreeSet::new();
        // Each round's failures, as `write_ready` leaves them.
        let round = |resubmitted: &mut BTreeSet<LessonCode>| {
            let mut outcomes = Outcomes::default();
            for (lesson, kind) in [
                (&below, FailureKind::BelowSpec),
                (&truncated, FailureKind::Truncated),
            ] {
                outcomes.failures.insert(lesson.code, failed(lesson, kind));
            }
            outcomes
                .failures
                .insert(missing.code, FailedLesson::missing(missing.code));
            let mut retry = vec![(&below, None), (&truncated, Some(8000)), (&missing, None)];
            resubmit_below_spec_once(&mut retry, &mut outcomes, resubmitted);
            let codes: Vec<LessonCode> = retry.iter().map(|(lesson, _)| lesson.code).collect();
            (codes, outcomes)
        };
        let (first, outcomes) = round(&mut resubmitted);
        assert_eq!(first, [below.code, truncated.code, missing.code]);
        assert!(outcomes.failures[&below.code].retryable);
        // A second answer below spec is final; other failures are resubmitted as before.
        let (second, outcomes) = round(&mut resubmitted);
        assert_eq!(second, [truncated.code, missing.code]);
        let final_failure = &outcomes.failures[&below.code];
        assert!(!final_failure.retryable);
        assert!(
            final_failure.reason.ends_with("not resubmitted again"),
            "{}",
            final_failure.reason
        );
        assert!(outcomes.failures[&truncated.code].retryable);
    }

    #[test]
    fn job_temp_files_are_recognised_and_nothing_else() {
        for ours in [
            ".tmpAb12Cd",
            ".lesson-writer-xyz.tmp",
            ".r01_output.jsonl.a1b2c3.part",
        ] {
            assert!(is_job_temp_file(ours), "{ours}");
        }
        for theirs in [
            "ledger.json",
            "r01_input_001.jsonl",
            ".tmp",
            ".tmpfile.txt",
            "x.part",
        ] {
            assert!(!is_job_temp_file(theirs), "{theirs}");
        }
    }
}
