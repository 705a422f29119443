//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading templates and settings, building requests,
/// writing shard files and reading JSONL lines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A template file could not be read.
    #[error("cannot read template {path}")]
    ReadTemplate {
        /// The template file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `{{name}}` placeholders that are not known names: every one of the template, at once.
    #[error("{path}:{}: {} (known: {known})", unknown.first().map_or(1, |u| u.line), crate::template::UnknownList(unknown))]
    UnknownPlaceholder {
        /// The template file.
        path: PathBuf,
        /// Each unknown placeholder with its line, in the order of the text (never empty).
        unknown: Vec<crate::template::UnknownName>,
        /// The known names, comma-separated.
        known: String,
    },
    /// A `{{` with no `}}` after it on the same line.
    #[error(
        "{path}:{line}: `{{{{` has no closing `}}}}` on its line (write `{{{{{{{{` for a literal `{{{{`)"
    )]
    UnclosedPlaceholder {
        /// The template file.
        path: PathBuf,
        /// 1-based line of the `{{`.
        line: usize,
    },
    /// A per-lesson placeholder above the `<!-- lesson -->` line, in the part every request
    /// shares.
    #[error(
        "{path}:{line}: `{{{{{name}}}}}` differs from lesson to lesson, so it cannot stand above the `<!-- lesson -->` line (that text is shared by all lessons); move it below the marker line"
    )]
    LessonPlaceholderInSharedPart {
        /// The template file.
        path: PathBuf,
        /// 1-based line of the placeholder.
        line: usize,
        /// The placeholder's name.
        name: String,
    },
    /// A template with more than one `<!-- lesson -->` line.
    #[error(
        "{path}:{line}: a second `<!-- lesson -->` line (the first is on line {first_line}); a template splits into a shared part and a lesson part only once"
    )]
    RepeatedLessonMarker {
        /// The template file.
        path: PathBuf,
        /// 1-based line of the first marker.
        first_line: usize,
        /// 1-based line of the second marker.
        line: usize,
    },
    /// A template with nothing below its `<!-- lesson -->` line.
    #[error(
        "{path}:{line}: nothing follows the `<!-- lesson -->` line; the text below it is each lesson's own prompt and must not be empty"
    )]
    EmptyLessonPart {
        /// The template file.
        path: PathBuf,
        /// 1-based line of the marker.
        line: usize,
    },
    /// A `{...}` expression in a legacy (Python f-string) template that has no known meaning.
    #[error("{path}:{line}: unknown expression `{{{expression}}}` in legacy template")]
    UnknownLegacyExpression {
        /// The template file.
        path: PathBuf,
        /// 1-based line where the expression starts.
        line: usize,
        /// The expression between the braces.
        expression: String,
    },
    /// A `{` in a legacy template with no matching `}`.
    #[error(
        "{path}:{line}: `{{` has no matching `}}` in legacy template (write `{{{{` for a literal brace)"
    )]
    UnclosedLegacyExpression {
        /// The template file.
        path: PathBuf,
        /// 1-based line of the `{`.
        line: usize,
    },
    /// A legacy template whose `prompt = f"""` is never closed by `"""`.
    #[error("{path}: legacy template opens `prompt = f\"\"\"` but never closes it with `\"\"\"`")]
    UnterminatedLegacyTemplate {
        /// The template file.
        path: PathBuf,
    },
    /// A settings file could not be read.
    #[error("cannot read settings {path}")]
    ReadSettings {
        /// The settings file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A settings file is not valid TOML or a value has the wrong type.
    #[error("{path}:{line}: invalid settings")]
    ParseSettings {
        /// The settings file.
        path: PathBuf,
        /// 1-based line of the problem (1 when the parser gives no position).
        line: usize,
        /// The cause.
        source: toml::de::Error,
    },
    /// A settings key this crate does not know (often a typo).
    #[error("{path}:{line}: unknown setting `{key}` (known: {known})")]
    UnknownSetting {
        /// The settings file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written (without its table; `line` locates it).
        key: String,
        /// The keys allowed at that place, comma-separated.
        known: String,
    },
    /// A setting has a value outside its allowed range.
    #[error("invalid setting `{key}`: {reason}")]
    InvalidSetting {
        /// The setting's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `[body]` key that cannot go into the requests: one the tool sets itself, one that is
    /// not a chat completion parameter, or a value of the wrong type.
    #[error("{path}:{line}: [body] key `{key}` {reason}")]
    BodySetting {
        /// The settings file.
        path: PathBuf,
        /// 1-based line of the key (of the `[body]` table when the key's own line is not found).
        line: usize,
        /// The key, as written in `[body]`.
        key: String,
        /// What is wrong and what to do instead.
        reason: String,
    },
    /// A lesson given to the builder is not part of the curriculum given with it.
    #[error("lesson {code} (`{title}`, outline line {line}) is not in the curriculum")]
    LessonNotInCurriculum {
        /// The lesson's code.
        code: String,
        /// The lesson's title.
        title: String,
        /// The lesson's outline line.
        line: usize,
    },
    /// Two requests of one job have the same `custom_id`.
    #[error(
        "custom_id `{custom_id}` is used twice: by lesson `{first_title}` (outline line {first_line}) and by lesson `{second_title}` (outline line {second_line})"
    )]
    DuplicateCustomId {
        /// The repeated id.
        custom_id: String,
        /// Title of the lesson that used it first.
        first_title: String,
        /// Outline line of the lesson that used it first.
        first_line: usize,
        /// Title of the lesson that used it again.
        second_title: String,
        /// Outline line of the lesson that used it again.
        second_line: usize,
    },
    /// One request line is larger than a whole shard may be.
    #[error(
        "the request for lesson {custom_id} is {bytes} bytes, more than the {max_bytes}-byte limit of one input file"
    )]
    RequestTooLarge {
        /// The request's id.
        custom_id: String,
        /// Size of the line, newline included.
        bytes: u64,
        /// The byte limit of one shard.
        max_bytes: u64,
    },
    /// A request's estimated input tokens alone pass the token limit of one shard.
    #[error(
        "the request for lesson {custom_id} has an estimated {input_tokens} input tokens, more than the {max_input_tokens}-token limit of one input file"
    )]
    RequestOverTokenLimit {
        /// The request's id.
        custom_id: String,
        /// Its estimated input tokens, chat overhead included.
        input_tokens: u64,
        /// The token limit of one shard.
        max_input_tokens: u64,
    },
    /// Requests whose estimated input tokens plus `max_completion_tokens` pass their model's
    /// context window ([`crate::RequestSettings::context_window_for`]): the API would refuse
    /// each, so none of the set is written.
    #[error("{}", crate::context::over_context_window_message(.requests, *.count))]
    OverContextWindow {
        /// The first of them, in outline order (at most
        /// [`crate::OVER_CONTEXT_WINDOW_NAMED`]).
        requests: Vec<crate::OversizedRequest>,
        /// How many there are in all.
        count: usize,
    },
    /// Two requests written by one [`crate::ShardWriter`] have the same `custom_id`. The writer
    /// keeps only where an id was first used, not the title of its lesson.
    #[error(
        "custom_id `{custom_id}` is used twice: by the lesson at outline line {first_line} and by lesson `{second_title}` (outline line {second_line})"
    )]
    RepeatedCustomId {
        /// The repeated id.
        custom_id: String,
        /// Outline line of the lesson that used it first.
        first_line: usize,
        /// Title of the lesson that used it again.
        second_title: String,
        /// Outline line of the lesson that used it again.
        second_line: usize,
    },
    /// Limits that no request can fit.
    #[error("invalid shard limits: {reason}")]
    InvalidLimits {
        /// What is wrong.
        reason: String,
    },
    /// A job name that cannot be part of a file name.
    #[error("invalid job name `{name}`: use letters, digits, `-`, `_` and `.` only")]
    InvalidJobName {
        /// The name as given.
        name: String,
    },
    /// A shard file could not be written.
    #[error("cannot write shard {path}")]
    WriteShard {
        /// The shard file (or its directory, when the temp file could not be created).
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSONL line could not be written.
    #[error("cannot write JSONL line for `{custom_id}`")]
    WriteLine {
        /// The line's id.
        custom_id: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A request could not be serialized (not expected for well-formed values).
    #[error("cannot serialize the request `{custom_id}`")]
    Serialize {
        /// The request's id.
        custom_id: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// A JSONL stream could not be read.
    #[error("cannot read JSONL line {line}")]
    ReadLine {
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSONL line is not the expected JSON.
    #[error("line {line} is not a valid batch line")]
    ParseLine {
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: serde_json::Error,
    },
}
