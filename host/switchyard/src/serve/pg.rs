//! The PostgreSQL store of a cluster of daemons: the journal, snapshots and
//! blobs in tables ([`PgJournal`], a [`JournalStore`]), the schema migrations
//! (`host/switchyard/migrations/`, applied at connect), the leader lease
//! with its fencing token ([`Lease`]), and the cluster's audit log
//! ([`forward_audit`], [`read_audit`]).
//!
//! **Fencing.** The leader holds a session advisory lock on a connection of its
//! own (the lease); taking it, it raises `switchyard_leader.epoch` and writes
//! every record and snapshot with that epoch. Triggers refuse a row whose epoch
//! is not the current one (SQLSTATE `SYF01`), so a deposed leader that has not
//! noticed yet cannot write: the database refuses, not only the node. A leader
//! that dies (SIGKILL, machine gone, connection cut) loses the lock with its
//! connection, and a standby takes it at its next try.
//!
//! The client is the synchronous `postgres` crate: the journal is called from
//! blocking threads (group commit, start-up, the follower), as the embedded
//! store is.

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::path::PathBuf;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

use super::journal::{JournalStore, Record};
use crate::error::{Error, Result};

/// The migrations, in order; each runs once, in one transaction.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_cluster_store.sql")),
    (2, include_str!("../../migrations/0002_audit.sql")),
];

/// The advisory lock of the leadership (any number no other application on
/// the database uses: "SWYD").
const LEADER_LOCK: i64 = 0x5357_5944;
/// The advisory lock held while migrating, so two nodes starting together do
/// not both migrate.
const MIGRATION_LOCK: i64 = 0x5357_5945;

/// The channel the leader notifies after each commit (payload: the last
/// sequence number), so standbys read at once instead of at their next poll.
pub(crate) const RECORDS_CHANNEL: &str = "switchyard_records";

/// SQLSTATE the fence raises.
const FENCED: &str = "SYF01";

/// Where a cluster's store is, and who connects.
#[derive(Clone)]
pub(crate) struct StoreUrl {
    config: postgres::Config,
    /// The URL with its password hidden, for messages.
    shown: String,
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl StoreUrl {
    /// Parse `url` (checked by the config already); `SWITCHYARD_STORE_PASSWORD`,
    /// when set, is the password. Connections are named `node` in
    /// `pg_stat_activity`.
    pub(crate) fn new(url: &str, node: &str) -> Result<StoreUrl> {
        let shown = super::config::redact_password(url);
        let mut config: postgres::Config = url.parse().map_err(|e| Error::Journal {
            path: PathBuf::from(&shown),
            message: format!("not a PostgreSQL URL: {e}"),
        })?;
        if let Ok(password) = std::env::var("SWITCHYARD_STORE_PASSWORD") {
            config.password(password);
        }
        config.application_name(node);
        config.connect_timeout(std::time::Duration::from_secs(5));
        // A leader whose machine vanished without closing its connections is
        // noticed by the database within seconds, not the kernel's two hours.
        config.keepalives(true).keepalives_idle(std::time::Duration::from_secs(2));
        Ok(StoreUrl { config, shown })
    }

    fn err(&self, message: impl std::fmt::Display) -> Error {
        Error::Journal { path: PathBuf::from(&self.shown), message: message.to_string() }
    }

    /// A new connection.
    pub(crate) fn connect(&self) -> Result<Client> {
        self.config.connect(NoTls).map_err(|e| self.err(format!("cannot connect: {}", describe(&e))))
    }

    /// Create or bring up to date the tables (idempotent; concurrent nodes
    /// wait for each other).
    pub(crate) fn migrate(&self) -> Result<()> {
        let mut client = self.connect()?;
        let mut txn = client.transaction().map_err(|e| self.err(describe(&e)))?;
        txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(|e| self.err(describe(&e)))?;
        txn.batch_execute(
            "CREATE TABLE IF NOT EXISTS switchyard_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .map_err(|e| self.err(describe(&e)))?;
        let applied: Vec<i32> = txn
            .query("SELECT version FROM switchyard_schema", &[])
            .map_err(|e| self.err(describe(&e)))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let newest_known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
        if let Some(newer) = applied.iter().find(|v| **v > newest_known) {
            return Err(self.err(format!(
                "the database's schema is version {newer}, newer than this build knows ({newest_known}); run a newer switchyard"
            )));
        }
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            txn.batch_execute(sql).map_err(|e| self.err(format!("migration {version}: {}", describe(&e))))?;
            txn.execute("INSERT INTO switchyard_schema (version) VALUES ($1)", &[version])
                .map_err(|e| self.err(describe(&e)))?;
            tracing::info!(store = %self.shown, version, "store migrated");
        }
        txn.commit().map_err(|e| self.err(describe(&e)))
    }
}

/// A database error with its detail (the `Display` of `postgres::Error` is
/// only "db error").
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Whether `e` is the fence refusing a deposed leader's write.
fn is_fenced(e: &postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| db.code().code() == FENCED)
}

