//! Several nodes on one PostgreSQL store: one leader routes, the others stand
//! by with their state and plugins warm, and one of them takes over when the
//! leader dies.
//!
//! **Roles.** Every node starts as a standby: it restores the latest snapshot,
//! replays the journal after it, loads the plugins the journal names, and then
//! *follows* — applies each record the leader commits (a notification wakes it;
//! it also reads every `follow_ms`) exactly as recovery does, handing back the
//! recorded rule decisions, so its state is the leader's. Each `lease_check_ms`
//! it tries for the leader lease (`serve/pg.rs`). The one that gets it reads
//! what is left of the journal, raises the epoch (the fencing token its writes
//! carry), loads the plugins changed since it warmed up, starts the ticker and
//! serves writes. Offers outstanding at the takeover stay with their agents and
//! time out as they would have: the router's timers are part of the replayed
//! state, so no item is held by two agents.
//!
//! **Clients may talk to any node.** A standby answers reads from its state
//! (`X-Switchyard-Role`, and how many records it is behind in
//! `X-Switchyard-Behind`), and answers every write with 503, `Retry-After: 1`
//! and the leader's address in the body (`leader`) and in
//! `X-Switchyard-Leader`: the client retries there. It does not forward: a
//! write is acknowledged only by the node that journals it. `/readyz` is 200
//! on the leader only, so a load balancer that checks it sends everything to
//! the leader.
//!
//! **Deposed.** A leader that loses its lease connection (the database
//! restarted, the network cut it) or whose write the fence refused stops
//! taking writes at once, and rebuilds its state from the store as a standby:
//! what it applied but could not commit is dropped with the old state.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::api::Shared;
use super::config::ServeConfig;
use super::pg::{Lease, Listener, StoreUrl};
use crate::error::Result;

/// What a node does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// It routes and journals.
    Leader,
    /// It follows the leader's journal and refuses writes.
    Standby,
}

impl Role {
    /// Its name in answers.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
        }
    }
}

/// This node's role and what it knows of the leader, shared by the state and
/// the routes across rebuilds.
#[derive(Debug)]
pub(crate) struct NodeStatus {
    /// In a cluster (a PostgreSQL store); a single node is always the leader.
    pub(crate) clustered: bool,
    /// The node's name.
    pub(crate) node: String,
    role: AtomicU8,
    /// The leader's advertised address, as the store names it.
    leader: Mutex<String>,
    /// Records the leader has committed that this node has not applied.
    behind: AtomicU64,
    /// The cluster store, for what is read from it directly (the audit log).
    pub(crate) store: Option<StoreUrl>,
    /// This node's fencing token while it leads (0 otherwise).
    epoch: AtomicU64,
    /// Takeovers by this node since it started.
    pub(crate) takeovers: AtomicU64,
    /// How long the last takeover took, ms (lease acquired → serving writes).
    pub(crate) last_takeover_ms: AtomicU64,
}

impl NodeStatus {
    /// A node of its own (embedded store): always the leader.
    pub(crate) fn single() -> NodeStatus {
        NodeStatus::new(None, "single".into(), Role::Leader)
    }

    /// A node of a cluster on `store`, starting as a standby.
    pub(crate) fn clustered(node: String, store: StoreUrl) -> NodeStatus {
        NodeStatus::new(Some(store), node, Role::Standby)
    }

    fn new(store: Option<StoreUrl>, node: String, role: Role) -> NodeStatus {
        NodeStatus {
            clustered: store.is_some(),
            store,
            epoch: AtomicU64::new(0),
            node,
            role: AtomicU8::new(role as u8),
            leader: Mutex::new(String::new()),
            behind: AtomicU64::new(0),
            takeovers: AtomicU64::new(0),
            last_takeover_ms: AtomicU64::new(0),
        }
    }

    /// The node's role now.
    pub(crate) fn role(&self) -> Role {
        if self.role.load(Ordering::Acquire) == Role::Leader as u8 { Role::Leader } else { Role::Standby }
    }

    fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Release);
    }

    /// The leader's address, as last read from the store (none: not known yet).
    pub(crate) fn leader(&self) -> Option<String> {
        Some(self.leader.lock().unwrap_or_else(|p| p.into_inner()).clone()).filter(|a| !a.is_empty())
    }

    fn set_leader(&self, address: String) {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = address;
    }

    /// This node's fencing token while it leads its cluster; 0 otherwise.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records committed by the leader and not applied here yet.
    pub(crate) fn behind(&self) -> u64 {
        self.behind.load(Ordering::Relaxed)
    }
}

/// The node's current state and the routes serving it; replaced when a
/// deposed leader rebuilds itself as a standby.
pub(crate) struct Node {
    pub(crate) status: Arc<NodeStatus>,
    pub(crate) state: ArcSwap<Shared>,
    pub(crate) routes: Arc<ArcSwap<axum::Router>>,
}

impl Node {
    /// The state requests are served from now.
    pub(crate) fn current(&self) -> Arc<Shared> {
        self.state.load_full()
    }

    /// Serve `state` from now on; the one before is retired (its remaining
    /// connections are told to reconnect, its event streams end).
    fn replace(&self, state: Arc<Shared>, config: &ServeConfig) {
        let routes = super::api::routes(state.clone(), &config.http);
        let old = self.state.swap(state);
        old.retired.store(true, Ordering::Release);
        old.stopping.store(true, Ordering::Release);
        // Its plugin directory watcher would try to journal what it sees.
        drop(old.plugins.watcher.lock().unwrap_or_else(|p| p.into_inner()).take());
        self.routes.store(Arc::new(routes));
    }
}

/// Apply the records the leader committed since this node last looked.
/// Returns how many were applied.
pub(crate) fn follow(state: &Shared) -> Result<u64> {
    let (applied, changed) = {
        let mut core = super::core::lock(&state.core);
        let before = core.plugins.departments.clone();
        let applied = core.follow()?;
        let changed: Vec<String> = core
            .plugins
            .departments
            .iter()
            .filter(|(name, now)| before.get(*name) != Some(now))
            .map(|(name, _)| name.clone())
            .collect();
        (applied, changed)
    };
    // A plugin change the leader journaled: load it now, so a takeover finds
    // it warm (outside the lock: compiling takes a while).
    for department in changed {
        super::plugins::warm(state, &department)?;
    }
    Ok(applied)
}

/// Become the leader with `epoch`: catch up, write with the epoch, then do
/// what a leader does at start.
fn take_over(state: &Arc<Shared>, config: &ServeConfig, epoch: u64) -> Result<()> {
    follow(state)?;
    state.journal.take_over(epoch)?;
    state.node.epoch.store(epoch, Ordering::Release);
    // Applied records after `take_over` re-read the store's end: nothing can
    // have come in between, as no other node holds the lease.
    follow(state)?;
    // The next snapshot is due after `snapshot_every` records from the
    // store's latest, not from the one this node started on.
    let covered = state.journal.snapshot_seq()?;
    {
        let mut core = super::core::lock(&state.core);
        core.tail_replayed = core.applied.saturating_sub(covered);
        core.snapshot_appended = core.appended;
    }
    super::plugins::lead(state, config)?;
    super::lead(state, config, false)?;
    state.node.set_role(Role::Leader);
    Ok(())
}

