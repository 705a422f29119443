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
    /// A system message sent before the prompt, if any. With a template split by a
    /// [`crate::LESSON_MARKER`] line it starts the one system message, followed by a blank
    /// line and the template's shared part.
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
    /// `reasoning_effort` of every request; left out of the body unless set. Only reasoning
    /// models ([`crate::is_reasoning_model`]) accept it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// `verbosity` of every request; left out of the body unless set (GPT-5 family).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<Verbosity>,
    /// More chat completion parameters (`[body]` in TOML), merged into every request body.
    /// Keys are checked against the spec's `CreateChatCompletionRequest`: a parameter the tool
    /// writes itself (model, messages, max_completion_tokens, temperature, reasoning_effort,
    /// verbosity, prompt_cache_key), `stream`, an unknown key, or a value of the wrong JSON
    /// type is an error.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub body: BTreeMap<String, serde_json::Value>,
    /// Hidden reasoning tokens expected per lesson from reasoning models, by
    /// `reasoning_effort`; counted as output in the estimate.
    #[serde(skip_serializing_if = "ExpectedReasoningTokens::is_default")]
    pub expected_reasoning_tokens: ExpectedReasoningTokens,
    /// Enqueued input-token limits by model name (`[enqueued_token_limit]`; quote a name with
    /// a dot, `"gpt-4.1" = 900000`), overriding the
    /// built-in Tier 1 figures of [`crate::enqueued_token_limit`]; see
    /// [`RequestSettings::enqueued_token_limit_for`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub enqueued_token_limit: BTreeMap<String, u64>,
    /// Context windows in tokens by model name (`[context_window]`; quote a name with a dot,
    /// `"gpt-4.1" = 1047576`), overriding or extending the built-in figures of
    /// [`crate::context_window`]; see [`RequestSettings::context_window_for`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context_window: BTreeMap<String, u64>,
    /// Most requests in one batch (1 to 50,000, the API's limit); unset means the API's limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests_per_batch: Option<usize>,
    /// What an answer needs to be written as a lesson (`[quality]`).
    #[serde(skip_serializing_if = "QualitySettings::is_default")]
    pub quality: QualitySettings,
    /// Where the commands find their files (`[paths]`); flags override them. Not serialized:
    /// where the files are changes no request, so it is not part of the settings' hash.
    #[serde(skip_serializing)]
    pub paths: PathSettings,
}

/// Where the commands find their files (`[paths]` of `lessons.toml`): each unset key falls back
/// to the flag's default. [`RequestSettings::from_toml_file`] resolves relative paths against
/// the settings file's directory, so a project's `lessons.toml` works from any directory.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let file = dir.path().join("lessons.toml");
/// std::fs::write(&file, "[paths]\ncontent = \"outline.md\"\nout = \"/srv/lessons\"\n")?;
/// let settings = batch_request::RequestSettings::from_toml_file(&file)?;
/// assert_eq!(settings.paths.content, Some(dir.path().join("outline.md")));
/// assert_eq!(settings.paths.out.as_deref(), Some(std::path::Path::new("/srv/lessons")));
/// assert_eq!(settings.paths.prompt, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathSettings {
    /// The curriculum outline (`--content`).
    pub content: Option<std::path::PathBuf>,
    /// The prompt template (`--prompt`).
    pub prompt: Option<std::path::PathBuf>,
    /// Where lesson files are written (`--out`).
    pub out: Option<std::path::PathBuf>,
    /// Where job folders live (`--work-dir`).
    pub work_dir: Option<std::path::PathBuf>,
}

