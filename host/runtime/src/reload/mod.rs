//! Hot reload of department rules: watch → load off the decision path →
//! validate → swap atomically → record a generation and an audit entry. A bad
//! build never replaces a good one; ops roll back to any kept generation with one
//! call, and can run a candidate in [shadow] on live traffic first.
//!
//! ```no_run
//! use switchyard_runtime::reload::{ReloadManager, ReloadOptions};
//! use switchyard_runtime::runtime::Runtime;
//! # fn main() -> switchyard_runtime::Result<()> {
//! let runtime = Runtime::builder().build()?;
//! let reload = ReloadManager::new(runtime, ReloadOptions::default().audit_file("audit.jsonl"))?;
//! let _watcher = reload.watch("plugins/")?;           // loads what is there, then follows changes
//! let rules = reload.rules("billing");                 // hand this to the router
//! let events = reload.subscribe();                     // every load, swap, rejection, rollback
//! # let _ = (rules, events);
//! for generation in reload.generations("billing") {
//!     println!("#{} {} active={} {:?}", generation.generation, generation.sha256, generation.active, generation.validation);
//! }
//! reload.rollback("billing", 3)?;
//! # Ok(()) }
//! ```
//!
//! ## The plugin directory
//! One flat directory; per department `<department>`:
//! - `<department>.wasm`: the component (required; its change triggers a reload);
//! - `<department>.fixtures.toml`: fixture items with expected decisions
//!   ([`switchyard_contract::fixtures`] format), optional; every case must pass before
//!   a generation may become active;
//! - `<department>.config.toml`: the department's [`DepartmentConfig`]
//!   (`[values]`, `[limits]`, `[wasi]`, `[breaker]`), optional.
//!
//! The fixture file's `[config]` supplies the plugin's configuration values;
//! `[values]` in the config file override them. A change of any of the three files
//! reloads the department with all three. Names starting with `.` are ignored, so
//! writing `.billing.wasm.tmp` and renaming it over `billing.wasm` is one reload.
//!
//! ## What makes one reload per save
//! The watcher ([`watch`]) folds file events with `notify-debouncer-full`, then
//! waits until the directory has been quiet for [`ReloadOptions::debounce`]
//! (default 200 ms) and reloads each department touched once; a department whose
//! three files hash to what was last tried is not reloaded again. Reloads run on the watcher's own thread; decisions never wait
//! for them.
//!
//! ## Generations
//! The runtime numbers every candidate that compiles and links (1, 2, …, per
//! department); a candidate refused before that (not a component, wrong world,
//! unsupported contract version) gets no number and is only in the audit log.
//! [`ReloadManager::generations`] lists the kept ones: the last
//! [`ReloadOptions::keep`] that passed validation (the active one and the shadow
//! always kept, whatever their age) and as many recent rejected ones.
//!
//! ## Validation
//! A candidate must compile and link (contract, world, imports), instantiate
//! within its limits and pass every case of the department's fixtures; with
//! [`ReloadOptions::smoke_call`] on (off by default; `switchyard serve` turns it
//! on), each hook it exports is also called once on a plain item under its
//! deadline, so one that traps, hangs or blocks on anything is refused
//! ([`Error::Rejected`] says which check: `fixtures` or
//! `smoke call`). Start-up loads (trigger [`TriggerKind::Startup`]) skip the
//! smoke call.
//!
//! ## Durability: the commit hook and restore
//! An embedder that must survive restarts hands the manager a
//! [`CommitHook`] ([`ReloadManager::set_commit`]): every [`Change`] (activation
//! with the component's bytes, shadow, rollback, promotion, stop of a shadow,
//! and — informational — a refused generation number) is passed to it under the
//! department's lock *before* it takes effect, and a failing hook refuses the
//! change. After a restart, [`ReloadManager::restore`] loads the recorded
//! generations with their own numbers and hashes (no fixtures run again) and
//! makes the recorded one active; later candidates number after the highest.
//! With [`ReloadOptions::audit_file`] the audit log is read back at start, so it
//! too survives restarts.

pub mod audit;
pub mod shadow;
pub mod validate;
pub mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Serialize;
use sha2::{Digest, Sha256};
use switchyard_contract::fixtures::Fixtures;

use crate::error::{Error, Result};
use crate::plugin::{DepartmentConfig, Hooks, Plugin};
use crate::runtime::Runtime;
use switchyard_core::rules::RuleSet;

pub use audit::{AuditAction, AuditEntry, Outcome, Trigger, TriggerKind};
pub use shadow::{Differences, Example, ExampleItem, HookReport, LatencySummary, ShadowReport};
pub use validate::Validation;
pub use watch::Watcher;

use audit::{AuditLog, NewEntry};
use shadow::{Shadow, ShadowedRules};

/// What subscribers receive: the audit entry of each action.
pub type ReloadEvent = AuditEntry;

