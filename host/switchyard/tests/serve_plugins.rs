//! `switchyard serve`'s one plugin life cycle (issue 14): uploads, the watched
//! plugin directory, shadow and promotion, rollback and restarts all go through
//! the reload manager — validated, journaled, swapped, audited.

mod serve_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serve_common::{Client, Daemon, config, fresh_dir};
use switchyard_plugin_artifacts as artifacts;

/// The shared test config with billing's plugin from the config file and
/// `extra` top-level keys (they must come before the first table).
fn billing_config(extra: &str) -> String {
    let text = config("").replacen(
        "name = \"billing\"\n",
        &format!("name = \"billing\"\nplugin = {:?}\n", artifacts::BILLING),
        1,
    );
    format!("{extra}\n{text}")
}

fn item(department: &str, queue: &str, reference: &str) -> Value {
    json!({ "department": department, "queue": queue, "attributes": { "ref": reference } })
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// (kind, plugin, generation) of a created item's prioritisation.
fn decided_by(created: &Value) -> (String, String, u64) {
    let by = &created["why"]["prioritised_by"];
    (
        by["kind"].as_str().unwrap_or_default().to_owned(),
        by["plugin"].as_str().unwrap_or_default().to_owned(),
        by["generation"].as_u64().unwrap_or(0),
    )
}

/// The department's entry of `GET /v1/plugins`.
fn plugins_of(client: &Client, department: &str) -> Value {
    let (status, all) = client.get("/v1/plugins");
    assert_eq!(status, 200, "{all}");
    all.as_array().unwrap().iter().find(|d| d["department"] == department).cloned().unwrap_or(Value::Null)
}

fn kept_generations(entry: &Value) -> Vec<u64> {
    entry["kept"].as_array().unwrap().iter().filter_map(|k| k["generation"].as_u64()).collect()
}

/// `GET /v1/audit?{query}` as (action, generation) pairs.
fn audit(client: &Client, query: &str) -> Vec<(String, Option<u64>)> {
    let (status, entries) = client.get(&format!("/v1/audit?{query}"));
    assert_eq!(status, 200, "{entries}");
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap_or_default().to_owned(), e["generation"].as_u64()))
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(60), "waited a minute for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Scenario: billing runs its plugin (generation 1, from the config) with its
/// fixtures uploaded; claims has no plugin. Candidates that fail billing's
/// fixtures (the claims component), trap (hostile-panic) or hang
/// (hostile-loop) on their smoke call get a 422 naming the check, and billing
/// keeps routing on generation 1. A valid upload swaps while four clients post
/// items: every post is a 201 decided by the plugin, old or new generation.
/// More uploads than `keep_generations` keep the kept list bounded. The audit
/// log filters by department, action, time and count.
#[test]
fn uploads_are_validated_swapped_under_load_pruned_and_audited() {
    let dir = fresh_dir("serve-plugins-upload");
    let daemon = Daemon::start(&dir, Some(&billing_config("keep_generations = 3")));
    let admin = daemon.admin();
    let sup = daemon.supervisor();
    let gateway = daemon.gateway();

    let fixtures =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/billing/fixtures.toml"))
            .unwrap();
    let (status, stored) = admin.put_text("/v1/plugins/billing/fixtures", &fixtures);
    assert_eq!(status, 200, "{stored}");
    assert!(stored["cases"].as_u64().unwrap_or(0) > 3, "{stored}");
    assert_eq!(stored["active"]["generation"], 1, "{stored}");
    assert_eq!(stored["active"]["validation"]["result"], "passed", "the running generation passes them: {stored}");
    assert_eq!(admin.put_text("/v1/plugins/billing/fixtures", "[[prioritise]]\nnope = 1\n").0, 422);
    assert_eq!(sup.put_text("/v1/plugins/billing/fixtures", &fixtures).0, 403, "fixtures are an admin's");
    assert_eq!(plugins_of(&sup, "billing")["fixtures"]["cases"], stored["cases"]);

    // Refused: the claims rules fail billing's fixtures; a panic and a loop fail
    // their smoke call (claims has no fixtures); a wrong world fails to load.
    let refusals = [
        ("billing", artifacts::CLAIMS, "fixtures", "billing (uploaded fixtures)"),
        ("claims", artifacts::HOSTILE_PANIC, "smoke call", "trapped in prioritise"),
        ("claims", artifacts::HOSTILE_LOOP, "smoke call", "missed its 20 ms deadline"),
        ("billing", artifacts::HOSTILE_WRONG_WORLD, "load", "exports none of the hook interfaces"),
    ];
    for (department, path, check, says) in refusals {
        let (status, refused) = admin.post_bytes(&format!("/v1/plugins/{department}"), &read(path));
        assert_eq!((status, refused["check"].as_str()), (422, Some(check)), "{path}: {refused}");
        assert!(refused["error"].as_str().is_some_and(|e| e.contains(says)), "{path}: {refused}");
        let (status, created) = gateway.post("/v1/items", &item("billing", "billing-general", path));
        assert_eq!(status, 201, "{created}");
        assert_eq!(decided_by(&created), ("plugin".into(), "billing".into(), 1), "{created}");
    }
    assert_eq!(plugins_of(&sup, "billing")["current"]["generation"], 1);
    assert!(plugins_of(&sup, "claims")["current"].is_null());

    // A valid upload while four clients post items.
    let stop = Arc::new(AtomicBool::new(false));
    let posters: Vec<_> = (0..4)
        .map(|n| {
            let (gateway, stop) = (gateway.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) || i < 5 {
                    let (status, created) =
                        gateway.post("/v1/items", &item("billing", "billing-general", &format!("load-{n}-{i}")));
                    assert_eq!(status, 201, "{created}");
                    seen.push(decided_by(&created));
                    i += 1;
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, swapped) = admin.post_bytes("/v1/plugins/billing", &read(artifacts::BILLING));
    assert_eq!(status, 201, "{swapped}");
    let generation = swapped["generation"].as_u64().unwrap();
    assert!(generation >= 2, "{swapped}");
    assert_eq!(swapped["validation"]["result"], "passed", "{swapped}");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let mut generations = BTreeSet::new();
    for poster in posters {
        for (kind, plugin, g) in poster.join().unwrap() {
            assert_eq!((kind.as_str(), plugin.as_str()), ("plugin", "billing"), "never a fallback during the swap");
            generations.insert(g);
        }
    }
    assert!(generations.contains(&generation), "the new generation decided: {generations:?}");
    assert!(generations.iter().all(|g| *g == 1 || *g == generation), "{generations:?}");

    // Pruning: five more uploads keep three validated generations.
    for _ in 0..5 {
        assert_eq!(admin.post_bytes("/v1/plugins/billing", &read(artifacts::BILLING)).0, 201);
    }
    let billing = plugins_of(&sup, "billing");
    let kept = kept_generations(&billing);
    let current = billing["current"]["generation"].as_u64().unwrap();
    assert_eq!(kept.len(), 3, "{billing}");
    assert_eq!(kept.last(), Some(&current), "{billing}");
    assert_eq!(admin.post_empty("/v1/plugins/billing/rollback/1").0, 404, "generation 1 was pruned");
    assert_eq!(admin.post_empty(&format!("/v1/plugins/billing/rollback/{}", kept[0])).0, 200);

    // The audit log, filtered.
    let rejected = audit(&sup, "department=billing&action=reject");
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(audit(&sup, "department=claims&action=reject").len(), 2);
    assert_eq!(audit(&sup, "department=claims&action=swap").len(), 0);
    let swaps = audit(&sup, "department=billing&action=swap");
    assert_eq!(swaps.len(), 7, "start-up, the upload under load, five more: {swaps:?}");
    assert_eq!(audit(&sup, "department=billing&action=rollback"), [("rollback".to_owned(), Some(kept[0]))]);
    assert_eq!(audit(&sup, "action=fixtures").len(), 1);
    assert_eq!(audit(&sup, "limit=2").len(), 2);
    assert_eq!(audit(&sup, "since=2999-01-01T00:00:00Z").len(), 0);
    assert_eq!(audit(&sup, "until=1000").len(), 0);
    let (status, bad) = sup.get("/v1/audit?action=explode");
    assert_eq!((status, bad["field"].as_str()), (422, Some("action")), "{bad}");
    assert_eq!(sup.get("/v1/audit?colour=red").0, 422);
    assert_eq!(daemon.gateway().get("/v1/audit").0, 403);
}

/// Scenario: billing runs its plugin (generation 1); hostile-slow (every item
/// priority 10, no delay) starts in shadow over HTTP. Items keep being decided
/// by generation 1 while the shadow's answers are compared; the report counts
/// the disagreements and shows examples with the item and both answers. The
/// shadow is promoted and decides from then on; another shadow is discarded.
/// Each step is in the audit log; a supervisor reads but may not change.
#[test]
fn shadow_report_promote_and_discard_over_http() {
    let dir = fresh_dir("serve-plugins-shadow");
    let daemon = Daemon::start(&dir, Some(&billing_config("")));
    let admin = daemon.admin();
    let sup = daemon.supervisor();
    let gateway = daemon.gateway();
    let slow = read(artifacts::HOSTILE_SLOW);

    assert_eq!(sup.get("/v1/plugins/billing/shadow").0, 404, "no shadow yet");
    assert_eq!(admin.post_empty("/v1/plugins/billing/shadow/promote").0, 409);
    assert_eq!(sup.post_bytes("/v1/plugins/billing/shadow", &slow).0, 403);
    let (status, shadow) = admin.post_bytes("/v1/plugins/billing/shadow", &slow);
    assert_eq!(status, 201, "{shadow}");
    assert_eq!((shadow["generation"].as_u64(), shadow["shadow"].as_bool()), (Some(2), Some(true)), "{shadow}");
    assert_eq!(plugins_of(&sup, "billing")["shadow"]["generation"], 2);

    // A gold repeat caller with money at stake: billing gives more than 10.
    for n in 0..5 {
        let body = json!({
            "department": "billing", "queue": "billing-general", "tier": "gold",
            "attributes": { "amount": "300", "ref": format!("s-{n}") }, "customer": "c-1",
        });
        let (status, created) = gateway.post("/v1/items", &body);
        assert_eq!(status, 201, "{created}");
        assert_eq!(decided_by(&created), ("plugin".into(), "billing".into(), 1), "the active rules decide");
    }
    let (status, report) = sup.get("/v1/plugins/billing/shadow");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["generation"], 2);
    assert!(report["prioritise"]["decisions"].as_u64().unwrap_or(0) >= 5, "{report}");
    assert!(report["prioritise"]["disagreed"].as_u64().unwrap_or(0) >= 1, "{report}");
    assert!(report["prioritise"]["differences"]["priority"].as_u64().unwrap_or(0) >= 1, "{report}");
    let example = &report["examples"][0];
    assert_eq!(example["hook"], "prioritise", "{report}");
    assert!(example["item"]["id"].as_u64().is_some() && example["item"]["tier"] == "gold", "{example}");
    assert!(example["active"].as_str().is_some_and(|a| a.contains("priority")), "{example}");
    assert!(example["shadow"].as_str().is_some_and(|s| s.contains("priority: 10")), "{example}");

    let (status, promoted) = admin.post_empty("/v1/plugins/billing/shadow/promote");
    assert_eq!(status, 200, "{promoted}");
    assert_eq!((promoted["generation"].as_u64(), promoted["active"].as_bool()), (Some(2), Some(true)), "{promoted}");
    let (_, created) = gateway.post("/v1/items", &item("billing", "billing-general", "after"));
    // An uploaded component is named after its department.
    assert_eq!(decided_by(&created), ("plugin".into(), "billing".into(), 2), "{created}");
    assert!(created["why"]["priority_reason"].as_str().is_some_and(|r| r.starts_with("hostile-slow")), "{created}");
    assert_eq!(sup.get("/v1/plugins/billing/shadow").0, 404);

    // Another shadow, discarded: it stays kept for rollback.
    let (status, again) = admin.post_bytes("/v1/plugins/billing/shadow", &read(artifacts::BILLING));
    assert_eq!(status, 201, "{again}");
    assert_eq!(sup.delete("/v1/plugins/billing/shadow").0, 403);
    let (status, last) = admin.delete("/v1/plugins/billing/shadow");
    assert_eq!((status, last["generation"].as_u64()), (200, Some(3)), "{last}");
    assert_eq!(admin.delete("/v1/plugins/billing/shadow").0, 404);
    assert_eq!(kept_generations(&plugins_of(&sup, "billing")), [1, 2, 3]);

    let actions: Vec<String> = audit(&sup, "department=billing").into_iter().map(|(a, _)| a).collect();
    assert_eq!(actions, ["load", "swap", "load", "shadow", "promote", "load", "shadow", "unshadow"]);
    let promote = &sup.get("/v1/audit?department=billing&action=promote").1[0];
    assert_eq!((promote["generation"].as_u64(), promote["previous"].as_u64()), (Some(2), Some(1)), "{promote}");
    assert!(promote["reason"].as_str().is_some_and(|r| r.contains("agreed on")), "{promote}");
    assert_eq!(promote["trigger"], json!({ "kind": "promotion", "who": "admin" }));
}

/// Scenario: the daemon watches `plugin_dir`. Dropping `billing.wasm` there
/// (written beside it, renamed over) swaps billing's rules like an upload:
/// journaled, audited with the watcher as trigger. A hostile build dropped over
/// it is refused and the good one keeps routing. A restart on the same data and
/// directory keeps the generation, and does not load the directory's file over
/// a rollback made since.
#[test]
fn a_component_dropped_into_the_plugin_dir_is_swapped_in() {
    let dir = fresh_dir("serve-plugins-dir");
    let plugin_dir = dir.join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let text = format!("plugin_dir = \"plugins\"\n{}", config(""));
    let mut daemon = Daemon::start(&dir, Some(&text));
    let sup = daemon.supervisor();
    let gateway = daemon.gateway();
    assert!(plugins_of(&sup, "billing")["current"].is_null());

    let drop_in = |bytes: &[u8]| {
        let tmp = plugin_dir.join(".billing.wasm.tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, plugin_dir.join("billing.wasm")).unwrap();
    };
    drop_in(&read(artifacts::BILLING));
    wait_for("billing's plugin from the directory", || plugins_of(&sup, "billing")["current"]["generation"] == 1);
    let (_, created) = gateway.post("/v1/items", &item("billing", "billing-general", "dir"));
    assert_eq!(decided_by(&created), ("plugin".into(), "billing".into(), 1), "{created}");
    let (_, swaps) = sup.get("/v1/audit?department=billing&action=swap");
    assert_eq!(swaps[0]["trigger"]["kind"], "watcher", "{swaps}");

    // A component for a department the daemon does not have is refused.
    std::fs::write(plugin_dir.join("nowhere.wasm"), read(artifacts::BILLING)).unwrap();
    wait_for("the unknown department's refusal", || !audit(&sup, "department=nowhere&action=reject").is_empty());
    let (_, nowhere) = sup.get("/v1/audit?department=nowhere&action=reject");
    assert!(nowhere[0]["reason"].as_str().is_some_and(|r| r.contains("unknown department `nowhere`")), "{nowhere}");

    drop_in(&read(artifacts::HOSTILE_PANIC));
    wait_for("the hostile build's rejection", || !audit(&sup, "department=billing&action=reject").is_empty());
    let (_, rejected) = sup.get("/v1/audit?department=billing&action=reject");
    assert!(rejected[0]["reason"].as_str().is_some_and(|r| r.contains("smoke call")), "{rejected}");
    let (_, created) = gateway.post("/v1/items", &item("billing", "billing-general", "still"));
    assert_eq!(decided_by(&created), ("plugin".into(), "billing".into(), 1), "{created}");

    drop_in(&read(artifacts::BILLING));
    wait_for("the good build again", || plugins_of(&sup, "billing")["current"]["generation"] == 3);
    let sha = plugins_of(&sup, "billing")["current"]["sha256"].clone();
    daemon.kill();
    let mut daemon = Daemon::start(&dir, None);
    let sup = daemon.supervisor();
    let billing = plugins_of(&sup, "billing");
    assert_eq!((&billing["current"]["generation"], &billing["current"]["sha256"]), (&json!(3), &sha), "{billing}");
    assert_eq!(audit(&sup, "department=billing&action=swap").len(), 2, "the unchanged file is not loaded again");

    // Ops roll back past the directory's file; a restart keeps the rollback
    // (the journal remembers the watcher handled that file).
    assert_eq!(daemon.admin().post_empty("/v1/plugins/billing/rollback/1").0, 200);
    daemon.kill();
    let daemon = Daemon::start(&dir, None);
    let sup = daemon.supervisor();
    assert_eq!(plugins_of(&sup, "billing")["current"]["generation"], 1);
    assert_eq!(audit(&sup, "department=billing&action=swap").len(), 2);
    assert_eq!(
        audit(&sup, "department=billing&action=reject").len(),
        1,
        "only the hostile build's, before the restarts"
    );
}

/// Scenario: billing goes through uploads (generations 2, 3), a refused one
/// (4), a rollback to 2 and a shadow (5); the daemon is SIGKILLed. After a
/// restart on the same data the active generation and its hash are exactly
/// those before, the shadow runs again, the kept generations are the same, a
/// rollback to a kept one works, and the next upload is generation 6.
#[test]
fn a_restart_keeps_the_journaled_generations() {
    let dir = fresh_dir("serve-plugins-restart");
    let mut daemon = Daemon::start(&dir, Some(&billing_config("")));
    let admin = daemon.admin();
    let billing = read(artifacts::BILLING);
    for expected in [2, 3] {
        let (status, up) = admin.post_bytes("/v1/plugins/billing", &billing);
        assert_eq!((status, up["generation"].as_u64()), (201, Some(expected)), "{up}");
    }
    let (status, refused) = admin.post_bytes("/v1/plugins/billing", &read(artifacts::HOSTILE_PANIC));
    assert_eq!((status, refused["check"].as_str()), (422, Some("smoke call")), "{refused}");
    assert_eq!(admin.post_empty("/v1/plugins/billing/rollback/2").0, 200);
    let (status, shadow) = admin.post_bytes("/v1/plugins/billing/shadow", &read(artifacts::HOSTILE_SLOW));
    assert_eq!((status, shadow["generation"].as_u64()), (201, Some(5)), "{shadow}");
    let before = plugins_of(&admin, "billing");
    assert_eq!(before["current"]["generation"], 2);

    daemon.kill();
    let daemon = Daemon::start(&dir, None);
    let admin = daemon.admin();
    let after = plugins_of(&admin, "billing");
    assert_eq!(after["rules"], "plugin", "{after}");
    assert_eq!(after["current"]["generation"], before["current"]["generation"], "{after}");
    assert_eq!(after["current"]["sha256"], before["current"]["sha256"], "{after}");
    assert_eq!(after["shadow"], before["shadow"], "{after}");
    assert_eq!(kept_generations(&after), kept_generations(&before));
    assert_eq!(kept_generations(&after), [1, 2, 3, 5]);
    let (_, created) = daemon.gateway().post("/v1/items", &item("billing", "billing-general", "restored"));
    assert_eq!(decided_by(&created), ("plugin".into(), "billing".into(), 2), "{created}");
    assert!(admin.get("/v1/plugins/billing/shadow").1["prioritise"]["decisions"].as_u64() >= Some(1));

    assert_eq!(admin.post_empty("/v1/plugins/billing/rollback/3").0, 200);
    assert_eq!(plugins_of(&admin, "billing")["current"]["generation"], 3);
    let (status, up) = admin.post_bytes("/v1/plugins/billing", &billing);
    assert_eq!((status, up["generation"].as_u64()), (201, Some(6)), "numbering goes on after the highest: {up}");
    let restored: Vec<(String, Option<u64>)> = audit(&admin, "action=restore");
    assert_eq!(restored.len(), 4, "{restored:?}");
}

/// Scenario (slow, run with `--ignored`): 1,200 uploads of billing — more than
/// the pooling allocator's 1,000 component instances — each answered 201, with
/// items still decided by the plugin at the end: pruning to `keep_generations`
/// drops old generations with their instances. (Before pruning, every upload
/// was kept with an instance and about a thousand exhausted the pool.)
#[test]
#[ignore]
fn more_uploads_than_the_instance_pool_holds() {
    let dir = fresh_dir("serve-plugins-many");
    let daemon = Daemon::start(&dir, Some(&billing_config("")));
    let admin = daemon.admin();
    let billing = read(artifacts::BILLING);
    let started = Instant::now();
    for n in 0..1_200 {
        let (status, reply) = admin.post_bytes("/v1/plugins/billing", &billing);
        assert_eq!(status, 201, "upload {n}: {reply}");
        if n % 20 == 0 {
            let (_, created) =
                daemon.gateway().post("/v1/items", &item("billing", "billing-general", &format!("m-{n}")));
            assert_eq!(decided_by(&created).0, "plugin", "after upload {n}: {created}");
        }
    }
    let billing_entry = plugins_of(&daemon.supervisor(), "billing");
    assert_eq!(kept_generations(&billing_entry).len(), 5, "{billing_entry}");
    eprintln!("1,200 uploads in {:.1} s", started.elapsed().as_secs_f64());
}
