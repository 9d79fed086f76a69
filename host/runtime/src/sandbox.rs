//! The sandbox every plugin runs in: one tuned wasmtime [`Engine`] per host, the
//! on-disk cache of compiled components, the epoch ticker behind wall-clock
//! deadlines, the per-store [`Limits`], the locked-down WASI context and the host
//! imports of the contract (`log`, `config`, `now-ms`, `names`).
//!
//! What a plugin can reach is exactly this: its department's read-only config,
//! the decision time, the interned name tables, a log tagged with its name, and a
//! WASI world with no files, no environment, no arguments, no network, a wall
//! clock frozen at the decision time and a seeded random generator. Its stdout and
//! stderr go to the host's log (`tracing`, target `switchyard::plugin`). No WASI
//! call may wait: one that would (`sleep`, `poll`, blocking on a clock
//! subscription) traps at once, so the decision falls back instead of holding the
//! host thread (see `refuse_blocking_wasi`).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, StoreContextMut};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi::p2::pipe::ClosedInputStream;
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::contract::{self, bindings};
use switchyard_core::rules::SharedCatalog;

const MIB: usize = 1 << 20;

/// Per-plugin resource limits. Every store a plugin runs in gets these; the
/// defaults are safe for rule plugins (a Rust rule component needs 1-2 MiB).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest linear memory a plugin may grow to, in bytes. Default 16 MiB: ten
    /// times what a Rust rule component uses, small enough that 100 plugins × a
    /// few instances fit a host.
    pub memory_bytes: usize,
    /// Largest table (function references) in elements. Default 20 000.
    pub table_elements: usize,
    /// Core instances per store. Default 32 (a component is a handful of them;
    /// interpreters built by componentize-py/-js need more than Rust's ~3).
    pub instances: usize,
    /// Linear memories per store. Default 8.
    pub memories: usize,
    /// Tables per store. Default 8.
    pub tables: usize,
    /// Wall-clock deadline of one call, enforced by epoch interruption. Default
    /// 50 ms: a batch of 1 000 items costs about 10 µs, so only a runaway plugin
    /// gets near it, and a routing decision is still made within a blink.
    #[serde(with = "millis")]
    pub deadline: Duration,
    /// Fuel (roughly wasm instructions) per call, for deterministic budgets.
    /// `None` (default): no fuel limit. Needs a runtime built with fuel on.
    pub fuel: Option<u64>,
    /// Total bytes of text (reasons, alerts) in one answer. Default 1 MiB.
    pub answer_text_bytes: usize,
    /// Bytes of any one text of an answer (a reason, an alert message). Default
    /// 4 KiB ([`contract::MAX_MESSAGE_BYTES`]): texts live on in desktops, alerts
    /// and case histories.
    pub message_bytes: usize,
    /// Escalation actions per item in one answer. Default 64.
    pub actions_per_item: usize,
    /// Log records (`host.log`) a plugin may write per call; more are dropped and
    /// counted. Default 100.
    pub log_records_per_call: usize,
    /// Bytes of stdout/stderr a plugin may write per call; more are dropped. Default 64 KiB.
    pub output_bytes_per_call: usize,
}

mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 16 * MIB,
            table_elements: 20_000,
            instances: 32,
            memories: 8,
            tables: 8,
            deadline: Duration::from_millis(50),
            fuel: None,
            answer_text_bytes: MIB,
            message_bytes: contract::MAX_MESSAGE_BYTES,
            actions_per_item: 64,
            log_records_per_call: 100,
            output_bytes_per_call: 64 * 1024,
        }
    }
}

impl Limits {
    /// The caps on answers these limits imply.
    pub fn answer_caps(&self) -> contract::AnswerCaps {
        contract::AnswerCaps {
            text_bytes: self.answer_text_bytes,
            message_bytes: self.message_bytes,
            actions_per_item: self.actions_per_item,
        }
    }
}

