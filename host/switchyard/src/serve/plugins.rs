//! The daemon's department plugins: one life cycle through the
//! [`ReloadManager`] for every way rules change — an upload, a rollback, a
//! shadow and its promotion, a file dropped into the watched `plugin_dir`, and
//! start-up — each validated (contract, limits, the department's fixtures, a
//! smoke call of every hook under the department's deadline), then journaled,
//! then swapped, then written to the one audit log (`data_dir/audit.jsonl`,
//! read at `GET /v1/audit`).
//!
//! **The journal says which generation is active.** The manager's commit hook
//! ([`commit`]) stores a component as a journal blob and journals the change
//! (`PluginActivated`, `PluginShadowed`, `PluginRolledBack`, `PluginPromoted`,
//! `PluginUnshadowed`, `PluginRejected`) *before* it takes effect. Replay
//! applies those records to a [`PluginLedger`] only — which generation (and
//! hash) is active, in shadow and kept per department — and never compiles or
//! calls a plugin. After replay, [`start_up`] loads each department's kept
//! generations from their blobs with exactly their journaled numbers and
//! hashes, makes the journaled one active, and numbers later uploads after the
//! highest ever handed out. A department whose active blob is missing or no
//! longer loads decides with its built-in rules; `GET /v1/plugins` says why.
//!
//! A restart does not reload what was handled before: the config's `plugin =`
//! file only when it changed since it was last loaded at start
//! (`PluginFromConfig`), a `plugin_dir` file only when it is not the one the
//! watcher last handled (`PluginFromDir`), so an upload or rollback made since
//! stands.
//!
//! **Fixtures** per department, in order of precedence: uploaded with
//! `PUT /v1/plugins/{department}/fixtures` (TOML, journaled as a blob), the
//! `plugin_dir`'s `<department>.fixtures.toml`, the department's `fixtures` key
//! in the config.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use switchyard_contract::fixtures::Fixtures;

use crate::error::{Error, Result};
use switchyard_runtime::Error as RuntimeError;
use switchyard_runtime::reload::{
    AuditAction, Change, DepartmentSetup, GenerationInfo, ReloadManager, Restored, Trigger, TriggerKind, Watcher,
};
use switchyard_runtime::runtime::DepartmentConfig;

use super::api::{ApiError, AppState, Reply, Shared, ok, with_core};
use super::auth::Identity;
use super::budget::Budget;
use super::config::ServeConfig;
use super::journal::Op;

/// What the journal says about one department's plugins.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct DepartmentPlugins {
    /// The active generation and its hash.
    pub(crate) active: Option<(u64, String)>,
    /// The generation in shadow and its hash.
    pub(crate) shadow: Option<(u64, String)>,
    /// Validated generations kept for rollback (active and shadow included):
    /// number → (hash, plugin name).
    pub(crate) kept: BTreeMap<u64, (String, String)>,
    /// The highest generation number ever handed out (refused ones too).
    pub(crate) highest: u64,
    /// Hash of the uploaded fixtures' blob.
    pub(crate) fixtures: Option<String>,
    /// Hash of the config file's plugin when it was last loaded at start.
    pub(crate) from_config: Option<String>,
    /// Hash of the `plugin_dir` component the watcher last handled.
    pub(crate) from_dir: Option<String>,
}

/// The plugin records of the journal, applied: live (after the commit hook
/// journaled a change) and in replay, by the same code, without a plugin in
/// sight. Kept generations are pruned exactly as the manager prunes them.
#[derive(Debug, Default)]
pub(crate) struct PluginLedger {
    pub(crate) departments: BTreeMap<String, DepartmentPlugins>,
    /// Validated generations kept per department (`keep_generations`).
    pub(crate) keep: usize,
}

impl PluginLedger {
    /// A ledger keeping `keep` validated generations per department.
    pub(crate) fn new(keep: usize) -> Self {
        PluginLedger { departments: BTreeMap::new(), keep: keep.max(1) }
    }

