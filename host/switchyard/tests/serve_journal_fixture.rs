//! The journal format is a promise: a daemon of a later build starts on a
//! journal written by this one. `tests/fixtures/journal-v<N>.jsonl` is a real
//! journal (format N) written by the daemon with the billing plugin; this test
//! writes it into a fresh data directory, starts the daemon **without** the
//! plugin, and requires the state the daemon showed when the fixture was made
//! (`journal-v<N>.expected.json`): priorities, reasons and queue moves only the
//! plugin could have decided, offers, completions and hand-offs. Format 2 adds
//! decisions deferred under the lock and taken by a later `decide` record.
//!
//! A change of the record format must keep this test green by migrating the
//! older records (see `Record::decode` in `serve/journal.rs`), not by
//! regenerating the fixture. To make a fixture for a *new* format N, run with
//! `SWITCHYARD_WRITE_JOURNAL_FIXTURE=N`: it drives the scenario below against
//! the real plugin, kills the daemon, copies the journal out, restarts without
//! the plugin and records what it shows.

#[path = "serve_common/mod.rs"]
mod serve_common;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use serve_common::{Daemon, config, fresh_dir};
use switchyard::serve::journal::{JournalStore, Record, RedbJournal};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The test config, with the billing and claims plugins where `billing` and
/// `claims` say (format 1's fixture was written with billing alone; claims'
/// `escalate` gives format 2 decisions to defer).
fn config_with(billing: &str, claims: &str) -> String {
    config(
        r#"
[[agents]]
name = "ann"
skills = { billing = 8, disputes = 6 }

[[agents]]
name = "cid"
skills = { claims = 5 }
"#,
    )
    .replacen("name = \"billing\"\n", &format!("name = \"billing\"\nplugin = {billing:?}\nrequire_plugin = false\n"), 1)
    .replacen(
        "name = \"claims\"\n",
        &format!("name = \"claims\"\nplugin = {claims:?}\nrequire_plugin = false\n"),
        1,
    )
}

/// What the daemon shows, without what depends on the time it is asked.
fn state(daemon: &Daemon, items: u64) -> Value {
    let admin = daemon.admin();
    let mut shown = serde_json::Map::new();
    for id in 1..=items {
        let (status, mut item) = admin.get(&format!("/v1/items/{id}"));
        strip_times(&mut item);
        shown.insert(format!("item {id}"), json!({ "status": status, "body": item }));
    }
    let (_, mut agents) = admin.get("/v1/agents");
    strip_times(&mut agents);
    shown.insert("agents".into(), agents);
    for queue in ["billing-general", "billing-disputes", "claims"] {
        let (_, q) = admin.get(&format!("/v1/queues/{queue}"));
        shown.insert(
            format!("queue {queue}"),
            json!({ "waiting": q["live"]["waiting"], "offered": q["live"]["offered"] }),
        );
    }
    Value::Object(shown)
}

/// Drop fields that are ages or clock readings.
fn strip_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !(key.ends_with("_ms") || key.ends_with("_at") || key == "since"));
            map.values_mut().for_each(strip_times);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_times),
        _ => {}
    }
}

/// The scenario the fixture records; returns the number of items created.
fn drive(daemon: &Daemon) -> u64 {
    let gateway = daemon.gateway();
    let admin = daemon.admin();
    let ann = daemon.agent_client("ann");
    let post = |body: Value| {
        let (status, reply) = gateway.post("/v1/items", &body);
        assert_eq!(status, 201, "{reply}");
        reply["id"].as_u64().unwrap()
    };
    // Ann is away: items wait, prioritised by the plugin.
    let gold = post(json!({ "department": "billing", "queue": "billing-general", "tier": "gold", "value": 300.0,
        "attributes": { "amount": "300" }, "customer": "c-1" }));
    let dispute = post(json!({ "department": "billing", "queue": "billing-general", "value": 900.0,
        "attributes": { "amount": "900", "reason": "dispute" }, "skills": { "disputes": 3 } }));
    let chat =
        post(json!({ "department": "billing", "queue": "billing-general", "channel": "chat", "tier": "silver" }));
    let claim = post(json!({ "department": "claims", "queue": "claims", "channel": "case", "due_in_s": 86400 }));
    let gone = post(json!({ "department": "billing", "queue": "billing-general", "channel": "email" }));
    assert_eq!(gateway.delete(&format!("/v1/items/{gone}")).0, 200);
    // Ann comes in: the highest priority is offered; she rejects it, then takes the next offer.
    assert_eq!(ann.post("/v1/agents/ann/state", &json!({ "state": "available" })).0, 200);
    let offered = |who: &serve_common::Client| -> Option<u64> {
        let (_, desk) = who.get("/v1/agents/ann/desktop");
        desk["items"].as_array()?.iter().find(|i| i["status"] == "offered").and_then(|i| i["id"].as_u64())
    };
    let first = offered(&ann).expect("an offer for ann");
    assert_eq!(ann.post_empty(&format!("/v1/offers/{first}/reject")).0, 200);
    let second = offered(&ann).expect("a second offer for ann");
    assert_eq!(ann.post_empty(&format!("/v1/offers/{second}/accept")).0, 200);
    let handoff =
        json!({ "resolved": false, "handoff": { "department": "claims", "queue": "claims", "channel": "case" } });
    assert_eq!(ann.post(&format!("/v1/items/{second}/complete"), &handoff).0, 200);
    assert_eq!(admin.post_empty("/v1/agents/cid/token").0 / 100, 2);
    // Ann takes a break: her pending offer goes back to its queue. Nothing is
    // left for a restart to do at *its* time (returning offers, dispatching),
    // so what the daemon shows depends on the journal alone.
    assert_eq!(ann.post("/v1/agents/ann/state", &json!({ "state": "away" })).0, 200);
    let _ = (gold, dispute, chat, claim);
    // The items so far and the hand-off.
    gone + 1
}

