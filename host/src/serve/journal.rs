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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
}

/// Where the journal lives. Implementations make [`append`](JournalStore::append)
/// durable before returning.
pub trait JournalStore: Send {
    /// Append a record; on return it survives a crash. Returns its sequence number.
    fn append(&mut self, record: &Record) -> Result<u64>;
    /// Every record, oldest first, with its sequence number.
    fn records(&self) -> Result<Vec<(u64, Record)>>;
    /// Store a blob (a plugin component) under `key`, durably.
    fn put_blob(&mut self, key: &str, bytes: &[u8]) -> Result<()>;
    /// The blob under `key`.
    fn blob(&self, key: &str) -> Result<Option<Vec<u8>>>;
}

const RECORDS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("records");
const BLOBS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("blobs");

/// The embedded journal: one redb file; every append is its own synced commit.
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
        let db = redb::Database::create(path).map_err(|e| err(&e))?;
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
    fn append(&mut self, record: &Record) -> Result<u64> {
        let bytes = serde_json::to_vec(record).map_err(|e| self.err(e))?;
        let seq = self.next;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
            table
                .insert(seq, bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        // Durability::Immediate is redb's default: commit returns once synced.
        txn.commit().map_err(|e| self.err(e))?;
        self.next += 1;
        Ok(seq)
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

/// A journal in memory (tests; loses everything on drop).
#[derive(Debug, Default)]
pub struct MemoryJournal {
    records: Vec<(u64, Record)>,
    blobs: BTreeMap<String, Vec<u8>>,
}

impl JournalStore for MemoryJournal {
    fn append(&mut self, record: &Record) -> Result<u64> {
        let seq = self.records.len() as u64 + 1;
        self.records.push((seq, record.clone()));
        Ok(seq)
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
                    .append(&Record {
                        at_ms: 5,
                        op: Op::Tick
                    })
                    .unwrap(),
                1
            );
            assert_eq!(
                journal
                    .append(&Record {
                        at_ms: 7,
                        op: Op::Withdraw { item: 3 }
                    })
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
                .append(&Record {
                    at_ms: 9,
                    op: Op::ReturnOffers
                })
                .unwrap(),
            3
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
