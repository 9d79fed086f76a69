//! The embedding API: what a platform team uses to run department plugins.
//!
//! ```no_run
//! use switchyard_runtime::runtime::{DepartmentConfig, Runtime};
//! # fn main() -> switchyard_runtime::Result<()> {
//! let runtime = Runtime::builder().cache_dir("/var/cache/switchyard").build()?;
//! let report = runtime.register_file("billing", "plugins/billing.wasm", DepartmentConfig::new())?;
//! println!("billing plugin generation {} (cached: {})", report.generation, report.cache_hit);
//! let rules = runtime.rules("billing");
//! let batch = switchyard_contract::ItemBatch::new(1_700_000_000_000);
//! let decided = rules.prioritise(&batch);
//! println!("decided by {}", decided.source);
//! # Ok(()) }
//! ```
//!
//! A [`Runtime`] owns one sandbox (engine, compiled cache, epoch ticker) and, per
//! department, the current plugin generation behind an [`ArcSwapOption`]: a later
//! registration (hot reload) swaps it atomically while decisions in flight finish
//! on the old one. [`Runtime::rules`] hands out a [`RuleSet`] that looks the
//! current plugin up at every call and never fails: a failure, an open breaker or a
//! hook the plugin does not export makes the built-in rule decide, and the answer's
//! [`RuleSource`] says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use switchyard_contract::{CandidateTable, Escalation, ItemBatch, MatchResult, Priority};

use crate::error::{Error, Result};
use crate::sandbox::{EngineOptions, Limits, PoolOptions, Sandbox};
use crate::stats::{Admission, BreakerConfig, FailureKind, PluginStats};
use switchyard_contract::Hook;
use switchyard_core::rules::{BuiltInRules, Decided, RuleSet, RuleSource, SharedCatalog};

pub use crate::plugin::{DepartmentConfig, Hooks, LoadReport, Plugin};

/// Builds a [`Runtime`]; every knob has a safe default.
#[derive(Debug, Clone, Default)]
pub struct RuntimeBuilder {
    limits: Limits,
    breaker: BreakerConfig,
    engine: EngineOptions,
    catalog: Option<SharedCatalog>,
}

impl RuntimeBuilder {
    /// Default limits for every plugin (a department may override them).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Keep compiled components in `dir`, so a restart skips compilation.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.engine.cache_dir = Some(dir.into());
        self
    }

    /// The host's interned names (shared with the router). Default: an empty catalog.
    pub fn catalog(mut self, catalog: SharedCatalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Default circuit-breaker settings.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Compile with fuel metering, so [`Limits::fuel`] budgets can be set.
    pub fn fuel(mut self, enabled: bool) -> Self {
        self.engine.fuel = enabled;
        self
    }

    /// Size the pooling allocator, or `None` to allocate on demand.
    pub fn pool(mut self, pool: Option<PoolOptions>) -> Self {
        self.engine.pool = pool;
        self
    }

    /// How often the epoch ticker runs (deadline granularity). Default 1 ms.
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.engine.epoch_tick = tick;
        self
    }

    /// Build the engine and start the ticker.
    pub fn build(self) -> Result<Runtime> {
        let sandbox =
            Sandbox::new(self.engine).map_err(|e| Error::Invalid(format!("cannot build the wasm engine: {e:#}")))?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                sandbox: Arc::new(sandbox),
                catalog: self.catalog.unwrap_or_default(),
                limits: self.limits,
                breaker: self.breaker,
                departments: RwLock::new(HashMap::new()),
            }),
        })
    }
}

struct Inner {
    sandbox: Arc<Sandbox>,
    catalog: SharedCatalog,
    limits: Limits,
    breaker: BreakerConfig,
    departments: RwLock<HashMap<String, Arc<Department>>>,
}

/// One department's slot: its current plugin and its generation counter.
struct Department {
    name: String,
    current: ArcSwapOption<Plugin>,
    /// The last generation handed out; held during a load so loads for one
    /// department are serialised and generations are consecutive.
    last_generation: Mutex<u64>,
}