/// Settings of a [`ReloadManager`].
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// Validated generations kept per department for rollback (the active one and
    /// the shadow are kept whatever their age). Default 5: a working day of
    /// releases, and each kept generation holds a compiled component and a few
    /// idle instances (a few MB).
    pub keep: usize,
    /// Append every audit entry to this file as one JSON line. Default: none.
    pub audit_file: Option<PathBuf>,
    /// Audit entries kept in memory. Default 10 000.
    pub audit_capacity: usize,
    /// Longest a fixture case may take during validation, on top of the plugin's
    /// own deadline. Default `None`: the deadline alone (a debug build or a busy
    /// machine must not turn a good build away).
    pub fixture_budget: Option<Duration>,
    /// Quiet time after the last file event before the watcher reloads.
    /// Default 200 ms: longer than the gaps of a chunked write or an editor's
    /// save dance, short enough to feel immediate.
    pub debounce: Duration,
    /// Call each exported hook once on a plain item (under the plugin's deadline
    /// and limits) before a candidate may become active or run in shadow:
    /// fixtures cover what a department thought of; the smoke call catches the
    /// plugin that traps, hangs or blocks on anything at all. Default off, so an
    /// embedder can still load a deliberately failing plugin (the hostile-plugin
    /// tests do); `switchyard serve` turns it on.
    pub smoke_call: bool,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            keep: 5,
            audit_file: None,
            audit_capacity: 10_000,
            fixture_budget: None,
            debounce: Duration::from_millis(200),
            smoke_call: false,
        }
    }
}

impl ReloadOptions {
    /// Keep `n` validated generations per department (at least 1).
    pub fn keep(mut self, n: usize) -> Self {
        self.keep = n.max(1);
        self
    }

    /// Append the audit log to `path` as JSON lines.
    pub fn audit_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_file = Some(path.into());
        self
    }

    /// Cap each fixture case's time during validation.
    pub fn fixture_budget(mut self, budget: Duration) -> Self {
        self.fixture_budget = Some(budget);
        self
    }

    /// The watcher's debounce time.
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.debounce = quiet;
        self
    }

    /// Whether candidates get a smoke call of each hook (default on).
    pub fn smoke_call(mut self, on: bool) -> Self {
        self.smoke_call = on;
        self
    }
}

/// What a department's candidates are validated and run with.
#[derive(Debug, Clone, Default)]
pub struct DepartmentSetup {
    /// Configuration, limits, WASI policy and breaker of the plugin.
    pub config: DepartmentConfig,
    /// The fixture cases every candidate must pass; `None`: load checks only.
    pub fixtures: Option<Arc<Fixtures>>,
    /// The queue of the smoke call's item (a queue of the department, so a
    /// plugin that checks its queue is not refused for an unknown one).
    /// `None`: queue id 0.
    pub smoke_queue: Option<String>,
}

impl DepartmentSetup {
    /// No fixtures, the runtime's defaults.
    pub fn new() -> Self {
        DepartmentSetup::default()
    }

    /// Use this configuration.
    pub fn with_config(mut self, config: DepartmentConfig) -> Self {
        self.config = config;
        self
    }

    /// Validate candidates against these fixtures (their `[config]` values are
    /// the plugin's, unless the configuration sets the same key).
    pub fn with_fixtures(mut self, fixtures: Fixtures) -> Self {
        self.fixtures = Some(Arc::new(fixtures));
        self
    }

    /// Put the smoke call's item in this queue (see [`DepartmentSetup::smoke_queue`]).
    pub fn with_smoke_queue(mut self, queue: impl Into<String>) -> Self {
        self.smoke_queue = Some(queue.into());
        self
    }

    /// This setup with a plugin directory's `<department>.config.toml` laid
    /// over it: its values override these key by key; its limits and breaker
    /// replace these when it sets them; its WASI policy is used.
    fn overlaid(&self, file: DepartmentConfig) -> DepartmentSetup {
        let mut setup = self.clone();
        setup.config.values.extend(file.values);
        if file.limits.is_some() {
            setup.config.limits = file.limits;
        }
        if file.breaker.is_some() {
            setup.config.breaker = file.breaker;
        }
        setup.config.wasi = file.wasi;
        setup
    }

    /// Read a fixture file and a config file (either optional).
    pub fn from_files(fixtures: Option<&Path>, config: Option<&Path>) -> Result<Self> {
        let mut setup = DepartmentSetup::new();
        if let Some(path) = config {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
            setup.config = parse_config(&text, path)?;
        }
        if let Some(path) = fixtures {
            let loaded =
                Fixtures::load(path).map_err(|e| Error::Config { path: path.to_owned(), message: e.to_string() })?;
            setup.fixtures = Some(Arc::new(loaded));
        }
        Ok(setup)
    }