    /// Apply a plugin record; other records are ignored.
    pub(crate) fn apply(&mut self, op: &Op) {
        let keep = self.keep;
        let departments = &mut self.departments;
        fn entry<'a>(
            departments: &'a mut BTreeMap<String, DepartmentPlugins>,
            department: &str,
        ) -> &'a mut DepartmentPlugins {
            departments.entry(department.to_owned()).or_default()
        }
        match op {
            Op::PluginActivated { department, plugin, sha256, generation } => {
                let d = entry(departments, department);
                d.highest = d.highest.max(*generation);
                d.kept.insert(*generation, (sha256.clone(), plugin.clone()));
                d.active = Some((*generation, sha256.clone()));
                d.prune(keep);
            }
            Op::PluginShadowed { department, plugin, sha256, generation } => {
                let d = entry(departments, department);
                d.highest = d.highest.max(*generation);
                d.kept.insert(*generation, (sha256.clone(), plugin.clone()));
                d.shadow = Some((*generation, sha256.clone()));
                d.prune(keep);
            }
            Op::PluginRolledBack { department, generation } => {
                let d = entry(departments, department);
                match d.kept.get(generation) {
                    Some((sha256, _)) => d.active = Some((*generation, sha256.clone())),
                    None => {
                        tracing::warn!(department = %department, generation, "journal: rollback to a generation not kept")
                    }
                }
                d.prune(keep);
            }
            Op::PluginPromoted { department, generation } => {
                let d = entry(departments, department);
                match d.shadow.take() {
                    Some((shadow, sha256)) if shadow == *generation => d.active = Some((shadow, sha256)),
                    other => {
                        tracing::warn!(department = %department, generation, "journal: promotion of a generation not in shadow");
                        d.shadow = other;
                    }
                }
                d.prune(keep);
            }
            Op::PluginUnshadowed { department, .. } => {
                let d = entry(departments, department);
                d.shadow = None;
                d.prune(keep);
            }
            Op::PluginRejected { department, generation, .. } => {
                let d = entry(departments, department);
                d.highest = d.highest.max(*generation);
            }
            Op::PluginFixtures { department, sha256 } => entry(departments, department).fixtures = Some(sha256.clone()),
            Op::PluginFromConfig { department, sha256 } => {
                entry(departments, department).from_config = Some(sha256.clone())
            }
            Op::PluginFromDir { department, sha256 } => entry(departments, department).from_dir = Some(sha256.clone()),
            _ => {}
        }
    }
}

impl DepartmentPlugins {
    /// Keep the last `keep` generations, never the active one or the shadow.
    fn prune(&mut self, keep: usize) {
        let active = self.active.as_ref().map(|(g, _)| *g);
        let shadow = self.shadow.as_ref().map(|(g, _)| *g);
        while self.kept.len() > keep {
            let Some(oldest) = self.kept.keys().copied().find(|g| Some(*g) != active && Some(*g) != shadow) else {
                break;
            };
            self.kept.remove(&oldest);
        }
    }
}

/// The daemon's plugin side, shared by the handlers.
pub(crate) struct Plugins {
    /// The one life cycle.
    pub(crate) reload: ReloadManager,
    /// Departments of the config, with their rule time budgets.
    pub(crate) budgets: BTreeMap<String, Arc<Budget>>,
    /// The departments in the config's order (how `GET /v1/plugins` lists them).
    pub(crate) order: Vec<String>,
    /// Why a department's journaled active generation could not be loaded at start.
    pub(crate) load_errors: Mutex<BTreeMap<String, String>>,
    /// The `plugin_dir` watcher, while the daemon runs.
    pub(crate) watcher: Mutex<Option<Watcher>>,
}

