//! Crash test of `switchyard serve`: SIGKILL while items are being posted, then a
//! restart on the same data directory — one test, run against both stores
//! (the embedded one and PostgreSQL).

mod serve_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use serve_common::{ADMIN, Daemon, INTEGRATION, SUPERVISOR, config, fresh_dir};

/// Scenario: ann completes one item and has a second one offered when four
/// clients start posting items (each with a unique `ref`) as fast as they can;
/// the daemon is SIGKILLed mid-stream. After a restart on the same data every
/// acknowledged item is there exactly once, under the id it was acknowledged
/// with: the completed one completed, the offered one back in its queue or
/// offered again, the rest waiting. No `ref` appears twice.
#[test]
fn every_acknowledged_item_survives_a_sigkill_exactly_once_embedded() {
    sigkill_and_restart("serve-crash", None);
}

/// The same on PostgreSQL: one node of a cluster, restarted on the same database.
#[test]
fn every_acknowledged_item_survives_a_sigkill_exactly_once_postgresql() {
    let Some(server) = serve_common::pg::PgServer::start("crash") else { return };
    let url = server.database("crash");
    sigkill_and_restart("serve-crash-pg", Some(&url));
}

fn sigkill_and_restart(name: &str, store: Option<&str>) {
    let dir = fresh_dir(name);
    let store = store.map(|url| format!("store = {url:?}\n")).unwrap_or_default();
    // Snapshots every 100 records: the kill lands after several, so recovery
    // is snapshot + tail, not the whole journal.
    let text =
        config("").replacen("tick_ms = 50\n", &format!("tick_ms = 50\nsnapshot_every = 100\n{store}"), 1).replacen(
            "name = \"billing\"\n",
            &format!("name = \"billing\"\nplugin = {:?}\n", switchyard_plugin_artifacts::BILLING),
            1,
        );
    let mut daemon = Daemon::start(&dir, Some(&text));
    assert!(daemon.wait_leader(Duration::from_secs(30)), "the node leads");
    let admin = daemon.client(Some(ADMIN));
    let gateway = daemon.client(Some(INTEGRATION));
    assert_eq!(admin.put("/v1/agents/ann", &json!({ "skills": { "billing": 5 } })).0, 201);
    let agent = daemon.agent_client("ann");
    assert_eq!(agent.post("/v1/agents/ann/state", &json!({ "state": "available" })).0, 200);
    let post = |reference: &str| {
        gateway.post(
            "/v1/items",
            &json!({ "department": "billing", "queue": "billing-general", "attributes": { "ref": reference } }),
        )
    };
    assert_eq!(post("done").1["status"], "offered");
    assert_eq!(agent.post_empty("/v1/offers/1/accept").0, 200);
    assert_eq!(agent.post("/v1/items/1/complete", &json!({ "resolved": true })).0, 200);
    assert_eq!(post("pending-offer").1["status"], "offered");

    // Four clients post until the daemon dies; each records what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let posted = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let client = daemon.client(Some(INTEGRATION));
            let (stop, posted) = (stop.clone(), posted.clone());
            std::thread::spawn(move || {
                let mut acked: Vec<(u64, String)> = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let reference = format!("c{c}-{n}");
                    let body = json!({ "department": "billing", "queue": "billing-general", "attributes": { "ref": reference } });
                    match client.try_post("/v1/items", &body) {
                        Ok((201, reply)) => {
                            acked.push((reply["id"].as_u64().unwrap(), reference));
                            posted.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((status, reply)) => panic!("unexpected {status}: {reply}"),
                        Err(_) => break, // connection refused or reset: the daemon is gone
                    }
                }
                acked
            })
        })
        .collect();
    // Kill once a good number of items went through (bounded wait).
    for _ in 0..600 {
        if posted.load(Ordering::Relaxed) >= 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.kill();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(u64, String)> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert!(acked.len() >= 50, "only {} items were acknowledged before the kill", acked.len());

    // Restart on the same data, with the billing plugin gone: recovery hands
    // back the journaled decisions and never needs it. Read every item by id
    // (ids are dense from 1).
    let without_plugin = text.replacen(
        &format!("plugin = {:?}\n", switchyard_plugin_artifacts::BILLING),
        "plugin = \"gone/billing.wasm\"\nrequire_plugin = false\n",
        1,
    );
    assert_ne!(without_plugin, text);
    let mut daemon = Daemon::start(&dir, Some(&without_plugin));
    assert!(daemon.wait_leader(Duration::from_secs(30)), "the node leads after the restart");
    let (_, ready) = daemon.admin().get("/readyz");
    let snapshot_covered = ready["snapshot_covers"].as_u64().unwrap_or(0);
    assert!(snapshot_covered >= 100, "a snapshot was taken under load: {ready}");
    let agent = daemon.client(Some(SUPERVISOR));
    let mut found: BTreeMap<u64, (String, String)> = BTreeMap::new();
    for (id, item) in serve_common::all_items(&agent) {
        if item["status"] == "queued" {
            // Prioritised by the plugin live; replay (snapshot or tail) kept that.
            assert_eq!(item["explanation"]["prioritised_by"]["kind"], "plugin", "item {id}: {item}");
        }
        found.insert(id, (item["status"].as_str().unwrap_or("").to_owned(), serve_common::reference(&item)));
    }
    assert_eq!(found.get(&1).map(|f| f.0.as_str()), Some("completed"));
    let pending = found.get(&2).cloned();
    assert!(
        matches!(pending.as_ref().map(|p| (p.0.as_str(), p.1.as_str())), Some(("queued" | "offered", "pending-offer"))),
        "{pending:?}"
    );
    let mut by_ref: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (id, (_, reference)) in &found {
        if *id > 2 {
            by_ref.entry(reference.as_str()).or_default().push(*id);
        }
    }
    let duplicated: Vec<_> = by_ref.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(duplicated.is_empty(), "duplicated items: {duplicated:?}");
    for (id, reference) in &acked {
        assert_eq!(by_ref.get(reference.as_str()), Some(&vec![*id]), "acknowledged item {id} ({reference})");
        assert!(matches!(found[id].0.as_str(), "queued" | "offered"), "item {id}: {:?}", found[id]);
    }
    // At most one journaled-but-unacknowledged item per client (the one in flight).
    let extra = found.len() - 2 - acked.len();
    assert!(extra <= 4, "{extra} items were never acknowledged");
    let (_, queue) = agent.get("/v1/queues/billing-general");
    let live = &queue["live"];
    assert_eq!(live["waiting"].as_u64().unwrap() + live["offered"].as_u64().unwrap(), found.len() as u64 - 1);
    eprintln!("{} items acknowledged before the kill, {} found after the restart", acked.len(), found.len() - 2);

    // A clean stop snapshots whatever the restart replayed and one more item:
    // the next start replays nothing and shows the same queue.
    eprintln!("the restart replayed {} records after the snapshot", ready["replayed_records"]);
    let (status, _) = daemon.gateway().post(
        "/v1/items",
        &json!({ "department": "billing", "queue": "billing-general", "attributes": { "ref": "after" } }),
    );
    assert_eq!(status, 201);
    let waiting_offered = live["waiting"].as_u64().unwrap() + live["offered"].as_u64().unwrap() + 1;
    assert!(daemon.terminate(), "SIGTERM ends the daemon cleanly");
    let daemon = Daemon::start(&dir, None);
    assert!(daemon.wait_leader(Duration::from_secs(30)), "the node leads after the clean stop");
    let (_, ready) = daemon.admin().get("/readyz");
    assert_eq!(ready["replayed_records"], 0, "{ready}");
    let (_, queue) = daemon.supervisor().get("/v1/queues/billing-general");
    assert_eq!(
        queue["live"]["waiting"].as_u64().unwrap() + queue["live"]["offered"].as_u64().unwrap(),
        waiting_offered
    );
}
