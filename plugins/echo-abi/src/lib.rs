//! Test plugin `echo-abi`: each hook answers with what it received, so the host
//! can check that the bytes it lowered are the values it meant (ABI conformance,
//! `host/runtime/src/abi/conformance.rs`).
//!
//! Written with `wit-bindgen` directly, not the SDK: its lifting code is
//! generated from `wit/routing.wit` at build time, so it reads every field where
//! the WIT puts it. The host's hand-written fast path (`host/runtime/src/abi.rs`) and
//! wasmtime's generated lowering must both produce the answers this plugin
//! derives from the WIT alone.
//!
//! | hook | answer for item / candidate `i` |
//! |---|---|
//! | `prioritise` | `reason` = [`describe`] of row `i` (every row field, its skills and attributes; row 0 also `now-ms`); `priority` = [`digest`] of that text; `queue` = the row's queue for even `i`, none for odd |
//! | `escalate` | `alert(describe)`, `raise-by(priority)`, `raise-to(digest)`, `relax-levels(tier)`, `move-to(queue)`, `drop-skill(s)` for each required skill; `recheck-in-ms` = `age-ms` for even `i` |
//! | `match-agents` | `scores`: one per agent, `digest` of the item's description, the skill columns and every column of agent `i`, reduced to 24 bits so the `f32` is exact |
//!
//! The host test recomputes [`describe`] and [`digest`] from the values it sent;
//! the two copies of the format must stay the same (the test fails if not).
//! Out-of-range `*-start`/`*-count` (what a wrong row layout produces) are
//! written as `?`, never a panic.

wit_bindgen::generate!({
    inline: r#"
        package switchyard:echo-abi;
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

use std::fmt::Write as _;

use exports::switchyard::routing::{escalator, matcher, prioritiser};
use switchyard::routing::types::{CandidateTable, Escalation, EscalationAction, ItemBatch, MatchResult, Priority};

/// 32-bit FNV-1a of `bytes`, continuing from `hash`.
pub fn fnv(hash: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(hash, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// FNV-1a's starting value.
pub const FNV_START: u32 = 0x811c_9dc5;

/// The digest of `text`.
pub fn digest(text: &str) -> u32 {
    fnv(FNV_START, text.as_bytes())
}

/// Every field of row `i`, with its skills and attributes resolved through the
/// batch's shared lists; row 0 also carries `now-ms`.
pub fn describe(batch: &ItemBatch, i: usize) -> String {
    let mut out = String::new();
    let Some(row) = batch.rows.get(i) else { return out };
    if i == 0 {
        let _ = write!(out, "now={};", batch.now_ms);
    }
    let _ = write!(
        out,
        "id={};channel={};queue={};tier={};contacts={};priority={};age={};due={};value={:#x};skills={}+{};attrs={}+{}",
        row.id,
        row.channel as u8,
        row.queue,
        row.tier,
        row.contacts,
        row.priority,
        row.age_ms,
        row.due_in_ms,
        row.value.to_bits(),
        row.skill_start,
        row.skill_count,
        row.attr_start,
        row.attr_count,
    );
    out.push_str(";[");
    for k in span(row.skill_start, row.skill_count) {
        match batch.skills.get(k) {
            Some(s) => {
                let _ = write!(out, "{}:{},", s.skill, s.level);
            }
            None => out.push_str("?,"),
        }
    }
    out.push_str("];{");
    for k in span(row.attr_start, row.attr_count) {
        let start = if k == 0 { Some(0) } else { batch.attr_value_ends.get(k - 1).copied() };
        let end = batch.attr_value_ends.get(k).copied();
        let value = start.zip(end).and_then(|(s, e)| batch.attr_values.get(s as usize..e as usize));
        match (batch.attr_keys.get(k), value) {
            (Some(key), Some(value)) => {
                let _ = write!(out, "{key}={value:?},");
            }
            _ => out.push_str("?,"),
        }
    }
    out.push('}');
    out
}

/// Indices `start..start + count`, capped so a garbage count cannot spin for long.
fn span(start: u32, count: u32) -> std::ops::Range<usize> {
    let start = start as usize;
    start..start.saturating_add((count as usize).min(1 << 16))
}

struct Plugin;

impl prioritiser::Guest for Plugin {
    fn prioritise(items: ItemBatch) -> Vec<Priority> {
        (0..items.rows.len())
            .map(|i| {
                let text = describe(&items, i);
                Priority {
                    priority: digest(&text) as i32,
                    queue: i.is_multiple_of(2).then(|| items.rows[i].queue),
                    reason: Some(text),
                }
            })
            .collect()
    }
}

impl escalator::Guest for Plugin {
    fn escalate(items: ItemBatch) -> Vec<Escalation> {
        items
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let text = describe(&items, i);
                let mut actions = vec![
                    EscalationAction::RaiseBy(row.priority),
                    EscalationAction::RaiseTo(digest(&text) as i32),
                    EscalationAction::RelaxLevels(row.tier),
                    EscalationAction::MoveTo(row.queue),
                ];
                for k in span(row.skill_start, row.skill_count) {
                    if let Some(s) = items.skills.get(k) {
                        actions.push(EscalationAction::DropSkill(s.skill));
                    }
                }
                actions.push(EscalationAction::Alert(text));
                Escalation { actions, recheck_in_ms: i.is_multiple_of(2).then_some(row.age_ms) }
            })
            .collect()
    }
}

impl matcher::Guest for Plugin {
    fn match_agents(item: ItemBatch, candidates: CandidateTable) -> MatchResult {
        let mut base = FNV_START;
        for i in 0..item.rows.len() {
            base = fnv(base, describe(&item, i).as_bytes());
        }
        for column in &candidates.skill_columns {
            base = fnv(base, &column.to_le_bytes());
        }
        let k = candidates.skill_columns.len();
        let scores = (0..candidates.agent_ids.len())
            .map(|i| {
                let mut h = fnv(base, &candidates.agent_ids[i].to_le_bytes());
                h = fnv(h, candidates.proficiency.get(i * k..(i + 1) * k).unwrap_or(b"?"));
                h = fnv(h, &candidates.idle_ms.get(i).map_or([0xff; 8], |v| v.to_le_bytes()));
                h = fnv(h, &candidates.occupancy.get(i).map_or([0xff; 4], |v| v.to_bits().to_le_bytes()));
                h = fnv(h, candidates.load.get(i * 4..(i + 1) * 4).unwrap_or(b"?"));
                (h >> 8) as f32
            })
            .collect();
        MatchResult::Scores(scores)
    }
}

export!(Plugin);
