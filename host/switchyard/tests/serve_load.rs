//! Load test of `switchyard serve` (bounded, loopback only): N items posted by a
//! few concurrent clients with the billing plugin active; prints sustained
//! items/s and the p50/p99 latency of `POST /v1/items`. No timed assertions: the
//! figures go in the README. `SWITCHYARD_LOAD_ITEMS` and
//! `SWITCHYARD_LOAD_CLIENTS` change the size (default 5,000 items, 4 clients);
//! `SWITCHYARD_LOAD_TRAFFIC=off` turns the traffic log off, to compare.
//! The same load runs on the embedded store and on PostgreSQL (a server of the
//! test's own, `serve_common::pg`, fsync on), so the two are compared in one run.

mod serve_common;

use std::time::{Duration, Instant};

use serde_json::json;
use serve_common::{Daemon, INTEGRATION, SUPERVISOR, config, fresh_dir};

/// Scenario: 5,000 billing items (with tier, amount and customer so the plugin's
/// prioritise rule has work), no agent logged in, posted by 4 clients over
/// keep-alive connections; every request must be acknowledged (201) and every
/// item must be waiting at the end.
#[test]
fn post_items_under_load_and_report_throughput_and_p99() {
    post_items("serve-load", None);
}

/// The same on PostgreSQL: one node of a cluster.
#[test]
fn post_items_under_load_on_postgresql_and_report_throughput_and_p99() {
    let Some(server) = serve_common::pg::PgServer::start("load") else { return };
    let url = server.database("load");
    post_items("serve-load-pg", Some(&url));
}

fn post_items(name: &str, store: Option<&str>) {
    let items: usize = std::env::var("SWITCHYARD_LOAD_ITEMS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let clients: usize = std::env::var("SWITCHYARD_LOAD_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(4).max(1);
    // `SWITCHYARD_LOAD_TRAFFIC=off` runs without the traffic log, to compare.
    let traffic_off = std::env::var("SWITCHYARD_LOAD_TRAFFIC").is_ok_and(|v| v == "off");
    let dir = fresh_dir(name);
    let store_line = store.map(|url| format!("store = {url:?}\n")).unwrap_or_default();
    let text = config(if traffic_off { "\n[traffic]\nenabled = false\n" } else { "" })
        .replacen("tick_ms = 50\n", &format!("tick_ms = 50\n{store_line}"), 1)
        .replacen(
            "name = \"billing\"\n",
            &format!(
                // The whole second for billing's rules: this measures throughput, and
                // the default budget would send the busiest seconds to the built-in rules.
                "name = \"billing\"\nplugin = {:?}\nrule_budget_ms = 1000\n",
                switchyard_plugin_artifacts::BILLING
            ),
            1,
        );
    let daemon = Daemon::start(&dir, Some(&text));
    assert!(daemon.wait_leader(Duration::from_secs(30)), "the node leads");
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let client = daemon.client(Some(INTEGRATION));
            let share = items / clients + usize::from(c < items % clients);
            std::thread::spawn(move || {
                let mut latencies = Vec::with_capacity(share);
                for n in 0..share {
                    let channel = if n % 3 == 0 { "chat" } else { "voice" };
                    let tier = ["standard", "silver", "gold", "platinum"][n % 4];
                    let body = json!({
                        "department": "billing", "queue": "billing-general", "channel": channel,
                        "tier": tier,
                        "attributes": { "amount": format!("{}", (n * 37) % 2_000), "ref": format!("c{c}-{n}") },
                        "customer": format!("cust-{}", n % 500),
                    });
                    let t = Instant::now();
                    let (status, reply) = client.post("/v1/items", &body);
                    latencies.push(t.elapsed());
                    assert_eq!(status, 201, "{reply}");
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
    let (status, queue) = daemon.client(Some(SUPERVISOR)).get("/v1/queues/billing-general");
    assert_eq!(status, 200);
    assert_eq!(queue["live"]["waiting"], items);
    let (_, plugins) = daemon.client(Some(SUPERVISOR)).get("/v1/plugins");
    let calls = &plugins[0]["current"]["stats"]["calls"]["prioritise"];
    assert_eq!(calls, items, "every item was prioritised by the plugin");
    let traffic_bytes: u64 = std::fs::read_dir(dir.join("data/traffic"))
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    println!(
        "serve load ({} store): {items} items, {clients} clients, {:.2} s: {:.0} items/s; POST /v1/items latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} build); traffic log {traffic_bytes} bytes",
        if store.is_some() { "PostgreSQL" } else { "embedded" },
        elapsed.as_secs_f64(),
        items as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
}