    /// The configuration the plugin is loaded with: the fixtures' values under
    /// the configuration's own.
    fn effective_config(&self) -> DepartmentConfig {
        let mut config = self.config.clone();
        if let Some(fixtures) = &self.fixtures {
            for (key, value) in &fixtures.config {
                config.values.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        config
    }
}

fn parse_config(text: &str, path: &Path) -> Result<DepartmentConfig> {
    toml::from_str(text).map_err(|e| Error::Config { path: path.to_owned(), message: e.to_string() })
}

/// One generation of a department's plugin, as listed by
/// [`ReloadManager::generations`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerationInfo {
    /// Department.
    pub department: String,
    /// Generation number.
    pub generation: u64,
    /// SHA-256 of the component bytes (hex).
    pub sha256: String,
    /// Where it came from (file path, or `api`).
    pub source: String,
    /// Who or what loaded it.
    pub trigger: Trigger,
    /// When it was loaded, RFC 3339 UTC.
    pub loaded_at: String,
    /// When it was loaded, milliseconds since the Unix epoch.
    pub loaded_at_ms: u64,
    /// Hooks it exports.
    pub hooks: Hooks,
    /// Whether it decides for the department now.
    pub active: bool,
    /// Whether it runs in shadow now.
    pub shadow: bool,
    /// Whether [`ReloadManager::rollback`] can make it active (it passed validation).
    pub kept: bool,
    /// The validation result.
    pub validation: Validation,
}

/// A generation and, while it is kept for rollback, the loaded plugin.
struct Record {
    info: GenerationInfo,
    plugin: Option<Arc<Plugin>>,
}

/// Per-department reload state. Held (locked) for a whole reload, rollback or
/// promotion, so those are serialised per department; decisions never take it.
#[derive(Default)]
struct DeptState {
    /// What candidates are validated and loaded with now.
    setup: DepartmentSetup,
    /// What [`ReloadManager::configure`] set: the watcher lays the directory's
    /// files over it (so a missing file means "the configured one", not "none").
    base: DepartmentSetup,
    history: Vec<Record>,
    /// Hash of the files the watcher last tried, so one save reloads once.
    last_tried: Option<String>,
    /// Hash of the component the watcher handled before a restart
    /// ([`ReloadManager::seed_watched`]): the first look skips that file.
    watched_before: Option<String>,
}

struct DeptSlot {
    state: Mutex<DeptState>,
    /// The candidate in shadow, read lock-free by the decision path.
    shadow: Arc<ArcSwapOption<Shadow>>,
    /// What [`ReloadManager::generations`] and [`ReloadManager::fixtures`]
    /// answer, published after each change: a reader (an admin listing) never
    /// waits for a reload in progress, which holds `state` while it compiles.
    listing: ArcSwap<Listing>,
}

/// A department's generations and fixtures as last published.
#[derive(Default)]
struct Listing {
    /// Each kept record and whether it is loaded (validated).
    history: Vec<(GenerationInfo, bool)>,
    fixtures: Option<Arc<Fixtures>>,
}

impl DeptSlot {
    fn publish(&self, state: &DeptState) {
        self.listing.store(Arc::new(Listing {
            history: state.history.iter().map(|r| (r.info.clone(), r.plugin.is_some())).collect(),
            fixtures: state.setup.fixtures.clone(),
        }));
    }
}

struct Inner {
    runtime: Runtime,
    options: ReloadOptions,
    audit: AuditLog,
    departments: RwLock<HashMap<String, Arc<DeptSlot>>>,
    /// Asked to make each change durable before it takes effect (see
    /// [`ReloadManager::set_commit`]).
    commit: RwLock<Option<CommitHook>>,
}

/// A change about to take effect, as handed to the [commit hook](ReloadManager::set_commit).
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// A validated candidate is about to become the active generation.
    Activate {
        /// Department.
        department: &'a str,
        /// Who or what asked (the watcher, an API caller, start-up).
        trigger: &'a Trigger,
        /// Plugin name.
        plugin: &'a str,
        /// SHA-256 of `bytes` (hex).
        sha256: &'a str,
        /// Its generation number.
        generation: u64,
        /// The component.
        bytes: &'a [u8],
    },
    /// A validated candidate is about to run in shadow.
    Shadow {
        /// Department.
        department: &'a str,
        /// Who or what asked.
        trigger: &'a Trigger,
        /// Plugin name.
        plugin: &'a str,
        /// SHA-256 of `bytes` (hex).
        sha256: &'a str,
        /// Its generation number.
        generation: u64,
        /// The component.
        bytes: &'a [u8],
    },
    /// A candidate that got a generation number was refused (informational:
    /// the number is not to be handed out again; a failing hook is ignored).
    Reject {
        /// Department.
        department: &'a str,
        /// Who or what asked.
        trigger: &'a Trigger,
        /// SHA-256 of the component (hex).
        sha256: &'a str,
        /// The generation number it had.
        generation: u64,
        /// Why.
        reason: &'a str,
    },
    /// A kept generation is about to become active again.
    Rollback {
        /// Department.
        department: &'a str,
        /// The generation.
        generation: u64,
    },
    /// The shadow is about to become the active generation.
    Promote {
        /// Department.
        department: &'a str,
        /// The shadow's generation.
        generation: u64,
    },
    /// The shadow is about to stop without promotion.
    Unshadow {
        /// Department.
        department: &'a str,
        /// The shadow's generation.
        generation: u64,
    },
}

impl Change<'_> {
    /// The department it changes.
    pub fn department(&self) -> &str {
        match *self {
            Change::Activate { department, .. }
            | Change::Shadow { department, .. }
            | Change::Reject { department, .. }
            | Change::Rollback { department, .. }
            | Change::Promote { department, .. }
            | Change::Unshadow { department, .. } => department,
        }
    }
}

