//! `batch-emulator`: a local OpenAI Files + Batches and Anthropic Message Batches API server,
//! offline or in front of a local model.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use batch_emulator::{
    Emulator, EmulatorConfig, Endpoint, Faults, HttpFault, HttpFaultKind, Responder, Timing,
};
use clap::Parser;

/// A local OpenAI Files + Batches and Anthropic Message Batches API server.
///
/// Prints its base URL (`http://HOST:PORT/v1`) on stdout, logs on stderr, and runs until
/// Ctrl-C or SIGTERM. Point any OpenAI client at the URL, or an Anthropic client at it without
/// `/v1` (ANTHROPIC_BASE_URL), with any non-empty API key (or the one given with --api-key).
/// It also answers single requests (`/v1/chat/completions`, `/v1/messages`) for previews.
/// Requests are answered offline with placeholder lessons, or forwarded to an
/// OpenAI-compatible server with --upstream (Ollama, vLLM, llama.cpp).
#[derive(Debug, Parser)]
#[command(name = "batch-emulator", version, after_help = AFTER_HELP)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Accept only this Bearer token (default: any non-empty token).
    #[arg(long, env = "BATCH_EMULATOR_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Keep files and batches in this directory, so a restart still knows them.
    #[arg(long)]
    data_dir: Option<PathBuf>,

    /// Forward requests to this OpenAI-compatible base URL (its `/chat/completions`),
    /// e.g. http://127.0.0.1:11434/v1 for Ollama.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// Bearer token for the upstream server.
    #[arg(
        long,
        env = "UPSTREAM_API_KEY",
        hide_env_values = true,
        requires = "upstream"
    )]
    upstream_key: Option<String>,
    /// Most upstream calls in flight at once.
    #[arg(long, default_value_t = 4, requires = "upstream")]
    upstream_concurrency: usize,
    /// Time limit of one upstream call, in seconds (then the request fails with `request_timeout`).
    #[arg(long, default_value_t = 600.0, requires = "upstream")]
    upstream_timeout_secs: f64,

    /// Requests of one batch running at the same time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Time spent validating a batch, in milliseconds.
    #[arg(long, default_value_t = 500)]
    validation_ms: u64,
    /// Mean time of one offline request, in milliseconds.
    #[arg(long, default_value_t = 50)]
    per_request_ms: u64,
    /// Time spent finalizing a batch, in milliseconds.
    #[arg(long, default_value_t = 500)]
    finalizing_ms: u64,
    /// Completion window in seconds; unfinished requests then expire.
    #[arg(long, default_value_t = 86_400.0)]
    completion_window_secs: f64,
    /// Most requests in one input file.
    #[arg(long, default_value_t = 50_000)]
    max_requests: usize,
    /// Largest batch input file, in bytes.
    #[arg(long, default_value_t = 209_715_200)]
    max_file_bytes: u64,
    /// Most prompt tokens enqueued per model over all unfinished batches, like the real
    /// API's per-organization limit (e.g. 2000000 for gpt-4o-mini at Tier 1); a batch
    /// that would pass it fails with `token_limit_exceeded` (default: no limit).
    #[arg(long, value_name = "N")]
    enqueued_token_limit: Option<u64>,

    /// Seed of the request faults below.
    #[arg(long, default_value_t = 0, help_heading = "Faults")]
    fault_seed: u64,
    /// Share (0 to 1) of requests answered with HTTP 500.
    #[arg(long, default_value_t = 0.0, help_heading = "Faults")]
    fail_500_share: f64,
    /// Share (0 to 1) of requests answered with HTTP 429.
    #[arg(long, default_value_t = 0.0, help_heading = "Faults")]
    fail_429_share: f64,
    /// Share (0 to 1) of requests answered with HTTP 400 (not worth retrying).
    #[arg(long, default_value_t = 0.0, help_heading = "Faults")]
    fail_400_share: f64,
    /// Share (0 to 1) of requests cut short with `finish_reason: "length"`.
    #[arg(long, default_value_t = 0.0, help_heading = "Faults")]
    length_share: f64,
    /// An API fault: ENDPOINT=KIND[:TIMES], e.g. `batches.create=429:2`, `files.content=drop`.
    /// KIND is 429, 500 or drop; the first TIMES (default 1) calls fail. Repeatable.
    #[arg(long = "fault", value_name = "SPEC", value_parser = parse_fault, help_heading = "Faults")]
    faults: Vec<(Endpoint, FaultKind, u32)>,
    /// `Retry-After` of the 429 faults, in milliseconds.
    #[arg(long, default_value_t = 1000, help_heading = "Faults")]
    fault_retry_after_ms: u64,
    /// Cut the first N file downloads off halfway.
    #[arg(long, default_value_t = 0, help_heading = "Faults")]
    cut_downloads: u32,
}

