//! The one error type of the daemon, the simulator and the plugin tools. Each
//! variant says who should act on it; what the router and the plugin runtime
//! refuse passes through as theirs.

use std::path::PathBuf;

/// Errors of the daemon, the simulator and the tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The router refused a request (unknown name, invalid state, a limit).
    #[error(transparent)]
    Routing(#[from] switchyard_core::Error),
    /// The plugin runtime refused or failed (loading, a call, a swap).
    #[error(transparent)]
    Runtime(#[from] switchyard_runtime::Error),
    /// A configuration, scenario or input file is malformed; fix the file.
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
    /// A request names something that does not exist (department, plugin generation).
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
    /// The daemon's journal (its embedded store) failed to open, read or write;
    /// the request was not acknowledged. Ops check the data directory's disk.
    #[error("journal {path}: {message}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