/// Makes a [`Change`] durable (e.g. journals it); an error refuses the change.
pub type CommitHook = Arc<dyn Fn(&Change<'_>) -> Result<()> + Send + Sync>;

/// A generation recorded before a restart, for [`ReloadManager::restore`].
#[derive(Debug, Clone)]
pub struct Restored {
    /// Its generation number (kept as it was).
    pub generation: u64,
    /// SHA-256 recorded for it (hex); the bytes must hash to it.
    pub sha256: String,
    /// The plugin's name.
    pub plugin: String,
    /// The component, or `None` when it could not be found.
    pub bytes: Option<Vec<u8>>,
}

/// Hot reload over a [`Runtime`]: the embedding API of issue 6 (see the module
/// docs). Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct ReloadManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReloadManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadManager").field("options", &self.inner.options).finish_non_exhaustive()
    }
}

/// SHA-256 of `bytes`, hex.
fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn now_stamp() -> (String, u64) {
    let now = SystemTime::now();
    let ms = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    (humantime::format_rfc3339_millis(now).to_string(), ms)
}

/// Whether a candidate becomes active or runs in shadow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Activate,
    Shadow,
}

impl ReloadManager {
    /// Hot reload over `runtime`. Fails only when the audit file cannot be opened.
    pub fn new(runtime: Runtime, options: ReloadOptions) -> Result<ReloadManager> {
        let audit = AuditLog::new(options.audit_capacity, options.audit_file.as_deref())?;
        Ok(ReloadManager {
            inner: Arc::new(Inner {
                runtime,
                options,
                audit,
                departments: RwLock::new(HashMap::new()),
                commit: RwLock::new(None),
            }),
        })
    }