/// The journal in PostgreSQL. Written only by the leader, with its epoch;
/// standbys read it.
pub(crate) struct PgJournal {
    url: StoreUrl,
    /// Reads take `&self` and the client needs `&mut`; a second connection
    /// would double every node's connections, so reads borrow this one (the
    /// store is used behind the group commit's mutex, one caller at a time).
    /// Dropped on a thread of its own (see `Drop`).
    client: ManuallyDrop<RefCell<Client>>,
    /// The next record's sequence number.
    next: u64,
    /// The epoch this node writes with (0: never led; every write is refused).
    epoch: i64,
}

impl std::fmt::Debug for PgJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgJournal").field("store", &self.url).field("next", &self.next).finish()
    }
}

impl PgJournal {
    /// Connect (the tables must exist: [`StoreUrl::migrate`]).
    pub(crate) fn open(url: &StoreUrl) -> Result<PgJournal> {
        let client = ManuallyDrop::new(RefCell::new(url.connect()?));
        let mut journal = PgJournal { url: url.clone(), client, next: 1, epoch: 0 };
        journal.refresh()?;
        Ok(journal)
    }

    fn err(&self, e: &postgres::Error) -> Error {
        if is_fenced(e) {
            self.url.err(format!("this node is no longer the leader; its write was refused: {}", describe(e)))
        } else {
            self.url.err(describe(e))
        }
    }
}

impl JournalStore for PgJournal {
    fn append(&mut self, records: &[Record]) -> Result<u64> {
        let first = self.next;
        let mut seqs = Vec::with_capacity(records.len());
        let mut bodies = Vec::with_capacity(records.len());
        for (n, record) in records.iter().enumerate() {
            seqs.push(i64::try_from(first + n as u64).map_err(|_| self.url.err("sequence numbers exhausted"))?);
            bodies.push(record.encode()?);
        }
        let Some(&last) = seqs.last() else { return Ok(self.next - 1) };
        let epochs = vec![self.epoch; seqs.len()];
        let mut client = self.client.borrow_mut();
        let mut txn = client.transaction().map_err(|e| self.url.err(describe(&e)))?;
        let inserted = txn.execute(
            "INSERT INTO switchyard_records (seq, epoch, body) SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[])",
            &[&seqs, &epochs, &bodies],
        );
        if let Err(e) = inserted {
            return Err(self.err(&e));
        }
        // Delivered at commit, to the standbys listening.
        txn.execute("SELECT pg_notify($1, $2)", &[&RECORDS_CHANNEL, &last.to_string()]).map_err(|e| self.err(&e))?;
        // synchronous_commit (PostgreSQL's default) returns once the WAL is flushed.
        txn.commit().map_err(|e| self.err(&e))?;
        self.next = last as u64 + 1;
        Ok(last as u64)
    }

