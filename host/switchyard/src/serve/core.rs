//! The daemon's state behind one lock: the router, its clock, the journal, the
//! journal's record of the department plugins ([`super::plugins::PluginLedger`])
//! and finished items. The plugins themselves live in the reload manager
//! ([`super::plugins`]), outside this lock.
//!
//! Every mutation follows the same path: validate → take the time → hand the
//! input to the journal's group commit → apply it to the router → log the
//! decisions. The request is acknowledged only once its record is synced, and it
//! waits for that *after* releasing this lock (see [`super::journal::GroupCommit`]
//! and `with_core` in [`super::api`]). Recovery runs the very same `apply` over
//! the journal's records at their recorded times, so live operation and replay
//! cannot drift apart.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::error::{Error, Result};
use switchyard_core::clock::{Clock, SystemClock, VirtualClock};
use switchyard_core::router::{
    AgentId, AgentSpec, Completion, DeferredCall, Event, HandOff, ItemId, ItemStatus, NewWorkItem, Presence, Router,
};
use switchyard_core::rules::RuleSource;
use switchyard_runtime::runtime::Runtime;

use super::auth::Auth;
use super::journal::{AgentRecord, DecideCall, GroupCommit, ItemRecord, Op, Record};
use super::plugins::PluginLedger;
use super::snapshot::{self, DaemonSnapshot, DaemonState, FinishedEntry};
use super::tape::{Answer, Question, Tape};

/// The offer outcomes counted in [`Core::offers`].
const OFFER_OUTCOMES: [&str; 5] = ["made", "accepted", "rejected", "timed-out", "cancelled"];

/// An item that has left the router (completed or withdrawn), for `GET /v1/items/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    /// Item id.
    pub id: u64,
    /// `completed` or `withdrawn`.
    pub status: &'static str,
    /// Queue it finished in.
    pub queue: String,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// Resolved at first contact (completed items).
    pub resolved: Option<bool>,
    /// Handle time, ms (completed items).
    pub handle_ms: Option<u64>,
}

/// The most recent finished items, at most `cap` of them: a daemon that runs
/// for months must not keep every item it ever routed in memory.
#[derive(Debug)]
pub struct FinishedItems {
    by_id: HashMap<u64, Finished>,
    /// Ids in the order they finished, oldest first.
    order: VecDeque<u64>,
    cap: usize,
}

impl FinishedItems {
    /// Keep at most `cap` finished items.
    pub fn new(cap: usize) -> Self {
        FinishedItems { by_id: HashMap::new(), order: VecDeque::new(), cap }
    }

    /// Remember `item`, forgetting the oldest beyond the cap.
    pub fn insert(&mut self, item: Finished) {
        if self.cap == 0 {
            return;
        }
        let id = item.id;
        if self.by_id.insert(id, item).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > self.cap {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
    }

    /// A finished item still kept.
    pub fn get(&self, id: &u64) -> Option<&Finished> {
        self.by_id.get(id)
    }

    /// The most kept.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The kept items, oldest first.
    pub fn oldest_first(&self) -> impl Iterator<Item = &Finished> {
        self.order.iter().filter_map(|id| self.by_id.get(id))
    }
}

/// A request that cannot be applied: status class and the field at fault.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// 404: the thing named does not exist.
    NotFound(String),
    /// 422: a field's value is not acceptable.
    Invalid { field: String, message: String },
    /// 409: not allowed in the current state.
    Conflict(String),
    /// 500/503: the journal failed; nothing was applied.
    Internal(String),
    /// 503: the journal stopped taking writes earlier (that failure was
    /// logged once, when it happened); nothing was applied.
    Stopped(String),
}

