//! Billing department rules (front office: voice and chat).
//!
//! Exports only `prioritise`; escalation and agent matching stay with the host's
//! built-in rules. An item's priority is its current priority plus points for:
//!
//! - **customer tier**: `weight-tier` per tier step (standard 0 … platinum 3);
//! - **repeat contact**: `weight-repeat` per earlier contact about the same case
//!   within the FCR window, at most three — a repeat contact is a failed
//!   first-contact resolution, so it is pushed up;
//! - **amount at stake**: `weight-amount` per 100 of the `amount` attribute (or
//!   the item's value when there is no numeric `amount`), capped at `amount-cap`;
//! - **live channel**: `weight-voice` for a call, `weight-chat` for a chat (the
//!   customer is waiting on the line).
//!
//! Disputes (attribute `reason = "dispute"`) of at least `dispute-threshold` are
//! classified into the `dispute-queue` queue — if the host knows that queue;
//! otherwise they stay where they are.
//!
//! Every weight is a department config key (defaults below), so ops tune the
//! rule without a rebuild.

use switchyard_sdk::{Channel, Context, Item, Priority, Reason, Rules};

/// Config keys and their defaults.
mod defaults {
    pub const WEIGHT_TIER: f64 = 15.0;
    pub const WEIGHT_REPEAT: f64 = 20.0;
    pub const MAX_REPEATS: u16 = 3;
    pub const WEIGHT_AMOUNT: f64 = 5.0;
    pub const AMOUNT_CAP: f64 = 40.0;
    pub const WEIGHT_VOICE: f64 = 10.0;
    pub const WEIGHT_CHAT: f64 = 5.0;
    pub const DISPUTE_THRESHOLD: f64 = 500.0;
    pub const DISPUTE_QUEUE: &str = "billing-disputes";
}

/// The billing department's rules.
#[derive(Debug, Default)]
pub struct Billing;

/// The amount at stake: the numeric `amount` attribute, else the item's value.
fn amount_at_stake(ctx: &Context, item: &Item<'_>) -> f64 {
    ctx.attribute("amount")
        .and_then(|key| item.attr_f64(key))
        .filter(|a| a.is_finite())
        .unwrap_or(item.value())
        .max(0.0)
}

fn is_dispute(ctx: &Context, item: &Item<'_>) -> bool {
    ctx.attribute("reason").and_then(|key| item.attr(key)).is_some_and(|r| r.eq_ignore_ascii_case("dispute"))
}

/// The English ordinal suffix of `n` ("st" for 1 and 21, "th" for 11).
fn ordinal_suffix(n: u16) -> &'static str {
    match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