    /// Have every change (activation, shadow, rollback, promotion, stop of a
    /// shadow) made durable by `hook` first, under the department's lock: when
    /// the hook fails, the change does not happen and the caller gets its error.
    /// An embedding daemon journals the change here, so its journal, not this
    /// manager's memory, says which generation is active after a restart.
    pub fn set_commit(&self, hook: CommitHook) {
        *self.inner.commit.write().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    fn commit(&self, change: Change<'_>) -> Result<()> {
        let hook = self.inner.commit.read().unwrap_or_else(|p| p.into_inner()).clone();
        match hook {
            Some(hook) => hook(&change),
            None => Ok(()),
        }
    }

    /// The runtime it reloads.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// Its settings.
    pub fn options(&self) -> &ReloadOptions {
        &self.inner.options
    }

    fn slot(&self, department: &str) -> Arc<DeptSlot> {
        if let Some(slot) = self.inner.departments.read().unwrap_or_else(|p| p.into_inner()).get(department) {
            return slot.clone();
        }
        let mut map = self.inner.departments.write().unwrap_or_else(|p| p.into_inner());
        map.entry(department.to_owned())
            .or_insert_with(|| {
                Arc::new(DeptSlot {
                    state: Mutex::new(DeptState::default()),
                    shadow: Arc::new(ArcSwapOption::empty()),
                    listing: ArcSwap::from_pointee(Listing::default()),
                })
            })
            .clone()
    }

    fn lock(slot: &DeptSlot) -> MutexGuard<'_, DeptState> {
        slot.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set what `department`'s candidates are validated and loaded with (API
    /// reloads; the watcher lays the department's files over it).
    pub fn configure(&self, department: &str, setup: DepartmentSetup) {
        let slot = self.slot(department);
        let mut state = Self::lock(&slot);
        state.base = setup.clone();
        state.setup = setup;
        slot.publish(&state);
    }

    /// Replace the fixtures `department`'s candidates must pass (`None`: load
    /// checks and the smoke call only), keeping the rest of its setup.
    pub fn set_fixtures(&self, department: &str, fixtures: Option<Fixtures>) {
        let slot = self.slot(department);
        let mut state = Self::lock(&slot);
        let fixtures = fixtures.map(Arc::new);
        state.base.fixtures = fixtures.clone();
        state.setup.fixtures = fixtures;
        slot.publish(&state);
    }

    /// [`set_fixtures`](Self::set_fixtures), audited as `fixtures` with the
    /// text's hash and who asked.
    pub fn set_fixtures_by(&self, department: &str, fixtures: Option<Fixtures>, sha256: &str, who: &str) {
        let cases = fixtures.as_ref().map(|f| f.cases().len()).unwrap_or(0);
        self.set_fixtures(department, fixtures);
        self.inner.audit.record(NewEntry {
            department: department.to_owned(),
            action: AuditAction::Fixtures,
            generation: None,
            previous: None,
            sha256: sha256.to_owned(),
            source: "api".to_owned(),
            trigger: Trigger::api(who),
            result: Outcome::Ok,
            reason: Some(format!("{cases} fixture cases")),
        });
    }

    /// Tell the watcher that the directory's `<department>.wasm` with hash
    /// `sha256` was already handled before a restart (swapped in or refused,
    /// as the embedder's journal recorded): its first look at that file does
    /// not load it again, so what was chosen since (an upload, a rollback)
    /// stands. Call before [`watch`](Self::watch).
    pub fn seed_watched(&self, department: &str, sha256: &str) {
        Self::lock(&self.slot(department)).watched_before = Some(sha256.to_owned());
    }

    /// Run `fixtures` against the department's active generation (nothing
    /// changes): whether what decides now would pass them. `None` without an
    /// active generation.
    pub fn check_active(&self, department: &str, fixtures: &Fixtures) -> Option<(u64, Validation)> {
        let plugin = self.inner.runtime.current(department)?;
        let validation = validate::run_fixtures(
            &plugin,
            Some(fixtures),
            self.inner.runtime.catalog(),
            self.inner.options.fixture_budget,
        );
        Some((plugin.generation(), validation))
    }

    /// The fixtures `department`'s candidates must pass now.
    pub fn fixtures(&self, department: &str) -> Option<Arc<Fixtures>> {
        self.slot(department).listing.load().fixtures.clone()
    }

    /// Load generations recorded before a restart with their own numbers (no
    /// fixtures are run again: each passed them when first admitted), make
    /// `active` the active one and run `shadow` in shadow (none: no shadow
    /// runs, whatever ran before). A generation whose
    /// bytes are missing, hash to something else or no longer load is skipped
    /// and its error returned; when that is the active one, the department
    /// decides with its built-in rules. Audited as `restore` (trigger
    /// `startup`); nothing goes to the commit hook (this comes from the record).
    pub fn restore(
        &self,
        department: &str,
        generations: Vec<Restored>,
        active: Option<u64>,
        shadow: Option<u64>,
    ) -> Vec<(u64, Error)> {
        let slot = self.slot(department);
        let mut state = Self::lock(&slot);
        let trigger = Trigger::startup("journal");
        let mut errors = Vec::new();
        if let Some(highest) = generations.iter().map(|g| g.generation).max() {
            self.inner.runtime.reserve_generations(department, highest);
        }
        for restored in generations {
            let generation = restored.generation;
            let loaded = match &restored.bytes {
                None => Err(Error::Invalid(format!(
                    "department `{department}`: the component of generation {generation} (sha256 {}) is missing",
                    restored.sha256
                ))),
                Some(bytes) if sha256_hex(bytes) != restored.sha256 => Err(Error::Invalid(format!(
                    "department `{department}`: the stored component of generation {generation} does not hash to {}",
                    restored.sha256
                ))),
                Some(bytes) => self.inner.runtime.load_bytes_as(
                    department,
                    &restored.plugin,
                    bytes,
                    state.setup.effective_config(),
                    generation,
                ),
            };
            let plugin = match loaded {
                Ok(plugin) => plugin,
                Err(error) => {
                    self.inner.audit.record(NewEntry {
                        department: department.to_owned(),
                        action: AuditAction::Restore,
                        generation: Some(generation),
                        previous: None,
                        sha256: restored.sha256.clone(),
                        source: "journal".to_owned(),
                        trigger: trigger.clone(),
                        result: Outcome::Rejected,
                        reason: Some(error.to_string()),
                    });
                    errors.push((generation, error));
                    continue;
                }
            };
            let (loaded_at, loaded_at_ms) = now_stamp();
            let info = GenerationInfo {
                department: department.to_owned(),
                generation,
                sha256: restored.sha256.clone(),
                source: "journal".to_owned(),
                trigger: trigger.clone(),
                loaded_at,
                loaded_at_ms,
                hooks: plugin.hooks(),
                active: false,
                shadow: false,
                kept: true,
                validation: Validation::Passed { cases: 0, slowest_case_us: 0 },
            };
            state.history.retain(|r| r.info.generation != generation);
            state.history.push(Record { info, plugin: Some(plugin.clone()) });
            let role = if Some(generation) == active {
                let previous = self.inner.runtime.activate(plugin.clone()).map(|p| p.generation());
                self.record(
                    department,
                    AuditAction::Restore,
                    &plugin,
                    "journal",
                    previous,
                    &trigger,
                    Some("active".into()),
                );
                continue;
            } else if Some(generation) == shadow {
                slot.shadow.store(Some(Arc::new(Shadow::new(plugin.clone()))));
                "shadow"
            } else {
                "kept for rollback"
            };
            self.record(department, AuditAction::Restore, &plugin, "journal", None, &trigger, Some(role.into()));
        }
        if shadow.is_none() {
            // Restored again after a change (a cluster's standby following its
            // leader): a shadow stopped or promoted since no longer runs.
            slot.shadow.store(None);
        }
        state.history.sort_by_key(|r| r.info.generation);
        slot.publish(&state);
        errors
    }

    /// The department's rules for the router: the active generation (followed
    /// across swaps at every call) and, while one runs, the shadow beside it.
    pub fn rules(&self, department: &str) -> Arc<dyn RuleSet> {
        Arc::new(ShadowedRules {
            active: self.inner.runtime.rules(department),
            shadow: self.slot(department).shadow.clone(),
        })
    }

    /// The active generation of `department`.
    pub fn active_generation(&self, department: &str) -> Option<u64> {
        self.inner.runtime.current(department).map(|p| p.generation())
    }

    /// Load, validate and activate `bytes` for `department` (trigger: API).
    /// On failure the running generation stays active and the error says why.
    pub fn reload(&self, department: &str, bytes: &[u8]) -> Result<GenerationInfo> {
        self.reload_with(department, bytes, Trigger::api("api"))
    }

    /// [`reload`](Self::reload) with the trigger (who) recorded in the audit log.
    pub fn reload_with(&self, department: &str, bytes: &[u8], trigger: Trigger) -> Result<GenerationInfo> {
        self.admit(department, bytes, "api".to_owned(), trigger, None, Mode::Activate)
    }

    /// Load and validate `bytes` and run them in shadow beside the active
    /// generation (replacing any earlier shadow).
    pub fn shadow(&self, department: &str, bytes: &[u8]) -> Result<GenerationInfo> {
        self.shadow_with(department, bytes, Trigger::api("api"))
    }

    /// [`shadow`](Self::shadow) with the trigger (who) recorded in the audit log.
    pub fn shadow_with(&self, department: &str, bytes: &[u8], trigger: Trigger) -> Result<GenerationInfo> {
        self.admit(department, bytes, "api".to_owned(), trigger, None, Mode::Shadow)
    }

    /// [`reload_with`](Self::reload_with) naming where the bytes came from
    /// (`source`, e.g. a configured file).
    pub fn reload_from(
        &self,
        department: &str,
        bytes: &[u8],
        source: &str,
        trigger: Trigger,
    ) -> Result<GenerationInfo> {
        self.admit(department, bytes, source.to_owned(), trigger, None, Mode::Activate)
    }

    /// The evidence gathered by the department's shadow, if one runs.
    pub fn shadow_report(&self, department: &str) -> Option<ShadowReport> {
        self.slot(department).shadow.load_full().map(|s| s.report())
    }

    /// Make the shadow the active generation; returns it.
    pub fn promote(&self, department: &str) -> Result<GenerationInfo> {
        self.promote_by(department, "api")
    }

    /// [`promote`](Self::promote), recording who asked.
    pub fn promote_by(&self, department: &str, who: &str) -> Result<GenerationInfo> {
        let slot = self.slot(department);
        let mut state = Self::lock(&slot);
        let Some(generation) = slot.shadow.load().as_ref().map(|s| s.plugin.generation()) else {
            return Err(Error::Invalid(format!("department `{department}` has no shadow generation to promote")));
        };
        self.commit(Change::Promote { department, generation })?;
        let Some(shadow) = slot.shadow.swap(None) else {
            return Err(Error::Invalid(format!("department `{department}` has no shadow generation to promote")));
        };
        let report = shadow.report();
        let plugin = shadow.plugin.clone();
        let previous = self.inner.runtime.activate(plugin.clone()).map(|p| p.generation());
        let decisions = report.prioritise.decisions + report.escalate.decisions + report.match_agents.decisions;
        let agreed = report.prioritise.agreed + report.escalate.agreed + report.match_agents.agreed;
        let failures = report.prioritise.failures + report.escalate.failures + report.match_agents.failures;
        let trigger = Trigger::promotion(who);
        self.record(
            department,
            AuditAction::Promote,
            &plugin,
            &Self::source_of(&state, plugin.generation()),
            previous,
            &trigger,
            Some(format!("shadow agreed on {agreed} of {decisions} decisions, {failures} failures")),
        );
        self.prune(department, &mut state, Some(plugin.generation()), None);
        self.info_of(department, &state, plugin.generation())
    }

    /// Stop the department's shadow without promoting it; returns its last report.
    /// The generation stays kept (it passed validation), so it can still be
    /// rolled back to.
    pub fn stop_shadow(&self, department: &str) -> Option<ShadowReport> {
        match self.stop_shadow_by(department, "api") {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(department, "the shadow keeps running: {error}");
                None
            }
        }
    }

