//! `RequestSettings`: everything about a request that is not the lesson, loadable from
//! `lessons.toml`.

use std::collections::BTreeMap;
use std::path::Path;

use curriculum_parser::{Complexity, Level};
use serde::{Deserialize, Serialize};

use crate::{Error, ModelPrice, PriceTable};

/// How requests are built and estimated. Every field has a default (the Data Governance
/// curriculum's values), so a `lessons.toml` lists only what differs; binaries override fields
/// from flags. `crates/batch-request/lessons.example.toml` lists every key with its default.
///
/// ```
/// let settings = batch_request::RequestSettings::from_toml_str(
///     "model = \"gpt-5-mini\"\n[[replacements]]\nfrom = \"SaaS\"\nto = \"data\"\n",
///     "lessons.toml".as_ref(),
/// )?;
/// assert_eq!(settings.model, "gpt-5-mini");
/// assert_eq!(settings.max_completion_tokens, 16384);
/// assert_eq!(settings.replacements[0].to, "data");
/// # Ok::<(), batch_request::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestSettings {
    /// The model every request names (`gpt-4o-mini`).
    pub model: String,
    /// `max_completion_tokens` of every request (16384); also the upper bound of the output
    /// estimate.
    pub max_completion_tokens: u32,
    /// Sampling temperature; omitted from requests unless set (reasoning models accept only
    /// the default).
    pub temperature: Option<f64>,
    /// A system message sent before the prompt, if any.
    pub system_message: Option<String>,
    /// The curriculum's name (`Data Governance`): `{{curriculum_name}}` and the legacy preamble.
    pub curriculum_name: String,
    /// Who the lessons are for: `{{audience}}`.
    pub audience: String,
    /// The kind of organization the learners work in: `{{organization}}`.
    pub organization: String,
    /// The subject domain: `{{domain}}`.
    pub domain: String,
    /// `{{prerequisites}}` of the first lesson of each module.
    pub default_prerequisites: String,
    /// The complexity assumed for a lesson without a tag (`I`).
    pub default_complexity: Complexity,
    /// How many characters of the outline `{{curriculum}}` and the legacy wrapping carry (8000).
    pub curriculum_char_limit: usize,
    /// Wrap legacy templates in the old scripts' preamble and outline excerpt; unset means
    /// "yes for legacy templates" (native templates are never wrapped).
    pub legacy_wrapping: Option<bool>,
    /// Literal replacements applied in order to each filled template (before legacy wrapping).
    pub replacements: Vec<Replacement>,
    /// Expected output tokens per complexity level, for the estimate.
    pub expected_output_tokens: ExpectedOutputTokens,
    /// Prices that override or extend the built-in table, by model name (USD per 1M tokens).
    pub prices: BTreeMap<String, PriceSetting>,
}

/// One literal `from -> to` replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    /// The text to find (not empty).
    pub from: String,
    /// The text to put in its place.
    pub to: String,
}

/// Expected output tokens per complexity level.
///
/// The defaults follow the old prompt's length guidance (F ~350-400 lines, I ~400-500,
/// A 500+; E is taken a step above A) at 10 tokens per Markdown line, an average over prose,
/// list, table, code and blank lines: F 375 lines, I 450, A 550, E 650.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpectedOutputTokens {
    /// Foundation.
    #[serde(rename = "F")]
    pub foundation: u32,
    /// Intermediate.
    #[serde(rename = "I")]
    pub intermediate: u32,
    /// Advanced.
    #[serde(rename = "A")]
    pub advanced: u32,
    /// Expert.
    #[serde(rename = "E")]
    pub expert: u32,
}

/// Prices of one model in settings, USD per 1M tokens; batch prices default to half the
/// standard ones, as OpenAI charges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSetting {
    /// Standard input price.
    pub input: f64,
    /// Standard output price.
    pub output: f64,
    /// Standard cached-input price.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Batch input price (default: half of `input`).
    #[serde(default)]
    pub batch_input: Option<f64>,
    /// Batch output price (default: half of `output`).
    #[serde(default)]
    pub batch_output: Option<f64>,
    /// Batch cached-input price (default: none, no cache discount).
    #[serde(default)]
    pub batch_cached_input: Option<f64>,
}

impl Default for RequestSettings {
    fn default() -> Self {
        RequestSettings {
            model: "gpt-4o-mini".to_owned(),
            max_completion_tokens: 16384,
            temperature: None,
            system_message: None,
            curriculum_name: "Data Governance".to_owned(),
            audience: "Data governance professionals, data stewards, and compliance officers"
                .to_owned(),
            organization: "Organizations implementing data governance programs".to_owned(),
            domain: "Data governance, data management, compliance".to_owned(),
            default_prerequisites: "Basic understanding of data governance concepts".to_owned(),
            default_complexity: Complexity::single(Level::Intermediate),
            curriculum_char_limit: 8000,
            legacy_wrapping: None,
            replacements: Vec::new(),
            expected_output_tokens: ExpectedOutputTokens::default(),
            prices: BTreeMap::new(),
        }
    }
}

