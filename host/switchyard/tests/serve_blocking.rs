//! `switchyard serve` with a plugin that blocks: every decision it is asked for
//! falls back to the built-in rule at once, the daemon keeps answering, and it
//! comes back after a SIGKILL with the plugin and the items.

mod serve_common;

use serde_json::{Value, json};
use serve_common::{Daemon, config, fresh_dir};

/// The test config: billing's plugin is hostile-block (from the config file:
/// an upload would be refused by its smoke call), configured to sleep 10 s in
/// `prioritise` (hostile-block reads `mode` through `host.config`).
fn sleeping_billing_config() -> String {
    config("").replacen(
        "name = \"billing\"\n",
        &format!(
            "name = \"billing\"\nplugin = {:?}\nconfig = {{ mode = \"sleep\" }}\n",
            switchyard_plugin_artifacts::HOSTILE_BLOCK
        ),
        1,
    )
}

fn item(reference: &str) -> Value {
    json!({ "department": "billing", "queue": "billing-general", "attributes": { "ref": reference } })
}

/// The reason of a decision whose plugin call trapped on the blocking import.
const BLOCKED: &str = "plugin `hostile_block` trapped in prioritise: called wasi:io/poll.[method]pollable.block on a pollable \
                       that is not ready: rule plugins may not block";

/// Whether `reason` is billing's breaker refusing a call once at least five
/// blocked calls in a row opened it. With four clients the plugin is asked
/// concurrently (outside the daemon's lock), so calls admitted while the fifth
/// failure was being counted fail too: the count it reports may be higher.
fn breaker_open(reason: &str) -> bool {
    reason
        .strip_prefix("plugin `hostile_block`: circuit breaker open after ")
        .and_then(|rest| rest.strip_suffix(" consecutive failures"))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n >= 5)
}

/// Check a created item was prioritised by the built-in rule instead of
/// billing's plugin; returns the reason.
fn fell_back(status: u16, created: &Value) -> String {
    assert_eq!(status, 201, "{created}");
    let by = &created["why"]["prioritised_by"];
    assert_eq!(by["kind"], "fallback", "{created}");
    assert_eq!(by["plugin"], "hostile_block", "{created}");
    by["reason"].as_str().unwrap_or_default().to_owned()
}

/// The value of the sample `series` (name and labels) in a Prometheus text page.
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{metrics}"))
}

/// Scenario: billing runs hostile-block, whose department config makes it call
/// `std::thread::sleep(10 s)` in `prioritise`; uploading it again is refused by
/// the upload's smoke call. Items posted to billing
/// (four clients at once) are created with the built-in rule's decision and the
/// reason naming the blocking import; health, readiness and the queues answer
/// meanwhile. The daemon is SIGKILLed and restarted on the same data: it listens
/// again, the uploaded plugin is billing's again, and every item is there,
/// waiting.
#[test]
fn a_plugin_that_sleeps_costs_a_fallback_not_the_daemon() {
    let dir = fresh_dir("serve-blocking");
    let mut daemon = Daemon::start(&dir, Some(&sleeping_billing_config()));
    let admin = daemon.admin();
    let agent = daemon.gateway();

    let bytes = std::fs::read(switchyard_plugin_artifacts::HOSTILE_BLOCK).unwrap();
    let (status, refused) = admin.post_bytes("/v1/plugins/billing", &bytes);
    assert_eq!((status, refused["field"].as_str()), (422, Some("body")), "{refused}");
    assert!(
        refused["error"].as_str().is_some_and(|e| e.contains("smoke call of `prioritise` on one plain item failed")
            && e.contains("rule plugins may not block")),
        "{refused}"
    );

    let (status, first) = agent.post("/v1/items", &item("first"));
    assert_eq!(fell_back(status, &first), BLOCKED);

    let clients: Vec<_> = (0..4)
        .map(|c| {
            let agent = daemon.gateway();
            std::thread::spawn(move || {
                (0..3)
                    .map(|n| {
                        let (status, created) = agent.post("/v1/items", &item(&format!("c{c}-{n}")));
                        let reason = fell_back(status, &created);
                        assert!(reason == BLOCKED || breaker_open(&reason), "{reason}");
                        created["id"].as_u64().unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    assert_eq!(daemon.client(None).get("/readyz").0, 200);
    let (status, queues) = agent.get("/v1/queues");
    assert_eq!(status, 200, "{queues}");
    let mut ids: Vec<u64> = clients.into_iter().flat_map(|c| c.join().expect("every post fell back")).collect();
    ids.push(first["id"].as_u64().unwrap());
    ids.sort_unstable();
    assert_eq!(ids, (1..=13).collect::<Vec<u64>>());

    // Every decision is counted as a fallback: a trap for each call the plugin
    // was given, the breaker's refusals once five of them in a row had failed.
    let (status, metrics) = daemon.client(None).get_text("/metrics");
    assert_eq!(status, 200);
    let trapped = sample(&metrics, "switchyard_plugin_fallbacks_total{department=\"billing\",kind=\"trap\"}");
    let refused = sample(&metrics, "switchyard_plugin_fallbacks_total{department=\"billing\",kind=\"breaker-open\"}");
    assert_eq!(trapped + refused, 13, "{metrics}");
    assert!(trapped >= 5, "{metrics}");

    daemon.kill();
    let daemon = Daemon::start(&dir, None);
    let agent = daemon.gateway();
    assert_eq!(daemon.client(None).get("/readyz").0, 200);
    for id in ids {
        let (status, found) = agent.get(&format!("/v1/items/{id}"));
        assert_eq!(status, 200, "item {id}: {found}");
        assert_eq!(found["status"], "queued", "item {id}: {found}");
    }
    assert_eq!(daemon.supervisor().get("/v1/plugins").1[0]["current"]["generation"], 1);
    // The restored plugin decides (and falls back) again. Replay took the
    // journal's decisions without calling it, so this is its first call since
    // the restart (a trap), or the breaker's refusal if it opens early.
    let (status, after) = agent.post("/v1/items", &item("after-restart"));
    let reason = fell_back(status, &after);
    assert!(reason == BLOCKED || breaker_open(&reason), "{reason}");
    assert_eq!(after["id"], 14);
}
