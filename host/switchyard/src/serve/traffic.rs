//! The daemon's traffic log: what arrived and what became of it, kept apart
//! from the journal (which is compacted behind snapshots) so that recorded
//! traffic can leave production without the journal — `switchyard
//! export-traffic` turns it into the simulator's traffic format
//! ([`crate::sim::traffic`]) and the daemon's backtests read it.
//!
//! **Files.** `data_dir/traffic/<start ms since 1970, 16 digits>.jsonl`,
//! JSON lines, one segment written at a time. A segment is closed at
//! `segment_mb` or after `segment_minutes`, and every start opens a new one (a
//! segment torn by a kill is never appended to). Segments older than
//! `retention_hours`, then the oldest beyond `max_mb` in all, are deleted.
//! Each segment opens with the roster (one `agent` line per agent known to the
//! writer), so a window's agents and their presence can be read from the
//! segments it spans alone.
//!
//! **Lines** (`"t"` names the kind; `at` is ms since 1970, `item` the daemon's
//! item id):
//!
//! ```text
//! {"t":"arrival","at":…,"item":7,"department":"billing","queue":"billing-general","channel":"voice",
//!  "skills":{…},"attributes":{…},"priority":0,"tier":"gold","customer":"c-1","case":"case-4","value":120.5,"due_in_ms":null}
//! {"t":"answered","at":…,"item":7}                      first accepted offer
//! {"t":"abandoned","at":…,"item":7}                     withdrawn before an answer
//! {"t":"completed","at":…,"item":7,"handle_ms":…,"resolved":true}  work, after-work excluded
//! {"t":"handoff","at":…,"from":7,"item":8,"department":…,"queue":…,"channel":…,"skills":{…},"priority":0,"due_in_ms":…}
//! {"t":"agent","at":…,"agent":"ann","group":…,"skills":{…},"capacity":{…},"wrap_up_ms":…,"presence":"available"}
//! {"t":"presence","at":…,"agent":"ann","presence":"away"}
//! ```
//!
//! **Off the decision path.** The core hands each line to a bounded channel
//! under its lock (no serialisation, no I/O there); one writer thread
//! serialises and writes them in batches, one `write` per batch. A request that
//! produced lines waits, after the journal's sync and with the lock released,
//! until the writer has handed its lines to the OS (`TrafficLog::wait_written`),
//! so a SIGKILL loses no acknowledged arrival — only a power cut can lose what
//! the page cache held. If the writer falls behind (the channel is full, a
//! write fails, a wait times out) lines are dropped or lost, counted in
//! `/metrics`, logged, and requests stop waiting for it: the traffic log never
//! fails or stalls routing. Journal replay at start-up writes nothing (those
//! lines are already in the log).
//!
//! **Reading** ([`read_window`]): segments in order; a last line without its
//! newline, or one that does not parse at the end of a segment, is a torn tail
//! — skipped with a warning; a bad line elsewhere is an error naming the file
//! and line.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use switchyard_contract::{Channel, Tier};
use switchyard_core::clock::{Clock, SystemClock};
use switchyard_core::router::{Capacity, Presence};

use crate::error::{Error, Result};
use crate::sim::traffic::{Arrival, Handoff};

/// Lines the core may hand over before the writer catches up; beyond it lines
/// are dropped (and counted) rather than make a request wait. About 40 s of
/// the soak's traffic (150 items/s, ~10 lines each).
const CHANNEL_LINES: usize = 65_536;
/// Lines written per `write` at most.
const BATCH_LINES: usize = 4096;
/// How long a request waits for its lines to be written before it stops
/// waiting (and the log counts a lag). Far above a healthy batch (µs).
const WAIT_WRITTEN: Duration = Duration::from_secs(1);
/// How often the writer looks at segment age and retention when idle.
const MAINTAIN_EVERY: Duration = Duration::from_secs(1);