/// The setup (deadline-capped limits, config values, smoke queue, fixtures
/// from the config key) of each department, before the journal's fixtures.
pub(crate) fn department_setups(config: &ServeConfig) -> Result<BTreeMap<String, DepartmentSetup>> {
    let mut setups = BTreeMap::new();
    for d in &config.departments {
        let name = d.name.get_ref();
        // Each call is cut at the department's deadline (never above the sandbox's
        // default): one decision holds the shared router at most that long.
        let limits = switchyard_runtime::sandbox::Limits::default();
        let deadline = std::time::Duration::from_millis(d.call_deadline_ms).min(limits.deadline);
        let mut dc = DepartmentConfig::new().with_limits(switchyard_runtime::sandbox::Limits { deadline, ..limits });
        for (key, value) in &d.config {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            dc = dc.with(key.clone(), text);
        }
        let mut setup = DepartmentSetup::new().with_config(dc);
        if let Some(queue) = config.queues.iter().find(|q| q.department.get_ref() == name) {
            setup = setup.with_smoke_queue(queue.name.get_ref().clone());
        }
        if let Some(path) = &d.fixtures {
            let path = config.resolve(path);
            let fixtures = Fixtures::load(&path).map_err(|e| Error::Config {
                path: config.path.clone(),
                message: format!("department `{name}`: key `fixtures`: {e}"),
            })?;
            setup = setup.with_fixtures(fixtures);
        }
        setups.insert(name.clone(), setup);
    }
    Ok(setups)
}

/// The commit hook: make `change` durable in the journal before it takes
/// effect (components as blobs first). Runs under the manager's department
/// lock; takes the core's lock only to journal, and waits for the sync after
/// releasing it.
pub(crate) fn commit(shared: &Shared, change: &Change<'_>) -> Result<()> {
    let journal_error = |message: String| Error::Journal { path: PathBuf::from("journal.redb"), message };
    // A file in `plugin_dir` named after no configured department.
    if !shared.plugins.budgets.contains_key(change.department()) {
        return Err(Error::Unknown { kind: "department", name: change.department().to_owned() });
    }
    // The watcher's file is remembered too, so a restart does not load it again.
    let mut from_dir = None;
    let op = match *change {
        Change::Activate { department, trigger, plugin, sha256, generation, bytes } => {
            shared.journal.put_blob(sha256, bytes)?;
            if trigger.kind == TriggerKind::Watcher {
                from_dir = Some(Op::PluginFromDir { department: department.into(), sha256: sha256.into() });
            }
            Op::PluginActivated {
                department: department.into(),
                plugin: plugin.into(),
                sha256: sha256.into(),
                generation,
            }
        }
        Change::Shadow { department, plugin, sha256, generation, bytes, .. } => {
            shared.journal.put_blob(sha256, bytes)?;
            Op::PluginShadowed {
                department: department.into(),
                plugin: plugin.into(),
                sha256: sha256.into(),
                generation,
            }
        }
        Change::Reject { department, trigger, sha256, generation, reason } => {
            if trigger.kind == TriggerKind::Watcher {
                from_dir = Some(Op::PluginFromDir { department: department.into(), sha256: sha256.into() });
            }
            Op::PluginRejected {
                department: department.into(),
                sha256: sha256.into(),
                generation,
                reason: reason.into(),
            }
        }
        Change::Rollback { department, generation } => {
            Op::PluginRolledBack { department: department.into(), generation }
        }
        Change::Promote { department, generation } => Op::PluginPromoted { department: department.into(), generation },
        Change::Unshadow { department, generation } => {
            Op::PluginUnshadowed { department: department.into(), generation }
        }
    };
    journal(shared, op).map_err(journal_error)?;
    match from_dir {
        Some(op) => journal(shared, op).map_err(journal_error),
        None => Ok(()),
    }
}

/// Journal `op` (applied to the ledger) and wait until it is durable.
fn journal(shared: &Shared, op: Op) -> std::result::Result<(), String> {
    let ticket = {
        let mut core = shared.core.lock().unwrap_or_else(|p| p.into_inner());
        core.submit(op).map_err(|r| format!("{r:?}"))?;
        core.last_ticket
    };
    shared.journal.wait_durable(ticket)
}

