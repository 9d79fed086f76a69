//! The durable journal: every input the daemon accepts (new item, withdrawal,
//! completion, agent registration and state, offer answers, clock ticks that did
//! something, plugin swaps), with the time it was applied at, written and synced
//! *before* the daemon answers the request.
//!
//! **Records** are the journal's own types ([`Op`], [`ItemRecord`],
//! [`AgentRecord`]: names, not interned ids; durations in ms), never the API's
//! request bodies, and carry a format version ([`FORMAT_VERSION`]). Each record
//! also carries the rule decisions ([`Outcome`]) the router took while applying
//! it. Recovery replays the records, in order and at their recorded times, and
//! hands those decisions back instead of calling the rules (`serve/tape.rs`):
//! the router is deterministic for the same inputs, times and decisions, so
//! queues, offers, cases and statistics come back as they were whatever the
//! plugins are now. `tests/fixtures/journal-v1.jsonl` pins format 1: a later
//! format must migrate it in [`Record::decode`]. Format 2 added decisions taken
//! outside the lock ([`Origin::Deferred`], [`Op::Decide`], a hand-off's
//! reserved id); a format-1 record
//! is a format-2 record that has neither, so it is read as it is.
//!
//! **Snapshots** ([`JournalStore::put_snapshot`]) cover every record up to a
//! sequence number and drop them in the same commit, so start-up reads the
//! snapshot and replays only what came after: restart time follows the live
//! state, not the history (`serve/snapshot.rs`). A torn last record is dropped
//! at open with a warning; an unreadable record before it refuses to start and
//! is named.
//!
//! The store sits behind [`JournalStore`] so a networked store can be added later;
//! [`RedbJournal`] is the embedded default (redb: pure Rust, ACID, each commit
//! synced to disk), and [`MemoryJournal`] serves tests.
//!
//! **Group commit** ([`GroupCommit`]): the daemon applies an input and hands its
//! record over under its state lock (cheap: a push onto a list); the request then waits,
//! *outside* that lock, until a commit that contains its record has been synced.
//! Whoever waits first while no commit runs becomes the leader and writes every
//! pending record in one synced transaction; the others wait for it. So concurrent
//! requests share one disk sync, and no request waits for a sync while holding the
//! lock the others need. Records are committed in the order they were applied, so
//! when a request is acknowledged every record it could have observed is durable.
//! A failed commit stops all later writes (the state in memory is ahead of the
//! disk): the daemon answers 503 and must be restarted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use switchyard_contract::{Channel, MatchResult, Tier};

use switchyard_core::router::{Capacity, Presence};
use switchyard_core::rules::RuleSource;

/// The record format this build writes. Every stored record carries it as `v`;
/// a build that changes a record's shape bumps it and migrates the older ones
/// (see [`Record::decode`]; `tests/fixtures/journal-v1.jsonl` pins this one).
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format this build reads.
const OLDEST_READABLE: u32 = 1;

/// One accepted input, at the time it was applied, with the rule decisions
/// it needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Format version ([`FORMAT_VERSION`] when written by this build).
    pub v: u32,
    /// The router's clock when it was applied, ms since the Unix epoch.
    pub at_ms: u64,
    /// What was done.
    pub op: Op,
    /// Every rule decision the router asked for while applying `op`, in the
    /// order it asked: replay hands these back instead of calling a plugin, so
    /// a restart takes the same decisions whatever the rules are now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<Outcome>,
}

impl Record {
    /// A record of this build's format with no outcomes (yet).
    pub fn new(at_ms: u64, op: Op) -> Record {
        Record { v: FORMAT_VERSION, at_ms, op, outcomes: Vec::new() }
    }

    /// The stored form.
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::Invalid(format!("journal record does not serialise: {e}")))
    }

    /// Read a stored record, of this format or an older one it can migrate.
    /// The error says what is wrong; the caller names the record.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Record, String> {
        /// Just the version, to explain a record of another format.
        #[derive(Deserialize)]
        struct Version {
            #[serde(default)]
            v: u32,
        }
        match serde_json::from_slice::<Record>(bytes) {
            Ok(record) if (OLDEST_READABLE..=FORMAT_VERSION).contains(&record.v) => Ok(record),
            Ok(record) => Err(format!("format {} is newer than this build's ({FORMAT_VERSION})", record.v)),
            Err(e) => match serde_json::from_slice::<Version>(bytes) {
                Ok(Version { v: 0 }) => Err(
                    "format 0 (a development build before versioned records, which replayed by calling plugins) cannot be read; start on a new data directory".into(),
                ),
                Ok(Version { v }) if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&v) => {
                    Err(format!("format {v} is not one this build ({FORMAT_VERSION}) reads"))
                }
                _ => Err(format!("unreadable: {e}")),
            },
        }
    }
}