#[test]
fn a_journal_of_format_1_replays_to_the_state_it_recorded() {
    replays_to_the_state_it_recorded(1);
}

#[test]
fn a_journal_of_format_2_replays_to_the_state_it_recorded() {
    let records = replays_to_the_state_it_recorded(2);
    // What format 2 added is in it: a deferred decision, taken by a `decide`.
    let text = serde_json::to_string(&records).unwrap();
    assert!(text.contains(r#""kind":"deferred""#) && text.contains(r#""op":"decide""#), "{text}");
    assert!(text.contains(r#""handoff_id""#), "the hand-off's id was reserved when its rules were asked: {text}");
}

fn replays_to_the_state_it_recorded(version: u32) -> Vec<Record> {
    let fixture = fixtures().join(format!("journal-v{version}.jsonl"));
    let expected_path = fixtures().join(format!("journal-v{version}.expected.json"));
    if std::env::var("SWITCHYARD_WRITE_JOURNAL_FIXTURE").is_ok_and(|v| v == version.to_string()) {
        assert_eq!(version, switchyard::serve::journal::FORMAT_VERSION, "only this build's format can be written");
        write_fixture(&fixture, &expected_path);
    }
    let text = std::fs::read_to_string(&fixture).expect("the checked-in journal fixture");
    let records: Vec<Record> = text
        .lines()
        .enumerate()
        .map(|(n, line)| serde_json::from_str(line).unwrap_or_else(|e| panic!("fixture line {}: {e}", n + 1)))
        .collect();
    assert!(records.iter().all(|r| r.v == version), "the fixture is format {version}");
    assert!(records.iter().any(|r| !r.outcomes.is_empty()), "the fixture carries rule decisions");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();

    let dir = fresh_dir(&format!("serve-journal-fixture-v{version}"));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    RedbJournal::open(&dir.join("data/journal.redb")).unwrap().append(&records).unwrap();
    // No plugin: every decision comes from the journal.
    let daemon = Daemon::start(&dir, Some(&config_with("missing/billing.wasm", "missing/claims.wasm")));
    let items = expected.as_object().unwrap().keys().filter(|k| k.starts_with("item ")).count() as u64;
    let shown = state(&daemon, items);
    assert_eq!(shown, expected, "replaying journal-v{version}.jsonl");
    let (_, ready) = daemon.admin().get("/readyz");
    assert_eq!(ready["diverged_records"], 0, "{ready}");
    // Sanity: the plugin's decisions, not the built-in rule's, came back.
    let reasons = serde_json::to_string(&shown).unwrap();
    assert!(reasons.contains("gold tier +") && reasons.contains("billing-disputes"), "{reasons}");
    records
}

/// Make the fixture (see the module docs).
fn write_fixture(fixture: &Path, expected_path: &Path) {
    let dir = fresh_dir("serve-journal-fixture-write");
    let mut daemon = Daemon::start(
        &dir,
        Some(&config_with(switchyard_plugin_artifacts::BILLING, switchyard_plugin_artifacts::CLAIMS)),
    );
    let items = drive(&daemon);
    // Every answer above was durable; a kill leaves the journal without a snapshot.
    daemon.kill();
    let records = RedbJournal::open(&dir.join("data/journal.redb")).unwrap().records().unwrap();
    let lines: Vec<String> = records.iter().map(|(_, r)| serde_json::to_string(r).unwrap()).collect();
    std::fs::create_dir_all(fixtures()).unwrap();
    std::fs::write(fixture, lines.join("\n") + "\n").unwrap();
    let daemon = Daemon::start(&dir, Some(&config_with("missing/billing.wasm", "missing/claims.wasm")));
    let shown = state(&daemon, items);
    std::fs::write(expected_path, serde_json::to_string_pretty(&shown).unwrap() + "\n").unwrap();
    eprintln!("wrote {} records to {}", records.len(), fixture.display());
}
