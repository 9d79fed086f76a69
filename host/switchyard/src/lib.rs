//! # switchyard
//!
//! The `switchyard` program and what it runs, on top of the layers an
//! embedder uses directly (`switchyard-host` re-exports them):
//! `switchyard-contract` (what host and plugins share), `switchyard-core` (the
//! routing core) and `switchyard-runtime` (the sandboxed plugins).
//!
//! ## Layout
//! - [`serve`]: the `switchyard serve` daemon: config, HTTP API and its route
//!   table, auth, the durable journal and recovery, the plugin life cycle over
//!   the reload manager, Prometheus metrics.
//! - [`sim`]: scenarios, distributions, traffic recordings, the discrete-event
//!   simulator and backtests of candidate rules.
//! - [`report`]: text, JSON and HTML reports of a run.
//! - [`tools`]: the plugin author's tools (`switchyard plugin
//!   new|check|run|replay`) and opt-in decision recording.
//! - [`error`]: the crate's error type, which wraps the router's and the
//!   runtime's.
//!
//! This is where HTTP (axum, hyper), storage (redb), plotting (plotters) and the
//! command line (clap) come in; the layers below pull none of them.
#![deny(missing_docs)]

pub mod error;
pub mod report;
pub mod serve;
pub mod sim;
pub mod tools;

pub use error::{Error, Result};
