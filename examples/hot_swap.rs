//! Hot-swapping a department's rules in a running service: watch a plugin
//! directory, let a broken build bounce off, swap in a new one, roll back, try a
//! candidate in shadow and promote it — every step in the audit log.
//!
//! ```sh
//! cargo run -p switchyard-host --example hot_swap
//! ```
//!
//! The components come from `plugins/` (built by `switchyard-plugin-artifacts`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use switchyard_host::reload::{AuditAction, ReloadManager, ReloadOptions};
use switchyard_host::runtime::Runtime;
use switchyard_plugin_artifacts::{BILLING, HOSTILE_PANIC};
use switchyard_sdk::fixtures::Fixtures;

fn main() -> anyhow::Result<()> {
    // A plugin directory and an audit file, in a scratch directory.
    let scratch = std::env::temp_dir().join(format!("switchyard-hot-swap-{}", std::process::id()));
    let plugins = scratch.join("plugins");
    std::fs::create_dir_all(&plugins).with_context(|| format!("cannot create {}", plugins.display()))?;
    let audit_file = scratch.join("audit.jsonl");

    // Put the billing department in it: its component and its fixture file.
    let fixtures_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/billing/fixtures.toml");
    std::fs::copy(&fixtures_file, plugins.join("billing.fixtures.toml"))
        .context("failed to copy billing's fixtures")?;
    std::fs::copy(BILLING, plugins.join("billing.wasm")).context("failed to copy the billing component")?;

    // Build the runtime and the reload manager, auditing to a JSON-lines file.
    let runtime = Runtime::builder().cache_dir(scratch.join("compiled")).build()?;
    let reload = ReloadManager::new(runtime, ReloadOptions::default().audit_file(&audit_file))?;

    // Subscribe to reload events, then watch the directory: billing loads as generation 1.
    let events = reload.subscribe();
    let _watcher = reload.watch(&plugins)?;
    println!("watching {}: billing is generation {:?}", plugins.display(), reload.active_generation("billing"));

    // The router asks the department's rules; the answer says which generation decided.
    let rules = reload.rules("billing");
    let fixtures = Fixtures::load(&fixtures_file)?;
    let case = &fixtures.cases()[0];
    let (items, _) = case.build(&mut reload.runtime().catalog().write().unwrap_or_else(|p| p.into_inner()));
    println!("decided by {}", rules.prioritise(&items).source);

    // Ops save a broken build (it panics on the fixtures): it is rejected, billing keeps deciding.
    std::fs::write(plugins.join(".billing.wasm.tmp"), std::fs::read(HOSTILE_PANIC)?)?;
    std::fs::rename(plugins.join(".billing.wasm.tmp"), plugins.join("billing.wasm"))?;
    let event = wait_for(&events, |a| a == AuditAction::Reject)?;
    println!("rejected generation {:?}: {}", event.generation, event.reason.unwrap_or_default());
    println!("still decided by {}", rules.prioritise(&items).source);

    // They save the good build again with a config file beside it: one reload, a new generation.
    std::fs::write(plugins.join("billing.config.toml"), "[values]\ndispute-queue = \"billing-disputes\"\n")?;
    std::fs::write(plugins.join(".billing.wasm.tmp"), std::fs::read(BILLING)?)?;
    std::fs::rename(plugins.join(".billing.wasm.tmp"), plugins.join("billing.wasm"))?;
    let event = wait_for(&events, |a| a == AuditAction::Swap)?;
    println!("swapped to generation {:?} (was {:?})", event.generation, event.previous);

    // Roll back to generation 1 with one call.
    let back = reload.rollback_by("billing", 1, "ops on call")?;
    println!("rolled back: generation {} active = {}", back.generation, back.active);

    // Try a candidate in shadow on live traffic, read the evidence, promote it.
    reload.shadow("billing", &std::fs::read(BILLING)?)?;
    for _ in 0..100 {
        rules.prioritise(&items);
    }
    let report = reload.shadow_report("billing").context("no shadow running")?;
    println!(
        "shadow generation {}: agreed {} of {} prioritise decisions, p99 {:.1} µs",
        report.generation,
        report.prioritise.agreed,
        report.prioritise.decisions,
        report.prioritise.shadow_latency.p99_us
    );
    let promoted = reload.promote("billing")?;
    println!("promoted generation {}", promoted.generation);

    // List the kept generations and show the audit trail.
    for g in reload.generations("billing") {
        println!(
            "  #{} active={} kept={} sha256={}… from {} ({:?})",
            g.generation,
            g.active,
            g.kept,
            &g.sha256[..12],
            g.source,
            g.validation
        );
    }
    println!("audit log ({}):", audit_file.display());
    print!("{}", std::fs::read_to_string(&audit_file)?);
    Ok(())
}

/// The next reload event whose action satisfies `wanted` (30 s at most).
fn wait_for(
    events: &std::sync::mpsc::Receiver<switchyard_host::reload::ReloadEvent>,
    wanted: impl Fn(AuditAction) -> bool,
) -> anyhow::Result<switchyard_host::reload::ReloadEvent> {
    loop {
        let event = events.recv_timeout(Duration::from_secs(30)).context("no reload event within 30 s")?;
        if wanted(event.action) {
            return Ok(event);
        }
    }
}
