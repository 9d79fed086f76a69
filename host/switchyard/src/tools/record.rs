//! Decision recording: a [`RecordingRules`] wraps a department's [`RuleSet`] and
//! appends every call — its inputs with names resolved, the decision and the rule
//! that made it — as one JSON line. `switchyard plugin replay` re-runs a candidate
//! plugin on such a log. Recording is opt-in (`simulate --record FILE`).
//!
//! Records carry names, not interned ids, so a log replays in any host whatever
//! order it interned names in.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use switchyard_contract::named::WorkItem;
use switchyard_contract::{
    CandidateTable, Catalog, Channel, Escalation, EscalationAction, ItemBatch, MatchResult, NewCandidate, Priority,
    QueueId, Tier,
};

use crate::error::{Error, Result};
use switchyard_core::rules::{Decided, RuleSet, SharedCatalog};

/// One work item as recorded, with names instead of ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedItem {
    /// Host id.
    pub id: u64,
    /// Channel.
    pub channel: Channel,
    /// Queue name.
    pub queue: String,
    /// Customer tier.
    pub tier: Tier,
    /// Contacts in the FCR window.
    pub contacts: u16,
    /// Priority at the time of the call.
    pub priority: i32,
    /// Money at stake.
    pub value: f64,
    /// Age in ms.
    pub age_ms: u64,
    /// Time to due in ms, if any.
    pub due_in_ms: Option<i64>,
    /// Required skills (name, level).
    pub skills: Vec<(String, u8)>,
    /// Attributes (key, value).
    pub attributes: Vec<(String, String)>,
}

/// A candidate table as recorded: columns by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedTable {
    /// Agent ids.
    pub agent_ids: Vec<u64>,
    /// Skill names of the proficiency columns.
    pub columns: Vec<String>,
    /// Row-major proficiency.
    pub proficiency: Vec<u8>,
    /// Idle ms per agent.
    pub idle_ms: Vec<u64>,
    /// Occupancy per agent.
    pub occupancy: Vec<f32>,
    /// Row-major load per channel.
    pub load: Vec<u8>,
}

/// A decision as recorded, with names instead of ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "hook")]
pub enum RecordedDecision {
    /// Prioritise answers, one per item.
    Prioritise {
        /// (priority, target queue name, reason) per item.
        priorities: Vec<RecordedPriority>,
    },
    /// Escalate answers, one per item.
    Escalate {
        /// Per item: the actions described with names, and the recheck.
        escalations: Vec<RecordedEscalation>,
    },
    /// The match answer.
    Match {
        /// Agent ids not vetoed, best first.
        ranking: Vec<u64>,
    },
}

/// One prioritise answer with names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPriority {
    /// Priority.
    pub priority: i32,
    /// Target queue name, if moved.
    pub queue: Option<String>,
    /// Reason given.
    pub reason: Option<String>,
}

/// One escalation answer with names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEscalation {
    /// Actions, described with names (e.g. `raise-by 10`, `move-to claims-urgent`).
    pub actions: Vec<String>,
    /// Recheck delay.
    pub recheck_in_ms: Option<u64>,
}

/// One line of a decision log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Position in the log, from 1.
    pub seq: u64,
    /// Department.
    pub department: String,
    /// Decision time, ms since the Unix epoch.
    pub now_ms: u64,
    /// The items of the call (one for match).
    pub items: Vec<RecordedItem>,
    /// The candidates (match only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<RecordedTable>,
    /// What was decided.
    pub decision: RecordedDecision,
    /// Which rule decided (`built-in`, `billing#3`, or a fallback).
    pub source: String,
}

fn name(catalog: &Catalog, kind: switchyard_contract::NameKind, id: u32) -> String {
    catalog.table(kind).name(id).map(str::to_owned).unwrap_or_else(|| format!("#{id}"))
}

/// Describe escalation actions with names, one string per action.
pub fn describe_action(catalog: &Catalog, action: &EscalationAction) -> String {
    use switchyard_contract::NameKind;
    match action {
        EscalationAction::RaiseBy(n) => format!("raise-by {n}"),
        EscalationAction::RaiseTo(n) => format!("raise-to {n}"),
        EscalationAction::RelaxLevels(n) => format!("relax-levels {n}"),
        EscalationAction::DropSkill(s) => format!("drop-skill {}", name(catalog, NameKind::Skill, s.0)),
        EscalationAction::MoveTo(q) => format!("move-to {}", name(catalog, NameKind::Queue, q.0)),
        EscalationAction::Alert(m) => format!("alert {m}"),
    }
}