/// Whether a value is 0 (left out of a line).
pub(crate) fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// One line of the traffic log. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Line {
    /// A new item from intake (not a hand-off).
    Arrival {
        /// When, ms since 1970.
        at: u64,
        /// The daemon's item id.
        item: u64,
        /// Department.
        department: String,
        /// Queue it was posted to.
        queue: String,
        /// Channel.
        channel: Channel,
        /// Required skills.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        skills: BTreeMap<String, u8>,
        /// Attributes.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        attributes: BTreeMap<String, String>,
        /// Priority it was posted with.
        #[serde(default)]
        priority: i32,
        /// Customer tier.
        #[serde(default)]
        tier: Tier,
        /// Customer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        customer: Option<String>,
        /// Case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        case: Option<String>,
        /// Money at stake.
        #[serde(default, skip_serializing_if = "is_zero")]
        value: f64,
        /// Due time after intake, ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in_ms: Option<u64>,
    },
    /// The item's first offer was accepted.
    Answered {
        /// When.
        at: u64,
        /// Item.
        item: u64,
    },
    /// The item was withdrawn before an answer.
    Abandoned {
        /// When.
        at: u64,
        /// Item.
        item: u64,
    },
    /// The item's work ended (at the end of its after-work).
    Completed {
        /// When.
        at: u64,
        /// Item.
        item: u64,
        /// The work it needed, ms: answer to completion, pauses and the
        /// agent's after-work excluded (the simulator adds the roster's).
        handle_ms: u64,
        /// Resolved at first contact.
        resolved: bool,
    },
    /// A completion handed off to a follow-up item.
    Handoff {
        /// When.
        at: u64,
        /// The completed item.
        from: u64,
        /// The follow-up item.
        item: u64,
        /// Department.
        department: String,
        /// Queue.
        queue: String,
        /// Channel.
        channel: Channel,
        /// Required skills.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        skills: BTreeMap<String, u8>,
        /// Priority.
        #[serde(default)]
        priority: i32,
        /// Due time after the hand-off, ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in_ms: Option<u64>,
    },
    /// An agent's registration (and presence at that time).
    Agent {
        /// When.
        at: u64,
        /// Login.
        agent: String,
        /// Group.
        group: String,
        /// Skills and proficiency.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        skills: BTreeMap<String, u8>,
        /// Blending capacity.
        capacity: Capacity,
        /// After-work per item, ms.
        wrap_up_ms: u64,
        /// Presence.
        presence: Presence,
    },
    /// An agent's presence changed.
    Presence {
        /// When.
        at: u64,
        /// Login.
        agent: String,
        /// New presence.
        presence: Presence,
    },
}

impl Line {
    /// When it happened, ms since 1970.
    pub fn at(&self) -> u64 {
        match self {
            Line::Arrival { at, .. }
            | Line::Answered { at, .. }
            | Line::Abandoned { at, .. }
            | Line::Completed { at, .. }
            | Line::Handoff { at, .. }
            | Line::Agent { at, .. }
            | Line::Presence { at, .. } => *at,
        }
    }
}

/// `[traffic]` of the serve config: the traffic log's size and retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficConfig {
    /// Record traffic at all. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Segments are deleted this many hours after they were closed. Default
    /// 168 (a week: the backtests' usual window, and what an export is for).
    #[serde(default = "default_retention_hours")]
    pub retention_hours: f64,
    /// The oldest segments are deleted beyond this many MiB in all. Default
    /// 2,048: about 4.5 million items at the soak's ~450 bytes per item.
    #[serde(default = "default_max_mb")]
    pub max_mb: u64,
    /// A segment is closed at this size, MiB. Default 64.
    #[serde(default = "default_segment_mb")]
    pub segment_mb: u64,
    /// … or after this many minutes. Default 60, so retention drops an hour
    /// at a time.
    #[serde(default = "default_segment_minutes")]
    pub segment_minutes: f64,
}

fn yes() -> bool {
    true
}
fn default_retention_hours() -> f64 {
    168.0
}
fn default_max_mb() -> u64 {
    2048
}
fn default_segment_mb() -> u64 {
    64
}
fn default_segment_minutes() -> f64 {
    60.0
}

impl Default for TrafficConfig {
    fn default() -> Self {
        TrafficConfig {
            enabled: true,
            retention_hours: default_retention_hours(),
            max_mb: default_max_mb(),
            segment_mb: default_segment_mb(),
            segment_minutes: default_segment_minutes(),
        }
    }
}

impl TrafficConfig {
    /// Every value in range; the error names the key.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(self.retention_hours.is_finite() && self.retention_hours > 0.0 && self.retention_hours <= 24.0 * 3660.0) {
            return Err(format!("key `traffic.retention_hours`: {} is outside 0-87840 hours", self.retention_hours));
        }
        if !(1..=1 << 20).contains(&self.max_mb) {
            return Err(format!("key `traffic.max_mb`: {} is outside 1-1048576", self.max_mb));
        }
        if !(1..=self.max_mb).contains(&self.segment_mb) {
            return Err(format!(
                "key `traffic.segment_mb`: {} is outside 1-{} (`max_mb`)",
                self.segment_mb, self.max_mb
            ));
        }
        if !(self.segment_minutes.is_finite() && self.segment_minutes > 0.0 && self.segment_minutes <= 24.0 * 60.0) {
            return Err(format!("key `traffic.segment_minutes`: {} is outside 0-1440", self.segment_minutes));
        }
        Ok(())
    }
}

