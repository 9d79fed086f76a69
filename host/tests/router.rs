//! The routing core's rules on small hand-made cases, each with exact expected
//! outcomes: ordering, blending, offers and timeouts, escalation timing, relaxing
//! skills, abandonment, FCR, the exception queue, hand-offs and explanations.

use std::sync::{Arc, RwLock};

use switchyard_host::clock::{Clock, VirtualClock};
use switchyard_host::router::*;
use switchyard_host::rules::{BuiltInRules, Decided, RuleSet, RuleSource, SharedCatalog};
use switchyard_sdk::{
    CandidateTable, Catalog, Channel, Escalation, EscalationAction, ItemBatch, MatchResult, Priority, QueueId,
};

/// A router with departments `billing` (queues `billing`, `vip`) and `claims`
/// (queue `claims`), on a virtual clock at 0.
fn setup() -> (Router, VirtualClock, SharedCatalog) {
    let clock = VirtualClock::new(0);
    let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::default()));
    let router = Router::new(
        vec![DepartmentSpec::new("billing"), DepartmentSpec::new("claims")],
        vec![QueueSpec::new("billing", "billing"), QueueSpec::new("vip", "billing"), QueueSpec::new("claims", "claims")],
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
struct Escalating<F: Fn(&switchyard_sdk::Item<'_>) -> Escalation + Send + Sync>(F);

impl<F: Fn(&switchyard_sdk::Item<'_>) -> Escalation + Send + Sync> RuleSet for Escalating<F> {
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
    clock.set(50_000);
    router.withdraw(offered).unwrap();
    assert_eq!(router.desktop(a).unwrap().items, vec![]);
    assert_eq!(router.agent_state(a).unwrap(), AgentState::Available);
    assert!(router.withdraw(answered).is_err(), "a finished item is gone");
    let t = router.metrics().queue_totals(0).unwrap();
    assert_eq!((t.offered, t.answered, t.abandoned, t.short_abandoned), (4, 1, 3, 1));
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
    let to_claims = HandOff {
        item: NewWorkItem { due_in_ms: Some(86_400_000), ..item("claims", Channel::Case) },
    };
    let work = router.complete(call, Completion { resolved: false, handoff: Some(to_claims) }).unwrap().unwrap();
    router.accept_offer(work).unwrap();
    clock.set(1_000_000);
    let back = HandOff { item: item("billing", Channel::Voice) };
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
