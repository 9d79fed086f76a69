//! # switchyard-contract
//!
//! What Switchyard's host and its plugins agree on, in one crate both build
//! against: the SDK (guest side, inside every plugin) and the host's plugin
//! runtime and routing core. It carries the WIT (`wit/routing.wit`) inside the
//! package.
//!
//! - [`layout`]: the canonical-ABI layout of every record of the WIT, computed
//!   from the WIT at build time; the hand-written fast paths on both sides are
//!   checked against it.
//! - [`types`]: ids, channels, tiers, skill requirements and the decisions
//!   rules return (priorities with reasons, escalations, match results).
//! - [`batch`]: the wire shapes (struct-of-arrays item batches, candidate
//!   tables) and the [`Item`] / [`Candidate`] views a rule reads.
//! - [`names`]: interned name tables for skills, queues and attribute keys.
//! - [`capability`]: what a component may declare beyond the canonical ABI
//!   (the argument arena), in a custom section the host reads at load.
//! - [`hook`]: the one [`Hook`] enum (`prioritise`, `escalate`, `match-agents`).
//! - [`named`]: items and agents described by names, and the batches and
//!   candidate tables built from them.
//! - `fixtures` (feature `fixtures`): the fixture file format, run natively by
//!   the SDK and against the component by the host.
//!
//! ```
//! use switchyard_contract::{Catalog, Hook, ItemBatch, named::WorkItem};
//! let mut catalog = Catalog::default();
//! let mut batch = ItemBatch::new(0);
//! WorkItem::voice("billing").skill("billing", 3).push_into(&mut batch, &mut catalog, 0);
//! let item = batch.get(0).expect("one item");
//! assert_eq!(catalog.queues.id("billing"), Some(item.queue().0));
//! assert_eq!(Hook::Match.name(), "match-agents");
//! ```
#![deny(missing_docs)]

pub mod batch;
pub mod capability;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod hook;
pub mod layout;
pub mod named;
pub mod names;
pub mod types;

pub use batch::{Candidate, CandidateTable, Item, ItemBatch, ItemRow, NewCandidate, NewItem, ResolvedSkills};
pub use hook::Hook;
pub use names::{Catalog, NameTable};
pub use types::*;

/// Version of the WIT contract (`package switchyard:routing@…`).
pub const CONTRACT_VERSION: &str = "0.1.0";