#[switchyard_sdk::rules]
impl Rules for Billing {
    fn prioritise(&self, ctx: &Context, item: Item<'_>) -> Priority {
        // Config reads are cached by the SDK (a hash lookup each); the reason is
        // one String, written only when the host wants explanations, piece by
        // piece (`Reason::new_part`): `format_args!` and `{:.2}` were the most
        // expensive part of this rule, and ≈3.5× slower as Wasm than natively.
        let mut points = 0.0;
        let mut why = Reason::new(ctx);

        let tier = item.tier();
        let tier_points = ctx.config_f64("weight-tier", defaults::WEIGHT_TIER) * tier.as_u8() as f64;
        if tier_points != 0.0 {
            why.new_part().text(tier.name()).text(" tier +").fixed(tier_points, 0);
            points += tier_points;
        }

        let repeats = item.contacts().saturating_sub(1).min(defaults::MAX_REPEATS);
        if repeats > 0 {
            let repeat_points = ctx.config_f64("weight-repeat", defaults::WEIGHT_REPEAT) * repeats as f64;
            let n = item.contacts();
            why.new_part().int(n).text(ordinal_suffix(n)).text(" contact +").fixed(repeat_points, 0);
            points += repeat_points;
        }

        let amount = amount_at_stake(ctx, &item);
        let amount_points = (amount / 100.0 * ctx.config_f64("weight-amount", defaults::WEIGHT_AMOUNT))
            .min(ctx.config_f64("amount-cap", defaults::AMOUNT_CAP));
        if amount_points >= 0.5 {
            why.new_part().fixed(amount, 2).text(" at stake +").fixed(amount_points, 0);
            points += amount_points;
        }

        let live_points = match item.channel() {
            Channel::Voice => ctx.config_f64("weight-voice", defaults::WEIGHT_VOICE),
            Channel::Chat => ctx.config_f64("weight-chat", defaults::WEIGHT_CHAT),
            Channel::Email | Channel::Case => 0.0,
        };
        if live_points != 0.0 {
            why.new_part().text(item.channel().name()).text(" +").fixed(live_points, 0);
            points += live_points;
        }

        let priority = (item.priority() as f64 + points).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32;
        let mut decision = Priority::new(priority);

        if is_dispute(ctx, &item) && amount >= ctx.config_f64("dispute-threshold", defaults::DISPUTE_THRESHOLD) {
            let configured = ctx.config_str("dispute-queue");
            let queue_name = configured.as_deref().unwrap_or(defaults::DISPUTE_QUEUE);
            if let Some(queue) = ctx.queue(queue_name) {
                why.new_part().text("dispute over threshold -> ").text(queue_name);
                decision = decision.to_queue(queue);
            }
        }

        decision.with_reason(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::Tier;
    use switchyard_sdk::testing::{TestBench, WorkItem};

    fn priorities(bench: &TestBench<Billing>, items: &[WorkItem]) -> Vec<i32> {
        bench.prioritise(items).into_iter().map(|p| p.priority).collect()
    }

    #[test]
    fn tier_repeat_contacts_amount_and_channel_add_up() {
        let bench = TestBench::new(Billing);
        let got = bench.prioritise(&[WorkItem::voice("billing")
            .tier(Tier::Gold)
            .contacts(2)
            .value(300.0)
            .attr("amount", "300")
            .skill("billing", 3)
            .age_s(30)
            .due_in_s(3600)]);
        // gold 2×15 + one repeat 20 + 300/100×5 + voice 10
        assert_eq!(got[0].priority, 75);
        assert_eq!(got[0].queue, None);
        assert_eq!(got[0].reason.as_deref(), Some("gold tier +30, 2nd contact +20, 300.00 at stake +15, voice +10"));
    }

    #[test]
    fn a_repeat_contact_outranks_the_same_first_contact() {
        let bench = TestBench::new(Billing);
        let got = priorities(&bench, &[WorkItem::chat("billing").contacts(1), WorkItem::chat("billing").contacts(3)]);
        assert_eq!(got, vec![5, 45]);
    }

    #[test]
    fn repeats_and_amount_are_capped() {
        let bench = TestBench::new(Billing);
        // 9 contacts count as 3 repeats (60); 100 000 at stake caps at 40; email has no live bonus.
        let got = priorities(&bench, &[WorkItem::email("billing").contacts(9).value(100_000.0)]);
        assert_eq!(got, vec![100]);
    }

    #[test]
    fn the_amount_attribute_wins_over_the_value_and_bad_numbers_fall_back() {
        let bench = TestBench::new(Billing);
        let got = priorities(
            &bench,
            &[
                WorkItem::email("billing").value(100.0).attr("amount", "600"),
                WorkItem::email("billing").value(100.0).attr("amount", "a lot"),
            ],
        );
        assert_eq!(got, vec![30, 5]);
    }

    #[test]
    fn weights_come_from_the_department_config() {
        let bench = TestBench::new(Billing).config("weight-tier", "100").config("weight-voice", "0");
        let got = priorities(&bench, &[WorkItem::voice("billing").tier(Tier::Platinum)]);
        assert_eq!(got, vec![300]);
    }

    #[test]
    fn the_current_priority_is_the_base() {
        let bench = TestBench::new(Billing);
        assert_eq!(priorities(&bench, &[WorkItem::email("billing").priority(-7)]), vec![-7]);
        assert_eq!(bench.prioritise(&[WorkItem::email("billing")])[0].reason, None);
    }

    #[test]
    fn big_disputes_move_to_the_disputes_queue_when_the_host_knows_it() {
        let dispute = WorkItem::voice("billing").attr("reason", "dispute").attr("amount", "750");
        let small = WorkItem::voice("billing").attr("reason", "dispute").attr("amount", "120");

        let knows = TestBench::new(Billing).queue("billing-disputes");
        let got = knows.prioritise(&[dispute.clone(), small.clone()]);
        assert_eq!(got[0].queue, knows.queue_id("billing-disputes"));
        assert_eq!(got[0].priority, 48); // 750/100×5 = 37.5 -> 38 (capped at 40), voice 10
        assert_eq!(got[1].queue, None);

        let does_not = TestBench::new(Billing);
        assert_eq!(does_not.prioritise(&[dispute])[0].queue, None);
    }

    #[test]
    fn the_dispute_queue_and_threshold_are_configurable() {
        let bench = TestBench::new(Billing)
            .queue("escalations")
            .config("dispute-queue", "escalations")
            .config("dispute-threshold", "100");
        let got = bench.prioritise(&[WorkItem::chat("billing").attr("reason", "Dispute").value(120.0)]);
        assert_eq!(got[0].queue, bench.queue_id("escalations"));
    }

    #[test]
    fn without_explanations_the_decision_is_the_same_and_has_no_reason() {
        let items = [
            WorkItem::voice("billing").tier(Tier::Gold).contacts(2).attr("amount", "300"),
            WorkItem::chat("billing").attr("reason", "dispute").attr("amount", "750"),
        ];
        let on = TestBench::new(Billing).queue("billing-disputes").prioritise(&items);
        let off = TestBench::new(Billing)
            .queue("billing-disputes")
            .config(switchyard_sdk::EXPLAIN_KEY, "false")
            .prioritise(&items);
        assert!(on.iter().all(|p| p.reason.is_some()));
        for (on, off) in on.iter().zip(&off) {
            assert_eq!(off.reason, None);
            assert_eq!((off.priority, off.queue), (on.priority, on.queue));
        }
    }

    #[test]
    fn fixtures_pass_natively() {
        TestBench::new(Billing)
            .run_fixtures(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures.toml"))
            .unwrap()
            .assert_ok();
    }
}
