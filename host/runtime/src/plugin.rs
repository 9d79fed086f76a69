//! One loaded plugin generation: load (bytes or file) → compile or take from the
//! cache → check the contract → link → `InstancePre` → a pool of ready instances.
//!
//! Loading refuses, with an error naming the file and the problem: bytes that are
//! not a component, a component of a contract version this host does not speak, one
//! that imports anything but WASI and the contract's `host` interface, one that
//! exports none of the hooks, and one that cannot instantiate within its limits.
//! Each hook (`prioritiser`, `escalator`, `matcher`) is looked up on its own; a
//! plugin exports any non-empty subset.
//!
//! Calls check out a ready instance (its own `Store`), so threads calling the same
//! plugin never share one. A healthy instance goes back to the pool; after any trap,
//! deadline or limit hit its store is dropped and the next call instantiates afresh.
//! [`Plugin::prioritise`] and friends return the plugin's checked answer or the
//! failure; falling back to the built-in rules is the caller's job
//! ([`crate::runtime`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use serde::{Deserialize, Serialize};
use switchyard_contract::{CandidateTable, Escalation, ItemBatch, MatchResult, Priority};
use wasmtime::component::{Component, ComponentExportIndex, Func, InstancePre, TypedFunc};
use wasmtime::{Store, Trap};

use crate::abi::{
    ArenaLease, ArgumentsRefused, BatchArg, Declared, EscalationsAnswer, ListAlloc, MatchArgs, PrioritiesAnswer,
};

use crate::contract::bindings::exports::switchyard::routing::{escalator, matcher, prioritiser};
use crate::contract::{self, AnswerError, KnownIds};
use crate::error::{Error, Result};
use crate::sandbox::{Blocked, Limits, PluginState, Sandbox, StoreSpec, WasiPolicy};
use crate::stats::{Breaker, BreakerConfig, PluginStats, StatsCell};
use switchyard_contract::Hook;
use switchyard_core::rules::SharedCatalog;

/// A department's settings for its plugin.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepartmentConfig {
    /// The read-only key/value configuration the plugin reads through `host.config`.
    pub values: BTreeMap<String, String>,
    /// Limits for this department's plugin; `None` uses the runtime's.
    pub limits: Option<Limits>,
    /// WASI clocks and randomness.
    pub wasi: WasiPolicy,
    /// Breaker settings; `None` uses the runtime's.
    pub breaker: Option<BreakerConfig>,
}

impl DepartmentConfig {
    /// An empty configuration with the runtime's limits.
    pub fn new() -> Self {
        DepartmentConfig::default()
    }

    /// Add a configuration value.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.values.insert(key.into(), value.into());
        self
    }

    /// Use these limits instead of the runtime's.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Use this breaker configuration instead of the runtime's.
    pub fn with_breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = Some(breaker);
        self
    }
}

/// Which hooks a plugin exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Hooks {
    /// Exports `prioritiser`.
    pub prioritise: bool,
    /// Exports `escalator`.
    pub escalate: bool,
    /// Exports `matcher`.
    pub match_agents: bool,
}

impl Hooks {
    /// Whether the plugin exports `hook`.
    pub fn has(&self, hook: Hook) -> bool {
        match hook {
            Hook::Prioritise => self.prioritise,
            Hook::Escalate => self.escalate,
            Hook::Match => self.match_agents,
        }
    }
}

/// What loading a plugin did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// Department the plugin was loaded for.
    pub department: String,
    /// Plugin name.
    pub plugin: String,
    /// Generation given to it (1 for a department's first plugin).
    pub generation: u64,
    /// Where it came from (file path or `<name> (bytes)`).
    pub source: String,
    /// SHA-256 of the component bytes (hex).
    pub sha256: String,
    /// The hooks it exports.
    pub hooks: Hooks,
    /// Whether the compiled component came from the on-disk cache.
    pub cache_hit: bool,
    /// Time spent compiling (or loading from the cache).
    pub compile_time: Duration,
}