    /// [`stop_shadow`](Self::stop_shadow), recording who asked; fails (and the
    /// shadow runs on) when the commit hook refuses.
    pub fn stop_shadow_by(&self, department: &str, who: &str) -> Result<Option<ShadowReport>> {
        let slot = self.slot(department);
        let mut state = Self::lock(&slot);
        let Some(generation) = slot.shadow.load().as_ref().map(|s| s.plugin.generation()) else {
            return Ok(None);
        };
        self.commit(Change::Unshadow { department, generation })?;
        let Some(shadow) = slot.shadow.swap(None) else { return Ok(None) };
        let report = shadow.report();
        let source = Self::source_of(&state, shadow.plugin.generation());
        self.record(department, AuditAction::Unshadow, &shadow.plugin, &source, None, &Trigger::api(who), None);
        self.prune(department, &mut state, self.active_generation(department), None);
        Ok(Some(report))
    }

    /// Make a kept generation active again (trigger: rollback by `api`).
    pub fn rollback(&self, department: &str, generation: u64) -> Result<GenerationInfo> {
        self.rollback_by(department, generation, "api")
    }

    /// [`rollback`](Self::rollback), recording who asked.
    pub fn rollback_by(&self, department: &str, generation: u64, who: &str) -> Result<GenerationInfo> {
        let slot = self.slot(department);
        let mut state = Self::lock(&slot);
        let Some(record) = state.history.iter().find(|r| r.info.generation == generation) else {
            return Err(Error::Unknown { kind: "generation", name: format!("{department}#{generation}") });
        };
        let Some(plugin) = record.plugin.clone() else {
            return Err(Error::Invalid(format!(
                "department `{department}`: generation {generation} was rejected ({}); only validated generations can be rolled back to",
                match &record.info.validation {
                    Validation::Failed { reason } => reason.as_str(),
                    Validation::Passed { .. } => "no longer loaded",
                }
            )));
        };
        self.commit(Change::Rollback { department, generation })?;
        let previous = self.inner.runtime.activate(plugin.clone()).map(|p| p.generation());
        let source = Self::source_of(&state, generation);
        self.record(department, AuditAction::Rollback, &plugin, &source, previous, &Trigger::rollback(who), None);
        let shadow = slot.shadow.load().as_ref().map(|s| s.plugin.generation());
        self.prune(department, &mut state, Some(generation), shadow);
        self.info_of(department, &state, generation)
    }

