//! The trait a department implements. Every hook has a default, so a plugin writes
//! only the hooks it needs; the `#[switchyard_sdk::rules]` attribute exports exactly
//! the hooks written in the `impl` block, and the host uses its built-in rule for
//! the rest.

use crate::batch::{CandidateTable, Item, ItemBatch};
use crate::context::Context;
use crate::types::{Escalation, MatchResult, Priority};

/// A department's routing rules.
///
/// The host calls each hook with a *batch*; the SDK calls your method once per item
/// and collects the answers, so you write the rule for one item.
///
/// ```
/// use switchyard_sdk::{Context, Item, Priority, Rules, Tier};
///
/// #[derive(Default)]
/// struct Vip;
///
/// impl Rules for Vip {
///     fn prioritise(&self, _ctx: &Context, item: Item<'_>) -> Priority {
///         let boost = if item.tier() >= Tier::Gold { 50 } else { 0 };
///         Priority::new(item.priority() + boost)
///     }
/// }
/// ```
pub trait Rules {
    /// Priority (and optionally a new queue) for a newly arrived item.
    /// Default: keep the item's priority.
    fn prioritise(&self, ctx: &Context, item: Item<'_>) -> Priority {
        let _ = ctx;
        Priority::new(item.priority())
    }

    /// What to do with an item that has waited `item.age_ms()`.
    /// Default: nothing, never look again.
    fn escalate(&self, ctx: &Context, item: Item<'_>) -> Escalation {
        let _ = (ctx, item);
        Escalation::none()
    }

    /// Rank the candidate agents for `item`.
    /// Default: every candidate scores its idle time in seconds (longest idle first).
    fn match_agents(&self, ctx: &Context, item: Item<'_>, candidates: &CandidateTable) -> MatchResult {
        let _ = (ctx, item);
        MatchResult::Scores(candidates.iter().map(|c| c.idle_ms() as f32 / 1000.0).collect())
    }
}

/// Run `prioritise` over a batch: one answer per item, in order. The export glue,
/// the native test harness and the host's native baseline all go through here.
pub fn prioritise_batch<R: Rules + ?Sized>(rules: &R, ctx: &Context, batch: &ItemBatch) -> Vec<Priority> {
    ctx.begin_call();
    batch.iter().map(|item| rules.prioritise(ctx, item)).collect()
}

/// Run `escalate` over a batch: one answer per item, in order.
pub fn escalate_batch<R: Rules + ?Sized>(rules: &R, ctx: &Context, batch: &ItemBatch) -> Vec<Escalation> {
    ctx.begin_call();
    batch.iter().map(|item| rules.escalate(ctx, item)).collect()
}

/// Run `match_agents` for the single item of `item` (a batch of one). An empty
/// batch vetoes everyone.
pub fn match_one<R: Rules + ?Sized>(
    rules: &R,
    ctx: &Context,
    item: &ItemBatch,
    candidates: &CandidateTable,
) -> MatchResult {
    ctx.begin_call();
    match item.get(0) {
        Some(item) => rules.match_agents(ctx, item, candidates),
        None => MatchResult::Ranked(Vec::new()),
    }
}