/// After replay: hand the manager its commit hook, configure every department,
/// restore what the journal says, load config-file plugins that are new, and
/// start watching `plugin_dir`.
pub(crate) fn start_up(shared: &Arc<Shared>, config: &ServeConfig) -> Result<()> {
    let plugins = &shared.plugins;
    let reload = &plugins.reload;
    let weak: Weak<Shared> = Arc::downgrade(shared);
    reload.set_commit(Arc::new(move |change: &Change<'_>| match weak.upgrade() {
        Some(shared) => commit(&shared, change).map_err(|e| match e {
            Error::Runtime(e) => e,
            Error::Unknown { kind, name } => RuntimeError::Unknown { kind, name },
            other => RuntimeError::Commit(Box::new(other)),
        }),
        None => Err(RuntimeError::Invalid("the daemon is stopping".into())),
    }));
    let ledger = shared.core.lock().unwrap_or_else(|p| p.into_inner()).plugins.departments.clone();
    let plugin_dir = plugin_dir(config)?;
    for (name, mut setup) in department_setups(config)? {
        let recorded = ledger.get(&name).cloned().unwrap_or_default();
        if let Some(dir) = &plugin_dir {
            let path = dir.join(format!("{name}.fixtures.toml"));
            if path.is_file() {
                let fixtures =
                    Fixtures::load(&path).map_err(|e| Error::Config { path: path.clone(), message: e.to_string() })?;
                setup = setup.with_fixtures(fixtures);
            }
        }
        if let Some(sha256) = &recorded.fixtures {
            match shared.journal.blob(sha256)?.map(String::from_utf8) {
                Some(Ok(text)) => match Fixtures::parse(&text, format!("{name} (uploaded fixtures)")) {
                    Ok(fixtures) => setup = setup.with_fixtures(fixtures),
                    Err(e) => tracing::error!(department = %name, "uploaded fixtures no longer parse: {e}"),
                },
                _ => {
                    tracing::error!(department = %name, sha256 = %sha256, "uploaded fixtures missing from the journal")
                }
            }
        }
        reload.configure(&name, setup);
        reload.runtime().reserve_generations(&name, recorded.highest);
        restore(shared, &name, &recorded)?;
        if let Some(sha256) = &recorded.from_dir {
            reload.seed_watched(&name, sha256);
        }
    }
    Ok(())
}

/// The configured plugin directory, checked.
fn plugin_dir(config: &ServeConfig) -> Result<Option<std::path::PathBuf>> {
    match &config.plugin_dir {
        Some(dir) => {
            let dir = config.resolve(dir);
            if !dir.is_dir() {
                return Err(Error::Config {
                    path: config.path.clone(),
                    message: format!("key `plugin_dir`: {} is not a directory", dir.display()),
                });
            }
            Ok(Some(dir))
        }
        None => Ok(None),
    }
}

/// What only the node that journals does, after [`start_up`] (at start, or
/// at a takeover): load config-file plugins that changed since they were last
/// loaded, and watch `plugin_dir`.
pub(crate) fn lead(shared: &Arc<Shared>, config: &ServeConfig) -> Result<()> {
    let ledger = shared.core.lock().unwrap_or_else(|p| p.into_inner()).plugins.departments.clone();
    for d in &config.departments {
        let name = d.name.get_ref();
        let recorded = ledger.get(name).cloned().unwrap_or_default();
        shared.plugins.reload.runtime().reserve_generations(name, recorded.highest);
        load_config_plugin(shared, config, name, &recorded)?;
    }
    if let Some(dir) = plugin_dir(config)? {
        let watcher = shared.plugins.reload.watch(&dir)?;
        tracing::info!(dir = %watcher.dir().display(), "watching the plugin directory");
        *shared.plugins.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(watcher);
    }
    Ok(())
}

/// Load `department`'s generations as the journal now says (a standby, after
/// following a plugin change of the leader's).
pub(crate) fn warm(shared: &Shared, department: &str) -> Result<()> {
    let recorded = {
        let core = shared.core.lock().unwrap_or_else(|p| p.into_inner());
        core.plugins.departments.get(department).cloned().unwrap_or_default()
    };
    shared.plugins.reload.runtime().reserve_generations(department, recorded.highest);
    restore(shared, department, &recorded)
}

