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

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::Channel;
    use switchyard_sdk::testing::{Agent, TestBench, WorkItem};

    #[test]
    fn load_dominates_idle_time_and_the_unqualified_are_vetoed() {
        let bench = TestBench::new(LeastLoaded);
        let item = WorkItem::chat("general").skill("general", 2);
        let got = bench.match_agents(
            &item,
            &[
                Agent::new(1).skill("general", 5).idle_s(90).load(Channel::Chat, 2),
                Agent::new(2).skill("general", 3).idle_s(10),
                Agent::new(3),
            ],
        );
        // 100 × (16 − 2) + 90; 100 × 16 + 10; vetoed.
        assert_eq!(got, MatchResult::Scores(vec![1490.0, 1610.0, -1.0]));
    }

    #[test]
    fn fixtures_pass_natively() {
        TestBench::new(LeastLoaded)
            .run_fixtures(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures.toml"))
            .unwrap()
            .assert_ok();
    }
}