/// The traffic log's counters, for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    lines: AtomicU64,
    bytes: AtomicU64,
    write_errors: AtomicU64,
    dropped: AtomicU64,
    wait_timeouts: AtomicU64,
    segments_deleted: AtomicU64,
}

/// What `/metrics` shows of the traffic log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TrafficView {
    /// Lines written.
    pub(crate) lines: u64,
    /// Bytes written.
    pub(crate) bytes: u64,
    /// Failed writes (their lines are lost).
    pub(crate) write_errors: u64,
    /// Lines dropped because the writer was behind.
    pub(crate) dropped: u64,
    /// Requests that stopped waiting for their lines.
    pub(crate) wait_timeouts: u64,
    /// Segments deleted by retention.
    pub(crate) segments_deleted: u64,
}

/// The daemon's handle on its traffic log. See the module docs.
pub(crate) struct TrafficLog {
    tx: SyncSender<(u64, Line)>,
    /// The last sequence number handed out (under the core's lock, so lines
    /// reach the channel in sequence order).
    sent: AtomicU64,
    /// The last sequence number the writer is done with (written or lost).
    written: Mutex<u64>,
    written_cv: Condvar,
    /// Set while the writer is behind or failing: requests do not wait for it.
    degraded: AtomicBool,
    counters: Arc<Counters>,
}

impl TrafficLog {
    /// Start the writer on `dir` (created if missing).
    pub(crate) fn start(dir: &Path, config: &TrafficConfig) -> Result<Arc<TrafficLog>> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
        let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_LINES);
        let log = Arc::new(TrafficLog {
            tx,
            sent: AtomicU64::new(0),
            written: Mutex::new(0),
            written_cv: Condvar::new(),
            degraded: AtomicBool::new(false),
            counters: Arc::new(Counters::default()),
        });
        let writer = Writer {
            dir: dir.to_owned(),
            segment_bytes: config.segment_mb << 20,
            segment_age: Duration::from_secs_f64(config.segment_minutes * 60.0),
            retention_ms: (config.retention_hours * 3_600_000.0) as u64,
            max_bytes: config.max_mb << 20,
            current: None,
            roster: BTreeMap::new(),
            last_error_logged: None,
            counters: log.counters.clone(),
        };
        let weak = Arc::downgrade(&log);
        std::thread::Builder::new()
            .name("traffic-log".into())
            .spawn(move || writer.run(rx, weak))
            .map_err(|source| Error::Io { path: dir.to_owned(), source })?;
        Ok(log)
    }

    /// Hand `line` to the writer; returns its sequence number. Never blocks:
    /// with the writer behind, the line is dropped and counted.
    pub(crate) fn record(&self, line: Line) -> u64 {
        let seq = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        match self.tx.try_send((seq, line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.degraded.swap(true, Ordering::Relaxed) || dropped.is_multiple_of(10_000) {
                    tracing::error!(dropped = dropped + 1, "traffic log behind: lines dropped");
                }
            }
        }
        seq
    }

    /// The last sequence number handed out.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Wait (bounded) until the writer has handed line `seq` and those before
    /// it to the OS. Returns at once while the log is degraded.
    pub(crate) fn wait_written(&self, seq: u64) {
        if self.degraded.load(Ordering::Relaxed) {
            return;
        }
        let deadline = Instant::now() + WAIT_WRITTEN;
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        while *written < seq {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.counters.wait_timeouts.fetch_add(1, Ordering::Relaxed);
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::error!(seq, "traffic log: a request stopped waiting for its lines to be written");
                }
                return;
            }
            written = self.written_cv.wait_timeout(written, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// The counters.
    pub(crate) fn view(&self) -> TrafficView {
        let c = &self.counters;
        TrafficView {
            lines: c.lines.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            wait_timeouts: c.wait_timeouts.load(Ordering::Relaxed),
            segments_deleted: c.segments_deleted.load(Ordering::Relaxed),
        }
    }
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    segment_bytes: u64,
    segment_age: Duration,
    retention_ms: u64,
    max_bytes: u64,
    /// The open segment: (file, path, bytes so far, opened at).
    current: Option<(std::fs::File, PathBuf, u64, Instant)>,
    /// Each agent's latest `agent` line (presence kept current), written at the
    /// head of every segment.
    roster: BTreeMap<String, Line>,
    last_error_logged: Option<Instant>,
    counters: Arc<Counters>,
}

