//! Snapshots of the routing core: everything a [`Router`] needs to continue
//! exactly as if it had never stopped, as plain serde data ([`RouterSnapshot`]),
//! taken by [`Router::snapshot`] and rebuilt by [`Router::restore`].
//!
//! This module owns the snapshot format and the restore rules; the daemon owns
//! when to take one and where to keep it (its journal), and the encoding (any
//! serde format: JSON, or a compact one such as postcard).
//!
//! What a snapshot holds: items (waiting, offered, in hand, paused, in
//! after-work, exceptions — with priorities, ages, required skills,
//! attributes, explanations, refusals, recheck counts), agents (spec, presence,
//! load, held items, idle since, activity), every queue's waiting order and
//! offer count, the timers (stale ones too, so timer compaction happens when it
//! would have), customers (repeat-contact window) and their expiry order,
//! cases and their expiry order, the exception queue, alerts and their
//! acknowledgements, the next item and alert ids, retention bookkeeping, and
//! the statistics (per-queue totals, kept intervals, wait histograms, agent
//! time tracks, case figures). Its size grows with the live state and the
//! retained windows, never with history: completed items leave nothing behind
//! but counters.
//!
//! What it does not hold: the events not yet drained (the embedder drains them
//! after each operation), the rule sets (give them again with
//! [`Router::set_rules`]: a restored router starts on the
//! [`BuiltInRules`](crate::rules::BuiltInRules)),
//! the configuration (departments, queues, options — passed to `restore` as to
//! [`Router::new`]) and the clock.
//!
//! # Robust against configuration edits
//! Queues and departments are recorded by name, and the catalogue of interned
//! names in id order. On restore the snapshot's names are interned first, in
//! their original order, then the configuration's — so with a fresh catalogue
//! every id means what it meant (plugins' cached ids stay right), and with a
//! catalogue that already holds names, ids are remapped. Queue and department
//! indices are remapped by name, so the configuration may list them in
//! another order. A queue added to the configuration starts empty. A queue (or
//! department) the configuration no longer has:
//! - its **waiting** items go to the exception queue, reason
//!   [`ExceptionReason::UnknownQueue`] with the queue's name, and a case step
//!   saying the queue is no longer configured (the
//!   [`Event::Exception`](super::Event::Exception)s are
//!   in [`Router::drain_events`] after the restore);
//! - an item of it that an agent holds (offered, answered, paused, after-work)
//!   makes the restore fail with [`Error::Invalid`] naming the queue, the item
//!   and the agent: work cannot be taken out of an agent's hand behind their
//!   back — restore with the queue kept, let that work finish, then remove it;
//! - its statistics are dropped (the configuration no longer reports it);
//! - customers whose last contact was in it lose their repeat-contact record,
//!   and a removed department leaves the paths of the cases that visited it.
//!
//! The statistics' interval length, wait bins and fixed origin must be
//! unchanged ([`Error::Invalid`] names the setting otherwise): the kept
//! figures would be misread.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError};

use serde::{Deserialize, Serialize};
use switchyard_contract::SkillId;

use super::{
    Agent, AgentId, Alert, CaseRecord, CustomerRecord, DepartmentSpec, ExceptionEntry, ExceptionReason, Item, ItemId,
    ItemStatus, QueueSpec, RetentionStats, Router, RouterOptions, Timer, WorkTime,
};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::MetricsSnapshot;
use crate::rules::SharedCatalog;