/// A new work item as the journal keeps it: validated, with names (never
/// interned ids) and durations resolved to ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// Department.
    pub department: String,
    /// Queue it was posted to.
    pub queue: String,
    /// Channel.
    pub channel: Channel,
    /// Required skills with minimum level.
    pub skills: Vec<(String, u8)>,
    /// Attributes.
    pub attributes: Vec<(String, String)>,
    /// Initial priority.
    pub priority: i32,
    /// Customer tier.
    pub tier: Tier,
    /// Money at stake.
    pub value: f64,
    /// Customer id.
    pub customer: Option<String>,
    /// Case id.
    pub case: Option<String>,
    /// Due time, ms after intake.
    pub due_in_ms: Option<u64>,
}

/// An agent's registration as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Group for reports.
    pub group: String,
    /// Skills with proficiency 1-10.
    pub skills: Vec<(String, u8)>,
    /// Blending capacity.
    pub capacity: Capacity,
    /// After-work time, ms.
    pub wrap_up_ms: u64,
}

/// Which rule gave a recorded decision (the journal's copy of
/// [`RuleSource`], so explanations come back the same after a restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    /// The built-in rule.
    BuiltIn,
    /// A plugin generation.
    Plugin {
        /// Plugin name.
        plugin: String,
        /// Generation.
        generation: u64,
    },
    /// The built-in rule after the plugin failed.
    Fallback {
        /// Plugin name.
        plugin: String,
        /// Generation.
        generation: u64,
        /// Why.
        reason: String,
    },
    /// The rules were asked outside the daemon's lock instead; a later
    /// [`Op::Decide`] record holds the answer (format 2).
    Deferred,
}

impl From<&RuleSource> for Origin {
    fn from(source: &RuleSource) -> Origin {
        match source {
            RuleSource::BuiltIn => Origin::BuiltIn,
            RuleSource::Plugin { plugin, generation } => {
                Origin::Plugin { plugin: plugin.to_string(), generation: *generation }
            }
            RuleSource::Fallback { plugin, generation, reason } => {
                Origin::Fallback { plugin: plugin.clone(), generation: *generation, reason: reason.clone() }
            }
            RuleSource::Deferred => Origin::Deferred,
        }
    }
}

impl From<Origin> for RuleSource {
    fn from(origin: Origin) -> RuleSource {
        match origin {
            Origin::BuiltIn => RuleSource::BuiltIn,
            Origin::Plugin { plugin, generation } => RuleSource::Plugin { plugin: plugin.into(), generation },
            Origin::Fallback { plugin, generation, reason } => RuleSource::Fallback { plugin, generation, reason },
            Origin::Deferred => RuleSource::Deferred,
        }
    }
}

/// One prioritise answer, queue by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityOutcome {
    /// Priority.
    pub priority: i32,
    /// Queue it was moved to (a name, or `#<id>` for an id no name had).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Reason given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One escalation action, names instead of ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionOutcome {
    /// Raise priority by.
    RaiseBy(i32),
    /// Raise priority to at least.
    RaiseTo(i32),
    /// Relax every skill level by.
    RelaxLevels(u8),
    /// Drop this skill (name, or `#<id>`).
    DropSkill(String),
    /// Move to this queue (name, or `#<id>`).
    MoveTo(String),
    /// Alert with this text.
    Alert(String),
}

/// One escalation answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationOutcome {
    /// Actions, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionOutcome>,
    /// Recheck delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_in_ms: Option<u64>,
}

/// A deferred decision to take again ([`Op::Decide`]); the journal's copy of
/// the router's [`DeferredCall`](switchyard_core::router::DeferredCall), agents by login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum DecideCall {
    /// Offer a waiting item to the best free candidate.
    Dispatch {
        /// Item id.
        item: u64,
    },
    /// Offer waiting work to an agent.
    Fill {
        /// Agent login.
        agent: String,
    },
    /// Ask `escalate` about a waiting item whose recheck came due.
    Escalate {
        /// Item id.
        item: u64,
        /// The recheck's generation.
        generation: u64,
    },
}

/// One rule decision taken while a record was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "hook", rename_all = "kebab-case")]
pub enum Outcome {
    /// `prioritise`: one answer per item of the batch.
    Prioritise {
        /// Who answered.
        by: Origin,
        /// The answers.
        answers: Vec<PriorityOutcome>,
    },
    /// `escalate`: one answer per item of the batch.
    Escalate {
        /// Who answered.
        by: Origin,
        /// The answers.
        answers: Vec<EscalationOutcome>,
    },
    /// `match-agents`: the answer over the candidate table the router built
    /// (the same table on replay, since the state is the same).
    Match {
        /// Who answered.
        by: Origin,
        /// The answer.
        result: MatchResult,
    },
}