const AFTER_HELP: &str = "\
Endpoints for --fault: files.create, files.list, files.retrieve, files.delete, files.content,
batches.create, batches.list, batches.retrieve, batches.cancel, messages.batches.create,
messages.batches.list, messages.batches.retrieve, messages.batches.cancel,
messages.batches.results, messages.batches.delete.

Example, in front of Ollama:
  batch-emulator --port 8089 --upstream http://127.0.0.1:11434/v1";

/// A fault kind as written on the command line; 429 gets its delay from another flag.
#[derive(Debug, Clone, Copy)]
enum FaultKind {
    RateLimited,
    ServerError,
    Drop,
}

fn parse_fault(spec: &str) -> Result<(Endpoint, FaultKind, u32), String> {
    let (endpoint, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("`{spec}` is not ENDPOINT=KIND[:TIMES]"))?;
    let endpoint: Endpoint = endpoint.parse().map_err(|err| format!("{err}"))?;
    let (kind, times) = rest.split_once(':').unwrap_or((rest, "1"));
    let kind = match kind {
        "429" => FaultKind::RateLimited,
        "500" => FaultKind::ServerError,
        "drop" => FaultKind::Drop,
        other => {
            return Err(format!(
                "unknown fault kind `{other}` (expected 429, 500 or drop)"
            ));
        }
    };
    let times = times
        .parse()
        .map_err(|_| format!("`{times}` is not a number of calls"))?;
    Ok((endpoint, kind, times))
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        cli::usage_error(
            format!("--{flag} must be a positive number of seconds"),
            None,
        )
    })
}

fn share(flag: &str, value: f64) -> anyhow::Result<f64> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(cli::usage_error(
            format!("--{flag} must be between 0 and 1"),
            None,
        ))
    }
}

fn config(args: &Args) -> anyhow::Result<EmulatorConfig> {
    let retry_after = Duration::from_millis(args.fault_retry_after_ms);
    let http = args
        .faults
        .iter()
        .map(|(endpoint, kind, times)| HttpFault {
            endpoint: *endpoint,
            kind: match kind {
                FaultKind::RateLimited => HttpFaultKind::RateLimited { retry_after },
                FaultKind::ServerError => HttpFaultKind::ServerError,
                FaultKind::Drop => HttpFaultKind::DropConnection,
            },
            times: *times,
        })
        .collect();
    let responder = match &args.upstream {
        None => Responder::Offline,
        Some(url) => Responder::Upstream {
            url: url.clone(),
            key: args.upstream_key.clone(),
            concurrency: args.upstream_concurrency,
            timeout: seconds("upstream-timeout-secs", args.upstream_timeout_secs)?,
        },
    };
    Ok(EmulatorConfig {
        addr: SocketAddr::new(args.host, args.port),
        api_key: args.api_key.clone(),
        data_dir: args.data_dir.clone(),
        timing: Timing {
            validation: Duration::from_millis(args.validation_ms),
            per_request: Duration::from_millis(args.per_request_ms),
            finalizing: Duration::from_millis(args.finalizing_ms),
        },
        concurrency: args.concurrency,
        completion_window: seconds("completion-window-secs", args.completion_window_secs)?,
        max_file_bytes: args.max_file_bytes,
        max_requests: args.max_requests,
        enqueued_token_limit: args.enqueued_token_limit,
        responder,
        faults: Faults {
            seed: args.fault_seed,
            server_error_share: share("fail-500-share", args.fail_500_share)?,
            rate_limit_share: share("fail-429-share", args.fail_429_share)?,
            bad_request_share: share("fail-400-share", args.fail_400_share)?,
            length_share: share("length-share", args.length_share)?,
            http,
            cut_downloads: args.cut_downloads,
        },
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only on a terminal, and never with NO_COLOR, as the other commands.
        .with_ansi(cli::term::stderr_colors())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("batch_emulator=info")),
        )
        .init();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => cli::report(&err),
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let config = config(args)?;
    // Listening before the URL is printed: a supervisor may stop the emulator as soon as
    // it has the URL, and that stop must be a clean one too.
    let signals = StopSignals::listen()?;
    let emulator = Emulator::start(config)
        .await
        .context("cannot start the batch emulator")?;
    cli::output::stdout(&format!("{}\n", emulator.base_url()))?;
    cli::output::stderr("batch emulator ready; stop it with Ctrl-C\n");
    let signal = signals.wait().await;
    cli::output::stderr(&format!("stopping ({signal})\n"));
    // The same clean stop for both: batch state written, the temp dir of a run without
    // --data-dir removed (when `emulator` is dropped).
    emulator.shutdown().await;
    Ok(())
}

/// Ctrl-C and, on Unix, SIGTERM (how service managers and test harnesses stop a process).
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Starts listening: from here on these signals no longer end the process at once.
    fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Waits for one; returns its name.
    #[cfg_attr(not(unix), allow(unused_mut))]
    async fn wait(mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "Ctrl-C",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            // Without a handler Ctrl-C ends the process, so an error here means: stop now.
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
