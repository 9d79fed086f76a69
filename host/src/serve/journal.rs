//! The durable journal: every input the daemon accepts (new item, withdrawal,
//! completion, agent registration and state, offer answers, clock ticks that did
//! something, plugin swaps), with the time it was applied at, written and synced
//! *before* the daemon answers the request.
//!
//! Recovery replays the records, in order and at their recorded times, into a
//! fresh router: the router is deterministic for the same inputs at the same
//! times, so queues, offers, cases and statistics come back as they were.
//!
//! The store sits behind [`JournalStore`] so a networked store can be added later;
//! [`RedbJournal`] is the embedded default (redb: pure Rust, ACID, each commit
//! synced to disk), and [`MemoryJournal`] serves tests.
//!
//! **Group commit** ([`GroupCommit`]): the daemon hands a record over under its
//! state lock (cheap: a push onto a list) and applies it; the request then waits,
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
use crate::router::Presence;

use super::api::{AgentBody, ItemBody};

/// One accepted input, at the time it was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The router's clock when it was applied, ms since the Unix epoch.
    pub at_ms: u64,
    /// What was done.
    pub op: Op,
}

/// The inputs, as the API accepted them (already validated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// `POST /v1/items`.
    CreateItem {
        /// The request body.
        item: ItemBody,
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
        handoff: Option<ItemBody>,
    },
    /// `PUT /v1/agents/{id}` (and the agents of the config file at first start).
    RegisterAgent {
        /// Login.
        name: String,
        /// Skills, capacity, group, after-work.
        agent: AgentBody,
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
    /// An upload that failed validation (kept for the audit log; changes nothing).
    PluginRefused {
        /// Department.
        department: String,
        /// Content hash (hex).
        sha256: String,
        /// Why.
        reason: String,
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
/// durable before returning.
pub trait JournalStore: Send {
    /// Append records, in order, as one commit; on return they survive a crash.
    /// Returns the sequence number of the last one.
    fn append(&mut self, records: &[Record]) -> Result<u64>;
    /// Every record, oldest first, with its sequence number.
    fn records(&self) -> Result<Vec<(u64, Record)>>;
    /// Store a blob (a plugin component) under `key`, durably.
    fn put_blob(&mut self, key: &str, bytes: &[u8]) -> Result<()>;
    /// The blob under `key`.
    fn blob(&self, key: &str) -> Result<Option<Vec<u8>>>;
}

const RECORDS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("records");
const BLOBS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("blobs");

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
        f.debug_struct("RedbJournal")
            .field("path", &self.path)
            .field("next", &self.next)
            .finish()
    }
}