    fn read(&self, after: u64, max: usize) -> Result<Vec<(u64, Record)>> {
        let mut client = self.client.borrow_mut();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = client
            .query("SELECT seq, body FROM switchyard_records WHERE seq > $1 ORDER BY seq LIMIT $2", &[&after, &limit])
            .map_err(|e| self.url.err(describe(&e)))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                let body: &[u8] = row.get(1);
                Record::decode(body)
                    .map(|record| (seq as u64, record))
                    .map_err(|why| self.url.err(format!("record {seq} is corrupt: {why}")))
            })
            .collect()
    }

    fn last_seq(&self) -> u64 {
        self.next - 1
    }

    fn put_snapshot(&mut self, seq: u64, state: &[u8]) -> Result<()> {
        let seq = i64::try_from(seq).map_err(|_| self.url.err("sequence number out of range"))?;
        let epoch = self.epoch;
        let mut client = self.client.borrow_mut();
        let mut txn = client.transaction().map_err(|e| self.url.err(describe(&e)))?;
        let newest: Option<i64> = txn
            .query_one("SELECT max(seq) FROM switchyard_snapshots", &[])
            .map_err(|e| self.url.err(describe(&e)))?
            .get(0);
        if newest.is_some_and(|newest| newest > seq) {
            return Err(self
                .url
                .err(format!("a snapshot covering {} is newer than this one ({seq})", newest.unwrap_or(0))));
        }
        let inserted = txn.execute(
            "INSERT INTO switchyard_snapshots (seq, epoch, state) VALUES ($1, $2, $3) ON CONFLICT (seq) DO NOTHING",
            &[&seq, &epoch, &state],
        );
        if let Err(e) = inserted {
            return Err(self.err(&e));
        }
        // Keep the previous snapshot and the records after it: a standby a
        // little behind still finds the records it has not applied.
        if let Some(previous) = newest {
            txn.execute("DELETE FROM switchyard_records WHERE seq <= $1", &[&previous])
                .map_err(|e| self.url.err(describe(&e)))?;
            txn.execute("DELETE FROM switchyard_snapshots WHERE seq < $1", &[&previous])
                .map_err(|e| self.url.err(describe(&e)))?;
        }
        txn.commit().map_err(|e| self.err(&e))?;
        self.next = self.next.max(seq as u64 + 1);
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let mut client = self.client.borrow_mut();
        let row = client
            .query_opt("SELECT seq, state FROM switchyard_snapshots ORDER BY seq DESC LIMIT 1", &[])
            .map_err(|e| self.url.err(describe(&e)))?;
        Ok(row.map(|row| (row.get::<_, i64>(0) as u64, row.get::<_, Vec<u8>>(1))))
    }

    fn put_blob(&mut self, key: &str, bytes: &[u8]) -> Result<()> {
        // Content-addressed: the same key is the same bytes.
        self.client
            .get_mut()
            .execute(
                "INSERT INTO switchyard_blobs (key, bytes) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &bytes],
            )
            .map(drop)
            .map_err(|e| self.url.err(describe(&e)))
    }

    fn blob(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut client = self.client.borrow_mut();
        let row = client
            .query_opt("SELECT bytes FROM switchyard_blobs WHERE key = $1", &[&key])
            .map_err(|e| self.url.err(describe(&e)))?;
        Ok(row.map(|row| row.get(0)))
    }

    fn snapshot_seq(&self) -> Result<u64> {
        let row = self
            .client
            .borrow_mut()
            .query_one("SELECT COALESCE(max(seq), 0) FROM switchyard_snapshots", &[])
            .map_err(|e| self.url.err(describe(&e)))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
    }

    fn refresh(&mut self) -> Result<u64> {
        let row = self
            .client
            .get_mut()
            .query_one(
                "SELECT GREATEST((SELECT max(seq) FROM switchyard_records), (SELECT max(seq) FROM switchyard_snapshots), 0)",
                &[],
            )
            .map_err(|e| self.url.err(describe(&e)))?;
        let last: i64 = row.get(0);
        self.next = last as u64 + 1;
        Ok(last as u64)
    }
}

impl Drop for PgJournal {
    fn drop(&mut self) {
        // SAFETY: `client` is never used after this.
        let client = unsafe { ManuallyDrop::take(&mut self.client) };
        // Closing a `postgres::Client` blocks on its runtime, which panics on
        // a thread driving the daemon's (the last holder of a node's state
        // may be a request task).
        let _ = std::thread::Builder::new().name("switchyard-pg-close".into()).spawn(move || drop(client));
    }
}

/// Who leads the cluster, as the store says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leader {
    /// Its node name ("" before any node led).
    pub(crate) node: String,
    /// The URL it advertised.
    pub(crate) address: String,
    /// Its epoch.
    pub(crate) epoch: u64,
}

/// The leadership: a session advisory lock on a connection of its own.
pub(crate) struct Lease {
    url: StoreUrl,
    client: Client,
    held: Option<u64>,
}

impl Lease {
    /// A connection to contend on.
    pub(crate) fn connect(url: &StoreUrl) -> Result<Lease> {
        Ok(Lease { url: url.clone(), client: url.connect()?, held: None })
    }