impl Writer {
    fn run(mut self, rx: Receiver<(u64, Line)>, log: std::sync::Weak<TrafficLog>) {
        let mut batch: Vec<(u64, Line)> = Vec::with_capacity(BATCH_LINES);
        let mut buffer: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut last_maintained = Instant::now();
        self.sweep();
        loop {
            match rx.recv_timeout(MAINTAIN_EVERY) {
                Ok(first) => batch.push(first),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < BATCH_LINES {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let Some(log) = log.upgrade() else { return };
            if last_maintained.elapsed() >= MAINTAIN_EVERY {
                last_maintained = Instant::now();
                if self.current.as_ref().is_some_and(|(_, _, _, opened)| opened.elapsed() >= self.segment_age) {
                    self.current = None;
                    self.sweep();
                }
            }
            let Some(&(last_seq, _)) = batch.last() else { continue };
            buffer.clear();
            for (_, line) in &batch {
                self.follow_roster(line);
                if serde_json::to_writer(&mut buffer, line).is_ok() {
                    buffer.push(b'\n');
                }
            }
            let lines = batch.len() as u64;
            batch.clear();
            match self.write(&buffer) {
                Ok(()) => {
                    log.counters.lines.fetch_add(lines, Ordering::Relaxed);
                    log.counters.bytes.fetch_add(buffer.len() as u64, Ordering::Relaxed);
                    if log.degraded.load(Ordering::Relaxed) && rx_is_drained(&log) {
                        log.degraded.store(false, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    log.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    log.degraded.store(true, Ordering::Relaxed);
                    // The segment may end in a partial line: never append to it.
                    self.current = None;
                    if self.last_error_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        self.last_error_logged = Some(Instant::now());
                        tracing::error!(error = %e, lines, dir = %self.dir.display(), "traffic log: write failed, lines lost");
                    }
                }
            }
            *log.written.lock().unwrap_or_else(|p| p.into_inner()) = last_seq;
            log.written_cv.notify_all();
        }
    }

    /// Keep the roster the segments open with.
    fn follow_roster(&mut self, line: &Line) {
        match line {
            Line::Agent { agent, .. } => {
                self.roster.insert(agent.clone(), line.clone());
            }
            Line::Presence { agent, presence, .. } => {
                if let Some(Line::Agent { presence: p, .. }) = self.roster.get_mut(agent) {
                    *p = *presence;
                }
            }
            _ => {}
        }
    }

    /// Write `bytes` to the open segment, opening (and rotating to) a new one
    /// as needed.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.current.as_ref().is_some_and(|(_, _, size, _)| *size >= self.segment_bytes) {
            self.current = None;
            self.sweep();
        }
        if self.current.is_none() {
            self.current = Some(self.open()?);
        }
        let Some((file, _, size, _)) = self.current.as_mut() else { return Ok(()) };
        file.write_all(bytes)?;
        *size += bytes.len() as u64;
        Ok(())
    }

    /// A new segment named after now, starting with the roster.
    fn open(&self) -> std::io::Result<(std::fs::File, PathBuf, u64, Instant)> {
        let mut start = SystemClock.now_ms();
        let (mut file, path) = loop {
            let path = self.dir.join(format!("{start:016}.jsonl"));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (file, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => start += 1,
                Err(e) => return Err(e),
            }
        };
        let mut head = Vec::new();
        for line in self.roster.values() {
            let line = match line {
                Line::Agent { agent, group, skills, capacity, wrap_up_ms, presence, .. } => Line::Agent {
                    at: start,
                    agent: agent.clone(),
                    group: group.clone(),
                    skills: skills.clone(),
                    capacity: *capacity,
                    wrap_up_ms: *wrap_up_ms,
                    presence: *presence,
                },
                other => other.clone(),
            };
            if serde_json::to_writer(&mut head, &line).is_ok() {
                head.push(b'\n');
            }
        }
        file.write_all(&head)?;
        Ok((file, path, head.len() as u64, Instant::now()))
    }

    /// Delete the segments retention no longer keeps (never the open one).
    fn sweep(&self) {
        let Ok(segments) = segments(&self.dir) else { return };
        let now = SystemClock.now_ms();
        let open = self.current.as_ref().map(|(_, path, _, _)| path.clone());
        let mut total: u64 = segments.iter().map(|s| s.bytes).sum();
        for (i, segment) in segments.iter().enumerate() {
            if Some(&segment.path) == open.as_ref() {
                break;
            }
            // A segment ends where the next begins.
            let ended = segments.get(i + 1).map_or(now, |next| next.start_ms);
            let expired = now.saturating_sub(ended) > self.retention_ms;
            let over = total > self.max_bytes && i + 1 < segments.len();
            if !(expired || over) {
                break;
            }
            match std::fs::remove_file(&segment.path) {
                Ok(()) => {
                    total -= segment.bytes;
                    self.counters.segments_deleted.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(segment = %segment.path.display(), expired, "traffic log: segment deleted by retention");
                }
                Err(e) => {
                    tracing::warn!(segment = %segment.path.display(), error = %e, "traffic log: segment not deleted");
                    break;
                }
            }
        }
    }
}

fn rx_is_drained(log: &TrafficLog) -> bool {
    *log.written.lock().unwrap_or_else(|p| p.into_inner()) + 1 >= log.sent()
}

/// A segment file.
#[derive(Debug, Clone)]
struct Segment {
    path: PathBuf,
    start_ms: u64,
    bytes: u64,
}

/// The segments in `dir`, oldest first.
fn segments(dir: &Path) -> Result<Vec<Segment>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io { path: dir.to_owned(), source })?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(start_ms) = name.strip_suffix(".jsonl").and_then(|s| s.parse::<u64>().ok()) else { continue };
        let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
        segments.push(Segment { path, start_ms, bytes });
    }
    segments.sort_by_key(|s| s.start_ms);
    Ok(segments)
}

