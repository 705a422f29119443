//! Flags every command shares: output format and chattiness, and how to reach the API.

use std::path::PathBuf;

use crate::progress::Verbosity;

/// `--json`, `-q`, `-v`.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Print exactly one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print errors only.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print details: causes, request ids, file paths.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl OutputArgs {
    /// How chatty to be.
    pub fn verbosity(&self) -> Verbosity {
        Verbosity::from_flags(self.quiet, self.verbose)
    }
}

/// The work dir when neither `--work-dir` nor the settings file's `[paths] work_dir` names one:
/// the old scripts' path, which generate-datagov-lessons-batch and check-batch-status share.
pub const DEFAULT_WORK_DIR: &str = "scripts/batch_api";

/// The settings file to read: `flag` when given, else `lessons.toml` of the working directory
/// when it exists, else none (the defaults).
pub fn settings_file(flag: Option<&std::path::Path>) -> Option<PathBuf> {
    match flag {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let default = std::path::Path::new(crate::generate::DEFAULT_CONFIG);
            default.exists().then(|| default.to_path_buf())
        }
    }
}

/// `--provider`, `--base-url`, `--api-key-file`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// openai or anthropic [default: from the model or the batch id]
    ///
    /// OpenAI's Batch API (or a server speaking it) or Anthropic's Message Batches API. By
    /// default a claude-* model is Anthropic's, and a msgbatch_ id (else the work dir's latest
    /// ledger) tells check-batch-status. Anthropic's key is read from ANTHROPIC_API_KEY (or
    /// --api-key-file), its base URL from --base-url or ANTHROPIC_BASE_URL [default:
    /// `https://api.anthropic.com`].
    #[arg(long, value_name = "NAME")]
    pub provider: Option<lesson_job::Provider>,
    /// API base URL (env: OPENAI_BASE_URL, ANTHROPIC_BASE_URL)
    ///
    /// [default: `https://api.openai.com/v1`; Anthropic's: `https://api.anthropic.com`]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Key file if the key's variable is unset [default: openaiapikey.txt]
    ///
    /// The file holds the key alone. For OpenAI it is read from ./openaiapikey.txt by default
    /// when OPENAI_API_KEY is unset; Anthropic's key (ANTHROPIC_API_KEY) has no default file.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
}

/// `--budget` and `--confirm-above`: a finite number of USD, 0 or more (NaN, inf and negative
/// amounts would switch the guard off).
///
/// # Errors
///
/// The reason, for clap's `invalid value` message.
pub fn parse_usd(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd >= 0.0 => Ok(usd),
        Ok(_) => Err("must be a finite amount of USD, 0 or more (e.g. 2.50)".to_owned()),
        Err(_) => Err("not a number of USD (e.g. 2.50)".to_owned()),
    }
}

/// `--poll-interval` and `--max-poll-interval`: a finite number of seconds above 0. Below 1 s
/// is accepted only for a server on this machine, which [`poll_interval`] checks.
///
/// # Errors
///
/// The reason, for clap's `invalid value` message.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= MIN_POLL_SECS => Ok(secs),
        Ok(_) => Err("must be a number of seconds, at least 1".to_owned()),
        Err(_) => Err("not a number of seconds (e.g. 5)".to_owned()),
    }
}

/// The shortest interval a server on loopback may be polled at (the tests and the emulator).
const MIN_POLL_SECS: f64 = 0.01;

/// A polling interval from `--<flag>`: at least 1 s, unless the server is on this machine
/// (`local`: the emulator, or a loopback base URL, as the tests use), where down to 10 ms.
///
/// # Errors
///
/// A usage error when a remote server would be polled more than once a second.
pub fn poll_interval(flag: &str, secs: f64, local: bool) -> anyhow::Result<std::time::Duration> {
    if secs < 1.0 && !local {
        return Err(crate::usage_error(
            format!("--{flag} {secs} is too short: the API is polled at most once a second"),
            Some(
                "use 1 or more (intervals under 1 s are only for a server on this machine, such as --emulator)",
            ),
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs.max(MIN_POLL_SECS)))
}

/// Whether `base_url` names this machine (`localhost`, `127.x.x.x`, `[::1]`).
pub fn is_loopback(base_url: &str) -> bool {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Asks `question` on stderr and reads the answer from stdin: true for y or yes. The question
/// behind the `--yes` flags; callers ask only when stdin is a terminal.
///
/// # Errors
///
/// stderr or stdin fail.
pub fn ask_yes_no(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, Write};
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{question}")?;
    stderr.flush()?;
    drop(stderr);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Refuses a directory flag (`--out`, `--work-dir`) that names an existing file, before
/// anything is written under it.
///
/// # Errors
///
/// A usage error naming the flag and the path.
pub fn check_dir_flag(flag: &str, path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() && !path.is_dir() {
        return Err(crate::usage_error(
            format!(
                "{flag} {} is a file, not a directory",
                crate::term::Shown(path.display())
            ),
            Some(&format!(
                "give {flag} a directory (it is created when missing)"
            )),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_intervals_that_would_switch_a_guard_off_are_refused() {
        assert_eq!(parse_usd("2.5"), Ok(2.5));
        assert_eq!(parse_usd("0"), Ok(0.0));
        for bad in ["NaN", "inf", "-1", "-inf", "x"] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_seconds("0.05"), Ok(0.05));
        for bad in ["0", "-1", "NaN", "inf"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        assert!(poll_interval("poll-interval", 0.05, false).is_err());
        assert_eq!(
            poll_interval("poll-interval", 0.05, true).unwrap(),
            std::time::Duration::from_millis(50)
        );
        assert!(poll_interval("poll-interval", 1.0, false).is_ok());
    }

    #[test]
    fn loopback_urls_are_told_from_remote_ones() {
        for local in [
            "http://127.0.0.1:8089/v1",
            "http://localhost/v1",
            "http://[::1]:80/v1",
            "http://u:p@127.0.0.2:1/v1",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "https://api.openai.com/v1",
            "http://127.0.0.1.evil.com/v1",
            "http://evil.com/?127.0.0.1",
            "http://localhost@evil.com/",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }
}
