//! Backtests from the daemon: a department's candidate (its shadow, or a kept
//! generation) against its active rules, over the last N hours of the
//! daemon's own traffic log ([`super::traffic`]), in the simulator
//! ([`crate::sim::backtest`]); the report is the simulator's backtest report
//! (HTML, and a JSON summary through the API).
//!
//! **Off the decision path.** One backtest at a time, on its own thread at the
//! lowest CPU priority (nice 19 on Linux: it gets only what routing leaves),
//! never under the state lock (the lock is taken once, briefly, to read which
//! generations are active and in shadow), cancellable, and stopped at
//! `WALL_CLOCK_CAP`. Plugins are loaded from the journal's blobs into a
//! runtime of the backtest's own, so the daemon's instance pools and
//! statistics are not touched.
//!
//! **What the daemon's traffic cannot say** comes from the daemon itself:
//! departments, queues and plugin config from its config file; the roster
//! from the traffic log's `agent` and `presence` lines (each agent available
//! exactly when it was, all the window if it never changed); handle times of
//! items never completed in the window from the mean of the completed ones of
//! the same queue and channel (exponential), or 300 s if there were none.
//! The run goes on `DRAIN_S` past the window's end (which is now) with the
//! agents then available, so the window's last arrivals are served rather
//! than cut off.
//! Agents in the simulator accept offers at once; the daemon's take time, so
//! the replay's waits are shorter than the recorded ones by that much.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contract::Channel;
use switchyard_core::clock::{Clock, SystemClock};

use super::api::{ApiError, AppState, Reply, ok};
use super::config::ServeConfig;
use super::traffic::{Recorded, RosterAgent};
use crate::sim::dist::DistSpec;
use crate::sim::scenario::{AgentDef, ArrivalDef, DepartmentDef, QueueDef, Scenario, ShiftDef};

/// A backtest is stopped after this long, whatever it has done.
pub(crate) const WALL_CLOCK_CAP: Duration = Duration::from_secs(600);
/// Default window when the request names none, hours.
const DEFAULT_HOURS: f64 = 24.0;
/// Handle time of a queue whose items were never seen completed, seconds.
const DEFAULT_HANDLE_S: f64 = 300.0;
/// Simulated time after the window's end, seconds: the window ends now, so
/// its last arrivals would otherwise be cut off while waiting or in work;
/// the agents available at its end stay on to finish them.
const DRAIN_S: f64 = 3600.0;

/// The daemon's backtests: the latest one (running or finished).
pub(crate) struct Backtests {
    /// The data directory (traffic log, scratch files).
    data_dir: PathBuf,
    /// The config the scenario is built from.
    config: ServeConfig,
    latest: Mutex<Option<Arc<Run>>>,
}

/// One backtest.
struct Run {
    id: u64,
    department: String,
    candidate: u64,
    active: Option<u64>,
    hours: f64,
    started_ms: u64,
    cancel: AtomicBool,
    state: Mutex<RunState>,
}

#[derive(Clone)]
enum RunState {
    /// Reading the traffic, then the two runs.
    Running {
        arrivals: Option<usize>,
    },
    Done {
        summary: Value,
        html: Arc<String>,
        elapsed_ms: u64,
        arrivals: usize,
    },
    Failed(String),
    Cancelled,
}

/// `POST /v1/plugins/{department}/backtest`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    /// The window: the last this many hours of recorded traffic.
    hours: Option<f64>,
    /// The candidate: a kept generation (default: the shadow).
    generation: Option<u64>,
}

impl Backtests {
    pub(crate) fn new(data_dir: &Path, config: &ServeConfig) -> Self {
        Backtests { data_dir: data_dir.to_owned(), config: config.clone(), latest: Mutex::new(None) }
    }

