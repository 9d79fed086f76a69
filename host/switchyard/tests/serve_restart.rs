//! Restart time of `switchyard serve` after a long history (a benchmark driver,
//! `#[ignore]`d: it wants the release binary and several minutes).
//!
//! ```text
//! cargo test --release -p switchyard --test serve_restart -- --ignored --nocapture
//! ```
//!
//! 64 clients post `SWITCHYARD_RESTART_ITEMS` billing items (default
//! 1,000,000; the billing plugin prioritises each) and withdraw all but one in
//! 50, so the history is two records per item while the live state stays a
//! busy day's (20,000 waiting at the default). Then:
//! - **SIGKILL** and restart: the latest snapshot plus the records after it;
//! - **SIGTERM** and restart: the snapshot taken at the stop, nothing to replay;
//! - the **baseline** in the same run: a daemon with snapshots off
//!   (`snapshot_every` at its maximum) and `SWITCHYARD_RESTART_BASELINE_ITEMS`
//!   items (default 100,000), killed and restarted: whole-journal replay.
//!
//! Restart time is from spawning the binary to its first answered `/readyz`.
//! It prints figures; it asserts only outcomes (every open item is back).

#[path = "serve_common/mod.rs"]
mod serve_common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use serve_common::{Daemon, INTEGRATION, config, fresh_dir};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn daemon_config(snapshot_every: u64) -> String {
    config("").replacen("tick_ms = 50\n", &format!("tick_ms = 50\nsnapshot_every = {snapshot_every}\n"), 1).replacen(
        "name = \"billing\"\n",
        &format!("name = \"billing\"\nplugin = {:?}\nrule_budget_ms = 1000\n", switchyard_plugin_artifacts::BILLING),
        1,
    )
}

/// Post `items` items from 64 clients, withdrawing all but one in 50; returns
/// (items left waiting, seconds taken).
fn fill(daemon: &Daemon, items: usize) -> (usize, f64) {
    const CLIENTS: usize = 64;
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = daemon.client(Some(INTEGRATION));
            let share = items / CLIENTS + usize::from(c < items % CLIENTS);
            std::thread::spawn(move || {
                let mut kept = 0;
                for n in 0..share {
                    let tier = ["standard", "silver", "gold", "platinum"][n % 4];
                    let body = json!({
                        "department": "billing", "queue": "billing-general",
                        "tier": tier,
                        "attributes": { "amount": format!("{}", (n * 37) % 2_000) },
                        "customer": format!("cust-{}", (c * 7919 + n) % 5_000),
                    });
                    let (status, reply) = client.post("/v1/items", &body);
                    assert_eq!(status, 201, "{reply}");
                    if (c * share + n).is_multiple_of(50) {
                        kept += 1;
                        continue;
                    }
                    let id = reply["id"].as_u64().unwrap();
                    let (status, reply) = client.delete(&format!("/v1/items/{id}"));
                    assert_eq!(status, 200, "{reply}");
                }
                kept
            })
        })
        .collect();
    let kept = workers.into_iter().map(|w| w.join().unwrap()).sum();
    (kept, started.elapsed().as_secs_f64())
}

/// Start the daemon on `dir` and wait for `/readyz`; returns it and the seconds taken.
fn restart(dir: &Path) -> (Daemon, f64) {
    let started = Instant::now();
    let daemon = Daemon::start(dir, None);
    let client = daemon.client(None);
    loop {
        if client.get("/readyz").0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (daemon, started.elapsed().as_secs_f64())
}

fn waiting(daemon: &Daemon) -> u64 {
    let (_, queue) = daemon.supervisor().get("/v1/queues/billing-general");
    queue["live"]["waiting"].as_u64().unwrap_or(0)
}

fn journal_mib(dir: &Path) -> f64 {
    std::fs::metadata(dir.join("data/journal.redb")).map(|m| m.len() as f64 / (1 << 20) as f64).unwrap_or(0.0)
}

#[test]
#[ignore = "benchmark driver: release binary, minutes; run by hand (see the module docs)"]
fn restart_after_a_long_history() {
    let items = env_usize("SWITCHYARD_RESTART_ITEMS", 1_000_000);
    let baseline_items = env_usize("SWITCHYARD_RESTART_BASELINE_ITEMS", 100_000);

    // Baseline: no snapshots, whole-journal replay.
    let dir = fresh_dir("serve-restart-baseline");
    let mut daemon = Daemon::start(&dir, Some(&daemon_config(100_000_000)));
    let (kept, fill_s) = fill(&daemon, baseline_items);
    daemon.kill();
    let (daemon_again, baseline_s) = restart(&dir);
    assert_eq!(waiting(&daemon_again), kept as u64);
    let (_, ready) = daemon_again.admin().get("/readyz");
    let baseline_records = ready["recovered_records"].as_u64().unwrap_or(0);
    drop(daemon_again);
    println!(
        "baseline (no snapshots): {baseline_items} items in {fill_s:.1} s; {baseline_records} records; restart after SIGKILL {baseline_s:.2} s ({:.0} records/s replayed); journal {:.1} MiB",
        baseline_records as f64 / baseline_s,
        journal_mib(&dir)
    );

    // With snapshots (the default every 100,000 records).
    let dir = fresh_dir("serve-restart");
    let mut daemon = Daemon::start(&dir, Some(&daemon_config(100_000)));
    let (kept, fill_s) = fill(&daemon, items);
    println!(
        "{items} items posted (all but {kept} withdrawn) in {fill_s:.1} s: {:.0} requests/s",
        2.0 * items as f64 / fill_s
    );
    daemon.kill();
    let (mut daemon, killed_s) = restart(&dir);
    assert_eq!(waiting(&daemon), kept as u64, "every open item is back after the SIGKILL");
    let (_, ready) = daemon.admin().get("/readyz");
    println!(
        "restart after SIGKILL: {killed_s:.2} s (snapshot covers {}, {} replayed after it, {} records in all); journal {:.1} MiB",
        ready["snapshot_covers"],
        ready["replayed_records"],
        ready["recovered_records"],
        journal_mib(&dir)
    );
    assert!(daemon.terminate(), "SIGTERM ends the daemon cleanly");
    let (daemon, stopped_s) = restart(&dir);
    assert_eq!(waiting(&daemon), kept as u64, "every open item is back after the SIGTERM");
    let (_, ready) = daemon.admin().get("/readyz");
    assert_eq!(ready["replayed_records"], 0, "the stop took a snapshot of everything: {ready}");
    println!(
        "restart after SIGTERM: {stopped_s:.2} s (snapshot covers {}); journal {:.1} MiB",
        ready["snapshot_covers"],
        journal_mib(&dir)
    );
    println!(
        "whole-journal replay of {items} items would take ≈{:.1} s at the baseline's rate",
        baseline_s * items as f64 / baseline_items.max(1) as f64
    );
}