impl RedbJournal {
    /// Open (or create) the journal file `path`.
    pub fn open(path: &Path) -> Result<RedbJournal> {
        let err = |e: &dyn std::fmt::Display| Error::Journal {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let db = redb::Builder::new()
            .set_cache_size(JOURNAL_CACHE_BYTES)
            .create(path)
            .map_err(|e| err(&e))?;
        // Create the tables so a read of a fresh journal finds them.
        let txn = db.begin_write().map_err(|e| err(&e))?;
        let next = {
            let records = txn.open_table(RECORDS).map_err(|e| err(&e))?;
            txn.open_table(BLOBS).map_err(|e| err(&e))?;
            let last = redb::ReadableTable::last(&records).map_err(|e| err(&e))?;
            last.map(|(k, _)| k.value() + 1).unwrap_or(1)
        };
        txn.commit().map_err(|e| err(&e))?;
        Ok(RedbJournal {
            db,
            path: path.to_owned(),
            next,
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Journal {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

impl JournalStore for RedbJournal {
    fn append(&mut self, records: &[Record]) -> Result<u64> {
        let mut seq = self.next;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
            for record in records {
                let bytes = serde_json::to_vec(record).map_err(|e| self.err(e))?;
                table
                    .insert(seq, bytes.as_slice())
                    .map_err(|e| self.err(e))?;
                seq += 1;
            }
        }
        // Durability::Immediate is redb's default: commit returns once synced.
        txn.commit().map_err(|e| self.err(e))?;
        self.next = seq;
        Ok(seq - 1)
    }

    fn records(&self) -> Result<Vec<(u64, Record)>> {
        use redb::{ReadableDatabase, ReadableTable};
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let record: Record = serde_json::from_slice(v.value())
                .map_err(|e| self.err(format!("record {} is unreadable: {e}", k.value())))?;
            out.push((k.value(), record));
        }
        Ok(out)
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
        Ok(table
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_vec()))
    }
}

/// Group commit over a [`JournalStore`]; see the module docs.
pub struct GroupCommit {
    store: Mutex<Box<dyn JournalStore>>,
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
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Commit through `store`.
    pub fn new(store: Box<dyn JournalStore>) -> GroupCommit {
        GroupCommit { store: Mutex::new(store), state: Mutex::new(CommitState::default()), committed: Condvar::new() }
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
                    let why = format!("the journal could not commit and takes no more writes; restart the daemon: {e}");
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

    /// Every durable record, oldest first (start-up).
    pub fn records(&self) -> Result<Vec<(u64, Record)>> {
        self.store().records()
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
    blobs: BTreeMap<String, Vec<u8>>,
}

impl JournalStore for MemoryJournal {
    fn append(&mut self, records: &[Record]) -> Result<u64> {
        for record in records {
            let seq = self.records.len() as u64 + 1;
            self.records.push((seq, record.clone()));
        }
        Ok(self.records.len() as u64)
    }
    fn records(&self) -> Result<Vec<(u64, Record)>> {
        Ok(self.records.clone())
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
            assert_eq!(
                journal
                    .append(&[Record {
                        at_ms: 5,
                        op: Op::Tick
                    }])
                    .unwrap(),
                1
            );
            assert_eq!(
                journal
                    .append(&[Record {
                        at_ms: 7,
                        op: Op::Withdraw { item: 3 }
                    }])
                    .unwrap(),
                2
            );
            journal.put_blob("abc", b"wasm").unwrap();
        }
        let mut journal = RedbJournal::open(&path).unwrap();
        let records = journal.records().unwrap();
        assert_eq!(
            records,
            vec![
                (
                    1,
                    Record {
                        at_ms: 5,
                        op: Op::Tick
                    }
                ),
                (
                    2,
                    Record {
                        at_ms: 7,
                        op: Op::Withdraw { item: 3 }
                    }
                )
            ]
        );
        assert_eq!(journal.blob("abc").unwrap().as_deref(), Some(&b"wasm"[..]));
        assert_eq!(journal.blob("nope").unwrap(), None);
        assert_eq!(
            journal
                .append(&[
                    Record {
                        at_ms: 9,
                        op: Op::ReturnOffers
                    },
                    Record {
                        at_ms: 9,
                        op: Op::Tick
                    }
                ])
                .unwrap(),
            4
        );
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
                            group.enqueue(Record { at_ms: item, op: Op::Withdraw { item } }).unwrap()
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
            fn records(&self) -> Result<Vec<(u64, Record)>> {
                Ok(Vec::new())
            }
            fn put_blob(&mut self, _: &str, _: &[u8]) -> Result<()> {
                Ok(())
            }
            fn blob(&self, _: &str) -> Result<Option<Vec<u8>>> {
                Ok(None)
            }
        }
        let group = GroupCommit::new(Box::new(Broken));
        let ticket = group.enqueue(Record { at_ms: 1, op: Op::Tick }).unwrap();
        let err = group.wait_durable(ticket).unwrap_err();
        assert!(err.contains("disk full") && err.contains("restart the daemon"), "{err}");
        assert!(group.enqueue(Record { at_ms: 2, op: Op::Tick }).is_err());
        assert!(group.failure().is_some());
    }
}