/// The items of a batch with names resolved.
pub fn items_of(catalog: &Catalog, batch: &ItemBatch) -> Vec<RecordedItem> {
    use switchyard_contract::NameKind;
    batch
        .iter()
        .map(|item| RecordedItem {
            id: item.id(),
            channel: item.channel(),
            queue: name(catalog, NameKind::Queue, item.queue().0),
            tier: item.tier(),
            contacts: item.contacts(),
            priority: item.priority(),
            value: item.value(),
            age_ms: item.age_ms(),
            due_in_ms: item.due_in_ms(),
            skills: item.skills().iter().map(|r| (name(catalog, NameKind::Skill, r.skill.0), r.level)).collect(),
            attributes: item
                .attributes()
                .map(|(k, v)| (name(catalog, NameKind::Attribute, k.0), v.to_owned()))
                .collect(),
        })
        .collect()
}

/// A candidate table with names resolved.
pub fn table_of(catalog: &Catalog, table: &CandidateTable) -> RecordedTable {
    RecordedTable {
        agent_ids: table.agent_ids.clone(),
        columns: table.skill_columns.iter().map(|&s| name(catalog, switchyard_contract::NameKind::Skill, s)).collect(),
        proficiency: table.proficiency.clone(),
        idle_ms: table.idle_ms.clone(),
        occupancy: table.occupancy.clone(),
        load: table.load.clone(),
    }
}

/// Rebuild the batch of a record, interning its names into `catalog` (through
/// the SDK's [`WorkItem::push_into`], the same path fixtures and tests use).
pub fn rebuild_batch(catalog: &mut Catalog, now_ms: u64, items: &[RecordedItem]) -> ItemBatch {
    let mut batch = ItemBatch::with_capacity(now_ms, items.len());
    for (index, item) in items.iter().enumerate() {
        let work_item = WorkItem {
            id: Some(item.id),
            channel: item.channel,
            queue: item.queue.clone(),
            tier: item.tier,
            contacts: item.contacts,
            priority: item.priority,
            value: item.value,
            age_ms: item.age_ms,
            due_in_ms: item.due_in_ms,
            skills: item.skills.clone(),
            attributes: item.attributes.clone(),
        };
        work_item.push_into(&mut batch, catalog, index);
    }
    batch
}

/// Rebuild a recorded candidate table, interning its column names into `catalog`.
pub fn rebuild_table(catalog: &mut Catalog, table: &RecordedTable) -> Result<CandidateTable> {
    let columns: Vec<u32> = table.columns.iter().map(|c| catalog.skills.intern(c)).collect();
    let k = columns.len();
    let mut rebuilt = CandidateTable::new(columns);
    for (i, &id) in table.agent_ids.iter().enumerate() {
        let row = table.proficiency.get(i * k..(i + 1) * k);
        let load = table.load.get(i * 4..(i + 1) * 4);
        let (Some(row), Some(load), Some(&idle_ms), Some(&occupancy)) =
            (row, load, table.idle_ms.get(i), table.occupancy.get(i))
        else {
            return Err(Error::Invalid(format!("recorded candidate table is short of data for agent {id}")));
        };
        rebuilt.push(NewCandidate {
            id,
            proficiency: row,
            idle_ms,
            occupancy,
            load: [load[0], load[1], load[2], load[3]],
        });
    }
    Ok(rebuilt)
}

/// Prioritise answers with names.
pub fn priorities_of(catalog: &Catalog, priorities: &[Priority]) -> Vec<RecordedPriority> {
    priorities
        .iter()
        .map(|p| RecordedPriority {
            priority: p.priority,
            queue: p.queue.map(|q: QueueId| name(catalog, switchyard_contract::NameKind::Queue, q.0)),
            reason: p.reason.clone(),
        })
        .collect()
}

/// Escalation answers with names.
pub fn escalations_of(catalog: &Catalog, escalations: &[Escalation]) -> Vec<RecordedEscalation> {
    escalations
        .iter()
        .map(|e| RecordedEscalation {
            actions: e.actions.iter().map(|a| describe_action(catalog, a)).collect(),
            recheck_in_ms: e.recheck_in_ms,
        })
        .collect()
}

