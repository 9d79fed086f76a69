//! The routing core's rules on small hand-made cases, each with exact expected
//! outcomes: ordering, blending, offers and timeouts, escalation timing, relaxing
//! skills, abandonment, FCR, the exception queue, hand-offs and explanations.

use std::sync::{Arc, RwLock};

use switchyard_contract::{
    CandidateTable, Catalog, Channel, Escalation, EscalationAction, ItemBatch, MatchResult, Priority, QueueId,
};
use switchyard_core::clock::{Clock, VirtualClock};
use switchyard_core::error::Error;
use switchyard_core::router::*;
use switchyard_core::rules::{BuiltInRules, Decided, RuleSet, RuleSource, SharedCatalog};

/// A router with departments `billing` (queues `billing`, `vip`) and `claims`
/// (queue `claims`), on a virtual clock at 0.
fn setup() -> (Router, VirtualClock, SharedCatalog) {
    let clock = VirtualClock::new(0);
    let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::default()));
    let router = Router::new(
        vec![DepartmentSpec::new("billing"), DepartmentSpec::new("claims")],
        vec![
            QueueSpec::new("billing", "billing"),
            QueueSpec::new("vip", "billing"),
            QueueSpec::new("claims", "claims"),
        ],
        Arc::new(clock.clone()),
        catalog.clone(),
        RouterOptions::default(),
    )
    .unwrap();
    (router, clock, catalog)
}

fn agent(router: &mut Router, name: &str, skills: &[(&str, u8)]) -> AgentId {
    router
        .register_agent(AgentSpec {
            name: name.into(),
            group: "team".into(),
            skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
            capacity: Capacity::default(),
            wrap_up_ms: 0,
        })
        .unwrap()
}

fn item(queue: &str, channel: Channel) -> NewWorkItem {
    let department = if queue == "claims" { "claims" } else { "billing" };
    NewWorkItem { department: department.into(), queue: queue.into(), channel: Some(channel), ..Default::default() }
}

fn offers(router: &mut Router) -> Vec<(ItemId, AgentId)> {
    router
        .drain_events()
        .filter_map(|e| match e {
            Event::Offered { item, agent, .. } => Some((item, agent)),
            _ => None,
        })
        .collect()
}

fn status(router: &Router, item: ItemId) -> Option<ItemStatus> {
    router.item_status(item)
}

/// Higher priority first; equal priority in order of arrival (age).
#[test]
fn queue_orders_by_priority_then_age() {
    let (mut router, clock, _) = setup();
    let mut ids = Vec::new();
    for priority in [0, 5, 0, 5] {
        ids.push(router.create_item(NewWorkItem { priority, ..item("billing", Channel::Voice) }));
        clock.advance(1_000);
    }
    assert_eq!(router.waiting("billing").unwrap(), vec![ids[1], ids[3], ids[0], ids[2]]);
    let a = agent(&mut router, "ann", &[("billing", 5)]);
    router.drain_events().for_each(drop);
    router.set_agent_state(a, Presence::Available).unwrap();
    assert_eq!(offers(&mut router), vec![(ids[1], a)]);
}

/// One call or up to three chats; a call waits while chats are held; a case
/// yields to a call and resumes after it.
#[test]
fn blending_limits_and_cases_yield_to_calls() {
    let (mut router, clock, _) = setup();
    let a = agent(&mut router, "ann", &[("billing", 5)]);
    router.set_agent_state(a, Presence::Available).unwrap();
    let chats: Vec<ItemId> = (0..4).map(|_| router.create_item(item("billing", Channel::Chat))).collect();
    let offered = offers(&mut router);
    assert_eq!(offered.iter().map(|o| o.0).collect::<Vec<_>>(), chats[..3].to_vec());
    for c in &chats[..3] {
        router.accept_offer(*c).unwrap();
    }
    let call = router.create_item(item("billing", Channel::Voice));
    assert_eq!(status(&router, call), Some(ItemStatus::Queued));
    assert_eq!(status(&router, chats[3]), Some(ItemStatus::Queued));
    // Finishing one chat frees a digital slot: the waiting chat, not the call, fits.
    router.complete(chats[0], Completion { resolved: true, handoff: None }).unwrap();
    router.drain_events().for_each(drop);
    assert_eq!(status(&router, chats[3]), Some(ItemStatus::Offered));
    assert_eq!(status(&router, call), Some(ItemStatus::Queued));
    for c in [chats[1], chats[2]] {
        router.complete(c, Completion { resolved: true, handoff: None }).unwrap();
    }
    router.accept_offer(chats[3]).unwrap();
    router.complete(chats[3], Completion { resolved: true, handoff: None }).unwrap();
    // Only now can the call be offered.
    assert_eq!(status(&router, call), Some(ItemStatus::Offered));
    router.accept_offer(call).unwrap();
    router.complete(call, Completion { resolved: true, handoff: None }).unwrap();

    // A case in progress yields to a call.
    router.drain_events().for_each(drop);
    let case = router.create_item(NewWorkItem { due_in_ms: Some(3_600_000), ..item("billing", Channel::Case) });
    router.accept_offer(case).unwrap();
    clock.advance(10_000);
    let call = router.create_item(item("billing", Channel::Voice));
    assert_eq!(status(&router, call), Some(ItemStatus::Offered));
    router.accept_offer(call).unwrap();
    assert_eq!(status(&router, case), Some(ItemStatus::Paused));
    clock.advance(60_000);
    router.complete(call, Completion { resolved: true, handoff: None }).unwrap();
    assert_eq!(status(&router, case), Some(ItemStatus::Active));
    let kinds: Vec<&str> = router
        .drain_events()
        .filter_map(|e| match e {
            Event::Paused { .. } => Some("paused"),
            Event::Resumed { .. } => Some("resumed"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec!["paused", "resumed"]);
    clock.advance(20_000);
    router.complete(case, Completion { resolved: true, handoff: None }).unwrap();
    let handle = router.drain_events().find_map(|e| match e {
        Event::Completed { item, handle_ms, .. } if item == case => Some(handle_ms),
        _ => None,
    });
    assert_eq!(handle, Some(30_000), "10 s before the call + 20 s after; the 60 s call excluded");
}

/// A rejected item goes to the other free agent; with nobody else it waits and
/// is not offered to the agent who refused until the block ends. A missed offer
/// times out, sets the agent away and returns the item with its age kept.
#[test]
fn offers_reject_and_time_out() {
    let (mut router, clock, _) = setup();
    let ann = agent(&mut router, "ann", &[("billing", 5)]);
    router.set_agent_state(ann, Presence::Available).unwrap();
    clock.advance(1_000);
    let bob = agent(&mut router, "bob", &[("billing", 5)]);
    router.set_agent_state(bob, Presence::Available).unwrap();
    clock.advance(1_000);
    let first = router.create_item(item("billing", Channel::Voice));
    assert_eq!(offers(&mut router), vec![(first, ann)], "ann has been idle longest");
    router.reject_offer(first).unwrap();
    assert_eq!(offers(&mut router), vec![(first, bob)]);
    router.reject_offer(first).unwrap();
    // Both refused: it waits, even though both are free.
    assert_eq!(offers(&mut router), vec![]);
    assert_eq!(status(&router, first), Some(ItemStatus::Queued));
    // 60 s later the block ends and it is offered again.
    assert_eq!(router.next_deadline(), Some(2_000 + 20_000), "the (stale) offer timeout of the first offer");
    clock.set(2_000 + 60_000);
    router.on_tick();
    let again = offers(&mut router);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0, first);
    let holder = again[0].1;
    // Time out: nobody answers for 20 s.
    clock.advance(20_000);
    router.on_tick();
    let ended: Vec<(ItemId, AgentId, &str)> = router
        .drain_events()
        .filter_map(|e| match e {
            Event::OfferEnded { item, agent, how, .. } => Some((item, agent, how)),
            _ => None,
        })
        .collect();
    assert_eq!(ended, vec![(first, holder, "timed-out")]);
    assert_eq!(router.agent_state(holder).unwrap(), AgentState::Away);
    // The other agent was refused 60 s+ ago, so it is offered to them; age kept.
    let view = router.item_view(first).unwrap();
    assert_eq!(view.status, ItemStatus::Offered);
    assert_ne!(view.explanation.agent.as_deref(), Some(if holder == ann { "ann" } else { "bob" }));
    router.accept_offer(first).unwrap();
    let answered = router.metrics().queue_totals(0).unwrap().clone();
    assert_eq!(answered.answered, 1);
    assert_eq!(answered.answered_wait_ms, 80_000, "waited from t=2 s to t=82 s");
}

/// A test rule set: escalate by a closure, match and prioritise built-in.
struct Escalating<F: Fn(&switchyard_contract::Item<'_>) -> Escalation + Send + Sync>(F);

impl<F: Fn(&switchyard_contract::Item<'_>) -> Escalation + Send + Sync> RuleSet for Escalating<F> {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        Decided::built_in(BuiltInRules::prioritise(items))
    }
    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        Decided {
            value: items.iter().map(|i| (self.0)(&i)).collect(),
            source: RuleSource::Plugin { plugin: "test".into(), generation: 3 },
        }
    }
    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        Decided::built_in(BuiltInRules::match_agents(item, candidates))
    }
}

