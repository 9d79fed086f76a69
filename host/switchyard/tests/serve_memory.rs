//! What agents cost the daemon in memory (issue 13: 20 agents switching state
//! once took RSS from 52 MB to 521 MB, because statistics intervals were sized
//! to every half hour since 1970). Ignored in the normal suite: it wants the
//! release binary and prints figures for the README.
//!
//! `cargo test --release -p switchyard --test serve_memory -- --ignored --nocapture`

mod serve_common;

use serde_json::json;
use serve_common::{ADMIN, Daemon, config, fresh_dir};

/// Resident set size of process `pid`, KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Scenario: an empty daemon; 500 agents are registered and each is switched
/// available → away → available → offline, with one item per queue waiting so
/// the queues' statistics are touched too. The daemon's RSS grows by less than
/// 50 MB (it printed +11.4 GB for this before the fix).
#[test]
#[ignore = "release-binary memory figure; run with --ignored --nocapture"]
fn five_hundred_agents_switching_state_cost_bytes_not_megabytes() {
    let agents: usize = std::env::var("SWITCHYARD_MEMORY_AGENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let dir = fresh_dir("serve-memory");
    let daemon = Daemon::start(&dir, Some(&config("")));
    let admin = daemon.client(Some(ADMIN));
    // Warm the daemon up (allocator arenas, first request paths) before the baseline.
    for _ in 0..20 {
        assert_eq!(admin.get("/v1/queues").0, 200);
    }
    let empty = rss_kib(daemon.pid());
    for n in 0..agents {
        let name = format!("agent-{n}");
        let skills = json!({ "skills": { "billing": 1 + n % 9, "disputes": 1 + n % 5, "claims": 1 + n % 7 } });
        assert_eq!(admin.put(&format!("/v1/agents/{name}"), &skills).0, 201);
        for state in ["available", "away", "available", "offline"] {
            let (status, reply) = admin.post(&format!("/v1/agents/{name}/state"), &json!({ "state": state }));
            assert_eq!(status, 200, "{reply}");
        }
    }
    for queue in [("billing", "billing-general"), ("billing", "billing-disputes"), ("claims", "claims")] {
        let body = json!({ "department": queue.0, "queue": queue.1 });
        assert_eq!(admin.post("/v1/items", &body).0, 201);
    }
    let after = rss_kib(daemon.pid());
    let grown_mib = after.saturating_sub(empty) as f64 / 1024.0;
    println!(
        "serve memory: empty daemon {:.1} MiB; after {agents} agents registered and switched 4 times each: {:.1} MiB (+{grown_mib:.1} MiB, {:.1} KiB per agent)",
        empty as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(empty) as f64 / agents.max(1) as f64,
    );
    assert!(grown_mib < 50.0, "{agents} agents cost {grown_mib:.1} MiB");
}
