//! What the user sees while work goes on: step lines, and live progress bars for batches and
//! transfers (only when stderr is a terminal and not `--quiet`).

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use lesson_job::{JobObserver, Step};
use openai_batch_client::{Batch, BatchStatus, JobEvent, JobProgress, RetryEvent, RetryProgress};

use crate::batch_line::{FirstSeen, finished_line, progress_line};
use crate::format::{count, plural};
use crate::term::{Shown, shown_lines};

/// How chatty the commands are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Steps and results.
    Normal,
    /// `-v`: also causes, request ids and details.
    Verbose,
}

impl Verbosity {
    /// From the `-q` and `-v` flags.
    pub fn from_flags(quiet: bool, verbose: bool) -> Self {
        if quiet {
            Verbosity::Quiet
        } else if verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

/// Log lines are stamped with the local time of day, as the user reads a clock.
struct LocalClock;

impl tracing_subscriber::fmt::time::FormatTime for LocalClock {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", chrono::Local::now().format("%H:%M:%S"))
    }
}

/// Writes step lines and owns the progress bars.
#[derive(Debug)]
pub struct Reporter {
    verbosity: Verbosity,
    bars: Option<MultiProgress>,
}

impl Reporter {
    /// A reporter; bars only when stderr is a terminal and not quiet. Also installs the log
    /// subscriber: with `-v` the libraries' information lines, stamped with the local time and
    /// without module paths; `RUST_LOG` (for developers) chooses other logs, with their module
    /// paths. Colours only when [`crate::term::stderr_colors`].
    pub fn new(verbosity: Verbosity) -> Self {
        let default = match verbosity {
            Verbosity::Verbose => {
                "warn,openai_batch_client=info,lesson_job=info,lesson_writer=info,batch_request=info,batch_emulator=warn"
            }
            // The built-in emulator warns about what it skipped, e.g. a broken state file.
            _ => "error,batch_emulator=warn",
        };
        let developer = std::env::var_os("RUST_LOG").is_some();
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_timer(LocalClock)
            .with_target(developer)
            .with_ansi(crate::term::stderr_colors())
            .try_init();
        let bars = (verbosity != Verbosity::Quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Reporter { verbosity, bars }
    }

    /// How chatty to be.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// A line on stderr, unless quiet (printed above any live bars).
    ///
    /// Control characters in it are shown escaped ([`crate::term`]), newlines kept; data
    /// fields inside it should still go through [`Shown`] so their newlines are escaped too.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let line = shown_lines(line.as_ref());
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(line);
            }
            None => crate::output::errln!("{line}"),
        }
    }

    /// A line on stderr only with `-v`.
    pub fn detail(&self, line: impl AsRef<str>) {
        if self.verbosity == Verbosity::Verbose {
            self.say(line);
        }
    }

    /// A warning on stderr, shown even when quiet; control characters shown escaped as in
    /// [`Reporter::say`].
    pub fn warn(&self, line: impl AsRef<str>) {
        let line = shown_lines(line.as_ref());
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(format!("warning: {line}"));
            }
            None => crate::output::errln!("warning: {line}"),
        }
    }

    /// The job-runner listener that draws one line per batch (or prints status changes as
    /// lines when there are no bars); also the client's retry listener.
    pub fn job_progress(&self) -> BatchBars {
        BatchBars {
            bars: self.bars.clone(),
            verbosity: self.verbosity,
            by_shard: Mutex::new(HashMap::new()),
            trouble: Arc::new(Mutex::new(None)),
            uploading: Mutex::new(HashSet::new()),
            downloading: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// Renders [`JobEvent`]s and retries: one line per batch that fits the terminal (status,
/// done/total, percent, failed, elapsed since the batch was created, time left, cost so far),
/// a line when a batch finishes, and the server's trouble while requests are retried.
#[derive(Debug)]
pub struct BatchBars {
    bars: Option<MultiProgress>,
    verbosity: Verbosity,
    by_shard: Mutex<HashMap<usize, ShardLine>>,
    /// Since when requests fail and are retried, shown on every batch's line.
    trouble: Arc<Mutex<Option<Trouble>>>,
    /// Shards whose upload was announced, so a retried upload is not announced again.
    uploading: Mutex<HashSet<usize>>,
    /// Whether this round's first download was announced as step 6.
    downloading: std::sync::atomic::AtomicBool,
}

/// One batch's live line.
#[derive(Debug)]
struct ShardLine {
    bar: Option<ProgressBar>,
    state: Arc<Mutex<LineState>>,
    /// The batch id whose end was announced.
    finished: Option<openai_batch_client::BatchId>,
}

/// What one batch's line is drawn from.
#[derive(Debug)]
struct LineState {
    batch: Batch,
    first_seen: Option<FirstSeen>,
}

/// Requests failing and being retried.
#[derive(Debug, Clone)]
struct Trouble {
    since: chrono::DateTime<chrono::Local>,
    unreachable: bool,
}

impl Trouble {
    fn text(&self) -> String {
        format!(
            "{} since {}, retrying",
            if self.unreachable {
                "server unreachable"
            } else {
                "server failing"
            },
            self.since.format("%H:%M")
        )
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The terminal's width in columns.
fn terminal_width() -> usize {
    usize::from(console::Term::stderr().size().1)
}

impl BatchBars {
    /// A new live line for a shard (with bars), drawing from `state` at every tick.
    fn new_bar(&self, state: &Arc<Mutex<LineState>>) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let bar = bars.add(ProgressBar::new(0));
        let (state, trouble) = (Arc::clone(state), Arc::clone(&self.trouble));
        let style = ProgressStyle::with_template("{spinner} {line}")
            .expect("the template is valid")
            .with_key(
                "line",
                move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let trouble = lock(&trouble).as_ref().map(Trouble::text);
                    let state = lock(&state);
                    // The spinner and its space take two columns; the last column is left
                    // free, since writing into it wraps on some terminals.
                    let width = terminal_width().saturating_sub(3).max(10);
                    let _ = out.write_str(&progress_line(
                        &state.batch,
                        chrono::Utc::now().timestamp(),
                        state.first_seen,
                        trouble.as_deref(),
                        width,
                    ));
                },
            );
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    }

    fn line(&self, text: String) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let text = shown_lines(&text);
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => crate::output::errln!("{text}"),
        }
    }

    /// `error: <text>`, the prefix coloured as in [`crate::report_as`] (the text shown escaped).
    fn error_line(&self, text: &str) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let text = format!("{} {}", crate::term::error_prefix(), shown_lines(text));
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => crate::output::errln!("{text}"),
        }
    }

    fn show(&self, shard: usize, batch: &Batch) {
        let now = chrono::Utc::now().timestamp();
        let counts = batch.counts();
        let mut by_shard = lock(&self.by_shard);
        let line = by_shard.entry(shard).or_insert_with(|| {
            let state = Arc::new(Mutex::new(LineState {
                batch: batch.clone(),
                first_seen: None,
            }));
            ShardLine {
                bar: None,
                state,
                finished: None,
            }
        });
        {
            let mut state = lock(&line.state);
            if state.batch.id != batch.id {
                state.first_seen = None;
            }
            state.batch = batch.clone();
            if state.first_seen.is_none() && batch.status == BatchStatus::InProgress {
                state.first_seen = Some(FirstSeen {
                    at: now,
                    done: counts.completed + counts.failed,
                });
            }
        }
        if batch.status.is_terminal() {
            if line.finished.as_ref() == Some(&batch.id) {
                return;
            }
            line.finished = Some(batch.id.clone());
            if let Some(bar) = line.bar.take() {
                bar.finish_and_clear();
            }
            drop(by_shard);
            self.line(format!("  {}", finished_line(batch, now)));
            return;
        }
        if self.bars.is_some() {
            if line.bar.is_none() {
                line.bar = self.new_bar(&line.state);
            }
            if let Some(bar) = &line.bar {
                bar.tick();
            }
        } else {
            drop(by_shard);
            let trouble = lock(&self.trouble).as_ref().map(Trouble::text);
            self.line(format!(
                "  {}",
                progress_line(batch, now, None, trouble.as_deref(), usize::MAX)
            ));
        }
    }

    /// The batch seen last (of any shard), as it was then.
    pub fn last_batch(&self) -> Option<Batch> {
        lock(&self.by_shard)
            .values()
            .map(|line| lock(&line.state).batch.clone())
            .max_by_key(|batch| batch.created_at)
    }

    /// Clears the bars (e.g. before the summary is printed).
    pub fn finish(&self) {
        for line in lock(&self.by_shard).values_mut() {
            if let Some(bar) = line.bar.take() {
                bar.finish_and_clear();
            }
        }
    }
}