impl From<switchyard_core::Error> for Refusal {
    fn from(e: switchyard_core::Error) -> Self {
        match e {
            switchyard_core::Error::Unknown { .. } => Refusal::NotFound(e.to_string()),
            switchyard_core::Error::Invalid(m) => Refusal::Conflict(m),
            other => Refusal::Internal(other.to_string()),
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        match e {
            Error::Routing(e) => Refusal::from(e),
            Error::Unknown { .. } => Refusal::NotFound(e.to_string()),
            Error::Invalid(m) => Refusal::Conflict(m),
            other => Refusal::Internal(other.to_string()),
        }
    }
}

/// The state. See the module docs.
pub(crate) struct Core {
    pub(crate) router: Router,
    pub(crate) clock: VirtualClock,
    pub(crate) journal: Arc<GroupCommit>,
    /// Agents' tokens live here (the auth layer reads them without this lock);
    /// journaled token changes are applied to it.
    pub(crate) auth: Arc<Auth>,
    /// Ticket of the last record this core handed to the journal: a request
    /// waits for it to be durable before it is answered.
    pub(crate) last_ticket: u64,
    pub(crate) runtime: Runtime,
    /// Which plugin generation is active, in shadow and kept per department,
    /// as the journal says (replay applies plugin records here only).
    pub(crate) plugins: PluginLedger,
    pub(crate) finished: FinishedItems,
    /// Set while replaying: decisions are logged at debug level only.
    pub(crate) replaying: bool,
    /// The rule decisions of the input being applied (see [`super::tape`]).
    pub(crate) tape: Arc<Tape>,
    /// Records whose replay did not line up with their recorded decisions.
    pub(crate) diverged: u64,
    /// Each department's rules below the tape (budget, recording, reload
    /// manager): what is asked outside the lock (a new item's `prioritise`,
    /// deferred `match-agents` and `escalate`).
    pub(crate) direct_rules: BTreeMap<String, Arc<dyn switchyard_core::rules::RuleSet>>,
    /// Decisions deferred by the inputs applied since [`Core::take_pending`].
    pub(crate) pending: Pending,
    /// Records between snapshots (`snapshot_every`).
    pub(crate) snapshot_every: u64,
    /// `appended` when the last snapshot was taken.
    pub(crate) snapshot_appended: u64,
    /// Records replayed at start after the snapshot it restored (0 once a
    /// snapshot has been taken since): they count towards the next snapshot.
    pub(crate) tail_replayed: u64,
    /// Records replayed at start (after the snapshot, if one was restored).
    pub(crate) replayed_at_start: u64,
    /// The last snapshot: (sequence number covered, bytes, ms the state was
    /// locked to copy it), for `/metrics`.
    pub(crate) last_snapshot: Option<(u64, usize, u64)>,
    /// Records replayed at start.
    pub(crate) recovered: u64,
    /// Sequence number of the last record replayed or followed (a standby's
    /// place in the leader's journal).
    pub(crate) applied: u64,
    /// Records appended since start.
    pub(crate) appended: u64,
    /// Offers by outcome (`made`, `accepted`, `rejected`, `timed-out`, `cancelled`).
    pub(crate) offers: BTreeMap<&'static str, u64>,
    /// Each department's rule time budget.
    pub(crate) budgets: BTreeMap<String, Arc<super::budget::Budget>>,
    /// Customers' recent contacts, for the console's desktop.
    pub(crate) contacts: super::console::ContactBook,
    /// The traffic log (see [`super::traffic`]); `None` when `[traffic]` is
    /// disabled. Lines are handed over here, written by its own thread.
    pub(crate) traffic: Option<std::sync::Arc<super::traffic::TrafficLog>>,
}

impl Core {
    /// The time for the next input: the wall clock, never behind the router's.
    pub(crate) fn now(&self) -> u64 {
        SystemClock.now_ms().max(self.clock.now_ms())
    }

    /// Apply `op` now, then hand it to the journal with the rule decisions it
    /// took. An op refused without deciding anything changed nothing and is not
    /// journaled (so a client repeating bad requests does not grow the journal).
    /// The caller waits for [`Core::last_ticket`] to be durable before answering.
    pub(crate) fn submit(&mut self, op: Op) -> std::result::Result<Applied, Refusal> {
        // Nothing is applied once the journal has failed: the state in memory
        // must not run further ahead of the disk.
        if let Some(why) = self.journal.failure() {
            return Err(Refusal::Stopped(why));
        }
        let at_ms = self.now();
        self.tape.record();
        let result = self.apply(at_ms, &op);
        self.pending.calls.extend(self.router.take_deferred());
        self.pending.questions.extend(self.tape.take_wanted());
        let outcomes = self.tape.take();
        if result.is_err() && outcomes.is_empty() {
            return result;
        }
        let record = Record { outcomes, ..Record::new(at_ms, op) };
        self.last_ticket = self.journal.enqueue(record).map_err(Refusal::Internal)?;
        self.appended += 1;
        result
    }

