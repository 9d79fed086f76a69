//! `switchyard serve`: the routing daemon. It owns one [`Router`] on the real-time
//! clock, the departments' plugins (through one [`ReloadManager`]), a durable
//! journal and the HTTP API.
//!
//! Start-up: read the config ([`config`]) → check the tokens → open the journal
//! ([`journal`]) → build the plugin runtime, the reload manager and the router
//! (each department's rules: the manager's, under the department's time budget)
//! → replay the journal into the router (queues, offers, cases and statistics
//! come back; plugin records only say which generation is active and kept) →
//! load those generations from their blobs with their journaled numbers, then
//! config-file plugins that are new, then start watching `plugin_dir`
//! (`plugins`) → offers pending at the stop return to their queues → register
//! config agents the journal does not know → listen, print the bound address on
//! stdout → serve until SIGTERM or ctrl-c, then finish the requests in flight and
//! stop.
//!
//! A ticker runs the router's due timers (offer timeouts, after-work, escalation
//! rechecks) every `tick_ms`, journaling each tick that has something to do so a
//! replay takes the same decisions at the same times.
//!
//! No plugin is called under the state lock: a new item's (or a hand-off's)
//! `prioritise` is asked before the op that creates it, and `match-agents` / `escalate` are deferred by
//! the tape and asked after the op, then applied as an `Op::Decide`
//! (`core::settle`; see `serve/tape.rs`). A slow department holds its own
//! requests, not the daemon.
//!
//! Files: [`config`] (the file, every value bounded), `auth` (roles, tokens),
//! `api` (route table, auth layer, handlers), `edge` (accept loop: connection
//! limit, header/idle timeout), `core` (the state behind the lock: validate →
//! journal → apply), [`journal`] (records, redb store, group commit), `plugins`
//! (the one plugin life cycle: upload, rollback, shadow, fixtures, watched
//! directory, start-up restore, audit; the journal's plugin ledger), `budget`
//! (per-department rule time), `prom` (`/metrics`), `console` (the web console
//! at `/` and the reads it adds to the API), [`traffic`] (the traffic log:
//! what arrived and what became of it, for `export-traffic` and backtests),
//! `backtest` (backtests of a candidate over recorded traffic, one at a time
//! on a low-priority worker), `pg` (the PostgreSQL store of a cluster:
//! tables, migrations, the leader lease and its fence) and `cluster`
//! (several nodes: one leader, warm standbys, takeover).

pub mod config;
pub mod journal;

mod api;
mod auth;
pub mod backtest;
mod budget;
mod cluster;
mod console;
mod core;
mod edge;
mod openapi;
mod pg;
mod plugins;
mod prom;
mod snapshot;
mod tape;
pub mod traffic;

pub use api::{AgentBody, ItemBody, ROUTES, RouteSpec};
pub use auth::Role;
pub use openapi::{document as openapi_document, undocumented_and_unserved};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::error::{Error, Result};
use switchyard_core::clock::VirtualClock;
use switchyard_core::router::{DepartmentSpec, Presence, QueueSpec, Router};
use switchyard_runtime::reload::{ReloadManager, ReloadOptions};
use switchyard_runtime::runtime::Runtime;

use self::api::Shared;
use self::budget::{Budget, BudgetedRules};
use self::config::{ServeConfig, seconds_ms};
use self::core::{Core, FinishedItems};
use self::journal::{GroupCommit, Op, RedbJournal};

/// What `switchyard serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The config file.
    pub config: PathBuf,
    /// Listen here instead of the config's `listen`.
    pub listen: Option<SocketAddr>,
    /// Keep the journal here instead of the config's `data_dir`.
    pub data_dir: Option<PathBuf>,
}

/// Run the daemon until SIGTERM or ctrl-c.
pub fn run(options: ServeOptions) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io { path: PathBuf::from("<tokio runtime>"), source })?;
    runtime.block_on(serve(options))
}

/// Where the journal lives.
#[derive(Debug, Clone)]
enum Store {
    /// The embedded store in the data directory: one node.
    Embedded,
    /// A PostgreSQL database shared by the nodes of a cluster.
    Cluster(Box<pg::StoreUrl>),
}