/// A match answer as the agent ids not vetoed, best first.
pub fn ranking_of(table: &CandidateTable, result: &MatchResult) -> Vec<u64> {
    result.ranking().into_iter().filter_map(|i| table.agent_ids.get(i).copied()).collect()
}

/// Where records go: a JSON-lines file shared by every department's wrapper.
#[derive(Clone)]
pub struct DecisionLog {
    inner: Arc<Mutex<(u64, std::io::BufWriter<std::fs::File>)>>,
    /// Flush after every record (a daemon's log is read while it runs).
    live: bool,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog").finish_non_exhaustive()
    }
}

impl DecisionLog {
    /// Create (truncate) the log file at `path`.
    pub fn create(path: &Path) -> Result<DecisionLog> {
        let file = std::fs::File::create(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Ok(DecisionLog { inner: Arc::new(Mutex::new((0, std::io::BufWriter::new(file)))), live: false })
    }

    /// Like [`DecisionLog::create`], but every record reaches the file at once.
    pub fn create_live(path: &Path) -> Result<DecisionLog> {
        Ok(DecisionLog { live: true, ..DecisionLog::create(path)? })
    }

    fn append(&self, mut record: DecisionRecord) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.0 += 1;
        record.seq = guard.0;
        // A recording failure must never cost a decision: log it and go on.
        let live = self.live;
        let written = serde_json::to_writer(&mut guard.1, &record)
            .map_err(std::io::Error::from)
            .and_then(|()| guard.1.write_all(b"\n"))
            .and_then(|()| if live { guard.1.flush() } else { Ok(()) });
        if let Err(err) = written {
            tracing::warn!(error = %err, "could not write a decision record");
        }
    }

    /// Flush buffered records to the file.
    pub fn flush(&self) -> Result<()> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.flush().map_err(|e| Error::Invalid(format!("could not flush the decision log: {e}")))
    }
}

/// A [`RuleSet`] that records every call of the rules it wraps.
pub struct RecordingRules {
    department: String,
    inner: Arc<dyn RuleSet>,
    catalog: SharedCatalog,
    log: DecisionLog,
}

impl RecordingRules {
    /// Record `inner`'s decisions for `department` into `log`; names resolve
    /// through `catalog`.
    pub fn new(department: &str, inner: Arc<dyn RuleSet>, catalog: SharedCatalog, log: DecisionLog) -> Self {
        RecordingRules { department: department.to_owned(), inner, catalog, log }
    }

    fn record(
        &self,
        now_ms: u64,
        batch: &ItemBatch,
        candidates: Option<RecordedTable>,
        decision: impl FnOnce(&Catalog) -> RecordedDecision,
        source: String,
    ) {
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        let record = DecisionRecord {
            seq: 0,
            department: self.department.clone(),
            now_ms,
            items: items_of(&catalog, batch),
            candidates,
            decision: decision(&catalog),
            source,
        };
        drop(catalog);
        self.log.append(record);
    }
}

impl RuleSet for RecordingRules {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        let decided = self.inner.prioritise(items);
        self.record(
            items.now_ms,
            items,
            None,
            |c| RecordedDecision::Prioritise { priorities: priorities_of(c, &decided.value) },
            decided.source.to_string(),
        );
        decided
    }

    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        let decided = self.inner.escalate(items);
        self.record(
            items.now_ms,
            items,
            None,
            |c| RecordedDecision::Escalate { escalations: escalations_of(c, &decided.value) },
            decided.source.to_string(),
        );
        decided
    }

    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        let decided = self.inner.match_agents(item, candidates);
        let table = {
            let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
            table_of(&catalog, candidates)
        };
        self.record(
            item.now_ms,
            item,
            Some(table),
            |_| RecordedDecision::Match { ranking: ranking_of(candidates, &decided.value) },
            decided.source.to_string(),
        );
        decided
    }

    fn calls_plugin(&self, hook: switchyard_contract::Hook) -> bool {
        self.inner.calls_plugin(hook)
    }
}

/// Read a decision log, naming the file and line of a malformed record.
pub fn read_log(path: &Path) -> Result<Vec<DecisionRecord>> {
    let text = super::read_text(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| Error::Config { path: path.to_owned(), message: format!("line {}: {e}", i + 1) })
        })
        .collect()
}
