//! Paths to the guest plugins under `plugins/`, built as WebAssembly components.
//!
//! The build script (`build.rs`) builds every plugin crate (every crate under
//! `plugins/` whose library is a `cdylib`) for `wasm32-wasip2` in release with a
//! single nested `cargo build`, into `target/plugin-artifacts`, once per test run
//! — not once per test. It then generates, for each plugin directory:
//!
//! - a constant named after the directory in upper snake case with the absolute
//!   path of its component (`BILLING`, `TECH_SUPPORT`, `HOSTILE_LOOP`, …);
//! - [`ALL`]: every plugin as (directory name, path);
//! - `foreach_plugin!(m)`, which calls `m!(dir_name_in_snake_case)` for every
//!   plugin, and `foreach_department!` / `foreach_hostile!` for the real
//!   department plugins and the `hostile-*` test plugins. Invoke them in a test
//!   file to make a plugin without a test fail to compile, as wasmtime's
//!   test-programs do:
//!
//! ```
//! macro_rules! has_path {
//!     ($name:ident) => {
//!         assert!(switchyard_plugin_artifacts::path(&stringify!($name).replace('_', "-")).is_some());
//!     };
//! }
//! switchyard_plugin_artifacts::foreach_plugin!(has_path);
//! assert!(switchyard_plugin_artifacts::BILLING.ends_with("billing.wasm"));
//! ```
#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// Path of the component built from `plugins/<dir_name>`, if there is such a plugin.
pub fn path(dir_name: &str) -> Option<&'static str> {
    ALL.iter().find(|(name, _)| *name == dir_name).map(|(_, path)| *path)
}