/// Load the journal's kept generations of `name` (blobs), active and shadow as recorded.
fn restore(shared: &Shared, name: &str, recorded: &DepartmentPlugins) -> Result<()> {
    if recorded.kept.is_empty() {
        return Ok(());
    }
    let mut generations = Vec::new();
    for (generation, (sha256, plugin)) in &recorded.kept {
        let bytes = shared.journal.blob(sha256)?;
        generations.push(Restored { generation: *generation, sha256: sha256.clone(), plugin: plugin.clone(), bytes });
    }
    let active = recorded.active.as_ref().map(|(g, _)| *g);
    let shadow = recorded.shadow.as_ref().map(|(g, _)| *g);
    for (generation, error) in shared.plugins.reload.restore(name, generations, active, shadow) {
        if Some(generation) == active {
            tracing::error!(department = %name, generation, "the active plugin cannot be loaded; the department decides with its built-in rules: {error}");
            shared
                .plugins
                .load_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.to_owned(), format!("generation {generation}: {error}"));
        } else {
            tracing::error!(department = %name, generation, "a kept plugin generation cannot be loaded: {error}");
        }
    }
    Ok(())
}

/// The config file's `plugin =` of `name`, loaded through the manager unless
/// it is the file loaded at an earlier start (the journal's state stands then).
fn load_config_plugin(shared: &Shared, config: &ServeConfig, name: &str, recorded: &DepartmentPlugins) -> Result<()> {
    let Some(entry) = config.departments.iter().find(|d| d.name.get_ref() == name) else { return Ok(()) };
    let Some(plugin) = &entry.plugin else { return Ok(()) };
    let path = config.resolve(plugin);
    if !path.is_file() {
        if entry.require_plugin {
            return Err(Error::Config {
                path: config.path.clone(),
                message: format!(
                    "department `{name}`: plugin {} not found (build it, or set `require_plugin = false` to start on the built-in rules)",
                    path.display()
                ),
            });
        }
        tracing::warn!(department = %name, path = %path.display(), "plugin not found; the department starts on the built-in rules");
        return Ok(());
    }
    let bytes = switchyard_runtime::plugin::read_file(&path)?;
    let sha256 = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(&bytes))
    };
    let mark = |sha256: String| {
        journal(shared, Op::PluginFromConfig { department: name.to_owned(), sha256 })
            .map_err(|message| Error::Journal { path: PathBuf::from("journal.redb"), message })
    };
    match (&recorded.from_config, &recorded.active) {
        // The file loaded at an earlier start: what the journal says stands.
        (Some(loaded), _) if *loaded == sha256 => return Ok(()),
        // A journal from before config loads were recorded (or one where only
        // uploads and the directory made generations): its active generation
        // stands; remember the file so a later change of it is loaded.
        (None, Some((generation, _))) => {
            tracing::info!(department = %name, generation, path = %path.display(), "the journal's active generation stands over the config's plugin file");
            return mark(sha256);
        }
        _ => {}
    }
    let source = path.display().to_string();
    match shared.plugins.reload.reload_from(name, &bytes, &source, Trigger::startup(source.clone())) {
        Ok(_) => mark(sha256),
        // A changed file that fails: the journal's active generation keeps
        // deciding (it is tried again at the next start).
        Err(error) if recorded.active.is_some() => {
            tracing::error!(department = %name, path = %path.display(), "the config's plugin file was refused; the journal's active generation keeps deciding: {error}");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

// ---- HTTP -----------------------------------------------------------------

/// Who asked, for the audit log.
fn who(identity: Option<&Identity>) -> String {
    match identity {
        Some(id) => id.agent().map(str::to_owned).unwrap_or_else(|| id.role().as_str().to_owned()),
        None => "local".to_owned(),
    }
}

fn known(state: &AppState, department: &str) -> std::result::Result<(), ApiError> {
    if state.plugins.budgets.contains_key(department) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown department `{department}`")))
    }
}

/// A manager error as an HTTP answer: a candidate refused by one of its
/// checks is a 422 naming the check (`load`, `contract`, `fixtures`, `smoke
/// call`); the journal failing is a 503.
fn refused(error: RuntimeError) -> Reply {
    let (status, check) = match &error {
        RuntimeError::PluginLoad { .. } => (StatusCode::UNPROCESSABLE_ENTITY, Some("load")),
        RuntimeError::ContractMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, Some("contract")),
        RuntimeError::Rejected { check, .. } => (StatusCode::UNPROCESSABLE_ENTITY, Some(*check)),
        RuntimeError::Unknown { .. } => (StatusCode::NOT_FOUND, None),
        RuntimeError::Invalid(_) => (StatusCode::CONFLICT, None),
        _ => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    let mut body = json!({ "error": error.to_string() });
    if let Some(check) = check {
        body["check"] = json!(check);
        body["field"] = json!("body");
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(error = %error, "plugin change failed inside the daemon");
    }
    Ok((status, axum::Json(body)).into_response())
}

/// Run `f` on the manager off the async threads.
async fn on_manager<R: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&ReloadManager) -> R + Send + 'static,
) -> std::result::Result<R, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state.plugins.reload))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("plugin task failed: {e}")))
}