/// The plugin host. Cheap to clone (an `Arc`); `Send + Sync`.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("departments", &self.departments()).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Start building a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    fn department(&self, name: &str) -> Arc<Department> {
        if let Some(d) = self.inner.departments.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return d.clone();
        }
        let mut map = self.inner.departments.write().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Department {
                    name: name.to_owned(),
                    current: ArcSwapOption::empty(),
                    last_generation: Mutex::new(0),
                })
            })
            .clone()
    }

    /// Load, validate and activate a plugin file for `department` (the plugin is
    /// named after the file stem). The department's previous plugin, if any, stays
    /// active when this fails.
    pub fn register_file(
        &self,
        department: &str,
        path: impl AsRef<Path>,
        config: DepartmentConfig,
    ) -> Result<LoadReport> {
        let plugin = self.load_file(department, path, config)?;
        let report = plugin.load_report().clone();
        self.activate(plugin);
        Ok(report)
    }

    /// Load, validate and activate a plugin from bytes.
    pub fn register_bytes(
        &self,
        department: &str,
        name: &str,
        bytes: &[u8],
        config: DepartmentConfig,
    ) -> Result<LoadReport> {
        let plugin = self.load_bytes(department, name, bytes, config)?;
        let report = plugin.load_report().clone();
        self.activate(plugin);
        Ok(report)
    }

    /// Load and validate a plugin file without activating it (hot reload checks
    /// it first, then calls [`Runtime::activate`]).
    pub fn load_file(&self, department: &str, path: impl AsRef<Path>, config: DepartmentConfig) -> Result<Arc<Plugin>> {
        let path = path.as_ref();
        let bytes = crate::plugin::read_file(path)?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| department.to_owned());
        self.load(department, &name, path.display().to_string(), &bytes, config)
    }

    /// Load and validate a plugin from bytes without activating it.
    pub fn load_bytes(
        &self,
        department: &str,
        name: &str,
        bytes: &[u8],
        config: DepartmentConfig,
    ) -> Result<Arc<Plugin>> {
        self.load(department, name, format!("{name} (bytes)"), bytes, config)
    }

    /// Load and validate a plugin from bytes as generation `generation` (a
    /// restart restoring the generations it had before), without activating it.
    /// Later loads of the department are numbered after the highest generation
    /// seen, so numbers are never reused.
    pub fn load_bytes_as(
        &self,
        department: &str,
        name: &str,
        bytes: &[u8],
        config: DepartmentConfig,
        generation: u64,
    ) -> Result<Arc<Plugin>> {
        self.load_numbered(department, name, format!("{name} (bytes)"), bytes, config, Some(generation))
    }

    /// Number the department's next load after `generation` at least (a
    /// generation handed out before a restart, even one that was refused).
    pub fn reserve_generations(&self, department: &str, generation: u64) {
        let dept = self.department(department);
        let mut last = dept.last_generation.lock().unwrap_or_else(|p| p.into_inner());
        *last = (*last).max(generation);
    }

    fn load(
        &self,
        department: &str,
        name: &str,
        source: String,
        bytes: &[u8],
        config: DepartmentConfig,
    ) -> Result<Arc<Plugin>> {
        self.load_numbered(department, name, source, bytes, config, None)
    }

    fn load_numbered(
        &self,
        department: &str,
        name: &str,
        source: String,
        bytes: &[u8],
        config: DepartmentConfig,
        generation: Option<u64>,
    ) -> Result<Arc<Plugin>> {
        let dept = self.department(department);
        let mut last = dept.last_generation.lock().unwrap_or_else(|p| p.into_inner());
        let spec = crate::plugin::LoadSpec {
            department,
            name,
            source,
            generation: generation.unwrap_or(*last + 1),
            limits: config.limits.clone().unwrap_or_else(|| self.inner.limits.clone()),
            breaker: config.breaker.unwrap_or(self.inner.breaker),
            config: &config,
            catalog: self.inner.catalog.clone(),
        };
        let plugin = Plugin::load(self.inner.sandbox.clone(), bytes, spec)?;
        *last = (*last).max(plugin.generation());
        Ok(Arc::new(plugin))
    }

    /// Make `plugin` its department's current plugin; returns the one it replaced.
    /// Decisions already running finish on the old generation.
    pub fn activate(&self, plugin: Arc<Plugin>) -> Option<Arc<Plugin>> {
        let dept = self.department(plugin.department());
        tracing::info!(department = %dept.name, plugin = plugin.name(), generation = plugin.generation(), "plugin activated");
        dept.current.swap(Some(plugin))
    }

    /// Remove a department's plugin: the built-in rules decide from now on.
    pub fn unregister(&self, department: &str) -> Option<Arc<Plugin>> {
        self.department(department).current.swap(None)
    }

    /// The department's current plugin.
    pub fn current(&self, department: &str) -> Option<Arc<Plugin>> {
        self.inner.departments.read().unwrap_or_else(|p| p.into_inner()).get(department)?.current.load_full()
    }

    /// The department's rules: its current plugin, with the built-in rules for
    /// hooks it does not export and whenever it fails. Resolves the current plugin
    /// at every call, so it follows hot reloads. A department without a plugin
    /// gets the built-in rules (until one is registered).
    pub fn rules(&self, department: &str) -> Arc<dyn RuleSet> {
        Arc::new(DepartmentRules { department: self.department(department) })
    }

    /// Statistics of the department's current plugin.
    pub fn stats(&self, department: &str) -> Option<PluginStats> {
        self.current(department).map(|p| p.stats())
    }

    /// Hooks the department's current plugin exports (none without a plugin).
    pub fn hooks(&self, department: &str) -> Hooks {
        self.current(department).map(|p| p.hooks()).unwrap_or_default()
    }

    /// Departments known to the runtime (with or without a plugin), sorted.
    pub fn departments(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.inner.departments.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        names.sort();
        names
    }

    /// The interned names plugins read.
    pub fn catalog(&self) -> &SharedCatalog {
        &self.inner.catalog
    }

    /// The sandbox (engine, compile and cache counters).
    pub fn sandbox(&self) -> &Sandbox {
        &self.inner.sandbox
    }

    /// [`RuleSet::prioritise`] on a blocking thread, off the async executor.
    pub async fn prioritise_async(&self, department: &str, items: ItemBatch) -> Decided<Vec<Priority>> {
        let items = Arc::new(items);
        let rules = self.rules(department);
        let moved = items.clone();
        match tokio::task::spawn_blocking(move || rules.prioritise(&moved)).await {
            Ok(decided) => decided,
            Err(e) => lost_task(BuiltInRules::prioritise(&items), &e),
        }
    }

    /// [`RuleSet::escalate`] on a blocking thread, off the async executor.
    pub async fn escalate_async(&self, department: &str, items: ItemBatch) -> Decided<Vec<Escalation>> {
        let items = Arc::new(items);
        let rules = self.rules(department);
        let moved = items.clone();
        match tokio::task::spawn_blocking(move || rules.escalate(&moved)).await {
            Ok(decided) => decided,
            Err(e) => lost_task(BuiltInRules::escalate(&items), &e),
        }
    }

    /// [`RuleSet::match_agents`] on a blocking thread, off the async executor.
    pub async fn match_agents_async(
        &self,
        department: &str,
        item: ItemBatch,
        candidates: CandidateTable,
    ) -> Decided<MatchResult> {
        let args = Arc::new((item, candidates));
        let rules = self.rules(department);
        let moved = args.clone();
        match tokio::task::spawn_blocking(move || rules.match_agents(&moved.0, &moved.1)).await {
            Ok(decided) => decided,
            Err(e) => lost_task(BuiltInRules::match_agents(&args.0, &args.1), &e),
        }
    }
}