/// What a plugin's WASI clocks and random generator return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Determinism {
    /// Replayable (default): the wall clock reads the decision time of the call,
    /// random bytes come from a generator seeded with `seed`. The monotonic clock
    /// still advances in real time (from 0 at instantiation) so a plugin that
    /// measures its own work terminates; it reveals nothing about the host.
    #[default]
    Replayable,
    /// The host's real wall clock and an unpredictable random generator.
    Host,
}

/// WASI settings of one department's plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasiPolicy {
    /// Clocks and randomness.
    pub determinism: Determinism,
    /// Seed of the random generator under [`Determinism::Replayable`].
    pub seed: u64,
}

/// The pooling allocator's size: how many instances the whole host can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Component instances alive at once across all plugins (pooled idle ones
    /// included). Default 1 000: 50 departments × 20 concurrent callers.
    pub component_instances: u32,
    /// Largest memory any plugin may be configured for; the size of a pool slot.
    /// Default 64 MiB (a department's [`Limits::memory_bytes`] must fit).
    pub max_memory_bytes: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { component_instances: 1_000, max_memory_bytes: 64 * MIB }
    }
}

/// Engine-wide settings (one engine per host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// How often the ticker advances the epoch; the granularity of deadlines.
    /// Default 1 ms.
    pub epoch_tick: Duration,
    /// Compile with fuel metering so [`Limits::fuel`] can be used. Costs ~10% per
    /// call; default off.
    pub fuel: bool,
    /// Use the pooling allocator (default) or plain on-demand allocation.
    pub pool: Option<PoolOptions>,
    /// Directory of compiled components; `None` compiles at every start.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            epoch_tick: Duration::from_millis(1),
            fuel: false,
            pool: Some(PoolOptions::default()),
            cache_dir: None,
        }
    }
}

/// A compiled component and how it was obtained.
pub struct Compiled {
    /// The compiled component.
    pub component: Component,
    /// Whether it came from the on-disk cache.
    pub cache_hit: bool,
    /// How long compiling (or loading from the cache) took.
    pub compile_time: Duration,
    /// SHA-256 of the component's bytes, hex.
    pub sha256: String,
}

/// The engine, its linker, the compiled-component cache and the epoch ticker.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<PluginState>,
    options: EngineOptions,
    compilations: AtomicU64,
    cache_hits: AtomicU64,
    ticker: Option<Ticker>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("options", &self.options).finish_non_exhaustive()
    }
}