/// Export index of each exported hook function, looked up once at load.
struct HookIndices {
    prioritiser: Option<ComponentExportIndex>,
    escalator: Option<ComponentExportIndex>,
    matcher: Option<ComponentExportIndex>,
}

/// The hook functions' signatures as the host calls them: arguments borrowed
/// and lowered by [`crate::abi`], answers lifted into the generated types.
type PrioritiseFn<'a> = TypedFunc<(BatchArg<'a>,), (PrioritiesAnswer,)>;
type EscalateFn<'a> = TypedFunc<(BatchArg<'a>,), (EscalationsAnswer,)>;
type MatchFn<'a> = TypedFunc<MatchArgs<'a>, (contract::wit::MatchResult,)>;

/// A ready instance: its own store and its exported hook functions, each
/// type-checked against the signatures above when the instance was made.
struct Live {
    store: Store<PluginState>,
    prioritiser: Option<Func>,
    escalator: Option<Func>,
    matcher: Option<Func>,
}

/// Idle instances kept per plugin; callers beyond this make and drop their own.
const MAX_IDLE: usize = 16;

/// One loaded generation of a department's plugin.
pub struct Plugin {
    name: Arc<str>,
    department: String,
    generation: u64,
    report: LoadReport,
    sandbox: Arc<Sandbox>,
    pre: InstancePre<PluginState>,
    indices: HookIndices,
    /// How its argument lists are allocated: in one block per call when the
    /// component declares the SDK's argument arena, else one per list.
    alloc: ListAlloc<'static>,
    /// The lease on its instances' arenas, when it declares one: then the
    /// block is taken by the host with no call into the plugin.
    lease: Option<ArenaLease>,
    spec: StoreSpec,
    pool: ArrayQueue<Live>,
    stats: StatsCell,
    breaker: Breaker,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("department", &self.department)
            .field("generation", &self.generation)
            .field("hooks", &self.report.hooks)
            .finish_non_exhaustive()
    }
}

/// Everything [`Plugin::load`] needs besides the bytes.
pub(crate) struct LoadSpec<'a> {
    pub department: &'a str,
    pub name: &'a str,
    pub source: String,
    pub generation: u64,
    pub config: &'a DepartmentConfig,
    pub limits: Limits,
    pub breaker: BreakerConfig,
    pub catalog: SharedCatalog,
}

/// Read a plugin file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io { path: path.to_owned(), source })
}