/// The escalate rule runs when the item starts waiting and then exactly when it
/// asks; a raise at 60 s reorders the queue and an alert is recorded.
#[test]
fn escalation_runs_when_the_rule_asks() {
    let (mut router, clock, _) = setup();
    router
        .set_rules(
            "billing",
            Arc::new(Escalating(|item| {
                let e = Escalation::none().recheck_in_ms(30_000);
                if item.age_ms() >= 60_000 && item.priority() < 100 {
                    e.then(EscalationAction::RaiseTo(100)).then(EscalationAction::Alert("waited a minute".into()))
                } else {
                    e
                }
            })),
        )
        .unwrap();
    let old = router.create_item(item("billing", Channel::Voice));
    assert_eq!(router.next_deadline(), Some(30_000));
    clock.set(30_000);
    let newer = router.create_item(NewWorkItem { priority: 50, ..item("billing", Channel::Voice) });
    router.on_tick();
    assert_eq!(router.waiting("billing").unwrap(), vec![newer, old]);
    clock.set(59_999);
    router.on_tick();
    assert!(router.alerts().is_empty());
    clock.set(60_000);
    router.on_tick();
    assert_eq!(router.waiting("billing").unwrap(), vec![old, newer], "raised to 100 at 60 s");
    assert_eq!(router.alerts().len(), 1);
    assert_eq!(router.alerts()[0].item, old);
    assert_eq!(router.alerts()[0].message, "waited a minute");
    let view = router.item_view(old).unwrap();
    assert_eq!(view.priority, 100);
    assert_eq!(view.explanation.escalations.len(), 1);
    assert_eq!(view.explanation.escalations[0].at_ms, 60_000);
    assert_eq!(view.explanation.escalations[0].source, RuleSource::Plugin { plugin: "test".into(), generation: 3 });
    assert_eq!(view.explanation.escalations[0].actions, vec!["raise priority to 100", "alert: waited a minute"]);
}

/// An item needing Spanish at 8 waits for an agent at 5 until the rule relaxes
/// the levels by 3 after 45 s; then it is offered at once.
#[test]
fn relaxing_skill_levels_lets_an_item_reach_an_agent() {
    let (mut router, clock, _) = setup();
    router
        .set_rules(
            "billing",
            Arc::new(Escalating(|item| {
                if item.age_ms() >= 45_000 {
                    Escalation::none().then(EscalationAction::RelaxLevels(3))
                } else {
                    Escalation::none().recheck_in_ms(45_000 - item.age_ms())
                }
            })),
        )
        .unwrap();
    let a = agent(&mut router, "ana", &[("billing", 5), ("spanish", 5)]);
    router.set_agent_state(a, Presence::Available).unwrap();
    let it = router.create_item(NewWorkItem { skills: vec![("spanish".into(), 8)], ..item("billing", Channel::Voice) });
    assert_eq!(status(&router, it), Some(ItemStatus::Queued));
    let view = router.item_view(it).unwrap();
    assert_eq!((view.explanation.candidates_considered, view.explanation.candidates_qualified), (1, 0));
    assert_eq!(router.item_skills(it).unwrap(), vec![("billing".to_string(), 1), ("spanish".to_string(), 8)]);
    clock.set(44_999);
    router.on_tick();
    assert_eq!(status(&router, it), Some(ItemStatus::Queued));
    clock.set(45_000);
    router.on_tick();
    assert_eq!(router.item_skills(it).unwrap(), vec![("billing".to_string(), 1), ("spanish".to_string(), 5)]);
    assert_eq!(status(&router, it), Some(ItemStatus::Offered));
    assert_eq!(router.desktop(a).unwrap().items[0].id, it);
}