    /// Replay the journal's records after sequence number `after` into the
    /// router, handing each record's recorded decisions back instead of calling
    /// the rules. Returns the number of records replayed.
    pub(crate) fn recover(&mut self, after: u64) -> Result<u64> {
        self.applied = after;
        self.replay(false)
    }

    /// A standby: apply the records the leader committed after the last one
    /// applied, as [`Core::recover`] does. A gap (the records were compacted
    /// away behind a snapshot while this node lagged) is an error: the state
    /// must be rebuilt from the snapshot.
    pub(crate) fn follow(&mut self) -> Result<u64> {
        self.replay(true)
    }

    fn replay(&mut self, contiguous: bool) -> Result<u64> {
        let journal = self.journal.clone();
        self.replaying = true;
        let mut replayed = 0;
        let result = journal.replay(self.applied, &mut |seq, record| {
            if contiguous && seq != self.applied + 1 {
                return Err(Error::Invalid(format!(
                    "the journal's records {}-{} are gone (compacted behind a snapshot) before this node applied them",
                    self.applied + 1,
                    seq - 1
                )));
            }
            self.tape.play(record.outcomes);
            // A record that failed live fails the same way now; nothing to do.
            let _ = self.apply(record.at_ms, &record.op);
            // Deferred live, decided by a later record (or, if the daemon
            // stopped in between, by the router's retry timer).
            self.router.take_deferred();
            if let Err(why) = self.tape.finish() {
                self.diverged += 1;
                tracing::warn!(record = seq, reason = %why, "replay did not line up with the recorded decisions; the built-in rule decided instead");
            }
            self.applied = seq;
            replayed += 1;
            Ok(())
        });
        self.replaying = false;
        self.recovered += replayed;
        result.map(|()| replayed)
    }

    /// The decisions deferred since the last call, with the rules to ask
    /// them of (outside the lock; see [`settle`]).
    pub(crate) fn take_pending(&mut self) -> Pending {
        std::mem::take(&mut self.pending)
    }

    /// Apply answers asked outside the lock to the calls that deferred them
    /// (one [`Op::Decide`] record).
    fn decide(&mut self, calls: Vec<DeferredCall>, answers: Vec<Answer>) -> std::result::Result<(), Refusal> {
        let calls = calls
            .into_iter()
            .filter_map(|call| {
                Some(match call {
                    DeferredCall::Dispatch { item } => DecideCall::Dispatch { item: item.0 },
                    DeferredCall::Fill { agent } => DecideCall::Fill { agent: self.router.agent_name(agent)? },
                    DeferredCall::Escalate { item, generation } => DecideCall::Escalate { item: item.0, generation },
                })
            })
            .collect::<Vec<_>>();
        if calls.is_empty() {
            // Only agents that have gone since: nothing to redo, nothing to journal.
            return Ok(());
        }
        self.tape.preload_answers(answers);
        let result = self.submit(Op::Decide { calls });
        self.tape.clear_answers();
        result.map(|_| ())
    }

    /// Reserve an id for `item` and, if it will reach its department's rules,
    /// the `prioritise` call to make for it *outside* the lock (see
    /// [`super::tape`]): a slow plugin then holds only its own request.
    pub(crate) fn plan_intake(&mut self, item: &ItemRecord) -> IntakePlan {
        let id = self.router.reserve_item_id();
        let planned = self.router.plan_intake(id, &to_new_item(item), self.now());
        self.intake_plan(id, planned)
    }

    /// [`Core::plan_intake`] for the hand-off `handoff` of completing `item`.
    pub(crate) fn plan_handoff(&mut self, item: u64, handoff: &ItemRecord) -> IntakePlan {
        let id = self.router.reserve_item_id();
        let planned = self.router.plan_handoff(ItemId(item), &to_new_item(handoff), id, self.now());
        self.intake_plan(id, planned)
    }

