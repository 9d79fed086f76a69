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

mod snapshot;
mod types;

pub use snapshot::{RouterSnapshot, SNAPSHOT_VERSION};
pub use types::*;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchyard_sdk::{
    CandidateTable, Channel, Escalation, EscalationAction, ItemBatch, MatchResult, NewCandidate, NewItem, SkillId,
    SkillReq, Tier,
};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsConfig};
use crate::rules::{BuiltInRules, RuleSet, RuleSource, SharedCatalog};

/// How many waiting items an agent that frees up looks at per queue before
/// giving up (keeps a long backlog of items they cannot take cheap).
const SCAN_LIMIT: usize = 64;

/// How long a deferred decision ([`RuleSource::Deferred`]) may go unanswered
/// before the router asks again by itself: the embedder normally answers
/// within milliseconds ([`Router::decide_deferred`]); this covers one that
/// stopped before it could (the daemon killed between the two).
const DEFERRED_RETRY_MS: u64 = 1_000;

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

/// Append a step to a case's history, dropping the oldest past the retention.
fn push_step(record: &mut CaseRecord, step: CaseStep, retention: &Retention, stats: &mut RetentionStats) {
    record.history.push_back(step);
    while record.history.len() > retention.case_steps.max(1) {
        record.history.pop_front();
        record.history_dropped += 1;
        stats.case_steps_dropped += 1;
    }
}