/// Withdrawn items are counted as abandoned (short ones apart) and an offered
/// one releases its agent; service level counts long abandons as missed.
#[test]
fn abandonment_is_counted_not_lost() {
    let (mut router, clock, _) = setup();
    let short = router.create_item(item("billing", Channel::Voice));
    let long = router.create_item(item("billing", Channel::Voice));
    clock.set(3_000);
    router.withdraw(short).unwrap();
    clock.set(40_000);
    router.withdraw(long).unwrap();
    let a = agent(&mut router, "ann", &[("billing", 5)]);
    router.set_agent_state(a, Presence::Available).unwrap();
    let answered = router.create_item(item("billing", Channel::Voice));
    let offered = router.create_item(item("billing", Channel::Chat));
    assert_eq!(status(&router, offered), Some(ItemStatus::Queued), "a call is exclusive");
    router.accept_offer(answered).unwrap();
    router.complete(answered, Completion { resolved: true, handoff: None }).unwrap();
    assert_eq!(status(&router, offered), Some(ItemStatus::Offered));
    assert_eq!(router.item_holder(offered), Some(a));
    clock.set(50_000);
    router.withdraw(offered).unwrap();
    assert_eq!(router.item_holder(offered), None);
    assert_eq!(router.desktop(a).unwrap().items, vec![]);
    assert_eq!(router.agent_state(a).unwrap(), AgentState::Available);
    assert!(router.withdraw(answered).is_err(), "a finished item is gone");
    // The withdrawn offer's slot is free again: the next call reaches ann at once.
    offers(&mut router);
    let next = router.create_item(item("billing", Channel::Voice));
    assert_eq!(status(&router, next), Some(ItemStatus::Offered), "the withdrawn offer leaked ann's capacity");
    router.withdraw(next).unwrap();
    let t = router.metrics().queue_totals(0).unwrap();
    // `next` was withdrawn at once: a second short abandon.
    assert_eq!((t.offered, t.answered, t.abandoned, t.short_abandoned), (5, 1, 4, 2));
    // SL = answered within 20 s / (offered − short abandons) = 1 / 3.
    assert_eq!(t.service_level(), Some(1.0 / 3.0));
}

/// A repeat contact by the same customer within the window counts against the
/// FCR of the first item; one after the window does not.
#[test]
fn repeat_contacts_count_against_fcr() {
    let (mut router, clock, _) = setup();
    let a = agent(&mut router, "ann", &[("billing", 5)]);
    router.set_agent_state(a, Presence::Available).unwrap();
    let customer = |c: &str| NewWorkItem { customer: Some(c.into()), ..item("billing", Channel::Voice) };
    for (c, at) in [("c1", 0), ("c1", 3_600_000), ("c2", 3_700_000), ("c2", 3_700_000 + 25 * 3_600_000)] {
        clock.set(at);
        let id = router.create_item(customer(c));
        router.accept_offer(id).unwrap();
        clock.advance(60_000);
        router.complete(id, Completion { resolved: true, handoff: None }).unwrap();
    }
    let t = router.metrics().queue_totals(0).unwrap();
    assert_eq!((t.completed, t.resolved, t.repeats), (4, 4, 1));
    assert_eq!(t.fcr(), Some(0.75));
}

struct MovesToNowhere;

impl RuleSet for MovesToNowhere {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        Decided::built_in(items.iter().map(|_| Priority::new(0).to_queue(QueueId(999))).collect())
    }
    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        Decided::built_in(BuiltInRules::escalate(items))
    }
    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        Decided::built_in(BuiltInRules::match_agents(item, candidates))
    }
}

/// Items no rule can place land in the exception queue with the reason, and can
/// be routed out of it.
#[test]
fn exception_queue_keeps_unplaceable_items() {
    let (mut router, _clock, _) = setup();
    let unknown = router.create_item(NewWorkItem { department: "legal".into(), ..item("billing", Channel::Voice) });
    let wrong_queue = router.create_item(NewWorkItem { queue: "claims".into(), ..item("billing", Channel::Voice) });
    let invalid =
        router.create_item(NewWorkItem { skills: vec![("spanish".into(), 11)], ..item("billing", Channel::Voice) });
    router.set_rules("claims", Arc::new(MovesToNowhere)).unwrap();
    let nowhere = router.create_item(item("claims", Channel::Case));
    let reasons: Vec<(ItemId, ExceptionReason)> =
        router.exceptions().iter().map(|e| (e.item, e.reason.clone())).collect();
    assert_eq!(
        reasons,
        vec![
            (unknown, ExceptionReason::UnknownDepartment("legal".into())),
            (wrong_queue, ExceptionReason::UnknownQueue("claims".into())),
            (invalid, ExceptionReason::InvalidData("skill `spanish` has level 11, expected 1-10".into())),
            (nowhere, ExceptionReason::NoUsableRule("built-in moved the item to unknown queue id 999".into())),
        ]
    );
    assert_eq!(router.metrics().exceptions(), 4);
    router.resolve_exception(unknown, "billing", "billing").unwrap();
    assert_eq!(status(&router, unknown), Some(ItemStatus::Queued));
    assert_eq!(router.exceptions().len(), 3);
}

/// Billing hands a case to claims, claims hands it back for a call-back; the
/// case keeps one history across departments and its end-to-end time.
#[test]
fn handoffs_keep_the_case_history() {
    let (mut router, clock, _) = setup();
    let biller = agent(&mut router, "bill", &[("billing", 5)]);
    let adjuster = agent(&mut router, "clara", &[("claims", 5)]);
    router.set_agent_state(biller, Presence::Available).unwrap();
    router.set_agent_state(adjuster, Presence::Available).unwrap();
    let call = router.create_item(NewWorkItem {
        customer: Some("c9".into()),
        case: Some("K1".into()),
        ..item("billing", Channel::Voice)
    });
    router.accept_offer(call).unwrap();
    clock.set(120_000);
    let to_claims =
        HandOff { item: NewWorkItem { due_in_ms: Some(86_400_000), ..item("claims", Channel::Case) }, id: None };
    let work = router.complete(call, Completion { resolved: false, handoff: Some(to_claims) }).unwrap().unwrap();
    router.accept_offer(work).unwrap();
    clock.set(1_000_000);
    let back = HandOff { item: item("billing", Channel::Voice), id: None };
    let callback = router.complete(work, Completion { resolved: true, handoff: Some(back) }).unwrap().unwrap();
    router.accept_offer(callback).unwrap();
    clock.set(1_100_000);
    router.complete(callback, Completion { resolved: true, handoff: None }).unwrap();
    let case = router.case("K1").unwrap();
    assert_eq!(case.customer.as_deref(), Some("c9"));
    assert_eq!(case.departments, vec!["billing", "claims", "billing"]);
    assert_eq!((case.opened_ms, case.closed_ms), (0, Some(1_100_000)));
    let steps: Vec<(u64, &str)> = case.history.iter().map(|s| (s.item.0, s.what.as_str())).collect();
    assert_eq!(
        steps,
        vec![
            (call.0, "created in queue `billing` (voice)"),
            (call.0, "offered to bill"),
            (call.0, "answered by bill"),
            (call.0, "completed (not resolved)"),
            (work.0, "created in queue `claims` (case)"),
            (work.0, "offered to clara"),
            (call.0, "handed off to `claims` as item 2"),
            (work.0, "answered by clara"),
            (work.0, "completed (resolved)"),
            (callback.0, "created in queue `billing` (voice)"),
            (callback.0, "offered to bill"),
            (work.0, "handed off to `billing` as item 3"),
            (callback.0, "answered by bill"),
            (callback.0, "completed (resolved)"),
        ]
    );
    let cases = router.metrics().cases();
    assert_eq!((cases.closed, cases.cross_department, cases.handoffs), (1, 1, 2));
    assert_eq!(cases.durations_ms, vec![1_100_000]);
    let claims = router.metrics().queue_totals(2).unwrap();
    assert_eq!((claims.with_due, claims.before_due), (1, 1));
}

