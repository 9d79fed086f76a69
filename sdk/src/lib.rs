//! # switchyard-sdk
//!
//! Write a department's routing rules for Switchyard in plain Rust and ship them as
//! a sandboxed WebAssembly component. You implement [`Rules`] for a type — only the
//! hooks you need — and put `#[switchyard_sdk::rules]` on the `impl`; the SDK does
//! the rest (bindings, ABI, batching). The same rules run natively under
//! `cargo test` through [`testing`], and the same fixture files check the built
//! component in the host.
//!
//! ## Layout
//! The wire types come from `switchyard-contract`, the crate the host builds
//! against too, and are re-exported here:
//! - [`types`]: ids, channels, tiers, and the decisions rules return.
//! - [`batch`]: the wire shapes (struct-of-arrays batches, candidate tables) and the
//!   [`Item`] / [`Candidate`] views a rule reads.
//! - [`names`]: interned name tables for skills, queues and attribute keys.
//! - `fixtures` (feature `fixtures`): the fixture file format.
//!
//! The SDK's own:
//! - [`context`]: what a rule may ask its host (names, config, time, log).
//! - [`rules`](mod@rules): the [`Rules`] trait and the batch drivers.
//! - [`testing`]: the native test harness (fixture runs with feature `fixtures`;
//!   enable it for a plugin's tests only, as a dev-dependency, so the component
//!   build compiles neither serde nor TOML).
//! - The component's global allocator (feature `allocator`, on by default):
//!   small blocks recycled per size class in front of wasi-libc's `dlmalloc`,
//!   as glibc's per-thread cache does natively. A plugin with its own
//!   `#[global_allocator]` turns it off with `default-features = false`.
#![deny(missing_docs)]

mod abi;
mod alloc;
mod arena;
pub mod context;
pub mod rules;
pub mod testing;

#[cfg(feature = "fixtures")]
pub use switchyard_contract::fixtures;
pub use switchyard_contract::{batch, names, types};
#[doc(hidden)]
pub mod wasm;

pub use batch::{Candidate, CandidateTable, Item, ItemBatch, ItemRow, NewCandidate, NewItem, ResolvedSkills};
pub use context::{Context, EXPLAIN_KEY, LogRecord, TestHost};
pub use names::{Catalog, NameTable};
pub use rules::Rules;
pub use switchyard_contract::{Explain, Hook};
pub use switchyard_sdk_macros::rules;
pub use types::*;

/// Version of the WIT contract this SDK builds against.
pub use switchyard_contract::CONTRACT_VERSION;

/// What the export macro's generated code refers to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::FlatBatch;
    pub use crate::arena::export_realloc;
    pub use crate::wasm::{bindings, export_escalate, export_match, export_prioritise};
    pub use wit_bindgen;
}