fn component(body: &Bytes) -> std::result::Result<Vec<u8>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid("body", "the component bytes are missing"));
    }
    Ok(body.to_vec())
}

/// `GET /v1/plugins`: each department's active generation (or why it runs on
/// built-in rules), kept generations, shadow, fixtures and rule budget.
pub(crate) async fn list(State(state): State<AppState>) -> Reply {
    let all = on_manager(&state, {
        let state = state.clone();
        move |reload| {
            let errors = state.plugins.load_errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
            state
                .plugins
                .order
                .iter()
                .filter_map(|d| Some((d, state.plugins.budgets.get(d)?)))
                .map(|(d, budget)| {
                    let current = reload.runtime().current(d).map(|p| {
                        let r = p.load_report();
                        json!({ "plugin": r.plugin, "generation": r.generation, "sha256": r.sha256, "hooks": r.hooks, "stats": p.stats() })
                    });
                    let generations = reload.generations(d);
                    let kept: Vec<Value> = generations
                        .iter()
                        .filter(|g| g.kept)
                        .map(|g| {
                            json!({
                                "generation": g.generation, "sha256": g.sha256, "active": g.active, "shadow": g.shadow,
                                "source": g.source, "trigger": g.trigger, "loaded_at": g.loaded_at, "validation": g.validation,
                            })
                        })
                        .collect();
                    let shadow = generations.iter().find(|g| g.shadow).map(|g| json!({ "generation": g.generation, "sha256": g.sha256 }));
                    let fixtures = reload.fixtures(d).map(|f| json!({ "origin": f.path, "cases": f.cases().len() }));
                    let (rules, why) = match (&current, errors.get(d)) {
                        (Some(_), _) => ("plugin", None),
                        (None, Some(error)) => ("built-in", Some(format!("the active plugin could not be loaded at start: {error}"))),
                        (None, None) => ("built-in", None),
                    };
                    json!({
                        "department": d, "rules": rules, "built_in_because": why, "current": current, "kept": kept,
                        "shadow": shadow, "fixtures": fixtures, "budget": budget.view(),
                    })
                })
                .collect::<Vec<Value>>()
        }
    })
    .await?;
    ok(StatusCode::OK, json!(all))
}

/// `POST /v1/plugins/{department}`: validate, journal, swap — or a 422 naming
/// the check that refused it, the active generation untouched.
pub(crate) async fn upload(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    Path(department): Path<String>,
    body: Bytes,
) -> Reply {
    candidate(&state, identity, department, body, ReloadManager::reload_with).await
}

/// An uploaded candidate for `department` handed to the manager (`swap` or
/// `shadow`): 201 with its generation, or a 422 naming the check that refused it.
async fn candidate(
    state: &AppState,
    identity: Option<Extension<Identity>>,
    department: String,
    body: Bytes,
    take: fn(&ReloadManager, &str, &[u8], Trigger) -> switchyard_runtime::Result<GenerationInfo>,
) -> Reply {
    known(state, &department)?;
    let bytes = component(&body)?;
    let who = who(identity.as_deref());
    match on_manager(state, move |r| take(r, &department, &bytes, Trigger::api(who))).await? {
        Ok(info) => ok(StatusCode::CREATED, json!(info)),
        Err(error) => refused(error),
    }
}

