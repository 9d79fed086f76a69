//! The hot-reload audit log: one [`AuditEntry`] per load, swap, rejection,
//! rollback, shadow start/stop and promotion. Entries are kept in memory (the
//! last `capacity`), appended as JSON lines to a file when one is configured, and
//! sent to every subscriber ([`crate::reload::ReloadManager::subscribe`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A candidate was compiled, linked and passed validation (not yet active).
    Load,
    /// A validated generation became the active one.
    Swap,
    /// A candidate was refused (load or validation failed); nothing changed.
    Reject,
    /// A kept generation was made active again.
    Rollback,
    /// A candidate started running in shadow beside the active generation.
    Shadow,
    /// The shadow generation was made the active one.
    Promote,
    /// The shadow was stopped without promotion.
    Unshadow,
    /// A generation recorded before a restart was loaded again at start (the
    /// daemon's journal says which one is active); it was validated when it
    /// was first admitted.
    Restore,
    /// The fixtures the department's candidates must pass were replaced.
    Fixtures,
}

/// What started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerKind {
    /// A call of the embedding API.
    Api,
    /// The directory watcher saw a file change.
    Watcher,
    /// A rollback call.
    Rollback,
    /// A promotion of the shadow.
    Promotion,
    /// Start-up: a plugin named in the configuration, or restored from the journal.
    Startup,
}

/// Who or what triggered an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// The kind of trigger.
    pub kind: TriggerKind,
    /// Who: the caller's name for API calls, the file for the watcher.
    pub who: String,
}

impl Trigger {
    /// An embedding-API call by `who` (a user, a service, a ticket).
    pub fn api(who: impl Into<String>) -> Self {
        Trigger { kind: TriggerKind::Api, who: who.into() }
    }

    /// The directory watcher, for a change of `path`.
    pub fn watcher(path: &Path) -> Self {
        Trigger { kind: TriggerKind::Watcher, who: path.display().to_string() }
    }

    /// A rollback requested by `who`.
    pub fn rollback(who: impl Into<String>) -> Self {
        Trigger { kind: TriggerKind::Rollback, who: who.into() }
    }

    /// A promotion requested by `who`.
    pub fn promotion(who: impl Into<String>) -> Self {
        Trigger { kind: TriggerKind::Promotion, who: who.into() }
    }

    /// Start-up, loading `what` (a configured file, or `journal`).
    pub fn startup(what: impl Into<String>) -> Self {
        Trigger { kind: TriggerKind::Startup, who: what.into() }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            TriggerKind::Api => "api",
            TriggerKind::Watcher => "watcher",
            TriggerKind::Rollback => "rollback",
            TriggerKind::Promotion => "promotion",
            TriggerKind::Startup => "startup",
        };
        write!(f, "{kind} ({})", self.who)
    }
}

/// Whether the action took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It did.
    Ok,
    /// It was refused; the running generation is unchanged.
    Rejected,
}

/// One line of the audit log. Also the event subscribers receive
/// ([`crate::reload::ReloadEvent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number, from 1, in the order actions took effect.
    pub seq: u64,
    /// When, RFC 3339 UTC with milliseconds.
    pub at: String,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Department.
    pub department: String,
    /// What happened.
    pub action: AuditAction,
    /// The generation acted on; `None` for a candidate refused before it got one
    /// (not a component, wrong world, unsupported contract version).
    pub generation: Option<u64>,
    /// The generation that was active before (swap, rollback, promotion).
    pub previous: Option<u64>,
    /// SHA-256 of the component bytes (hex).
    pub sha256: String,
    /// Where the component came from (file path, or `api`).
    pub source: String,
    /// Who or what triggered it.
    pub trigger: Trigger,
    /// Whether it took effect.
    pub result: Outcome,
    /// Why it was refused (or a note, e.g. the fixture cases passed).
    pub reason: Option<String>,
}

/// An entry before the log numbers and stamps it.
pub(crate) struct NewEntry {
    pub department: String,
    pub action: AuditAction,
    pub generation: Option<u64>,
    pub previous: Option<u64>,
    pub sha256: String,
    pub source: String,
    pub trigger: Trigger,
    pub result: Outcome,
    pub reason: Option<String>,
}

