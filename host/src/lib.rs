//! # switchyard-host
//!
//! The embeddable host of Switchyard: it routes work items (calls, chats, e-mails,
//! back-office cases) to agents, and lets each department supply its own
//! prioritisation, escalation and matching rules as sandboxed WebAssembly
//! components that ops can swap without a restart.
//!
//! This crate is the embedding entry point: it re-exports the layers, so an
//! embedder depends on one crate and pulls no HTTP, storage or plotting crates
//! (the daemon, the simulator and the command line are the `switchyard` crate).
//!
//! ## Layout
//! The modules read like the flow of a decision. From `switchyard-core` (no
//! WebAssembly runtime):
//! - [`rules`]: the [`RuleSet`](rules::RuleSet) seam between the router and whatever
//!   decides, and the built-in default rules.
//! - [`router`]: queues, agents, blending, offers, escalation, abandonment, cases,
//!   the exception queue and explanations; [`model`]: its public types.
//! - [`metrics`]: contact-centre statistics (service level, ASA, AHT, occupancy, FCR).
//! - [`clock`]: time passed in (system clock for a daemon, virtual clock for a simulation).
//!
//! From `switchyard-runtime` (wasmtime):
//! - [`contract`]: the wasmtime bindings of the WIT contract and the checks every
//!   plugin answer passes.
//! - [`sandbox`]: the wasmtime engine, compiled-component cache, epoch ticker,
//!   per-plugin limits, locked-down WASI and the host imports.
//! - [`plugin`]: one loaded plugin generation: load, validate, instance pool, calls.
//! - [`stats`]: per-plugin statistics and the circuit breaker.
//! - [`runtime`]: the embedding API ([`Runtime`](runtime::Runtime)): register
//!   department plugins, ask for decisions (sync and async), read stats.
//! - [`reload`]: hot reload: the watched plugin directory, validation against the
//!   department's fixtures (and a smoke call), generations and rollback, the audit
//!   log, shadow mode, a commit hook and restore for embedders that journal.
//! - [`error`]: the runtime's error, which also carries the router's refusals.
//!
//! And the wire types from `switchyard-contract` ([`wire`]).
//!
//! ```no_run
//! use switchyard_host::runtime::{DepartmentConfig, Runtime};
//! # fn main() -> switchyard_host::Result<()> {
//! let runtime = Runtime::builder().build()?;
//! runtime.register_file("billing", "target/wasm32-wasip2/release/billing.wasm", DepartmentConfig::new())?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub use switchyard_contract as wire;
pub use switchyard_core::{clock, metrics, model, router, rules};
pub use switchyard_runtime::{Error, Result};
pub use switchyard_runtime::{contract, error, plugin, reload, runtime, sandbox, stats};
