//! Several `switchyard serve` nodes on one PostgreSQL store (issue 17): the
//! leader is SIGKILLed under load and a standby takes over; a leader cut off
//! from the database is fenced and rejoins as a standby.
//!
//! Each test starts its own PostgreSQL server (`serve_common::pg`) and the
//! real binary as separate processes on loopback. Clients behave as the
//! README tells them to: any node for reads; a standby's 503 names the leader
//! and the write is sent there; a write whose answer was lost (the node died
//! under it) is not sent again, since it may have been journaled.

mod serve_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serve_common::pg::PgServer;
use serve_common::{ADMIN, Client, Daemon, INTEGRATION, SUPERVISOR, config, fresh_dir};

/// A node's config: the tests' departments and tokens, the store, and the
/// node's name and lease check (`None`: the default, 250 ms).
fn node_config(url: &str, node: &str, lease_check_ms: Option<u64>) -> String {
    let text = config("").replacen("tick_ms = 50\n", &format!("tick_ms = 50\nstore = {url:?}\n"), 1);
    let lease = lease_check_ms.map(|ms| format!("lease_check_ms = {ms}\n")).unwrap_or_default();
    format!("{text}\n[cluster]\nnode = {node:?}\n{lease}")
}

fn start_node(name: &str, url: &str, node: &str, lease_check_ms: Option<u64>) -> Daemon {
    let dir = fresh_dir(name);
    Daemon::start(&dir, Some(&node_config(url, node, lease_check_ms)))
}

/// `/readyz` of `base`: (status, body); status 0 when it does not answer.
fn readiness(base: &str) -> (u16, Value) {
    Client::detached(None).at(base).try_send("get", "/readyz", None).unwrap_or((0, Value::Null))
}

/// How a write ended for the client.
#[derive(Debug)]
enum Sent {
    /// The node that took it answered.
    Answered(u16, Value),
    /// The connection failed under it: it may or may not have been journaled.
    Lost,
}