impl PathSettings {
    /// Each relative path joined onto `base` (absolute ones stay as they are).
    #[must_use]
    pub fn resolved_against(mut self, base: &Path) -> PathSettings {
        for path in [
            &mut self.content,
            &mut self.prompt,
            &mut self.out,
            &mut self.work_dir,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        self
    }
}

/// The quality gate (`[quality]`): what an answer needs, after cleanup, to be written as a
/// lesson; one that falls short is kept in `rejected/` and reported `below_spec`.
///
/// ```
/// let settings = batch_request::RequestSettings::from_toml_str(
///     "[quality]\nmin_words = 500\nrequired_sections = [\"Overview\", \"Exercises\"]\n",
///     "lessons.toml".as_ref(),
/// )?;
/// assert_eq!(settings.quality.min_words, 500);
/// // The user's list applies whatever the template.
/// assert_eq!(settings.quality.sections_for(None), ["Overview", "Exercises"]);
/// // Unset, only the built-in template's sections are required, and only of its lessons.
/// let defaults = batch_request::QualitySettings::default();
/// assert!(defaults.sections_for(None).is_empty());
/// let generic = batch_request::Template::generic_sha256();
/// assert_eq!(defaults.sections_for(Some(generic)).len(), 10);
/// # Ok::<(), batch_request::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualitySettings {
    /// Fewest words a lesson has (200; 0 turns the check off). A real lesson has thousands;
    /// a chat reply or a stub has a few dozen.
    pub min_words: usize,
    /// Headings a lesson must have, as texts or their prefixes, matched ignoring case,
    /// leading numbering (`## 1. Learning Objectives`) and punctuation. Unset: the built-in
    /// template's ten sections ([`crate::GENERIC_SECTIONS`]) for lessons it produced, none
    /// otherwise (an own or legacy template, or results whose template is unknown). An empty
    /// list requires none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_sections: Option<Vec<String>>,
}

impl Default for QualitySettings {
    fn default() -> Self {
        QualitySettings {
            min_words: DEFAULT_MIN_WORDS,
            required_sections: None,
        }
    }
}

/// The default of [`QualitySettings::min_words`].
const DEFAULT_MIN_WORDS: usize = 200;

impl QualitySettings {
    /// The headings required of a lesson made from the template with hash `template_sha256`
    /// (`None` when unknown): the user's `required_sections` when set, else the built-in
    /// template's sections when it made the request, else none.
    pub fn sections_for(&self, template_sha256: Option<&str>) -> Vec<String> {
        match &self.required_sections {
            Some(sections) => sections.clone(),
            None if template_sha256 == Some(crate::Template::generic_sha256()) => {
                crate::GENERIC_SECTIONS.map(str::to_owned).to_vec()
            }
            None => Vec::new(),
        }
    }

    fn is_default(&self) -> bool {
        *self == QualitySettings::default()
    }
}

/// `reasoning_effort`, as the spec's `ReasoningEffort` spells it. Not every reasoning model
/// takes every value (`none` is for newer GPT-5 models, `minimal` for the first ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    /// `none`: no reasoning.
    None,
    /// `minimal`.
    Minimal,
    /// `low`.
    Low,
    /// `medium`: the API's default.
    Medium,
    /// `high`.
    High,
    /// `xhigh`.
    Xhigh,
    /// `max`.
    Max,
}

/// `verbosity`, as the spec's `Verbosity` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// `low`.
    Low,
    /// `medium`: the API's default.
    Medium,
    /// `high`.
    High,
}

/// Hidden reasoning tokens expected per lesson, by `reasoning_effort` (the API's default,
/// `medium`, when the setting is unset). Only reasoning models spend them.
///
/// The defaults are rough allowances for writing one long lesson, growing about threefold per
/// level: none 0, minimal 250, low 1,000, medium 3,000, high 8,000, xhigh 16,000,
/// max 32,000. Measure them on a small batch (`completion_tokens_details.reasoning_tokens`
/// of the answers) and set your own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpectedReasoningTokens {
    /// `none`.
    pub none: u32,
    /// `minimal`.
    pub minimal: u32,
    /// `low`.
    pub low: u32,
    /// `medium`.
    pub medium: u32,
    /// `high`.
    pub high: u32,
    /// `xhigh`.
    pub xhigh: u32,
    /// `max`.
    pub max: u32,
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
            reasoning_effort: None,
            verbosity: None,
            body: BTreeMap::new(),
            expected_reasoning_tokens: ExpectedReasoningTokens::default(),
            enqueued_token_limit: BTreeMap::new(),
            context_window: BTreeMap::new(),
            max_requests_per_batch: None,
            quality: QualitySettings::default(),
            paths: PathSettings::default(),
        }
    }
}

