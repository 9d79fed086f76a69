//! # switchyard-host
//!
//! The embeddable host of Switchyard: it routes work items (calls, chats, e-mails,
//! back-office cases) to agents, and lets each department supply its own
//! prioritisation, escalation and matching rules as sandboxed WebAssembly
//! components that ops can swap without a restart.
//!
//! ## Layout
//! The modules read like the flow of a decision:
//! - [`rules`]: the [`RuleSet`](rules::RuleSet) seam between the router and whatever
//!   decides, and the built-in default rules.
//! - [`error`]: the crate's error type.
//! - [`contract`]: the wasmtime bindings of the WIT contract and the checks every
//!   plugin answer passes.
//! - [`sandbox`]: the wasmtime engine, compiled-component cache, epoch ticker,
//!   per-plugin limits, locked-down WASI and the host imports.
//! - `abi` (private): the fast canonical-ABI path for batches, candidate tables and
//!   `prioritise` answers; the crate's only use of wasmtime's unstable
//!   `component::__internal` (its docs list what to re-check on a wasmtime
//!   upgrade), checked against the WIT's layouts and by conformance property tests.
//! - [`plugin`]: one loaded plugin generation: load, validate, instance pool, calls.
//! - [`stats`]: per-plugin statistics and the circuit breaker.
//! - [`runtime`]: the embedding API ([`Runtime`](runtime::Runtime)): register
//!   department plugins, ask for decisions (sync and async), read stats.
//! - [`reload`]: hot reload: the watched plugin directory, validation against the
//!   department's fixtures (and a smoke call), generations and rollback, the audit
//!   log, shadow mode, a commit hook and restore for embedders that journal.
//! - [`clock`]: time passed in (system clock for `serve`, virtual clock for `simulate`).
//! - [`router`]: queues, agents, blending, offers, escalation, abandonment, cases,
//!   the exception queue and explanations.
//! - [`metrics`]: contact-centre statistics (service level, ASA, AHT, occupancy, FCR).
//! - [`report`]: JSON and HTML reports of a run.
//! - [`sim`]: scenarios, distributions and the discrete-event simulator.
//! - [`serve`]: the `switchyard serve` daemon: config, HTTP API, auth, durable
//!   journal and recovery, the plugin life cycle over the reload manager,
//!   Prometheus metrics.
//! - [`tools`]: the plugin author's tools (`switchyard plugin new|check|run|replay`)
//!   and opt-in decision recording.
#![deny(missing_docs)]

pub mod error;
pub mod report;
pub mod serve;
pub mod sim;
pub mod tools;

pub use error::{Error, Result};
// The routing core, re-exported: the embedding API keeps one entry point.
pub use switchyard_core::{clock, metrics, model, router, rules};
// The plugin runtime, re-exported likewise.
pub use switchyard_runtime::{contract, plugin, reload, runtime, sandbox, stats};