/// The desktop shows the offered item with its attributes, wait, priority and
/// the explanation: rule, score, candidates considered and qualified.
#[test]
fn desktop_explains_the_routing() {
    let (mut router, clock, _) = setup();
    let low = agent(&mut router, "low", &[("billing", 2)]);
    let high = agent(&mut router, "high", &[("billing", 9)]);
    router.set_agent_state(low, Presence::Available).unwrap();
    clock.set(5_000);
    router.set_agent_state(high, Presence::Available).unwrap();
    clock.set(10_000);
    let it = router.create_item(NewWorkItem {
        skills: vec![("billing".into(), 4)],
        attributes: vec![("account".into(), "A-17".into())],
        priority: 7,
        ..item("billing", Channel::Voice)
    });
    let desk = router.desktop(high).unwrap();
    assert_eq!(desk.state, AgentState::Available);
    assert_eq!(desk.items.len(), 1);
    let shown = &desk.items[0];
    assert_eq!(shown.id, it);
    assert_eq!(shown.status, ItemStatus::Offered);
    assert_eq!(shown.priority, 7);
    assert_eq!(shown.attributes, vec![("account".to_string(), "A-17".to_string())]);
    let e = &shown.explanation;
    assert_eq!(e.prioritised_by, Some(RuleSource::BuiltIn));
    assert_eq!(e.matched_by, Some(RuleSource::BuiltIn));
    assert_eq!((e.candidates_considered, e.candidates_qualified), (2, 1), "low lacks level 4");
    assert_eq!(e.score, Some(5.0), "idle 5 s");
    assert_eq!(e.agent.as_deref(), Some("high"));
    clock.set(13_000);
    router.accept_offer(it).unwrap();
    assert_eq!(router.desktop(high).unwrap().state, AgentState::Busy);
    assert_eq!(router.desktop(high).unwrap().items[0].wait_ms, 3_000);
}

/// Classifies every new item into `vip` with priority 50 (as billing's plugin
/// moves disputes into their own queue).
struct ClassifiesIntoVip(QueueId);

impl RuleSet for ClassifiesIntoVip {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        Decided::built_in(items.iter().map(|_| Priority::new(50).to_queue(self.0)).collect())
    }
    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        Decided::built_in(BuiltInRules::escalate(items))
    }
    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        Decided::built_in(BuiltInRules::match_agents(item, candidates))
    }
}

/// An item moved to another queue by its prioritise answer waits there once: a
/// second agent is not offered the same item after the first one took it.
#[test]
fn an_item_classified_into_another_queue_is_offered_once() {
    let (mut router, _clock, catalog) = setup();
    let vip = QueueId(catalog.read().unwrap().queues.id("vip").expect("vip is interned"));
    router.set_rules("billing", Arc::new(ClassifiesIntoVip(vip))).unwrap();
    let first = router.create_item(item("billing", Channel::Voice));
    assert_eq!(router.waiting("vip").unwrap(), vec![first]);
    assert_eq!(router.waiting("billing").unwrap(), vec![]);
    let ann = agent(&mut router, "ann", &[("vip", 5)]);
    let bob = agent(&mut router, "bob", &[("vip", 5)]);
    router.set_agent_state(ann, Presence::Available).unwrap();
    router.accept_offer(first).unwrap();
    router.set_agent_state(bob, Presence::Available).unwrap();
    assert_eq!(offers(&mut router), vec![(first, ann)], "bob is offered nothing: the item is taken");
    assert_eq!(router.waiting("vip").unwrap(), vec![]);
    assert_eq!(router.agent_state(bob).unwrap(), AgentState::Available);
}

/// A router on the wall clock (here: a virtual clock at a 2025 date) numbers its
/// statistics intervals from its own start, so it keeps one interval per half
/// hour it has lived through — not one per half hour since 1970.
#[test]
fn intervals_count_from_the_routers_start_not_from_1970() {
    let start_ms = 1_750_000_123_456;
    let clock = VirtualClock::new(start_ms);
    let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::default()));
    let mut router = Router::new(
        vec![DepartmentSpec::new("billing")],
        vec![QueueSpec::new("billing", "billing")],
        Arc::new(clock.clone()),
        catalog,
        RouterOptions::default(),
    )
    .unwrap();
    let a = agent(&mut router, "ann", &[("billing", 5)]);
    router.set_agent_state(a, Presence::Available).unwrap();
    let first = router.create_item(item("billing", Channel::Voice));
    clock.advance(5_000);
    router.accept_offer(first).unwrap();
    clock.advance(60 * 60_000);
    router.complete(first, Completion { resolved: true, handoff: None }).unwrap();
    let second = router.create_item(item("billing", Channel::Voice));
    router.accept_offer(second).unwrap();

    let metrics = router.metrics();
    let half_hour = 30 * 60_000;
    assert_eq!(metrics.origin_ms(), start_ms - start_ms % half_hour);
    let intervals = metrics.queue_intervals(0);
    assert!(intervals.len() <= 4, "{} intervals kept for about an hour", intervals.len());
    assert_eq!(intervals.iter().map(|c| c.answered).sum::<u64>(), 2);
    assert_eq!(intervals[0].answered, 1, "the first item was created in the first interval");
    assert!(metrics.agent_intervals(a).len() <= 4);
    assert!(metrics.interval_start_ms(intervals.len() - 1) <= clock.now_ms());
}

// ----- bounded memory (issue #13 item 3) ------------------------------------------------

