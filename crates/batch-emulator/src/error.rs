//! The crate's one error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong when starting or configuring an emulator.
///
/// Once running, the emulator answers API errors over HTTP and never returns them here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A storage directory could not be created or read.
    #[error("cannot use storage directory {path}")]
    Storage {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP client for the upstream responder could not be built.
    #[error("cannot build the upstream HTTP client")]
    UpstreamClient {
        /// The cause.
        source: reqwest::Error,
    },
    /// A concurrency setting is zero, so nothing could ever run.
    #[error("{setting} must be at least 1")]
    ZeroConcurrency {
        /// `concurrency` or `upstream concurrency`.
        setting: &'static str,
    },
    /// An endpoint name is not one of [`Endpoint::ALL`](crate::Endpoint::ALL).
    #[error("unknown endpoint `{name}` (expected e.g. `batches.create` or `files.content`)")]
    UnknownEndpoint {
        /// The name given.
        name: String,
    },
}