impl Default for ExpectedReasoningTokens {
    fn default() -> Self {
        ExpectedReasoningTokens {
            none: 0,
            minimal: 250,
            low: 1_000,
            medium: 3_000,
            high: 8_000,
            xhigh: 16_000,
            max: 32_000,
        }
    }
}

impl ExpectedReasoningTokens {
    /// The figure for one effort.
    pub fn for_effort(&self, effort: ReasoningEffort) -> u32 {
        match effort {
            ReasoningEffort::None => self.none,
            ReasoningEffort::Minimal => self.minimal,
            ReasoningEffort::Low => self.low,
            ReasoningEffort::Medium => self.medium,
            ReasoningEffort::High => self.high,
            ReasoningEffort::Xhigh => self.xhigh,
            ReasoningEffort::Max => self.max,
        }
    }

    fn is_default(&self) -> bool {
        *self == ExpectedReasoningTokens::default()
    }
}

impl ReasoningEffort {
    /// The value as the API spells it (`medium`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::None => "none",
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
            ReasoningEffort::Xhigh => "xhigh",
            ReasoningEffort::Max => "max",
        }
    }

    /// The effort with this spelling.
    pub fn from_name(name: &str) -> Option<ReasoningEffort> {
        use ReasoningEffort::*;
        [None, Minimal, Low, Medium, High, Xhigh, Max]
            .into_iter()
            .find(|effort| effort.as_str() == name)
    }
}

impl Verbosity {
    /// The value as the API spells it (`low`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verbosity::Low => "low",
            Verbosity::Medium => "medium",
            Verbosity::High => "high",
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
        let mut settings = RequestSettings::from_toml_str(&text, path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        settings.paths = std::mem::take(&mut settings.paths).resolved_against(base);
        Ok(settings)
    }

