//! The API key and client settings from the environment, as the old scripts and the SDK read them.

use std::path::{Path, PathBuf};

use openai_batch_client::ClientConfig;
use secrecy::SecretString;

use crate::usage_error;

/// The default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The file the old Python scripts read the key from, in the working directory.
pub const LEGACY_KEY_FILE: &str = "openaiapikey.txt";

/// Where the API key came from (said to the user; the key itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The `OPENAI_API_KEY` environment variable.
    Env,
    /// A file given with `--api-key-file`, or `./openaiapikey.txt`.
    File(PathBuf),
    /// The in-process emulator, which needs no real key.
    Emulator,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => f.write_str("OPENAI_API_KEY"),
            KeySource::File(path) => write!(f, "{}", path.display()),
            KeySource::Emulator => f.write_str("the built-in emulator (no key needed)"),
        }
    }
}

/// Reads the key: `OPENAI_API_KEY`, else `key_file`, else `./openaiapikey.txt`.
///
/// # Errors
///
/// A usage error (exit 2) when no key is found or a key file cannot be read.
pub fn load_api_key(key_file: Option<&Path>) -> anyhow::Result<(SecretString, KeySource)> {
    if let Some(key) = std::env::var("OPENAI_API_KEY")
        .ok()
        .map(|key| key.trim().to_owned())
        .filter(|key| !key.is_empty())
    {
        return Ok((SecretString::from(key), KeySource::Env));
    }
    let (path, explicit) = match key_file {
        Some(path) => (path.to_path_buf(), true),
        None => (PathBuf::from(LEGACY_KEY_FILE), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok((
            SecretString::from(text.trim().to_owned()),
            KeySource::File(path),
        )),
        Ok(_) => Err(usage_error(
            format!(
                "the API key file {} is empty",
                crate::term::Shown(path.display())
            ),
            Some("put the key in the file, or set OPENAI_API_KEY"),
        )),
        Err(err) if explicit || err.kind() != std::io::ErrorKind::NotFound => Err(usage_error(
            format!(
                "cannot read the API key file {}: {err}",
                crate::term::Shown(path.display())
            ),
            Some("check --api-key-file, or set OPENAI_API_KEY"),
        )),
        Err(_) => Err(usage_error(
            "no OpenAI API key: OPENAI_API_KEY is not set, and there is no ./openaiapikey.txt",
            Some(
                "export OPENAI_API_KEY=..., or pass --api-key-file PATH; \
                 to try the tool without a key, add --emulator (or --dry-run to only estimate)",
            ),
        )),
    }
}

/// The base URL: the flag, else `OPENAI_BASE_URL`, else the OpenAI API.
pub fn base_url(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(|| std::env::var("OPENAI_BASE_URL").ok())
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
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