impl Default for ExpectedOutputTokens {
    fn default() -> Self {
        const TOKENS_PER_LINE: u32 = 10;
        ExpectedOutputTokens {
            foundation: 375 * TOKENS_PER_LINE,
            intermediate: 450 * TOKENS_PER_LINE,
            advanced: 550 * TOKENS_PER_LINE,
            expert: 650 * TOKENS_PER_LINE,
        }
    }
}

impl ExpectedOutputTokens {
    /// The figure for one level.
    pub fn for_level(&self, level: Level) -> u32 {
        match level {
            Level::Foundational => self.foundation,
            Level::Intermediate => self.intermediate,
            Level::Advanced => self.advanced,
            Level::Expert => self.expert,
        }
    }

    /// The figure for a tag; a range takes its upper level, as the duration does.
    pub fn for_complexity(&self, complexity: Complexity) -> u32 {
        self.for_level(complexity.to)
    }
}

impl PriceSetting {
    /// The full price row, batch prices filled in.
    pub fn to_model_price(self) -> ModelPrice {
        ModelPrice {
            input: self.input,
            cached_input: self.cached_input,
            output: self.output,
            batch_input: self.batch_input.unwrap_or(self.input / 2.0),
            batch_cached_input: self.batch_cached_input,
            batch_output: self.batch_output.unwrap_or(self.output / 2.0),
        }
    }
}

