//! The host side of the WIT contract (`wit/routing.wit`, world
//! `switchyard:routing/rules`): the wasmtime bindings, the moves between the SDK's
//! plain types and the generated ones, and the checks every plugin answer passes
//! before the router may use it. The hot arguments and the `prioritise` answer
//! cross the boundary through `crate::abi` instead of the generated types.
//!
//! A plugin's answer is untrusted: it is well-typed (the component boundary made
//! sure of that) but may still be nonsense. [`check_priorities`],
//! [`check_escalations`] and [`check_match`] turn a lifted answer into the SDK's
//! types or say which rule of the contract it broke (wrong length, NaN score,
//! unknown queue or skill, index out of range, too much text).

use switchyard_contract::{Escalation, EscalationAction, LogLevel, MatchResult, NameKind, Priority, QueueId, SkillId};

/// The generated bindings of the `switchyard:routing/rules` world. Hosts look each
/// hook up on its own (a plugin exports any non-empty subset), so only the per-
/// interface `GuestIndices` of `exports` are used, never the world's `RulesPre`.
#[allow(missing_docs)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "switchyard:routing/rules",
    });
}

pub use bindings::switchyard::routing::types as wit;

/// The contract version this host speaks.
pub use switchyard_contract::CONTRACT_VERSION;

/// Names of the hook interfaces as a component exports them, with this host's version.
pub const PRIORITISER: &str = "switchyard:routing/prioritiser@0.1.0";
/// See [`PRIORITISER`].
pub const ESCALATOR: &str = "switchyard:routing/escalator@0.1.0";
/// See [`PRIORITISER`].
pub const MATCHER: &str = "switchyard:routing/matcher@0.1.0";

pub use switchyard_contract::Hook;

/// Default bytes of one text of an answer (a priority reason, an alert
/// message; [`AnswerCaps::message_bytes`]). Text goes to desktops, alerts and
/// case histories that live on in the host: 4 KiB is a paragraph, and a 1 MiB
/// "alert" is refused rather than kept.
pub const MAX_MESSAGE_BYTES: usize = 4 << 10;

/// Longest `recheck-in-ms` an answer may carry: the router's
/// [`MAX_DURATION_MS`](switchyard_core::router::MAX_DURATION_MS) (one year). Longer is
/// nonsense and refused; the router also shortens rechecks to its own cap.
pub const MAX_RECHECK_MS: u64 = switchyard_core::router::MAX_DURATION_MS;

/// How much a plugin may say in one answer, beyond what the item count fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerCaps {
    /// Total bytes of text (reasons, alert messages) in one answer.
    pub text_bytes: usize,
    /// Bytes of any one text (a reason, an alert message).
    pub message_bytes: usize,
    /// Escalation actions per item.
    pub actions_per_item: usize,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// It breaks a rule of the contract.
    Invalid(String),
    /// It is larger than [`AnswerCaps`] allow.
    TooLarge(String),
}

/// How many names of each kind the catalog holds (ids below are known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KnownIds {
    /// Interned queues.
    pub queues: u32,
    /// Interned skills.
    pub skills: u32,
}

impl KnownIds {
    /// Counts of `catalog`.
    pub fn of(catalog: &switchyard_contract::Catalog) -> Self {
        KnownIds {
            queues: catalog.table(NameKind::Queue).len() as u32,
            skills: catalog.table(NameKind::Skill).len() as u32,
        }
    }
}

/// The SDK form of a log level.
pub fn log_level_from_wit(level: wit::LogLevel) -> LogLevel {
    match level {
        wit::LogLevel::Trace => LogLevel::Trace,
        wit::LogLevel::Debug => LogLevel::Debug,
        wit::LogLevel::Info => LogLevel::Info,
        wit::LogLevel::Warn => LogLevel::Warn,
        wit::LogLevel::Error => LogLevel::Error,
    }
}

/// The SDK form of a name kind.
pub fn name_kind_from_wit(kind: wit::NameKind) -> NameKind {
    match kind {
        wit::NameKind::Skill => NameKind::Skill,
        wit::NameKind::Queue => NameKind::Queue,
        wit::NameKind::Attribute => NameKind::Attribute,
    }
}

/// Counts text bytes of an answer against the cap.
struct TextBudget {
    used: usize,
    cap: usize,
    message_cap: usize,
}