impl RetryProgress for BatchBars {
    fn on_retry(&self, retry: &RetryEvent<'_>) {
        let attempt = format!("attempt {} of {}", retry.attempt, retry.max_attempts);
        let reason = Shown(retry_reason(retry.error)).to_string();
        if retry.method == "POST" && retry.path == "/files" {
            self.line(format!("  retrying upload ({attempt}): {reason}"));
            return;
        }
        // OpenAI's file content, or Anthropic's message batch results.
        if retry.path.ends_with("/content") || retry.path.ends_with("/results") {
            self.line(format!("  retrying download ({attempt}): {reason}"));
            return;
        }
        let unreachable = unreachable(retry.error);
        let mut trouble = lock(&self.trouble);
        if trouble.is_none() {
            let now = Trouble {
                since: chrono::Local::now(),
                unreachable,
            };
            let text = now.text();
            *trouble = Some(now);
            drop(trouble);
            self.line(format!("  {text} ({attempt}): {reason}"));
        } else if self.verbosity == Verbosity::Verbose {
            drop(trouble);
            self.line(format!("  still retrying ({attempt}): {reason}"));
        }
    }

    fn on_recovered(&self, _method: &str, _path: &str) {
        if let Some(trouble) = lock(&self.trouble).take() {
            self.line(format!(
                "  server reachable again (failing since {})",
                trouble.since.format("%H:%M")
            ));
        }
    }
}