/// Build the daemon's state from the config and recover it from the journal.
/// A leader (a node of its own) then does what a leader does at start
/// ([`lead`]); a cluster's node starts as a standby, its plugins loaded, and
/// writes nothing until it takes over (`cluster`).
fn start(
    config: &ServeConfig,
    data_dir: &std::path::Path,
    store: &Store,
    node: Arc<cluster::NodeStatus>,
) -> Result<Arc<Shared>> {
    let auth = Arc::new(auth::Auth::from_config(&config.auth, &config.path)?);
    std::fs::create_dir_all(data_dir).map_err(|source| Error::Io { path: data_dir.to_owned(), source })?;
    let journal_path = match store {
        Store::Embedded => data_dir.join("journal.redb"),
        Store::Cluster(url) => PathBuf::from(format!("{url:?}")),
    };
    let opened: Box<dyn journal::JournalStore> = match store {
        Store::Embedded => Box::new(RedbJournal::open(&journal_path)?),
        Store::Cluster(url) => Box::new(pg::PgJournal::open(url)?),
    };
    let journal = match store {
        Store::Embedded => GroupCommit::new(opened),
        Store::Cluster(_) => GroupCommit::new(opened).in_cluster(),
    };
    let journal = Arc::new(journal);

    let catalog = Arc::new(RwLock::new(switchyard_contract::Catalog::default()));
    let runtime = Runtime::builder().catalog(catalog.clone()).cache_dir(data_dir.join("cache")).build()?;
    // Every rule change goes through the reload manager; its audit log is a
    // file beside the journal, read back at a restart.
    let reload = ReloadManager::new(
        runtime.clone(),
        ReloadOptions::default()
            .keep(config.keep_generations)
            .audit_file(data_dir.join("audit.jsonl"))
            .smoke_call(true),
    )?;
    let clock = VirtualClock::new(0);
    // One tape for every department: see `tape`.
    let tape = Arc::new(tape::Tape::default());
    let departments = config
        .departments
        .iter()
        .map(|d| DepartmentSpec {
            name: d.name.get_ref().clone(),
            offer_timeout_ms: seconds_ms(d.offer_timeout_s).unwrap_or(20_000),
            reoffer_block_ms: seconds_ms(d.reoffer_block_s).unwrap_or(60_000),
            fcr_window_ms: seconds_ms(d.fcr_window_h * 3600.0).unwrap_or(0),
        })
        .collect();
    let queues = config
        .queues
        .iter()
        .map(|q| QueueSpec {
            name: q.name.get_ref().clone(),
            department: q.department.get_ref().clone(),
            skill: q.skill.clone(),
            service_level_ms: seconds_ms(q.service_level_s).unwrap_or(20_000),
            short_abandon_ms: seconds_ms(q.short_abandon_s).unwrap_or(5_000),
        })
        .collect();
    // The latest snapshot, if any: the router starts from it and only the
    // records after it are replayed.
    let stored = journal.snapshot()?;
    let (router, snapshot, after) = match stored {
        Some((seq, bytes)) => {
            let snapshot = snapshot::DaemonSnapshot::decode(&bytes).map_err(|why| Error::Journal {
                path: journal_path.clone(),
                message: format!("snapshot covering records up to {seq}: {why}"),
            })?;
            clock.set(snapshot.clock_ms);
            let snapshot::DaemonSnapshot { router, daemon, .. } = snapshot;
            let router = Router::restore(
                departments,
                queues,
                Arc::new(clock.clone()),
                catalog.clone(),
                config.router_options(),
                router,
            )
            .map_err(|e| Error::Config {
                path: config.path.clone(),
                message: format!("restoring the snapshot: {e}"),
            })?;
            (router, Some((daemon, bytes.len())), seq)
        }
        None => {
            let router =
                Router::new(departments, queues, Arc::new(clock.clone()), catalog.clone(), config.router_options())
                    .map_err(|e| Error::Config { path: config.path.clone(), message: e.to_string() })?;
            (router, None, 0)
        }
    };

    let mut core = Core {
        router,
        clock,
        journal: journal.clone(),
        auth: auth.clone(),
        last_ticket: 0,
        budgets: BTreeMap::new(),
        runtime: runtime.clone(),
        plugins: plugins::PluginLedger::new(config.keep_generations),
        finished: FinishedItems::new(config.keep_finished),
        replaying: false,
        tape: tape.clone(),
        diverged: 0,
        direct_rules: BTreeMap::new(),
        pending: Default::default(),
        snapshot_every: config.snapshot_every,
        snapshot_appended: 0,
        tail_replayed: 0,
        replayed_at_start: 0,
        last_snapshot: None,
        recovered: 0,
        applied: 0,
        appended: 0,
        offers: BTreeMap::new(),
        contacts: Default::default(),
        // Written only once replay is over (`Core::after` skips replayed ops).
        traffic: match config.traffic.enabled {
            true => Some(traffic::TrafficLog::start(&data_dir.join("traffic"), &config.traffic)?),
            false => None,
        },
    };
    // Opt-in decision recording, flushed per record so a live log can be tailed.
    let decision_log = match &config.record_decisions {
        Some(path) => Some(crate::tools::record::DecisionLog::create_live(&config.resolve(path))?),
        None => None,
    };
    // Each department decides through the reload manager's rules (the active
    // generation, and a shadow beside it while one runs) under its time budget.
    for d in &config.departments {
        let name = d.name.get_ref();
        let budget = Arc::new(Budget::new(name, Duration::from_millis(d.rule_budget_ms)));
        core.budgets.insert(name.clone(), budget.clone());
        let budgeted: Arc<dyn switchyard_core::rules::RuleSet> =
            Arc::new(BudgetedRules { inner: reload.rules(name), budget, runtime: runtime.clone() });
        let rules = match &decision_log {
            Some(log) => {
                Arc::new(crate::tools::record::RecordingRules::new(name, budgeted, catalog.clone(), log.clone()))
                    as Arc<dyn switchyard_core::rules::RuleSet>
            }
            None => budgeted,
        };
        // Outermost: replay hands the journal's decisions back without calling
        // anything inside (budget, recording, plugin).
        core.direct_rules.insert(name.clone(), rules.clone());
        let rules = Arc::new(tape::TapedRules::new(name, rules, tape.clone(), catalog.clone()));
        core.router.set_rules(name, rules)?;
    }
    if let Some((snapshot, size)) = snapshot {
        core.last_snapshot = Some((after, size, 0));
        // Events of the restore (items of a queue no longer configured sent to
        // the exception queue) are not new decisions to count.
        core.router.drain_events().for_each(drop);
        core.restore(snapshot);
        tracing::info!(records = after, open_items = core.router.open_items(), "snapshot restored");
    }
    // Replay hands back the recorded rule decisions and applies plugin records
    // to the ledger only; the plugins it names are loaded afterwards
    // (`plugins::start_up`).
    let recovered = core.recover(after)?;
    core.tail_replayed = recovered;
    core.replayed_at_start = recovered;
    tracing::info!(records = recovered, open_items = core.router.open_items(), "journal replayed");
    journal.flush().map_err(|e| Error::Invalid(format!("journal: {e}")))?;
    let budgets = core.budgets.clone();
    let shared = Arc::new(Shared {
        core: Mutex::new(core),
        snapshotting: Mutex::new(()),
        stopping: std::sync::atomic::AtomicBool::new(false),
        node,
        retired: std::sync::atomic::AtomicBool::new(false),
        backtests: backtest::Backtests::new(data_dir, config),
        auth,
        journal: journal.clone(),
        plugins: plugins::Plugins {
            reload,
            budgets,
            order: config.departments.iter().map(|d| d.name.get_ref().clone()).collect(),
            load_errors: Mutex::new(BTreeMap::new()),
            watcher: Mutex::new(None),
        },
    });
    // A cluster's audit log is the store's: what the leader's reload manager
    // records goes there (see `pg::forward_audit`).
    if let Store::Cluster(url) = store {
        let (url, events, node) = ((**url).clone(), shared.plugins.reload.subscribe(), shared.node.clone());
        std::thread::Builder::new()
            .name("switchyard-audit".into())
            .spawn(move || pg::forward_audit(url, events, node))
            .map_err(|source| Error::Io { path: PathBuf::from("<audit thread>"), source })?;
    }
    plugins::start_up(&shared, config)?;
    if shared.node.role() == cluster::Role::Leader {
        plugins::lead(&shared, config)?;
        lead(&shared, config, true)?;
    }
    Ok(shared)
}