/// The format version written by [`Router::snapshot`] and the only one
/// [`Router::restore`] reads. Bump it with any change of the snapshot's layout
/// or meaning.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A router's state at one instant, as plain serde data (see the
/// module docs (`router::snapshot`) for what it covers and how it is restored).
///
/// ```
/// use std::sync::{Arc, RwLock};
/// use switchyard_core::clock::VirtualClock;
/// use switchyard_core::router::*;
/// use switchyard_core::rules::SharedCatalog;
///
/// let departments = vec![DepartmentSpec::new("billing")];
/// let queues = vec![QueueSpec::new("billing", "billing")];
/// let clock = VirtualClock::new(1_000);
/// let catalog: SharedCatalog = Arc::new(RwLock::new(Default::default()));
/// let mut router = Router::new(
///     departments.clone(), queues.clone(), Arc::new(clock.clone()), catalog, RouterOptions::default(),
/// )?;
/// let item = router.create_item(NewWorkItem {
///     department: "billing".into(),
///     queue: "billing".into(),
///     ..Default::default()
/// });
/// clock.advance(5_000);
///
/// // Snapshot, keep it anywhere serde writes to, and restore into a fresh
/// // router (fresh catalogue, same clock time) after a restart.
/// let json = serde_json::to_vec(&router.snapshot())?;
/// let snapshot: RouterSnapshot = serde_json::from_slice(&json)?;
/// assert_eq!(snapshot.version(), SNAPSHOT_VERSION);
/// let catalog: SharedCatalog = Arc::new(RwLock::new(Default::default()));
/// let restored =
///     Router::restore(departments, queues, Arc::new(clock), catalog, RouterOptions::default(), snapshot)?;
/// assert_eq!(restored.item_view(item), router.item_view(item));
/// assert_eq!(restored.queue_snapshot("billing")?.oldest_wait_ms, 5_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouterSnapshot {
    /// [`SNAPSHOT_VERSION`] when written.
    version: u32,
    /// The router's clock when taken.
    taken_at_ms: u64,
    /// Interned names, each table in id order.
    catalog: CatalogNames,
    /// Department names in the router's order (what items' `department` index).
    departments: Vec<String>,
    /// Queues in the router's order (what items' `queue` index).
    queues: Vec<QueueContents>,
    /// Agents in id order (id = index + 1).
    agents: Vec<Agent>,
    /// Items by id.
    items: Vec<Item>,
    next_item: u64,
    /// The timer heap, sorted (stale entries kept).
    timers: Vec<(u64, u64, Timer)>,
    timer_seq: u64,
    /// Customers by name.
    customers: Vec<(String, CustomerRecord)>,
    customer_expiry: Vec<(u64, String)>,
    /// Cases by name.
    cases: Vec<(String, CaseRecord)>,
    closed_cases: Vec<(u64, String)>,
    exceptions: Vec<ExceptionEntry>,
    alerts: Vec<Alert>,
    next_alert: u64,
    metrics: MetricsSnapshot,
    stats: RetentionStats,
    created_since_prune: u64,
    timers_compacted_len: usize,
}

/// The catalogue's tables, names in id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CatalogNames {
    skills: Vec<String>,
    queues: Vec<String>,
    attributes: Vec<String>,
}

/// One queue's contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueueContents {
    name: String,
    /// The waiting order as kept: (priority, created ms, item id), best first.
    waiting: Vec<(i32, u64, u64)>,
    /// Items of the queue on offer.
    offered: usize,
}

impl RouterSnapshot {
    /// The format version ([`SNAPSHOT_VERSION`] when written by this build).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The router's clock when the snapshot was taken, ms.
    pub fn taken_at_ms(&self) -> u64 {
        self.taken_at_ms
    }

    /// The next item id the router would have given (every item id below it
    /// was given before the snapshot).
    pub fn next_item(&self) -> ItemId {
        ItemId(self.next_item)
    }

    /// Queue names in the snapshot, in the order of the router that took it.
    pub fn queue_names(&self) -> Vec<&str> {
        self.queues.iter().map(|q| q.name.as_str()).collect()
    }

    /// Items held (waiting, offered, in hand, exceptions).
    pub fn open_items(&self) -> usize {
        self.items.len()
    }
}

/// Old catalogue id → id in the restored catalogue, per table.
struct Remap {
    skills: Vec<u32>,
    attributes: Vec<u32>,
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("router snapshot is inconsistent: {what}"))
}

fn remap_id(table: &[u32], id: u32, kind: &str) -> Result<u32> {
    table.get(id as usize).copied().ok_or_else(|| corrupt(format!("{kind} id {id} is not in its catalogue")))
}

impl Router {
    /// Everything the router needs to continue as if it had never stopped
    /// (see [`RouterSnapshot`]). Cost and size grow with the open items,
    /// agents and retained records, not with history. Deterministic: the same
    /// state gives the same snapshot, field for field.
    pub fn snapshot(&self) -> RouterSnapshot {
        let catalog = {
            let c = self.catalog.read().unwrap_or_else(PoisonError::into_inner);
            CatalogNames {
                skills: c.skills.tail(0).to_vec(),
                queues: c.queues.tail(0).to_vec(),
                attributes: c.attributes.tail(0).to_vec(),
            }
        };
        let mut items: Vec<Item> = self.items.values().cloned().collect();
        items.sort_unstable_by_key(|i| i.id);
        let mut timers: Vec<(u64, u64, Timer)> = self.timers.iter().map(|Reverse(t)| *t).collect();
        timers.sort_unstable();
        let mut customers: Vec<(String, CustomerRecord)> =
            self.customers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        customers.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut cases: Vec<(String, CaseRecord)> = self.cases.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        cases.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        RouterSnapshot {
            version: SNAPSHOT_VERSION,
            taken_at_ms: self.now_ms(),
            catalog,
            departments: self.departments.iter().map(|d| d.spec.name.clone()).collect(),
            queues: self
                .queues
                .iter()
                .map(|q| QueueContents {
                    name: q.spec.name.clone(),
                    waiting: q.waiting.iter().map(|&(Reverse(p), created, id)| (p, created, id)).collect(),
                    offered: q.offered,
                })
                .collect(),
            agents: self.agents.clone(),
            items,
            next_item: self.next_item,
            timers,
            timer_seq: self.timer_seq,
            customers,
            customer_expiry: self.customer_expiry.iter().cloned().collect(),
            cases,
            closed_cases: self.closed_cases.iter().cloned().collect(),
            exceptions: self.exceptions.iter().cloned().collect(),
            alerts: self.alerts.iter().cloned().collect(),
            next_alert: self.next_alert,
            metrics: self.metrics.snapshot(),
            stats: self.stats,
            created_since_prune: self.created_since_prune,
            timers_compacted_len: self.timers_compacted_len,
        }
    }

