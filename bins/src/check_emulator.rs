//! `check-batch-status --emulator`: the batches a quick start (`generate-datagov-lessons-batch
//! --emulator`) left in the work dir, looked at through the built-in emulator started on the
//! state it kept in the job folder (`<work-dir>/<job>/emulator/`).
//!
//! The emulator goes on with the batches as it would have (one left running finishes), so
//! only one program may use a state at a time: the job's lock is held while it runs, and a
//! job whose run is still going is skipped.
//!
//! A state holds OpenAI's batches and Anthropic's message batches alike (a quick start with
//! `--provider anthropic`): a batch is looked at through the API its id or its job's ledger
//! names (`check::provider_of`), and `--list` shows both unless `--provider` says
//! which.

use anyhow::Context;
use batch_emulator::{Emulator, EmulatorConfig};
use lesson_job::{EmulatorState, JobLock, LockWait, Provider, ProviderClient};
use openai_batch_client::{Batch, BatchId};

use crate::ExitStatus;
use crate::check::{Args, check_one, print_list, provider_of};
use crate::progress::Reporter;
use crate::term::Shown;
use crate::usage_error;

/// This command's name, as the job lock records it.
const COMMAND: &str = "check-batch-status";

/// Runs `check-batch-status --emulator`: `--list` across every emulator state of the work
/// dir, else the one batch (given, or the work dir's latest) in the state that holds it.
///
/// # Errors
///
/// A usage error when the work dir holds no emulator state, or none holds the batch; the
/// emulator's and the check's errors.
pub async fn run(args: &Args, reporter: &Reporter) -> anyhow::Result<ExitStatus> {
    let states = lesson_job::emulator_states(&args.work_dir)?;
    if states.is_empty() {
        return Err(usage_error(
            format!(
                "no emulator state in {}: a quick start keeps it in its job folder there (<job>/emulator/)",
                Shown(args.work_dir.display())
            ),
            Some(&format!(
                "pass the --work-dir the quick start used (generate-datagov-lessons-batch --emulator); its default is {}",
                crate::args::DEFAULT_WORK_DIR
            )),
        ));
    }
    if args.list {
        return list(args, &states, reporter).await;
    }
    let provider = provider_of(args)?;
    let state = state_of(args, &states)?;
    // --process writes the lessons under the job's lock, which it takes itself: the lock is
    // only tested here, not held (the same process cannot take it twice).
    let hold = if args.process { Hold::Test } else { Hold::Keep };
    let Some(local) = start(state, hold, reporter).await? else {
        return Err(usage_error(
            format!(
                "another run is using the emulator state in {}",
                Shown(state.data_dir.display())
            ),
            Some("wait for it to finish, then run this again"),
        ));
    };
    let status = match local.client(provider) {
        Ok(client) => check_one(&client, args, reporter).await,
        Err(err) => Err(err),
    };
    local.stop().await;
    status
}

/// `--list`: the batches of every state, newest first: OpenAI's and Anthropic's (the
/// message batches shown in the Batch API's terms in the table, as Anthropic's objects in
/// `--json`), or only those of `--provider`.
async fn list(
    args: &Args,
    states: &[EmulatorState],
    reporter: &Reporter,
) -> anyhow::Result<ExitStatus> {
    let providers = match args.api.provider {
        Some(provider) => vec![provider],
        None => vec![Provider::OpenAi, Provider::Anthropic],
    };
    // (created, the table's row, the JSON object)
    let mut found: Vec<(i64, Batch, serde_json::Value)> = Vec::new();
    for state in states {
        let Some(local) = start(state, Hold::Keep, reporter).await? else {
            continue;
        };
        let listed = list_state(&local, &providers, args.limit).await;
        local.stop().await;
        found.extend(listed?);
    }
    found.sort_by_key(|(created, ..)| std::cmp::Reverse(*created));
    found.truncate(args.limit);
    if args.output.json {
        let objects: Vec<&serde_json::Value> = found.iter().map(|(.., json)| json).collect();
        crate::print_json(&objects)?;
        return Ok(ExitStatus::Success);
    }
    let rows: Vec<Batch> = found.into_iter().map(|(_, row, _)| row).collect();
    print_list(&rows, args, reporter)
}