    fn latest(&self) -> Option<Arc<Run>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Run {
    fn state(&self) -> RunState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, state: RunState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    fn view(&self) -> Value {
        let mut view = json!({
            "id": self.id,
            "department": self.department,
            "candidate_generation": self.candidate,
            "active_generation": self.active,
            "hours": self.hours,
            "started_ms": self.started_ms,
        });
        match self.state() {
            RunState::Running { arrivals } => {
                view["state"] = json!("running");
                view["arrivals"] = json!(arrivals);
            }
            RunState::Done { summary, elapsed_ms, arrivals, .. } => {
                view["state"] = json!("done");
                view["elapsed_ms"] = json!(elapsed_ms);
                view["arrivals"] = json!(arrivals);
                view["report"] = summary;
            }
            RunState::Failed(why) => {
                view["state"] = json!("failed");
                view["error"] = json!(why);
            }
            RunState::Cancelled => view["state"] = json!("cancelled"),
        }
        view
    }
}

/// `POST /v1/plugins/{department}/backtest` (admin): start a backtest of the
/// department's shadow (or `generation`) over the last `hours` of traffic.
/// Answers once the traffic is read: 202 with the backtest, or why not.
pub(crate) async fn start(State(state): State<AppState>, UrlPath(department): UrlPath<String>, body: Bytes) -> Reply {
    let body: StartBody =
        if body.iter().all(u8::is_ascii_whitespace) { StartBody::default() } else { super::api::parse(&body)? };
    let hours = body.hours.unwrap_or(DEFAULT_HOURS);
    let retention = state.backtests.config.traffic.retention_hours;
    if !(hours.is_finite() && hours > 0.0 && hours <= retention) {
        return Err(ApiError::invalid(
            "hours",
            format!("{hours} is outside 0-{retention} (the traffic log's `retention_hours`)"),
        ));
    }
    if !state.backtests.config.departments.iter().any(|d| d.name.get_ref() == &department) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown department `{department}`")));
    }
    if !state.backtests.config.traffic.enabled {
        return Err(ApiError::new(StatusCode::CONFLICT, "no traffic is recorded: `[traffic] enabled = false`"));
    }
    // Which generations: the ledger, as the journal says (briefly locked).
    let (ledger, candidate) = {
        let core = super::core::lock(&state.core);
        let ledger = core.plugins.departments.clone();
        let recorded = ledger.get(&department).cloned().unwrap_or_default();
        let candidate = match body.generation {
            Some(g) => recorded.kept.get(&g).map(|(hash, _)| (g, hash.clone())).ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("department `{department}` keeps no generation {g}"))
            })?,
            None => recorded.shadow.clone().ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "department `{department}` has no candidate: upload one with POST /v1/plugins/{department}/shadow, or name a kept `generation`"
                    ),
                )
            })?,
        };
        (ledger, candidate)
    };
    let run = {
        let mut latest = state.backtests.latest.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(run) = latest.as_ref()
            && matches!(run.state(), RunState::Running { .. })
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "backtest {} of `{}` is running; one runs at a time (DELETE /v1/backtest cancels it)",
                    run.id, run.department
                ),
            ));
        }
        let run = Arc::new(Run {
            id: latest.as_ref().map_or(1, |r| r.id + 1),
            department: department.clone(),
            candidate: candidate.0,
            active: ledger.get(&department).and_then(|d| d.active.as_ref().map(|(g, _)| *g)),
            hours,
            started_ms: SystemClock.now_ms(),
            cancel: AtomicBool::new(false),
            state: Mutex::new(RunState::Running { arrivals: None }),
        });
        *latest = Some(run.clone());
        run
    };
    let (read_tx, read_rx) = tokio::sync::oneshot::channel::<Result<usize, ApiError>>();
    let worker_state = state.clone();
    let worker_run = run.clone();
    let spawned = std::thread::Builder::new().name("backtest".into()).spawn(move || {
        lower_priority();
        // A panic in the simulator must not leave the backtest `running` for
        // ever (which would refuse every later one with a 409).
        let run = worker_run.clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            work(&worker_state, &worker_run, ledger, candidate.1, read_tx)
        }));
        if outcome.is_err() {
            tracing::error!(backtest = run.id, "backtest panicked");
            run.set(RunState::Failed(
                "the backtest failed inside the simulator (a panic; see the daemon's log)".into(),
            ));
        }
    });
    if let Err(e) = spawned {
        run.set(RunState::Failed(format!("no backtest thread: {e}")));
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("no backtest thread: {e}")));
    }
    match read_rx.await {
        Ok(Ok(_)) => ok(StatusCode::ACCEPTED, run.view()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the backtest thread ended early")),
    }
}

/// `GET /v1/backtest` (staff): the latest backtest, with its JSON summary
/// once done.
pub(crate) async fn latest(State(state): State<AppState>) -> Reply {
    match state.backtests.latest() {
        Some(run) => ok(StatusCode::OK, run.view()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "no backtest has been started")),
    }
}

/// `GET /v1/backtest/report` (staff): the latest finished backtest's HTML report.
pub(crate) async fn report(State(state): State<AppState>) -> Reply {
    let Some(run) = state.backtests.latest() else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no backtest has been started"));
    };
    match run.state() {
        RunState::Done { html, .. } => {
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html.as_str().to_owned())
                .into_response())
        }
        RunState::Running { .. } => {
            Err(ApiError::new(StatusCode::CONFLICT, format!("backtest {} is still running", run.id)))
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("backtest {} has no report (it failed or was cancelled)", run.id),
        )),
    }
}

