//! `match-only`: the smallest useful plugin. It exports only the `match-agents`
//! hook — prioritise and escalate stay with the host's built-in rules — and
//! prefers the agent with the most spare capacity (lowest total load), breaking
//! ties by idle time. Host tests use it to prove that a plugin exporting a subset
//! of the hooks is accepted.

use switchyard_sdk::{CandidateTable, Context, Item, MatchResult, Rules};

/// Least-loaded agent first; qualified agents only.
#[derive(Debug, Default)]
pub struct LeastLoaded;

#[switchyard_sdk::rules]
impl Rules for LeastLoaded {
    fn match_agents(&self, _ctx: &Context, item: Item<'_>, candidates: &CandidateTable) -> MatchResult {
        MatchResult::Scores(
            candidates
                .iter()
                .map(|c| {
                    if !c.qualifies(item.skills()) {
                        return -1.0;
                    }
                    // Load dominates (100 points per item held); idle seconds break ties.
                    let spare = 100.0 * (16.0 - c.total_load().min(16) as f32);
                    spare + (c.idle_ms() / 1000).min(99) as f32
                })
                .collect(),
        )
    }
}