/// Advances the engine's epoch every tick until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Sandbox {
    /// Build the engine with its tuned config, the linker with WASI and the host
    /// imports, and start the epoch ticker.
    pub fn new(options: EngineOptions) -> wasmtime::Result<Sandbox> {
        let mut config = Config::new();
        // A synchronous rules host needs no async machinery in its stores: a call's
        // fixed cost drops from ≈505 ns to ≈165 ns (DESIGN.md).
        config.concurrency_support(false);
        config.epoch_interruption(true);
        config.consume_fuel(options.fuel);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        if let Some(pool) = options.pool {
            let n = pool.component_instances.max(1);
            let mut pooling = PoolingAllocationConfig::new();
            pooling
                .total_component_instances(n)
                .total_core_instances(n.saturating_mul(8))
                .total_memories(n.saturating_mul(2))
                .total_tables(n.saturating_mul(2))
                .max_core_instances_per_component(32)
                .max_memories_per_component(8)
                .max_tables_per_component(8)
                .max_memories_per_module(2)
                .max_tables_per_module(2)
                .table_elements(100_000)
                .max_memory_size(pool.max_memory_bytes);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
            // 4 GiB reservations (+ guard) per memory slot, as wasmtime does by
            // default on 64-bit hosts: compiled code then needs no bounds check
            // on memory accesses, which made rules ≈13 % faster per item than
            // reserving only the memory cap (measured, prioritise 1,024 items).
            // It is address space, not memory: 1 000 instances × 2 slots ≈ 8 TiB
            // of the 128 TiB a 64-bit Linux process may map; the cap itself is
            // still enforced (`max_memory_size` and the store's limiter).
            config.memory_reservation(4 * 1024 * MIB as u64);
            config.memory_guard_size(32 * MIB as u64);
            config.memory_reservation_for_growth(0);
        }
        let engine = Engine::new(&config)?;
        // The statistics time calls with the time-stamp counter
        // (`quanta`); its first read calibrates it (≈0.6 ms), here rather than
        // in the first decision.
        let _ = quanta::Instant::now();

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        refuse_blocking_wasi(&mut linker)?;
        bindings::Rules::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;

        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let tick = options.epoch_tick.max(Duration::from_micros(100));
        let thread = std::thread::Builder::new().name("switchyard-epoch".into()).spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            }
        })?;
        Ok(Sandbox {
            engine,
            linker,
            options,
            compilations: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            ticker: Some(Ticker { stop, thread: Some(thread) }),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Components compiled by this sandbox (cache misses).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// Components loaded from the on-disk cache.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Ticks a `deadline` is worth.
    pub(crate) fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let tick = self.options.epoch_tick.max(Duration::from_micros(100)).as_nanos();
        (deadline.as_nanos().div_ceil(tick) as u64).max(1)
    }

    /// The cache file name for `sha256` under this engine's compatibility hash.
    fn cache_path(&self, dir: &Path, sha256: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()))
    }

    /// Compile `bytes` (a component, binary or text) or load it from the cache.
    /// Errors are plain messages; the caller names the file.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, String> {
        check_component_header(bytes)?;
        let sha256 = hex(&Sha256::digest(bytes));
        let cache_file = self.options.cache_dir.as_deref().map(|dir| self.cache_path(dir, &sha256));
        if let Some(path) = &cache_file
            && path.is_file()
        {
            let started = Instant::now();
            // SAFETY: the file is one this host serialized into its own cache
            // directory (named by content hash and engine compatibility); wasmtime
            // still checks the header and refuses an incompatible artifact.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(component) => {
                    self.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Compiled { component, cache_hit: true, compile_time: started.elapsed(), sha256 });
                }
                Err(err) => tracing::warn!(cache = %path.display(), "ignoring unusable compiled cache entry: {err:#}"),
            }
        }
        let started = Instant::now();
        let component = Component::new(&self.engine, bytes).map_err(|err| format!("not a valid component: {err:#}"))?;
        let compile_time = started.elapsed();
        self.compilations.fetch_add(1, Ordering::Relaxed);
        if let Some(path) = &cache_file
            && let Err(err) = write_cache(path, &component)
        {
            tracing::warn!(cache = %path.display(), "could not write compiled cache entry: {err:#}");
        }
        Ok(Compiled { component, cache_hit: false, compile_time, sha256 })
    }

    /// Link `component` against WASI and the host imports. Fails when the
    /// component imports anything else.
    pub(crate) fn link(&self, component: &Component) -> Result<InstancePre<PluginState>, String> {
        self.linker
            .instantiate_pre(component)
            .map_err(|err| format!("needs imports this host does not provide: {err:#}"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ticker.take();
    }
}

fn write_cache(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `wasi:io/poll` instance as wasmtime-wasi 48 links it. A guest's import of
/// any `wasi:io/poll@0.2.x` resolves to it by semver (Rust's std imports 0.2.4,
/// wasi-libc 0.2.0), so redefining its functions here redefines them for every
/// guest. If a wasmtime upgrade moves it to another version, the hostile-block
/// tests fail rather than plugins silently blocking again.
const WASI_IO_POLL: &str = "wasi:io/poll@0.2.12";

/// A plugin called a WASI function that would have waited: the call traps with
/// this error, and [`crate::plugin`] reports it as a trap naming the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocked {
    /// The WASI function, e.g. `wasi:io/poll.poll`.
    pub import: &'static str,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "called {} on a pollable that is not ready: rule plugins may not block", self.import)
    }
}

impl std::error::Error for Blocked {}