/// An agent as the traffic log knew it over a window: registration and the
/// spans it was available, ms relative to the window's start.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterAgent {
    /// Login.
    pub name: String,
    /// Skills.
    pub skills: BTreeMap<String, u8>,
    /// Capacity.
    pub capacity: Capacity,
    /// After-work per item, ms.
    pub wrap_up_ms: u64,
    /// (from, to) ms after the window's start, available in between.
    pub available: Vec<(u64, u64)>,
}

/// A window of recorded traffic, joined.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The window's start, ms since 1970 (arrivals' `at_ms` count from it).
    pub since_ms: u64,
    /// The window's end.
    pub until_ms: u64,
    /// The arrivals in the window with what became of them, in arrival order.
    pub arrivals: Vec<Arrival>,
    /// The agents and when they were available.
    pub roster: Vec<RosterAgent>,
    /// What was skipped (torn tails), one sentence each.
    pub warnings: Vec<String>,
    /// Segments read.
    pub segments: usize,
    /// Lines read.
    pub lines: u64,
}

/// Where an item's lines go: its arrival (index) and hand-off depth.
#[derive(Debug, Clone, Copy)]
struct Place {
    arrival: usize,
    depth: u32,
}

/// Read the traffic recorded in `dir` between `since_ms` and `until_ms` (ms
/// since 1970) and join it into arrivals. Lines after `until_ms` still count
/// for the outcomes of arrivals inside the window (an item answered after the
/// window's end was answered).
pub fn read_window(dir: &Path, since_ms: u64, until_ms: u64) -> Result<Recorded> {
    let all = segments(dir)?;
    // From the last segment that began at or before the window's start.
    let first = all.iter().rposition(|s| s.start_ms <= since_ms).unwrap_or(0);
    let mut recorded = Recorded {
        since_ms,
        until_ms,
        arrivals: Vec::new(),
        roster: Vec::new(),
        warnings: Vec::new(),
        segments: 0,
        lines: 0,
    };
    let mut places: HashMap<u64, Place> = HashMap::new();
    let mut roster: BTreeMap<String, (RosterAgent, Option<u64>)> = BTreeMap::new();
    let clamp = |at: u64| at.clamp(since_ms, until_ms) - since_ms;
    for segment in &all[first..] {
        let bytes = match std::fs::read(&segment.path) {
            Ok(bytes) => bytes,
            // Deleted by retention since it was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Io { path: segment.path.clone(), source }),
        };
        recorded.segments += 1;
        let pieces: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        let count = pieces.len();
        for (n, piece) in pieces.into_iter().enumerate() {
            if piece.is_empty() {
                continue;
            }
            // Only the piece after the last newline can be torn (each line is
            // written with its newline, a batch in one write).
            let last = n + 1 == count;
            let line: Line = match serde_json::from_slice(piece) {
                Ok(line) => line,
                Err(_) if last => {
                    recorded.warnings.push(format!(
                        "{}:{}: torn last line ({} bytes) skipped: the daemon stopped while writing it",
                        segment.path.display(),
                        n + 1,
                        piece.len()
                    ));
                    continue;
                }
                Err(e) => {
                    return Err(Error::Invalid(format!(
                        "{}:{}: not a traffic log line: {e}",
                        segment.path.display(),
                        n + 1
                    )));
                }
            };
            recorded.lines += 1;
            if line.at() > until_ms && matches!(line, Line::Agent { .. } | Line::Presence { .. }) {
                continue;
            }
            join(&mut recorded.arrivals, &mut places, &mut roster, line, since_ms, until_ms, clamp);
        }
    }
    recorded.roster = roster
        .into_values()
        .map(|(mut agent, available_since)| {
            if let Some(from) = available_since {
                agent.available.push((from, clamp(until_ms)));
            }
            agent.available.retain(|(from, to)| to > from);
            agent
        })
        .collect();
    Ok(recorded)
}

