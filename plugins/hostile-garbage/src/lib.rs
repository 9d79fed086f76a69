//! Hostile test plugin `hostile-garbage`: exports all three hooks and answers
//! nonsense — answers that are well-typed, so they pass the component boundary,
//! but break the contract. The host must validate every answer, reject it, fall
//! back to the built-in rule and report which rule of the contract was broken.
//!
//! The kind of nonsense is chosen by the `priority` field of the batch's **first**
//! row (an empty batch uses mode 0). Mode 3 is a valid answer in every hook, so a
//! test can show the same plugin working between failures; any value not listed
//! acts as mode 0.
//!
//! | mode | `prioritise` | `escalate` | `match-agents` |
//! |---|---|---|---|
//! | 0 | one priority too many (n + 1) | `move-to` unknown queue `UNKNOWN_ID` for every item | a NaN score for every candidate |
//! | 1 | no priorities at all (0 for n items) | one escalation too many (n + 1) | one score too many (candidates + 1) |
//! | 2 | every item moved to unknown queue `UNKNOWN_ID` | `drop-skill` of unknown skill `UNKNOWN_ID` | `ranked` with out-of-range indices (n, then `u32::MAX`) |
//! | 3 | valid: priority 7, no move, reason "hostile-garbage: valid" | valid: no actions, no recheck | valid: `ranked` 0..n |
//! | 4 | a reason that is not UTF-8 (the lift itself fails) | as 0 | as 0 |

wit_bindgen::generate!({
    inline: r#"
        package switchyard:hostile-garbage;
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
use switchyard::routing::types::{CandidateTable, Escalation, EscalationAction, ItemBatch, MatchResult, Priority};

/// A queue / skill id no host hands out (hosts intern from 0 upwards).
const UNKNOWN_ID: u32 = u32::MAX - 1;

/// The answer mode: the first row's priority (0 for an empty batch).
fn mode(items: &ItemBatch) -> i32 {
    items.rows.first().map_or(0, |row| row.priority)
}

fn keep(priority: i32) -> Priority {
    Priority { priority, queue: None, reason: None }
}

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        let n = items.rows.len();
        match mode(&items) {
            1 => Vec::new(),
            2 => (0..n).map(|_| Priority { priority: 1, queue: Some(UNKNOWN_ID), reason: None }).collect(),
            3 => (0..n)
                .map(|_| Priority { priority: 7, queue: None, reason: Some("hostile-garbage: valid".to_owned()) })
                .collect(),
            4 => (0..n).map(|_| not_utf8()).collect(),
            _ => (0..=n).map(|i| keep(i as i32)).collect(),
        }
    }
}

/// A priority whose reason holds bytes that are not UTF-8.
#[cfg(target_arch = "wasm32")]
fn not_utf8() -> Priority {
    let bytes = vec![0xff, 0xfe, b'b', b'a', b'd', 0xc0];
    // SAFETY: deliberately not UTF-8; the guest never reads the string again, it
    // only hands the bytes to the host, whose lift must reject them.
    let reason = unsafe { String::from_utf8_unchecked(bytes) };
    Priority { priority: 1, queue: None, reason: Some(reason) }
}

/// Natively (where nothing calls the hook) stay well-defined.
#[cfg(not(target_arch = "wasm32"))]
fn not_utf8() -> Priority {
    keep(1)
}

impl escalator::Guest for Plugin {
    fn escalate(items: ItemBatch) -> Vec<Escalation> {
        let n = items.rows.len();
        let nothing = || Escalation { actions: Vec::new(), recheck_in_ms: None };
        match mode(&items) {
            1 => (0..=n).map(|_| nothing()).collect(),
            2 => (0..n)
                .map(|_| Escalation { actions: vec![EscalationAction::DropSkill(UNKNOWN_ID)], recheck_in_ms: None })
                .collect(),
            3 => (0..n).map(|_| nothing()).collect(),
            _ => (0..n)
                .map(|_| Escalation { actions: vec![EscalationAction::MoveTo(UNKNOWN_ID)], recheck_in_ms: None })
                .collect(),
        }
    }
}

impl matcher::Guest for Plugin {
    fn match_agents(item: ItemBatch, candidates: CandidateTable) -> MatchResult {
        let n = candidates.agent_ids.len();
        match mode(&item) {
            1 => MatchResult::Scores(vec![1.0; n + 1]),
            2 => MatchResult::Ranked(vec![n as u32, u32::MAX]),
            3 => MatchResult::Ranked((0..n as u32).collect()),
            _ => MatchResult::Scores(vec![f32::NAN; n]),
        }
    }
}

export!(Plugin);