    fn intake_plan(&self, id: ItemId, planned: Option<(String, switchyard_contract::ItemBatch)>) -> IntakePlan {
        let call = planned.and_then(|(department, batch)| {
            let rules = self.direct_rules.get(&department)?.clone();
            Some((department, batch, rules))
        });
        IntakePlan { id: id.0, call }
    }

    /// Whether enough records were appended since the last snapshot.
    pub(crate) fn snapshot_due(&self) -> bool {
        self.records_since_snapshot() >= self.snapshot_every
    }

    /// Records the next start would replay if the daemon stopped now.
    pub(crate) fn records_since_snapshot(&self) -> u64 {
        self.tail_replayed + (self.appended - self.snapshot_appended)
    }

    /// A copy of the state for a snapshot (see [`super::snapshot`]).
    pub(crate) fn snapshot(&self) -> DaemonSnapshot {
        let daemon = DaemonState {
            finished: self
                .finished
                .oldest_first()
                .map(|f| FinishedEntry {
                    id: f.id,
                    completed: f.status == "completed",
                    queue: f.queue.clone(),
                    at_ms: f.at_ms,
                    resolved: f.resolved,
                    handle_ms: f.handle_ms,
                })
                .collect(),
            offers: self.offers.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            agent_tokens: self.auth.agent_tokens(),
            plugins: self.plugins.departments.clone(),
            records: self.recovered + self.appended,
            contacts: self.contacts.entries(),
        };
        DaemonSnapshot {
            version: snapshot::VERSION,
            clock_ms: self.clock.now_ms(),
            router: self.router.snapshot(),
            daemon,
        }
    }

    /// Take over what a snapshot keeps beside the router (which
    /// [`Router::restore`] rebuilt): finished items, counters, agents' tokens
    /// and the plugin ledger (its plugins are loaded after replay, as for a
    /// journal without a snapshot).
    pub(crate) fn restore(&mut self, snapshot: DaemonState) {
        for f in snapshot.finished {
            self.finished.insert(Finished {
                id: f.id,
                status: if f.completed { "completed" } else { "withdrawn" },
                queue: f.queue,
                at_ms: f.at_ms,
                resolved: f.resolved,
                handle_ms: f.handle_ms,
            });
        }
        for (key, count) in snapshot.offers {
            if let Some(key) = OFFER_OUTCOMES.iter().find(|k| **k == key) {
                self.offers.insert(key, count);
            }
        }
        for (agent, hash) in snapshot.agent_tokens {
            self.auth.set_agent_token(&agent, &hash);
        }
        self.recovered = snapshot.records;
        self.plugins.departments = snapshot.plugins;
        self.contacts.restore(snapshot.contacts);
    }

