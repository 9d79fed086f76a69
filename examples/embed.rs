//! Embedding Switchyard in a Rust service: build a runtime, register a
//! department's rule plugin, ask for decisions (sync and async), read its stats.
//!
//! Run with a built plugin component, e.g.:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 -p billing
//! cargo run -p switchyard-host --example embed -- target/wasm32-wasip2/release/billing.wasm
//! ```

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use switchyard_host::runtime::{DepartmentConfig, Runtime};
use switchyard_host::sandbox::Limits;
use switchyard_sdk::{CandidateTable, Catalog, Channel, ItemBatch, NewCandidate, NewItem, SkillId, SkillReq, Tier};

fn main() -> anyhow::Result<()> {
    // Which component to load: the first argument, or the billing plugin's release build.
    let plugin = std::env::args().nth(1).unwrap_or_else(|| "target/wasm32-wasip2/release/billing.wasm".to_owned());

    // The host's interned names (skills, queues, attribute keys); the router shares
    // this catalog with the plugins, which read it through `host.names`.
    let mut names = Catalog::default();
    let billing_queue = names.queues.intern("billing");
    names.queues.intern("billing-disputes");
    let billing_skill = names.skills.intern("billing");
    let amount = names.attributes.intern("amount");
    let catalog = Arc::new(RwLock::new(names));

    // Build the runtime: one engine, safe default limits (here a 20 ms deadline),
    // and an on-disk cache so the next start skips compiling.
    let runtime = Runtime::builder()
        .limits(Limits { deadline: Duration::from_millis(20), ..Limits::default() })
        .cache_dir(std::env::temp_dir().join("switchyard-embed-cache"))
        .catalog(catalog)
        .build()?;

    // Register the billing department's plugin with its read-only configuration.
    let report = runtime
        .register_file("billing", &plugin, DepartmentConfig::new().with("dispute-threshold", "500"))
        .with_context(|| format!("failed to load plugin {plugin}"))?;
    println!(
        "loaded {} generation {} for billing: hooks {:?}, from cache: {}, compile {:?}",
        report.plugin, report.generation, report.hooks, report.cache_hit, report.compile_time
    );

    // Ask for priorities for two new calls (synchronously, on this thread).
    let mut items = ItemBatch::new(1_767_225_600_000);
    items.push(NewItem {
        id: 1,
        channel: Some(Channel::Voice),
        queue: billing_queue,
        tier: Tier::Gold,
        contacts: 2,
        value: 900.0,
        skills: &[SkillReq { skill: SkillId(billing_skill), level: 3 }],
        attributes: &[(amount, "900")],
        ..Default::default()
    });
    items.push(NewItem { id: 2, queue: billing_queue, ..Default::default() });
    let rules = runtime.rules("billing");
    let decided = rules.prioritise(&items);
    println!("prioritise by {}: {:?}", decided.source, decided.value);

    // Ask which of two agents should take item 1, from async code: the plugin call
    // runs on a blocking thread, off the executor.
    let mut agents = CandidateTable::new(vec![billing_skill]);
    agents.push(NewCandidate { id: 10, proficiency: &[7], idle_ms: 30_000, ..Default::default() });
    agents.push(NewCandidate { id: 11, proficiency: &[2], idle_ms: 90_000, ..Default::default() });
    let mut one = ItemBatch::new(items.now_ms);
    one.push(NewItem {
        id: 1,
        queue: billing_queue,
        skills: &[SkillReq { skill: SkillId(billing_skill), level: 3 }],
        ..Default::default()
    });
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let matched = tokio.block_on(runtime.match_agents_async("billing", one, agents));
    println!("match by {}: best candidate {:?}", matched.source, matched.value.best());

    // Read the plugin's statistics: calls, failures by kind, latency, breaker.
    if let Some(stats) = runtime.stats("billing") {
        println!(
            "stats: {} calls, {} failures, p50 {:?}, p99 {:?}, breaker {:?}",
            stats.calls.total(),
            stats.failures.total(),
            stats.latency.p50(),
            stats.latency.p99(),
            stats.breaker
        );
    }
    Ok(())
}
