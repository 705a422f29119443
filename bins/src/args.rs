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

/// `--base-url`, `--api-key-file`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// API base URL [env: OPENAI_BASE_URL; default: `https://api.openai.com/v1`].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Read the API key from this file when OPENAI_API_KEY is not set [default: ./openaiapikey.txt].
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
}
