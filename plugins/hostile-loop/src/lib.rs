//! Hostile test plugin `hostile-loop`: `prioritise` and `match-agents` spin forever.
//!
//! The loop bumps a counter through `std::hint::black_box`, so the optimiser can
//! neither prove it endless (and replace it with a trap) nor delete it. The host must
//! interrupt the call at its deadline (epoch interruption or fuel), fall back to the
//! built-in rule and throw the instance away.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-loop;
        world plugin {
            include switchyard:routing/rules-base@0.1.0;
            export switchyard:routing/prioritiser@0.1.0;
            export switchyard:routing/matcher@0.1.0;
        }
    "#,
    path: "../../wit",
    generate_all,
});

use exports::switchyard::routing::{matcher, prioritiser};
use switchyard::routing::types::{CandidateTable, ItemBatch, MatchResult, Priority};

/// Spin until the host interrupts us; never returns.
fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(_items: ItemBatch) -> Vec<Priority> {
        spin()
    }
}

impl matcher::Guest for Plugin {
    fn match_agents(_item: ItemBatch, _candidates: CandidateTable) -> MatchResult {
        spin()
    }
}

export!(Plugin);
