//! The API key and client settings from the environment, as the old scripts and the SDK read them.

use std::path::{Path, PathBuf};

use lesson_job::{Provider, ProviderClient};
use openai_batch_client::{ClientConfig, RetryProgress};
use secrecy::SecretString;

/// The default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The file the old Python scripts read the key from, in the working directory.
pub const LEGACY_KEY_FILE: &str = "openaiapikey.txt";

/// Where the API key came from (said to the user; the key itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable: `OPENAI_API_KEY` or `ANTHROPIC_API_KEY`.
    Env(&'static str),
    /// A file given with `--api-key-file`, or `./openaiapikey.txt`.
    File(PathBuf),
    /// The in-process emulator, which needs no real key.
    Emulator,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(name) => f.write_str(name),
            KeySource::File(path) => write!(f, "{}", path.display()),
            KeySource::Emulator => f.write_str("the built-in emulator (no key needed)"),
        }
    }
}

/// The environment variable holding `provider`'s key.
pub fn key_variable(provider: Provider) -> &'static str {
    match provider {
        Provider::OpenAi => "OPENAI_API_KEY",
        Provider::Anthropic => "ANTHROPIC_API_KEY",
    }
}

/// Reads the key of `provider`: its variable (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`), else
/// `key_file`, else (OpenAI only, as the old scripts did) `./openaiapikey.txt`; `command`'s
/// hints name only its own flags.
///
/// An empty variable counts as not set (a key file is still looked for), and is named as
/// empty when no key is found.
///
/// # Errors
///
/// A key error (exit 2) when no key is found, a key file cannot be read, or the key is not
/// one line of visible characters (a header cannot carry it).
pub fn load_api_key(
    provider: Provider,
    key_file: Option<&Path>,
    command: crate::Command,
) -> anyhow::Result<(SecretString, KeySource)> {
    let var = key_variable(provider);
    let env = std::env::var(var).ok();
    if let Some(key) = env.as_deref().map(str::trim).filter(|key| !key.is_empty()) {
        check_key(key, var, &format!("set {var} to the key alone"))?;
        return Ok((SecretString::from(key.to_owned()), KeySource::Env(var)));
    }
    let (path, explicit) = match (key_file, provider) {
        (Some(path), _) => (path.to_path_buf(), true),
        (None, Provider::OpenAi) => (PathBuf::from(LEGACY_KEY_FILE), false),
        // Anthropic's key has no default file.
        (None, Provider::Anthropic) => return Err(no_key(provider, env.is_some(), command)),
    };
    let shown = crate::term::Shown(path.display()).to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            let key = text.trim();
            check_key(
                key,
                &format!("the API key file {shown}"),
                &format!("put the key alone on the file's first line, or set {var}"),
            )?;
            Ok((SecretString::from(key.to_owned()), KeySource::File(path)))
        }
        Ok(_) => Err(key_error(
            format!("the API key file {shown} is empty"),
            Some(&format!("put the key in the file, or set {var}")),
        )),
        Err(err) if explicit || err.kind() != std::io::ErrorKind::NotFound => Err(key_error(
            format!("cannot read the API key file {shown}: {err}"),
            Some(&format!("check --api-key-file, or set {var}")),
        )),
        Err(_) => Err(no_key(provider, env.is_some(), command)),
    }
}

/// A key is one line of visible ASCII characters: anything else cannot go into the
/// `Authorization` header (a second line in a key file, a pasted space or quote mark).
fn check_key(key: &str, source: &str, fix: &str) -> anyhow::Result<()> {
    let lines = key.lines().filter(|line| !line.trim().is_empty()).count();
    if lines > 1 {
        return Err(key_error(
            format!("{source} holds {lines} lines; a key is one line"),
            Some(fix),
        ));
    }
    if let Some(bad) = key.chars().find(|c| !c.is_ascii_graphic()) {
        let what = match bad {
            ' ' | '\t' => "a space".to_owned(),
            '\n' | '\r' => "a line break".to_owned(),
            other => format!("the character U+{:04X}", u32::from(other)),
        };
        return Err(key_error(
            format!(
                "{source} holds {what} inside the key; a key is letters, digits and `-` or `_`"
            ),
            Some(fix),
        ));
    }
    Ok(())
}