/// The daemon's situation: the router is built on a clock at 0 that is then set
/// to wall time. Intervals count from the first event, so a few hours at a 2026
/// date keep a handful of entries, not one per half hour since 1970 (~980,000).
#[test]
fn a_router_started_at_zero_on_wall_time_keeps_a_handful_of_intervals() {
    let (mut router, clock, _) = setup();
    let ann = agent(&mut router, "ann", &[("billing", 5)]);
    let bob = agent(&mut router, "bob", &[("claims", 5)]);
    let wall = 1_780_000_000_000; // June 2026
    clock.set(wall);
    router.set_agent_state(ann, Presence::Available).unwrap();
    router.set_agent_state(bob, Presence::Away).unwrap();
    for _ in 0..6 {
        let id = router.create_item(item("billing", Channel::Voice));
        clock.advance(30_000);
        router.accept_offer(id).unwrap();
        clock.advance(30 * 60_000);
        router.complete(id, Completion::default()).unwrap();
    }
    router.metrics_mut().flush(clock.now_ms());
    let metrics = router.metrics();
    let half_hour = 30 * 60_000;
    assert_eq!(metrics.origin_ms(), wall - wall % half_hour);
    assert!(metrics.interval_entries() <= 3 * 8 + 2 * 8, "{} interval entries", metrics.interval_entries());
    assert!(metrics.agent_intervals(ann).len() <= 8, "{}", metrics.agent_intervals(ann).len());
    assert!(metrics.agent_intervals(bob).len() <= 8);
    assert!(metrics.queue_intervals(0).len() <= 8);
    assert_eq!(metrics.queue_intervals(0).iter().map(|c| c.answered).sum::<u64>(), 6);
    assert_eq!(metrics.queue_totals(0).unwrap().answered, 6);
    let times = metrics.agent_times(ann).unwrap();
    assert_eq!(times.busy_ms, 6 * 30 * 60_000, "busy time counted only since the first event");
}

/// Per-interval figures keep a sliding window of `keep_intervals`; totals keep
/// counting everything.
#[test]
fn interval_retention_keeps_the_window_and_cumulative_totals() {
    let clock = VirtualClock::new(0);
    let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::default()));
    let metrics =
        switchyard_core::metrics::MetricsConfig { interval_ms: 1_000, keep_intervals: Some(4), ..Default::default() };
    let mut router = Router::new(
        vec![DepartmentSpec::new("billing")],
        vec![QueueSpec::new("billing", "billing")],
        Arc::new(clock.clone()),
        catalog,
        RouterOptions { metrics, ..Default::default() },
    )
    .unwrap();
    let a = agent(&mut router, "ann", &[("billing", 5)]);
    router.set_agent_state(a, Presence::Available).unwrap();
    for _ in 0..100 {
        let id = router.create_item(item("billing", Channel::Voice));
        router.accept_offer(id).unwrap();
        clock.advance(1_000);
        router.complete(id, Completion::default()).unwrap();
    }
    let metrics = router.metrics();
    assert_eq!(metrics.queue_totals(0).unwrap().answered, 100);
    // The window is intervals 97-100; nothing was created in 100 (the last
    // completion is what reached it).
    assert_eq!(metrics.first_interval(), 97);
    assert_eq!(metrics.queue_intervals(0).len(), 3);
    assert!(metrics.queue_intervals(0).iter().all(|c| c.answered == 1));
    assert!(metrics.agent_intervals(a).len() <= 4);
    assert!(metrics.interval_entries() <= 2 * (2 * 4 + 1), "{}", metrics.interval_entries());
    assert_eq!(metrics.agent_times(a).unwrap().busy_ms, 100_000);
}

/// A router with one department `billing`, a rule escalating with `escalate`,
/// and the given options.
fn escalating_router(
    options: RouterOptions,
    escalate: fn(&switchyard_contract::Item<'_>) -> Escalation,
) -> (Router, VirtualClock) {
    let clock = VirtualClock::new(0);
    let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::default()));
    let mut router = Router::new(
        vec![DepartmentSpec::new("billing")],
        vec![QueueSpec::new("billing", "billing")],
        Arc::new(clock.clone()),
        catalog,
        options,
    )
    .unwrap();
    router.set_rules("billing", Arc::new(Escalating(escalate))).unwrap();
    (router, clock)
}

/// `recheck_in_ms(1)` is floored to the tick, a recheck of `u64::MAX` is capped
/// (no overflow), and an item is rechecked at most `rechecks_per_item` times.
#[test]
fn escalation_rechecks_have_a_floor_a_cap_and_a_count() {
    let limits = Limits { rechecks_per_item: 5, ..Limits::default() };
    let (mut router, clock) =
        escalating_router(RouterOptions { limits, ..Default::default() }, |_| Escalation::none().recheck_in_ms(1));
    router.create_item(item("billing", Channel::Voice));
    assert_eq!(router.next_deadline(), Some(100), "floored to the 100 ms tick");
    for _ in 0..20 {
        clock.advance(100);
        router.on_tick();
    }
    assert_eq!(router.next_deadline(), None, "no sixth recheck");
    assert_eq!(router.retention_stats().rechecks_refused, 1);

    let (mut router, _) = escalating_router(RouterOptions::default(), |_| Escalation::none().recheck_in_ms(u64::MAX));
    router.create_item(item("billing", Channel::Voice));
    assert_eq!(router.next_deadline(), Some(Limits::default().max_recheck_ms));
}

/// A 1 MB alert every tick: messages are cut to 4 KiB, only the last N alerts
/// are kept, each with an id that can be acknowledged.
#[test]
fn alerts_are_cut_capped_and_acknowledged() {
    let retention = Retention { alerts: 3, ..Retention::default() };
    let (mut router, clock) = escalating_router(RouterOptions { retention, ..Default::default() }, |_| {
        Escalation::none().then(EscalationAction::Alert("é".repeat(500_000))).recheck_in_ms(1)
    });
    let id = router.create_item(item("billing", Channel::Voice));
    for _ in 0..10 {
        clock.advance(100);
        router.on_tick();
    }
    let alerts = router.alerts();
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts.iter().map(|a| a.id).collect::<Vec<_>>(), vec![9, 10, 11]);
    assert!(alerts.iter().all(|a| a.message.len() <= 4096 && a.message.len() >= 4094 && a.item == id));
    assert_eq!(router.retention_stats().alerts_dropped, 8);
    clock.advance(5);
    let acked = router.acknowledge_alert(10, "sue").unwrap().clone();
    assert_eq!(acked.acknowledged, Some(Acknowledgement { by: "sue".into(), at_ms: clock.now_ms() }));
    router.acknowledge_alert(10, "tom").unwrap();
    assert_eq!(router.alerts()[1].acknowledged.as_ref().unwrap().by, "sue", "the first ack stands");
    assert!(router.alerts()[0].acknowledged.is_none());
    assert!(matches!(router.acknowledge_alert(1, "sue"), Err(Error::Unknown { kind: "alert", .. })));
    assert!(matches!(router.acknowledge_alert(99, "sue"), Err(Error::Unknown { .. })));
    let notes = router.item_view(id).unwrap().explanation;
    assert!(notes.escalations.len() <= Retention::default().notes_per_item);
}