impl TextBudget {
    fn spend(&mut self, bytes: usize) -> Result<(), AnswerError> {
        if bytes > self.message_cap {
            return Err(AnswerError::TooLarge(format!("a text of {bytes} bytes (at most {})", self.message_cap)));
        }
        self.used = self.used.saturating_add(bytes);
        if self.used > self.cap {
            return Err(AnswerError::TooLarge(format!("answer text exceeds {} bytes", self.cap)));
        }
        Ok(())
    }
}

fn check_len(what: &str, got: usize, want: usize) -> Result<(), AnswerError> {
    if got != want {
        return Err(AnswerError::Invalid(format!("{got} {what} for {want} items")));
    }
    Ok(())
}

/// Check a `prioritise` answer for a batch of `items` items.
pub fn check_priorities(
    answer: Vec<Priority>,
    items: usize,
    known: KnownIds,
    caps: AnswerCaps,
) -> Result<Vec<Priority>, AnswerError> {
    check_len("priorities", answer.len(), items)?;
    let mut text = TextBudget { used: 0, cap: caps.text_bytes, message_cap: caps.message_bytes };
    for (i, p) in answer.iter().enumerate() {
        if let Some(QueueId(queue)) = p.queue
            && queue >= known.queues
        {
            return Err(AnswerError::Invalid(format!("item {i}: unknown queue id {queue}")));
        }
        if let Some(reason) = &p.reason {
            text.spend(reason.len())?;
        }
    }
    Ok(answer)
}

/// Check an `escalate` answer for a batch of `items` items.
pub fn check_escalations(
    answer: Vec<Escalation>,
    items: usize,
    known: KnownIds,
    caps: AnswerCaps,
) -> Result<Vec<Escalation>, AnswerError> {
    check_len("escalations", answer.len(), items)?;
    let mut text = TextBudget { used: 0, cap: caps.text_bytes, message_cap: caps.message_bytes };
    for (i, e) in answer.iter().enumerate() {
        if e.actions.len() > caps.actions_per_item {
            return Err(AnswerError::TooLarge(format!(
                "item {i}: {} escalation actions (at most {})",
                e.actions.len(),
                caps.actions_per_item
            )));
        }
        for action in &e.actions {
            match action {
                EscalationAction::DropSkill(SkillId(s)) if *s >= known.skills => {
                    return Err(AnswerError::Invalid(format!("item {i}: drop-skill of unknown skill id {s}")));
                }
                EscalationAction::MoveTo(QueueId(q)) if *q >= known.queues => {
                    return Err(AnswerError::Invalid(format!("item {i}: move-to unknown queue id {q}")));
                }
                EscalationAction::Alert(message) => text.spend(message.len())?,
                _ => {}
            }
        }
        if let Some(ms) = e.recheck_in_ms
            && ms > MAX_RECHECK_MS
        {
            return Err(AnswerError::Invalid(format!("item {i}: recheck in {ms} ms (at most {MAX_RECHECK_MS})")));
        }
    }
    Ok(answer)
}