/// Append a department to a case's path, dropping the oldest past the retention.
fn push_department(record: &mut CaseRecord, department: usize, retention: &Retention) {
    record.departments.push(department);
    if record.departments.len() > retention.case_steps.max(1).saturating_mul(2) {
        let excess = record.departments.len() - retention.case_steps.max(1);
        record.departments.drain(..excess);
    }
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

    // ----- names -------------------------------------------------------------------

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

    // ----- events and timers ---------------------------------------------------------

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

    /// Forget what retention says is no longer needed: customers past every FCR
    /// window, closed cases past their window, stale timers. Each pass pops only
    /// expired records from time-ordered queues (amortised O(1) per record); the
    /// timer heap is compacted only once it has doubled since the last time.
    fn prune(&mut self) {
        let now = self.now_ms();
        self.created_since_prune = 0;
        // Customers: a record can only make a repeat contact within its
        // department's FCR window of its last sighting, and its last item, while
        // open, may still refresh it — so it goes once past the largest window
        // with its last item closed.
        let mut still_open: Vec<(u64, String)> = Vec::new();
        while let Some((seen, _)) = self.customer_expiry.front() {
            if now.saturating_sub(*seen) <= self.max_fcr_window_ms {
                break;
            }
            let Some((seen, customer)) = self.customer_expiry.pop_front() else {
                break;
            };
            let Some(record) = self.customers.get(&customer) else {
                continue;
            };
            if record.last_seen_ms > seen {
                continue; // refreshed since; a later entry stands for it
            }
            if self.items.contains_key(&record.last_item) {
                still_open.push((now, customer));
            } else {
                self.customers.remove(&customer);
                self.stats.customers_forgotten += 1;
            }
        }
        self.customer_expiry.extend(still_open);
        // Closed cases.
        let window = self.options.retention.closed_case_ms;
        while let Some((closed, _)) = self.closed_cases.front() {
            if now.saturating_sub(*closed) <= window {
                break;
            }
            let Some((closed, case)) = self.closed_cases.pop_front() else {
                break;
            };
            if self.cases.get(&case).is_some_and(|r| r.closed_ms == Some(closed)) {
                self.cases.remove(&case);
                self.stats.cases_forgotten += 1;
            }
        }
        // Stale timers (items gone, offers answered, escalations superseded).
        if self.timers.len() > self.timers_compacted_len.saturating_mul(2).max(1_024) {
            let before = self.timers.len();
            let items = &self.items;
            self.timers.retain(|Reverse((_, _, timer))| match *timer {
                Timer::OfferTimeout { item, seq } => {
                    items.get(&item).is_some_and(|i| i.status == ItemStatus::Offered && i.offer_seq == seq)
                }
                Timer::Escalate { item, generation } => {
                    items.get(&item).is_some_and(|i| i.escalation_generation == generation)
                }
                Timer::WrapUpEnd { item } | Timer::Redispatch { item } => items.contains_key(&item),
            });
            self.timers_compacted_len = self.timers.len();
            self.stats.timers_compacted += (before - self.timers.len()) as u64;
        }
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
                        self.dispatch_item(item);
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

    // ----- agents --------------------------------------------------------------------

    /// Register an agent (logged out until [`Router::set_agent_state`]), or update
    /// the skills, capacity, group and after-work of an agent with the same name.
    pub fn register_agent(&mut self, spec: AgentSpec) -> Result<AgentId> {
        check_duration("wrap_up_ms", spec.wrap_up_ms)?;
        let name_bytes = self.options.limits.name_bytes;
        if let Some((name, _)) = spec.skills.iter().find(|(name, _)| name.len() > name_bytes) {
            return Err(limit("skills", "name bytes", name_bytes, name.len()));
        }
        let unknown = self.unknown_names(spec.skills.iter().map(|(name, _)| name.as_str()), std::iter::empty());
        self.check_catalog(&unknown)?;
        let mut skills = Vec::with_capacity(spec.skills.len());
        for (name, level) in &spec.skills {
            if !(1..=10).contains(level) {
                return Err(Error::Invalid(format!(
                    "agent `{}`: skill `{name}` has level {level}, expected 1-10",
                    spec.name
                )));
            }
            skills.push((self.intern_skill(name), *level));
        }
        skills.sort_unstable();
        skills.dedup_by_key(|s| s.0);
        let now = self.now_ms();
        let index = match self.agent_index.get(&spec.name) {
            Some(&index) => {
                let agent = &mut self.agents[index];
                agent.spec = spec;
                agent.skills = skills;
                index
            }
            None => {
                let index = self.agents.len();
                self.agent_index.insert(spec.name.clone(), index);
                self.metrics.add_agent(AgentId(index as u64 + 1), &spec.group, now);
                self.agents.push(Agent {
                    spec,
                    skills,
                    presence: Presence::Offline,
                    load: [0; 4],
                    held: Vec::new(),
                    busy: 0,
                    idle_since_ms: now,
                    activity: Activity::Offline,
                });
                index
            }
        };
        for queue in &mut self.queues {
            queue.agents.retain(|&a| a != index);
            if self.agents[index].level(queue.skill) >= 1 {
                queue.agents.push(index);
                queue.agents.sort_unstable();
            }
        }
        self.fill_agent(index);
        Ok(AgentId(index as u64 + 1))
    }

    /// The id of the agent called `name`.
    pub fn agent_id(&self, name: &str) -> Option<AgentId> {
        self.agent_index.get(name).map(|&i| AgentId(i as u64 + 1))
    }

    /// The login of agent `agent`, if it is registered.
    pub fn agent_name(&self, agent: AgentId) -> Option<String> {
        self.agent_ix(agent).ok().map(|a| self.agents[a].spec.name.clone())
    }

    /// Set an agent's presence. Becoming available offers them waiting work at
    /// once; going away or offline returns their pending offers to the queue
    /// (work in hand is finished).
    pub fn set_agent_state(&mut self, agent: AgentId, presence: Presence) -> Result<()> {
        let a = self.agent_ix(agent)?;
        self.agents[a].presence = presence;
        if presence != Presence::Available {
            let pending: Vec<u64> = self.agents[a]
                .held
                .iter()
                .copied()
                .filter(|id| self.items.get(id).is_some_and(|i| i.status == ItemStatus::Offered))
                .collect();
            for id in pending {
                self.end_offer(id, "cancelled");
            }
        }
        self.update_activity(a);
        if presence == Presence::Available {
            self.fill_agent(a);
        }
        Ok(())
    }

    /// An agent's wallboard state.
    pub fn agent_state(&self, agent: AgentId) -> Result<AgentState> {
        let a = self.agent_ix(agent)?;
        Ok(self.state_of(a))
    }

    fn state_of(&self, a: usize) -> AgentState {
        let agent = &self.agents[a];
        let working = agent
            .held
            .iter()
            .any(|id| self.items.get(id).is_some_and(|i| matches!(i.status, ItemStatus::Active | ItemStatus::Paused)));
        if working {
            AgentState::Busy
        } else if agent.busy > 0 {
            AgentState::WrapUp
        } else {
            match agent.presence {
                Presence::Available => AgentState::Available,
                Presence::Away => AgentState::Away,
                Presence::Offline => AgentState::Offline,
            }
        }
    }

    fn update_activity(&mut self, a: usize) {
        let now = self.now_ms();
        let agent = &mut self.agents[a];
        if agent.total_load() == 0 && agent.activity == Activity::Busy {
            agent.idle_since_ms = now;
        }
        let activity = if agent.busy > 0 {
            Activity::Busy
        } else {
            match agent.presence {
                Presence::Available => Activity::Idle,
                Presence::Away => Activity::Away,
                Presence::Offline => Activity::Offline,
            }
        };
        if activity != agent.activity {
            if activity == Activity::Idle {
                agent.idle_since_ms = now;
            }
            agent.activity = activity;
            self.emit(Event::Activity { at_ms: now, agent: AgentId(a as u64 + 1), activity });
        }
    }

    /// The agents serving `queue` (holding its skill).
    pub fn queue_agents(&self, queue: &str) -> Result<Vec<AgentId>> {
        let q = self.queue(queue)?;
        Ok(self.queues[q].agents.iter().map(|&a| AgentId(a as u64 + 1)).collect())
    }

    /// Every agent: id, name and group.
    pub fn agents(&self) -> Vec<(AgentId, String, String)> {
        self.agents
            .iter()
            .enumerate()
            .map(|(i, a)| (AgentId(i as u64 + 1), a.spec.name.clone(), a.spec.group.clone()))
            .collect()
    }

    // ----- items ---------------------------------------------------------------------

    /// Create a work item. It is prioritised by its department's rule and offered
    /// at once if a qualified agent is free, or waits in its queue. An item that
    /// cannot be placed (unknown department or queue, invalid data, unusable rule
    /// answer) goes to the exception queue: the id is returned either way.
    ///
    /// An item over one of the [`Limits`] lands in the exception queue too, with
    /// the oversized data left out; call [`Router::check_item`] first to refuse it
    /// instead.
    pub fn create_item(&mut self, new: NewWorkItem) -> ItemId {
        self.create(new, None)
    }

    /// Whether `new` is within the router's [`Limits`]: names, skills,
    /// attributes, ids, due time, and room in the name catalogue for its new
    /// names. A front end calls it before accepting (journaling) a request;
    /// [`Error::Limit`] names the field. Unknown departments, queues and invalid
    /// levels are not refused here (they go to the exception queue).
    pub fn check_item(&self, new: &NewWorkItem) -> Result<()> {
        let l = &self.options.limits;
        for (field, name) in [("department", &new.department), ("queue", &new.queue)] {
            if name.len() > l.name_bytes {
                return Err(limit(field, "name bytes", l.name_bytes, name.len()));
            }
        }
        if new.skills.len() > l.skills_per_item {
            return Err(limit("skills", "skills per item", l.skills_per_item, new.skills.len()));
        }
        if let Some((name, _)) = new.skills.iter().find(|(name, _)| name.len() > l.name_bytes) {
            return Err(limit("skills", "name bytes", l.name_bytes, name.len()));
        }
        if new.attributes.len() > l.attributes_per_item {
            return Err(limit("attributes", "attributes per item", l.attributes_per_item, new.attributes.len()));
        }
        for (key, value) in &new.attributes {
            if key.len() > l.name_bytes {
                return Err(limit("attributes", "attribute key bytes", l.name_bytes, key.len()));
            }
            if value.len() > l.attribute_value_bytes {
                return Err(limit(
                    format!("attributes.{key}"),
                    "attribute value bytes",
                    l.attribute_value_bytes,
                    value.len(),
                ));
            }
        }
        for (field, id) in [("customer", &new.customer), ("case", &new.case)] {
            if let Some(id) = id
                && id.len() > l.id_bytes
            {
                return Err(limit(field, "id bytes", l.id_bytes, id.len()));
            }
        }
        if let Some(due) = new.due_in_ms {
            check_duration("due_in_ms", due)?;
        }
        let unknown = self.unknown_names(
            new.skills.iter().map(|(name, _)| name.as_str()),
            new.attributes.iter().map(|(key, _)| key.as_str()),
        );
        self.check_catalog(&unknown)
    }

    /// Reserve the id the next [`Router::create_item_as`] may use: a front end
    /// that asks the rules before it takes its lock (see [`Router::plan_intake`])
    /// shows the plugin the id the item will have.
    pub fn reserve_item_id(&mut self) -> ItemId {
        let id = self.next_item;
        self.next_item += 1;
        ItemId(id)
    }

    /// [`Router::create_item`] under an id from [`Router::reserve_item_id`] (or
    /// one a journal recorded); an id already in use gets a new one.
    pub fn create_item_as(&mut self, id: ItemId, new: NewWorkItem) -> ItemId {
        self.create_as(Some(id), new, None)
    }

    fn create_as(&mut self, id: Option<ItemId>, new: NewWorkItem, handed_from: Option<u64>) -> ItemId {
        match id {
            Some(ItemId(id)) if id != 0 && !self.items.contains_key(&id) => {
                self.next_item = self.next_item.max(id + 1);
                self.create_with(id, new, handed_from)
            }
            _ => self.create(new, handed_from),
        }
    }

    /// The `prioritise` batch [`Router::create_item_as`] would hand the item's
    /// department for `new` under `id` at `now`, and the department's name, or
    /// `None` if the item would not reach its rules (over a limit, unknown
    /// department or queue, invalid data). Read-only but for interning names.
    ///
    /// A front end calls it under its lock, asks the rules *outside* the lock,
    /// and hands the answer back for the create (the daemon's tape does): so a
    /// slow plugin holds only its own request.
    pub fn plan_intake(&self, id: ItemId, new: &NewWorkItem, now: u64) -> Option<(String, ItemBatch)> {
        self.plan_create(id, new, now, None)
    }

    /// [`Router::plan_intake`] for the hand-off `handoff` that completing
    /// `item` would create under `id` (its customer and case are the item's).
    /// `None` also when `item` is unknown.
    pub fn plan_handoff(
        &self,
        item: ItemId,
        handoff: &NewWorkItem,
        id: ItemId,
        now: u64,
    ) -> Option<(String, ItemBatch)> {
        let next = self.handoff_item(item.0, handoff.clone())?;
        self.plan_create(id, &next, now, Some(item.0))
    }

    /// The follow-up `new` of item `from`, with `from`'s customer and case
    /// (a new case named after `from` if it had none).
    fn handoff_item(&self, from: u64, mut new: NewWorkItem) -> Option<NewWorkItem> {
        let it = self.items.get(&from)?;
        new.customer = it.customer.clone();
        new.case = Some(it.case.clone().unwrap_or_else(|| format!("item-{from}")));
        Some(new)
    }

    fn plan_create(
        &self,
        id: ItemId,
        new: &NewWorkItem,
        now: u64,
        handed_from: Option<u64>,
    ) -> Option<(String, ItemBatch)> {
        if self.check_item(new).is_err() {
            return None;
        }
        let built = self.build_item(id.0, new, now, handed_from);
        if built.problem.is_some() {
            return None;
        }
        let department = self.departments[built.item.department].spec.name.clone();
        Some((department, self.batch_of(&[&built.item], now)))
    }

    fn create(&mut self, new: NewWorkItem, handed_from: Option<u64>) -> ItemId {
        let id = self.next_item;
        self.next_item += 1;
        self.create_with(id, new, handed_from)
    }

    fn create_with(&mut self, id: u64, new: NewWorkItem, handed_from: Option<u64>) -> ItemId {
        self.created_since_prune += 1;
        if self.created_since_prune >= self.options.retention.prune_every {
            self.prune();
        }
        let now = self.now_ms();
        let channel = new.channel.unwrap_or(Channel::Voice);

        // Over a limit: keep nothing oversized, send it to the exception queue.
        let mut new = new;
        let over_limit = match self.check_item(&new) {
            Ok(()) => None,
            Err(e) => {
                self.stats.items_over_limit += 1;
                let name_bytes = self.options.limits.name_bytes;
                new.skills.clear();
                new.attributes.clear();
                new.customer = None;
                new.case = None;
                new.due_in_ms = None;
                new.department = truncate_to(new.department, name_bytes);
                new.queue = truncate_to(new.queue, name_bytes);
                Some(ExceptionReason::InvalidData(e.to_string()))
            }
        };

        let Built { mut item, problem: built_problem, repeat_of } = self.build_item(id, &new, now, handed_from);
        let problem = over_limit.or(built_problem);
        let department = self.department_index.get(&new.department).copied();
        let queue = self.queue_index.get(&new.queue).copied();
        if let Some((last_item, last_queue)) = repeat_of {
            self.emit(Event::Repeat {
                at_ms: now,
                item: ItemId(id),
                previous: ItemId(last_item),
                previous_queue: last_queue,
            });
        }
        if let Some(case) = &new.case {
            let record = self.cases.entry(case.clone()).or_insert_with(|| CaseRecord {
                customer: new.customer.clone(),
                opened_ms: now,
                closed_ms: None,
                open_items: 0,
                departments: Vec::new(),
                history: VecDeque::new(),
                history_dropped: 0,
            });
            record.open_items += 1;
            record.closed_ms = None;
            if let Some(d) = department
                && record.departments.last() != Some(&d)
            {
                push_department(record, d, &self.options.retention);
            }
            let step = CaseStep {
                at_ms: now,
                item: ItemId(id),
                department: new.department.clone(),
                what: format!("created in queue `{}` ({channel})", new.queue),
            };
            push_step(record, step, &self.options.retention, &mut self.stats);
        }

        if let Some(reason) = problem {
            item.status = ItemStatus::Exception;
            self.items.insert(id, item);
            self.emit(Event::Created { at_ms: now, item: ItemId(id), queue: None, channel });
            self.send_to_exception(id, reason);
            return ItemId(id);
        }

        // Prioritise.
        let d = item.department;
        let batch = self.batch_of(&[&item], now);
        let decided = self.departments[d].rules.prioritise(&batch);
        let answer = decided.value.into_iter().next();
        item.explanation.prioritised_by = Some(decided.source.clone());
        self.items.insert(id, item);
        self.emit(Event::Created { at_ms: now, item: ItemId(id), queue, channel });
        let Some(priority) = answer else {
            self.send_to_exception(id, ExceptionReason::NoUsableRule(format!("{} gave no priority", decided.source)));
            return ItemId(id);
        };
        if let Some(target) = priority.queue {
            match self.queue_by_catalog.get(&target.0).copied() {
                Some(to) => self.move_queue(id, to, now),
                None => {
                    self.send_to_exception(
                        id,
                        ExceptionReason::NoUsableRule(format!(
                            "{} moved the item to unknown queue id {}",
                            decided.source, target.0
                        )),
                    );
                    return ItemId(id);
                }
            }
        }
        if let Some(it) = self.items.get_mut(&id) {
            it.priority = priority.priority;
            it.explanation.priority = priority.priority;
            it.explanation.priority_reason = priority.reason;
        }
        self.record_customer(id);
        self.enqueue(id);
        self.dispatch_item(id);
        if self.items.get(&id).is_some_and(|i| i.status == ItemStatus::Queued) {
            self.run_escalations(vec![id]);
        }
        ItemId(id)
    }

    /// The item `create` routes for `new`, and why it cannot be routed if so,
    /// and the customer's previous contact if this one repeats it. Changes
    /// nothing but the name catalogue (interning), so [`Router::plan_intake`]
    /// builds the very batch `create` will.
    fn build_item(&self, id: u64, new: &NewWorkItem, now: u64, handed_from: Option<u64>) -> Built {
        let channel = new.channel.unwrap_or(Channel::Voice);
        // Where does it go, and is it well-formed?
        let mut problem: Option<ExceptionReason> = None;
        let department = self.department_index.get(&new.department).copied();
        let queue = self.queue_index.get(&new.queue).copied();
        match (department, queue) {
            (None, _) => problem = Some(ExceptionReason::UnknownDepartment(new.department.clone())),
            (Some(d), Some(q)) if self.queues[q].department == d => {}
            (Some(_), _) => problem = Some(ExceptionReason::UnknownQueue(new.queue.clone())),
        }
        let mut skills: Vec<SkillReq> = Vec::new();
        if let Some(q) = queue {
            skills.push(SkillReq { skill: SkillId(self.queues[q].skill), level: 1 });
        }
        for (name, level) in &new.skills {
            if !(1..=10).contains(level) {
                problem.get_or_insert(ExceptionReason::InvalidData(format!(
                    "skill `{name}` has level {level}, expected 1-10"
                )));
                continue;
            }
            let skill = SkillId(self.intern_skill(name));
            match skills.iter_mut().find(|r| r.skill == skill) {
                Some(r) => r.level = *level,
                None => skills.push(SkillReq { skill, level: *level }),
            }
        }
        if !new.value.is_finite() {
            problem.get_or_insert(ExceptionReason::InvalidData(format!("value {} is not a number", new.value)));
        }
        let attributes: Vec<(u32, String)> =
            new.attributes.iter().map(|(k, v)| (self.intern_attribute(k), v.clone())).collect();

        // Repeat contacts (FCR).
        let mut contacts = 1u16;
        let mut repeat_of = None;
        if let (Some(customer), None) = (&new.customer, handed_from)
            && let Some(record) = self.customers.get(customer)
        {
            let window = self.departments[record.last_department].spec.fcr_window_ms;
            if now.saturating_sub(record.last_seen_ms) <= window {
                contacts = record.contacts.saturating_add(1);
                repeat_of = Some((record.last_item, record.last_queue));
            }
        }
        let item = Item {
            id,
            department: department.unwrap_or(0),
            queue: queue.unwrap_or(0),
            channel,
            skills,
            attributes,
            priority: new.priority,
            tier: new.tier,
            value: if new.value.is_finite() { new.value } else { 0.0 },
            customer: new.customer.clone(),
            case: new.case.clone(),
            created_ms: now,
            due_ms: new.due_in_ms.map(|d| now.saturating_add(d)),
            contacts,
            status: ItemStatus::Queued,
            agent: None,
            offer_seq: 0,
            refused: Vec::new(),
            explanation: Explanation { priority: new.priority, ..Default::default() },
            escalation_generation: 0,
            answered_ms: None,
            work_started_ms: 0,
            worked_ms: 0,
            wrap_up_ms: 0,
            resolved: false,
            rechecks: 0,
            asked: (new.department.clone(), new.queue.clone()),
        };
        Built { item, problem, repeat_of }
    }

    fn record_customer(&mut self, id: u64) {
        let Some(item) = self.items.get(&id) else {
            return;
        };
        let Some(customer) = item.customer.clone() else {
            return;
        };
        let record = CustomerRecord {
            last_item: id,
            last_queue: item.queue,
            last_department: item.department,
            last_seen_ms: item.created_ms,
            contacts: item.contacts,
        };
        self.customer_expiry.push_back((record.last_seen_ms, customer.clone()));
        self.customers.insert(customer, record);
    }

    fn case_step(&mut self, id: u64, what: impl FnOnce() -> String) {
        let now = self.now_ms();
        let Some(item) = self.items.get(&id) else {
            return;
        };
        let Some(case) = &item.case else { return };
        let department = self.departments[item.department].spec.name.clone();
        if let Some(record) = self.cases.get_mut(case) {
            let step = CaseStep { at_ms: now, item: ItemId(id), department, what: what() };
            push_step(record, step, &self.options.retention, &mut self.stats);
        }
    }

    fn case_item_ended(&mut self, case: Option<String>) {
        let Some(case) = case else { return };
        let now = self.now_ms();
        let Some(record) = self.cases.get_mut(&case) else {
            return;
        };
        record.open_items = record.open_items.saturating_sub(1);
        if record.open_items == 0 {
            record.closed_ms = Some(now);
            self.closed_cases.push_back((now, case.clone()));
            let departments = record.departments.iter().map(|&d| self.departments[d].spec.name.clone()).collect();
            let opened_ms = record.opened_ms;
            self.emit(Event::CaseClosed { at_ms: now, case, opened_ms, departments });
        }
    }

    fn send_to_exception(&mut self, id: u64, reason: ExceptionReason) {
        let now = self.now_ms();
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        if item.status == ItemStatus::Queued {
            let key = item.key();
            self.queues[item.queue].waiting.remove(&key);
        }
        item.status = ItemStatus::Exception;
        let entry = ExceptionEntry {
            item: ItemId(id),
            at_ms: now,
            reason: reason.clone(),
            department: item.asked.0.clone(),
            queue: item.asked.1.clone(),
        };
        self.exceptions.push_back(entry);
        let text = reason.to_string();
        self.case_step(id, || format!("exception: {text}"));
        self.emit(Event::Exception { at_ms: now, item: ItemId(id), reason });
        // A full exception queue forgets its oldest entry and that item.
        while self.exceptions.len() > self.options.retention.exceptions.max(1) {
            let Some(old) = self.exceptions.pop_front() else {
                break;
            };
            self.stats.exceptions_dropped += 1;
            self.case_step(old.item.0, || "discarded from the full exception queue".into());
            if let Some(it) = self.items.remove(&old.item.0) {
                self.case_item_ended(it.case);
            }
        }
    }

    /// Items no rule could place, with the reason, oldest first (the most recent
    /// [`Retention::exceptions`]).
    pub fn exceptions(&self) -> &VecDeque<ExceptionEntry> {
        &self.exceptions
    }

    /// Route an item out of the exception queue into `department`/`queue`.
    pub fn resolve_exception(&mut self, item: ItemId, department: &str, queue: &str) -> Result<()> {
        let d = self.department(department)?;
        let q = self.queue(queue)?;
        if self.queues[q].department != d {
            return Err(Error::Invalid(format!("queue `{queue}` does not belong to department `{department}`")));
        }
        let Some(position) = self.exceptions.iter().position(|e| e.item == item) else {
            return Err(Error::Invalid(format!("{item} is not in the exception queue")));
        };
        self.exceptions.remove(position);
        let skill = self.queues[q].skill;
        let Some(it) = self.items.get_mut(&item.0) else {
            return Err(Error::Unknown { kind: "item", name: item.0.to_string() });
        };
        it.department = d;
        it.queue = q;
        if !it.skills.iter().any(|r| r.skill.0 == skill) {
            it.skills.insert(0, SkillReq { skill: SkillId(skill), level: 1 });
        }
        it.status = ItemStatus::Queued;
        if let Some(case) = it.case.clone()
            && let Some(record) = self.cases.get_mut(&case)
            && record.departments.last() != Some(&d)
        {
            push_department(record, d, &self.options.retention);
        }
        self.case_step(item.0, || format!("resolved from the exception queue into `{queue}`"));
        self.enqueue(item.0);
        self.dispatch_item(item.0);
        Ok(())
    }

    fn enqueue(&mut self, id: u64) {
        if let Some(item) = self.items.get_mut(&id) {
            item.status = ItemStatus::Queued;
            item.agent = None;
            let key = item.key();
            self.queues[item.queue].waiting.insert(key);
        }
    }

    fn move_queue(&mut self, id: u64, to: usize, now: u64) {
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        let from = item.queue;
        if from == to {
            return;
        }
        // Re-insert only what was actually waiting: a new item is moved by its
        // prioritise answer before it is enqueued, and inserting it here too would
        // leave a second, stale entry (old priority) that is later offered again.
        let queued = item.status == ItemStatus::Queued && self.queues[from].waiting.remove(&item.key());
        let old_skill = self.queues[from].skill;
        let new_skill = self.queues[to].skill;
        item.queue = to;
        item.department = self.queues[to].department;
        // The queue's own skill requirement follows the queue.
        item.skills.retain(|r| r.skill.0 != old_skill);
        if !item.skills.iter().any(|r| r.skill.0 == new_skill) {
            item.skills.insert(0, SkillReq { skill: SkillId(new_skill), level: 1 });
        }
        if queued {
            self.queues[to].waiting.insert(item.key());
        }
        let d = self.queues[to].department;
        if let Some(case) = item.case.clone()
            && let Some(record) = self.cases.get_mut(&case)
            && record.departments.last() != Some(&d)
        {
            push_department(record, d, &self.options.retention);
        }
        let name = self.queues[to].spec.name.clone();
        self.case_step(id, || format!("moved to queue `{name}`"));
        self.emit(Event::Moved { at_ms: now, item: ItemId(id), from, to });
    }

    fn batch_of(&self, items: &[&Item], now: u64) -> ItemBatch {
        let mut batch = ItemBatch::with_capacity(now, items.len());
        let mut attrs: Vec<(u32, &str)> = Vec::new();
        for item in items {
            attrs.clear();
            attrs.extend(item.attributes.iter().map(|(k, v)| (*k, v.as_str())));
            batch.push(NewItem {
                id: item.id,
                channel: Some(item.channel),
                queue: self.queues[item.queue].catalog_id,
                tier: item.tier,
                contacts: item.contacts,
                priority: item.priority,
                age_ms: now.saturating_sub(item.created_ms),
                due_in_ms: item.due_ms.map(|d| d as i64 - now as i64),
                value: item.value,
                skills: &item.skills,
                attributes: &attrs,
            });
        }
        batch
    }

    /// The candidate table for `item` over `agents` (already filtered), longest
    /// idle first: columns are the item's required skills, then every other skill
    /// a candidate holds.
    fn candidate_table(&self, item: &Item, agents: &mut [usize], now: u64) -> CandidateTable {
        agents.sort_by_key(|&a| {
            let agent = &self.agents[a];
            let idle = if agent.total_load() == 0 { now.saturating_sub(agent.idle_since_ms) } else { 0 };
            (Reverse(idle), agent.total_load(), a)
        });
        let mut columns: Vec<u32> = item.skills.iter().map(|r| r.skill.0).collect();
        let required = columns.len();
        let mut others: Vec<u32> = Vec::new();
        for &a in agents.iter() {
            for &(skill, _) in &self.agents[a].skills {
                if !columns[..required].contains(&skill) {
                    others.push(skill);
                }
            }
        }
        others.sort_unstable();
        others.dedup();
        columns.extend(others);
        let mut table = CandidateTable::new(columns);
        let mut proficiency = Vec::with_capacity(table.skill_columns.len());
        for &a in agents.iter() {
            let agent = &self.agents[a];
            proficiency.clear();
            proficiency.extend(table.skill_columns.iter().map(|&s| agent.level(s)));
            let idle = if agent.total_load() == 0 { now.saturating_sub(agent.idle_since_ms) } else { 0 };
            table.push(NewCandidate {
                id: a as u64 + 1,
                proficiency: &proficiency,
                idle_ms: idle,
                occupancy: self.metrics.agent_occupancy(AgentId(a as u64 + 1)),
                load: agent.load,
            });
        }
        table
    }

    /// Ask the match rule; returns the chosen table index and the explanation
    /// parts, or `None` if the rules deferred the decision.
    fn run_match(&self, item: &Item, table: &CandidateTable, now: u64) -> Option<(Option<usize>, Explanation)> {
        let batch = self.batch_of(&[item], now);
        let decided = self.departments[item.department].rules.match_agents(&batch, table);
        if decided.source == RuleSource::Deferred {
            return None;
        }
        let n = table.len();
        let ranking: Vec<usize> = decided.value.ranking().into_iter().filter(|&i| i < n).collect();
        let best = ranking.first().copied();
        let score = match (&decided.value, best) {
            (MatchResult::Scores(scores), Some(b)) => scores.get(b).copied(),
            _ => None,
        };
        let explanation = Explanation {
            matched_by: Some(decided.source),
            score,
            candidates_considered: n,
            candidates_qualified: ranking.len(),
            ..Default::default()
        };
        Some((best, explanation))
    }

    /// The rules deferred `call`: remember it for [`Router::take_deferred`] and
    /// arm the timer that asks again if nobody answers.
    fn defer(&mut self, call: DeferredCall, retry: Timer, now: u64) {
        self.deferred.push(call);
        self.arm(now.saturating_add(DEFERRED_RETRY_MS), retry);
    }

    /// Try to offer a waiting item to a free qualified agent.
    fn dispatch_item(&mut self, id: u64) {
        let now = self.now_ms();
        let Some(item) = self.items.get(&id) else {
            return;
        };
        if item.status != ItemStatus::Queued {
            return;
        }
        let mut candidates: Vec<usize> = self.queues[item.queue]
            .agents
            .iter()
            .copied()
            .filter(|&a| self.agents[a].can_take(item.channel) && !item.refused_by(a, now))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let table = self.candidate_table(item, &mut candidates, now);
        let Some((best, explanation)) = self.run_match(item, &table, now) else {
            self.defer(DeferredCall::Dispatch { item: ItemId(id) }, Timer::Redispatch { item: id }, now);
            return;
        };
        match best {
            Some(index) => self.offer(id, candidates[index], explanation),
            None => {
                if let Some(item) = self.items.get_mut(&id) {
                    merge_match(&mut item.explanation, explanation, None);
                }
            }
        }
    }

    /// Offer waiting work to agent `a` while they have room and something fits.
    fn fill_agent(&mut self, a: usize) {
        let now = self.now_ms();
        loop {
            if self.agents[a].presence != Presence::Available {
                return;
            }
            let mut picks: Vec<(bool, Reverse<i32>, u64, u64)> = Vec::new();
            for &q in &self.agents_queues(a) {
                let mut looked = 0;
                for &(priority, created, id) in &self.queues[q].waiting {
                    looked += 1;
                    if looked > SCAN_LIMIT {
                        break;
                    }
                    let Some(item) = self.items.get(&id) else {
                        continue;
                    };
                    if self.agents[a].can_take(item.channel) && !item.refused_by(a, now) {
                        picks.push((item.channel == Channel::Case, priority, created, id));
                    }
                }
            }
            if picks.is_empty() {
                return;
            }
            // Live and digital work before cases (cases fill idle time), then
            // priority, then age.
            picks.sort_unstable();
            let mut offered = false;
            for &(_, _, _, id) in picks.iter().take(SCAN_LIMIT) {
                let Some(item) = self.items.get(&id) else {
                    continue;
                };
                let mut one = [a];
                let table = self.candidate_table(item, &mut one, now);
                let Some((best, explanation)) = self.run_match(item, &table, now) else {
                    let agent = AgentId(a as u64 + 1);
                    self.defer(DeferredCall::Fill { agent }, Timer::Redispatch { item: id }, now);
                    return;
                };
                if best.is_some() {
                    self.offer(id, a, explanation);
                    offered = true;
                    break;
                }
            }
            if !offered {
                return;
            }
        }
    }

    fn agents_queues(&self, a: usize) -> Vec<usize> {
        self.queues.iter().enumerate().filter(|(_, q)| q.agents.binary_search(&a).is_ok()).map(|(i, _)| i).collect()
    }

    fn offer(&mut self, id: u64, a: usize, explanation: Explanation) {
        let now = self.now_ms();
        let name = self.agents[a].spec.name.clone();
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        let key = item.key();
        self.queues[item.queue].waiting.remove(&key);
        self.queues[item.queue].offered += 1;
        item.status = ItemStatus::Offered;
        item.agent = Some(a);
        item.offer_seq += 1;
        merge_match(&mut item.explanation, explanation, Some(name.clone()));
        let seq = item.offer_seq;
        let channel = item.channel;
        let timeout = self.departments[item.department].spec.offer_timeout_ms;
        let agent = &mut self.agents[a];
        agent.load[channel.index()] += 1;
        agent.held.push(id);
        self.arm(now.saturating_add(timeout), Timer::OfferTimeout { item: id, seq });
        self.case_step(id, || format!("offered to {name}"));
        self.emit(Event::Offered { at_ms: now, item: ItemId(id), agent: AgentId(a as u64 + 1) });
    }

    /// The agent accepts the item offered to them: it is answered now.
    pub fn accept_offer(&mut self, item: ItemId) -> Result<()> {
        let now = self.now_ms();
        let it = self.items.get_mut(&item.0).ok_or_else(|| unknown_item(item))?;
        if it.status != ItemStatus::Offered {
            return Err(Error::Invalid(format!("{item} has no pending offer")));
        }
        let Some(a) = it.agent else {
            return Err(Error::Invalid(format!("{item} has no pending offer")));
        };
        it.status = ItemStatus::Active;
        let first = it.answered_ms.is_none();
        it.answered_ms.get_or_insert(now);
        it.work_started_ms = now;
        let (queue, created_ms, channel) = (it.queue, it.created_ms, it.channel);
        self.queues[queue].offered -= 1;
        self.agents[a].busy += 1;
        let agent = AgentId(a as u64 + 1);
        let name = self.agents[a].spec.name.clone();
        self.case_step(item.0, || format!("answered by {name}"));
        self.emit(Event::Accepted { at_ms: now, item, agent, queue, created_ms, first });
        if channel != Channel::Case {
            // Cases yield to live and digital work.
            let held = self.agents[a].held.clone();
            for other in held {
                let Some(o) = self.items.get_mut(&other) else {
                    continue;
                };
                if o.channel == Channel::Case && o.status == ItemStatus::Active {
                    o.status = ItemStatus::Paused;
                    o.worked_ms += now.saturating_sub(o.work_started_ms);
                    self.emit(Event::Paused { at_ms: now, item: ItemId(other), agent });
                }
            }
        }
        self.update_activity(a);
        Ok(())
    }

    /// The agent rejects the item offered to them: it goes back to its queue with
    /// its age kept and is not offered to the same agent again at once.
    pub fn reject_offer(&mut self, item: ItemId) -> Result<()> {
        let it = self.items.get(&item.0).ok_or_else(|| unknown_item(item))?;
        if it.status != ItemStatus::Offered {
            return Err(Error::Invalid(format!("{item} has no pending offer")));
        }
        self.end_offer(item.0, "rejected");
        Ok(())
    }

    /// End the pending offer of `id`: back to the queue (age kept) and, unless the
    /// offer was cancelled, block that agent for a while. A timed-out offer also
    /// sets the agent away (they are evidently not at their desk).
    fn end_offer(&mut self, id: u64, how: &'static str) {
        let now = self.now_ms();
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        let Some(a) = item.agent.take() else { return };
        let block = self.departments[item.department].spec.reoffer_block_ms;
        if how != "cancelled" {
            item.refused.retain(|&(_, until)| until > now);
            item.refused.push((a, now.saturating_add(block)));
        }
        let channel = item.channel;
        self.queues[item.queue].offered -= 1;
        let agent = &mut self.agents[a];
        agent.load[channel.index()] -= 1;
        agent.held.retain(|&h| h != id);
        if how == "timed-out" {
            agent.presence = Presence::Away;
        }
        self.enqueue(id);
        if how != "cancelled" {
            self.arm(now.saturating_add(block), Timer::Redispatch { item: id });
        }
        let name = self.agents[a].spec.name.clone();
        self.case_step(id, || format!("offer to {name} {how}"));
        self.emit(Event::OfferEnded { at_ms: now, item: ItemId(id), agent: AgentId(a as u64 + 1), how });
        self.update_activity(a);
        self.dispatch_item(id);
        self.fill_agent(a);
    }

    /// The agent finished handling the item. With after-work time configured for
    /// the agent, the slot stays taken until it ends. A hand-off creates the
    /// follow-up item in its department, in the same case.
    pub fn complete(&mut self, item: ItemId, completion: Completion) -> Result<Option<ItemId>> {
        let now = self.now_ms();
        let it = self.items.get_mut(&item.0).ok_or_else(|| unknown_item(item))?;
        if !matches!(it.status, ItemStatus::Active | ItemStatus::Paused) {
            return Err(Error::Invalid(format!("{item} is not being handled")));
        }
        let Some(a) = it.agent else {
            return Err(Error::Invalid(format!("{item} is not being handled")));
        };
        if it.status == ItemStatus::Active {
            it.worked_ms += now.saturating_sub(it.work_started_ms);
        }
        it.resolved = completion.resolved;
        let wrap_up = self.agents[a].spec.wrap_up_ms;
        let resolved = completion.resolved;
        self.case_step(item.0, || format!("completed ({})", if resolved { "resolved" } else { "not resolved" }));
        let mut follow_up = None;
        if let Some(handoff) = completion.handoff {
            let it = &self.items[&item.0];
            let next = self.handoff_item(item.0, handoff.item).unwrap_or_default();
            if it.case.is_none() {
                // Open a case for the hand-off, with this item as its first step.
                let case = next.case.clone().unwrap_or_default();
                let department = it.department;
                let (created, customer) = (it.created_ms, it.customer.clone());
                let record = CaseRecord {
                    customer,
                    opened_ms: created,
                    closed_ms: None,
                    open_items: 1,
                    departments: vec![department],
                    history: VecDeque::from([CaseStep {
                        at_ms: created,
                        item,
                        department: self.departments[department].spec.name.clone(),
                        what: "created".into(),
                    }]),
                    history_dropped: 0,
                };
                self.cases.insert(case.clone(), record);
                if let Some(it) = self.items.get_mut(&item.0) {
                    it.case = Some(case);
                }
            }
            let case = next.case.clone().unwrap_or_default();
            let to_department = next.department.clone();
            let to = self.create_as(handoff.id, next, Some(item.0));
            self.case_step(item.0, || format!("handed off to `{to_department}` as {to}"));
            self.emit(Event::HandedOff { at_ms: now, from: item, to, case });
            follow_up = Some(to);
        }
        if let Some(it) = self.items.get_mut(&item.0) {
            if wrap_up > 0 {
                it.status = ItemStatus::WrapUp;
                it.wrap_up_ms = wrap_up;
                self.arm(now.saturating_add(wrap_up), Timer::WrapUpEnd { item: item.0 });
            } else {
                self.finish(item.0);
            }
        }
        Ok(follow_up)
    }

    /// Free the slot of a handled item and record it.
    fn finish(&mut self, id: u64) {
        let now = self.now_ms();
        let Some(item) = self.items.remove(&id) else {
            return;
        };
        let Some(a) = item.agent else { return };
        let agent = &mut self.agents[a];
        agent.load[item.channel.index()] -= 1;
        agent.held.retain(|&h| h != id);
        agent.busy = agent.busy.saturating_sub(1);
        if let Some(customer) = &item.customer
            && let Some(record) = self.customers.get_mut(customer)
            && record.last_item == id
        {
            record.last_seen_ms = now;
            self.customer_expiry.push_back((now, customer.clone()));
        }
        self.emit(Event::Completed {
            at_ms: now,
            item: ItemId(id),
            agent: AgentId(a as u64 + 1),
            queue: item.queue,
            created_ms: item.created_ms,
            handle_ms: item.worked_ms + item.wrap_up_ms,
            due_ms: item.due_ms,
            resolved: item.resolved,
        });
        self.case_item_ended(item.case.clone());
        // Paused cases resume once the live and digital work is done.
        if self.agents[a].live_load() == 0 {
            let held = self.agents[a].held.clone();
            for other in held {
                let Some(o) = self.items.get_mut(&other) else {
                    continue;
                };
                if o.status == ItemStatus::Paused {
                    o.status = ItemStatus::Active;
                    o.work_started_ms = now;
                    self.emit(Event::Resumed { at_ms: now, item: ItemId(other), agent: AgentId(a as u64 + 1) });
                }
            }
        }
        self.update_activity(a);
        self.fill_agent(a);
    }

    /// The customer withdrew a waiting or offered item (abandoned); it is counted,
    /// and an offer of it is cancelled. An item already answered cannot be
    /// withdrawn (complete it instead).
    pub fn withdraw(&mut self, item: ItemId) -> Result<()> {
        let now = self.now_ms();
        let it = self.items.get(&item.0).ok_or_else(|| unknown_item(item))?;
        let mut freed = None;
        match it.status {
            ItemStatus::Queued => {}
            // Free the agent's slot without putting the item back in its queue:
            // ending the offer the usual way re-queues and re-offers the item,
            // and the slot it then took was never given back.
            ItemStatus::Offered => freed = self.release_offer(item.0),
            ItemStatus::Exception => {
                if let Some(position) = self.exceptions.iter().position(|e| e.item == item) {
                    self.exceptions.remove(position);
                }
            }
            _ => {
                return Err(Error::Invalid(format!("{item} is already answered; complete it instead")));
            }
        }
        self.case_step(item.0, || "withdrawn by the customer".into());
        let Some(it) = self.items.remove(&item.0) else {
            return Ok(());
        };
        if it.status == ItemStatus::Queued {
            self.queues[it.queue].waiting.remove(&it.key());
        }
        if it.status != ItemStatus::Exception {
            self.emit(Event::Abandoned { at_ms: now, item, queue: it.queue, created_ms: it.created_ms });
        }
        self.case_item_ended(it.case);
        if let Some(a) = freed {
            self.fill_agent(a);
        }
        Ok(())
    }

    /// Cancel the pending offer of item `id` (the customer left): the agent's slot
    /// is free again; the item stays where it is. Returns the agent.
    fn release_offer(&mut self, id: u64) -> Option<usize> {
        let now = self.now_ms();
        let item = self.items.get_mut(&id)?;
        let a = item.agent.take()?;
        let channel = item.channel;
        self.queues[item.queue].offered -= 1;
        let agent = &mut self.agents[a];
        agent.load[channel.index()] -= 1;
        agent.held.retain(|&h| h != id);
        let name = agent.spec.name.clone();
        self.case_step(id, || format!("offer to {name} cancelled"));
        self.emit(Event::OfferEnded { at_ms: now, item: ItemId(id), agent: AgentId(a as u64 + 1), how: "cancelled" });
        self.update_activity(a);
        Some(a)
    }

    // ----- deferred decisions ------------------------------------------------------------

    /// The decisions deferred since the last call (see [`RuleSource::Deferred`]),
    /// in the order the router asked for them.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use switchyard_host::clock::VirtualClock;
    /// # use switchyard_host::router::{Router, RouterOptions};
    /// let mut router = Router::new(vec![], vec![], Arc::new(VirtualClock::new(0)), Default::default(), RouterOptions::default())?;
    /// assert!(router.take_deferred().is_empty()); // built-in rules never defer
    /// # Ok::<(), switchyard_host::error::Error>(())
    /// ```
    pub fn take_deferred(&mut self) -> Vec<DeferredCall> {
        std::mem::take(&mut self.deferred)
    }

    /// Take deferred decisions again, now that the rules can answer them: each
    /// call is redone against the current state (an item no longer waiting, or
    /// an escalation overtaken by a later one, is skipped). A rule may defer
    /// again (the state changed since it was asked); those calls are in the
    /// next [`Router::take_deferred`].
    pub fn decide_deferred(&mut self, calls: &[DeferredCall]) {
        let mut escalations: Vec<u64> = Vec::new();
        for call in calls {
            match *call {
                DeferredCall::Dispatch { item } => self.dispatch_item(item.0),
                DeferredCall::Fill { agent } => {
                    if let Ok(a) = self.agent_ix(agent) {
                        self.fill_agent(a);
                    }
                }
                DeferredCall::Escalate { item, generation } => {
                    let due = self
                        .items
                        .get(&item.0)
                        .is_some_and(|i| i.status == ItemStatus::Queued && i.escalation_generation == generation);
                    if due && !escalations.contains(&item.0) {
                        escalations.push(item.0);
                    }
                }
            }
        }
        if !escalations.is_empty() {
            self.run_escalations(escalations);
        }
    }

    // ----- escalation ------------------------------------------------------------------

    fn run_escalations(&mut self, mut ids: Vec<u64>) {
        let now = self.now_ms();
        ids.sort_unstable_by_key(|id| (self.items.get(id).map(|i| i.department), *id));
        let mut start = 0;
        while start < ids.len() {
            let department = self.items.get(&ids[start]).map(|i| i.department);
            let mut end = start + 1;
            while end < ids.len() && self.items.get(&ids[end]).map(|i| i.department) == department {
                end += 1;
            }
            let group: Vec<u64> = ids[start..end].to_vec();
            start = end;
            let Some(d) = department else { continue };
            let items: Vec<&Item> = group.iter().filter_map(|id| self.items.get(id)).collect();
            let batch = self.batch_of(&items, now);
            let decided = self.departments[d].rules.escalate(&batch);
            if decided.source == RuleSource::Deferred {
                for id in group {
                    if let Some(generation) = self.items.get(&id).map(|i| i.escalation_generation) {
                        let item = ItemId(id);
                        self.defer(
                            DeferredCall::Escalate { item, generation },
                            Timer::Escalate { item: id, generation },
                            now,
                        );
                    }
                }
                continue;
            }
            let answers = decided.value;
            for (i, id) in group.iter().enumerate() {
                let escalation = answers.get(i).cloned().unwrap_or_default();
                self.apply_escalation(*id, escalation, &decided.source, now);
            }
        }
    }

    fn apply_escalation(&mut self, id: u64, escalation: Escalation, source: &RuleSource, now: u64) {
        let mut notes: Vec<String> = Vec::new();
        for action in escalation.actions {
            let Some(item) = self.items.get_mut(&id) else {
                return;
            };
            if item.status != ItemStatus::Queued {
                break;
            }
            match action {
                EscalationAction::RaiseBy(n) => {
                    self.reprioritise(id, |p| p.saturating_add(n));
                    notes.push(format!("raise priority by {n}"));
                }
                EscalationAction::RaiseTo(n) => {
                    self.reprioritise(id, |p| p.max(n));
                    notes.push(format!("raise priority to {n}"));
                }
                EscalationAction::RelaxLevels(n) => {
                    for r in &mut item.skills {
                        r.level = r.level.saturating_sub(n).max(1);
                    }
                    notes.push(format!("relax skill levels by {n}"));
                }
                EscalationAction::DropSkill(skill) => {
                    item.skills.retain(|r| r.skill != skill);
                    notes.push(format!("drop skill `{}`", self.skill_name(skill.0)));
                }
                EscalationAction::MoveTo(queue) => match self.queue_by_catalog.get(&queue.0).copied() {
                    Some(to) => {
                        notes.push(format!("move to queue `{}`", self.queues[to].spec.name));
                        self.move_queue(id, to, now);
                    }
                    None => notes.push(format!("ignored: move to unknown queue id {}", queue.0)),
                },
                EscalationAction::Alert(message) => {
                    let message = truncate_to(message, self.options.limits.alert_bytes);
                    let alert = Alert {
                        id: self.next_alert,
                        at_ms: now,
                        item: ItemId(id),
                        department: self.departments[item.department].spec.name.clone(),
                        message,
                        acknowledged: None,
                    };
                    self.next_alert += 1;
                    notes.push(format!("alert: {}", alert.message));
                    self.alerts.push_back(alert.clone());
                    while self.alerts.len() > self.options.retention.alerts.max(1) {
                        self.alerts.pop_front();
                        self.stats.alerts_dropped += 1;
                    }
                    self.emit(Event::Alert(alert));
                }
            }
        }
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        item.escalation_generation += 1;
        let generation = item.escalation_generation;
        if !notes.is_empty() {
            item.explanation.priority = item.priority;
            let explanation = &mut item.explanation;
            explanation.escalations.push(EscalationNote { at_ms: now, source: source.clone(), actions: notes.clone() });
            let keep = self.options.retention.notes_per_item.max(1);
            if explanation.escalations.len() > keep {
                let excess = explanation.escalations.len() - keep;
                explanation.escalations.drain(..excess);
                explanation.escalations_dropped += excess as u64;
                self.stats.notes_dropped += excess as u64;
            }
            let text = notes.join(", ");
            self.case_step(id, || format!("escalated: {text}"));
            self.emit(Event::Escalated { at_ms: now, item: ItemId(id), actions: notes.clone() });
        }
        if let Some(ms) = escalation.recheck_in_ms {
            // At least a tick, at most the cap, and only so many times per item.
            let floor = self.options.tick_floor_ms.max(1);
            let ms = ms.max(floor).min(self.options.limits.max_recheck_ms.max(floor));
            let allowed = self.options.limits.rechecks_per_item;
            match self.items.get_mut(&id) {
                Some(item) if item.rechecks < allowed => {
                    item.rechecks += 1;
                    self.arm(now.saturating_add(ms), Timer::Escalate { item: id, generation });
                }
                _ => self.stats.rechecks_refused += 1,
            }
        }
        if !notes.is_empty() {
            self.dispatch_item(id);
        }
    }

    fn reprioritise(&mut self, id: u64, f: impl FnOnce(i32) -> i32) {
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        let queued = item.status == ItemStatus::Queued;
        if queued {
            self.queues[item.queue].waiting.remove(&item.key());
        }
        item.priority = f(item.priority);
        if queued {
            self.queues[item.queue].waiting.insert(item.key());
        }
    }

    /// Supervisor alerts raised by escalation rules, oldest first, with their
    /// acknowledgement (the most recent [`Retention::alerts`]).
    pub fn alerts(&self) -> &VecDeque<Alert> {
        &self.alerts
    }

    /// Alert `id` is acknowledged by `by` now. Acknowledging again keeps the
    /// first acknowledgement. An alert past retention (or never raised) is
    /// [`Error::Unknown`].
    pub fn acknowledge_alert(&mut self, id: u64, by: &str) -> Result<&Alert> {
        let now = self.now_ms();
        let by = truncate_to(by.to_owned(), self.options.limits.name_bytes);
        let position = self
            .alerts
            .binary_search_by_key(&id, |a| a.id)
            .map_err(|_| Error::Unknown { kind: "alert", name: id.to_string() })?;
        let alert = &mut self.alerts[position];
        alert.acknowledged.get_or_insert(Acknowledgement { by, at_ms: now });
        Ok(&self.alerts[position])
    }

    /// What retention and limits have dropped or refused so far.
    pub fn retention_stats(&self) -> RetentionStats {
        self.stats
    }

    /// How many records of each kind the router holds now (for a gauge).
    pub fn record_counts(&self) -> RecordCounts {
        RecordCounts {
            items: self.items.len(),
            customers: self.customers.len(),
            cases: self.cases.len(),
            alerts: self.alerts.len(),
            exceptions: self.exceptions.len(),
            timers: self.timers.len(),
            interval_entries: self.metrics.interval_entries(),
        }
    }

    /// The options the router runs with.
    pub fn options(&self) -> &RouterOptions {
        &self.options
    }

    // ----- reading ---------------------------------------------------------------------

    /// What `queue` holds now.
    pub fn queue_snapshot(&self, queue: &str) -> Result<QueueSnapshot> {
        Ok(self.snapshot_of(self.queue(queue)?))
    }

    fn snapshot_of(&self, q: usize) -> QueueSnapshot {
        let now = self.now_ms();
        let queue = &self.queues[q];
        let mut snapshot = QueueSnapshot { waiting: queue.waiting.len(), offered: queue.offered, ..Default::default() };
        let mut total = 0u128;
        for &(_, created, id) in &queue.waiting {
            let age = now.saturating_sub(created);
            snapshot.oldest_wait_ms = snapshot.oldest_wait_ms.max(age);
            total += age as u128;
            if self.items.get(&id).and_then(|i| i.due_ms).is_some_and(|d| d < now) {
                snapshot.overdue += 1;
            }
        }
        if snapshot.waiting > 0 {
            snapshot.mean_wait_ms = total as f64 / snapshot.waiting as f64;
        }
        snapshot
    }

    /// Number of items waiting in each queue, in queue order (cheap; for sampling).
    pub fn queue_lengths(&self) -> Vec<usize> {
        self.queues.iter().map(|q| q.waiting.len()).collect()
    }

    /// Queue names in index order (the `queue` index of [`Event`]s).
    pub fn queue_names(&self) -> Vec<String> {
        self.queues.iter().map(|q| q.spec.name.clone()).collect()
    }

    /// Queue specs in index order.
    pub fn queue_specs(&self) -> Vec<QueueSpec> {
        self.queues.iter().map(|q| q.spec.clone()).collect()
    }

    /// Department names in order.
    pub fn department_names(&self) -> Vec<String> {
        self.departments.iter().map(|d| d.spec.name.clone()).collect()
    }

    /// Statistics so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Statistics, mutable (to close the books at the end of a run).
    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }

    /// An item's status.
    pub fn item_status(&self, item: ItemId) -> Option<ItemStatus> {
        self.items.get(&item.0).map(|i| i.status)
    }

    /// The agent an item is offered to or held by (its desktop shows it).
    pub fn item_holder(&self, item: ItemId) -> Option<AgentId> {
        let a = self.items.get(&item.0)?.agent?;
        Some(AgentId(a as u64 + 1))
    }

    /// Where an item is: status, queue name, priority, required skills (name, level).
    pub fn item_view(&self, item: ItemId) -> Option<DesktopItem> {
        self.items.get(&item.0).map(|i| self.desktop_item(i))
    }

    /// An item's required skills by name and level.
    pub fn item_skills(&self, item: ItemId) -> Option<Vec<(String, u8)>> {
        self.items.get(&item.0).map(|i| i.skills.iter().map(|r| (self.skill_name(r.skill.0), r.level)).collect())
    }

    fn desktop_item(&self, item: &Item) -> DesktopItem {
        let now = self.now_ms();
        let end = item.answered_ms.unwrap_or(now);
        DesktopItem {
            id: ItemId(item.id),
            status: item.status,
            channel: item.channel,
            department: self.departments[item.department].spec.name.clone(),
            queue: self.queues[item.queue].spec.name.clone(),
            priority: item.priority,
            wait_ms: end.saturating_sub(item.created_ms),
            attributes: item.attributes.iter().map(|(k, v)| (self.attribute_name(*k), v.clone())).collect(),
            customer: item.customer.clone(),
            case: item.case.clone(),
            explanation: item.explanation.clone(),
        }
    }

    /// An agent's desktop: state, and the items offered to or held by them with
    /// attributes, wait, priority and the explanation of the routing.
    pub fn desktop(&self, agent: AgentId) -> Result<Desktop> {
        let a = self.agent_ix(agent)?;
        let items =
            self.agents[a].held.iter().filter_map(|id| self.items.get(id)).map(|i| self.desktop_item(i)).collect();
        Ok(Desktop { agent, name: self.agents[a].spec.name.clone(), state: self.state_of(a), items })
    }

    /// A case's life cycle across departments.
    pub fn case(&self, case: &str) -> Option<CaseView> {
        let record = self.cases.get(case)?;
        Some(CaseView {
            case: case.to_owned(),
            customer: record.customer.clone(),
            opened_ms: record.opened_ms,
            closed_ms: record.closed_ms,
            departments: record.departments.iter().map(|&d| self.departments[d].spec.name.clone()).collect(),
            history: record.history.iter().cloned().collect(),
            history_dropped: record.history_dropped,
        })
    }

    /// Items currently waiting in `queue`, best first.
    pub fn waiting(&self, queue: &str) -> Result<Vec<ItemId>> {
        let q = self.queue(queue)?;
        Ok(self.queues[q].waiting.iter().map(|&(_, _, id)| ItemId(id)).collect())
    }

    /// Number of items in the system (waiting, offered, in hand, exceptions).
    pub fn open_items(&self) -> usize {
        self.items.len()
    }
}

fn merge_match(target: &mut Explanation, found: Explanation, agent: Option<String>) {
    target.matched_by = found.matched_by;
    target.score = found.score;
    target.candidates_considered = found.candidates_considered;
    target.candidates_qualified = found.candidates_qualified;
    target.agent = agent;
}

fn unknown_item(item: ItemId) -> Error {
    Error::Unknown { kind: "item", name: item.0.to_string() }
}
