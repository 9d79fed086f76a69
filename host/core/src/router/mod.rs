//! The routing core: departments and their queues, agents with skills and
//! blended capacity, offers, escalation, abandonment, cases across departments,
//! the exception queue, and an explanation on every decision.
//!
//! One [`Router`] serves front office and back office alike. It never reads the
//! wall clock (time comes from a [`Clock`]) and has no global state, so the same
//! inputs give the same decisions — in real time under `serve` and on the
//! simulator's virtual clock. Decisions go through each department's
//! [`RuleSet`] (a plugin or the [`BuiltInRules`]):
//! - a new item is *prioritised* (priority, maybe a new queue), then offered if a
//!   qualified agent is free — the department's *match* rule picks among the
//!   candidates; otherwise it waits, ordered by priority then age;
//! - a waiting item is *escalated* when the rule asks (raise, relax, drop a skill,
//!   move, alert);
//! - when an agent frees up, the best waiting item among the queues they serve
//!   that the match rule accepts for them is offered.
//!
//! Every change is an [`Event`]; the router feeds them to its [`Metrics`] and
//! keeps them for the embedder to [`Router::drain_events`].
//!
//! This file holds the state (departments, queues, agents, items, timers), the
//! names and the clock; each part of the routing has its own file (room), one
//! `impl Router` block with the unit tests of the invariants it keeps:
//!
//! | room | owns |
//! |---|---|
//! | `intake.rs` | checking, interning, prioritising and queueing a new item; exceptions; queue moves |
//! | `dispatch.rs` | the hot path: rule inputs, `match-agents`, offering an item, filling an agent; deferred decisions |
//! | `offers.rs` | offers, accept/reject/timeout, completion, hand-off, withdrawal |
//! | `escalation.rs` | the `escalate` rule, its actions, rechecks, alerts |
//! | `agents.rs` | registration, presence, activity |
//! | `cases.rs` | customers (FCR) and case timelines |
//! | `retention.rs` | what is forgotten, and the counts that show it |
//! | `views.rs` | read-only views: queues, items, desktops |
//! | `console.rs` | read-only views for the web console: agent load, offer expiry |
//! | `snapshot.rs` | the state as bytes and back |

mod agents;
mod cases;
mod console;
mod dispatch;
mod escalation;
mod intake;
mod offers;
mod retention;
mod snapshot;
#[cfg(test)]
mod testing;
mod views;

pub use crate::model::*;
pub use console::{AgentLoad, ItemTiming};
pub use snapshot::{RouterSnapshot, SNAPSHOT_VERSION};

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchyard_contract::{
    CandidateTable, Channel, Escalation, EscalationAction, ItemBatch, MatchResult, NewCandidate, NewItem, SkillId,
    SkillReq, Tier,
};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsConfig};
use crate::rules::{BuiltInRules, RuleSet, RuleSource, SharedCatalog};

/// The longest duration the router takes from outside: an item's due time, a
/// department's offer timeout, re-offer block and FCR window, an agent's
/// after-work. One year (366 days): longer than any back-office SLA, and far from
/// overflowing `now + duration` on a millisecond wall clock. Request validation
/// (the daemon's) uses the same bound.
pub const MAX_DURATION_MS: u64 = 366 * 24 * 3_600_000;

fn check_duration(field: &str, ms: u64) -> Result<()> {
    if ms > MAX_DURATION_MS {
        return Err(Error::Limit { field: field.to_owned(), what: "duration ms", limit: MAX_DURATION_MS, got: ms });
    }
    Ok(())
}

