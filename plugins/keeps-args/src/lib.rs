//! Test plugin `keeps-args`: a rule that keeps what it was given beyond the
//! call, and answers each call with what it kept from the one before.
//!
//! The SDK lends a hook's arguments out of a per-call arena that is reset when
//! the call ends (`sdk/src/arena.rs`); a rule only sees borrowed views, so
//! keeping an argument means copying it. This plugin keeps both kinds of copy
//! a rule would — an owned `String` of an item's attributes, a clone of the
//! whole candidate table — and the host's test
//! (`host/runtime/tests/sandbox.rs`, `a_rule_that_keeps_its_arguments_sees_them_intact`)
//! requires every answer to show the previous call's arguments intact after
//! the arena served the next call.
//!
//! - `prioritise`: an item's reason is the attributes (`key=value;…`) the
//!   item with the same id had when last seen (empty the first time), its
//!   priority the number of ids seen before it.
//! - `match-agents`: candidate `i` scores the previous table's agent id `i`
//!   (−1 when it had fewer agents), the first score plus the previous table's
//!   proficiency and load bytes summed.

use std::cell::RefCell;
use std::collections::BTreeMap;

use switchyard_sdk::{CandidateTable, Context, Item, MatchResult, Priority, Rules};

/// What the previous calls left behind.
#[derive(Debug, Default)]
pub struct KeepsArgs {
    items: RefCell<BTreeMap<u64, String>>,
    table: RefCell<Option<CandidateTable>>,
}

/// An item's attributes as `key=value;` pairs, in order.
pub fn attributes(item: &Item<'_>) -> String {
    item.attributes().map(|(key, value)| format!("{}={value};", key.0)).collect()
}

#[switchyard_sdk::rules]
impl Rules for KeepsArgs {
    fn prioritise(&self, _ctx: &Context, item: Item<'_>) -> Priority {
        let mut kept = self.items.borrow_mut();
        let seen = kept.len() as i32;
        let reason = kept.insert(item.id(), attributes(&item)).unwrap_or_default();
        Priority::new(seen).because(reason)
    }

    fn match_agents(&self, _ctx: &Context, _item: Item<'_>, candidates: &CandidateTable) -> MatchResult {
        let previous = self.table.replace(Some(candidates.clone()));
        let scores = (0..candidates.len())
            .map(|i| match &previous {
                Some(table) if i < table.len() => {
                    let mut score = table.agent_ids[i] as f32;
                    if i == 0 {
                        let bytes = table.proficiency.iter().chain(&table.load).map(|&b| u32::from(b)).sum::<u32>();
                        score += bytes as f32;
                    }
                    score
                }
                _ => -1.0,
            })
            .collect();
        MatchResult::Scores(scores)
    }
}