struct State {
    entries: VecDeque<AuditEntry>,
    next_seq: u64,
    file: Option<(PathBuf, File)>,
    subscribers: Vec<Sender<AuditEntry>>,
}

/// The log itself (see the module docs).
pub(crate) struct AuditLog {
    capacity: usize,
    state: Mutex<State>,
}

impl AuditLog {
    /// A log keeping the last `capacity` entries in memory and appending to
    /// `file` (created if missing) when given. The entries already in the file
    /// (a restart) are read back, the last `capacity` of them kept, and
    /// numbering goes on after the highest; a line that does not parse (a
    /// write cut by a crash) is skipped with a warning.
    pub(crate) fn new(capacity: usize, file: Option<&Path>) -> Result<AuditLog> {
        let capacity = capacity.max(1);
        let mut entries = VecDeque::new();
        let mut next_seq = 1;
        if let Some(path) = file {
            match File::open(path) {
                Ok(existing) => {
                    use std::io::BufRead;
                    for (n, line) in std::io::BufReader::new(existing).lines().enumerate() {
                        let line = line.map_err(|source| Error::Io { path: path.to_owned(), source })?;
                        if line.trim().is_empty() {
                            continue;
                        }
                        match serde_json::from_str::<AuditEntry>(&line) {
                            Ok(entry) => {
                                next_seq = next_seq.max(entry.seq + 1);
                                entries.push_back(entry);
                                if entries.len() > capacity {
                                    entries.pop_front();
                                }
                            }
                            Err(e) => {
                                tracing::warn!(audit_file = %path.display(), line = n + 1, "skipping an unreadable audit line: {e}")
                            }
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { path: path.to_owned(), source }),
            }
        }
        let file = match file {
            Some(path) => {
                let opened = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| Error::Io { path: path.to_owned(), source })?;
                Some((path.to_owned(), opened))
            }
            None => None,
        };
        Ok(AuditLog { capacity, state: Mutex::new(State { entries, next_seq, file, subscribers: Vec::new() }) })
    }

    /// Number, stamp, keep, write and publish an entry.
    pub(crate) fn record(&self, new: NewEntry) -> AuditEntry {
        let now = SystemTime::now();
        let at_ms = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = AuditEntry {
            seq: state.next_seq,
            at: humantime::format_rfc3339_millis(now).to_string(),
            at_ms,
            department: new.department,
            action: new.action,
            generation: new.generation,
            previous: new.previous,
            sha256: new.sha256,
            source: new.source,
            trigger: new.trigger,
            result: new.result,
            reason: new.reason,
        };
        state.next_seq += 1;
        tracing::info!(
            department = %entry.department,
            action = ?entry.action,
            generation = ?entry.generation,
            previous = ?entry.previous,
            trigger = %entry.trigger,
            result = ?entry.result,
            reason = entry.reason.as_deref().unwrap_or(""),
            "hot reload"
        );
        if let Some((path, file)) = &mut state.file {
            let written = serde_json::to_string(&entry)
                .map_err(std::io::Error::other)
                .and_then(|line| writeln!(file, "{line}"))
                .and_then(|()| file.flush());
            if let Err(error) = written {
                tracing::error!(audit_file = %path.display(), "cannot append to the audit log: {error}");
            }
        }
        state.subscribers.retain(|tx| tx.send(entry.clone()).is_ok());
        state.entries.push_back(entry.clone());
        while state.entries.len() > self.capacity {
            state.entries.pop_front();
        }
        entry
    }

    /// The kept entries, oldest first.
    pub(crate) fn entries(&self) -> Vec<AuditEntry> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).entries.iter().cloned().collect()
    }

    /// A receiver of every entry recorded from now on.
    pub(crate) fn subscribe(&self) -> Receiver<AuditEntry> {
        let (tx, rx) = channel();
        self.state.lock().unwrap_or_else(|p| p.into_inner()).subscribers.push(tx);
        rx
    }
}