/// The batches of `providers` in one running state.
async fn list_state(
    local: &Local,
    providers: &[Provider],
    limit: usize,
) -> anyhow::Result<Vec<(i64, Batch, serde_json::Value)>> {
    let mut found = Vec::new();
    for &provider in providers {
        match local.client(provider)? {
            ProviderClient::OpenAi(client) => {
                let batches = lesson_job::recent_batches(&client, limit)
                    .await
                    .context("cannot list the emulator's batches")?;
                for batch in batches {
                    let json = serde_json::to_value(&batch)?;
                    found.push((batch.created_at, batch, json));
                }
            }
            ProviderClient::Anthropic(client) => {
                let batches = lesson_job::recent_message_batches(&client, limit)
                    .await
                    .context("cannot list the emulator's message batches")?;
                for batch in batches {
                    let json = serde_json::to_value(&batch)?;
                    let row = lesson_job::message_batch_view(&batch);
                    found.push((row.created_at, row, json));
                }
            }
        }
    }
    Ok(found)
}

/// The built-in emulator on one state, and the job lock held while it runs.
struct Local {
    emulator: Emulator,
    _lock: Option<JobLock>,
}

impl Local {
    /// A client of `provider` on the emulator (no real key).
    fn client(&self, provider: Provider) -> anyhow::Result<ProviderClient> {
        crate::key::connect(
            provider,
            crate::key::emulator_url(provider, &self.emulator),
            secrecy::SecretString::from("emulator".to_owned()),
            std::sync::Arc::new(()),
        )
    }

    async fn stop(self) {
        self.emulator.shutdown().await;
    }
}

/// Whether the job's lock is held while the emulator runs, or only tested before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Keep,
    Test,
}

/// Starts the emulator on `state` under its job's lock (or after testing that no run holds
/// it); `None` (with a note) when another run holds the lock.
async fn start(
    state: &EmulatorState,
    hold: Hold,
    reporter: &Reporter,
) -> anyhow::Result<Option<Local>> {
    let lock = match &state.out_dir {
        Some(out_dir) => match JobLock::acquire(out_dir, COMMAND, LockWait::NoWait, |_| {}) {
            Ok(lock) => (hold == Hold::Keep).then_some(lock),
            Err(lesson_job::Error::Locked { .. }) => {
                reporter.warn(format!(
                    "{}: skipped, another run is using it",
                    Shown(state.data_dir.display())
                ));
                return Ok(None);
            }
            Err(err) => return Err(err.into()),
        },
        None => None,
    };
    let mut config = EmulatorConfig::fast();
    config.data_dir = Some(state.data_dir.clone());
    let emulator = Emulator::start(config)
        .await
        .context("cannot start the built-in batch emulator")?;
    reporter.detail(format!(
        "Using the built-in batch emulator on {} at {}",
        Shown(state.data_dir.display()),
        Shown(emulator.base_url())
    ));
    Ok(Some(Local {
        emulator,
        _lock: lock,
    }))
}

/// The state that holds the batch asked about (or the work dir's latest): the one of the job
/// whose ledger records it, else the only one, else the one whose store has it.
fn state_of<'a>(args: &Args, states: &'a [EmulatorState]) -> anyhow::Result<&'a EmulatorState> {
    let batch_id = match &args.batch_id {
        Some(id) => Some(BatchId::from(id.as_str())),
        None => lesson_job::latest_batch(&args.work_dir)?,
    };
    if let Some(batch_id) = &batch_id {
        if let Some(recorded) = lesson_job::recorded_batch(&args.work_dir, batch_id)?
            && let Some(state) = states
                .iter()
                .find(|state| state.job_dir == recorded.job_dir)
        {
            return Ok(state);
        }
        // A batch made by hand against the emulator is in its store only.
        let plain = !batch_id.as_str().contains(['/', '\\', '.']);
        if let Some(state) = states.iter().filter(|_| plain).find(|state| {
            state
                .data_dir
                .join("batches")
                .join(format!("{batch_id}.json"))
                .is_file()
        }) {
            return Ok(state);
        }
    }
    match (states, batch_id) {
        ([only], None) => Ok(only),
        (_, Some(batch_id)) => Err(usage_error(
            format!(
                "no emulator state in {} has the batch {}",
                Shown(args.work_dir.display()),
                Shown(&batch_id)
            ),
            Some("check-batch-status --emulator --list shows the batches it has"),
        )),
        (_, None) => Err(usage_error(
            format!(
                "{} holds {} emulator states and records no batch",
                Shown(args.work_dir.display()),
                states.len()
            ),
            Some("pass a batch id (check-batch-status --emulator --list shows them)"),
        )),
    }
}