    /// Parses settings from TOML text; `origin` names the file in errors.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSetting`] for a key this crate does not know,
    /// [`Error::ParseSettings`] for bad TOML or a value of the wrong type (both with the line),
    /// [`Error::BodySetting`] for a `[body]` key that cannot go into requests (with the line),
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
        for (key, value) in &settings.body {
            crate::body::check(key, value).map_err(|reason| Error::BodySetting {
                path: origin.to_owned(),
                line: body_key_line(text, key),
                key: key.clone(),
                reason,
            })?;
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the values that types alone do not: the binaries call it after applying flags.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] naming the first bad key (`body.<key>` for a `[body]` key).
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
        if let Some(max) = self.max_requests_per_batch
            && !(1..=MAX_REQUESTS_PER_BATCH).contains(&max)
        {
            return invalid(
                "max_requests_per_batch",
                "must be between 1 and 50000 (the Batch API's limit per batch)",
            );
        }
        for (model, limit) in &self.enqueued_token_limit {
            if *limit == 0 {
                return invalid(
                    &format!("enqueued_token_limit.{model}"),
                    "must be at least 1",
                );
            }
        }
        for (model, window) in &self.context_window {
            if *window == 0 {
                return invalid(&format!("context_window.{model}"), "must be at least 1");
            }
        }
        if let Some(sections) = &self.quality.required_sections
            && let Some(index) = sections
                .iter()
                .position(|section| !section.chars().any(char::is_alphanumeric))
        {
            return invalid(
                &format!("quality.required_sections[{index}]"),
                "must hold a word (a heading text or its beginning)",
            );
        }
        for (key, value) in &self.body {
            if let Err(reason) = crate::body::check(key, value) {
                return invalid(&format!("body.{key}"), &reason);
            }
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

    /// The enqueued input-token limit of `model`: the `[enqueued_token_limit]` setting (a dated
    /// snapshot falls back to its base name, as prices do), else the built-in Tier 1 figure of
    /// [`crate::enqueued_token_limit`], else `None` (unknown: no limit is enforced).
    ///
    /// ```
    /// let settings = batch_request::RequestSettings::from_toml_str(
    ///     "[enqueued_token_limit]\n\"gpt-4.1-mini\" = 40000000\n",
    ///     "lessons.toml".as_ref(),
    /// )?;
    /// assert_eq!(settings.enqueued_token_limit_for("gpt-4.1-mini-2025-04-14"), Some(40_000_000));
    /// assert_eq!(settings.enqueued_token_limit_for("gpt-4o-mini"), Some(2_000_000));
    /// assert_eq!(settings.enqueued_token_limit_for("llama3.1"), None);
    /// # Ok::<(), batch_request::Error>(())
    /// ```
    pub fn enqueued_token_limit_for(&self, model: &str) -> Option<u64> {
        crate::pricing::lookup(
            self.enqueued_token_limit
                .iter()
                .map(|(name, limit)| (name.as_str(), limit)),
            model,
        )
        .copied()
        .or_else(|| crate::enqueued_token_limit(model))
    }

    /// The context window of `model` in tokens: the `[context_window]` setting (a dated
    /// snapshot or a fine-tune falls back to its base name, as prices do), else the built-in
    /// figure of [`crate::context_window`], else `None` (unknown: requests are not checked).
    ///
    /// ```
    /// let settings = batch_request::RequestSettings::from_toml_str(
    ///     "[context_window]\n\"gpt-4o-mini\" = 200000\nllama3 = 8192\n",
    ///     "lessons.toml".as_ref(),
    /// )?;
    /// assert_eq!(settings.context_window_for("gpt-4o-mini-2024-07-18"), Some(200_000));
    /// assert_eq!(settings.context_window_for("llama3"), Some(8192));
    /// assert_eq!(settings.context_window_for("gpt-4o"), Some(128_000));
    /// assert_eq!(settings.context_window_for("mistral"), None);
    /// # Ok::<(), batch_request::Error>(())
    /// ```
    pub fn context_window_for(&self, model: &str) -> Option<u64> {
        let set = |name: &str| {
            crate::pricing::lookup(
                self.context_window
                    .iter()
                    .map(|(name, window)| (name.as_str(), window)),
                name,
            )
            .copied()
        };
        set(model)
            .or_else(|| set(crate::pricing::base_of_fine_tune(model)))
            .or_else(|| crate::context_window(model))
    }

    /// Hidden reasoning tokens expected per lesson from `model` at the configured
    /// `reasoning_effort` (`medium`, the API's default, when unset): 0 for a model that does
    /// not reason ([`crate::is_reasoning_model`]).
    pub fn expected_reasoning_tokens_for(&self, model: &str) -> u32 {
        if crate::is_reasoning_model(model) {
            self.expected_reasoning_tokens
                .for_effort(self.reasoning_effort.unwrap_or(ReasoningEffort::Medium))
        } else {
            0
        }
    }

    /// Whether prompts built from `template` get the legacy wrapping.
    pub fn wraps_legacy(&self, template: &crate::Template) -> bool {
        template.is_legacy() && self.legacy_wrapping.unwrap_or(true)
    }
}

/// The Batch API's most requests per batch (and per input file).
const MAX_REQUESTS_PER_BATCH: usize = 50_000;

/// 1-based line where `[body]` key `key` is written: `key = ...` or `key.x = ...` inside a
/// `[body]` table, `[body.key]`, or `body.key = ...`; else the `[body]` line; else 1.
fn body_key_line(text: &str, key: &str) -> usize {
    let names_key = |rest: &str| {
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix(key)
            .or_else(|| rest.strip_prefix(&format!("\"{key}\"")))
            .or_else(|| rest.strip_prefix(&format!("'{key}'")));
        rest.is_some_and(|rest| rest.trim_start().starts_with(['=', '.', ']']))
    };
    let mut in_body = false;
    let mut body_line = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[').trim_start();
            in_body = header.starts_with("body") && header[4..].trim_start().starts_with(']');
            if in_body {
                body_line.get_or_insert(index + 1);
            }
            if let Some(rest) = header.strip_prefix("body.")
                && names_key(rest)
            {
                return index + 1;
            }
            continue;
        }
        if in_body && names_key(line) {
            return index + 1;
        }
        if !in_body && let Some(rest) = line.strip_prefix("body") {
            let rest = rest.trim_start();
            if let Some(rest) = rest.strip_prefix('.')
                && names_key(rest)
            {
                return index + 1;
            }
            if rest.starts_with('=') {
                body_line.get_or_insert(index + 1);
            }
        }
    }
    body_line.unwrap_or(1)
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
        assert_eq!(settings.reasoning_effort, Some(ReasoningEffort::Low));
        assert_eq!(settings.verbosity, Some(Verbosity::Medium));
        assert_eq!(settings.max_requests_per_batch, Some(10_000));
        assert_eq!(settings.body.len(), 4);
        // Every key is in the example: the unknown-key error lists them all.
        let Err(Error::UnknownSetting { known, .. }) = parse("no_such_key = 1\n") else {
            panic!("no_such_key was accepted");
        };
        for key in known.split(", ") {
            let forms = [
                format!("{key} ="),
                format!("[{key}]"),
                format!("[[{key}]]"),
                format!("[{key}."),
            ];
            assert!(
                text.lines().any(|line| {
                    let line = line.trim_start_matches('#');
                    forms.iter().any(|form| line.starts_with(form.as_str()))
                }),
                "{key} is not in lessons.example.toml"
            );
        }
        assert_eq!(
            settings.enqueued_token_limit_for("gpt-4.1-mini"),
            Some(2_000_000)
        );
        assert_eq!(settings.replacements.len(), 1);
        assert!(settings.price_table().get("my-model").is_some());
        assert_eq!(settings.context_window_for("llama3.1"), Some(131_072));
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