/// What the node that journals does once its state is recovered (at start,
/// or when it takes over a cluster's lead): offers pending at a stop go back
/// to their queues (`return_offers`: their agents' desktops were disconnected;
/// at a takeover they stay with their agents and time out as they would
/// have), config agents the journal does not know are registered, and waiting
/// work is offered.
fn lead(shared: &Shared, config: &ServeConfig, return_offers: bool) -> Result<()> {
    let journal = shared.journal.clone();
    let mut core = shared.core.lock().unwrap_or_else(|p| p.into_inner());
    // The roster as replay left it, so the log knows every agent from here on.
    if let Some(log) = &core.traffic {
        let now = core.now();
        for (id, _, _) in core.router.agents() {
            if let Some(line) = core::agent_line(&core.router, id, now) {
                log.record(line);
            }
        }
    }
    if return_offers && core.has_pending_offers() {
        core.submit(Op::ReturnOffers).map_err(|e| Error::Invalid(format!("returning pending offers: {e:?}")))?;
    }
    // Config agents the journal does not know yet (first start, or added since).
    for a in &config.agents {
        let name = a.name.get_ref();
        if core.router.agent_id(name).is_some() {
            continue;
        }
        let agent = journal::AgentRecord {
            group: a.group.clone(),
            skills: a.skills.get_ref().iter().map(|(k, v)| (k.clone(), *v)).collect(),
            capacity: a.capacity,
            wrap_up_ms: seconds_ms(a.wrap_up_s).unwrap_or(0),
        };
        core.submit(Op::RegisterAgent { name: name.clone(), agent })
            .map_err(|e| Error::Invalid(format!("agent `{name}`: {e:?}")))?;
        if a.state != Presence::Offline {
            core.submit(Op::AgentState { name: name.clone(), presence: a.state })
                .map_err(|e| Error::Invalid(format!("agent `{name}`: {e:?}")))?;
        }
    }
    let pending = core.take_pending();
    drop(core);
    core::settle(&shared.core, pending).map_err(|e| Error::Invalid(format!("offering work at start: {e:?}")))?;
    journal.flush().map_err(|e| Error::Invalid(format!("journal: {e}")))?;
    Ok(())
}