    /// The department's kept generations, oldest first.
    pub fn generations(&self, department: &str) -> Vec<GenerationInfo> {
        let slot = self.slot(department);
        let listing = slot.listing.load();
        let active = self.active_generation(department);
        let shadow = slot.shadow.load().as_ref().map(|s| s.plugin.generation());
        listing
            .history
            .iter()
            .map(|(info, loaded)| GenerationInfo {
                active: Some(info.generation) == active && *loaded,
                shadow: Some(info.generation) == shadow && *loaded,
                ..info.clone()
            })
            .collect()
    }

    /// The audit log kept in memory (all departments), oldest first.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.inner.audit.entries()
    }

    /// Receive every audit entry (load, swap, rejection, rollback, shadow,
    /// promotion) from now on. Drop the receiver to unsubscribe.
    pub fn subscribe(&self) -> std::sync::mpsc::Receiver<ReloadEvent> {
        self.inner.audit.subscribe()
    }

    /// Watch `dir` (see the module docs for its layout): load every department
    /// found there now, then reload on changes until the [`Watcher`] is dropped.
    pub fn watch(&self, dir: impl AsRef<Path>) -> Result<Watcher> {
        watch::Watcher::start(self.clone(), dir.as_ref())
    }

    fn info_of(&self, department: &str, state: &DeptState, generation: u64) -> Result<GenerationInfo> {
        let active = self.active_generation(department);
        let shadow = self.slot(department).shadow.load().as_ref().map(|s| s.plugin.generation());
        state
            .history
            .iter()
            .find(|r| r.info.generation == generation)
            .map(|r| GenerationInfo {
                active: Some(generation) == active && r.plugin.is_some(),
                shadow: Some(generation) == shadow && r.plugin.is_some(),
                ..r.info.clone()
            })
            .ok_or_else(|| Error::Unknown { kind: "generation", name: format!("{department}#{generation}") })
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        department: &str,
        action: AuditAction,
        plugin: &Plugin,
        source: &str,
        previous: Option<u64>,
        trigger: &Trigger,
        reason: Option<String>,
    ) -> AuditEntry {
        self.inner.audit.record(NewEntry {
            department: department.to_owned(),
            action,
            generation: Some(plugin.generation()),
            previous,
            sha256: plugin.load_report().sha256.clone(),
            source: source.to_owned(),
            trigger: trigger.clone(),
            result: Outcome::Ok,
            reason,
        })
    }

    /// Where a kept generation came from.
    fn source_of(state: &DeptState, generation: u64) -> String {
        state
            .history
            .iter()
            .find(|r| r.info.generation == generation)
            .map(|r| r.info.source.clone())
            .unwrap_or_default()
    }

    /// Record a refusal of something that got no generation (unreadable files,
    /// not a component, wrong world, unsupported contract).
    fn record_refusal(&self, department: &str, sha256: String, source: &str, trigger: &Trigger, reason: String) {
        self.inner.audit.record(NewEntry {
            department: department.to_owned(),
            action: AuditAction::Reject,
            generation: None,
            previous: None,
            sha256,
            source: source.to_owned(),
            trigger: trigger.clone(),
            result: Outcome::Rejected,
            reason: Some(reason),
        });
    }

    /// Load → validate → activate (or shadow), under the department's lock.
    fn admit(
        &self,
        department: &str,
        bytes: &[u8],
        source: String,
        trigger: Trigger,
        setup: Option<DepartmentSetup>,
        mode: Mode,
    ) -> Result<GenerationInfo> {
        let slot = self.slot(department);
        let mut state = Self::lock(&slot);
        if let Some(setup) = setup {
            state.setup = setup;
        }
        let sha256 = sha256_hex(bytes);
        // A file's plugin is named after it (`hostile_block.wasm` → `hostile_block`);
        // bytes from an API call after the department.
        let name = Path::new(&source)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wasm"))
            .filter(|n| !n.is_empty())
            .unwrap_or(department)
            .to_owned();
        let plugin = match self.inner.runtime.load_bytes(department, &name, bytes, state.setup.effective_config()) {
            Ok(plugin) => plugin,
            Err(error) => {
                self.record_refusal(department, sha256, &source, &trigger, error.to_string());
                slot.publish(&state);
                return Err(error);
            }
        };
        let mut check = "fixtures";
        let mut validation = validate::run_fixtures(
            &plugin,
            state.setup.fixtures.as_deref(),
            self.inner.runtime.catalog(),
            self.inner.options.fixture_budget,
        );
        // A file configured for start-up is the operator's deploy: refusing it
        // would refuse to start, so it gets fixtures but no smoke call.
        let smoke = self.inner.options.smoke_call && trigger.kind != audit::TriggerKind::Startup;
        if validation.passed() && smoke {
            let queue = state.setup.smoke_queue.as_deref().and_then(|name| {
                let catalog = self.inner.runtime.catalog().read().unwrap_or_else(|p| p.into_inner());
                catalog.table(switchyard_contract::NameKind::Queue).id(name)
            });
            if let Err(reason) = validate::smoke_call(&plugin, queue.unwrap_or(0)) {
                check = "smoke call";
                validation = Validation::Failed { reason };
            }
        }
        let (loaded_at, loaded_at_ms) = now_stamp();
        let generation = plugin.generation();
        let info = GenerationInfo {
            department: department.to_owned(),
            generation,
            sha256: sha256.clone(),
            source: source.clone(),
            trigger: trigger.clone(),
            loaded_at,
            loaded_at_ms,
            hooks: plugin.hooks(),
            active: false,
            shadow: false,
            kept: validation.passed(),
            validation: validation.clone(),
        };
        if let Validation::Failed { reason } = validation {
            state.history.push(Record { info, plugin: None });
            self.inner.audit.record(NewEntry {
                department: department.to_owned(),
                action: AuditAction::Reject,
                generation: Some(generation),
                previous: None,
                sha256: sha256.clone(),
                source: source.clone(),
                trigger: trigger.clone(),
                result: Outcome::Rejected,
                reason: Some(reason.clone()),
            });
            if let Err(error) = self.commit(Change::Reject {
                department,
                trigger: &trigger,
                sha256: &sha256,
                generation,
                reason: &reason,
            }) {
                tracing::warn!(department, generation, "the refusal was not recorded: {error}");
            }
            let active = self.active_generation(department);
            let shadow = slot.shadow.load().as_ref().map(|s| s.plugin.generation());
            self.prune(department, &mut state, active, shadow);
            return Err(Error::Rejected {
                department: department.to_owned(),
                generation,
                check,
                source_name: source,
                reason,
            });
        }
        let change = match mode {
            Mode::Activate => Change::Activate {
                department,
                trigger: &trigger,
                plugin: plugin.name(),
                sha256: &sha256,
                generation,
                bytes,
            },
            Mode::Shadow => Change::Shadow {
                department,
                trigger: &trigger,
                plugin: plugin.name(),
                sha256: &sha256,
                generation,
                bytes,
            },
        };
        if let Err(error) = self.commit(change) {
            self.record_refusal(
                department,
                sha256.clone(),
                &source,
                &trigger,
                format!("not recorded, so not swapped in: {error}"),
            );
            return Err(error);
        }
        let cases = match &info.validation {
            Validation::Passed { cases, .. } => *cases,
            Validation::Failed { .. } => 0,
        };
        state.history.push(Record { info, plugin: Some(plugin.clone()) });
        self.record(
            department,
            AuditAction::Load,
            &plugin,
            &source,
            None,
            &trigger,
            Some(format!("passed {cases} fixture cases")),
        );
        let (active, shadow) = match mode {
            Mode::Activate => {
                let previous = self.inner.runtime.activate(plugin.clone()).map(|p| p.generation());
                self.record(department, AuditAction::Swap, &plugin, &source, previous, &trigger, None);
                (Some(generation), slot.shadow.load().as_ref().map(|s| s.plugin.generation()))
            }
            Mode::Shadow => {
                let replaced = slot.shadow.swap(Some(Arc::new(Shadow::new(plugin.clone()))));
                let replaced = replaced.map(|s| s.plugin.generation());
                self.record(department, AuditAction::Shadow, &plugin, &source, replaced, &trigger, None);
                (self.active_generation(department), Some(generation))
            }
        };
        self.prune(department, &mut state, active, shadow);
        self.info_of(department, &state, generation)
    }

    /// Keep the last `keep` validated generations (never dropping the active one
    /// or the shadow) and as many rejected ones.
    fn prune(&self, department: &str, state: &mut DeptState, active: Option<u64>, shadow: Option<u64>) {
        let keep = self.inner.options.keep.max(1);
        for validated in [true, false] {
            loop {
                let count = state.history.iter().filter(|r| r.plugin.is_some() == validated).count();
                if count <= keep {
                    break;
                }
                let Some(oldest) = state.history.iter().position(|r| {
                    r.plugin.is_some() == validated
                        && Some(r.info.generation) != active
                        && Some(r.info.generation) != shadow
                }) else {
                    break;
                };
                let dropped = state.history.remove(oldest);
                tracing::debug!(department, generation = dropped.info.generation, "generation no longer kept");
            }
        }
        // Every change ends here: publish what readers see.
        self.slot(department).publish(state);
    }
}
