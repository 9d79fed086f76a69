//! The crate's one error type. Each variant says who should act on it.

use std::path::PathBuf;

/// Errors of `switchyard-host`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or scenario file is malformed; fix the file.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (key, line).
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A request names something that does not exist (department, queue, agent, item).
    #[error("unknown {kind} `{name}`")]
    Unknown {
        /// What kind of thing.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A request is well-formed but not allowed in the current state.
    #[error("{0}")]
    Invalid(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