async fn serve(options: ServeOptions) -> Result<()> {
    let config = ServeConfig::load(&options.config)?;
    let data_dir = options.data_dir.clone().unwrap_or_else(|| config.resolve(&config.data_dir));
    let listen: SocketAddr = match options.listen {
        Some(a) => a,
        None => config.listen.get_ref().parse().map_err(|_| Error::Config {
            path: config.path.clone(),
            message: format!("key `listen`: `{}` is not an address", config.listen.get_ref()),
        })?,
    };
    if config.auth.insecure_local && !listen.ip().is_loopback() {
        return Err(Error::Config {
            path: config.path.clone(),
            message: format!(
                "key `auth.insecure_local`: an open daemon may listen only on a loopback address, not {listen}; set tokens to listen there"
            ),
        });
    }
    let listener_for = |listen: SocketAddr| async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Io { path: PathBuf::from(listen.to_string()), source })?;
        let bound =
            listener.local_addr().map_err(|source| Error::Io { path: PathBuf::from(listen.to_string()), source })?;
        Ok::<_, Error>((listener, bound))
    };
    // A single node recovers before it listens, so a daemon that answers is
    // ready; a cluster's node listens first, as its address is what it
    // advertises to the others when it leads.
    let (store, status, early) = match &config.store {
        None => (Store::Embedded, Arc::new(cluster::NodeStatus::single()), None),
        Some(url) => {
            let node = config.cluster.node.clone().unwrap_or_else(default_node_name);
            let url = pg::StoreUrl::new(url.get_ref(), &node)?;
            let migrate = url.clone();
            tokio::task::spawn_blocking(move || migrate.migrate())
                .await
                .map_err(|e| Error::Invalid(format!("migration task failed: {e}")))??;
            let early = listener_for(listen).await?;
            (Store::Cluster(Box::new(url.clone())), Arc::new(cluster::NodeStatus::clustered(node, url)), Some(early))
        }
    };
    let state = {
        let config = config.clone();
        let data_dir = data_dir.clone();
        let store = store.clone();
        let status = status.clone();
        tokio::task::spawn_blocking(move || start(&config, &data_dir, &store, status))
            .await
            .map_err(|e| Error::Invalid(format!("start-up task failed: {e}")))??
    };
    let (listener, bound) = match early {
        Some(early) => early,
        None => listener_for(listen).await?,
    };
    tracing::info!(address = %bound, data_dir = %data_dir.display(), "switchyard serve listening");
    // The tests (and scripts) read the bound address from stdout.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "switchyard listening on http://{bound}");
        let _ = out.flush();
    }
    let node = Arc::new(cluster::Node {
        status: status.clone(),
        routes: Arc::new(arc_swap::ArcSwap::from_pointee(api::routes(state.clone(), &config.http))),
        state: arc_swap::ArcSwap::new(state),
    });
    let stop_cluster = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cluster_thread = match &store {
        Store::Embedded => None,
        Store::Cluster(url) => {
            let (node, config, url, stop) = (node.clone(), config.clone(), (**url).clone(), stop_cluster.clone());
            let address = config.cluster.advertise.clone().unwrap_or_else(|| format!("http://{bound}"));
            let data_dir = data_dir.clone();
            Some(
                std::thread::Builder::new()
                    .name("switchyard-cluster".into())
                    .spawn(move || cluster::run(node, config, data_dir, url, address, stop))
                    .map_err(|source| Error::Io { path: PathBuf::from("<cluster thread>"), source })?,
            )
        }
    };

    let ticker = {
        let node = node.clone();
        let every = Duration::from_millis(config.tick_ms);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                // Only the leader runs timers; a standby's come with the
                // leader's records.
                let state = node.current();
                if state.node.role() != cluster::Role::Leader {
                    continue;
                }
                let result = tokio::task::spawn_blocking(move || {
                    let (ticked, pending) = {
                        let mut core = core::lock(&state.core);
                        (core.tick(), core.take_pending())
                    };
                    // Escalations and offers the tick deferred are asked with the
                    // lock released; the records are committed with the
                    // requests' (or alone), outside the lock.
                    ticked
                        .and_then(|()| core::settle(&state.core, pending))
                        .and_then(|_| state.journal.flush().map_err(core::Refusal::Stopped))?;
                    let snapshot_due = core::lock(&state.core).snapshot_due();
                    if snapshot_due {
                        take_snapshot(&state, "records").map_err(core::Refusal::Internal)?;
                    }
                    Ok::<(), core::Refusal>(())
                })
                .await;
                match result {
                    // Logged once, when the journal failed.
                    Ok(Err(core::Refusal::Stopped(_))) => {}
                    Ok(Err(e)) => tracing::error!(error = ?e, "tick failed"),
                    _ => {}
                }
            }
        })
    };

    let stopping = node.clone();
    let shutdown = async move {
        shutdown_signal().await;
        // Event streams end at their next check, so the drain below is not
        // held open by a console left on someone's screen.
        stopping.current().stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let served = edge::serve(listener, node.routes.clone(), &config.http, shutdown).await;
    ticker.abort();
    let state = node.current();
    if state.node.role() == cluster::Role::Leader {
        if let Err(e) = state.journal.flush() {
            tracing::error!(error = %e, "journal not flushed at shutdown");
        }
        // A clean stop leaves a snapshot, so the next start replays nothing.
        let changed = {
            let core = state.core.lock().unwrap_or_else(|p| p.into_inner());
            core.records_since_snapshot() > 0
        };
        if changed {
            let state = state.clone();
            match tokio::task::spawn_blocking(move || take_snapshot(&state, "stop")).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "no snapshot at shutdown; the next start replays the journal")
                }
                Err(e) => tracing::error!(error = %e, "snapshot task failed at shutdown"),
            }
        }
    }
    // Last, so a leader keeps the lease until its snapshot is stored; the
    // lease's connection closes with the thread and a standby takes over.
    if let Some(thread) = cluster_thread {
        stop_cluster.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    served.map_err(|source| Error::Io { path: PathBuf::from(bound.to_string()), source })?;
    tracing::info!("switchyard serve stopped");
    Ok(())
}