    /// Apply one input at its time. Used live (see [`Core::submit`]) and in replay.
    pub(crate) fn apply(&mut self, at_ms: u64, op: &Op) -> std::result::Result<Applied, Refusal> {
        self.clock.set(at_ms);
        let result = match op {
            Op::CreateItem { item, id } => {
                let id = match id {
                    Some(id) => self.router.create_item_as(ItemId(*id), to_new_item(item)),
                    None => self.router.create_item(to_new_item(item)),
                };
                Ok(Applied::Item(id))
            }
            Op::Withdraw { item } => self.router.withdraw(ItemId(*item)).map(|()| Applied::Done).map_err(Refusal::from),
            Op::Complete { item, resolved, handoff, handoff_id } => {
                let completion = Completion {
                    resolved: *resolved,
                    handoff: handoff.as_ref().map(|h| HandOff { item: to_new_item(h), id: handoff_id.map(ItemId) }),
                };
                self.router.complete(ItemId(*item), completion).map(Applied::Completed).map_err(Refusal::from)
            }
            Op::RegisterAgent { name, agent } => {
                let spec = AgentSpec {
                    name: name.clone(),
                    group: agent.group.clone(),
                    skills: agent.skills.clone(),
                    capacity: agent.capacity,
                    wrap_up_ms: agent.wrap_up_ms,
                };
                self.router.register_agent(spec).map(Applied::Agent).map_err(Refusal::from)
            }
            Op::AgentState { name, presence } => match self.router.agent_id(name) {
                Some(id) => {
                    self.router.set_agent_state(id, *presence).map(|()| Applied::Agent(id)).map_err(Refusal::from)
                }
                None => Err(Refusal::NotFound(format!("unknown agent `{name}`"))),
            },
            Op::Accept { item } => {
                self.router.accept_offer(ItemId(*item)).map(|()| Applied::Done).map_err(Refusal::from)
            }
            Op::Reject { item } => {
                self.router.reject_offer(ItemId(*item)).map(|()| Applied::Done).map_err(Refusal::from)
            }
            Op::Tick => {
                self.router.on_tick();
                Ok(Applied::Done)
            }
            Op::Decide { calls } => {
                let calls: Vec<DeferredCall> = calls
                    .iter()
                    .filter_map(|call| match call {
                        DecideCall::Dispatch { item } => Some(DeferredCall::Dispatch { item: ItemId(*item) }),
                        DecideCall::Fill { agent } => {
                            self.router.agent_id(agent).map(|agent| DeferredCall::Fill { agent })
                        }
                        DecideCall::Escalate { item, generation } => {
                            Some(DeferredCall::Escalate { item: ItemId(*item), generation: *generation })
                        }
                    })
                    .collect();
                self.router.decide_deferred(&calls);
                Ok(Applied::Done)
            }
            Op::ReturnOffers => {
                for (id, _, _) in self.router.agents() {
                    let offered = self
                        .router
                        .desktop(id)
                        .map(|d| d.items.iter().any(|i| i.status == ItemStatus::Offered))
                        .unwrap_or(false);
                    if offered {
                        // Away cancels the agent's pending offers (back to the queue,
                        // age kept); available again takes new offers.
                        let _ = self.router.set_agent_state(id, Presence::Away);
                        let _ = self.router.set_agent_state(id, Presence::Available);
                    }
                }
                Ok(Applied::Done)
            }
            // Plugin records update the ledger only: no plugin is compiled or
            // called here (live, the reload manager swaps after journaling;
            // after replay, `plugins::start_up` loads what the ledger says).
            Op::PluginActivated { .. }
            | Op::PluginRolledBack { .. }
            | Op::PluginShadowed { .. }
            | Op::PluginPromoted { .. }
            | Op::PluginUnshadowed { .. }
            | Op::PluginRejected { .. }
            | Op::PluginFixtures { .. }
            | Op::PluginFromConfig { .. }
            | Op::PluginFromDir { .. } => {
                self.plugins.apply(op);
                Ok(Applied::Done)
            }
            Op::AgentToken { agent, sha256 } => {
                self.auth.set_agent_token(agent, sha256);
                Ok(Applied::Done)
            }
            Op::AgentTokenRevoked { agent } => {
                self.auth.revoke_agent_token(agent);
                Ok(Applied::Done)
            }
            Op::AlertAcknowledged { alert, by } => {
                self.router.acknowledge_alert(*alert, by).map(|_| Applied::Done).map_err(Refusal::from)
            }
        };
        self.after(op, &result);
        result
    }