/// The inputs, validated, in the journal's own terms (not the API's bodies:
/// renaming a request field must not stop an old journal from replaying).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// `POST /v1/items`.
    CreateItem {
        /// The item.
        item: ItemRecord,
        /// The id reserved for it when its rules were asked before the create
        /// (`serve/tape.rs`); absent: the router's next id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// `DELETE /v1/items/{id}`.
    Withdraw {
        /// Item id.
        item: u64,
    },
    /// `POST /v1/items/{id}/complete`.
    Complete {
        /// Item id.
        item: u64,
        /// Resolved at first contact.
        resolved: bool,
        /// Follow-up item in another department.
        handoff: Option<ItemRecord>,
        /// The id reserved for the follow-up when its rules were asked before
        /// the completion (format 2); absent: the router's next id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handoff_id: Option<u64>,
    },
    /// `PUT /v1/agents/{id}` (and the agents of the config file at first start).
    RegisterAgent {
        /// Login.
        name: String,
        /// Skills, capacity, group, after-work.
        agent: AgentRecord,
    },
    /// `POST /v1/agents/{id}/state`.
    AgentState {
        /// Login.
        name: String,
        /// New presence.
        presence: Presence,
    },
    /// `POST /v1/offers/{id}/accept`.
    Accept {
        /// Item id.
        item: u64,
    },
    /// `POST /v1/offers/{id}/reject`.
    Reject {
        /// Item id.
        item: u64,
    },
    /// The ticker ran due timers (offer timeouts, after-work ends, escalations).
    Tick,
    /// Decisions an earlier record deferred (its rules were asked outside the
    /// daemon's lock meanwhile), taken again in this order; the answers are
    /// this record's outcomes (format 2).
    Decide {
        /// What to redo.
        calls: Vec<DecideCall>,
    },
    /// At start after a recovery: offers pending when the daemon stopped go back
    /// to their queues (their agents' desktops were disconnected).
    ReturnOffers,
    /// A plugin was uploaded, validated and swapped in. Its bytes are the blob
    /// `sha256`.
    PluginActivated {
        /// Department.
        department: String,
        /// Plugin name.
        plugin: String,
        /// Content hash (hex) = blob key.
        sha256: String,
        /// Generation it had when activated.
        generation: u64,
    },
    /// Ops rolled a department back to a kept generation.
    PluginRolledBack {
        /// Department.
        department: String,
        /// Generation made current again.
        generation: u64,
    },
    /// An admin issued `agent` a new token (replacing any other); only its
    /// SHA-256 is kept.
    AgentToken {
        /// Agent login.
        agent: String,
        /// SHA-256 of the token, hex.
        sha256: String,
    },
    /// An admin took `agent`'s token away.
    AgentTokenRevoked {
        /// Agent login.
        agent: String,
    },
    /// A supervisor acknowledged an alert.
    AlertAcknowledged {
        /// Alert id.
        alert: u64,
        /// Who (role, or agent login).
        by: String,
    },
    /// A validated plugin started running in shadow beside the active one. Its
    /// bytes are the blob `sha256`.
    PluginShadowed {
        /// Department.
        department: String,
        /// Plugin name.
        plugin: String,
        /// Content hash (hex) = blob key.
        sha256: String,
        /// Its generation.
        generation: u64,
    },
    /// The shadow generation became the active one.
    PluginPromoted {
        /// Department.
        department: String,
        /// The shadow's generation.
        generation: u64,
    },
    /// The shadow was stopped without promotion (it stays kept for rollback).
    PluginUnshadowed {
        /// Department.
        department: String,
        /// The shadow's generation.
        generation: u64,
    },
    /// A candidate got a generation number and was then refused by its
    /// validation (fixtures or smoke call); recorded so the number is never
    /// handed out again. Changes nothing else.
    PluginRejected {
        /// Department.
        department: String,
        /// Content hash (hex); the bytes are not stored.
        sha256: String,
        /// The generation number it had.
        generation: u64,
        /// Why.
        reason: String,
    },
    /// The department's fixtures were replaced by an upload: the blob `sha256`
    /// holds the TOML text.
    PluginFixtures {
        /// Department.
        department: String,
        /// Content hash (hex) = blob key.
        sha256: String,
    },
    /// The plugin file named in the config was loaded at start (and activated
    /// by the `PluginActivated` that follows): a restart with the same file
    /// keeps what the journal says is active; a changed file is loaded again.
    PluginFromConfig {
        /// Department.
        department: String,
        /// Content hash of the file (hex).
        sha256: String,
    },
    /// The watcher handled `plugin_dir`'s `<department>.wasm` with this hash
    /// (swapped in or refused): at a restart the same file is not loaded again,
    /// so a later upload or rollback stands.
    PluginFromDir {
        /// Department.
        department: String,
        /// Content hash of the file (hex).
        sha256: String,
    },
}

