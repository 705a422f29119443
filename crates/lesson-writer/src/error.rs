//! The crate's one error type: what stops processing as a whole.
//!
//! Problems with single lines or lessons (malformed lines, failed requests) are not
//! errors: they are recorded in the [`Summary`](crate::Summary) and processing goes on.

use std::io;
use std::path::PathBuf;

/// Why processing stopped, or why a configuration value was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file could not be opened.
    #[error("cannot open {path}")]
    Open {
        /// The input file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading an input file failed part way.
    #[error("cannot read {path} at line {line}")]
    Read {
        /// The input file.
        path: PathBuf,
        /// The 1-based line being read.
        line: u64,
        /// The cause.
        source: io::Error,
    },
    /// The output directory (or its `rejected/` folder) could not be created.
    #[error("cannot create directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An existing lesson file could not be read to compare it with the new text.
    #[error("cannot read existing lesson {path}")]
    ReadExisting {
        /// The lesson file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A lesson file could not be written; no partial file is left behind.
    #[error("cannot write {path} (for {custom_id})")]
    Write {
        /// The file that was being written.
        path: PathBuf,
        /// The request the text came from.
        custom_id: String,
        /// The cause.
        source: io::Error,
    },
    /// A computed lesson path was not directly inside the output directory.
    ///
    /// File names are built only from a parsed lesson code and a slug, so this is a
    /// safety net that should never trigger.
    #[error("refusing to write {path}: not directly inside {out_dir}")]
    OutsideOutDir {
        /// The refused path.
        path: PathBuf,
        /// The output directory.
        out_dir: PathBuf,
    },
    /// A file-name pattern was refused.
    #[error("invalid file-name pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The failures list could not be written.
    #[error("cannot write the failures list")]
    WriteFailures {
        /// The cause.
        source: io::Error,
    },
    /// A directory could not be listed.
    #[error("cannot list {path}")]
    ListDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A temp file left by an earlier run could not be removed.
    #[error("cannot remove the leftover temp file {path}")]
    RemoveLeftover {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The lesson manifest could not be read or written.
    #[error("lesson manifest {path}: {problem}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong, and the cause.
        problem: String,
    },
}