/// An error and its causes, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        text.push_str(": ");
        text.push_str(&source.to_string());
        cause = source.source();
    }
    text
}

/// Whether a request failed without an answer (refused, dropped or timed out), for either
/// provider's client, rather than with an error status.
fn unreachable(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    if let Some(error) = error.downcast_ref::<openai_batch_client::Error>() {
        return matches!(
            error,
            openai_batch_client::Error::Connection { .. }
                | openai_batch_client::Error::Timeout { .. }
        );
    }
    matches!(
        error.downcast_ref::<anthropic_batch_client::Error>(),
        Some(
            anthropic_batch_client::Error::Connection { .. }
                | anthropic_batch_client::Error::Timeout { .. }
        )
    )
}

/// Why a request failed, with its innermost cause (`connection refused`).
fn retry_reason(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    if std::ptr::addr_eq(innermost, error) {
        error.to_string()
    } else {
        format!("{error}: {innermost}")
    }
}

impl JobProgress for BatchBars {
    fn on_event(&self, event: &JobEvent<'_>) {
        match event {
            // A retried upload starts again; the retry was said by `on_retry`.
            JobEvent::UploadStarted { shard, path, bytes }
                if lock(&self.uploading).insert(*shard) =>
            {
                self.line(format!(
                    "  uploading {} ({})",
                    Shown(path.display()),
                    human_bytes(*bytes)
                ));
            }
            JobEvent::Uploaded { file_id, .. } => self.line(format!("  uploaded as {}", Shown(file_id))),
            JobEvent::Created { shard, batch } => {
                self.line(format!("  created batch {}", Shown(&batch.id)));
                // Without bars, the first status change prints the status line.
                if self.bars.is_some() {
                    self.show(*shard, batch);
                }
            }
            JobEvent::Recovered { shard, batch } => {
                self.line(format!(
                    "  found batch {} created earlier (not creating it again)",
                    Shown(&batch.id)
                ));
                self.show(*shard, batch);
            }
            JobEvent::Adopted { shard, batch } => {
                self.line(format!(
                    "  found batch {} of this job still running on the server (the ledger had lost it); attaching instead of creating another",
                    Shown(&batch.id)
                ));
                self.show(*shard, batch);
            }
            JobEvent::Changed { shard, batch } => self.show(*shard, batch),
            // The job downloads each batch as it finishes, while others may still run.
            JobEvent::DownloadStarted { .. }
                if !self
                    .downloading
                    .swap(true, std::sync::atomic::Ordering::Relaxed) =>
            {
                self.line(
                    "Step 6: Downloading results (Ctrl-C stops; no partial file is kept)..."
                        .to_owned(),
                );
            }
            JobEvent::Downloaded { path, bytes, .. } => self.line(format!(
                "  downloaded {} ({})",
                Shown(path.display()),
                human_bytes(*bytes)
            )),
            JobEvent::Queue {
                done,
                running,
                waiting,
            } if *waiting > 0 => self.line(format!(
                "  {done} of {} batches done, {running} running, {waiting} waiting for queue capacity",
                done + running + waiting
            )),
            JobEvent::TokenLimitRetry {
                shard,
                attempt,
                delay,
            } => self.line(if delay.is_zero() {
                format!(
                    "  shard {} was refused (the organization's enqueued-token limit was reached; nothing was billed): submitting it again now (attempt {attempt})",
                    shard + 1
                )
            } else {
                format!(
                    "  shard {} was refused (the organization's enqueued-token limit was reached; nothing was billed): submitting it again in {} (attempt {attempt})",
                    shard + 1,
                    human_duration(*delay)
                )
            }),
            JobEvent::RemoteFilesDeleted { files, .. } if self.verbosity == Verbosity::Verbose => {
                self.line(format!(
                    "  deleted {} of a finished batch from the server",
                    plural(*files, "file")
                ));
            }
            JobEvent::ShardFailed { error, .. } => {
                // The error names the shard by its id (`r01_input_001`, counted from 1),
                // as the final error report does: one numbering.
                self.line(format!("  {}", Shown(error_chain(error))));
            }
            _ => {}
        }
    }
}