/// Send a request the way the README tells clients to: to `nodes[first]`,
/// following a standby's 503 to the leader it names; when a node does not
/// answer, the next one (only for a request that was never received: a
/// connection refused). Bounded: gives up after 15 s.
fn send(client: &Client, nodes: &[String], first: usize, method: &str, path: &str, body: Option<&Value>) -> Sent {
    let started = Instant::now();
    let mut base = nodes[first % nodes.len()].clone();
    let mut attempt = first;
    while started.elapsed() < Duration::from_secs(15) {
        match client.at(&base).try_send(method, path, body) {
            Ok((503, reply)) if reply["role"] == "standby" => {
                // Refused without being applied: safe to send to the leader.
                match reply["leader"].as_str() {
                    Some(leader) if leader != base => base = leader.to_owned(),
                    _ => {
                        attempt += 1;
                        base = nodes[attempt % nodes.len()].clone();
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
            Ok((status, reply)) => return Sent::Answered(status, reply),
            Err(e) if e.contains("onnection refused") => {
                attempt += 1;
                base = nodes[attempt % nodes.len()].clone();
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) if method == "get" => {
                attempt += 1;
                base = nodes[attempt % nodes.len()].clone();
            }
            Err(_) => return Sent::Lost,
        }
    }
    Sent::Lost
}

/// Every item the node knows, by id: (status, `ref` attribute).
fn all_items(client: &Client) -> BTreeMap<u64, (String, String)> {
    serve_common::all_items(client)
        .into_iter()
        .map(|(id, item)| (id, (item["status"].as_str().unwrap_or("").to_owned(), serve_common::reference(&item))))
        .collect()
}

/// Scenario: three nodes, the billing plugin uploaded through a standby (and
/// so to the leader), four agents accepting and completing through all three
/// nodes while three gateways post items through all three. The leader is
/// SIGKILLed mid-load. A standby leads within 5 s; every acknowledged item is
/// there exactly once under its id; no item was accepted by two agents, and no
/// item sits on two desktops; the plugin is active on the new leader; the
/// other standby follows the new leader.
#[test]
fn a_standby_takes_over_within_five_seconds_and_nothing_acknowledged_is_lost() {
    let Some(server) = PgServer::start("cluster-failover") else { return };
    let url = server.database("failover");
    let mut first = start_node("cluster-n1", &url, "n1", None);
    assert!(first.wait_leader(Duration::from_secs(30)), "the first node leads");
    let others = [start_node("cluster-n2", &url, "n2", None), start_node("cluster-n3", &url, "n3", None)];
    for node in &others {
        assert!(node.wait_role("standby", Duration::from_secs(30)), "{} stands by", node.base);
    }
    let nodes: Vec<String> = [&first].into_iter().chain(others.iter()).map(|d| d.base.clone()).collect();

    // The plugin, sent to a standby: it names the leader, which takes it.
    let admin = first.client(Some(ADMIN));
    let wasm = std::fs::read(switchyard_plugin_artifacts::BILLING).unwrap();
    let (status, refused) = admin.at(&nodes[1]).try_post_bytes("/v1/plugins/billing", &wasm).unwrap();
    assert_eq!((status, refused["leader"].as_str()), (503, Some(nodes[0].as_str())), "{refused}");
    let (status, uploaded) = admin.at(&nodes[0]).post_bytes("/v1/plugins/billing", &wasm);
    assert_eq!(status, 201, "{uploaded}");
    let generation = uploaded["generation"].as_u64().expect("a generation");

    let agents = ["a1", "a2", "a3", "a4"];
    for (n, agent) in agents.iter().enumerate() {
        let body = json!({ "skills": { "billing": 5 } });
        assert!(matches!(
            send(&admin, &nodes, n, "put", &format!("/v1/agents/{agent}"), Some(&body)),
            Sent::Answered(201, _)
        ));
    }
    let agent_clients: Vec<Client> = agents
        .iter()
        .map(|agent| {
            let (status, reply) = admin.at(&nodes[0]).post_empty(&format!("/v1/agents/{agent}/token"));
            assert_eq!(status, 201, "{reply}");
            let client = Client::detached(reply["token"].as_str());
            let body = json!({ "state": "available" });
            assert!(matches!(
                send(&client, &nodes, 2, "post", &format!("/v1/agents/{agent}/state"), Some(&body)),
                Sent::Answered(200, _)
            ));
            client
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let gateways: Vec<_> = (0..3)
        .map(|g| {
            let (nodes, stop, acknowledged) = (nodes.clone(), stop.clone(), acknowledged.clone());
            let client = Client::detached(Some(INTEGRATION));
            std::thread::spawn(move || {
                let (mut acked, mut lost) = (Vec::new(), Vec::new());
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let reference = format!("g{g}-{n}");
                    let body = json!({ "department": "billing", "queue": "billing-general", "attributes": { "ref": reference } });
                    match send(&client, &nodes, g, "post", "/v1/items", Some(&body)) {
                        Sent::Answered(201, reply) => {
                            acked.push((reply["id"].as_u64().expect("an id"), reference));
                            acknowledged.fetch_add(1, Ordering::Relaxed);
                        }
                        Sent::Answered(status, reply) => lost.push(format!("{reference}: {status} {reply}")),
                        Sent::Lost => lost.push(reference),
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                (acked, lost)
            })
        })
        .collect();
    // Each agent accepts what its desktop (read from any node) offers and
    // completes it; an accept that succeeded is recorded.
    let accepted: Arc<Mutex<Vec<(u64, &'static str)>>> = Arc::default();
    let desks: Vec<_> = agents
        .iter()
        .zip(agent_clients)
        .enumerate()
        .map(|(n, (agent, client))| {
            let (nodes, stop, accepted) = (nodes.clone(), stop.clone(), accepted.clone());
            let agent: &'static str = agent;
            std::thread::spawn(move || {
                let mut round = n;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    let desk = match send(&client, &nodes, round, "get", &format!("/v1/agents/{agent}/desktop"), None) {
                        Sent::Answered(200, desk) => desk,
                        _ => continue,
                    };
                    for item in desk["items"].as_array().cloned().unwrap_or_default() {
                        let id = item["id"].as_u64().unwrap_or(0);
                        if item["status"] == "offered" {
                            let path = format!("/v1/offers/{id}/accept");
                            if let Sent::Answered(200, _) = send(&client, &nodes, round, "post", &path, None) {
                                accepted.lock().unwrap().push((id, agent));
                            } else {
                                continue;
                            }
                        }
                        let body = json!({ "resolved": true });
                        let _ = send(&client, &nodes, round, "post", &format!("/v1/items/{id}/complete"), Some(&body));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();

    // Kill the leader once a good number of items went through (bounded).
    for _ in 0..1500 {
        if acknowledged.load(Ordering::Relaxed) >= 150 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let before_kill = acknowledged.load(Ordering::Relaxed);
    assert!(before_kill >= 50, "only {before_kill} items were acknowledged before the kill");
    let killed = Instant::now();
    first.kill();
    let leader = loop {
        if let Some(node) = others.iter().find(|n| readiness(&n.base).1["role"] == "leader") {
            break node;
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "no standby took over");
        std::thread::sleep(Duration::from_millis(10));
    };
    let takeover = killed.elapsed();
    eprintln!("takeover: a standby led {:.2} s after the SIGKILL", takeover.as_secs_f64());
    assert!(takeover < Duration::from_secs(5), "takeover took {takeover:?}");

    // Load goes on through the new leader.
    let started = Instant::now();
    while acknowledged.load(Ordering::Relaxed) < before_kill + 100 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut lost = Vec::new();
    for gateway in gateways {
        let (a, l) = gateway.join().unwrap();
        acked.extend(a);
        lost.extend(l);
    }
    for desk in desks {
        desk.join().unwrap();
    }
    assert!(acked.len() >= before_kill + 100, "{} acknowledged, {before_kill} before the kill", acked.len());
    // Per gateway, the write in flight at the kill and the next one, sent on
    // the pooled keep-alive connection to the dead node (the client cannot
    // tell that it never arrived, so it does not send it again).
    assert!(lost.len() <= 6, "more writes lost than two per gateway at the kill: {lost:?}");

    // Every acknowledged item exactly once, under its id: each acknowledged
    // id is there (open ones with their `ref`; finished ones keep no
    // attributes), no open `ref` twice, and no item that was neither
    // acknowledged nor in flight when its node died.
    let supervisor = Client::detached(Some(SUPERVISOR)).at(&leader.base);
    let found = all_items(&supervisor);
    let mut by_ref: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (id, (_, reference)) in &found {
        if !reference.is_empty() {
            by_ref.entry(reference.as_str()).or_default().push(*id);
        }
    }
    let duplicated: Vec<_> = by_ref.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(duplicated.is_empty(), "duplicated items: {duplicated:?}");
    for (id, reference) in &acked {
        let (status, seen) = &found.get(id).unwrap_or_else(|| panic!("acknowledged item {id} ({reference}) is gone"));
        if seen.is_empty() {
            assert!(matches!(status.as_str(), "completed" | "withdrawn"), "item {id}: {status}");
        } else {
            assert_eq!(seen, reference, "item {id}");
        }
    }
    let unacknowledged = found.len() - acked.len();
    assert!(
        unacknowledged <= lost.len(),
        "{unacknowledged} items were never acknowledged; {} writes were in flight",
        lost.len()
    );
    // No item accepted by two agents, none on two desktops now.
    let accepted = accepted.lock().unwrap().clone();
    let mut accepts: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (id, agent) in &accepted {
        accepts.entry(*id).or_default().push(agent);
    }
    let twice: Vec<_> = accepts.iter().filter(|(_, agents)| agents.len() > 1).collect();
    assert!(twice.is_empty(), "items accepted by two agents: {twice:?}");
    assert!(accepted.len() >= 10, "the agents accepted only {} items", accepted.len());
    let mut holders: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for agent in agents {
        let (_, desk) = supervisor.get(&format!("/v1/agents/{agent}/desktop"));
        for item in desk["items"].as_array().cloned().unwrap_or_default() {
            holders.entry(item["id"].as_u64().unwrap_or(0)).or_default().push(agent);
        }
    }
    assert!(holders.values().all(|h| h.len() == 1), "items on two desktops: {holders:?}");

    // The plugin uploaded before the kill decides on the new leader.
    let gateway = Client::detached(Some(INTEGRATION)).at(&leader.base);
    let (status, item) = gateway.post(
        "/v1/items",
        &json!({ "department": "billing", "queue": "billing-general", "attributes": { "ref": "after" } }),
    );
    assert_eq!(status, 201, "{item}");
    assert_eq!(
        item["why"]["prioritised_by"],
        json!({ "kind": "plugin", "plugin": "billing", "generation": generation }),
        "{item}"
    );
    // The other standby follows the new leader and serves what it wrote;
    // `/metrics` says which is which.
    let standby = others.iter().find(|n| n.base != leader.base).unwrap();
    let metrics = |base: &str| Client::detached(None).at(base).get_text("/metrics").1;
    assert!(metrics(&leader.base).contains("switchyard_cluster_leader 1\n"));
    assert!(metrics(&leader.base).contains("switchyard_cluster_takeovers_total 1\n"));
    assert!(metrics(&standby.base).contains("switchyard_cluster_leader 0\n"));
    // The audit log is the cluster's: the swap the first leader made is
    // listed by every node, once.
    for base in [&leader.base, &standby.base] {
        let (status, audit) = supervisor.at(base).get("/v1/audit?department=billing&action=swap");
        assert_eq!(status, 200, "{audit}");
        let swaps: Vec<_> = audit.as_array().unwrap().iter().filter(|e| e["generation"] == generation).collect();
        assert_eq!(swaps.len(), 1, "{base}: {audit}");
    }
    let (status, ready) = readiness(&standby.base);
    assert_eq!((status, ready["leader"].as_str()), (503, Some(leader.base.as_str())), "{ready}");
    let path = format!("/v1/items/{}", item["id"]);
    let started = Instant::now();
    let follows = loop {
        let (status, seen) = supervisor.at(&standby.base).get(&path);
        if status == 200 {
            break seen["id"] == item["id"];
        }
        if started.elapsed() > Duration::from_secs(10) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(follows, "the standby never showed the new leader's item");
    eprintln!(
        "{} items acknowledged ({before_kill} before the kill), {} accepted, {} writes lost in flight",
        acked.len(),
        accepted.len(),
        lost.len()
    );
}

/// Scenario: a leader is cut off from the database (its connection to the
/// lease closed, as a network cut would) while it still believes it leads:
/// the standby takes over, and the database refuses the old leader's writes
/// (the fence), so every write it acknowledged is on the new leader and every
/// other one was refused. It then rejoins as a standby of the new leader. A
/// record written with a stale epoch straight into the table is refused.
#[test]
fn a_deposed_leader_cannot_write_and_rejoins_as_a_standby() {
    let Some(server) = PgServer::start("cluster-deposed") else { return };
    let url = server.database("deposed");
    // The old leader checks its lease only every 3 s: it keeps taking
    // requests after the cut, and only the database can stop its writes.
    let old = start_node("deposed-a", &url, "a", Some(3000));
    assert!(old.wait_leader(Duration::from_secs(30)));
    let new = start_node("deposed-b", &url, "b", Some(100));
    assert!(new.wait_role("standby", Duration::from_secs(30)));
    let gateway = old.client(Some(INTEGRATION));
    let item =
        |reference: &str| json!({ "department": "claims", "queue": "claims", "attributes": { "ref": reference } });
    for n in 0..5 {
        assert_eq!(gateway.post("/v1/items", &item(&format!("before-{n}"))).0, 201);
    }

    // Cut the old leader's lease connection (the advisory lock's session).
    let mut db = server.client("deposed");
    let cut = db
        .execute(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND a.application_name = 'a'",
            &[],
        )
        .unwrap();
    assert_eq!(cut, 1, "the old leader's lease connection was found");
    let cut_at = Instant::now();
    assert!(new.wait_role("leader", Duration::from_secs(5)), "the standby took over within 5 s");
    // Write to the old leader until it says it is a standby: each write was
    // either refused or is on the new leader.
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for n in 0.. {
        let reference = format!("after-{n}");
        match gateway.try_post("/v1/items", &item(&reference)) {
            Ok((201, reply)) => acknowledged.push((reply["id"].clone(), reference)),
            Ok((503, reply)) if reply["role"] == "standby" => break,
            Ok((503, reply)) => {
                assert!(reply["error"].to_string().contains("rebuilds its state as a standby"), "{reply}");
                refused += 1
            }
            other => panic!("unexpected answer from the deposed leader: {other:?}"),
        }
        assert!(cut_at.elapsed() < Duration::from_secs(30), "the old leader never stood down");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(refused >= 1, "the old leader's writes after the takeover were refused by the database");
    // The fenced commit is logged once; the requests and ticks refused after
    // it are not each an error of their own.
    let log = std::fs::read_to_string(old.dir.join("stderr.log")).unwrap();
    let fenced = log.lines().filter(|l| l.contains("journal commit failed")).count();
    let repeated =
        log.lines().filter(|l| l.contains("request failed inside the daemon") || l.contains("tick failed")).count();
    assert_eq!((fenced, repeated), (1, 0), "{log}");
    let supervisor = new.client(Some(SUPERVISOR));
    for (id, reference) in &acknowledged {
        let (status, seen) = supervisor.get(&format!("/v1/items/{id}"));
        assert_eq!(status, 200, "acknowledged {reference} is on the new leader");
        assert!(seen["attributes"].to_string().contains(reference.as_str()), "{seen}");
    }
    // It rejoins as a standby of the new leader and follows it.
    let started = Instant::now();
    loop {
        let (status, ready) = readiness(&old.base);
        if status == 503 && ready["role"] == "standby" && ready["leader"].as_str() == Some(new.base.as_str()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the old leader did not rejoin as a standby: {ready}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, created) = new.client(Some(INTEGRATION)).post("/v1/items", &item("on-the-new-leader"));
    assert_eq!(status, 201);
    let path = format!("/v1/items/{}", created["id"]);
    let started = Instant::now();
    while old.client(Some(SUPERVISOR)).get(&path).0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "the rejoined node never showed {path}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The fence itself: a row of an old epoch is refused by the database.
    let epoch: i64 = db.query_one("SELECT epoch FROM switchyard_leader", &[]).unwrap().get(0);
    let stale = db
        .execute("INSERT INTO switchyard_records (seq, epoch, body) VALUES (1000000, $1, '\\x7b7d')", &[&(epoch - 1)]);
    let error = stale.expect_err("a stale epoch's write is refused");
    assert_eq!(error.code().map(|c| c.code()), Some("SYF01"), "{error:?}");
    eprintln!("{} writes acknowledged and {refused} refused after the cut", acknowledged.len());
}

/// Scenario: a standby frozen (SIGSTOP, as a stalled VM would be) while the
/// leader writes past three snapshots finds, when it runs again, that the
/// records it had not applied were compacted away behind them; it rebuilds
/// its state from the latest snapshot and follows the leader again.
#[test]
fn a_standby_that_fell_behind_a_compaction_rebuilds_from_the_snapshot() {
    let Some(server) = PgServer::start("cluster-lagging") else { return };
    let url = server.database("lagging");
    let every_100 = |node: &str| {
        node_config(&url, node, None).replacen("tick_ms = 50\n", "tick_ms = 50\nsnapshot_every = 100\n", 1)
    };
    let leader = Daemon::start(&fresh_dir("lagging-a"), Some(&every_100("a")));
    assert!(leader.wait_leader(Duration::from_secs(30)));
    let standby = Daemon::start(&fresh_dir("lagging-b"), Some(&every_100("b")));
    assert!(standby.wait_role("standby", Duration::from_secs(30)));
    let signal = |name: &str| {
        let status = std::process::Command::new("kill").args([name, &standby.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill {name}");
    };
    signal("-STOP");
    let gateway = leader.client(Some(INTEGRATION));
    let mut last = Value::Null;
    for n in 0..350 {
        let (status, reply) = gateway.post(
            "/v1/items",
            &json!({ "department": "claims", "queue": "claims", "attributes": { "ref": n.to_string() } }),
        );
        assert_eq!(status, 201, "{reply}");
        last = reply["id"].clone();
    }
    // Bounded wait for the leader's third snapshot (taken by its ticker).
    let started = Instant::now();
    while leader.client(Some(SUPERVISOR)).get("/readyz").1["snapshot_covers"].as_u64().unwrap_or(0) < 300 {
        assert!(started.elapsed() < Duration::from_secs(20), "the leader took no snapshots");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal("-CONT");
    let path = format!("/v1/items/{last}");
    let started = Instant::now();
    while standby.client(Some(SUPERVISOR)).get(&path).0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(30), "the standby never caught up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(standby.dir.join("stderr.log")).unwrap();
    assert!(log.contains("are gone (compacted behind a snapshot)"), "the standby rebuilt from the snapshot:\n{log}");
    let (status, ready) = readiness(&standby.base);
    assert_eq!((status, ready["role"].as_str()), (503, Some("standby")), "{ready}");
    let (_, queue) = standby.client(Some(SUPERVISOR)).get("/v1/queues/claims");
    assert_eq!(queue["live"]["waiting"], 350, "{queue}");
}

/// Scenario: an item is offered to an agent who never answers, and the
/// leader is SIGKILLed with the offer outstanding. The new leader's timers
/// come from the replayed state: the offer times out on schedule and the item
/// goes to the other agent; at no time is it on two desktops.
#[test]
fn an_offer_outstanding_at_the_crash_times_out_on_the_new_leader() {
    let Some(server) = PgServer::start("cluster-offer") else { return };
    let url = server.database("offer");
    let text = |node: &str| node_config(&url, node, None).replacen("offer_timeout_s = 30", "offer_timeout_s = 3", 1);
    let mut first = Daemon::start(&fresh_dir("offer-a"), Some(&text("a")));
    assert!(first.wait_leader(Duration::from_secs(30)));
    let second = Daemon::start(&fresh_dir("offer-b"), Some(&text("b")));
    assert!(second.wait_role("standby", Duration::from_secs(30)));
    let admin = first.client(Some(ADMIN));
    for agent in ["ann", "bob"] {
        assert_eq!(admin.put(&format!("/v1/agents/{agent}"), &json!({ "skills": { "billing": 5 } })).0, 201);
    }
    // Only ann is available when the item comes: the offer is hers.
    let ann = first.agent_client("ann");
    assert_eq!(ann.post("/v1/agents/ann/state", &json!({ "state": "available" })).0, 200);
    let (status, item) = first
        .client(Some(INTEGRATION))
        .post("/v1/items", &json!({ "department": "billing", "queue": "billing-general" }));
    assert_eq!((status, item["status"].as_str()), (201, Some("offered")), "{item}");
    let id = item["id"].as_u64().unwrap();
    let bob = first.agent_client("bob");
    assert_eq!(bob.post("/v1/agents/bob/state", &json!({ "state": "available" })).0, 200);

    let offered_at = Instant::now();
    first.kill();
    assert!(second.wait_role("leader", Duration::from_secs(5)), "the standby took over");
    // The offer is still ann's on the new leader, until it times out (3 s
    // after it was made); then bob gets the item. Never both.
    let supervisor = second.client(Some(SUPERVISOR));
    let holds = |agent: &str| {
        let (_, desk) = supervisor.get(&format!("/v1/agents/{agent}/desktop"));
        desk["items"].as_array().is_some_and(|items| items.iter().any(|i| i["id"] == id))
    };
    assert!(holds("ann") && !holds("bob"), "the offer survived the takeover");
    let moved = loop {
        let (ann_holds, bob_holds) = (holds("ann"), holds("bob"));
        assert!(!(ann_holds && bob_holds), "item {id} on two desktops");
        if bob_holds {
            break offered_at.elapsed();
        }
        assert!(offered_at.elapsed() < Duration::from_secs(30), "the offer never timed out on the new leader");
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("the offer made before the crash moved to bob {:.1} s after it was made", moved.as_secs_f64());
    assert!(moved >= Duration::from_millis(2500), "it moved after its timeout, not at the takeover: {moved:?}");
    let metrics = Client::detached(None).at(&second.base).get_text("/metrics").1;
    assert!(metrics.contains("outcome=\"timed-out\""), "the timeout is counted");
}
