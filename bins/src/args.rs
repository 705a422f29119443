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