/// `DELETE /v1/backtest` (admin): cancel the running backtest.
pub(crate) async fn cancel(State(state): State<AppState>) -> Reply {
    match state.backtests.latest() {
        Some(run) if matches!(run.state(), RunState::Running { .. }) => {
            run.cancel.store(true, Ordering::Relaxed);
            ok(StatusCode::ACCEPTED, json!({ "id": run.id, "state": "cancelling" }))
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "no backtest is running")),
    }
}

/// Nice 19 for the calling thread (Linux: nice is per thread): the backtest
/// gets the CPU routing leaves.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on the calling thread's id only changes its
    // scheduling priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 19) != 0 {
            tracing::warn!("backtest: could not lower the worker's priority");
        }
    }
}

/// The worker: read the window, answer the request, run both, keep the report.
fn work(
    state: &AppState,
    run: &Run,
    ledger: BTreeMap<String, super::plugins::DepartmentPlugins>,
    candidate_hash: String,
    read_tx: tokio::sync::oneshot::Sender<Result<usize, ApiError>>,
) {
    let started = Instant::now();
    let backtests = &state.backtests;
    let until_ms = SystemClock.now_ms();
    let since_ms = until_ms.saturating_sub((run.hours * 3_600_000.0) as u64);
    let recorded = match super::traffic::read_window(&backtests.data_dir.join("traffic"), since_ms, until_ms) {
        Ok(r) if r.arrivals.is_empty() => {
            let why = format!("no traffic recorded in the last {} hours", run.hours);
            run.set(RunState::Failed(why.clone()));
            let _ = read_tx.send(Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, why)));
            return;
        }
        Ok(r) => r,
        Err(e) => {
            run.set(RunState::Failed(e.to_string()));
            let _ = read_tx.send(Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())));
            return;
        }
    };
    for warning in &recorded.warnings {
        tracing::warn!(backtest = run.id, "{warning}");
    }
    let arrivals = recorded.arrivals.len();
    run.set(RunState::Running { arrivals: Some(arrivals) });
    let _ = read_tx.send(Ok(arrivals));
    tracing::info!(backtest = run.id, department = %run.department, arrivals, hours = run.hours, "backtest started");
    let scratch = backtests.data_dir.join("backtest");
    let result = run_both(state, run, &recorded, &ledger, &candidate_hash, &scratch, started);
    let _ = std::fs::remove_dir_all(&scratch);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let next = match result {
        Ok((summary, html)) => {
            tracing::info!(backtest = run.id, elapsed_ms, "backtest done");
            RunState::Done { summary, html: Arc::new(html), elapsed_ms, arrivals }
        }
        Err(_) if run.cancel.load(Ordering::Relaxed) => {
            tracing::info!(backtest = run.id, "backtest cancelled");
            RunState::Cancelled
        }
        Err(why) => {
            tracing::warn!(backtest = run.id, error = %why, "backtest failed");
            RunState::Failed(why)
        }
    };
    run.set(next);
}

/// Write the plugins, build the scenario, run both and render the report.
fn run_both(
    state: &AppState,
    run: &Run,
    recorded: &Recorded,
    ledger: &BTreeMap<String, super::plugins::DepartmentPlugins>,
    candidate_hash: &str,
    scratch: &Path,
    started: Instant,
) -> std::result::Result<(Value, String), String> {
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    // Absolute: the simulator resolves plugin paths against the scenario's
    // folder, and `data_dir` may be relative to where the daemon started.
    let scratch = &std::fs::canonicalize(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let blob = |department: &str, hash: &str| -> std::result::Result<PathBuf, String> {
        let bytes = state
            .journal
            .blob(hash)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("department `{department}`: the journal has no component {hash}"))?;
        let path = scratch.join(format!("{department}-{}.wasm", &hash[..hash.len().min(16)]));
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    };
    let mut plugins = BTreeMap::new();
    for (department, recorded) in ledger {
        if let Some((_, hash)) = &recorded.active {
            plugins.insert(department.clone(), blob(department, hash)?);
        }
    }
    let candidate = blob(&run.department, candidate_hash)?;
    let scenario = scenario(&state.backtests.config, recorded, &plugins);
    let stop = || run.cancel.load(Ordering::Relaxed) || started.elapsed() >= WALL_CLOCK_CAP;
    let source = format!("the daemon's traffic log, the last {} hours", run.hours);
    let backtest = crate::sim::backtest::backtest_with(
        &scenario,
        scratch,
        Some((source, recorded.arrivals.clone())),
        &[(run.department.clone(), candidate)],
        None,
        Some(&stop),
    )
    .map_err(|e| {
        if started.elapsed() >= WALL_CLOCK_CAP {
            format!("stopped after {} s (the backtests' wall-clock cap): {e}", WALL_CLOCK_CAP.as_secs())
        } else {
            e.to_string()
        }
    })?;
    let report = crate::report::backtest::BacktestReport::build(&backtest);
    let title =
        format!("Switchyard backtest — {} generation {} over the last {} h", run.department, run.candidate, run.hours);
    let html = crate::report::html::render_backtest(&report, &title).map_err(|e| e.to_string())?;
    let mut summary = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    // The two full reports are in the HTML; the summary keeps the comparison.
    if let Some(summary) = summary.as_object_mut() {
        summary.remove("active");
        summary.remove("candidate");
        summary.insert("table".into(), json!(report.table()));
    }
    Ok((summary, html))
}