/// Escalation notes per item are capped; a counter keeps how many were dropped.
#[test]
fn escalation_notes_per_item_are_capped() {
    let retention = Retention { notes_per_item: 4, ..Retention::default() };
    let (mut router, clock) = escalating_router(RouterOptions { retention, ..Default::default() }, |_| {
        Escalation::none().then(EscalationAction::RaiseBy(1)).recheck_in_ms(100)
    });
    let id = router.create_item(item("billing", Channel::Voice));
    for _ in 0..9 {
        clock.advance(100);
        router.on_tick();
    }
    let explanation = router.item_view(id).unwrap().explanation;
    assert_eq!(explanation.escalations.len(), 4);
    assert_eq!(explanation.escalations_dropped, 6);
    assert_eq!(explanation.escalations.last().unwrap().at_ms, 900);
    assert_eq!(explanation.priority, 10);
    assert_eq!(router.retention_stats().notes_dropped, 6);
}

/// A closed case is forgotten a window after it closed; a customer's repeat
/// record once past every FCR window — but never while their item is open.
#[test]
fn closed_cases_and_customers_are_forgotten_after_their_windows() {
    let (mut router, clock, _) = setup();
    let ann = agent(&mut router, "ann", &[("billing", 5)]);
    router.set_agent_state(ann, Presence::Available).unwrap();
    let day = 24 * 3_600_000;
    let new = |customer: &str| NewWorkItem {
        customer: Some(customer.into()),
        case: Some(format!("case-{customer}")),
        ..item("billing", Channel::Voice)
    };
    let done = router.create_item(new("c1"));
    router.accept_offer(done).unwrap();
    router.complete(done, Completion::default()).unwrap();
    let open = router.create_item(new("c2")); // offered, never answered (ann holds it)
    assert_eq!(router.item_status(open), Some(ItemStatus::Offered));
    router.set_agent_state(ann, Presence::Away).unwrap();
    let counts = router.record_counts();
    assert_eq!((counts.customers, counts.cases), (2, 2));

    clock.set(day + 1);
    router.on_tick();
    let counts = router.record_counts();
    assert_eq!(counts.customers, 1, "c1 is past the 24 h FCR window; c2's item is open");
    assert!(router.case("case-c1").is_some(), "closed cases stay 7 days");

    clock.set(7 * day + 2);
    router.on_tick();
    assert!(router.case("case-c1").is_none());
    assert!(router.case("case-c2").is_some(), "an open case stays");
    assert_eq!(router.retention_stats().cases_forgotten, 1);
    assert_eq!(router.retention_stats().customers_forgotten, 1);

    assert_eq!(router.record_counts().customers, 1, "c2's item is still open");
    // Once c2's item is gone, c2 goes a window later.
    router.withdraw(open).unwrap();
    clock.advance(day + 1);
    router.on_tick();
    assert_eq!(router.record_counts().customers, 0);
    assert_eq!(router.retention_stats().customers_forgotten, 2);
}

/// The exception queue keeps the last N entries; older ones go with their items.
#[test]
fn the_exception_queue_is_capped() {
    let clock = VirtualClock::new(0);
    let options =
        RouterOptions { retention: Retention { exceptions: 3, ..Retention::default() }, ..Default::default() };
    let mut router = Router::new(
        vec![DepartmentSpec::new("billing")],
        vec![QueueSpec::new("billing", "billing")],
        Arc::new(clock.clone()),
        Arc::new(RwLock::new(Catalog::default())),
        options,
    )
    .unwrap();
    let ids: Vec<ItemId> = (0..10).map(|_| router.create_item(item("nowhere", Channel::Voice))).collect();
    assert_eq!(router.exceptions().iter().map(|e| e.item).collect::<Vec<_>>(), ids[7..]);
    assert_eq!(router.open_items(), 3);
    assert_eq!(router.retention_stats().exceptions_dropped, 7);
    assert_eq!(router.metrics().exceptions(), 10, "counted all the same");
}

