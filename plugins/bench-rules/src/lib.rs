//! The benchmark rule, written once.
//!
//! `host/benches/ratios` measures the same rule on every side: this crate
//! compiled to a Switchyard component, the very same functions compiled natively
//! (the baseline), an Extism guest that calls them (`host/benches/extism-guest`),
//! and a Rhai transcription (`host/benches/ratios/rule.rhai`). The rule is
//! integer arithmetic on flat fields, so every side can compute exactly the same
//! answer and the benchmark checks that they do.
//!
//! - [`prioritise`]: priority = current + 15 per tier step + 20 per repeat
//!   contact (at most 3) + 1 per 20 of value at stake (at most 40) + 10 for a
//!   call / 5 for a chat + 1 per 10 s waited (at most 30) + 25 when due within
//!   the hour.
//! - [`match_agents`]: a candidate below any required level is vetoed (-1);
//!   otherwise it scores 100 + 10 × the sum of its levels in the required
//!   skills + idle seconds (at most 600) − 50 × occupancy − 5 per item in hand,
//!   never below 0.
//!
//! [`wire`] is the raw-bytes encoding of the Extism raw style; [`json`] the serde
//! shapes of its JSON style.

use switchyard_sdk::{CandidateTable, Channel, ItemBatch, ItemRow, MatchResult, NO_DUE, Priority, SkillReq};

pub mod json;
pub mod wire;

