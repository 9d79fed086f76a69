//! Snapshots of the daemon's state: what makes a restart take seconds whatever
//! the history.
//!
//! A [`DaemonSnapshot`] is the router's [`RouterSnapshot`] plus what the daemon
//! keeps beside it (finished items for lookup, offer counters, agents' token
//! hashes, the plugin ledger: which generations are active, in shadow, kept;
//! the customers' recent contacts the console shows). The ticker takes one
//! every `snapshot_every` records and the daemon takes one at every clean stop;
//! [`GroupCommit::put_snapshot`](super::journal::GroupCommit::put_snapshot)
//! stores it once the records it covers are durable and drops those records.
//! Start-up restores the latest snapshot and replays only the records after it.
//!
//! Taking a snapshot copies the state under the daemon's lock (tens of ms for a
//! busy centre, ≈0.45 s at 20,000 open items and a week of cases); encoding and
//! writing happen outside it.
//!
//! Stored form: [`MAGIC`], then the snapshot in postcard (a third of JSON's size
//! and several times faster to read; see the figures in `router/snapshot.rs`).
//! The snapshot carries its own version; a build that cannot read it refuses to
//! start and says so (the records it covers are gone, so guessing is not an option).
//! Format 1 (before the contacts) is still read, with no contacts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use switchyard_core::router::RouterSnapshot;

use super::console::Contact;
use super::plugins::DepartmentPlugins;

/// The first bytes of a stored snapshot.
pub(crate) const MAGIC: &[u8] = b"switchyard-snapshot\n";

/// The daemon snapshot format this build writes and reads.
pub(crate) const VERSION: u32 = 2;

/// Everything the daemon needs to continue as if it had never stopped; see the
/// module docs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DaemonSnapshot {
    /// [`VERSION`] when written by this build.
    pub(crate) version: u32,
    /// The router's clock when taken, ms since the Unix epoch.
    pub(crate) clock_ms: u64,
    /// The routing state.
    pub(crate) router: RouterSnapshot,
    /// What the daemon keeps beside the router.
    pub(crate) daemon: DaemonState,
}

/// The daemon's own part of a snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DaemonState {
    /// Finished items kept for lookup, oldest first.
    pub(crate) finished: Vec<FinishedEntry>,
    /// Offers by outcome.
    pub(crate) offers: BTreeMap<String, u64>,
    /// (agent, SHA-256 of its token).
    pub(crate) agent_tokens: Vec<(String, String)>,
    /// The plugin ledger: per department, the active, shadow and kept
    /// generations (their bytes are journal blobs).
    pub(crate) plugins: BTreeMap<String, DepartmentPlugins>,
    /// Records replayed or appended before this snapshot (for `/readyz`).
    pub(crate) records: u64,
    /// Customers' recent contacts, least recently seen first (format 2 on).
    pub(crate) contacts: Vec<(String, Vec<Contact>)>,
}

/// Format 1: [`DaemonSnapshot`] before the contacts. Postcard is not
/// self-describing, so an older format is read through its own shape.
#[derive(Serialize, Deserialize)]
struct DaemonSnapshotV1 {
    version: u32,
    clock_ms: u64,
    router: RouterSnapshot,
    daemon: DaemonStateV1,
}

/// [`DaemonState`] in format 1.
#[derive(Serialize, Deserialize)]
struct DaemonStateV1 {
    finished: Vec<FinishedEntry>,
    offers: BTreeMap<String, u64>,
    agent_tokens: Vec<(String, String)>,
    plugins: BTreeMap<String, DepartmentPlugins>,
    records: u64,
}

/// A finished item as a snapshot keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FinishedEntry {
    /// Item id.
    pub(crate) id: u64,
    /// Completed (else withdrawn).
    pub(crate) completed: bool,
    /// Queue it finished in.
    pub(crate) queue: String,
    /// When.
    pub(crate) at_ms: u64,
    /// Resolved at first contact.
    pub(crate) resolved: Option<bool>,
    /// Handle time.
    pub(crate) handle_ms: Option<u64>,
}