impl Plugin {
    /// Load and validate a component (see the module docs).
    pub(crate) fn load(sandbox: Arc<Sandbox>, bytes: &[u8], spec: LoadSpec<'_>) -> Result<Plugin> {
        let load_error = |message: String| Error::PluginLoad {
            plugin: spec.name.to_owned(),
            source_name: spec.source.clone(),
            message,
        };
        let mismatch = |message: String| Error::ContractMismatch {
            plugin: spec.name.to_owned(),
            source_name: spec.source.clone(),
            supported: contract::CONTRACT_VERSION,
            message,
        };
        if let Some(fuel) = spec.limits.fuel
            && !sandbox.options().fuel
        {
            return Err(load_error(format!(
                "a fuel limit of {fuel} needs a runtime built with fuel metering (`RuntimeBuilder::fuel(true)`)"
            )));
        }
        if let Some(pool) = sandbox.options().pool
            && spec.limits.memory_bytes > pool.max_memory_bytes
        {
            return Err(load_error(format!(
                "memory limit of {} is above the runtime's pool slot of {}",
                crate::sandbox::human_bytes(spec.limits.memory_bytes),
                crate::sandbox::human_bytes(pool.max_memory_bytes)
            )));
        }

        let compiled = sandbox.compile(bytes).map_err(load_error)?;
        let component = compiled.component;
        check_contract_versions(&sandbox, &component).map_err(mismatch)?;
        let pre = sandbox.link(&component).map_err(load_error)?;

        // A hook's function index when the component exports its interface. The
        // generated lookup (`generated`) names a missing or mistyped function
        // clearly; the calls themselves go through the export indices (see `Live`).
        let hook = |interface: &str,
                    function: &str,
                    generated: &dyn Fn() -> wasmtime::Result<()>|
         -> Result<Option<ComponentExportIndex>> {
            let Some(exported) = component.get_export_index(None, interface) else { return Ok(None) };
            generated().map_err(|e| mismatch(format!("{e:#}")))?;
            component
                .get_export_index(Some(&exported), function)
                .map(Some)
                .ok_or_else(|| mismatch(format!("exports `{interface}` without its function `{function}`")))
        };
        let indices = HookIndices {
            prioritiser: hook(contract::PRIORITISER, "prioritise", &|| prioritiser::GuestIndices::new(&pre).map(drop))?,
            escalator: hook(contract::ESCALATOR, "escalate", &|| escalator::GuestIndices::new(&pre).map(drop))?,
            matcher: hook(contract::MATCHER, "match-agents", &|| matcher::GuestIndices::new(&pre).map(drop))?,
        };
        let hooks = Hooks {
            prioritise: indices.prioritiser.is_some(),
            escalate: indices.escalator.is_some(),
            match_agents: indices.matcher.is_some(),
        };
        if hooks == Hooks::default() {
            let exports: Vec<String> =
                component.component_type().exports(sandbox.engine()).map(|(name, _)| format!("`{name}`")).collect();
            return Err(load_error(format!(
                "exports none of the hook interfaces `{}`, `{}`, `{}` (it exports {})",
                contract::PRIORITISER,
                contract::ESCALATOR,
                contract::MATCHER,
                if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") }
            )));
        }

        // What it accepts beyond the canonical ABI (one pass over its bytes).
        let declared = Declared::of(bytes);
        let plugin = Plugin {
            name: Arc::from(spec.name),
            department: spec.department.to_owned(),
            generation: spec.generation,
            report: LoadReport {
                department: spec.department.to_owned(),
                plugin: spec.name.to_owned(),
                generation: spec.generation,
                source: spec.source.clone(),
                sha256: compiled.sha256,
                hooks,
                cache_hit: compiled.cache_hit,
                compile_time: compiled.compile_time,
            },
            pre,
            indices,
            alloc: declared.list_alloc(),
            lease: declared.arena_lease.then(ArenaLease::new),
            spec: StoreSpec {
                plugin: Arc::from(spec.name),
                config: Arc::new(spec.config.values.clone()),
                catalog: spec.catalog.clone(),
                limits: spec.limits.clone(),
                wasi: spec.config.wasi.clone(),
            },
            pool: ArrayQueue::new(MAX_IDLE),
            stats: StatsCell::default(),
            breaker: Breaker::new(spec.breaker),
            sandbox,
        };
        // Instantiate once now: a plugin that cannot start within its limits, or
        // whose hooks have the wrong function types, is refused at load, not on
        // the first decision.
        let live = plugin.instantiate().map_err(|e| match e {
            InstantiateError::Types(message) => mismatch(message),
            InstantiateError::Start(message) => {
                load_error(format!("failed to instantiate within its limits: {message}"))
            }
        })?;
        plugin.checkin(live);
        tracing::info!(
            department = %plugin.department,
            plugin = %plugin.name,
            generation = plugin.generation,
            cache_hit = plugin.report.cache_hit,
            hooks = ?plugin.report.hooks,
            "plugin loaded"
        );
        Ok(plugin)
    }