/// A node name unique enough without configuration: host name and process id.
fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Take a snapshot: copy the state under the lock, then encode it and store it
/// (after the records it covers are durable) outside the lock. One at a time,
/// so an older snapshot never lands after a newer one.
fn take_snapshot(state: &Shared, why: &'static str) -> std::result::Result<(), String> {
    let _one_at_a_time = state.snapshotting.lock().unwrap_or_else(|p| p.into_inner());
    let started = std::time::Instant::now();
    let (snapshot, ticket, appended) = {
        let core = state.core.lock().unwrap_or_else(|p| p.into_inner());
        (core.snapshot(), core.last_ticket, core.appended)
    };
    let locked_ms = started.elapsed().as_millis() as u64;
    let bytes = snapshot.encode()?;
    drop(snapshot);
    let seq = state.journal.put_snapshot(ticket, &bytes);
    let size = bytes.len();
    drop(bytes);
    release_freed_memory();
    let seq = seq?;
    let mut core = state.core.lock().unwrap_or_else(|p| p.into_inner());
    core.snapshot_appended = appended;
    core.tail_replayed = 0;
    core.last_snapshot = Some((seq, size, locked_ms));
    tracing::info!(
        why,
        covers = seq,
        bytes = size,
        locked_ms,
        total_ms = started.elapsed().as_millis() as u64,
        "snapshot taken"
    );
    Ok(())
}

/// Hand the memory a snapshot used (the state's copy, its encoding, the
/// store's write) back to the system. glibc keeps freed memory in the arena of
/// the thread that freed it, and snapshots run on whichever blocking thread is
/// free: in the soak each snapshot left its size behind as RSS (152 → 233 MiB
/// over two snapshots). Elsewhere the allocator decides.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's arenas to the
    // system; it takes the arenas' locks and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

#[cfg(test)]
mod tests;
