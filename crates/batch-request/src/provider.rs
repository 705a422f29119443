//! Which batch API serves a model: OpenAI's Files + Batches or Anthropic's Message Batches.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A batch API provider.
///
/// ```
/// use batch_request::Provider;
///
/// assert_eq!(Provider::for_model("claude-sonnet-4-5"), Provider::Anthropic);
/// assert_eq!(Provider::for_model("gpt-4o-mini"), Provider::OpenAi);
/// assert_eq!("anthropic".parse::<Provider>().unwrap(), Provider::Anthropic);
/// assert_eq!(Provider::OpenAi.to_string(), "openai");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI's Files + Batches API (`/v1/files`, `/v1/batches`), or a server that speaks it.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's Message Batches API (`/v1/messages/batches`).
    Anthropic,
}

impl Provider {
    /// The provider a model name implies: `claude-*` is Anthropic's, everything else is
    /// taken for OpenAI's (or an OpenAI-compatible server's).
    pub fn for_model(model: &str) -> Provider {
        if model.starts_with("claude-") {
            Provider::Anthropic
        } else {
            Provider::OpenAi
        }
    }

    /// The name as flags and files spell it: `openai` or `anthropic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is neither `openai` nor `anthropic`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}`: expected `openai` or `anthropic`")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(name: &str) -> Result<Provider, UnknownProvider> {
        match name.to_ascii_lowercase().as_str() {
            "openai" => Ok(Provider::OpenAi),
            "anthropic" => Ok(Provider::Anthropic),
            _ => Err(UnknownProvider(name.to_owned())),
        }
    }
}