/// Make every WASI import that can wait trap instead when it would wait.
///
/// Epoch deadlines interrupt running wasm only: a host function that blocks
/// holds the calling thread for as long as it likes (`std::thread::sleep` is a
/// monotonic-clock subscription then `pollable.block`; wasi-libc's `poll` and
/// `nanosleep` end in `wasi:io/poll.poll`). wasmtime-wasi's sync bindings wait in
/// exactly two functions, both redefined here:
///
/// - `poll(list)` answers at once with the pollables that are ready now (what it
///   returns anyway when any is), and traps when none is;
/// - `[method]pollable.block` returns when the pollable is ready now, and traps
///   otherwise.
///
/// "Ready now" polls the readiness future without waiting, twice: a clock
/// subscription of zero length yields to tokio once before it reports ready.
/// `pollable.ready`, the `subscribe-*` functions and everything else stay as
/// wasmtime-wasi defines them.
///
/// The streams' `blocking-*` methods wait only for their stream's readiness, and
/// the only streams a plugin can reach never wait: stdout and stderr are
/// [`CapturedOutput`] (always ready, always room), stdin is closed, and with no
/// preopened directory and no sockets no other stream can be opened.
fn refuse_blocking_wasi(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_IO_POLL)?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, PluginState>, (pollables,): (Vec<Resource<DynPollable>>,)| {
            let table = &mut store.data_mut().table;
            match ready_now(table.poll(pollables)) {
                Some(ready) => Ok((ready?,)),
                None => Err(Blocked { import: "wasi:io/poll.poll" }.into()),
            }
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, PluginState>, (pollable,): (Resource<DynPollable>,)| {
            let table = &mut store.data_mut().table;
            match ready_now(table.block(pollable)) {
                Some(done) => done,
                None => Err(Blocked { import: "wasi:io/poll.[method]pollable.block" }.into()),
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The output of `future` if it completes without waiting: polled at most twice
/// with a no-op waker, inside a tokio context (the clock's pollables are tokio
/// timers).
fn ready_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| {
        let mut future = std::pin::pin!(future);
        (0..2).find_map(|_| wasmtime_wasi::runtime::poll_noop(future.as_mut()))
    })
}

/// Refuse what is not a component before handing it to the compiler, with a
/// message that says what it is instead.
fn check_component_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(b"\0asm") {
        return match bytes.get(4..8) {
            Some([0x0d, 0x00, 0x01, 0x00]) => Ok(()),
            Some([0x01, 0x00, 0x00, 0x00]) => Err(
                "a core WebAssembly module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)"
                    .into(),
            ),
            _ => Err("WebAssembly of an unknown version or layer, not a component".into()),
        };
    }
    let text = std::str::from_utf8(bytes).ok().map(str::trim_start);
    if text.is_some_and(|t| t.starts_with("(component")) {
        return Ok(());
    }
    if bytes.is_empty() {
        return Err("empty file, not a WebAssembly component".into());
    }
    Err("not WebAssembly (no `\\0asm` header)".into())
}

/// Human form of a byte count for messages.
pub(crate) fn human_bytes(bytes: usize) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Enforces [`Limits`] in a store and remembers which limit refused a request,
/// so a trap that follows can be reported as the limit it really was.
pub(crate) struct Limiter {
    limits: Limits,
    /// The limit that refused the last request, if any; cleared before each call.
    pub denied: Option<String>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            self.denied = Some(format!("memory limit of {}", human_bytes(self.limits.memory_bytes)));
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limits.table_elements {
            self.denied = Some(format!("table limit of {} elements", self.limits.table_elements));
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.tables
    }

    fn memories(&self) -> usize {
        self.limits.memories
    }
}

/// Everything a plugin's store holds: WASI state, limits, and what the host
/// imports answer from.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    plugin: Arc<str>,
    config: Arc<BTreeMap<String, String>>,
    catalog: SharedCatalog,
    /// Decision time of the current call (also what the wall clock reads).
    now_ms: Arc<AtomicU64>,
    logs_left: usize,
    pub(crate) logs_dropped: usize,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
}