    /// Drain the router's events: remember finished items and log every decision
    /// with item, department and the plugin generation that made it.
    fn after(&mut self, op: &Op, result: &std::result::Result<Applied, Refusal>) {
        if let (Op::CreateItem { item, .. }, Ok(Applied::Item(id))) = (op, result) {
            let view = self.router.item_view(*id);
            let (queue, priority, source) = match &view {
                Some(v) => (v.queue.as_str(), v.priority, v.explanation.prioritised_by.as_ref()),
                None => ("(exception)", 0, None),
            };
            let (rule, generation) = describe(source);
            if self.replaying {
                tracing::debug!(item = id.0, department = %item.department, queue, priority, rule, generation, "replayed item");
            } else {
                tracing::info!(item = id.0, department = %item.department, queue, priority, rule, generation, "item prioritised");
            }
        }
        let queues = self.router.queue_names();
        let events: Vec<Event> = self.router.drain_events().collect();
        if !self.replaying
            && let Some(traffic) = &self.traffic
        {
            record_traffic(&self.router, traffic, self.clock.now_ms(), op, result, &events);
        }
        for event in events {
            self.contacts.observe(&self.router, &event);
            match &event {
                Event::Offered { .. } => *self.offers.entry("made").or_default() += 1,
                Event::Accepted { .. } => *self.offers.entry("accepted").or_default() += 1,
                Event::OfferEnded { how, .. } => *self.offers.entry(how).or_default() += 1,
                _ => {}
            }
            match event {
                Event::Completed { at_ms, item, queue, handle_ms, resolved, .. } => {
                    self.finished.insert(Finished {
                        id: item.0,
                        status: "completed",
                        queue: queues.get(queue).cloned().unwrap_or_default(),
                        at_ms,
                        resolved: Some(resolved),
                        handle_ms: Some(handle_ms),
                    });
                }
                Event::Abandoned { at_ms, item, queue, .. } => {
                    self.finished.insert(Finished {
                        id: item.0,
                        status: "withdrawn",
                        queue: queues.get(queue).cloned().unwrap_or_default(),
                        at_ms,
                        resolved: None,
                        handle_ms: None,
                    });
                }
                Event::Offered { item, agent, .. } if !self.replaying => {
                    if let Some(view) = self.router.item_view(item) {
                        let (rule, generation) = describe(view.explanation.matched_by.as_ref());
                        tracing::info!(
                            item = item.0,
                            agent = agent.0,
                            department = %view.department,
                            queue = %view.queue,
                            priority = view.priority,
                            score = view.explanation.score,
                            rule,
                            generation,
                            "item offered"
                        );
                    }
                }
                Event::Escalated { item, ref actions, .. } if !self.replaying => {
                    let department = self.router.item_view(item).map(|v| v.department).unwrap_or_default();
                    let source = self
                        .router
                        .item_view(item)
                        .and_then(|v| v.explanation.escalations.last().map(|e| e.source.clone()));
                    let (rule, generation) = describe(source.as_ref());
                    tracing::info!(item = item.0, department = %department, actions = ?actions, rule, generation, "item escalated");
                }
                ref other if !self.replaying => tracing::debug!(event = ?other, "router event"),
                _ => {}
            }
        }
    }

    /// The agent's id, or a 404.
    pub(crate) fn agent(&self, name: &str) -> std::result::Result<AgentId, Refusal> {
        self.router.agent_id(name).ok_or_else(|| Refusal::NotFound(format!("unknown agent `{name}`")))
    }

    /// Check a new item before it is journaled.
    pub(crate) fn validate_item(&self, item: &ItemRecord, prefix: &str) -> std::result::Result<(), Refusal> {
        let invalid = |field: &str, message: String| Refusal::Invalid { field: format!("{prefix}{field}"), message };
        if !self.router.department_names().contains(&item.department) {
            return Err(invalid("department", format!("unknown department `{}`", item.department)));
        }
        match self.router.queue_specs().iter().find(|q| q.name == item.queue) {
            None => return Err(invalid("queue", format!("unknown queue `{}`", item.queue))),
            Some(q) if q.department != item.department => {
                return Err(invalid(
                    "queue",
                    format!(
                        "queue `{}` belongs to department `{}`, not `{}`",
                        item.queue, q.department, item.department
                    ),
                ));
            }
            Some(_) => {}
        }
        for (skill, level) in &item.skills {
            if !(1..=10).contains(level) {
                return Err(invalid(&format!("skills.{skill}"), format!("level {level} is outside 1-10")));
            }
        }
        if !item.value.is_finite() {
            return Err(invalid("value", "must be a finite number".into()));
        }
        // The router's own limits (names, attributes, skills, catalogue), checked
        // before journaling so an item over one is a 422, not an exception.
        self.router.check_item(&to_new_item(item)).map_err(|e| match e {
            switchyard_core::Error::Limit { field, what, limit, got } => {
                invalid(&field, format!("{got} is over the limit of {limit} ({what})"))
            }
            other => invalid("body", other.to_string()),
        })
    }

    /// Check an agent registration before it is journaled.
    pub(crate) fn validate_agent(&self, agent: &AgentRecord) -> std::result::Result<(), Refusal> {
        for (skill, level) in &agent.skills {
            if !(1..=10).contains(level) {
                return Err(Refusal::Invalid {
                    field: format!("skills.{skill}"),
                    message: format!("level {level} is outside 1-10"),
                });
            }
        }
        Ok(())
    }