/// Apply one line to the arrivals being joined.
fn join(
    arrivals: &mut Vec<Arrival>,
    places: &mut HashMap<u64, Place>,
    roster: &mut BTreeMap<String, (RosterAgent, Option<u64>)>,
    line: Line,
    since_ms: u64,
    until_ms: u64,
    clamp: impl Fn(u64) -> u64,
) {
    let presence = |roster: &mut BTreeMap<String, (RosterAgent, Option<u64>)>, agent: &str, p: Presence, at| {
        if let Some((entry, since)) = roster.get_mut(agent) {
            match (p == Presence::Available, *since) {
                (true, None) => *since = Some(clamp(at)),
                (false, Some(from)) => {
                    entry.available.push((from, clamp(at)));
                    *since = None;
                }
                _ => {}
            }
        }
    };
    match line {
        Line::Arrival {
            at,
            item,
            department,
            queue,
            channel,
            skills,
            attributes,
            priority,
            tier,
            customer,
            case,
            value,
            due_in_ms,
            ..
        } => {
            if at < since_ms || at >= until_ms {
                return;
            }
            places.insert(item, Place { arrival: arrivals.len(), depth: 0 });
            arrivals.push(Arrival {
                at_ms: at - since_ms,
                department,
                queue,
                channel,
                skills,
                attributes,
                priority,
                tier,
                customer,
                case,
                value,
                due_in_ms,
                handle_ms: None,
                answered_after_ms: None,
                abandoned_after_ms: None,
                resolved: None,
                handoff: None,
            });
        }
        Line::Answered { at, item } => {
            if let Some(Place { arrival, depth: 0 }) = places.get(&item).copied() {
                let a = &mut arrivals[arrival];
                if a.answered_after_ms.is_none() {
                    a.answered_after_ms = Some(at.saturating_sub(since_ms + a.at_ms));
                }
            }
        }
        Line::Abandoned { at, item } => {
            if let Some(Place { arrival, depth: 0 }) = places.get(&item).copied() {
                let a = &mut arrivals[arrival];
                a.abandoned_after_ms = Some(at.saturating_sub(since_ms + a.at_ms));
            }
        }
        Line::Completed { item, handle_ms, resolved, .. } => {
            let Some(place) = places.get(&item).copied() else { return };
            let a = &mut arrivals[place.arrival];
            if place.depth == 0 {
                a.handle_ms = Some(handle_ms);
                a.resolved = Some(resolved);
            } else if let Some(link) = link_at(a, place.depth) {
                link.handle_ms = Some(handle_ms);
                link.completed = true;
            }
        }
        Line::Handoff { from, item, department, queue, channel, skills, priority, due_in_ms, .. } => {
            let Some(place) = places.get(&from).copied() else { return };
            let handoff = Box::new(Handoff {
                department,
                queue,
                channel,
                skills,
                priority,
                due_in_ms,
                handle_ms: None,
                completed: false,
                then: None,
            });
            let a = &mut arrivals[place.arrival];
            if place.depth == 0 {
                a.handoff = Some(handoff);
            } else if let Some(link) = link_at(a, place.depth) {
                link.then = Some(handoff);
            } else {
                return;
            }
            places.insert(item, Place { arrival: place.arrival, depth: place.depth + 1 });
        }
        Line::Agent { at, agent, skills, capacity, wrap_up_ms, presence: p, .. } => {
            let entry = roster.entry(agent.clone()).or_insert_with(|| {
                (
                    RosterAgent {
                        name: agent.clone(),
                        skills: skills.clone(),
                        capacity,
                        wrap_up_ms,
                        available: Vec::new(),
                    },
                    None,
                )
            });
            // The registration as of the window's start, or its first inside it.
            if at <= since_ms || entry.0.available.is_empty() {
                entry.0.skills = skills;
                entry.0.capacity = capacity;
                entry.0.wrap_up_ms = wrap_up_ms;
            }
            presence(roster, &agent, p, at);
        }
        Line::Presence { at, agent, presence: p } => presence(roster, &agent, p, at),
    }
}

