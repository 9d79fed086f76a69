//! Hot-reload benchmark (issue 6). Prints, from one run:
//! - the time from a component file written (renamed into the watched
//!   directory) to its generation active, p50/p99 over 30 swaps — the watcher's
//!   200 ms quiet window is part of it by design;
//! - the same through the embedding API (`reload(bytes)`: load, validate, swap);
//! - the decision latency (`prioritise` of 2 items through the department's rule
//!   set) without swaps and during swaps, and their ratio.
//!
//! ```sh
//! cargo bench -p switchyard-host --bench reload
//! ```
//!
//! Not a test: nothing is asserted on time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchyard_host::reload::{AuditAction, DepartmentSetup, ReloadManager, ReloadOptions};
use switchyard_host::runtime::Runtime;
use switchyard_plugin_artifacts::{BILLING, HOSTILE_GARBAGE, HOSTILE_SLOW};
use switchyard_sdk::fixtures::Fixtures;

/// Three components pass these fixtures (see host/runtime/tests/reload.rs).
const FIXTURES: &str = r#"
[[prioritise]]
name = "a billing call is worth at least 7"
items = [
  { queue = "billing", channel = "voice", priority = 3, expect = { at_least = 7 } },
  { queue = "billing", channel = "chat", priority = 3, expect = { at_least = 7 } },
]
"#;

const SWAPS: usize = 30;
const QUIET_PHASE: Duration = Duration::from_secs(3);

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn summary(label: &str, samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(samples, 0.50), percentile(samples, 0.99));
    println!(
        "{label:<44} n={:<8} p50 {:>10.1?}  p99 {:>10.1?}  max {:>10.1?}",
        samples.len(),
        p50,
        p99,
        samples.last().copied().unwrap_or_default()
    );
    (p50, p99)
}

/// Route continuously on another thread until `stop`; the latency of each decision.
fn route(reload: &ReloadManager, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Duration>> {
    let fixtures = Fixtures::parse(FIXTURES, "bench.fixtures.toml").expect("bench fixtures parse");
    let (items, _) =
        fixtures.cases()[0].build(&mut reload.runtime().catalog().write().unwrap_or_else(|p| p.into_inner()));
    let rules = reload.rules("billing");
    std::thread::spawn(move || {
        let mut latencies = Vec::with_capacity(1 << 20);
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let decided = rules.prioritise(&items);
            latencies.push(started.elapsed());
            std::hint::black_box(decided);
        }
        latencies
    })
}

fn main() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path().join("plugins");
    std::fs::create_dir(&dir)?;
    let builds = [std::fs::read(BILLING)?, std::fs::read(HOSTILE_SLOW)?, std::fs::read(HOSTILE_GARBAGE)?];

    let runtime = Runtime::builder().cache_dir(scratch.path().join("compiled")).build()?;
    let reload = ReloadManager::new(runtime, ReloadOptions::default())?;
    std::fs::write(dir.join("billing.fixtures.toml"), FIXTURES)?;
    std::fs::write(dir.join("billing.wasm"), &builds[0])?;
    let events = reload.subscribe();
    let watcher = reload.watch(&dir)?;
    // Warm the compiled cache with every build, so each swap measures the hot path.
    for build in &builds[1..] {
        reload.runtime().load_bytes("warm-up", "warm-up", build, Default::default())?;
    }
    while events.try_recv().is_ok() {}

    // Decisions without swaps.
    let stop = Arc::new(AtomicBool::new(false));
    let router = route(&reload, stop.clone());
    std::thread::sleep(QUIET_PHASE);
    stop.store(true, Ordering::Relaxed);
    let mut quiet = router.join().expect("router thread");

    // Decisions during swaps through the watcher: file written -> generation active.
    let stop = Arc::new(AtomicBool::new(false));
    let router = route(&reload, stop.clone());
    let mut file_to_active = Vec::new();
    for i in 1..=SWAPS {
        let build = &builds[i % builds.len()];
        let tmp = dir.join(".billing.wasm.tmp");
        std::fs::write(&tmp, build)?;
        let written = Instant::now();
        std::fs::rename(&tmp, dir.join("billing.wasm"))?;
        loop {
            let event = events.recv_timeout(Duration::from_secs(60))?;
            if event.action == AuditAction::Swap {
                file_to_active.push(written.elapsed());
                break;
            }
            if event.action == AuditAction::Reject {
                anyhow::bail!("swap {i} rejected: {:?}", event.reason);
            }
        }
    }
    drop(watcher);

    // Swaps through the API: bytes -> generation active.
    reload
        .configure("billing", DepartmentSetup::new().with_fixtures(Fixtures::parse(FIXTURES, "bench.fixtures.toml")?));
    let mut api_to_active = Vec::new();
    for i in 1..=SWAPS {
        let started = Instant::now();
        reload.reload("billing", &builds[i % builds.len()])?;
        api_to_active.push(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let mut during = router.join().expect("router thread");

    println!("hot reload, {SWAPS} swaps each way, 3 builds in turn (compiled cache warm)");
    summary("file written -> active (watcher, 200 ms quiet)", &mut file_to_active);
    summary("reload(bytes) -> active (API)", &mut api_to_active);
    let (q50, q99) = summary("decision latency, no swaps", &mut quiet);
    let (d50, d99) = summary("decision latency, during swaps", &mut during);
    println!(
        "during/without swaps: p50 x{:.2}, p99 x{:.2}",
        d50.as_secs_f64() / q50.as_secs_f64().max(1e-12),
        d99.as_secs_f64() / q99.as_secs_f64().max(1e-12)
    );
    Ok(())
}