impl RequestSettings {
    /// Reads settings from a TOML file; missing keys keep their defaults.
    ///
    /// # Errors
    ///
    /// [`Error::ReadSettings`] when the file cannot be read, else as
    /// [`RequestSettings::from_toml_str`].
    pub fn from_toml_file(path: &Path) -> Result<RequestSettings, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSettings {
            path: path.to_owned(),
            source,
        })?;
        RequestSettings::from_toml_str(&text, path)
    }

    /// Parses settings from TOML text; `origin` names the file in errors.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSetting`] for a key this crate does not know,
    /// [`Error::ParseSettings`] for bad TOML or a value of the wrong type (both with the line),
    /// [`Error::InvalidSetting`] for a value out of range.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<RequestSettings, Error> {
        let settings: RequestSettings = toml::from_str(text).map_err(|source| {
            let line = source.span().map_or(1, |span| line_of(text, span.start));
            match unknown_key(source.message()) {
                Some((key, known)) => Error::UnknownSetting {
                    path: origin.to_owned(),
                    line,
                    key,
                    known,
                },
                None => Error::ParseSettings {
                    path: origin.to_owned(),
                    line,
                    source,
                },
            }
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the values that types alone do not: the binaries call it after applying flags.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] naming the first bad key.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |key: &str, reason: &str| {
            Err(Error::InvalidSetting {
                key: key.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.model.trim().is_empty() {
            return invalid("model", "must not be empty");
        }
        if self.max_completion_tokens == 0 {
            return invalid("max_completion_tokens", "must be at least 1");
        }
        if let Some(temperature) = self.temperature
            && !(0.0..=2.0).contains(&temperature)
        {
            return invalid("temperature", "must be between 0 and 2");
        }
        if self.curriculum_char_limit == 0 {
            return invalid("curriculum_char_limit", "must be at least 1");
        }
        if let Some(index) = self.replacements.iter().position(|r| r.from.is_empty()) {
            return invalid(&format!("replacements[{index}].from"), "must not be empty");
        }
        for (model, price) in &self.prices {
            let values = [
                Some(price.input),
                Some(price.output),
                price.cached_input,
                price.batch_input,
                price.batch_output,
                price.batch_cached_input,
            ];
            if values
                .into_iter()
                .flatten()
                .any(|value| !value.is_finite() || value < 0.0)
            {
                return invalid(
                    &format!("prices.{model}"),
                    "prices must be finite and not negative",
                );
            }
        }
        Ok(())
    }

    /// The built-in price table with this file's prices laid over it.
    pub fn price_table(&self) -> PriceTable {
        let mut table = PriceTable::builtin();
        for (model, price) in &self.prices {
            table.models.insert(model.clone(), price.to_model_price());
        }
        table
    }

    /// Expected output tokens of one lesson: its complexity (or the default one), capped at
    /// `max_completion_tokens`.
    pub fn expected_output_tokens(&self, complexity: Option<Complexity>) -> u32 {
        self.expected_output_tokens
            .for_complexity(complexity.unwrap_or(self.default_complexity))
            .min(self.max_completion_tokens)
    }

    /// Whether prompts built from `template` get the legacy wrapping.
    pub fn wraps_legacy(&self, template: &crate::Template) -> bool {
        template.is_legacy() && self.legacy_wrapping.unwrap_or(true)
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    1 + text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" into the key and the list.
fn unknown_key(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .join(", ");
    Some((key.to_owned(), known))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RequestSettings, Error> {
        RequestSettings::from_toml_str(text, Path::new("lessons.toml"))
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let settings = parse("").unwrap();
        assert_eq!(settings, RequestSettings::default());
        assert_eq!(settings.model, "gpt-4o-mini");
        assert_eq!(settings.max_completion_tokens, 16384);
        assert_eq!(settings.temperature, None);
        assert_eq!(settings.curriculum_char_limit, 8000);
        assert_eq!(settings.expected_output_tokens(None), 4500);
    }

    #[test]
    fn example_file_holds_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons.example.toml");
        let settings = RequestSettings::from_toml_file(&path).unwrap();
        assert_eq!(settings, RequestSettings::default());
        // Every commented-out example parses too.
        let text = std::fs::read_to_string(&path).unwrap();
        let uncommented: String = text
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(bare) if !bare.starts_with(' ') && !bare.is_empty() => bare,
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let settings = RequestSettings::from_toml_str(&uncommented, &path).unwrap();
        assert_eq!(settings.temperature, Some(0.7));
        assert_eq!(settings.replacements.len(), 1);
        assert!(settings.price_table().get("my-model").is_some());
    }

    #[test]
    fn reads_every_setting() {
        let settings = parse(
            r#"
model = "gpt-5-mini"
max_completion_tokens = 4000
temperature = 0.2
system_message = "Be brief."
curriculum_name = "Snowflake Tuning"
audience = "Snowflake engineers"
organization = "Teams running Snowflake"
domain = "Snowflake optimization"
default_prerequisites = "SQL"
default_complexity = "F-I"
curriculum_char_limit = 100
legacy_wrapping = false

[[replacements]]
from = "SaaS"
to = "Snowflake"

[expected_output_tokens]
F = 1000
E = 9000

[prices.my-model]
input = 1.0
output = 4.0
"#,
        )
        .unwrap();
        assert_eq!(settings.model, "gpt-5-mini");
        assert_eq!(settings.temperature, Some(0.2));
        assert_eq!(settings.default_complexity.to_string(), "F-I");
        assert_eq!(settings.legacy_wrapping, Some(false));
        assert_eq!(settings.expected_output_tokens.foundation, 1000);
        assert_eq!(settings.expected_output_tokens.intermediate, 4500);
        // The cap: E would expect 9000, more than max_completion_tokens.
        let expert = Complexity::single(Level::Expert);
        assert_eq!(settings.expected_output_tokens(Some(expert)), 4000);
        let table = settings.price_table();
        let price = table.get("my-model").unwrap();
        assert_eq!((price.batch_input, price.batch_output), (0.5, 2.0));
        assert!(table.get("gpt-4o-mini").is_some());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse("model = \"gpt-4o\"\n\nmodle = \"x\"\n").unwrap_err();
        let Error::UnknownSetting {
            path,
            line,
            key,
            known,
        } = &err
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(
            (path.as_path(), *line, key.as_str()),
            (Path::new("lessons.toml"), 3, "modle")
        );
        assert!(known.starts_with("model, max_completion_tokens"), "{known}");

        let err = parse("[prices.x]\ninput = 1.0\noutput = 2.0\ninptu = 3.0\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownSetting { key, line: 4, .. } if key == "inptu"),
            "{err:?}"
        );
        let err = parse("[[replacements]]\nfrom = \"a\"\nto = \"b\"\nwith = \"c\"\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownSetting { key, line: 4, .. } if key == "with"),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_types_and_bad_values() {
        let err = parse("max_completion_tokens = \"many\"\n").unwrap_err();
        assert!(
            matches!(err, Error::ParseSettings { line: 1, .. }),
            "{err:?}"
        );
        let err = parse("model = \n").unwrap_err();
        assert!(
            matches!(err, Error::ParseSettings { line: 1, .. }),
            "{err:?}"
        );
        let err = parse("[[replacements]]\nfrom = \"\"\nto = \"x\"\n").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSetting { key, .. } if key == "replacements[0].from"),
            "{err:?}"
        );
        let err = parse("temperature = 3.5\n").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSetting { key, .. } if key == "temperature"),
            "{err:?}"
        );
    }

    #[test]
    fn reads_a_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lessons.toml");
        std::fs::write(&path, "model = \"gpt-4.1-mini\"\n").unwrap();
        assert_eq!(
            RequestSettings::from_toml_file(&path).unwrap().model,
            "gpt-4.1-mini"
        );
        let err = RequestSettings::from_toml_file(&dir.path().join("missing.toml")).unwrap_err();
        assert!(matches!(err, Error::ReadSettings { .. }), "{err:?}");
    }
}
