//! The plugin author's tools behind `switchyard plugin …`: scaffold a plugin
//! ([`scaffold`]), inspect and verify a built component ([`check`]), run one hook
//! on items given as JSON ([`run`]), and record live decisions to re-run a
//! candidate plugin on them ([`record`], [`replay`]).
//!
//! Each tool is a library function that writes its human-readable report to a
//! `Write` and returns a verdict, so the CLI is a thin shell and tests read the
//! same output a person sees.

pub mod check;
pub mod cli;
pub mod record;
pub mod replay;
pub mod run;
pub mod scaffold;

use std::path::Path;

use crate::error::{Error, Result};
use switchyard_runtime::runtime::Runtime;

/// A runtime for one-off tool runs: compiled components cached under the system
/// temp dir, so running a tool twice on the same file compiles once.
pub(crate) fn tool_runtime() -> Result<Runtime> {
    let cache = std::env::temp_dir().join("switchyard-tool-cache");
    Ok(Runtime::builder().cache_dir(cache).build()?)
}

/// Parse `key=value` department config pairs given on the command line.
pub fn parse_config_pairs(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
            _ => Err(Error::Invalid(format!("config `{pair}` is not of the form key=value"))),
        })
        .collect()
}

/// Read a text file, naming it in the error.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })
}