/// The hand-off link at `depth` (1 = the arrival's own hand-off).
fn link_at(arrival: &mut Arrival, depth: u32) -> Option<&mut Handoff> {
    let mut link = arrival.handoff.as_deref_mut()?;
    for _ in 1..depth {
        link = link.then.as_deref_mut()?;
    }
    Some(link)
}

/// `switchyard export-traffic DATA_DIR`: the last `hours` (all the log keeps
/// if `None`) of `data_dir/traffic/` as a traffic file ([`crate::sim::traffic`]).
/// Returns what was read (warnings included) for the caller to report.
pub fn export(data_dir: &Path, hours: Option<f64>, out: &Path) -> Result<Recorded> {
    let dir = data_dir.join("traffic");
    if !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: no traffic log here (is `{}` a daemon's data directory, with `[traffic] enabled`?)",
            dir.display(),
            data_dir.display()
        )));
    }
    let until_ms = SystemClock.now_ms();
    let since_ms = match hours {
        Some(h) if h.is_finite() && h > 0.0 => until_ms.saturating_sub((h * 3_600_000.0) as u64),
        Some(h) => return Err(Error::Invalid(format!("--hours {h}: must be a positive number of hours"))),
        None => segments(&dir)?.first().map_or(until_ms, |s| s.start_ms),
    };
    let recorded = read_window(&dir, since_ms, until_ms)?;
    crate::sim::traffic::write(out, &recorded.arrivals)?;
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(at: u64, item: u64) -> Line {
        Line::Arrival {
            at,
            item,
            department: "billing".into(),
            queue: "billing".into(),
            channel: Channel::Voice,
            skills: BTreeMap::new(),
            attributes: BTreeMap::from([("n".into(), item.to_string())]),
            priority: 0,
            tier: Tier::default(),
            customer: None,
            case: None,
            value: 0.0,
            due_in_ms: None,
        }
    }

    fn with_case(mut line: Line) -> Line {
        if let Line::Arrival { case, value, .. } = &mut line {
            *case = Some("case-4".into());
            *value = 120.5;
        }
        line
    }

    fn write_lines(path: &Path, lines: &[Line], tail: &str) {
        let mut text = String::new();
        for line in lines {
            text.push_str(&serde_json::to_string(line).unwrap());
            text.push('\n');
        }
        text.push_str(tail);
        std::fs::write(path, text).unwrap();
    }

    /// Arrivals, answers, completions and a two-step hand-off chain join into
    /// the simulator's records; times count from the window's start.
    #[test]
    fn lines_join_into_arrivals_with_their_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let lines = vec![
            Line::Agent {
                at: 900,
                agent: "ann".into(),
                group: "g".into(),
                skills: BTreeMap::from([("billing".into(), 5)]),
                capacity: Capacity::default(),
                wrap_up_ms: 0,
                presence: Presence::Available,
            },
            with_case(arrival(1000, 1)),
            arrival(1500, 2),
            Line::Answered { at: 1200, item: 1 },
            Line::Abandoned { at: 9000, item: 2 },
            Line::Handoff {
                at: 5000,
                from: 1,
                item: 3,
                department: "claims".into(),
                queue: "claims".into(),
                channel: Channel::Case,
                skills: BTreeMap::new(),
                priority: 0,
                due_in_ms: Some(60_000),
            },
            Line::Completed { at: 5000, item: 1, handle_ms: 3800, resolved: false },
            Line::Presence { at: 6000, agent: "ann".into(), presence: Presence::Away },
            Line::Answered { at: 7000, item: 3 },
            Line::Completed { at: 8000, item: 3, handle_ms: 1000, resolved: true },
        ];
        write_lines(&dir.path().join(format!("{:016}.jsonl", 500)), &lines, "");
        let recorded = read_window(dir.path(), 1000, 10_000).unwrap();
        assert!(recorded.warnings.is_empty());
        let [first, second] = &recorded.arrivals[..] else { panic!("{:?}", recorded.arrivals) };
        assert_eq!(
            (first.at_ms, first.answered_after_ms, first.handle_ms, first.resolved),
            (0, Some(200), Some(3800), Some(false))
        );
        assert_eq!((first.case.as_deref(), first.value), (Some("case-4"), 120.5), "case and value are exported");
        let handoff = first.handoff.as_deref().unwrap();
        assert_eq!((handoff.queue.as_str(), handoff.handle_ms, handoff.completed), ("claims", Some(1000), true));
        assert_eq!((second.at_ms, second.abandoned_after_ms, second.answered_after_ms), (500, Some(7500), None));
        assert_eq!(recorded.roster[0].available, vec![(0, 5000)]);
    }

    /// A torn last line (no newline, cut mid-record) is skipped with a
    /// warning; a bad line before the end is an error naming file and line.
    #[test]
    fn a_torn_tail_is_skipped_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{:016}.jsonl", 500));
        write_lines(&path, &[arrival(1000, 1), arrival(1001, 2)], "{\"t\":\"arrival\",\"at\":10");
        let recorded = read_window(dir.path(), 0, 10_000).unwrap();
        assert_eq!(recorded.arrivals.len(), 2);
        assert_eq!(recorded.warnings.len(), 1, "{:?}", recorded.warnings);
        assert!(recorded.warnings[0].contains(":3: torn last line"), "{:?}", recorded.warnings);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.insert_str(0, "not json\n");
        std::fs::write(&path, text).unwrap();
        let error = read_window(dir.path(), 0, 10_000).unwrap_err().to_string();
        assert!(error.contains(":1: not a traffic log line"), "{error}");
    }

    /// Retention deletes a segment once the one after it began longer ago
    /// than `retention_hours`, then the oldest while the total is over
    /// `max_mb`; never the newest.
    #[test]
    fn retention_deletes_by_age_then_by_size_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemClock.now_ms();
        let write = |start: u64, bytes: usize| {
            std::fs::write(dir.path().join(format!("{start:016}.jsonl")), vec![b'\n'; bytes])
        };
        write(1_000, 10).unwrap();
        write(2_000, 10).unwrap();
        write(now - 7_200_000, 1 << 20).unwrap();
        write(now - 3_600_000, 1 << 20).unwrap();
        write(now - 1_000, 10).unwrap();
        let writer = |max_bytes: u64| Writer {
            dir: dir.path().to_owned(),
            segment_bytes: 1 << 20,
            segment_age: Duration::from_secs(3600),
            retention_ms: 5_400_000,
            max_bytes,
            current: None,
            roster: BTreeMap::new(),
            last_error_logged: None,
            counters: Arc::default(),
        };
        writer(1 << 30).sweep();
        let left = |dir: &Path| segments(dir).unwrap().iter().map(|s| s.start_ms).collect::<Vec<_>>();
        assert_eq!(left(dir.path()), vec![now - 7_200_000, now - 3_600_000, now - 1_000], "the two ancient ones went");
        writer((1 << 20) + 100).sweep();
        assert_eq!(left(dir.path()), vec![now - 3_600_000, now - 1_000], "the oldest went to fit the size");
        writer(1).sweep();
        assert_eq!(left(dir.path()), vec![now - 1_000], "the newest stays whatever its size");
    }

    /// The writer writes what it is given, opens each segment with the
    /// roster, and a waiter returns once its line is written.
    #[test]
    fn the_writer_writes_lines_and_rotates_with_the_roster() {
        let dir = tempfile::tempdir().unwrap();
        let config = TrafficConfig { segment_mb: 1, ..TrafficConfig::default() };
        let log = TrafficLog::start(dir.path(), &config).unwrap();
        log.record(Line::Agent {
            at: 1,
            agent: "ann".into(),
            group: "g".into(),
            skills: BTreeMap::new(),
            capacity: Capacity::default(),
            wrap_up_ms: 0,
            presence: Presence::Available,
        });
        // Enough lines for more than one 1 MiB segment.
        let mut last = 0;
        for item in 0..12_000u64 {
            last = log.record(arrival(2 + item, item));
        }
        log.wait_written(last);
        assert_eq!(log.view().lines, 12_001);
        let files = segments(dir.path()).unwrap();
        assert!(files.len() >= 2, "{files:?}");
        let second = std::fs::read_to_string(&files[1].path).unwrap();
        assert!(second.starts_with("{\"t\":\"agent\""), "a segment opens with the roster: {}", &second[..80]);
        let recorded = read_window(dir.path(), 0, u64::MAX / 2).unwrap();
        assert_eq!(recorded.arrivals.len(), 12_000);
    }
}