    /// Plugin name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Plugin name, shared (for answers' [`switchyard_core::rules::RuleSource`]).
    pub fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }

    /// Department it decides for.
    pub fn department(&self) -> &str {
        &self.department
    }

    /// Generation number.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The hooks it exports.
    pub fn hooks(&self) -> Hooks {
        self.report.hooks
    }

    /// What loading it did.
    pub fn load_report(&self) -> &LoadReport {
        &self.report
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.spec.limits
    }

    /// A snapshot of its statistics.
    pub fn stats(&self) -> PluginStats {
        self.stats.snapshot(&self.name, self.generation, self.breaker.state(Instant::now()))
    }

    pub(crate) fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    pub(crate) fn stats_cell(&self) -> &StatsCell {
        &self.stats
    }

    fn instantiate(&self) -> std::result::Result<Live, InstantiateError> {
        let engine = self.sandbox.engine();
        let mut store = Store::new(engine, PluginState::new(&self.spec));
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(self.sandbox.deadline_ticks(self.spec.limits.deadline));
        if self.sandbox.options().fuel {
            let _ = store.set_fuel(self.spec.limits.fuel.unwrap_or(u64::MAX));
        }
        store.data_mut().begin_call(0);
        let started = self.pre.instantiate(&mut store);
        store.data_mut().flush_output("instantiate");
        let instance = started.map_err(|e| InstantiateError::Start(describe_start_failure(&e, &store)))?;
        let types = |e: wasmtime::Error| InstantiateError::Types(format!("{e:#}"));
        let missing = |name: &str| InstantiateError::Types(format!("the instance lacks its export `{name}`"));
        let mut func =
            |index: &Option<ComponentExportIndex>, name: &str| -> std::result::Result<Option<Func>, InstantiateError> {
                let Some(index) = index else { return Ok(None) };
                instance.get_func(&mut store, index).map(Some).ok_or_else(|| missing(name))
            };
        let prioritiser = func(&self.indices.prioritiser, "prioritise")?;
        let escalator = func(&self.indices.escalator, "escalate")?;
        let matcher = func(&self.indices.matcher, "match-agents")?;
        // Type-check once per instance; the calls then use `new_unchecked`.
        if let Some(f) = prioritiser {
            f.typed::<(BatchArg<'_>,), (PrioritiesAnswer,)>(&store).map_err(types)?;
        }
        if let Some(f) = escalator {
            f.typed::<(BatchArg<'_>,), (EscalationsAnswer,)>(&store).map_err(types)?;
        }
        if let Some(f) = matcher {
            f.typed::<MatchArgs<'_>, (contract::wit::MatchResult,)>(&store).map_err(types)?;
        }
        let live = Live { prioritiser, escalator, matcher, store };
        self.stats.instances_created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(live)
    }

    fn checkout(&self, hook: &'static str) -> Result<Live> {
        if let Some(live) = self.pool.pop() {
            return Ok(live);
        }
        self.instantiate().map_err(|e| {
            let message = match e {
                InstantiateError::Types(m) | InstantiateError::Start(m) => m,
            };
            Error::PluginTrap {
                plugin: self.name.to_string(),
                hook,
                reason: format!("could not make a fresh instance: {message}"),
            }
        })
    }

    fn checkin(&self, live: Live) {
        // A full pool (`MAX_IDLE` idle already) drops this one.
        let _ = self.pool.push(live);
    }

    /// Run `f` on a ready instance with the call's deadline, fuel and decision
    /// time set; classify any failure. A failed instance is dropped.
    fn call<R>(
        &self,
        hook: &'static str,
        now_ms: u64,
        f: impl FnOnce(&mut Live) -> wasmtime::Result<R>,
    ) -> Result<(R, Live)> {
        let mut live = self.checkout(hook)?;
        let store = &mut live.store;
        store.data_mut().begin_call(now_ms);
        store.set_epoch_deadline(self.sandbox.deadline_ticks(self.spec.limits.deadline));
        if self.sandbox.options().fuel {
            let _ = store.set_fuel(self.spec.limits.fuel.unwrap_or(u64::MAX));
        }
        let result = f(&mut live);
        let last_stderr = live.store.data_mut().flush_output(hook);
        match result {
            Ok(answer) => Ok((answer, live)),
            Err(error) => {
                let failure = self.classify(hook, &error, &live.store, last_stderr);
                // `live` (and its store) is dropped here: never reuse a trapped instance.
                drop(live);
                Err(failure)
            }
        }
    }

    fn classify(
        &self,
        hook: &'static str,
        error: &wasmtime::Error,
        store: &Store<PluginState>,
        last_stderr: Option<String>,
    ) -> Error {
        let plugin = self.name.to_string();
        let denied = store.data().limiter.denied.clone();
        // A WASI call that would have waited trapped (see `sandbox::refuse_blocking_wasi`):
        // a trap, reported with the import it called.
        if let Some(blocked) = error.downcast_ref::<Blocked>() {
            return Error::PluginTrap { plugin, hook, reason: blocked.to_string() };
        }
        // Its memory could not take the arguments: it broke its own memory or
        // lied about its arena. Nothing was written outside it.
        if let Some(refused) = error.downcast_ref::<ArgumentsRefused>() {
            return Error::InvalidAnswer {
                plugin,
                hook,
                reason: format!("its memory could not take the call's arguments: {refused}"),
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                Error::PluginDeadline { plugin, hook, deadline_ms: self.spec.limits.deadline.as_millis() as u64 }
            }
            Some(Trap::OutOfFuel) => Error::PluginLimit {
                plugin,
                hook,
                limit: format!("fuel limit of {}", self.spec.limits.fuel.unwrap_or(u64::MAX)),
            },
            Some(trap) => match denied {
                Some(limit) => Error::PluginLimit { plugin, hook, limit },
                None => {
                    let text = trap.to_string();
                    let mut reason = text.strip_prefix("wasm trap: ").unwrap_or(&text).to_owned();
                    if let Some(line) = last_stderr {
                        reason.push_str(&format!(" (stderr: {line})"));
                    }
                    Error::PluginTrap { plugin, hook, reason }
                }
            },
            None => match denied {
                Some(limit) => Error::PluginLimit { plugin, hook, limit },
                // Not a trap: the boundary could not lift what the guest returned
                // (e.g. a string that is not UTF-8).
                None => Error::InvalidAnswer {
                    plugin,
                    hook,
                    reason: format!("the answer could not be read: {}", root(error)),
                },
            },
        }
    }

    fn answer_error(&self, hook: &'static str, error: AnswerError) -> Error {
        match error {
            AnswerError::Invalid(reason) => Error::InvalidAnswer { plugin: self.name.to_string(), hook, reason },
            AnswerError::TooLarge(reason) => Error::PluginLimit {
                plugin: self.name.to_string(),
                hook,
                limit: format!("answer size limit ({reason})"),
            },
        }
    }

    /// How this call's argument lists are allocated.
    fn list_alloc(&self) -> ListAlloc<'_> {
        match &self.lease {
            Some(lease) => ListAlloc::Leased(lease),
            None => self.alloc,
        }
    }

    /// How many calls had their argument lists leased from the plugin's arena
    /// (no entry into the plugin for them; the `switchyard:arena-lease` capability
    /// of `switchyard_contract::capability`). Always 0 for a
    /// plugin that does not declare the lease (Python, JavaScript, older SDKs).
    pub fn leased_calls(&self) -> u64 {
        self.lease.as_ref().map_or(0, ArenaLease::leased_calls)
    }

    fn known_ids(&self) -> KnownIds {
        match self.spec.catalog.read() {
            Ok(catalog) => KnownIds::of(&catalog),
            Err(poisoned) => KnownIds::of(&poisoned.into_inner()),
        }
    }

    /// Call the plugin's `prioritise`; `Ok(None)` when it does not export it.
    pub fn prioritise(&self, items: &ItemBatch) -> Result<Option<Vec<Priority>>> {
        if self.indices.prioritiser.is_none() {
            return Ok(None);
        }
        let hook = Hook::Prioritise.name();
        let (answer, live) = self.call(hook, items.now_ms, |live| match live.prioritiser {
            // SAFETY: type-checked against this signature in `instantiate`.
            Some(func) => unsafe { PrioritiseFn::new_unchecked(func) }
                .call(&mut live.store, (BatchArg::of(items, self.list_alloc()),))
                .map(|(PrioritiesAnswer(answer),)| answer),
            None => Err(wasmtime::format_err!("prioritiser missing from instance")),
        })?;
        self.checkin(live);
        let checked = contract::check_priorities(answer, items.len(), self.known_ids(), self.spec.limits.answer_caps())
            .map_err(|e| self.answer_error(hook, e))?;
        Ok(Some(checked))
    }

    /// Call the plugin's `escalate`; `Ok(None)` when it does not export it.
    pub fn escalate(&self, items: &ItemBatch) -> Result<Option<Vec<Escalation>>> {
        if self.indices.escalator.is_none() {
            return Ok(None);
        }
        let hook = Hook::Escalate.name();
        let (answer, live) = self.call(hook, items.now_ms, |live| match live.escalator {
            // SAFETY: type-checked against this signature in `instantiate`.
            Some(func) => unsafe { EscalateFn::new_unchecked(func) }
                .call(&mut live.store, (BatchArg::of(items, self.list_alloc()),))
                .map(|(EscalationsAnswer(answer),)| answer),
            None => Err(wasmtime::format_err!("escalator missing from instance")),
        })?;
        self.checkin(live);
        let checked =
            contract::check_escalations(answer, items.len(), self.known_ids(), self.spec.limits.answer_caps())
                .map_err(|e| self.answer_error(hook, e))?;
        Ok(Some(checked))
    }

    /// Call the plugin's `match-agents`; `Ok(None)` when it does not export it.
    pub fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Result<Option<MatchResult>> {
        if self.indices.matcher.is_none() {
            return Ok(None);
        }
        let hook = Hook::Match.name();
        let (answer, live) = self.call(hook, item.now_ms, |live| match live.matcher {
            // SAFETY: type-checked against this signature in `instantiate`.
            Some(func) => unsafe { MatchFn::new_unchecked(func) }
                .call(&mut live.store, MatchArgs::of(item, candidates, self.list_alloc()))
                .map(|(answer,)| answer),
            None => Err(wasmtime::format_err!("matcher missing from instance")),
        })?;
        self.checkin(live);
        let checked = contract::check_match(answer, candidates.len()).map_err(|e| self.answer_error(hook, e))?;
        Ok(Some(checked))
    }
}