/// The blocking task died (it cannot panic in our code, but the executor may be
/// shutting down): decide with the built-in rule and say why.
fn lost_task<T>(value: T, error: &tokio::task::JoinError) -> Decided<T> {
    Decided {
        value,
        source: RuleSource::Fallback {
            plugin: String::new(),
            generation: 0,
            reason: format!("decision task failed: {error}"),
        },
    }
}

/// A department's [`RuleSet`] as handed out by [`Runtime::rules`].
struct DepartmentRules {
    department: Arc<Department>,
}

impl DepartmentRules {
    fn decide<T>(
        &self,
        hook: Hook,
        built_in: impl FnOnce() -> T,
        call: impl FnOnce(&Plugin) -> Result<Option<T>>,
    ) -> Decided<T> {
        // A guard, not an `Arc` clone: no reference-count traffic per call.
        let current = self.department.current.load();
        let Some(plugin) = current.as_ref() else {
            return Decided::built_in(built_in());
        };
        if !plugin.hooks().has(hook) {
            return Decided::built_in(built_in());
        }
        let fallback = |reason: String, value: T| Decided {
            value,
            source: RuleSource::Fallback { plugin: plugin.name().to_owned(), generation: plugin.generation(), reason },
        };
        if let Admission::Refuse(failures) = plugin.breaker().admit_now() {
            let error = Error::BreakerOpen { plugin: plugin.name().to_owned(), failures };
            let reason = error.to_string();
            plugin.stats_cell().record_failure(FailureKind::BreakerOpen, &reason);
            tracing::debug!(department = %self.department.name, plugin = plugin.name(), hook = hook.name(), "{reason}");
            return fallback(reason, built_in());
        }
        // The time-stamp counter, not the OS clock: two reads on every call.
        let started = quanta::Instant::now();
        let result = call(plugin);
        plugin.stats_cell().record_call(hook, quanta::Instant::now().duration_since(started));
        match result {
            Ok(Some(value)) => {
                plugin.breaker().record_success();
                Decided {
                    value,
                    source: RuleSource::Plugin { plugin: plugin.shared_name(), generation: plugin.generation() },
                }
            }
            Ok(None) => Decided::built_in(built_in()),
            Err(error) => {
                let kind = FailureKind::of(&error).unwrap_or(FailureKind::Trap);
                let reason = error.to_string();
                plugin.stats_cell().record_failure(kind, &reason);
                tracing::warn!(
                    department = %self.department.name,
                    plugin = plugin.name(),
                    generation = plugin.generation(),
                    hook = hook.name(),
                    kind = kind.name(),
                    "plugin failed, built-in rule decided: {reason}"
                );
                if plugin.breaker().record_failure(Instant::now()) {
                    tracing::error!(
                        department = %self.department.name,
                        plugin = plugin.name(),
                        generation = plugin.generation(),
                        "circuit breaker opened: the built-in rules decide for this department until the cooldown ends"
                    );
                }
                fallback(reason, built_in())
            }
        }
    }
}

impl RuleSet for DepartmentRules {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        self.decide(Hook::Prioritise, || BuiltInRules::prioritise(items), |p| p.prioritise(items))
    }

    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        self.decide(Hook::Escalate, || BuiltInRules::escalate(items), |p| p.escalate(items))
    }

    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        self.decide(Hook::Match, || BuiltInRules::match_agents(item, candidates), |p| p.match_agents(item, candidates))
    }

    fn calls_plugin(&self, hook: Hook) -> bool {
        self.department.current.load().as_ref().is_some_and(|plugin| plugin.hooks().has(hook))
    }
}