    /// Issue 13: `[paths]` is read, relative paths resolve against the file's directory, and
    /// the paths never change the settings' serialization (their hash).
    #[test]
    fn paths_resolve_against_the_settings_file_and_stay_out_of_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lessons.toml");
        std::fs::write(
            &file,
            "model = \"gpt-4o\"\n[paths]\ncontent = \"in/outline.md\"\nprompt = \"p.md\"\nwork_dir = \"/abs/work\"\n",
        )
        .unwrap();
        let settings = RequestSettings::from_toml_file(&file).unwrap();
        assert_eq!(
            settings.paths,
            PathSettings {
                content: Some(dir.path().join("in/outline.md")),
                prompt: Some(dir.path().join("p.md")),
                out: None,
                work_dir: Some("/abs/work".into()),
            }
        );
        let without = RequestSettings {
            paths: PathSettings::default(),
            ..settings.clone()
        };
        assert_eq!(
            serde_json::to_string(&settings).unwrap(),
            serde_json::to_string(&without).unwrap()
        );
        let err = parse("[paths]\ncontnet = \"x\"\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownSetting { key, line: 2, .. } if key == "contnet"),
            "{err:?}"
        );
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
    fn reads_body_parameters_and_limits() {
        let settings = parse(
            r#"
model = "gpt-5-mini"
reasoning_effort = "low"
verbosity = "high"
max_requests_per_batch = 1000

[body]
top_p = 0.9
seed = 7
stop = ["END"]
service_tier = "flex"
response_format = { type = "text" }

[body.metadata]
course = "datagov"

[expected_reasoning_tokens]
low = 1500

[enqueued_token_limit]
gpt-5-mini = 20000000
"#,
        )
        .unwrap();
        assert_eq!(settings.reasoning_effort, Some(ReasoningEffort::Low));
        assert_eq!(settings.verbosity, Some(Verbosity::High));
        assert_eq!(settings.max_requests_per_batch, Some(1000));
        assert_eq!(
            serde_json::to_value(&settings.body).unwrap(),
            serde_json::json!({
                "top_p": 0.9, "seed": 7, "stop": ["END"], "service_tier": "flex",
                "response_format": {"type": "text"}, "metadata": {"course": "datagov"},
            })
        );
        assert_eq!(settings.expected_reasoning_tokens.low, 1500);
        assert_eq!(settings.expected_reasoning_tokens.medium, 3000);
        assert_eq!(settings.expected_reasoning_tokens_for("gpt-5-mini"), 1500);
        assert_eq!(settings.expected_reasoning_tokens_for("gpt-4o-mini"), 0);
        assert_eq!(
            settings.enqueued_token_limit_for("gpt-5-mini-2025-08-07"),
            Some(20_000_000)
        );
        assert_eq!(
            settings.enqueued_token_limit_for("gpt-5-nano"),
            Some(2_000_000)
        );
        assert_eq!(settings.enqueued_token_limit_for("gpt-4.1-mini"), None);
        // Unset effort: the API's default, medium.
        let defaults = RequestSettings::default();
        assert_eq!(defaults.expected_reasoning_tokens_for("o4-mini"), 3000);

        let err = parse("reasoning_effort = \"extreme\"\n").unwrap_err();
        assert!(
            matches!(err, Error::ParseSettings { line: 1, .. }),
            "{err:?}"
        );
        let err = parse("verbosity = \"max\"\n").unwrap_err();
        assert!(
            matches!(err, Error::ParseSettings { line: 1, .. }),
            "{err:?}"
        );
        for effort in ["none", "minimal", "low", "medium", "high", "xhigh", "max"] {
            let settings = parse(&format!("reasoning_effort = \"{effort}\"\n")).unwrap();
            assert_eq!(
                settings.reasoning_effort.map(ReasoningEffort::as_str),
                Some(effort)
            );
        }
    }