/// What a store is made from.
pub(crate) struct StoreSpec {
    pub plugin: Arc<str>,
    pub config: Arc<BTreeMap<String, String>>,
    pub catalog: SharedCatalog,
    pub limits: Limits,
    pub wasi: WasiPolicy,
}

impl PluginState {
    /// A fresh state for one store.
    pub(crate) fn new(spec: &StoreSpec) -> PluginState {
        let now_ms = Arc::new(AtomicU64::new(0));
        let stdout = CapturedOutput::new(spec.limits.output_bytes_per_call);
        let stderr = CapturedOutput::new(spec.limits.output_bytes_per_call);
        let mut builder = WasiCtxBuilder::new();
        // Nothing inherited: no preopened directories, no environment, no
        // arguments, stdin closed (stated, not left to the default: a stdin that
        // can wait would make `blocking-read` block). Sockets: no TCP, no UDP, no name lookup, and
        // every address denied should any of them be switched on by mistake.
        builder
            .stdin(ClosedInputStream)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .max_random_size(64 * 1024);
        if spec.wasi.determinism == Determinism::Replayable {
            use wasi_rand::SeedableRng;
            builder
                .wall_clock(DecisionClock(now_ms.clone()))
                .monotonic_clock(SinceStart(Instant::now()))
                .secure_random(wasi_rand::rngs::StdRng::seed_from_u64(spec.wasi.seed))
                .insecure_random(wasi_rand::rngs::StdRng::seed_from_u64(spec.wasi.seed ^ 0x5eed))
                .insecure_random_seed(u128::from(spec.wasi.seed));
        }
        PluginState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: Limiter { limits: spec.limits.clone(), denied: None },
            plugin: spec.plugin.clone(),
            config: spec.config.clone(),
            catalog: spec.catalog.clone(),
            now_ms,
            logs_left: spec.limits.log_records_per_call,
            logs_dropped: 0,
            stdout,
            stderr,
        }
    }

    /// Get ready for a call decided at `now_ms`.
    pub(crate) fn begin_call(&mut self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::Relaxed);
        self.limiter.denied = None;
        self.logs_left = self.limiter.limits.log_records_per_call;
        self.logs_dropped = 0;
    }

    /// Move what the plugin printed during the call into the host's log; returns
    /// the last non-empty line of stderr (a panic message, typically).
    pub(crate) fn flush_output(&mut self, hook: &str) -> Option<String> {
        let mut last_stderr = None;
        for (stream, out) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let (bytes, dropped) = out.take();
            if bytes.is_empty() && dropped == 0 {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                tracing::info!(target: "switchyard::plugin", plugin = %self.plugin, hook, stream, "{line}");
                // Rust's panic hook ends with a "note: run with RUST_BACKTRACE" line;
                // the message above it is what explains the failure.
                if stream == "stderr" && !line.starts_with("note: ") {
                    last_stderr = Some(clip(line.trim(), 512).to_owned());
                }
            }
            if dropped > 0 {
                tracing::warn!(target: "switchyard::plugin", plugin = %self.plugin, hook, stream, dropped, "plugin output over the per-call cap was dropped");
            }
        }
        if self.logs_dropped > 0 {
            tracing::warn!(target: "switchyard::plugin", plugin = %self.plugin, hook, dropped = self.logs_dropped, "plugin log records over the per-call cap were dropped");
        }
        last_stderr
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::switchyard::routing::types::Host for PluginState {}

/// Longest log message kept from a plugin, in bytes.
const MAX_LOG_MESSAGE: usize = 4096;

fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl bindings::switchyard::routing::host::Host for PluginState {
    fn log(&mut self, level: contract::wit::LogLevel, message: String, fields: Vec<(String, String)>) {
        if self.logs_left == 0 {
            self.logs_dropped += 1;
            return;
        }
        self.logs_left -= 1;
        let message = clip(&message, MAX_LOG_MESSAGE);
        let fields: Vec<String> =
            fields.iter().take(16).map(|(k, v)| format!("{}={}", clip(k, 64), clip(v, 256))).collect();
        let fields = fields.join(" ");
        let plugin = &*self.plugin;
        match contract::log_level_from_wit(level) {
            switchyard_contract::LogLevel::Trace => {
                tracing::trace!(target: "switchyard::plugin", plugin, %fields, "{message}")
            }
            switchyard_contract::LogLevel::Debug => {
                tracing::debug!(target: "switchyard::plugin", plugin, %fields, "{message}")
            }
            switchyard_contract::LogLevel::Info => {
                tracing::info!(target: "switchyard::plugin", plugin, %fields, "{message}")
            }
            switchyard_contract::LogLevel::Warn => {
                tracing::warn!(target: "switchyard::plugin", plugin, %fields, "{message}")
            }
            switchyard_contract::LogLevel::Error => {
                tracing::error!(target: "switchyard::plugin", plugin, %fields, "{message}")
            }
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn now_ms(&mut self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    fn names(&mut self, kind: contract::wit::NameKind, first: u32) -> Vec<String> {
        let kind = contract::name_kind_from_wit(kind);
        match self.catalog.read() {
            Ok(catalog) => catalog.table(kind).tail(first).to_vec(),
            Err(poisoned) => poisoned.into_inner().table(kind).tail(first).to_vec(),
        }
    }
}

/// The wall clock of a replayable plugin: the decision time of the current call.
struct DecisionClock(Arc<AtomicU64>);

impl HostWallClock for DecisionClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }
}

/// A monotonic clock that starts at 0 when the instance is made.
struct SinceStart(Instant);

impl HostMonotonicClock for SinceStart {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// A plugin's stdout or stderr: bytes collect here during a call (up to a cap)
/// and the host drains them into its log afterwards.
#[derive(Clone)]
struct CapturedOutput {
    inner: Arc<Mutex<(Vec<u8>, usize)>>,
    /// Set by `push` (under the lock): lets `take` skip the lock after the
    /// usual call that printed nothing.
    written: Arc<AtomicBool>,
    cap: usize,
}

impl CapturedOutput {
    fn new(cap: usize) -> Self {
        CapturedOutput { inner: Arc::new(Mutex::new((Vec::new(), 0))), written: Arc::new(AtomicBool::new(false)), cap }
    }

    /// Append what fits, count the rest as dropped. Never fails: a chatty plugin
    /// loses output, not its decision.
    fn push(&self, bytes: &[u8]) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.cap.saturating_sub(guard.0.len());
        let keep = bytes.len().min(room);
        guard.0.extend_from_slice(&bytes[..keep]);
        guard.1 += bytes.len() - keep;
        self.written.store(true, Ordering::Release);
    }

    /// The bytes written since the last take, and how many were dropped.
    fn take(&self) -> (Vec<u8>, usize) {
        // A plain load first: the usual call printed nothing, and a swap is a
        // locked instruction on every call (two streams, ≈10 ns a call).
        if !self.written.load(Ordering::Relaxed) || !self.written.swap(false, Ordering::Acquire) {
            return (Vec::new(), 0);
        }
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = std::mem::take(&mut guard.0);
        let dropped = std::mem::take(&mut guard.1);
        (bytes, dropped)
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_names_what_the_bytes_are() {
        assert_eq!(check_component_header(b"hello"), Err("not WebAssembly (no `\\0asm` header)".into()));
        assert!(check_component_header(b"\0asm\x01\0\0\0").unwrap_err().starts_with("a core WebAssembly module"));
        assert_eq!(check_component_header(b"\0asm\x0d\0\x01\0"), Ok(()));
        assert_eq!(check_component_header(b"  (component)"), Ok(()));
        assert_eq!(check_component_header(b""), Err("empty file, not a WebAssembly component".into()));
    }

    #[test]
    fn captured_output_caps_and_counts_drops() {
        let out = CapturedOutput::new(4);
        out.push(b"abc");
        out.push(b"def");
        assert_eq!(out.take(), (b"abcd".to_vec(), 2));
        assert_eq!(out.take(), (Vec::new(), 0));
    }
}