/// The cluster's side of a node: contend for the lease, follow while a
/// standby, watch the lease while the leader. Runs on its own thread until
/// `stop` is set.
pub(crate) fn run(
    node: Arc<Node>,
    config: ServeConfig,
    data_dir: PathBuf,
    url: StoreUrl,
    address: String,
    stop: Arc<AtomicBool>,
) {
    let status = node.status.clone();
    let check = Duration::from_millis(config.cluster.lease_check_ms);
    let poll = Duration::from_millis(config.cluster.follow_ms);
    let mut lease: Option<Lease> = None;
    let mut listener: Option<Listener> = None;
    let mut last_follow = Instant::now();
    let mut last_try = Instant::now().checked_sub(check).unwrap_or_else(Instant::now);
    let mut rebuild = false;
    while !stop.load(Ordering::Relaxed) {
        if rebuild {
            // Drop the lease (and with it the lock) before anything else.
            lease = None;
            status.set_role(Role::Standby);
            match super::start(&config, &data_dir, &super::Store::Cluster(Box::new(url.clone())), status.clone()) {
                Ok(state) => {
                    node.replace(state, &config);
                    rebuild = false;
                    tracing::info!(node = %status.node, "state rebuilt from the store; following the leader as a standby");
                }
                Err(e) => {
                    tracing::error!(node = %status.node, error = %e, "cannot rebuild the state from the store; retrying");
                    std::thread::sleep(check.max(Duration::from_secs(1)));
                }
            }
            continue;
        }
        if lease.is_none() {
            match Lease::connect(&url) {
                Ok(l) => lease = Some(l),
                Err(e) => {
                    tracing::warn!(node = %status.node, error = %e, "cannot reach the store for the lease; retrying");
                    std::thread::sleep(check);
                    continue;
                }
            }
        }
        let state = node.current();
        match status.role() {
            Role::Leader => {
                let alive = lease.as_mut().is_some_and(Lease::alive);
                let failed = state.journal.failure();
                if !alive || failed.is_some() {
                    let why = failed.unwrap_or_else(|| "the lease connection to the store was lost".into());
                    tracing::error!(node = %status.node, reason = %why, "no longer the leader: writes stop, the state is rebuilt as a standby");
                    state.journal.stop_writes(&format!("this node is no longer the leader ({why})"));
                    status.set_role(Role::Standby);
                    status.epoch.store(0, Ordering::Release);
                    status.set_leader(String::new());
                    rebuild = true;
                    continue;
                }
                std::thread::sleep(check);
            }
            Role::Standby => {
                let Some(held) = lease.as_mut() else { continue };
                // The lease is tried every `lease_check_ms`, not at every
                // commit notification (hundreds a second under load).
                if last_try.elapsed() >= check {
                    last_try = Instant::now();
                    match held.try_acquire(&status.node, &address) {
                        Ok(Some(epoch)) => {
                            let started = Instant::now();
                            match take_over(&state, &config, epoch) {
                                Ok(()) => {
                                    let ms = started.elapsed().as_millis() as u64;
                                    status.takeovers.fetch_add(1, Ordering::Relaxed);
                                    status.last_takeover_ms.store(ms, Ordering::Relaxed);
                                    status.set_leader(address.clone());
                                    status.behind.store(0, Ordering::Relaxed);
                                    tracing::info!(node = %status.node, epoch, took_ms = ms, "took over as the leader");
                                }
                                Err(e) => {
                                    tracing::error!(node = %status.node, error = %e, "takeover failed; rebuilding as a standby");
                                    status.epoch.store(0, Ordering::Release);
                                    state.journal.stop_writes(&format!("the takeover failed: {e}"));
                                    rebuild = true;
                                }
                            }
                            continue;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(node = %status.node, error = %e, "lease check failed; reconnecting");
                            lease = None;
                            continue;
                        }
                    }
                    if let Ok(leader) = held.leader() {
                        status.set_leader(leader.address);
                    }
                }
                // Follow: at once when the leader notified a commit, else
                // every `follow_ms`.
                if listener.is_none() {
                    listener = Listener::connect(&url).ok();
                }
                let notified = match listener.as_mut().map(|l| l.wait(check)) {
                    Some(Ok(notified)) => notified,
                    Some(Err(_)) => {
                        listener = None;
                        false
                    }
                    None => {
                        std::thread::sleep(check);
                        false
                    }
                };
                if notified || last_follow.elapsed() >= poll {
                    last_follow = Instant::now();
                    match follow(&state) {
                        Ok(_) => match state.journal.store_last_seq() {
                            Ok(last) => {
                                let applied = super::core::lock(&state.core).applied;
                                status.behind.store(last.saturating_sub(applied), Ordering::Relaxed);
                            }
                            Err(e) => tracing::warn!(node = %status.node, error = %e, "cannot read the journal's end"),
                        },
                        Err(e) => {
                            tracing::error!(node = %status.node, error = %e, "following the journal failed; rebuilding from the snapshot");
                            rebuild = true;
                        }
                    }
                }
            }
        }
    }
}