fn limit(field: impl Into<String>, what: &'static str, limit: usize, got: usize) -> Error {
    Error::Limit { field: field.into(), what, limit: limit as u64, got: got as u64 }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate_to(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Queue order: priority (higher first), then creation time (older first), then id.
type QueueKey = (Reverse<i32>, u64, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Timer {
    OfferTimeout { item: u64, seq: u64 },
    Escalate { item: u64, generation: u64 },
    WrapUpEnd { item: u64 },
    Redispatch { item: u64 },
}

struct Department {
    spec: DepartmentSpec,
    rules: Arc<dyn RuleSet>,
}

struct Queue {
    spec: QueueSpec,
    department: usize,
    skill: u32,
    catalog_id: u32,
    waiting: BTreeSet<QueueKey>,
    offered: usize,
    /// Agents holding the queue's skill, by index.
    agents: Vec<usize>,
}

/// A work item in the system. In a [`RouterSnapshot`] `department` and `queue`
/// index the snapshot's own name lists (remapped on restore).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    id: u64,
    department: usize,
    queue: usize,
    channel: Channel,
    skills: Vec<SkillReq>,
    attributes: Vec<(u32, String)>,
    priority: i32,
    tier: Tier,
    /// Exact through JSON too (see [`snapshot::exact_f64`]): plugins see it.
    #[serde(with = "snapshot::exact_f64")]
    value: f64,
    customer: Option<String>,
    case: Option<String>,
    created_ms: u64,
    due_ms: Option<u64>,
    contacts: u16,
    status: ItemStatus,
    agent: Option<usize>,
    offer_seq: u64,
    /// Agents that rejected or missed the item, and until when they are skipped.
    refused: Vec<(usize, u64)>,
    explanation: Explanation,
    escalation_generation: u64,
    answered_ms: Option<u64>,
    work_started_ms: u64,
    worked_ms: u64,
    wrap_up_ms: u64,
    resolved: bool,
    /// Escalation rechecks armed so far.
    rechecks: u32,
    /// Department and queue asked for, kept for the exception queue.
    asked: (String, String),
}

impl Item {
    fn key(&self) -> QueueKey {
        (Reverse(self.priority), self.created_ms, self.id)
    }
    fn refused_by(&self, agent: usize, now: u64) -> bool {
        self.refused.iter().any(|&(a, until)| a == agent && until > now)
    }
}

/// What [`Router::build_item`] makes of a new item.
struct Built {
    item: Item,
    /// Why it goes to the exception queue, if it does.
    problem: Option<ExceptionReason>,
    /// (previous item, its queue) when the customer calls again within the FCR window.
    repeat_of: Option<(u64, usize)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Agent {
    spec: AgentSpec,
    /// (skill id, level), sorted by skill id.
    skills: Vec<(u32, u8)>,
    presence: Presence,
    /// Slots taken per channel (offers, work, after-work, paused cases).
    load: [u8; 4],
    held: Vec<u64>,
    /// Items being worked, paused or wrapped up.
    busy: u32,
    idle_since_ms: u64,
    activity: Activity,
    /// Busy and idle time for the occupancy the match rules see. Not in a
    /// snapshot's format: a restore takes it from the restored statistics.
    #[serde(skip)]
    work: WorkTime,
}

/// Time an agent has been busy (handling, after-work) and idle (available with
/// nothing in hand), counted by the router itself from its activity changes:
/// the occupancy in a candidate table must not depend on a reporting setting
/// (a simulation's warm-up, the statistics' intervals).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct WorkTime {
    busy_ms: u64,
    idle_ms: u64,
    /// When the current activity began.
    since_ms: u64,
}

impl WorkTime {
    /// The agent leaves activity `from` at `now_ms`.
    fn close(&mut self, from: Activity, now_ms: u64) {
        let span = now_ms.saturating_sub(self.since_ms);
        match from {
            Activity::Busy => self.busy_ms = self.busy_ms.saturating_add(span),
            Activity::Idle => self.idle_ms = self.idle_ms.saturating_add(span),
            Activity::Away | Activity::Offline => {}
        }
        self.since_ms = now_ms;
    }

    /// Busy ÷ (busy + idle) over the activities closed so far; 0 before any.
    fn occupancy(&self) -> f32 {
        let base = self.busy_ms.saturating_add(self.idle_ms);
        if base == 0 { 0.0 } else { (self.busy_ms as f64 / base as f64) as f32 }
    }
}

impl Agent {
    fn level(&self, skill: u32) -> u8 {
        self.skills.binary_search_by_key(&skill, |&(s, _)| s).map(|i| self.skills[i].1).unwrap_or(0)
    }
    fn can_take(&self, channel: Channel) -> bool {
        if self.presence != Presence::Available {
            return false;
        }
        let [voice, chat, email, case] = self.load;
        let cap = &self.spec.capacity;
        match channel {
            Channel::Voice => voice < cap.voice && chat + email == 0,
            Channel::Chat | Channel::Email => {
                voice == 0 && self.load[channel.index()] < cap.of(channel) && chat + email < cap.digital
            }
            Channel::Case => voice + chat + email == 0 && case < cap.case,
        }
    }
    fn live_load(&self) -> u8 {
        self.load[0] + self.load[1] + self.load[2]
    }
    fn total_load(&self) -> u8 {
        self.live_load() + self.load[3]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CustomerRecord {
    last_item: u64,
    last_queue: usize,
    last_department: usize,
    last_seen_ms: u64,
    contacts: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CaseRecord {
    customer: Option<String>,
    opened_ms: u64,
    closed_ms: Option<u64>,
    open_items: u32,
    departments: Vec<usize>,
    history: VecDeque<CaseStep>,
    history_dropped: u64,
}

/// Options of a [`Router`]. The defaults suit a daemon up for months: every
/// record that grows with traffic is bounded (see [`Retention`], [`Limits`],
/// [`MetricsConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RouterOptions {
    /// Keep events for [`Router::drain_events`]. Turn off when nobody drains them.
    pub keep_events: bool,
    /// Statistics settings.
    pub metrics: MetricsConfig,
    /// How long records no longer needed for routing are kept.
    pub retention: Retention,
    /// Upper bounds on items, names and plugin answers.
    pub limits: Limits,
    /// Shortest escalation recheck: a rule asking for less gets this. Default
    /// 100 ms, the daemon's tick — a shorter recheck could not run sooner anyway,
    /// and `recheck_in_ms(1)` must not make a loop of plugin calls.
    pub tick_floor_ms: u64,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            keep_events: true,
            metrics: MetricsConfig::default(),
            retention: Retention::default(),
            limits: Limits::default(),
            tick_floor_ms: 100,
        }
    }
}

/// The routing engine. See the [module docs](self).
pub struct Router {
    clock: Arc<dyn Clock>,
    catalog: SharedCatalog,
    options: RouterOptions,
    departments: Vec<Department>,
    department_index: HashMap<String, usize>,
    queues: Vec<Queue>,
    queue_index: HashMap<String, usize>,
    queue_by_catalog: HashMap<u32, usize>,
    agents: Vec<Agent>,
    agent_index: HashMap<String, usize>,
    items: HashMap<u64, Item>,
    next_item: u64,
    timers: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    timer_seq: u64,
    customers: HashMap<String, CustomerRecord>,
    /// (last seen, customer) in time order, one per update: customers to forget
    /// once past every FCR window (stale entries are skipped).
    customer_expiry: VecDeque<(u64, String)>,
    /// The largest FCR window of any department.
    max_fcr_window_ms: u64,
    cases: HashMap<String, CaseRecord>,
    /// (closed at, case) in time order: closed cases to forget.
    closed_cases: VecDeque<(u64, String)>,
    exceptions: VecDeque<ExceptionEntry>,
    alerts: VecDeque<Alert>,
    next_alert: u64,
    events: Vec<Event>,
    metrics: Metrics,
    stats: RetentionStats,
    /// New items since the last prune.
    created_since_prune: u64,
    /// Timer heap size after the last compaction.
    timers_compacted_len: usize,
    /// Decisions deferred by the rules since the last [`Router::take_deferred`].
    deferred: Vec<DeferredCall>,
    /// Set while deferred calls are redone or a dispatch retried: a deferral
    /// then arms no retry timer (see `dispatch.rs`, `defer`).
    redoing: bool,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("departments", &self.departments.len())
            .field("queues", &self.queues.len())
            .field("agents", &self.agents.len())
            .field("items", &self.items.len())
            .finish()
    }
}

impl Router {
    /// A router for `departments` and `queues`, reading time from `clock` and
    /// interning names into `catalog`. Every department starts with the
    /// [`BuiltInRules`]; give it others with [`Router::set_rules`].
    pub fn new(
        departments: Vec<DepartmentSpec>,
        queues: Vec<QueueSpec>,
        clock: Arc<dyn Clock>,
        catalog: SharedCatalog,
        options: RouterOptions,
    ) -> Result<Router> {
        let metrics = Metrics::new(options.metrics.clone(), clock.now_ms());
        let mut router = Router {
            clock,
            catalog,
            metrics,
            options,
            departments: Vec::new(),
            department_index: HashMap::new(),
            queues: Vec::new(),
            queue_index: HashMap::new(),
            queue_by_catalog: HashMap::new(),
            agents: Vec::new(),
            agent_index: HashMap::new(),
            items: HashMap::new(),
            next_item: 1,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            customers: HashMap::new(),
            customer_expiry: VecDeque::new(),
            max_fcr_window_ms: 0,
            cases: HashMap::new(),
            closed_cases: VecDeque::new(),
            exceptions: VecDeque::new(),
            alerts: VecDeque::new(),
            next_alert: 1,
            events: Vec::new(),
            stats: RetentionStats::default(),
            created_since_prune: 0,
            timers_compacted_len: 0,
            deferred: Vec::new(),
            redoing: false,
        };
        for spec in departments {
            if router.department_index.contains_key(&spec.name) {
                return Err(Error::Invalid(format!("department `{}` is defined twice", spec.name)));
            }
            let name = &spec.name;
            check_duration(&format!("departments.{name}.offer_timeout_ms"), spec.offer_timeout_ms)?;
            check_duration(&format!("departments.{name}.reoffer_block_ms"), spec.reoffer_block_ms)?;
            check_duration(&format!("departments.{name}.fcr_window_ms"), spec.fcr_window_ms)?;
            router.max_fcr_window_ms = router.max_fcr_window_ms.max(spec.fcr_window_ms);
            router.department_index.insert(spec.name.clone(), router.departments.len());
            router.departments.push(Department { spec, rules: Arc::new(BuiltInRules) });
        }
        for spec in queues {
            if router.queue_index.contains_key(&spec.name) {
                return Err(Error::Invalid(format!("queue `{}` is defined twice", spec.name)));
            }
            let department = *router
                .department_index
                .get(&spec.department)
                .ok_or_else(|| Error::Unknown { kind: "department", name: spec.department.clone() })?;
            let skill = router.intern_skill(spec.skill.as_deref().unwrap_or(&spec.name));
            let catalog_id = router.intern_queue(&spec.name);
            let index = router.queues.len();
            router.metrics.add_queue(&spec, &router.departments[department].spec.name);
            router.queue_index.insert(spec.name.clone(), index);
            router.queue_by_catalog.insert(catalog_id, index);
            router.queues.push(Queue {
                spec,
                department,
                skill,
                catalog_id,
                waiting: BTreeSet::new(),
                offered: 0,
                agents: Vec::new(),
            });
        }
        Ok(router)
    }

    /// Give `department` its rule set (a plugin's, or a test's).
    pub fn set_rules(&mut self, department: &str, rules: Arc<dyn RuleSet>) -> Result<()> {
        let index = self.department(department)?;
        self.departments[index].rules = rules;
        Ok(())
    }

    /// The clock's current time.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Whether interning the names `new` (not yet known, deduplicated) keeps the
    /// catalogue within its limits.
    fn check_catalog(&self, new: &[&str]) -> Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let limits = &self.options.limits;
        let (names, bytes) = match self.catalog.read() {
            Ok(c) => (c.skills.len() + c.attributes.len(), c.skills.bytes() + c.attributes.bytes()),
            Err(poisoned) => {
                let c = poisoned.into_inner();
                (c.skills.len() + c.attributes.len(), c.skills.bytes() + c.attributes.bytes())
            }
        };
        let got = names + new.len();
        if got > limits.catalog_names {
            return Err(limit("names", "distinct skill and attribute names", limits.catalog_names, got));
        }
        let got = bytes + new.iter().map(|n| n.len()).sum::<usize>();
        if got > limits.catalog_bytes {
            return Err(limit("names", "bytes of skill and attribute names", limits.catalog_bytes, got));
        }
        Ok(())
    }

    /// Names of `skills` and `attributes` the catalogue does not know yet.
    fn unknown_names<'a>(
        &self,
        skills: impl Iterator<Item = &'a str>,
        attributes: impl Iterator<Item = &'a str>,
    ) -> Vec<&'a str> {
        let catalog = self.catalog.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut new: Vec<&str> = skills.filter(|n| catalog.skills.id(n).is_none()).collect();
        let mut attrs: Vec<&str> = attributes.filter(|n| catalog.attributes.id(n).is_none()).collect();
        new.sort_unstable();
        new.dedup();
        attrs.sort_unstable();
        attrs.dedup();
        new.extend(attrs);
        new
    }

    fn intern_skill(&self, name: &str) -> u32 {
        if let Ok(catalog) = self.catalog.read()
            && let Some(id) = catalog.skills.id(name)
        {
            return id;
        }
        let mut catalog = self.catalog.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        catalog.skills.intern(name)
    }

    fn intern_queue(&self, name: &str) -> u32 {
        let mut catalog = self.catalog.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        catalog.queues.intern(name)
    }

    fn intern_attribute(&self, name: &str) -> u32 {
        if let Ok(catalog) = self.catalog.read()
            && let Some(id) = catalog.attributes.id(name)
        {
            return id;
        }
        let mut catalog = self.catalog.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        catalog.attributes.intern(name)
    }

    fn skill_name(&self, id: u32) -> String {
        self.catalog
            .read()
            .ok()
            .and_then(|c| c.skills.name(id).map(str::to_owned))
            .unwrap_or_else(|| format!("skill#{id}"))
    }

    fn attribute_name(&self, id: u32) -> String {
        self.catalog
            .read()
            .ok()
            .and_then(|c| c.attributes.name(id).map(str::to_owned))
            .unwrap_or_else(|| format!("attr#{id}"))
    }

    fn department(&self, name: &str) -> Result<usize> {
        self.department_index
            .get(name)
            .copied()
            .ok_or_else(|| Error::Unknown { kind: "department", name: name.to_owned() })
    }

    fn queue(&self, name: &str) -> Result<usize> {
        self.queue_index.get(name).copied().ok_or_else(|| Error::Unknown { kind: "queue", name: name.to_owned() })
    }

    fn agent_ix(&self, agent: AgentId) -> Result<usize> {
        let index = agent.0.checked_sub(1).map(|i| i as usize);
        match index {
            Some(i) if i < self.agents.len() => Ok(i),
            _ => Err(Error::Unknown { kind: "agent", name: agent.0.to_string() }),
        }
    }

    fn emit(&mut self, event: Event) {
        self.metrics.observe(&event);
        if self.options.keep_events {
            self.events.push(event);
        }
    }

    /// Take the events since the last call, oldest first.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    fn arm(&mut self, at_ms: u64, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at_ms, self.timer_seq, timer)));
    }

    /// When [`Router::on_tick`] next has something to do (offer timeouts,
    /// escalation rechecks, end of after-work), if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Run everything due at the clock's current time: time out offers, end
    /// after-work, and ask the escalate rules about items whose recheck is due
    /// (one batch per department).
    pub fn on_tick(&mut self) {
        let now = self.now_ms();
        let mut escalations: Vec<u64> = Vec::new();
        while let Some(Reverse((at, _, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::OfferTimeout { item, seq } => {
                    let current =
                        self.items.get(&item).is_some_and(|i| i.status == ItemStatus::Offered && i.offer_seq == seq);
                    if current {
                        self.end_offer(item, "timed-out");
                    }
                }
                Timer::WrapUpEnd { item } => {
                    if self.items.get(&item).is_some_and(|i| i.status == ItemStatus::WrapUp) {
                        self.finish(item);
                    }
                }
                Timer::Redispatch { item } => {
                    if self.items.get(&item).is_some_and(|i| i.status == ItemStatus::Queued) {
                        // A retry that defers again leaves it to its settle.
                        self.redoing = true;
                        self.dispatch_item(item);
                        self.redoing = false;
                    }
                }
                Timer::Escalate { item, generation } => {
                    let Some(it) = self.items.get(&item) else {
                        continue;
                    };
                    if it.escalation_generation != generation {
                        continue;
                    }
                    match it.status {
                        ItemStatus::Queued => escalations.push(item),
                        // Look again once the offer has been answered or has timed out.
                        ItemStatus::Offered => {
                            let wait = self.departments[it.department].spec.offer_timeout_ms.max(1);
                            self.arm(now.saturating_add(wait), timer);
                        }
                        _ => {}
                    }
                }
            }
        }
        if !escalations.is_empty() {
            self.run_escalations(escalations);
        }
        self.prune();
    }

    /// The options the router runs with.
    pub fn options(&self) -> &RouterOptions {
        &self.options
    }

    /// Statistics so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Statistics, mutable (to close the books at the end of a run).
    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }
}

fn unknown_item(item: ItemId) -> Error {
    Error::Unknown { kind: "item", name: item.0.to_string() }
}