    #[test]
    fn body_keys_the_tool_sets_or_does_not_know_are_refused() {
        let check = |text: &str, key: &str, line: usize, reason: &str| {
            let err = parse(text).unwrap_err();
            let Error::BodySetting {
                path,
                line: got_line,
                key: got_key,
                reason: got_reason,
            } = &err
            else {
                panic!("unexpected {err:?}");
            };
            assert_eq!(path, Path::new("lessons.toml"));
            assert_eq!((got_key.as_str(), *got_line), (key, line), "{text}");
            assert!(got_reason.starts_with(reason), "{got_reason}");
        };
        check(
            "model = \"gpt-5-mini\"\n\n[body]\nseed = 1\nmodel = \"gpt-4o\"\n",
            "model",
            5,
            "is set by the tool: use the `model` setting instead",
        );
        check(
            "[body]\nmax_completion_tokens = 10\n",
            "max_completion_tokens",
            2,
            "is set by the tool: use the `max_completion_tokens` setting instead",
        );
        check(
            "[body]\n\"temperature\" = 1.0\n",
            "temperature",
            2,
            "is set by the tool: use the `temperature` setting instead",
        );
        check(
            "body = { verbosity = \"low\" }\n",
            "verbosity",
            1,
            "is set by the tool",
        );
        check(
            "[body.prompt_cache_key]\nx = 1\n",
            "prompt_cache_key",
            1,
            "is set by the tool",
        );
        check("body.stream = true\n", "stream", 1, "cannot be used");
        check(
            "[body]\ntop-p = 0.5\n",
            "top-p",
            2,
            "is not a parameter of chat completion requests (did you mean `top_p`?)",
        );
        check("[body]\nseed = \"7\"\n", "seed", 2, "must be an integer");
        let err = parse("[body]\nreasoning_effort = \"low\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "lessons.toml:2: [body] key `reasoning_effort` is set by the tool: use the `reasoning_effort` setting instead"
        );
        // Settings built in code are checked by `validate`.
        let mut settings = RequestSettings::default();
        settings
            .body
            .insert("n".to_owned(), serde_json::json!("two"));
        let err = settings.validate().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSetting { key, reason } if key == "body.n" && reason == "must be an integer, not `\"two\"`"),
            "{err:?}"
        );
    }

    #[test]
    fn limits_are_validated() {
        for bad in [
            "max_requests_per_batch = 0\n",
            "max_requests_per_batch = 50001\n",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidSetting { key, .. } if key == "max_requests_per_batch"),
                "{err:?}"
            );
        }
        for good in [1, 50_000] {
            let settings = parse(&format!("max_requests_per_batch = {good}\n")).unwrap();
            assert_eq!(settings.max_requests_per_batch, Some(good));
        }
        let err = parse("[enqueued_token_limit]\ngpt-4o = 0\n").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSetting { key, .. } if key == "enqueued_token_limit.gpt-4o"),
            "{err:?}"
        );
        let err = parse("[context_window]\n\"gpt-4.1\" = 0\n").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSetting { key, .. } if key == "context_window.gpt-4.1"),
            "{err:?}"
        );
        let err = parse("[expected_reasoning_tokens]\nhuge = 1\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownSetting { key, line: 2, .. } if key == "huge"),
            "{err:?}"
        );
    }

    #[test]
    fn new_settings_leave_the_serialized_defaults_unchanged() {
        // Request hashes are made from the serialized settings: settings that do not use the
        // new keys serialize exactly as before they existed.
        let value = serde_json::to_value(RequestSettings::default()).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for new in [
            "reasoning_effort",
            "verbosity",
            "body",
            "expected_reasoning_tokens",
            "enqueued_token_limit",
            "context_window",
            "max_requests_per_batch",
            "quality",
        ] {
            assert!(!keys.contains(&new), "{new} is serialized by default");
        }
        let settings = parse("reasoning_effort = \"high\"\n[body]\nseed = 1\n").unwrap();
        let value = serde_json::to_value(&settings).unwrap();
        assert_eq!(value["reasoning_effort"], "high");
        assert_eq!(value["body"]["seed"], 1);
        let back: RequestSettings = serde_json::from_value(value).unwrap();
        assert_eq!(back, settings);
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

    #[test]
    fn quality_settings_read_check_and_pick_the_sections() {
        let defaults = RequestSettings::default().quality;
        assert_eq!(defaults.min_words, 200);
        assert_eq!(defaults.required_sections, None);
        let generic = crate::Template::generic();
        assert_eq!(
            defaults.sections_for(Some(generic.sha256())),
            crate::GENERIC_SECTIONS
        );
        let legacy = crate::Template::parse(
            "prompt = f\"\"\"\nWrite the lesson.\n\"\"\"\n",
            Path::new("legacy.py"),
        )
        .unwrap();
        assert!(defaults.sections_for(Some(legacy.sha256())).is_empty());
        assert!(defaults.sections_for(None).is_empty());

        let settings = parse("[quality]\nmin_words = 0\nrequired_sections = []\n").unwrap();
        assert_eq!(settings.quality.min_words, 0);
        assert!(
            settings
                .quality
                .sections_for(Some(generic.sha256()))
                .is_empty(),
            "an empty list requires nothing, even of the built-in template"
        );
        let value = serde_json::to_value(&settings).unwrap();
        assert_eq!(value["quality"]["min_words"], 0);

        let err = parse("[quality]\nrequired_sections = [\"Intro\", \" ## \"]\n").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSetting { key, .. } if key == "quality.required_sections[1]"),
            "{err:?}"
        );
        let err = parse("\n[quality]\nmin_word = 3\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownSetting { key, line: 3, .. } if key == "min_word"),
            "{err:?}"
        );
    }
}
