//! # switchyard-runtime
//!
//! Switchyard's plugin runtime: it loads each department's routing rules as a
//! sandboxed WebAssembly component (wasmtime, the component model, the WIT
//! contract of `switchyard-contract`) and answers the routing core's
//! [`RuleSet`](switchyard_core::rules::RuleSet) seam with them, within limits
//! and with the built-in rules as the fallback.
//!
//! ## Layout
//! The modules read like the path of a call:
//! - [`contract`]: the wasmtime bindings of the WIT contract and the checks every
//!   plugin answer passes.
//! - [`sandbox`]: the wasmtime engine, compiled-component cache, epoch ticker,
//!   per-plugin limits, locked-down WASI and the host imports.
//! - `abi` (private): the fast canonical-ABI path for batches, candidate tables
//!   and answers; the only use of wasmtime's unstable `component::__internal`
//!   (its docs list what to re-check on a wasmtime upgrade), checked against the
//!   WIT's layouts and by conformance property tests.
//! - [`plugin`]: one loaded plugin generation: load, validate, instance pool, calls.
//! - [`stats`]: per-plugin statistics and the circuit breaker.
//! - [`runtime`]: the embedding API ([`Runtime`](runtime::Runtime)): register
//!   department plugins, ask for decisions (sync and async), read stats.
//! - [`reload`]: hot reload: the watched plugin directory, validation against the
//!   department's fixtures (and a smoke call), generations and rollback, the audit
//!   log, shadow mode, a commit hook and restore for embedders that journal.
//! - [`error`]: the crate's error type.
#![deny(missing_docs)]

mod abi;
pub mod contract;
pub mod error;
pub mod plugin;
pub mod reload;
pub mod runtime;
pub mod sandbox;
pub mod stats;

pub use error::{Error, Result};