/// `POST /v1/plugins/{department}/rollback/{generation}`.
pub(crate) async fn rollback(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    Path((department, generation)): Path<(String, String)>,
) -> Reply {
    let generation = generation
        .parse::<u64>()
        .map_err(|_| ApiError::invalid("generation", format!("`{generation}` is not a generation number")))?;
    known(&state, &department)?;
    let who = who(identity.as_deref());
    match on_manager(&state, move |r| r.rollback_by(&department, generation, &who)).await? {
        Ok(info) => ok(
            StatusCode::OK,
            json!({ "department": info.department, "generation": info.generation, "sha256": info.sha256 }),
        ),
        Err(error) => refused(error),
    }
}

/// `PUT /v1/plugins/{department}/fixtures`: the department's fixtures (TOML,
/// the `switchyard_contract::fixtures` format) every later candidate must pass. The
/// answer says whether the active generation passes them too (it stays active
/// either way: fixtures gate candidates, not what already runs).
pub(crate) async fn put_fixtures(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    Path(department): Path<String>,
    body: Bytes,
) -> Reply {
    known(&state, &department)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid("body", "the fixtures are not UTF-8 text"))?
        .to_owned();
    let fixtures = Fixtures::parse(&text, format!("{department} (uploaded fixtures)"))
        .map_err(|e| ApiError::invalid("body", e.to_string()))?;
    let cases = fixtures.cases().len();
    let sha256 = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
    };
    let who = who(identity.as_deref());
    let stored = {
        let (journal, key) = (state.journal.clone(), sha256.clone());
        tokio::task::spawn_blocking(move || journal.put_blob(&key, text.as_bytes()))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("store task failed: {e}")))?
    };
    stored.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let op = Op::PluginFixtures { department: department.clone(), sha256: sha256.clone() };
    with_core(&state, move |core| core.submit(op).map(|_| ())).await?.map_err(ApiError::from)?;
    let (d, sha) = (department.clone(), sha256.clone());
    let active = on_manager(&state, move |r| {
        let active = r.check_active(&d, &fixtures);
        r.set_fixtures_by(&d, Some(fixtures), &sha, &who);
        active
    })
    .await?
    .map(|(generation, validation)| json!({ "generation": generation, "validation": validation }));
    ok(StatusCode::OK, json!({ "department": department, "sha256": sha256, "cases": cases, "active": active }))
}

/// `POST /v1/plugins/{department}/shadow`: validate a candidate and run it
/// beside the active generation on live traffic.
pub(crate) async fn start_shadow(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    Path(department): Path<String>,
    body: Bytes,
) -> Reply {
    candidate(&state, identity, department, body, ReloadManager::shadow_with).await
}

/// `GET /v1/plugins/{department}/shadow`: the disagreement report.
pub(crate) async fn shadow_report(State(state): State<AppState>, Path(department): Path<String>) -> Reply {
    known(&state, &department)?;
    let d = department.clone();
    match on_manager(&state, move |r| r.shadow_report(&d)).await? {
        Some(report) => ok(StatusCode::OK, json!(report)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("department `{department}` runs no shadow"))),
    }
}

/// `POST /v1/plugins/{department}/shadow/promote`.
pub(crate) async fn promote(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    Path(department): Path<String>,
) -> Reply {
    known(&state, &department)?;
    let who = who(identity.as_deref());
    match on_manager(&state, move |r| r.promote_by(&department, &who)).await? {
        Ok(info) => ok(StatusCode::OK, json!(info)),
        Err(error) => refused(error),
    }
}

/// `DELETE /v1/plugins/{department}/shadow`: stop it; answers its last report.
pub(crate) async fn discard_shadow(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    Path(department): Path<String>,
) -> Reply {
    known(&state, &department)?;
    let who = who(identity.as_deref());
    let d = department.clone();
    match on_manager(&state, move |r| r.stop_shadow_by(&d, &who)).await? {
        Ok(Some(report)) => ok(StatusCode::OK, json!(report)),
        Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, format!("department `{department}` runs no shadow"))),
        Err(error) => refused(error),
    }
}

/// Most entries `GET /v1/audit` answers with.
const MAX_AUDIT_LIMIT: usize = 10_000;

