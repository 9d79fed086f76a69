//! The rule plugins written in other languages than Rust, built into components.
//!
//! - `python-collections/`: the collections department (debt collection back
//!   office) in Python, built with componentize-py; exports `prioritiser` and
//!   `escalator`.
//! - `js-retail-chat/`: the retail chat department in JavaScript, built with
//!   componentize-js; exports `prioritiser` and `matcher`.
//!
//! The build script builds both once (skipped while their sources, the contract
//! and the tool versions are unchanged) into `<target>/polyglot/` and this crate
//! exposes their paths. Each plugin directory also holds its unit tests (run by
//! `tests/unit.rs`) and a `fixtures.toml` the host runs against the component.
//! The guides are `sdk/PYTHON.md` and `sdk/JAVASCRIPT.md`.

#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/polyglot.rs"));

/// Directory of the Python collections plugin's sources (with `fixtures.toml`).
pub const PYTHON_COLLECTIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python-collections");

/// Directory of the JavaScript retail chat plugin's sources (with `fixtures.toml`).
pub const JS_RETAIL_CHAT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/js-retail-chat");

/// One built polyglot plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plugin {
    /// The plugin's name (its directory under `plugins/polyglot/`).
    pub name: &'static str,
    /// The language it is written in.
    pub language: &'static str,
    /// Absolute path of the built component.
    pub component: &'static str,
    /// Absolute path of its source directory.
    pub source_dir: &'static str,
}

/// Every polyglot plugin.
pub const ALL: &[Plugin] = &[
    Plugin {
        name: "python-collections",
        language: "python",
        component: PYTHON_COLLECTIONS,
        source_dir: PYTHON_COLLECTIONS_DIR,
    },
    Plugin {
        name: "js-retail-chat",
        language: "javascript",
        component: JS_RETAIL_CHAT,
        source_dir: JS_RETAIL_CHAT_DIR,
    },
];
