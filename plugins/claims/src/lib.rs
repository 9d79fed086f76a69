//! Claims department rules (back office: cases with due dates).
//!
//! Exports `prioritise` and `escalate`; agent matching stays with the host's
//! built-in rule.
//!
//! **Prioritise** by time left to the due date: a case due now scores 99, one
//! due `horizon-h` hours (default 120) or more away scores 1, linearly between;
//! an overdue case scores 100 plus one per whole hour overdue (at most 199), so
//! overdue work always comes first, oldest breach first. A case without a due
//! date keeps its priority.
//!
//! **Escalate** in steps over the case's service-level window (creation to due
//! date), each step firing once because the rule asks to be called again exactly
//! when the next step is due:
//!
//! | share of the window used | actions | look again |
//! |---|---|---|
//! | below `raise-at` (0.5) | none | when `raise-at` is reached |
//! | `raise-at` – `relax-at` (0.75) | raise by `raise-by` (10) | at `relax-at` |
//! | `relax-at` – `alert-at` (0.9) | raise by `raise-by`, relax required levels by 1 | at `alert-at` |
//! | `alert-at` – due | raise by 2×`raise-by`, alert the supervisor before the breach | at the due time |
//! | overdue | raise to 200, move to `overdue-queue` (if the host knows it), alert | every `overdue-recheck-h` (4) hours |

use switchyard_sdk::{Context, Escalation, EscalationAction, Item, Piece, Priority, Rules};

const HOUR_MS: i64 = 3_600_000;

/// Config keys and their defaults.
mod defaults {
    pub const HORIZON_H: f64 = 120.0;
    pub const RAISE_AT: f64 = 0.5;
    pub const RELAX_AT: f64 = 0.75;
    pub const ALERT_AT: f64 = 0.9;
    pub const RAISE_BY: f64 = 10.0;
    pub const OVERDUE_PRIORITY: i32 = 200;
    pub const OVERDUE_QUEUE: &str = "claims-overdue";
    pub const OVERDUE_RECHECK_H: f64 = 4.0;
}

/// The claims department's rules.
#[derive(Debug, Default)]
pub struct Claims;

