//! # switchyard-core
//!
//! Switchyard's routing core: it routes work items (calls, chats, e-mails,
//! back-office cases) to agents and measures the service like a front office. It
//! asks a [`RuleSet`](rules::RuleSet) per department for prioritisation,
//! escalation and matching, and knows nothing of WebAssembly: the plugin runtime
//! (`switchyard-runtime`) implements that seam with sandboxed components, tests
//! and the simulator may implement it natively, and the built-in rules answer
//! for departments without a plugin.
//!
//! ## Layout
//! - [`rules`]: the [`RuleSet`](rules::RuleSet) seam and the built-in rules.
//! - [`model`]: the public types of the routing model (departments, queues,
//!   agents, items, events, limits).
//! - [`router`]: queues, agents, blending, offers, escalation, abandonment,
//!   cases, the exception queue and explanations, one room per concern.
//! - [`metrics`]: contact-centre statistics (service level, ASA, AHT,
//!   occupancy, FCR), fed by the router's events.
//! - [`clock`]: time passed in (the system clock for the daemon, a virtual
//!   clock for the simulator).
//! - [`error`]: the crate's error type.
//!
//! Nothing here depends on wasmtime; `cargo test -p switchyard-core` builds and
//! runs the router alone.
#![deny(missing_docs)]

pub mod clock;
pub mod error;
pub mod metrics;
pub mod model;
pub mod router;
pub mod rules;

pub use error::{Error, Result};
