//! Test plugin `slow-rules`: a department whose rules are correct but slow in
//! every hook, for the daemon's department-isolation figures
//! (`host/switchyard/tests/serve_isolation.rs`).
//!
//! Each call busy-waits `delay_ms` (department config; missing: 0) on the
//! monotonic clock — CPU, not sleep, so only the host's deadline could cut it —
//! and then answers:
//! - `prioritise`: the item's own priority, no queue change;
//! - `escalate`: nothing to do, look again in `recheck_ms` (config; missing: no
//!   recheck), so a waiting item keeps coming back to the rules;
//! - `match-agents`: every candidate, in the table's order (longest idle first).
//!
//! Unlike `hostile-slow` (prioritise only, used where a missing matcher must
//! leave matching to the built-in rule), this plugin exports all three hooks.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:slow-rules;
        world plugin {
            include switchyard:routing/rules-base@0.1.0;
            export switchyard:routing/prioritiser@0.1.0;
            export switchyard:routing/escalator@0.1.0;
            export switchyard:routing/matcher@0.1.0;
        }
    "#,
    path: "../../wit",
    generate_all,
});

use exports::switchyard::routing::{escalator, matcher, prioritiser};
use std::hint::black_box;
use std::time::{Duration, Instant};
use switchyard::routing::host;
use switchyard::routing::types::{CandidateTable, Escalation, ItemBatch, MatchResult, Priority};

/// A numeric config key, `None` when missing or not a number.
fn config_number<T: std::str::FromStr>(key: &str) -> Option<T> {
    host::config(key)?.trim().parse().ok()
}

/// Spin on the monotonic clock for the department's `delay_ms`.
fn take_time() {
    let wait = Duration::from_millis(config_number("delay_ms").unwrap_or(0));
    let start = Instant::now();
    let mut spins: u64 = 0;
    while start.elapsed() < wait {
        spins = black_box(spins.wrapping_add(1));
    }
}

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        take_time();
        items.rows.iter().map(|row| Priority { priority: row.priority, queue: None, reason: None }).collect()
    }
}

impl escalator::Guest for Plugin {
    fn escalate(items: ItemBatch) -> Vec<Escalation> {
        take_time();
        let recheck_in_ms: Option<u64> = config_number("recheck_ms");
        items.rows.iter().map(|_| Escalation { actions: Vec::new(), recheck_in_ms }).collect()
    }
}

impl matcher::Guest for Plugin {
    fn match_agents(_item: ItemBatch, candidates: CandidateTable) -> MatchResult {
        take_time();
        MatchResult::Ranked((0..candidates.agent_ids.len() as u32).collect())
    }
}

export!(Plugin);