/// The priority the rule gives one item.
pub fn priority_of(row: &ItemRow) -> i32 {
    let mut p = i64::from(row.priority);
    p += 15 * i64::from(row.tier.min(3));
    p += 20 * i64::from(row.contacts.saturating_sub(1).min(3));
    // `if` rather than `f64::max`: the same answer (a NaN value counts as 0
    // either way), but `max` is a libm call on wasm32, not an instruction.
    let value = if row.value > 0.0 { row.value as i64 } else { 0 };
    p += (value / 20).min(40);
    p += match row.channel {
        Channel::Voice => 10,
        Channel::Chat => 5,
        Channel::Email | Channel::Case => 0,
    };
    p += (row.age_ms / 10_000).min(30) as i64;
    if row.due_in_ms != NO_DUE && row.due_in_ms < 3_600_000 {
        p += 25;
    }
    p.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The rule over a batch: one priority per item, in order.
pub fn prioritise(batch: &ItemBatch) -> Vec<Priority> {
    batch.rows.iter().map(|row| Priority::new(priority_of(row))).collect()
}

/// The rule's scores for the single item of `item` against `candidates` (no
/// item vetoes everyone).
pub fn match_agents(item: &ItemBatch, candidates: &CandidateTable) -> MatchResult {
    match item.get(0) {
        Some(item) => match_scores(item.skills(), candidates),
        None => MatchResult::Ranked(Vec::new()),
    }
}

/// The rule's scores for an item requiring `required` against `candidates`.
/// A malformed table (columns of the wrong length) vetoes everyone.
pub fn match_scores(required: &[SkillReq], candidates: &CandidateTable) -> MatchResult {
    if candidates.validate().is_err() {
        return MatchResult::Ranked(Vec::new());
    }
    // Resolve each required skill to its column once, not once per candidate.
    let required: Vec<(Option<usize>, u8)> =
        required.iter().map(|r| (candidates.column_of(r.skill), r.level)).collect();
    let k = candidates.skill_columns.len();
    let n = candidates.len();
    let mut scores = Vec::with_capacity(n);
    for i in 0..n {
        let levels = &candidates.proficiency[i * k..(i + 1) * k];
        let mut sum = 0u32;
        let mut qualified = true;
        for &(column, level) in &required {
            let have = column.map_or(0, |c| levels[c]);
            if have < level {
                qualified = false;
                break;
            }
            sum += u32::from(have);
        }
        if !qualified {
            scores.push(-1.0);
            continue;
        }
        let in_hand: u32 = candidates.load[i * 4..i * 4 + 4].iter().map(|&l| u32::from(l)).sum();
        let idle_s = (candidates.idle_ms[i] / 1000).min(600) as f32;
        let score = 100.0 + sum as f32 * 10.0 + idle_s - candidates.occupancy[i] * 50.0 - in_hand as f32 * 5.0;
        scores.push(if score > 0.0 { score } else { 0.0 });
    }
    MatchResult::Scores(scores)
}

/// The benchmark rule as a Switchyard plugin.
#[derive(Debug, Default)]
pub struct BenchRules;

#[cfg(feature = "component")]
mod component {
    use switchyard_sdk::{CandidateTable, Context, Item, MatchResult, Priority, Rules};

    use super::BenchRules;

    #[switchyard_sdk::rules]
    impl Rules for BenchRules {
        fn prioritise(&self, _ctx: &Context, item: Item<'_>) -> Priority {
            Priority::new(super::priority_of(item.row()))
        }

        fn match_agents(&self, _ctx: &Context, item: Item<'_>, candidates: &CandidateTable) -> MatchResult {
            super::match_scores(item.skills(), candidates)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::{Agent, TestBench, WorkItem};
    use switchyard_sdk::{Priority, Tier};

    #[test]
    fn every_term_of_the_priority_adds_up() {
        let bench = TestBench::new(BenchRules);
        let got = bench.prioritise(&[
            // 5 + gold 30 + two repeats 40 + 900/20 = 45 capped at 40 + voice 10
            // + 125 s waited = 12 + due within the hour 25
            WorkItem::voice("q").priority(5).tier(Tier::Gold).contacts(3).value(900.0).age_s(125).due_in_s(600),
            // chat 5, due tomorrow: nothing else
            WorkItem::chat("q").due_in_s(86_400),
            // 9 contacts count as 3 repeats; an hour's wait caps at 30; overdue counts as due
            WorkItem::case("q").contacts(9).age_s(3_600).due_in_s(-10),
        ]);
        assert_eq!(got, vec![Priority::new(162), Priority::new(5), Priority::new(115)]);
    }

    #[test]
    fn the_plain_function_and_the_rules_impl_agree() {
        let bench = TestBench::new(BenchRules);
        let items = [WorkItem::email("q").tier(Tier::Platinum).value(30.0), WorkItem::voice("q").priority(-4)];
        assert_eq!(prioritise(&bench.batch(&items)), bench.prioritise(&items));
    }

    #[test]
    fn unqualified_agents_are_vetoed_and_the_rest_scored() {
        let bench = TestBench::new(BenchRules);
        let item = WorkItem::chat("q").skill("es", 3).skill("billing", 2);
        let got = bench.match_agents(
            &item,
            &[
                // 100 + 10 × (5 + 2) + 60 s idle − 50 × 0.5 − 5 × 1 chat
                Agent::new(1)
                    .skill("es", 5)
                    .skill("billing", 2)
                    .idle_s(60)
                    .occupancy(0.5)
                    .load(switchyard_sdk::Channel::Chat, 1),
                // below the es level
                Agent::new(2).skill("es", 2).skill("billing", 9),
                // idle time caps at 600 s
                Agent::new(3).skill("es", 3).skill("billing", 2).idle_s(4_000),
                // lacks billing
                Agent::new(4).skill("es", 9),
            ],
        );
        assert_eq!(got, MatchResult::Scores(vec![200.0, -1.0, 750.0, -1.0]));
    }

    #[test]
    fn a_malformed_table_or_empty_batch_vetoes_everyone() {
        let mut table = CandidateTable::new(vec![0]);
        table.push(switchyard_sdk::NewCandidate { id: 1, proficiency: &[5], ..Default::default() });
        table.idle_ms.clear();
        let mut item = ItemBatch::new(0);
        item.push(switchyard_sdk::NewItem { id: 1, ..Default::default() });
        assert_eq!(match_agents(&item, &table), MatchResult::Ranked(Vec::new()));
        assert_eq!(match_agents(&ItemBatch::new(0), &CandidateTable::new(vec![])), MatchResult::Ranked(Vec::new()));
    }

    #[test]
    fn fixtures_pass_natively() {
        TestBench::new(BenchRules)
            .run_fixtures(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures.toml"))
            .unwrap()
            .assert_ok();
    }
}