/// The scenario the daemon's traffic replays in (see the module docs), with
/// `plugins` as each department's rules (none: the built-in rules). Also what
/// `switchyard export-traffic --scenario` writes.
pub fn scenario(config: &ServeConfig, recorded: &Recorded, plugins: &BTreeMap<String, PathBuf>) -> Scenario {
    let window_s = ((recorded.until_ms - recorded.since_ms) as f64 / 1000.0).max(1.0);
    let duration_s = window_s + DRAIN_S;
    let departments = config
        .departments
        .iter()
        .map(|d| DepartmentDef {
            name: d.name.get_ref().clone(),
            plugin: plugins.get(d.name.get_ref()).cloned(),
            config: d.config.clone(),
            offer_timeout_s: Some(d.offer_timeout_s),
            reoffer_block_s: Some(d.reoffer_block_s),
            fcr_window_s: Some(d.fcr_window_h * 3600.0),
        })
        .collect();
    let queues = config
        .queues
        .iter()
        .map(|q| QueueDef {
            name: q.name.get_ref().clone(),
            department: q.department.get_ref().clone(),
            skill: q.skill.clone(),
            service_level_s: q.service_level_s,
            short_abandon_s: q.short_abandon_s,
        })
        .collect();
    // Handle times the recording lacks: per queue and channel, the mean of
    // those it has.
    let mut handled: BTreeMap<(String, Channel), (f64, u64)> = BTreeMap::new();
    for a in &recorded.arrivals {
        let entry = handled.entry((a.queue.clone(), a.channel)).or_default();
        if let Some(ms) = a.handle_ms {
            entry.0 += ms as f64 / 1000.0;
            entry.1 += 1;
        }
    }
    let arrivals = handled
        .into_iter()
        .map(|((queue, channel), (sum_s, n))| ArrivalDef {
            queue,
            channel,
            per_hour: 0.0,
            profile: None,
            handle_time: DistSpec::Exponential {
                mean_s: if n > 0 { (sum_s / n as f64).max(1.0) } else { DEFAULT_HANDLE_S },
            },
            patience: None,
            skills: BTreeMap::new(),
            attributes: BTreeMap::new(),
            priority: 0,
            tier: Default::default(),
            due_s: None,
            resolve_share: 1.0,
            callback_after: None,
            handoff: None,
        })
        .collect();
    let agents = recorded.roster.iter().filter_map(|agent| roster_line(agent, window_s, duration_s)).collect();
    Scenario {
        seed: 1,
        duration_s,
        warmup_s: 0.0,
        interval_s: 1800.0_f64.min(duration_s),
        sample_s: (duration_s / 500.0).max(1.0),
        departments,
        queues,
        arrivals,
        agents,
    }
}

/// A roster line for one agent with its available spans as shifts (one that
/// lasts to the window's end goes on to `end_s`); none for an agent never
/// available in the window.
fn roster_line(agent: &RosterAgent, window_s: f64, end_s: f64) -> Option<AgentDef> {
    if agent.available.is_empty() {
        return None;
    }
    Some(AgentDef {
        name: Some(agent.name.clone()),
        count: 1,
        skills: agent.skills.clone(),
        capacity: agent.capacity,
        wrap_up_s: agent.wrap_up_ms as f64 / 1000.0,
        shifts: agent
            .available
            .iter()
            .map(|(from, to)| {
                let to_s = *to as f64 / 1000.0;
                ShiftDef { start_s: *from as f64 / 1000.0, end_s: if to_s >= window_s { end_s } else { to_s } }
            })
            .collect(),
    })
}