    /// Journal and run a tick if a timer is due.
    pub(crate) fn tick(&mut self) -> std::result::Result<(), Refusal> {
        let now = self.now();
        if self.router.next_deadline().is_some_and(|at| at <= now) {
            self.submit(Op::Tick)?;
        }
        Ok(())
    }

    /// Whether any offer is pending (after a recovery).
    pub(crate) fn has_pending_offers(&self) -> bool {
        self.router.agents().into_iter().any(|(id, _, _)| {
            self.router.desktop(id).map(|d| d.items.iter().any(|i| i.status == ItemStatus::Offered)).unwrap_or(false)
        })
    }
}

/// Decisions deferred while applying inputs: the router's calls to redo and
/// the questions to ask outside the lock first.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    calls: Vec<DeferredCall>,
    questions: Vec<Question>,
}

impl Pending {
    /// Nothing deferred.
    pub(crate) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// Rounds of ask-outside-then-decide one request runs before it leaves what is
/// still deferred to the router's retry timer (each round's answers can lead to
/// new questions: an agent with room for three gets three offers, one a round).
const SETTLE_ROUNDS: usize = 8;

/// Take `pending` decisions: ask each question of its department's rules with
/// `core` unlocked, then apply the answers under the lock ([`Op::Decide`]);
/// repeat while that defers more. Returns the last journal ticket written.
///
/// The state may change between asking and applying; a call whose question
/// changed meanwhile (another candidate became free, say) defers again and is
/// asked again next round.
pub(crate) fn settle(core: &Mutex<Core>, mut pending: Pending) -> std::result::Result<Option<u64>, Refusal> {
    let mut ticket = None;
    // Every round's answers stay for the later rounds: a call redone asks its
    // earlier questions again (filling an agent goes through the waiting items
    // in order) and must get the same answers, not defer on them for ever.
    let mut answers: Vec<Answer> = Vec::new();
    for _ in 0..SETTLE_ROUNDS {
        if pending.is_empty() {
            break;
        }
        let rules = {
            let core = lock(core);
            pending.questions.iter().map(|q| core.direct_rules.get(q.department()).cloned()).collect::<Vec<_>>()
        };
        answers.extend(
            pending.questions.drain(..).zip(rules).filter_map(|(question, rules)| Some(question.ask(&*rules?))),
        );
        let mut core = lock(core);
        core.decide(std::mem::take(&mut pending.calls), answers.clone())?;
        ticket = Some(core.last_ticket);
        pending = core.take_pending();
    }
    Ok(ticket)
}

/// The core, even if a thread panicked holding it (the state is still
/// consistent: every mutation is applied whole or refused first).
pub(crate) fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new item's reserved id and the rules call to make for it outside the lock.
pub(crate) struct IntakePlan {
    /// The reserved id (journaled with the item).
    pub(crate) id: u64,
    /// (department, the `prioritise` batch, the department's rules below the tape).
    pub(crate) call: Option<(String, switchyard_contract::ItemBatch, Arc<dyn switchyard_core::rules::RuleSet>)>,
}

/// What applying an op produced.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Applied {
    /// Nothing to report.
    Done,
    /// A new item.
    Item(ItemId),
    /// An agent registered or changed.
    Agent(AgentId),
    /// A completion, with the hand-off item if any.
    Completed(Option<ItemId>),
}