/// Where the journal lives. Implementations make [`append`](JournalStore::append)
/// and [`put_snapshot`](JournalStore::put_snapshot) durable before returning.
pub trait JournalStore: Send {
    /// Append records, in order, as one commit; on return they survive a crash.
    /// Returns the sequence number of the last one.
    fn append(&mut self, records: &[Record]) -> Result<u64>;
    /// Up to `max` records after sequence number `after`, oldest first. A
    /// record that cannot be read is an error naming it.
    fn read(&self, after: u64, max: usize) -> Result<Vec<(u64, Record)>>;
    /// Sequence number of the last record appended (0: none yet).
    fn last_seq(&self) -> u64;
    /// Store `state`, which covers every record up to `seq`, as the snapshot to
    /// start from, and drop those records (compaction), in one durable commit.
    fn put_snapshot(&mut self, seq: u64, state: &[u8]) -> Result<()>;
    /// The latest snapshot and the sequence number it covers.
    fn snapshot(&self) -> Result<Option<(u64, Vec<u8>)>>;
    /// Store a blob (a plugin component) under `key`, durably.
    fn put_blob(&mut self, key: &str, bytes: &[u8]) -> Result<()>;
    /// The blob under `key`.
    fn blob(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Write from now on with this fencing token (a cluster store refuses
    /// writes of any other epoch than the leader's; see `serve/pg.rs`). The
    /// embedded store has one writer and ignores it.
    fn set_epoch(&mut self, _epoch: u64) {}
    /// Learn the last sequence number again (another node may have written
    /// since this one opened the store); returns it.
    fn refresh(&mut self) -> Result<u64> {
        Ok(self.last_seq())
    }
    /// The sequence number the latest snapshot covers (0: none), without
    /// reading the snapshot.
    fn snapshot_seq(&self) -> Result<u64> {
        Ok(self.snapshot()?.map_or(0, |(seq, _)| seq))
    }
    /// Every record after the snapshot, oldest first (tests, tools).
    fn records(&self) -> Result<Vec<(u64, Record)>> {
        let mut out = Vec::new();
        let mut after = self.snapshot()?.map(|(seq, _)| seq).unwrap_or(0);
        loop {
            let batch = self.read(after, 4096)?;
            let Some(&(last, _)) = batch.last() else { return Ok(out) };
            after = last;
            out.extend(batch);
        }
    }
}

const RECORDS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("records");
const BLOBS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("blobs");
/// At most one row: the latest snapshot, keyed by the last record it covers.
const SNAPSHOTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("snapshots");

/// redb's page cache. Its default (1 GiB) fills with every page the daemon ever
/// wrote, so a daemon's memory grew with its history (≈0.5 KB per item in the
/// soak) until it reached a gigabyte. The journal is written, and read only once
/// at start, so a small cache costs nothing.
const JOURNAL_CACHE_BYTES: usize = 16 << 20;

/// The embedded journal: one redb file; every group commit is one synced
/// transaction.
pub struct RedbJournal {
    db: redb::Database,
    path: PathBuf,
    next: u64,
}

impl std::fmt::Debug for RedbJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbJournal").field("path", &self.path).field("next", &self.next).finish()
    }
}

impl RedbJournal {
    /// Open (or create) the journal file `path`.
    ///
    /// A last record that cannot be read (the tail of a write the machine did
    /// not finish) is dropped with a warning; redb's commits are atomic, so this
    /// guards against a store that is not, and against a record cut short by a
    /// bug. A bad record *before* the last is corruption: [`JournalStore::read`]
    /// refuses it by number.
    pub fn open(path: &Path) -> Result<RedbJournal> {
        use redb::ReadableTable;
        let err = |e: &dyn std::fmt::Display| Error::Journal { path: path.to_owned(), message: e.to_string() };
        let db = redb::Builder::new().set_cache_size(JOURNAL_CACHE_BYTES).create(path).map_err(|e| err(&e))?;
        // Create the tables so a read of a fresh journal finds them.
        let txn = db.begin_write().map_err(|e| err(&e))?;
        let next = {
            let mut records = txn.open_table(RECORDS).map_err(|e| err(&e))?;
            txn.open_table(BLOBS).map_err(|e| err(&e))?;
            let snapshots = txn.open_table(SNAPSHOTS).map_err(|e| err(&e))?;
            let covered = snapshots.last().map_err(|e| err(&e))?.map(|(k, _)| k.value()).unwrap_or(0);
            let last = records.last().map_err(|e| err(&e))?.map(|(k, v)| (k.value(), Record::decode(v.value())));
            match last {
                Some((seq, Err(why))) => {
                    tracing::warn!(journal = %path.display(), record = seq, reason = %why, "dropping the journal's torn last record");
                    records.remove(seq).map_err(|e| err(&e))?;
                    seq.max(covered + 1)
                }
                Some((seq, Ok(_))) => seq.max(covered) + 1,
                None => covered + 1,
            }
        };
        txn.commit().map_err(|e| err(&e))?;
        Ok(RedbJournal { db, path: path.to_owned(), next })
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Journal { path: self.path.clone(), message: e.to_string() }
    }
}