impl JobObserver for BatchBars {
    fn step(&self, step: Step<'_>) {
        if let Step::Submitting { .. } = step {
            self.downloading
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        match step {
            Step::Submitting { requests: 0, .. } => {
                self.line("Step 4: Checking the earlier batch(es)...".to_owned());
            }
            Step::Submitting {
                round,
                requests,
                provider,
            } => self.line(format!(
                "Step 4: {}: round {round}, {}...",
                match provider {
                    lesson_job::Provider::OpenAi => "Uploading and creating batch(es)",
                    lesson_job::Provider::Anthropic => "Creating message batch(es)",
                },
                plural(requests, "request")
            )),
            Step::Waiting => self.line(
                "Step 5: Waiting for the batch(es) to finish (Ctrl-C stops waiting; the batch keeps running)..."
                    .to_owned(),
            ),
            Step::Downloading => self.line("Step 6: Downloading results...".to_owned()),
            Step::Writing { out_dir } => {
                self.line(format!(
                    "Step 7: Writing lessons to {}...",
                    Shown(out_dir.display())
                ));
            }
            Step::BatchFailed {
                batch_id,
                errors,
                token_limit,
            } => {
                let id = batch_id.map_or_else(String::new, |id| Shown(id).to_string());
                let mut text =
                    format!("batch {id} failed validation; nothing in it ran or was billed");
                for error in errors {
                    text.push_str(&format!("\n  {}", crate::report::batch_error_line(error)));
                }
                if token_limit {
                    text.push_str("\nhint: the organization's enqueued-token limit was reached; run the command again once other batches have finished");
                }
                self.error_line(&text);
            }
            Step::StaleWritten { lessons } => {
                let list: Vec<String> = lessons
                    .iter()
                    .map(|stale| format!("{} ({})", stale.lesson_code, Shown(&stale.reason)))
                    .collect();
                let (one, it) = if lessons.len() == 1 {
                    ("lesson was", "it")
                } else {
                    ("lessons were", "them")
                };
                // A few name the change; the rest are counted (the manifest lists them all).
                let more = list.len().saturating_sub(MAX_NAMED);
                let mut named = list.into_iter().take(MAX_NAMED).collect::<Vec<_>>().join(", ");
                if more > 0 {
                    named.push_str(&format!(" and {more} more"));
                }
                self.line(format!(
                    "{} {one} generated from an earlier version of the outline: {named}; run with --stale to regenerate {it}",
                    count(lessons.len()),
                ));
            }
            Step::BudgetReached(stop) => self.line(format!(
                "Budget: not resubmitting {}: this run's results cost {} and the retry round could cost up to {}, past --budget {}. Run again with a larger --budget to retry them.",
                plural(stop.lessons.len(), "lesson"),
                usd(Some(stop.spent_usd)),
                usd(stop.next_round_usd),
                usd(Some(stop.budget_usd))
            )),
            Step::CleanupFailed { error } => self.line(format!(
                "warning: cannot delete a finished batch's files from the server ({}); they expire by themselves, or run check-batch-status --cleanup",
                Shown(error)
            )),
            Step::PreviewAnswered { code, done, total } => {
                self.line(format!("  {code} answered ({done} of {total})"));
            }
            Step::Retrying {
                lessons,
                rounds_left,
            } => self.line(format!(
                "Retrying {} whose failure is retryable ({} left after this one)...",
                plural(lessons.len(), "lesson"),
                plural(rounds_left, "round")
            )),
            _ => {}
        }
    }
}

/// At most this many lessons are named in a step line; the rest are counted.
const MAX_NAMED: usize = 5;

/// A size, as [`crate::format::bytes`] says it.
pub fn human_bytes(bytes: u64) -> String {
    crate::format::bytes(bytes)
}

/// `45s`, `2m`, `1h 30m`.
pub fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds.div_ceil(60)),
        _ => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

pub use crate::format::usd;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_and_dollars() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2_100_000), "2.1 MB");
        assert_eq!(usd(Some(0.001234)), "$0.0012");
        assert_eq!(usd(Some(1.5)), "$1.50");
        assert!(usd(None).starts_with("unknown"));
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(120)), "2m");
        assert_eq!(human_duration(Duration::from_secs(5400)), "1h 30m");
    }
}