impl DaemonSnapshot {
    /// The stored form: [`MAGIC`], the format version (u32, little-endian), then
    /// the snapshot in postcard.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, String> {
        let body = postcard::to_allocvec(self).map_err(|e| format!("the snapshot does not encode: {e}"))?;
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Read a stored snapshot; the error says why it cannot be used.
    pub(crate) fn decode(bytes: &[u8]) -> Result<DaemonSnapshot, String> {
        let rest = bytes.strip_prefix(MAGIC).ok_or("not a switchyard snapshot (bad header)")?;
        let (version, body) = rest.split_first_chunk::<4>().ok_or("the snapshot is cut short")?;
        let version = u32::from_le_bytes(*version);
        let unreadable = |e: postcard::Error| format!("the snapshot (format {version}) is unreadable: {e}");
        match version {
            VERSION => postcard::from_bytes(body).map_err(unreadable),
            1 => {
                let DaemonSnapshotV1 { version: _, clock_ms, router, daemon } =
                    postcard::from_bytes(body).map_err(unreadable)?;
                let DaemonStateV1 { finished, offers, agent_tokens, plugins, records } = daemon;
                let daemon = DaemonState { finished, offers, agent_tokens, plugins, records, contacts: Vec::new() };
                Ok(DaemonSnapshot { version: VERSION, clock_ms, router, daemon })
            }
            _ => Err(format!("snapshot format {version} cannot be read by this build (format {VERSION})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use switchyard_core::clock::VirtualClock;
    use switchyard_core::router::{DepartmentSpec, QueueSpec, Router, RouterOptions};

    fn snapshot() -> DaemonSnapshot {
        let department =
            DepartmentSpec { name: "billing".into(), offer_timeout_ms: 20_000, reoffer_block_ms: 0, fcr_window_ms: 0 };
        let queue = QueueSpec {
            name: "q".into(),
            department: "billing".into(),
            skill: None,
            service_level_ms: 20_000,
            short_abandon_ms: 5_000,
        };
        let router = Router::new(
            vec![department],
            vec![queue],
            Arc::new(VirtualClock::new(1_000)),
            Default::default(),
            RouterOptions::default(),
        )
        .expect("a router");
        let mut plugins = BTreeMap::new();
        plugins.insert(
            "billing".to_owned(),
            DepartmentPlugins { active: Some((3, "ab".into())), highest: 4, ..Default::default() },
        );
        DaemonSnapshot {
            version: VERSION,
            clock_ms: 1_000,
            router: router.snapshot(),
            daemon: DaemonState {
                finished: vec![FinishedEntry {
                    id: 7,
                    completed: true,
                    queue: "q".into(),
                    at_ms: 900,
                    resolved: Some(true),
                    handle_ms: Some(60_000),
                }],
                offers: BTreeMap::from([("made".to_owned(), 2)]),
                agent_tokens: vec![("ann".into(), "00ff".into())],
                plugins,
                records: 42,
                contacts: vec![("c-1".into(), vec![contact()])],
            },
        }
    }

    fn contact() -> Contact {
        Contact {
            item: 7,
            at_ms: 900,
            department: "billing".into(),
            queue: "q".into(),
            channel: switchyard_contract::Channel::Voice,
            outcome: crate::serve::console::Outcome::Resolved,
        }
    }

    /// The stored form reads back to the same daemon state.
    #[test]
    fn a_snapshot_reads_back_what_was_written() {
        let bytes = snapshot().encode().expect("encodes");
        assert!(bytes.starts_with(MAGIC));
        let back = DaemonSnapshot::decode(&bytes).expect("decodes");
        assert_eq!(back.clock_ms, 1_000);
        assert_eq!(back.daemon.finished, snapshot().daemon.finished);
        assert_eq!(
            (back.daemon.offers, back.daemon.agent_tokens, back.daemon.records),
            (snapshot().daemon.offers, snapshot().daemon.agent_tokens, 42)
        );
        assert_eq!(back.daemon.plugins["billing"].active, Some((3, "ab".into())));
        assert_eq!(back.daemon.contacts, vec![("c-1".to_owned(), vec![contact()])]);
        assert_eq!(back.router.queue_names(), vec!["q"]);
    }

    /// A format-1 snapshot (before the contacts) is still read, with none.
    #[test]
    fn a_format_1_snapshot_is_read_without_contacts() {
        let now = snapshot();
        let DaemonState { finished, offers, agent_tokens, plugins, records, .. } = now.daemon;
        let v1 = DaemonSnapshotV1 {
            version: 1,
            clock_ms: now.clock_ms,
            router: now.router,
            daemon: DaemonStateV1 { finished, offers, agent_tokens, plugins, records },
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&postcard::to_allocvec(&v1).expect("encodes"));
        let back = DaemonSnapshot::decode(&bytes).expect("format 1 decodes");
        assert_eq!(back.daemon.finished, snapshot().daemon.finished);
        assert_eq!((back.daemon.records, back.daemon.contacts.len()), (42, 0));
        assert_eq!(back.router.queue_names(), vec!["q"]);
        // Cut short, it is refused with its own format named.
        assert!(DaemonSnapshot::decode(&bytes[..bytes.len() / 2]).unwrap_err().contains("format 1"));
    }

    /// Another file, another version, or a cut-short snapshot is refused with
    /// the reason, never read as something else.
    #[test]
    fn what_is_not_this_snapshot_format_is_refused_with_the_reason() {
        let bytes = snapshot().encode().expect("encodes");
        assert!(DaemonSnapshot::decode(b"PK\x03\x04 a zip").unwrap_err().contains("bad header"));
        let mut newer = bytes.clone();
        newer[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&(VERSION + 1).to_le_bytes());
        assert!(DaemonSnapshot::decode(&newer).unwrap_err().contains(&format!("format {}", VERSION + 1)));
        assert!(DaemonSnapshot::decode(&bytes[..bytes.len() / 2]).unwrap_err().contains("unreadable"));
        assert!(DaemonSnapshot::decode(&bytes[..MAGIC.len() + 2]).unwrap_err().contains("cut short"));
    }
}
