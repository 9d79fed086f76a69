//! Test support for the rooms' unit tests: a small router on a virtual clock,
//! and [`check_invariants`], the bookkeeping every room must keep whatever it
//! does (each room's tests call it after every step).

use super::*;
use crate::clock::VirtualClock;

/// A router with departments `billing` (queues `billing`, `vip`) and `claims`
/// (queue `claims`), on a virtual clock at 1,000 ms.
pub(super) fn router() -> (Router, VirtualClock) {
    let clock = VirtualClock::new(1_000);
    let router = Router::new(
        departments(),
        queues(),
        Arc::new(clock.clone()),
        SharedCatalog::default(),
        RouterOptions::default(),
    )
    .expect("the test router");
    (router, clock)
}

/// The test router's departments.
pub(super) fn departments() -> Vec<DepartmentSpec> {
    vec![DepartmentSpec::new("billing"), DepartmentSpec::new("claims")]
}

/// The test router's queues.
pub(super) fn queues() -> Vec<QueueSpec> {
    vec![QueueSpec::new("billing", "billing"), QueueSpec::new("vip", "billing"), QueueSpec::new("claims", "claims")]
}

/// Register `name` with `skills` and make them available.
pub(super) fn available(router: &mut Router, name: &str, skills: &[(&str, u8)]) -> AgentId {
    let id = router
        .register_agent(AgentSpec {
            name: name.into(),
            group: "team".into(),
            skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
            capacity: Capacity::default(),
            wrap_up_ms: 0,
        })
        .expect("a valid agent");
    router.set_agent_state(id, Presence::Available).expect("a known agent");
    id
}

/// A new item for `queue` (its department from the queue's name).
pub(super) fn item(queue: &str, channel: Channel) -> NewWorkItem {
    let department = if queue == "claims" { "claims" } else { "billing" };
    NewWorkItem { department: department.into(), queue: queue.into(), channel: Some(channel), ..Default::default() }
}

/// The bookkeeping that ties items, queues and agents together:
/// - an item is in its queue's waiting set exactly when it is queued, under
///   its current key; a queue's `offered` counts its offered items;
/// - an offered, active, paused or wrapping-up item is held by its agent, and
///   only those are held;
/// - an agent's load per channel counts the items it holds, and `busy` the
///   ones it is working on (not offers).
pub(super) fn check_invariants(router: &Router) {
    for (q, queue) in router.queues.iter().enumerate() {
        for key in &queue.waiting {
            let item = router.items.get(&key.2).unwrap_or_else(|| panic!("queue {q} waits for a gone item {}", key.2));
            assert_eq!((item.status, item.queue, item.key()), (ItemStatus::Queued, q, *key), "item {}", item.id);
        }
    }
    for (q, queue) in router.queues.iter().enumerate() {
        let offered = router.items.values().filter(|i| i.queue == q && i.status == ItemStatus::Offered).count();
        assert_eq!(queue.offered, offered, "queue {q} counts its offered items");
    }
    for item in router.items.values() {
        let waiting = router.queues[item.queue].waiting.contains(&item.key());
        assert_eq!(
            waiting,
            item.status == ItemStatus::Queued,
            "item {} ({:?}) waiting: {waiting}",
            item.id,
            item.status
        );
        let held =
            matches!(item.status, ItemStatus::Offered | ItemStatus::Active | ItemStatus::Paused | ItemStatus::WrapUp);
        match (held, item.agent) {
            (true, Some(a)) => assert!(router.agents[a].held.contains(&item.id), "item {} not held by {a}", item.id),
            (true, None) => panic!("item {} is {:?} without an agent", item.id, item.status),
            (false, _) => assert!(router.agents.iter().all(|a| !a.held.contains(&item.id)), "item {} held", item.id),
        }
    }
    for (a, agent) in router.agents.iter().enumerate() {
        let mut load = [0u8; 4];
        let mut busy = 0;
        for id in &agent.held {
            let item = router.items.get(id).unwrap_or_else(|| panic!("agent {a} holds a gone item {id}"));
            assert_eq!(item.agent, Some(a), "item {id} held by {a}");
            load[item.channel.index()] += 1;
            busy += u32::from(item.status != ItemStatus::Offered);
        }
        assert_eq!((agent.load, agent.busy), (load, busy), "agent {a}: load and busy count what it holds");
    }
}

/// The one offer made since the last call, as (item, agent).
pub(super) fn offers(router: &mut Router) -> Vec<(ItemId, AgentId)> {
    router
        .drain_events()
        .filter_map(|e| match e {
            Event::Offered { item, agent, .. } => Some((item, agent)),
            _ => None,
        })
        .collect()
}