/// Check a `match-agents` answer for a table of `candidates` candidates.
pub fn check_match(answer: wit::MatchResult, candidates: usize) -> Result<MatchResult, AnswerError> {
    match answer {
        wit::MatchResult::Scores(scores) => {
            if scores.len() != candidates {
                return Err(AnswerError::Invalid(format!("{} scores for {candidates} candidates", scores.len())));
            }
            // One branch-free pass (the compiler vectorises it) for the usual
            // answer; the position only when there is a NaN to name. An early
            // exit per score cost ≈0.4 ns a candidate, a fifth of what the
            // tech-support rule itself costs per candidate in the component.
            if scores.iter().fold(false, |any, s| any | s.is_nan())
                && let Some(i) = scores.iter().position(|s| s.is_nan())
            {
                return Err(AnswerError::Invalid(format!("score of candidate {i} is NaN")));
            }
            Ok(MatchResult::Scores(scores))
        }
        wit::MatchResult::Ranked(order) => {
            if order.len() > candidates {
                return Err(AnswerError::Invalid(format!(
                    "{} ranked indices for {candidates} candidates",
                    order.len()
                )));
            }
            let mut seen = vec![false; candidates];
            for &index in &order {
                let Some(slot) = seen.get_mut(index as usize) else {
                    return Err(AnswerError::Invalid(format!(
                        "ranked index {index} is out of range for {candidates} candidates"
                    )));
                };
                if *slot {
                    return Err(AnswerError::Invalid(format!("candidate {index} is ranked twice")));
                }
                *slot = true;
            }
            Ok(MatchResult::Ranked(order))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: AnswerCaps = AnswerCaps { text_bytes: 16, message_bytes: MAX_MESSAGE_BYTES, actions_per_item: 4 };
    const KNOWN: KnownIds = KnownIds { queues: 2, skills: 3 };

    fn p(priority: i32, queue: Option<u32>, reason: Option<&str>) -> Priority {
        Priority { priority, queue: queue.map(QueueId), reason: reason.map(str::to_owned) }
    }

    #[test]
    fn priorities_need_one_per_item_and_known_queues() {
        assert_eq!(
            check_priorities(vec![p(1, None, None)], 2, KNOWN, CAPS),
            Err(AnswerError::Invalid("1 priorities for 2 items".into()))
        );
        assert_eq!(
            check_priorities(vec![p(1, Some(2), None)], 1, KNOWN, CAPS),
            Err(AnswerError::Invalid("item 0: unknown queue id 2".into()))
        );
        assert_eq!(
            check_priorities(vec![p(5, Some(1), Some("vip"))], 1, KNOWN, CAPS),
            Ok(vec![Priority::new(5).to_queue(QueueId(1)).because("vip")])
        );
        assert_eq!(
            check_priorities(vec![p(1, None, Some("0123456789")), p(1, None, Some("0123456789"))], 2, KNOWN, CAPS),
            Err(AnswerError::TooLarge("answer text exceeds 16 bytes".into()))
        );
    }

    #[test]
    fn escalations_reject_unknown_targets() {
        let e = |a| Escalation::none().then(a);
        assert_eq!(
            check_escalations(vec![e(EscalationAction::MoveTo(QueueId(7)))], 1, KNOWN, CAPS),
            Err(AnswerError::Invalid("item 0: move-to unknown queue id 7".into()))
        );
        assert_eq!(
            check_escalations(vec![e(EscalationAction::DropSkill(SkillId(3)))], 1, KNOWN, CAPS),
            Err(AnswerError::Invalid("item 0: drop-skill of unknown skill id 3".into()))
        );
        assert_eq!(
            check_escalations(vec![e(EscalationAction::RelaxLevels(2))], 1, KNOWN, CAPS),
            Ok(vec![Escalation::none().then(EscalationAction::RelaxLevels(2))])
        );
    }

    #[test]
    fn escalations_refuse_huge_alerts_and_rechecks() {
        let caps = AnswerCaps { text_bytes: 1 << 20, message_bytes: MAX_MESSAGE_BYTES, actions_per_item: 4 };
        let alert = |n: usize| Escalation::none().then(EscalationAction::Alert("x".repeat(n))).recheck_in_ms(1);
        assert!(check_escalations(vec![alert(MAX_MESSAGE_BYTES)], 1, KNOWN, caps).is_ok());
        assert_eq!(
            check_escalations(vec![alert(1 << 20)], 1, KNOWN, caps),
            Err(AnswerError::TooLarge(format!("a text of {} bytes (at most {MAX_MESSAGE_BYTES})", 1 << 20)))
        );
        let recheck = |ms| Escalation::none().recheck_in_ms(ms);
        assert!(check_escalations(vec![recheck(MAX_RECHECK_MS)], 1, KNOWN, caps).is_ok());
        assert!(matches!(
            check_escalations(vec![recheck(u64::MAX)], 1, KNOWN, caps),
            Err(AnswerError::Invalid(m)) if m.contains("recheck")
        ));
        let reason = Some("r".repeat(MAX_MESSAGE_BYTES + 1));
        let long = Priority { priority: 1, queue: None, reason };
        assert!(matches!(check_priorities(vec![long], 1, KNOWN, caps), Err(AnswerError::TooLarge(_))));
    }

    #[test]
    fn match_answers_reject_nan_and_bad_indices() {
        assert_eq!(
            check_match(wit::MatchResult::Scores(vec![1.0, f32::NAN]), 2),
            Err(AnswerError::Invalid("score of candidate 1 is NaN".into()))
        );
        assert_eq!(
            check_match(wit::MatchResult::Scores(vec![1.0]), 2),
            Err(AnswerError::Invalid("1 scores for 2 candidates".into()))
        );
        assert_eq!(
            check_match(wit::MatchResult::Ranked(vec![1, 2]), 2),
            Err(AnswerError::Invalid("ranked index 2 is out of range for 2 candidates".into()))
        );
        assert_eq!(
            check_match(wit::MatchResult::Ranked(vec![1, 1]), 2),
            Err(AnswerError::Invalid("candidate 1 is ranked twice".into()))
        );
        assert_eq!(check_match(wit::MatchResult::Ranked(vec![1]), 2), Ok(MatchResult::Ranked(vec![1])));
    }
}
