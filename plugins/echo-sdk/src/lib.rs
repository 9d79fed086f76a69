//! Test plugin `echo-sdk`: `echo-abi`'s answers, written with the SDK, so the
//! SDK's hand-written guest glue (`sdk/src/abi.rs`: rows adopted in place as
//! `#[repr(C)] ItemRow`, answers lowered by hand) is checked by the same ABI
//! conformance tests (`host/runtime/src/abi/conformance.rs`) as the host's fast path.
//!
//! The SDK hands a rule one item at a time, so the answers differ from
//! `echo-abi`'s in two ways: every description starts with `now-ms`, and the
//! `queue` of a priority and the `recheck-in-ms` of an escalation are set for
//! items with an even *id* (not index). `match-agents` sees the batch's first
//! item only (an empty batch is answered `ranked []` by the SDK).

use std::fmt::Write as _;

use switchyard_sdk::{CandidateTable, Context, Escalation, EscalationAction, Item, MatchResult, Priority, Rules};

/// 32-bit FNV-1a of `bytes`, continuing from `hash`.
pub fn fnv(hash: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(hash, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// FNV-1a's starting value.
pub const FNV_START: u32 = 0x811c_9dc5;

/// `now-ms`, every field of the item's row, its skills and its attributes.
pub fn describe(item: &Item<'_>) -> String {
    let row = item.row();
    let mut out = String::new();
    let _ = write!(
        out,
        "now={};id={};channel={};queue={};tier={};contacts={};priority={};age={};due={};value={:#x};skills={}+{};attrs={}+{}",
        item.now_ms(),
        row.id,
        row.channel.index(),
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
    for s in item.skills() {
        let _ = write!(out, "{}:{},", s.skill.0, s.level);
    }
    out.push_str("];{");
    for (key, value) in item.attributes() {
        let _ = write!(out, "{}={value:?},", key.0);
    }
    out.push('}');
    out
}

/// The rules: echo what arrived.
#[derive(Debug, Default)]
pub struct Echo;

#[switchyard_sdk::rules]
impl Rules for Echo {
    fn prioritise(&self, _ctx: &Context, item: Item<'_>) -> Priority {
        let text = describe(&item);
        let p = Priority::new(fnv(FNV_START, text.as_bytes()) as i32);
        let p = if item.id().is_multiple_of(2) { p.to_queue(item.queue()) } else { p };
        p.because(text)
    }

    fn escalate(&self, _ctx: &Context, item: Item<'_>) -> Escalation {
        let text = describe(&item);
        let mut e = Escalation::none()
            .then(EscalationAction::RaiseBy(item.priority()))
            .then(EscalationAction::RaiseTo(fnv(FNV_START, text.as_bytes()) as i32))
            .then(EscalationAction::RelaxLevels(item.row().tier))
            .then(EscalationAction::MoveTo(item.queue()));
        for s in item.skills() {
            e = e.then(EscalationAction::DropSkill(s.skill));
        }
        e = e.then(EscalationAction::Alert(text));
        if item.id().is_multiple_of(2) {
            e = e.recheck_in_ms(item.age_ms());
        }
        e
    }

    fn match_agents(&self, _ctx: &Context, item: Item<'_>, candidates: &CandidateTable) -> MatchResult {
        let mut base = fnv(FNV_START, describe(&item).as_bytes());
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