impl JournalStore for RedbJournal {
    fn append(&mut self, records: &[Record]) -> Result<u64> {
        let mut seq = self.next;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
            for record in records {
                table.insert(seq, record.encode()?.as_slice()).map_err(|e| self.err(e))?;
                seq += 1;
            }
        }
        // Durability::Immediate is redb's default: commit returns once synced.
        txn.commit().map_err(|e| self.err(e))?;
        self.next = seq;
        Ok(seq - 1)
    }

    fn read(&self, after: u64, max: usize) -> Result<Vec<(u64, Record)>> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(max.min(4096));
        for entry in table.range(after.saturating_add(1)..).map_err(|e| self.err(e))?.take(max) {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let seq = k.value();
            let record =
                Record::decode(v.value()).map_err(|why| self.err(format!("record {seq} is corrupt: {why}")))?;
            out.push((seq, record));
        }
        Ok(out)
    }

    fn last_seq(&self) -> u64 {
        self.next - 1
    }

    fn put_snapshot(&mut self, seq: u64, state: &[u8]) -> Result<()> {
        use redb::ReadableTable;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut snapshots = txn.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
            let newest = snapshots.last().map_err(|e| self.err(e))?.map(|(k, _)| k.value());
            if newest.is_some_and(|newest| newest > seq) {
                // The records between would be gone: never go back.
                return Err(
                    self.err(format!("a snapshot covering {} is newer than this one ({seq})", newest.unwrap_or(0)))
                );
            }
            snapshots.retain(|_, _| false).map_err(|e| self.err(e))?;
            snapshots.insert(seq, state).map_err(|e| self.err(e))?;
            let mut records = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
            records.retain_in(..=seq, |_, _| false).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        self.next = self.next.max(seq + 1);
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
        use redb::{ReadableDatabase, ReadableTable};
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
        Ok(table.last().map_err(|e| self.err(e))?.map(|(k, v)| (k.value(), v.value().to_vec())))
    }

    fn put_blob(&mut self, key: &str, bytes: &[u8]) -> Result<()> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(BLOBS).map_err(|e| self.err(e))?;
            table.insert(key, bytes).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    fn blob(&self, key: &str) -> Result<Option<Vec<u8>>> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(BLOBS).map_err(|e| self.err(e))?;
        Ok(table.get(key).map_err(|e| self.err(e))?.map(|v| v.value().to_vec()))
    }
}

/// Group commit over a [`JournalStore`]; see the module docs.
pub struct GroupCommit {
    store: Mutex<Box<dyn JournalStore>>,
    /// What ops do when a commit fails (part of the error every later write gets).
    on_failure: &'static str,
    state: Mutex<CommitState>,
    committed: Condvar,
}