    /// A router for `departments` and `queues` (as [`Router::new`]) holding the
    /// state of `snapshot`. Give each department its rules again with
    /// [`Router::set_rules`]; the clock should not be behind
    /// [`RouterSnapshot::taken_at_ms`].
    ///
    /// The configuration may differ from the one the snapshot was taken under
    /// (see the module docs (`router::snapshot`)): queues and departments are matched by
    /// name; waiting items of a queue no longer configured go to the exception
    /// queue. Fails with [`Error::Invalid`] for another snapshot version, an
    /// item held by an agent in a queue no longer configured, changed
    /// statistics intervals, or an inconsistent snapshot; and as
    /// [`Router::new`] for a bad configuration.
    pub fn restore(
        departments: Vec<DepartmentSpec>,
        queues: Vec<QueueSpec>,
        clock: Arc<dyn Clock>,
        catalog: SharedCatalog,
        options: RouterOptions,
        snapshot: RouterSnapshot,
    ) -> Result<Router> {
        let s = snapshot;
        if s.version != SNAPSHOT_VERSION {
            return Err(Error::Invalid(format!(
                "router snapshot version {} cannot be read (this build reads version {SNAPSHOT_VERSION})",
                s.version
            )));
        }
        // The snapshot's names first, in id order: in a fresh catalogue every id
        // keeps its meaning; otherwise the remap says where each went.
        let remap = {
            let mut c = catalog.write().unwrap_or_else(PoisonError::into_inner);
            for name in &s.catalog.queues {
                c.queues.intern(name);
            }
            Remap {
                skills: s.catalog.skills.iter().map(|n| c.skills.intern(n)).collect(),
                attributes: s.catalog.attributes.iter().map(|n| c.attributes.intern(n)).collect(),
            }
        };
        let mut router = Router::new(departments, queues, clock, catalog, options)?;
        let department_of: Vec<Option<usize>> =
            s.departments.iter().map(|name| router.department_index.get(name).copied()).collect();
        let queue_of: Vec<Option<usize>> = s.queues.iter().map(|q| router.queue_index.get(&q.name).copied()).collect();

        // Check before changing anything: indices in range, and no work in hand
        // in a queue that is gone.
        for item in &s.items {
            let id = ItemId(item.id);
            let Some(&queue) = queue_of.get(item.queue) else {
                return Err(corrupt(format!("{id} is in queue #{}", item.queue)));
            };
            if item.department >= department_of.len() {
                return Err(corrupt(format!("{id} is in department #{}", item.department)));
            }
            if let Some(a) = item.agent
                && a >= s.agents.len()
            {
                return Err(corrupt(format!("{id} is held by agent #{a}")));
            }
            let held = !matches!(item.status, ItemStatus::Queued | ItemStatus::Exception);
            if queue.is_none() && held {
                let agent = item.agent.and_then(|a| s.agents.get(a)).map(|a| a.spec.name.as_str()).unwrap_or("?");
                return Err(Error::Invalid(format!(
                    "cannot restore: queue `{}` is no longer configured, but {id} of it is {} by agent `{agent}`; \
                     restore with the queue kept until that work is done",
                    s.queues[item.queue].name,
                    if item.status == ItemStatus::Offered { "offered to" } else { "held" },
                )));
            }
        }
        if router.queues.is_empty() && !s.items.is_empty() {
            return Err(Error::Invalid(format!(
                "cannot restore {} open items into a configuration without queues",
                s.items.len()
            )));
        }

        // Agents, with their skills in the restored catalogue's ids.
        for mut agent in s.agents {
            for (skill, _) in &mut agent.skills {
                *skill = remap_id(&remap.skills, *skill, "skill")?;
            }
            agent.skills.sort_unstable();
            if router.agent_index.insert(agent.spec.name.clone(), router.agents.len()).is_some() {
                return Err(corrupt(format!("agent `{}` appears twice", agent.spec.name)));
            }
            router.agents.push(agent);
        }
        for queue in &mut router.queues {
            let agents = &router.agents;
            queue.agents = (0..agents.len()).filter(|&a| agents[a].level(queue.skill) >= 1).collect();
        }

        // Queues' contents, by name.
        let queue_names: Vec<String> = s.queues.iter().map(|q| q.name.clone()).collect();
        for (contents, to) in s.queues.into_iter().zip(&queue_of) {
            if let Some(q) = *to {
                let waiting: BTreeSet<_> = contents.waiting.into_iter().map(|(p, c, id)| (Reverse(p), c, id)).collect();
                router.queues[q].waiting = waiting;
                router.queues[q].offered = contents.offered;
            }
        }

        // Items.
        let mut orphans: Vec<(u64, String)> = Vec::new();
        for mut item in s.items {
            for r in &mut item.skills {
                r.skill = SkillId(remap_id(&remap.skills, r.skill.0, "skill")?);
            }
            for (key, _) in &mut item.attributes {
                *key = remap_id(&remap.attributes, *key, "attribute")?;
            }
            let department = department_of[item.department];
            match (queue_of[item.queue], item.status) {
                (_, ItemStatus::Exception) => {
                    item.queue = queue_of[item.queue].unwrap_or(0);
                    item.department = department.unwrap_or(0);
                }
                (Some(q), _) => {
                    item.queue = q;
                    item.department = router.queues[q].department;
                }
                (None, _) => {
                    // Waiting in a queue that is gone (held ones were refused above).
                    orphans.push((item.id, queue_names[item.queue].clone()));
                    item.queue = 0;
                    item.department = department.unwrap_or(router.queues[0].department);
                }
            }
            router.items.insert(item.id, item);
        }

        router.next_item = s.next_item;
        router.timers = s.timers.into_iter().map(Reverse).collect();
        router.timer_seq = s.timer_seq;
        for (customer, mut record) in s.customers {
            let queue = queue_of.get(record.last_queue).copied().flatten();
            let department = department_of.get(record.last_department).copied().flatten();
            let (Some(queue), Some(department)) = (queue, department) else {
                continue; // its last contact's queue is gone: no repeat to count against it
            };
            record.last_queue = queue;
            record.last_department = department;
            router.customers.insert(customer, record);
        }
        router.customer_expiry = s.customer_expiry.into();
        for (case, mut record) in s.cases {
            record.departments.retain(|&d| department_of.get(d).copied().flatten().is_some());
            for d in &mut record.departments {
                *d = department_of[*d].unwrap_or_default();
            }
            router.cases.insert(case, record);
        }
        router.closed_cases = s.closed_cases.into();
        router.exceptions = s.exceptions.into();
        router.alerts = s.alerts.into();
        router.next_alert = s.next_alert;
        router.stats = s.stats;
        router.created_since_prune = s.created_since_prune;
        router.timers_compacted_len = s.timers_compacted_len;
        router.metrics.restore(s.metrics).map_err(|m| Error::Invalid(format!("cannot restore statistics: {m}")))?;
        // The occupancy match rules see: from the statistics' agent totals,
        // which count the same activity changes (no warm-up in a daemon).
        for (a, agent) in router.agents.iter_mut().enumerate() {
            let id = AgentId(a as u64 + 1);
            if let (Some(times), Some(since_ms)) = (router.metrics.agent_times(id), router.metrics.agent_since_ms(id)) {
                agent.work = WorkTime { busy_ms: times.busy_ms, idle_ms: times.idle_ms, since_ms };
            }
        }

        // Waiting items of removed queues: to the exception queue, said why.
        for (id, queue) in orphans {
            if let Some(item) = router.items.get_mut(&id) {
                item.status = ItemStatus::Exception;
            }
            router.case_step(id, || format!("queue `{queue}` is no longer configured"));
            router.send_to_exception(id, ExceptionReason::UnknownQueue(queue));
        }
        Ok(router)
    }
}

/// An `f64` that survives any serde format bit for bit: in human-readable
/// formats (JSON) as the shortest decimal that reads back exactly, in a
/// string — serde_json's default number parsing may be one unit in the last
/// place off, and a plugin that sees an item's value must see the same one
/// after a restore; in binary formats as the number itself.
pub(super) mod exact_f64 {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() { serializer.collect_str(value) } else { serializer.serialize_f64(*value) }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(|_| D::Error::custom(format!("`{text}` is not a number")))
        } else {
            f64::deserialize(deserializer)
        }
    }
}

#[cfg(test)]
mod tests;