/// Each limit of an item, within and over: `check_item` names the field, and
/// `create_item` sends the item to the exception queue without its oversized data.
#[test]
fn item_limits_are_obeyed_and_refused_by_name() {
    let limits = Limits {
        catalog_names: 8,
        catalog_bytes: 64,
        name_bytes: 10,
        attributes_per_item: 2,
        attribute_value_bytes: 5,
        skills_per_item: 2,
        id_bytes: 6,
        ..Limits::default()
    };
    let clock = VirtualClock::new(0);
    let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::default()));
    let mut router = Router::new(
        vec![DepartmentSpec::new("billing")],
        vec![QueueSpec::new("billing", "billing")],
        Arc::new(clock.clone()),
        catalog.clone(),
        RouterOptions { limits, ..Default::default() },
    )
    .unwrap();
    let base = item("billing", Channel::Voice);
    let attrs = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let skills = |names: &[&str]| names.iter().map(|n| (n.to_string(), 3u8)).collect();
    // (item, None when within the limits or Some((field, limit, got)))
    type Case = (NewWorkItem, Option<(&'static str, u64, u64)>);
    let cases: Vec<Case> = vec![
        (NewWorkItem { skills: skills(&["a", "b"]), ..base.clone() }, None),
        (NewWorkItem { skills: skills(&["a", "b", "c"]), ..base.clone() }, Some(("skills", 2, 3))),
        (NewWorkItem { skills: skills(&["0123456789x"]), ..base.clone() }, Some(("skills", 10, 11))),
        (NewWorkItem { attributes: attrs(&[("k", "12345")]), ..base.clone() }, None),
        (NewWorkItem { attributes: attrs(&[("k", "123456")]), ..base.clone() }, Some(("attributes.k", 5, 6))),
        (
            NewWorkItem { attributes: attrs(&[("k", ""), ("l", ""), ("m", "")]), ..base.clone() },
            Some(("attributes", 2, 3)),
        ),
        (NewWorkItem { attributes: attrs(&[("0123456789x", "")]), ..base.clone() }, Some(("attributes", 10, 11))),
        (NewWorkItem { customer: Some("123456".into()), ..base.clone() }, None),
        (NewWorkItem { customer: Some("1234567".into()), ..base.clone() }, Some(("customer", 6, 7))),
        (NewWorkItem { case: Some("1234567".into()), ..base.clone() }, Some(("case", 6, 7))),
        (NewWorkItem { queue: "q".repeat(11), ..base.clone() }, Some(("queue", 10, 11))),
        (NewWorkItem { due_in_ms: Some(MAX_DURATION_MS), ..base.clone() }, None),
        (NewWorkItem { due_in_ms: Some(u64::MAX), ..base.clone() }, Some(("due_in_ms", MAX_DURATION_MS, u64::MAX))),
    ];
    for (new, want) in cases {
        let checked = router.check_item(&new);
        match (want, checked) {
            (None, Ok(())) => {
                let id = router.create_item(new);
                assert_eq!(router.item_status(id), Some(ItemStatus::Queued));
            }
            (Some((field, limit, got)), Err(Error::Limit { field: f, limit: l, got: g, .. })) => {
                assert_eq!((f.as_str(), l, g), (field, limit, got));
                let exceptions = router.retention_stats().items_over_limit;
                let id = router.create_item(new);
                assert_eq!(router.item_status(id), Some(ItemStatus::Exception));
                assert_eq!(router.retention_stats().items_over_limit, exceptions + 1);
                let view = router.item_view(id).unwrap();
                assert!(view.attributes.is_empty() && view.customer.is_none() && view.case.is_none());
            }
            (want, got) => panic!("wanted {want:?}, got {got:?}"),
        }
    }
    // The catalogue: "billing", "a", "b", "k", "l" … fill it up to 8 names.
    let names = catalog.read().unwrap().skills.len() + catalog.read().unwrap().attributes.len();
    let fill: Vec<(String, u8)> = (0..8 - names).map(|i| (format!("s{i}"), 1)).collect();
    for chunk in fill.chunks(2) {
        let new = NewWorkItem { skills: chunk.to_vec(), ..base.clone() };
        router.check_item(&new).unwrap();
        router.create_item(new);
    }
    let full = NewWorkItem { skills: skills(&["one-more"]), ..base.clone() };
    assert!(
        matches!(router.check_item(&full), Err(Error::Limit { ref field, limit: 8, got: 9, .. }) if field == "names")
    );
    let known = NewWorkItem { skills: skills(&["a"]), ..base.clone() };
    assert!(router.check_item(&known).is_ok(), "known names take no room");
    let id = router.create_item(full);
    assert_eq!(router.item_status(id), Some(ItemStatus::Exception));
    assert_eq!(catalog.read().unwrap().skills.id("one-more"), None, "nothing interned");
}

/// Durations from configuration and agents have the same upper bound.
#[test]
fn durations_from_outside_are_bounded() {
    let clock = VirtualClock::new(0);
    let department = DepartmentSpec { offer_timeout_ms: u64::MAX, ..DepartmentSpec::new("billing") };
    let refused = Router::new(
        vec![department],
        vec![QueueSpec::new("billing", "billing")],
        Arc::new(clock.clone()),
        Arc::new(RwLock::new(Catalog::default())),
        RouterOptions::default(),
    );
    assert!(matches!(refused, Err(Error::Limit { ref field, .. }) if field == "departments.billing.offer_timeout_ms"));
    let (mut router, clock, _) = setup();
    let spec = |wrap_up_ms| AgentSpec {
        name: "ann".into(),
        group: "team".into(),
        skills: vec![("billing".into(), 5)],
        capacity: Capacity::default(),
        wrap_up_ms,
    };
    assert!(
        matches!(router.register_agent(spec(u64::MAX)), Err(Error::Limit { ref field, .. }) if field == "wrap_up_ms")
    );
    let ann = router.register_agent(spec(MAX_DURATION_MS)).unwrap();
    router.set_agent_state(ann, Presence::Available).unwrap();
    clock.set(u64::MAX - 10);
    let id = router.create_item(NewWorkItem { due_in_ms: Some(MAX_DURATION_MS), ..item("billing", Channel::Voice) });
    router.accept_offer(id).unwrap();
    router.complete(id, Completion::default()).unwrap();
    assert_eq!(router.next_deadline(), Some(u64::MAX), "saturated, no overflow");
}

mod random {
    use super::*;
    use proptest::prelude::*;

    fn text(max: usize) -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "[a-z]{0,8}",
            1 => (0..max).prop_map(|n| "x".repeat(n)),
        ]
    }

    fn new_item() -> impl Strategy<Value = NewWorkItem> {
        (
            prop_oneof![Just("billing".to_string()), Just("claims".to_string()), text(300)],
            prop_oneof![Just("billing".to_string()), Just("vip".to_string()), Just("claims".to_string()), text(300)],
            proptest::collection::vec((text(200), any::<u8>()), 0..40),
            proptest::collection::vec((text(200), text(6_000)), 0..80),
            any::<i32>(),
            proptest::option::of(text(400)),
            proptest::option::of(any::<u64>()),
            any::<f64>(),
        )
            .prop_map(|(department, queue, skills, attributes, priority, customer, due_in_ms, value)| {
                NewWorkItem {
                    department,
                    queue,
                    channel: Some(Channel::Chat),
                    skills,
                    attributes,
                    priority,
                    customer: customer.clone(),
                    case: customer,
                    due_in_ms,
                    value,
                    ..Default::default()
                }
            })
    }

    /// Escalation answers drawn per call from a seeded sequence.
    struct Random(std::sync::Mutex<Vec<Escalation>>);

    impl RuleSet for Random {
        fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
            Decided::built_in(BuiltInRules::prioritise(items))
        }
        fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
            let mut answers = self.0.lock().unwrap();
            let value = (0..items.len())
                .map(|_| {
                    let next = answers.pop().unwrap_or_default();
                    answers.insert(0, next.clone());
                    next
                })
                .collect();
            Decided { value, source: RuleSource::Plugin { plugin: "random".into(), generation: 1 } }
        }
        fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
            Decided::built_in(BuiltInRules::match_agents(item, candidates))
        }
    }

    fn escalation() -> impl Strategy<Value = Escalation> {
        (
            proptest::collection::vec(
                prop_oneof![
                    any::<i32>().prop_map(EscalationAction::RaiseBy),
                    any::<i32>().prop_map(EscalationAction::RaiseTo),
                    any::<u8>().prop_map(EscalationAction::RelaxLevels),
                    (0u32..4).prop_map(|q| EscalationAction::MoveTo(QueueId(q))),
                    (0usize..20_000).prop_map(|n| EscalationAction::Alert("a".repeat(n))),
                ],
                0..4,
            ),
            proptest::option::of(prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()]),
        )
            .prop_map(|(actions, recheck_in_ms)| Escalation { actions, recheck_in_ms })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Random items, durations and escalation answers: never a panic, and
        /// every record the router keeps stays within its bound.
        #[test]
        fn random_input_never_panics_and_stays_bounded(
            items in proptest::collection::vec(new_item(), 1..30),
            answers in proptest::collection::vec(escalation(), 1..10),
            steps in proptest::collection::vec(0u64..3_600_000, 1..30),
            wrap_up in prop_oneof![Just(0u64), Just(MAX_DURATION_MS), any::<u64>()],
        ) {
            let retention = Retention { alerts: 5, notes_per_item: 3, exceptions: 4, case_steps: 6, ..Retention::default() };
            let limits = Limits { rechecks_per_item: 50, ..Limits::default() };
            let clock = VirtualClock::new(0);
            let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::default()));
            let mut router = Router::new(
                vec![DepartmentSpec::new("billing"), DepartmentSpec::new("claims")],
                vec![QueueSpec::new("billing", "billing"), QueueSpec::new("vip", "billing"), QueueSpec::new("claims", "claims")],
                Arc::new(clock.clone()),
                catalog.clone(),
                RouterOptions { retention, limits: limits.clone(), ..Default::default() },
            )
            .unwrap();
            let rules = Arc::new(Random(std::sync::Mutex::new(answers)));
            router.set_rules("billing", rules.clone()).unwrap();
            router.set_rules("claims", rules).unwrap();
            let spec = AgentSpec {
                name: "ann".into(),
                group: "team".into(),
                skills: vec![("billing".into(), 5), ("claims".into(), 5)],
                capacity: Capacity::default(),
                wrap_up_ms: wrap_up,
            };
            let ann = router.register_agent(spec).ok();
            if let Some(ann) = ann {
                router.set_agent_state(ann, Presence::Available).unwrap();
            }
            clock.set(1_780_000_000_000);
            for (i, new) in items.into_iter().enumerate() {
                let _ = router.check_item(&new);
                let id = router.create_item(new);
                if i % 3 == 0 {
                    let _ = router.accept_offer(id);
                    let _ = router.complete(id, Completion { resolved: true, handoff: None });
                }
                clock.advance(steps[i % steps.len()]);
                router.on_tick();
                for _ in 0..5 {
                    clock.advance(100);
                    router.on_tick();
                }
                router.drain_events().for_each(drop);
            }
            let counts = router.record_counts();
            prop_assert!(counts.alerts <= 5);
            prop_assert!(counts.exceptions <= 4);
            prop_assert!(counts.interval_entries <= 3 * 2 * 97 + 2 * 97);
            prop_assert!(router.alerts().iter().all(|a| a.message.len() <= limits.alert_bytes));
            let c = catalog.read().unwrap();
            prop_assert!(c.skills.len() + c.attributes.len() <= limits.catalog_names);
            prop_assert!(c.skills.bytes() + c.attributes.bytes() <= limits.catalog_bytes);
            drop(c);
            for queue in ["billing", "vip", "claims"] {
                for id in router.waiting(queue).unwrap() {
                    let view = router.item_view(id).unwrap();
                    prop_assert!(view.explanation.escalations.len() <= 3);
                    prop_assert!(view.attributes.len() <= limits.attributes_per_item);
                }
            }
            if let Some(deadline) = router.next_deadline() {
                prop_assert!(deadline >= clock.now_ms().min(deadline));
            }
        }
    }
}