/// `ms` written as "5h 12m" after `piece`: by hand, not through `core::fmt`
/// (`switchyard_sdk::Piece`), since every alert and reason carries one.
fn hours_minutes(piece: Piece<'_>, ms: i64) -> Piece<'_> {
    let minutes = ms.unsigned_abs() / 60_000;
    piece.int(minutes / 60).text("h ").int(minutes % 60).text("m")
}

/// `head` followed by [`hours_minutes`] of `ms` (a reason).
fn with_hours(head: &str, ms: i64) -> String {
    let mut text = String::with_capacity(32);
    hours_minutes(Piece::append_to(&mut text).text(head), ms);
    text
}

/// "case {id} {what} {hours}" (an alert).
fn case_alert(id: u64, what: &str, ms: i64) -> String {
    let mut text = String::with_capacity(64);
    hours_minutes(Piece::append_to(&mut text).text("case ").int(id).text(what), ms);
    text
}

/// Priority points for a case due in `due_in_ms` (negative = overdue).
fn due_points(ctx: &Context, due_in_ms: i64) -> i32 {
    if due_in_ms <= 0 {
        let overdue_h = due_in_ms.unsigned_abs() / HOUR_MS as u64;
        return 100 + overdue_h.min(99) as i32;
    }
    let horizon_h = ctx.config_f64("horizon-h", defaults::HORIZON_H).max(1.0);
    let hours_left = due_in_ms as f64 / HOUR_MS as f64;
    (100.0 - 100.0 * hours_left / horizon_h).round().clamp(1.0, 99.0) as i32
}

/// Threshold `fraction` of a window of `window_ms`, in ms of age (rounded up, so
/// an item rechecked exactly then is past the threshold).
fn threshold(window_ms: u64, fraction: f64) -> u64 {
    (window_ms as f64 * fraction.clamp(0.0, 1.0)).ceil() as u64
}

#[switchyard_sdk::rules]
impl Rules for Claims {
    fn prioritise(&self, ctx: &Context, item: Item<'_>) -> Priority {
        match item.due_in_ms() {
            None => Priority::new(item.priority()).because_with(ctx, || "no due date".into()),
            Some(due_in) if due_in <= 0 => Priority::new(item.priority().saturating_add(due_points(ctx, due_in)))
                .because_with(ctx, || with_hours("overdue by ", due_in)),
            Some(due_in) => Priority::new(item.priority().saturating_add(due_points(ctx, due_in)))
                .because_with(ctx, || with_hours("due in ", due_in)),
        }
    }

    fn escalate(&self, ctx: &Context, item: Item<'_>) -> Escalation {
        let Some(due_in) = item.due_in_ms() else {
            return Escalation::none();
        };
        let raise_by = ctx.config_f64("raise-by", defaults::RAISE_BY).round() as i32;

        if due_in <= 0 {
            let mut escalation = Escalation::none().then(EscalationAction::RaiseTo(defaults::OVERDUE_PRIORITY));
            let configured = ctx.config_str("overdue-queue");
            let queue_name = configured.as_deref().unwrap_or(defaults::OVERDUE_QUEUE);
            if let Some(queue) = ctx.queue(queue_name).filter(|&q| q != item.queue()) {
                escalation = escalation.then(EscalationAction::MoveTo(queue));
            }
            let recheck_h = ctx.config_f64("overdue-recheck-h", defaults::OVERDUE_RECHECK_H).max(0.0);
            return escalation
                .then(EscalationAction::Alert(case_alert(item.id(), " is overdue by ", due_in)))
                .recheck_in_ms((recheck_h * HOUR_MS as f64).round().max(1.0) as u64);
        }

        let age = item.age_ms();
        let window = age.saturating_add(due_in as u64);
        let raise_at = threshold(window, ctx.config_f64("raise-at", defaults::RAISE_AT));
        let relax_at = threshold(window, ctx.config_f64("relax-at", defaults::RELAX_AT));
        let alert_at = threshold(window, ctx.config_f64("alert-at", defaults::ALERT_AT));

        if age < raise_at {
            Escalation::none().recheck_in_ms(raise_at - age)
        } else if age < relax_at {
            Escalation::none().then(EscalationAction::RaiseBy(raise_by)).recheck_in_ms(relax_at - age)
        } else if age < alert_at {
            Escalation::none()
                .then(EscalationAction::RaiseBy(raise_by))
                .then(EscalationAction::RelaxLevels(1))
                .recheck_in_ms(alert_at - age)
        } else {
            Escalation::none()
                .then(EscalationAction::RaiseBy(raise_by.saturating_mul(2)))
                .then(EscalationAction::Alert(case_alert(item.id(), " breaches its due time in ", due_in)))
                .recheck_in_ms(due_in as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::{TestBench, WorkItem};

    const H: i64 = 3600;

    fn case(age_h: i64, due_in_h: i64) -> WorkItem {
        WorkItem::case("claims").skill("claims", 5).age_s((age_h * H) as u64).due_in_s(due_in_h * H)
    }

    #[test]
    fn priority_rises_as_the_due_date_nears_and_overdue_comes_first() {
        let bench = TestBench::new(Claims);
        let got: Vec<i32> = bench
            .prioritise(&[
                case(0, 200),
                case(0, 60),
                case(0, 24),
                case(0, 2),
                case(0, -1),
                case(0, -30),
                WorkItem::case("claims"),
            ])
            .into_iter()
            .map(|p| p.priority)
            .collect();
        assert_eq!(got, vec![1, 50, 80, 98, 101, 130, 0]);
    }

    #[test]
    fn priority_explains_the_time_left() {
        let bench = TestBench::new(Claims);
        let got = bench.prioritise(&[WorkItem::case("claims").due_in_s(5 * H + 12 * 60), case(0, -3)]);
        assert_eq!(got[0].reason.as_deref(), Some("due in 5h 12m"));
        assert_eq!(got[1].reason.as_deref(), Some("overdue by 3h 0m"));
    }

    #[test]
    fn the_horizon_is_configurable() {
        let bench = TestBench::new(Claims).config("horizon-h", "48");
        assert_eq!(bench.prioritise(&[case(0, 24)])[0].priority, 50);
    }

    #[test]
    fn early_cases_wait_until_half_the_window_is_used() {
        let bench = TestBench::new(Claims);
        // window 100 h, 40 h used: look again at 50 h.
        assert_eq!(bench.escalate(&[case(40, 60)]), vec![Escalation::none().recheck_in_ms(10 * HOUR_MS as u64)]);
    }

    #[test]
    fn each_step_fires_once_and_schedules_the_next() {
        let bench = TestBench::new(Claims);
        let got = bench.escalate(&[case(60, 40), case(80, 20), case(95, 5)]);
        assert_eq!(got[0], Escalation::none().then(EscalationAction::RaiseBy(10)).recheck_in_ms(15 * HOUR_MS as u64));
        assert_eq!(
            got[1],
            Escalation::none()
                .then(EscalationAction::RaiseBy(10))
                .then(EscalationAction::RelaxLevels(1))
                .recheck_in_ms(10 * HOUR_MS as u64)
        );
        assert_eq!(
            got[2],
            Escalation::none()
                .then(EscalationAction::RaiseBy(20))
                .then(EscalationAction::Alert("case 3 breaches its due time in 5h 0m".into()))
                .recheck_in_ms(5 * HOUR_MS as u64)
        );
    }

    #[test]
    fn a_recheck_at_the_scheduled_time_lands_in_the_next_step() {
        let bench = TestBench::new(Claims);
        let first = bench.escalate(&[case(40, 60)]);
        let wait = first[0].recheck_in_ms.unwrap() as i64;
        let later = WorkItem::case("claims").age_ms((40 * HOUR_MS + wait) as u64).due_in_ms(60 * HOUR_MS - wait);
        assert_eq!(bench.escalate(&[later])[0].actions, vec![EscalationAction::RaiseBy(10)]);
    }

    #[test]
    fn overdue_cases_move_to_the_overdue_queue_when_known_and_alert() {
        let bench = TestBench::new(Claims).queue("claims-overdue");
        let overdue = bench.queue_id("claims-overdue").unwrap();
        let got = bench.escalate(&[case(110, -10).id(42)]);
        assert_eq!(
            got[0],
            Escalation::none()
                .then(EscalationAction::RaiseTo(200))
                .then(EscalationAction::MoveTo(overdue))
                .then(EscalationAction::Alert("case 42 is overdue by 10h 0m".into()))
                .recheck_in_ms(4 * HOUR_MS as u64)
        );
        // Already in the overdue queue, or the host has no such queue: no move.
        let in_place = bench.escalate(&[WorkItem::case("claims-overdue").age_s(3600).due_in_s(-60)]);
        assert!(!in_place[0].actions.iter().any(|a| matches!(a, EscalationAction::MoveTo(_))));
        let unknown = TestBench::new(Claims).escalate(&[case(110, -10)]);
        assert!(!unknown[0].actions.iter().any(|a| matches!(a, EscalationAction::MoveTo(_))));
    }

    #[test]
    fn cases_without_a_due_date_never_escalate() {
        let bench = TestBench::new(Claims);
        assert_eq!(bench.escalate(&[WorkItem::case("claims").age_s(999_999)]), vec![Escalation::none()]);
    }

    #[test]
    fn fixtures_pass_natively() {
        TestBench::new(Claims).run_fixtures(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures.toml")).unwrap().assert_ok();
    }
}