/// Hand what `op` (applied at `at`, with `result`) and its `events` tell of
/// the traffic to the traffic log: arrivals with what they were posted with,
/// hand-offs, first answers, abandonments, completions (work without the
/// agent's after-work, which the roster carries) and the roster's changes.
fn record_traffic(
    router: &Router,
    traffic: &super::traffic::TrafficLog,
    at: u64,
    op: &Op,
    result: &std::result::Result<Applied, Refusal>,
    events: &[Event],
) {
    use super::traffic::Line;
    match (op, result) {
        (Op::CreateItem { item, .. }, Ok(Applied::Item(id))) => {
            traffic.record(Line::Arrival {
                at,
                item: id.0,
                department: item.department.clone(),
                queue: item.queue.clone(),
                channel: item.channel,
                skills: item.skills.iter().cloned().collect(),
                attributes: item.attributes.iter().cloned().collect(),
                priority: item.priority,
                tier: item.tier,
                customer: item.customer.clone(),
                case: item.case.clone(),
                value: item.value,
                due_in_ms: item.due_in_ms,
            });
        }
        (Op::Complete { item, handoff: Some(h), .. }, Ok(Applied::Completed(Some(to)))) => {
            traffic.record(Line::Handoff {
                at,
                from: *item,
                item: to.0,
                department: h.department.clone(),
                queue: h.queue.clone(),
                channel: h.channel,
                skills: h.skills.iter().cloned().collect(),
                priority: h.priority,
                due_in_ms: h.due_in_ms,
            });
        }
        (Op::RegisterAgent { .. }, Ok(Applied::Agent(id))) => {
            if let Some(line) = agent_line(router, *id, at) {
                traffic.record(line);
            }
        }
        (Op::AgentState { name, presence }, Ok(_)) => {
            traffic.record(Line::Presence { at, agent: name.clone(), presence: *presence });
        }
        _ => {}
    }
    for event in events {
        match *event {
            Event::Accepted { at_ms, item, first: true, .. } => {
                traffic.record(Line::Answered { at: at_ms, item: item.0 });
            }
            Event::Abandoned { at_ms, item, .. } => {
                traffic.record(Line::Abandoned { at: at_ms, item: item.0 });
            }
            Event::Completed { at_ms, item, agent, handle_ms, resolved, .. } => {
                let wrap_up = router.agent_spec(agent).map_or(0, |s| s.wrap_up_ms);
                traffic.record(Line::Completed {
                    at: at_ms,
                    item: item.0,
                    handle_ms: handle_ms.saturating_sub(wrap_up),
                    resolved,
                });
            }
            _ => {}
        }
    }
}

/// The traffic log's `agent` line for `agent` as registered now.
pub(crate) fn agent_line(router: &Router, agent: AgentId, at: u64) -> Option<super::traffic::Line> {
    let spec = router.agent_spec(agent)?;
    let presence = router.agent_load(agent).ok()?.presence;
    Some(super::traffic::Line::Agent {
        at,
        agent: spec.name.clone(),
        group: spec.group.clone(),
        skills: spec.skills.iter().cloned().collect(),
        capacity: spec.capacity,
        wrap_up_ms: spec.wrap_up_ms,
        presence,
    })
}

/// (rule kind, generation) of a rule source, for logs.
fn describe(source: Option<&RuleSource>) -> (&'static str, u64) {
    match source {
        Some(RuleSource::Plugin { generation, .. }) => ("plugin", *generation),
        Some(RuleSource::Fallback { generation, .. }) => ("fallback", *generation),
        Some(RuleSource::BuiltIn) => ("built-in", 0),
        Some(RuleSource::Deferred) => ("deferred", 0),
        None => ("none", 0),
    }
}

/// The router's new item from the journal's.
pub(crate) fn to_new_item(item: &ItemRecord) -> NewWorkItem {
    NewWorkItem {
        department: item.department.clone(),
        queue: item.queue.clone(),
        channel: Some(item.channel),
        skills: item.skills.clone(),
        attributes: item.attributes.clone(),
        priority: item.priority,
        tier: item.tier,
        value: item.value,
        customer: item.customer.clone(),
        case: item.case.clone(),
        due_in_ms: item.due_in_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(id: u64) -> Finished {
        Finished { id, status: "completed", queue: "q".into(), at_ms: id, resolved: Some(true), handle_ms: Some(1) }
    }

    #[test]
    fn finished_items_keep_only_the_most_recent() {
        let mut kept = FinishedItems::new(3);
        for id in 1..=5 {
            kept.insert(finished(id));
        }
        assert_eq!(kept.by_id.len(), 3);
        assert!(kept.get(&1).is_none() && kept.get(&2).is_none(), "the oldest are forgotten");
        assert_eq!(kept.get(&5).map(|f| f.at_ms), Some(5));
        // Finishing an id again (a replayed event) does not evict another.
        kept.insert(finished(4));
        assert_eq!((kept.by_id.len(), kept.order.len()), (3, 3));
        assert!(kept.get(&3).is_some());
        let mut none = FinishedItems::new(0);
        none.insert(finished(1));
        assert!(none.get(&1).is_none());
    }
}