enum InstantiateError {
    /// A hook's functions have the wrong types.
    Types(String),
    /// Instantiation trapped or hit a limit.
    Start(String),
}

fn describe_start_failure(error: &wasmtime::Error, store: &Store<PluginState>) -> String {
    if let Some(blocked) = error.downcast_ref::<Blocked>() {
        return blocked.to_string();
    }
    if let Some(limit) = &store.data().limiter.denied {
        return format!("{limit} reached");
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => "start-up ran past the call deadline".to_owned(),
        Some(trap) => {
            let text = trap.to_string();
            text.strip_prefix("wasm trap: ").unwrap_or(&text).to_owned()
        }
        None => format!("{error:#}"),
    }
}

/// The innermost cause of an error, on one line.
fn root(error: &wasmtime::Error) -> String {
    error.chain().last().map(|e| e.to_string()).unwrap_or_else(|| error.to_string())
}

/// Refuse components that export or import a `switchyard:routing` interface of
/// another contract version.
fn check_contract_versions(sandbox: &Sandbox, component: &Component) -> std::result::Result<(), String> {
    let ty = component.component_type();
    let engine = sandbox.engine();
    let foreign = |name: &str| {
        let rest = name.strip_prefix("switchyard:routing/")?;
        let (_, version) = rest.split_once('@').unwrap_or((rest, ""));
        (version != contract::CONTRACT_VERSION)
            .then(|| if version.is_empty() { format!("`{name}` (unversioned)") } else { format!("`{name}`") })
    };
    let exports: Vec<String> = ty.exports(engine).filter_map(|(name, _)| foreign(name)).collect();
    if !exports.is_empty() {
        return Err(format!(
            "exports {} but this host speaks contract version {}",
            exports.join(", "),
            contract::CONTRACT_VERSION
        ));
    }
    let imports: Vec<String> = ty.imports(engine).filter_map(|(name, _)| foreign(name)).collect();
    if !imports.is_empty() {
        return Err(format!(
            "imports {} but this host speaks contract version {}",
            imports.join(", "),
            contract::CONTRACT_VERSION
        ));
    }
    Ok(())
}