#[derive(Default)]
struct CommitState {
    /// Records handed over and not yet committed, oldest first.
    pending: Vec<Record>,
    /// Ticket of the last record handed over.
    last_ticket: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A leader is writing a batch now.
    committing: bool,
    /// Why the journal stopped taking writes.
    failed: Option<String>,
    /// Commits (disk syncs) made, for `/metrics`.
    commits: u64,
    /// Sequence number of the store's last record when this opened it: the
    /// record with ticket `t` is stored as `base + t`.
    base: u64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Commit through `store`.
    pub fn new(store: Box<dyn JournalStore>) -> GroupCommit {
        let base = store.last_seq();
        GroupCommit {
            store: Mutex::new(store),
            on_failure: "restart the daemon",
            state: Mutex::new(CommitState { base, ..CommitState::default() }),
            committed: Condvar::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CommitState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Box<dyn JournalStore>> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hand `record` over for the next commit; returns its ticket for
    /// [`GroupCommit::wait_durable`]. Refused once a commit has failed.
    pub fn enqueue(&self, record: Record) -> std::result::Result<u64, String> {
        let mut state = self.state();
        if let Some(why) = &state.failed {
            return Err(why.clone());
        }
        state.pending.push(record);
        state.last_ticket += 1;
        Ok(state.last_ticket)
    }

    /// Block until the record with `ticket` (and every one before it) is synced.
    pub fn wait_durable(&self, ticket: u64) -> std::result::Result<(), String> {
        let mut state = self.state();
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            if let Some(why) = &state.failed {
                return Err(why.clone());
            }
            if state.committing {
                state = self.committed.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: write everything pending in one synced commit.
            state.committing = true;
            let batch = std::mem::take(&mut state.pending);
            let upto = state.last_ticket;
            drop(state);
            let result = if batch.is_empty() { Ok(0) } else { self.store().append(&batch) };
            state = self.state();
            state.committing = false;
            match result {
                Ok(_) => {
                    state.durable = upto;
                    state.commits += 1;
                }
                Err(e) => {
                    let why =
                        format!("the journal could not commit and takes no more writes; {}: {e}", self.on_failure);
                    tracing::error!(error = %e, "journal commit failed");
                    state.failed = Some(why);
                }
            }
            self.committed.notify_all();
        }
    }

    /// Commit everything handed over so far (the ticker, shutdown).
    pub fn flush(&self) -> std::result::Result<(), String> {
        let last = self.state().last_ticket;
        self.wait_durable(last)
    }

    /// Why writes stopped, if they did.
    pub fn failure(&self) -> Option<String> {
        self.state().failed.clone()
    }

    /// Disk commits made since start.
    pub fn commits(&self) -> u64 {
        self.state().commits
    }

    /// Every durable record after the snapshot, oldest first (tests).
    pub fn records(&self) -> Result<Vec<(u64, Record)>> {
        self.store().records()
    }

    /// Visit the records after sequence number `after`, oldest first
    /// (start-up). They are read in batches, so `visit` may use the store (a
    /// plugin blob) and the history is never in memory at once.
    pub fn replay(&self, mut after: u64, visit: &mut dyn FnMut(u64, Record) -> Result<()>) -> Result<()> {
        loop {
            let batch = self.store().read(after, 4096)?;
            let Some(&(last, _)) = batch.last() else { return Ok(()) };
            after = last;
            for (seq, record) in batch {
                visit(seq, record)?;
            }
        }
    }

    /// The latest snapshot and the sequence number it covers.
    pub fn snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
        self.store().snapshot()
    }

    /// Store `state`, taken right after the record with `ticket` was applied,
    /// as the snapshot, once that record is durable; the records it covers are
    /// dropped. Returns the sequence number it covers. Call it outside the
    /// daemon's state lock: it waits for a commit and writes the snapshot.
    pub fn put_snapshot(&self, ticket: u64, state: &[u8]) -> std::result::Result<u64, String> {
        self.wait_durable(ticket)?;
        let seq = self.state().base + ticket;
        self.store().put_snapshot(seq, state).map_err(|e| format!("the snapshot could not be written: {e}"))?;
        Ok(seq)
    }

    /// A cluster's node: after a failed commit it rebuilds itself (the
    /// error says so instead of asking for a restart).
    pub fn in_cluster(mut self) -> GroupCommit {
        self.on_failure = "this node stops leading and rebuilds its state as a standby";
        self
    }

    /// Start writing as the cluster's leader with `epoch`: the records
    /// another node wrote since this one opened the store come before this
    /// node's first. Nothing may be pending (a standby hands nothing over).
    pub fn take_over(&self, epoch: u64) -> Result<()> {
        let mut store = self.store();
        store.set_epoch(epoch);
        let last = store.refresh()?;
        let mut state = self.state();
        if !state.pending.is_empty() {
            return Err(Error::Invalid("records were handed over before the takeover".into()));
        }
        state.base = last - state.last_ticket.min(last);
        state.durable = state.last_ticket;
        Ok(())
    }

    /// The sequence number the store's latest snapshot covers (0: none).
    pub fn snapshot_seq(&self) -> Result<u64> {
        self.store().snapshot_seq()
    }

    /// The last sequence number in the store now (a standby: how far the
    /// leader has written).
    pub fn store_last_seq(&self) -> Result<u64> {
        self.store().refresh()
    }

    /// Stop taking writes: this node is no longer the leader (`why`). Requests
    /// waiting for a commit get the reason.
    pub fn stop_writes(&self, why: &str) {
        let mut state = self.state();
        if state.failed.is_none() {
            state.failed = Some(why.to_owned());
        }
        self.committed.notify_all();
    }

    /// Ticket of the last record handed over.
    pub fn last_ticket(&self) -> u64 {
        self.state().last_ticket
    }

    /// Store a blob durably (outside the daemon's state lock).
    pub fn put_blob(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.store().put_blob(key, bytes)
    }

    /// The blob under `key`.
    pub fn blob(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.store().blob(key)
    }
}

/// A journal in memory (tests; loses everything on drop).
#[derive(Debug, Default)]
pub struct MemoryJournal {
    records: Vec<(u64, Record)>,
    last: u64,
    snapshot: Option<(u64, Vec<u8>)>,
    blobs: BTreeMap<String, Vec<u8>>,
}

impl JournalStore for MemoryJournal {
    fn append(&mut self, records: &[Record]) -> Result<u64> {
        for record in records {
            self.last += 1;
            self.records.push((self.last, record.clone()));
        }
        Ok(self.last)
    }
    fn read(&self, after: u64, max: usize) -> Result<Vec<(u64, Record)>> {
        Ok(self.records.iter().filter(|(seq, _)| *seq > after).take(max).cloned().collect())
    }
    fn last_seq(&self) -> u64 {
        self.last
    }
    fn put_snapshot(&mut self, seq: u64, state: &[u8]) -> Result<()> {
        self.records.retain(|(s, _)| *s > seq);
        self.snapshot = Some((seq, state.to_vec()));
        self.last = self.last.max(seq);
        Ok(())
    }
    fn snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self.snapshot.clone())
    }
    fn put_blob(&mut self, key: &str, bytes: &[u8]) -> Result<()> {
        self.blobs.insert(key.to_owned(), bytes.to_vec());
        Ok(())
    }
    fn blob(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.blobs.get(key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redb_records_and_blobs_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("switchyard-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.redb");
        {
            let mut journal = RedbJournal::open(&path).unwrap();
            assert_eq!(journal.append(&[Record::new(5, Op::Tick)]).unwrap(), 1);
            assert_eq!(journal.append(&[Record::new(7, Op::Withdraw { item: 3 })]).unwrap(), 2);
            journal.put_blob("abc", b"wasm").unwrap();
        }
        let mut journal = RedbJournal::open(&path).unwrap();
        let records = journal.records().unwrap();
        assert_eq!(records, vec![(1, Record::new(5, Op::Tick)), (2, Record::new(7, Op::Withdraw { item: 3 }))]);
        assert_eq!(journal.blob("abc").unwrap().as_deref(), Some(&b"wasm"[..]));
        assert_eq!(journal.blob("nope").unwrap(), None);
        assert_eq!(journal.append(&[Record::new(9, Op::ReturnOffers), Record::new(9, Op::Tick)]).unwrap(), 4);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Scenario: eight threads hand records over and wait for them: every record
    /// is durable once its wait returns, in hand-over order, and the records
    /// shared commits (fewer commits than records).
    #[test]
    fn group_commit_shares_syncs_and_keeps_order() {
        let group = std::sync::Arc::new(GroupCommit::new(Box::new(MemoryJournal::default())));
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let (group, order) = (group.clone(), order.clone());
                std::thread::spawn(move || {
                    for n in 0..50u64 {
                        let ticket = {
                            // Hand-over order = apply order (the daemon holds its lock here).
                            let mut order = order.lock().unwrap();
                            let item = t * 1000 + n;
                            order.push(item);
                            group.enqueue(Record::new(item, Op::Withdraw { item })).unwrap()
                        };
                        group.wait_durable(ticket).unwrap();
                        let durable = group.records().unwrap();
                        assert!(durable.iter().any(|(_, r)| r.at_ms == t * 1000 + n), "acknowledged before durable");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let records: Vec<u64> = group.records().unwrap().into_iter().map(|(_, r)| r.at_ms).collect();
        assert_eq!(records, *order.lock().unwrap());
        assert!(group.commits() <= 400, "{} commits", group.commits());
    }

    /// A commit that fails stops every later write with the reason.
    #[test]
    fn a_failed_commit_refuses_later_writes() {
        struct Broken;
        impl JournalStore for Broken {
            fn append(&mut self, _: &[Record]) -> Result<u64> {
                Err(Error::Invalid("disk full".into()))
            }
            fn read(&self, _: u64, _: usize) -> Result<Vec<(u64, Record)>> {
                Ok(Vec::new())
            }
            fn last_seq(&self) -> u64 {
                0
            }
            fn put_snapshot(&mut self, _: u64, _: &[u8]) -> Result<()> {
                Err(Error::Invalid("disk full".into()))
            }
            fn snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
                Ok(None)
            }
            fn put_blob(&mut self, _: &str, _: &[u8]) -> Result<()> {
                Ok(())
            }
            fn blob(&self, _: &str) -> Result<Option<Vec<u8>>> {
                Ok(None)
            }
        }
        let group = GroupCommit::new(Box::new(Broken));
        let ticket = group.enqueue(Record::new(1, Op::Tick)).unwrap();
        let err = group.wait_durable(ticket).unwrap_err();
        assert!(err.contains("disk full") && err.contains("restart the daemon"), "{err}");
        assert!(group.enqueue(Record::new(2, Op::Tick)).is_err());
        assert!(group.failure().is_some());
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("switchyard-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("journal.redb")
    }

    /// Write `bytes` as record `seq` behind the journal's back.
    fn write_raw(path: &Path, seq: u64, bytes: &[u8]) {
        let db = redb::Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(RECORDS).unwrap().insert(seq, bytes).unwrap();
        txn.commit().unwrap();
    }

    /// Scenario: the machine died while the last record was being written. The
    /// torn record is dropped at open (with a warning), the records before it
    /// replay, and the next record takes its number.
    #[test]
    fn a_torn_last_record_is_dropped() {
        let path = scratch("torn");
        RedbJournal::open(&path).unwrap().append(&[Record::new(1, Op::Tick), Record::new(2, Op::Tick)]).unwrap();
        write_raw(&path, 3, br#"{"v":1,"at_ms":3,"op":{"op":"wit"#);
        let mut journal = RedbJournal::open(&path).unwrap();
        let seqs: Vec<u64> = journal.records().unwrap().into_iter().map(|(seq, _)| seq).collect();
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(journal.append(&[Record::new(4, Op::Tick)]).unwrap(), 3);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// A bad record before the last is corruption: replay refuses, naming it.
    #[test]
    fn corruption_before_the_tail_refuses_and_names_the_record() {
        let path = scratch("corrupt");
        RedbJournal::open(&path).unwrap().append(&[Record::new(1, Op::Tick), Record::new(2, Op::Tick)]).unwrap();
        write_raw(&path, 1, b"\x00garbage");
        let journal = RedbJournal::open(&path).unwrap();
        let err = journal.records().unwrap_err().to_string();
        assert!(err.contains("record 1 is corrupt") && err.contains(&path.display().to_string()), "{err}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// Records of another format are named by version, not as garbage.
    #[test]
    fn records_of_other_formats_say_which() {
        let v0 = br#"{"at_ms":5,"op":{"op":"create-item","item":{"department":"billing","queue":"q","due_in_s":3.0}}}"#;
        let why = Record::decode(v0).unwrap_err();
        assert!(why.contains("format 0"), "{why}");
        let v9 = br#"{"v":9,"at_ms":5,"op":{"op":"tick"}}"#;
        assert!(Record::decode(v9).unwrap_err().contains("format 9"));
    }

    /// A snapshot covers the records up to its sequence number and drops them;
    /// numbering goes on after it, also across a reopen.
    #[test]
    fn a_snapshot_compacts_the_records_it_covers() {
        let path = scratch("snapshot");
        {
            let mut journal = RedbJournal::open(&path).unwrap();
            journal.append(&(1..=5).map(|t| Record::new(t, Op::Tick)).collect::<Vec<_>>()).unwrap();
            journal.put_snapshot(5, b"state at 5").unwrap();
            assert!(journal.records().unwrap().is_empty());
            journal.append(&[Record::new(6, Op::Tick)]).unwrap();
        }
        let mut journal = RedbJournal::open(&path).unwrap();
        assert_eq!(journal.snapshot().unwrap(), Some((5, b"state at 5".to_vec())));
        assert_eq!(journal.records().unwrap().into_iter().map(|(seq, _)| seq).collect::<Vec<_>>(), vec![6]);
        // A second snapshot replaces the first.
        journal.put_snapshot(6, b"state at 6").unwrap();
        assert_eq!(journal.append(&[Record::new(7, Op::Tick)]).unwrap(), 7);
        drop(journal);
        let journal = RedbJournal::open(&path).unwrap();
        assert_eq!(journal.snapshot().unwrap().map(|(seq, _)| seq), Some(6));
        assert_eq!(journal.last_seq(), 7);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// Group commit maps tickets to sequence numbers across a restart, so a
    /// snapshot covers exactly the records applied before it.
    #[test]
    fn group_commit_snapshots_cover_their_ticket() {
        let mut store = MemoryJournal::default();
        store.append(&[Record::new(1, Op::Tick), Record::new(2, Op::Tick)]).unwrap();
        let group = GroupCommit::new(Box::new(store));
        let first = group.enqueue(Record::new(3, Op::Tick)).unwrap();
        group.enqueue(Record::new(4, Op::Tick)).unwrap();
        assert_eq!(group.put_snapshot(first, b"after 3").unwrap(), 3);
        let left: Vec<u64> = group.records().unwrap().into_iter().map(|(_, r)| r.at_ms).collect();
        assert_eq!(left, vec![4]);
    }

    proptest::proptest! {
        /// Whatever bytes a damaged store hands back, reading them is an error
        /// that says why (or a record), never a panic: a record of this
        /// format with bytes flipped, cut or appended.
        #[test]
        fn damaged_records_are_refused_not_panicked_on(flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 0..8), cut in 0usize..4096) {
            let item = ItemRecord {
                department: "billing".into(), queue: "q".into(), channel: Channel::Chat,
                skills: vec![("billing".into(), 3)], attributes: vec![("ref".into(), "x".into())],
                priority: 5, tier: Tier::Gold, value: 12.5, customer: Some("c".into()), case: None, due_in_ms: Some(9),
            };
            let record = Record {
                outcomes: vec![Outcome::Match { by: Origin::BuiltIn, result: MatchResult::Scores(vec![1.0, -1.0]) }],
                ..Record::new(7, Op::CreateItem { item, id: Some(3) })
            };
            let mut bytes = record.encode().unwrap();
            for (at, byte) in flips {
                let len = bytes.len();
                bytes[at % len] = byte;
            }
            bytes.truncate(cut.max(1));
            match Record::decode(&bytes) {
                Ok(read) => proptest::prop_assert_eq!(read.v, FORMAT_VERSION),
                Err(why) => proptest::prop_assert!(!why.is_empty()),
            }
        }
    }
}