/// A problem with the API key: exit 2, kind `key` in `--json`.
fn key_error(message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    anyhow::Error::new(crate::UsageError {
        message: message.into(),
        hint: hint.map(str::to_owned),
        kind: crate::ErrorKind::Key,
    })
}

/// No key anywhere: the variable unset (or empty), no `--api-key-file`, and for OpenAI no
/// `./openaiapikey.txt`.
fn no_key(provider: Provider, env_is_empty: bool, command: crate::Command) -> anyhow::Error {
    let var = key_variable(provider);
    let state = if env_is_empty {
        "is empty"
    } else {
        "is not set"
    };
    let (name, no_file) = match provider {
        Provider::OpenAi => ("OpenAI", format!(", and there is no ./{LEGACY_KEY_FILE}")),
        Provider::Anthropic => ("Anthropic", String::new()),
    };
    let hint = match command {
        crate::Command::Generate => format!(
            "export {var}=..., or pass --api-key-file PATH; \
             to try the tool without a key, add --emulator (or --dry-run to only estimate)"
        ),
        _ => format!("export {var}=..., or pass --api-key-file PATH"),
    };
    key_error(
        format!("no {name} API key: {var} {state}{no_file}"),
        Some(&hint),
    )
}

/// The base URL of `provider`: the flag, else `OPENAI_BASE_URL` or `ANTHROPIC_BASE_URL`,
/// else the provider's API.
pub fn base_url(provider: Provider, flag: Option<&str>) -> String {
    let (var, default) = match provider {
        Provider::OpenAi => ("OPENAI_BASE_URL", DEFAULT_BASE_URL),
        Provider::Anthropic => (
            "ANTHROPIC_BASE_URL",
            anthropic_batch_client::DEFAULT_BASE_URL,
        ),
    };
    flag.map(str::to_owned)
        .or_else(|| std::env::var(var).ok())
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The emulator's base URL for `provider`'s client (OpenAI's ends in `/v1`, Anthropic's
/// does not).
pub fn emulator_url(provider: Provider, emulator: &batch_emulator::Emulator) -> String {
    match provider {
        Provider::OpenAi => emulator.base_url().to_owned(),
        Provider::Anthropic => emulator.anthropic_base_url(),
    }
}

/// A client of `provider` at `base_url` with `api_key`, reporting its retries to `retries`.
///
/// # Errors
///
/// When the base URL is not an http(s) URL or the key cannot go into a header.
pub fn connect(
    provider: Provider,
    base_url: String,
    api_key: SecretString,
    retries: std::sync::Arc<dyn RetryProgress>,
) -> anyhow::Result<ProviderClient> {
    Ok(match provider {
        Provider::OpenAi => ProviderClient::OpenAi(
            openai_batch_client::Client::new(client_config(base_url, api_key))?
                .with_retry_progress(retries),
        ),
        Provider::Anthropic => ProviderClient::Anthropic(
            anthropic_batch_client::Client::new(anthropic_batch_client::ClientConfig::new(
                base_url, api_key,
            ))?
            .with_retry_progress(retries),
        ),
    })
}

/// A client configuration with the organization and project from `OPENAI_ORG_ID` and
/// `OPENAI_PROJECT_ID` when set.
pub fn client_config(base_url: String, api_key: SecretString) -> ClientConfig {
    let mut config = ClientConfig::new(base_url, api_key);
    config.organization = std::env::var("OPENAI_ORG_ID")
        .ok()
        .filter(|v| !v.is_empty());
    config.project = std::env::var("OPENAI_PROJECT_ID")
        .ok()
        .filter(|v| !v.is_empty());
    config
}