    /// Try to become the leader: on success, the new epoch (the fencing
    /// token), raised in the store with `node` and `address` as the leader.
    pub(crate) fn try_acquire(&mut self, node: &str, address: &str) -> Result<Option<u64>> {
        if let Some(epoch) = self.held {
            return Ok(Some(epoch));
        }
        let got: bool = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
            .map_err(|e| self.url.err(describe(&e)))?
            .get(0);
        if !got {
            return Ok(None);
        }
        let epoch: i64 = self
            .client
            .query_one(
                "UPDATE switchyard_leader SET epoch = epoch + 1, node = $1, address = $2, since = now() WHERE id = 1 RETURNING epoch",
                &[&node, &address],
            )
            .map_err(|e| self.url.err(describe(&e)))?
            .get(0);
        self.held = Some(epoch as u64);
        Ok(Some(epoch as u64))
    }

    /// Whether the lease's connection (and with it the lock) is still alive.
    pub(crate) fn alive(&mut self) -> bool {
        self.client.simple_query("SELECT 1").is_ok()
    }

    /// The leader the store names.
    pub(crate) fn leader(&mut self) -> Result<Leader> {
        let row = self
            .client
            .query_one("SELECT node, address, epoch FROM switchyard_leader WHERE id = 1", &[])
            .map_err(|e| self.url.err(describe(&e)))?;
        Ok(Leader { node: row.get(0), address: row.get(1), epoch: row.get::<_, i64>(2) as u64 })
    }
}

/// A connection listening for the leader's commits.
pub(crate) struct Listener {
    client: Client,
}

impl Listener {
    /// Listen on [`RECORDS_CHANNEL`].
    pub(crate) fn connect(url: &StoreUrl) -> Result<Listener> {
        let mut client = url.connect()?;
        client.batch_execute(&format!("LISTEN {RECORDS_CHANNEL}")).map_err(|e| url.err(describe(&e)))?;
        Ok(Listener { client })
    }

    /// Wait up to `timeout` for a commit notification; true if one came (all
    /// that came are consumed). Err when the connection is gone.
    pub(crate) fn wait(&mut self, timeout: std::time::Duration) -> std::result::Result<bool, String> {
        let mut notifications = self.client.notifications();
        let first = notifications.timeout_iter(timeout).next();
        match first {
            Ok(Some(_)) => {
                // Drain what else arrived: one read catches up on all of them.
                while let Ok(Some(_)) = notifications.iter().next() {}
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(describe(&e)),
        }
    }
}

/// Write the audit entries of a node's reload manager into the store while
/// the node leads (`epoch` is its fencing token then, 0 while it stands by:
/// a standby's own restores are its housekeeping, not the cluster's history).
/// Runs until the manager is dropped.
pub(crate) fn forward_audit(
    url: StoreUrl,
    events: std::sync::mpsc::Receiver<switchyard_runtime::reload::AuditEntry>,
    node: std::sync::Arc<super::cluster::NodeStatus>,
) {
    let mut client: Option<Client> = None;
    for entry in events {
        let epoch = node.epoch();
        if epoch == 0 {
            continue;
        }
        let Ok(text) = serde_json::to_string(&entry) else { continue };
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        // One retry on a fresh connection: the store may have restarted.
        for _ in 0..2 {
            let connected = match client.as_mut() {
                Some(c) => c,
                None => match url.connect() {
                    Ok(c) => client.insert(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "audit entry not stored: no connection");
                        break;
                    }
                },
            };
            match connected.execute(
                "INSERT INTO switchyard_audit (epoch, node, entry) VALUES ($1, $2, $3::text::jsonb)",
                &[&epoch, &node.node, &text],
            ) {
                Ok(_) => break,
                Err(e) if is_fenced(&e) => {
                    tracing::warn!(error = %describe(&e), "audit entry refused: this node no longer leads");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %describe(&e), "audit entry not stored; reconnecting");
                    client = None;
                }
            }
        }
    }
}

/// The cluster's audit log, oldest first: the last `limit` entries, numbered
/// in the order the store took them.
pub(crate) fn read_audit(url: &StoreUrl, limit: usize) -> Result<Vec<switchyard_runtime::reload::AuditEntry>> {
    let mut client = url.connect()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query("SELECT id, entry::text FROM switchyard_audit ORDER BY id DESC LIMIT $1", &[&limit])
        .map_err(|e| url.err(describe(&e)))?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows.iter().rev() {
        let id: i64 = row.get(0);
        let text: &str = row.get(1);
        let mut entry: switchyard_runtime::reload::AuditEntry =
            serde_json::from_str(text).map_err(|e| url.err(format!("audit entry {id} is unreadable: {e}")))?;
        entry.seq = id as u64;
        entries.push(entry);
    }
    Ok(entries)
}
