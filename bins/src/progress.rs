//! What the user sees while work goes on: step lines, and live progress bars for batches and
//! transfers (only when stderr is a terminal and not `--quiet`).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lesson_job::{JobObserver, Step};
use openai_batch_client::{Batch, JobEvent, JobProgress};

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

/// Writes step lines and owns the progress bars.
#[derive(Debug)]
pub struct Reporter {
    verbosity: Verbosity,
    bars: Option<MultiProgress>,
}

impl Reporter {
    /// A reporter; bars only when stderr is a terminal and not quiet. Also installs the log
    /// subscriber: `RUST_LOG` when set, else debug logs of the libraries with `-v`.
    pub fn new(verbosity: Verbosity) -> Self {
        let default = match verbosity {
            Verbosity::Verbose => {
                "warn,openai_batch_client=debug,lesson_writer=debug,batch_request=debug"
            }
            // The built-in emulator warns about what it skipped, e.g. a broken state file.
            _ => "error,batch_emulator=warn",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
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
            None => eprintln!("{line}"),
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
            None => eprintln!("warning: {line}"),
        }
    }

    /// The job-runner listener that draws one bar per batch (or prints status changes as lines
    /// when there are no bars).
    pub fn job_progress(&self) -> BatchBars {
        BatchBars {
            bars: self.bars.clone(),
            verbosity: self.verbosity,
            by_shard: Mutex::new(HashMap::new()),
        }
    }
}

/// Renders [`JobEvent`]s: one bar per shard with status, completed/failed/total and elapsed time.
#[derive(Debug)]
pub struct BatchBars {
    bars: Option<MultiProgress>,
    verbosity: Verbosity,
    by_shard: Mutex<HashMap<usize, ProgressBar>>,
}

impl BatchBars {
    fn bar(&self, shard: usize) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let mut by_shard = self
            .by_shard
            .lock()
            .expect("progress lock is never poisoned");
        let bar = by_shard.entry(shard).or_insert_with(|| {
            let bar = bars.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:30}] {pos}/{len} {msg} {elapsed_precise}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Some(bar.clone())
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
            None => eprintln!("{text}"),
        }
    }

    fn show(&self, shard: usize, batch: &Batch) {
        let counts = batch.counts();
        match self.bar(shard) {
            Some(bar) => {
                bar.set_prefix(Shown(&batch.id).to_string());
                bar.set_message(format!("{} ({} failed)", batch.status, counts.failed));
                bar.set_length(counts.total);
                bar.set_position(counts.completed + counts.failed);
                if batch.status.is_terminal() {
                    bar.finish();
                }
            }
            None => self.line(format!(
                "  {} {}: {}/{} done, {} failed",
                Shown(&batch.id),
                batch.status,
                counts.completed + counts.failed,
                counts.total,
                counts.failed
            )),
        }
    }

    /// Clears the bars (e.g. before the summary is printed).
    pub fn finish(&self) {
        let by_shard = self
            .by_shard
            .lock()
            .expect("progress lock is never poisoned");
        for bar in by_shard.values() {
            bar.finish_and_clear();
        }
    }
}

impl JobProgress for BatchBars {
    fn on_event(&self, event: &JobEvent<'_>) {
        match event {
            JobEvent::UploadStarted { path, bytes, .. } => self.line(format!(
                "  uploading {} ({})",
                Shown(path.display()),
                human_bytes(*bytes)
            )),
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
                self.line(format!("  deleted {files} file(s) of a finished batch from the server"));
            }
            JobEvent::ShardFailed { shard, error } => {
                self.line(format!("  shard {} failed: {}", shard + 1, Shown(error)));
            }
            _ => {}
        }
    }
}

impl JobObserver for BatchBars {
    fn step(&self, step: Step<'_>) {
        match step {
            Step::Submitting { requests: 0, .. } => {
                self.line("Step 4: Checking the earlier batch(es)...".to_owned());
            }
            Step::Submitting { round, requests } => self.line(format!(
                "Step 4: Uploading and creating batch(es): round {round}, {requests} request(s)..."
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
                    format!("error: batch {id} failed validation; nothing in it ran or was billed");
                for error in errors {
                    text.push_str(&format!("\n  {}", crate::report::batch_error_line(error)));
                }
                if token_limit {
                    text.push_str("\nhint: the organization's enqueued-token limit was reached; run the command again once other batches have finished");
                }
                self.line(text);
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
                self.line(format!(
                    "{} {one} generated from an earlier version of the outline: {}; run with --stale to regenerate {it}",
                    lessons.len(),
                    list.join(", ")
                ));
            }
            Step::BudgetReached(stop) => self.line(format!(
                "Budget: not resubmitting {} lesson(s): this run's results cost {} and the retry round could cost up to {}, past --budget {}. Run again with a larger --budget to retry them.",
                stop.lessons.len(),
                usd(Some(stop.spent_usd)),
                usd(stop.next_round_usd),
                usd(Some(stop.budget_usd))
            )),
            Step::CleanupFailed { error } => self.line(format!(
                "warning: cannot delete a finished batch's files from the server ({}); they expire by themselves, or run check-batch-status --cleanup",
                Shown(error)
            )),
            Step::Retrying {
                lessons,
                rounds_left,
            } => self.line(format!(
                "Retrying {} lesson(s) whose failure is retryable ({rounds_left} round(s) left after this one)...",
                lessons.len()
            )),
            _ => {}
        }
    }
}

/// `1.2 MB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
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

/// `$0.1234`, or `unknown` when a model has no price.
pub fn usd(value: Option<f64>) -> String {
    match value {
        Some(value) if value < 0.01 => format!("${value:.4}"),
        Some(value) => format!("${value:.2}"),
        None => "unknown (no price for this model)".to_owned(),
    }
}

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