/// `GET /v1/audit?department=&action=&since=&until=&limit=`: the audit log,
/// oldest first, the last `limit` (default 1,000) entries that match.
/// `since`/`until` are RFC 3339 times or milliseconds since the Unix epoch.
pub(crate) async fn audit(
    State(state): State<AppState>,
    query: std::result::Result<Query<BTreeMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let mut department = None;
    let mut action = None;
    let (mut since, mut until) = (None, None);
    let mut limit = 1_000;
    for (key, value) in &query {
        match key.as_str() {
            "department" => department = Some(value.clone()),
            "action" => {
                let parsed: AuditAction = serde_json::from_value(json!(value)).map_err(|_| {
                    ApiError::invalid(
                        "action",
                        format!("`{value}` is not one of load, swap, reject, rollback, shadow, promote, unshadow, restore, fixtures"),
                    )
                })?;
                action = Some(parsed);
            }
            "since" => since = Some(time_ms("since", value)?),
            "until" => until = Some(time_ms("until", value)?),
            "limit" => {
                limit = value.parse::<usize>().ok().filter(|n| (1..=MAX_AUDIT_LIMIT).contains(n)).ok_or_else(|| {
                    ApiError::invalid("limit", format!("`{value}` is not a number between 1 and {MAX_AUDIT_LIMIT}"))
                })?;
            }
            other => return Err(ApiError::invalid(other, "unknown filter (department, action, since, until, limit)")),
        }
    }
    // A cluster's audit log is in its store (the leader writes it); a node
    // of its own keeps it in the reload manager (and its file).
    let entries = match state.node.store.clone() {
        Some(url) => tokio::task::spawn_blocking(move || super::pg::read_audit(&url, MAX_AUDIT_LIMIT))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("audit task failed: {e}")))?
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?,
        None => on_manager(&state, |r| r.audit()).await?,
    };
    let matching: Vec<_> = entries
        .into_iter()
        .filter(|e| department.as_ref().is_none_or(|d| &e.department == d))
        .filter(|e| action.is_none_or(|a| e.action == a))
        .filter(|e| since.is_none_or(|t| e.at_ms >= t))
        .filter(|e| until.is_none_or(|t| e.at_ms <= t))
        .collect();
    let skip = matching.len().saturating_sub(limit);
    ok(StatusCode::OK, json!(matching[skip..]))
}

/// A time filter: milliseconds since the epoch, or RFC 3339.
fn time_ms(field: &str, value: &str) -> std::result::Result<u64, ApiError> {
    if let Ok(ms) = value.parse::<u64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(value)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .ok_or_else(|| {
            ApiError::invalid(field, format!("`{value}` is neither an RFC 3339 time nor milliseconds since 1970"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activated(generation: u64) -> Op {
        Op::PluginActivated {
            department: "billing".into(),
            plugin: "billing".into(),
            sha256: format!("sha{generation}"),
            generation,
        }
    }

    #[test]
    fn the_ledger_follows_the_journal_and_prunes_like_the_manager() {
        let mut ledger = PluginLedger::new(3);
        for generation in 1..=5 {
            ledger.apply(&activated(generation));
        }
        ledger.apply(&Op::PluginRejected {
            department: "billing".into(),
            sha256: "x".into(),
            generation: 6,
            reason: "no".into(),
        });
        let billing = &ledger.departments["billing"];
        assert_eq!(billing.kept.keys().copied().collect::<Vec<_>>(), [3, 4, 5], "bounded by keep");
        assert_eq!(billing.active, Some((5, "sha5".into())));
        assert_eq!(billing.highest, 6, "a refused number is not handed out again");
        ledger.apply(&Op::PluginRolledBack { department: "billing".into(), generation: 3 });
        ledger.apply(&Op::PluginShadowed {
            department: "billing".into(),
            plugin: "b".into(),
            sha256: "sha7".into(),
            generation: 7,
        });
        ledger.apply(&activated(8));
        let billing = &ledger.departments["billing"];
        assert_eq!(billing.kept.keys().copied().collect::<Vec<_>>(), [5, 7, 8], "the shadow is kept, the oldest go");
        ledger.apply(&Op::PluginPromoted { department: "billing".into(), generation: 7 });
        let billing = &ledger.departments["billing"];
        assert_eq!((billing.active.clone(), billing.shadow.clone()), (Some((7, "sha7".into())), None));
    }
}