/// A rule set that defers `match-agents` and `escalate` (as the daemon's
/// does under its lock) until `answering` is set; then it answers with the
/// built-in match and an escalation that raises by 1.
struct Deferring {
    answering: std::sync::atomic::AtomicBool,
}

impl Deferring {
    fn new() -> Arc<Deferring> {
        Arc::new(Deferring { answering: false.into() })
    }
    fn answer(&self, on: bool) {
        self.answering.store(on, std::sync::atomic::Ordering::SeqCst);
    }
    fn answering(&self) -> bool {
        self.answering.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl RuleSet for Deferring {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        Decided::built_in(BuiltInRules::prioritise(items))
    }
    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        if !self.answering() {
            return Decided { value: BuiltInRules::escalate(items), source: RuleSource::Deferred };
        }
        Decided::built_in(items.iter().map(|_| Escalation::none().then(EscalationAction::RaiseBy(1))).collect())
    }
    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        if !self.answering() {
            return Decided { value: MatchResult::Ranked(Vec::new()), source: RuleSource::Deferred };
        }
        Decided::built_in(BuiltInRules::match_agents(item, candidates))
    }
}

/// A deferred decision changes nothing until it is decided: the router names
/// what to redo (offer an item, fill an agent, escalate an item), redoes it
/// with the answer at hand, skips what time has overtaken, and asks again by
/// itself if nobody decides.
#[test]
fn deferred_decisions_wait_and_are_taken_when_answered() {
    let (mut router, clock, _) = setup();
    let rules = Deferring::new();
    router.set_rules("billing", rules.clone()).unwrap();
    let ann = agent(&mut router, "ann", &[("billing", 5)]);
    router.set_agent_state(ann, Presence::Available).unwrap();

    // A new item with a free agent: both of its decisions are deferred.
    let first = router.create_item(item("billing", Channel::Voice));
    assert_eq!(status(&router, first), Some(ItemStatus::Queued));
    assert!(offers(&mut router).is_empty());
    let calls = router.take_deferred();
    assert_eq!(
        calls,
        vec![DeferredCall::Dispatch { item: first }, DeferredCall::Escalate { item: first, generation: 0 }]
    );
    assert!(router.take_deferred().is_empty(), "taken once");
    assert_eq!(router.item_view(first).unwrap().explanation.matched_by, None, "a deferral explains nothing");
    rules.answer(true);
    router.decide_deferred(&calls);
    assert_eq!(offers(&mut router), vec![(first, ann)]);
    assert!(router.item_view(first).unwrap().explanation.escalations.is_empty(), "offered first: no escalation");

    // An agent becoming available: filling them is deferred.
    rules.answer(false);
    let second = router.create_item(item("billing", Channel::Voice));
    router.take_deferred();
    let bob = agent(&mut router, "bob", &[("billing", 5)]);
    router.set_agent_state(bob, Presence::Available).unwrap();
    let calls = router.take_deferred();
    assert_eq!(calls, vec![DeferredCall::Fill { agent: bob }]);
    rules.answer(true);
    router.decide_deferred(&calls);
    assert_eq!(offers(&mut router), vec![(second, bob)]);

    // Nobody decides: the router asks again after its retry delay.
    rules.answer(false);
    let cid = agent(&mut router, "cid", &[("billing", 5)]);
    router.set_agent_state(cid, Presence::Available).unwrap();
    let third = router.create_item(item("billing", Channel::Voice));
    router.take_deferred();
    rules.answer(true);
    clock.set(999);
    router.on_tick();
    assert!(offers(&mut router).is_empty(), "not before the retry delay");
    clock.set(1_000);
    router.on_tick();
    assert_eq!(offers(&mut router), vec![(third, cid)]);

    // An escalation decided twice is applied once: the second is stale.
    rules.answer(false);
    let waiting = router.create_item(item("billing", Channel::Voice));
    let calls = router.take_deferred();
    assert_eq!(calls, vec![DeferredCall::Escalate { item: waiting, generation: 0 }], "no free agent: no match");
    rules.answer(true);
    router.decide_deferred(&calls);
    router.decide_deferred(&calls);
    let view = router.item_view(waiting).unwrap();
    assert_eq!((view.priority, view.explanation.escalations.len()), (1, 1));
}
