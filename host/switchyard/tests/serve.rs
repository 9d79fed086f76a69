//! End-to-end tests of `switchyard serve`: the real binary on a loopback port,
//! driven over HTTP only.

mod serve_common;

use serde_json::{Value, json};
use serve_common::{ADMIN, Daemon, INTEGRATION, SUPERVISOR, config, fresh_dir};

fn billing_plugin_config() -> String {
    // The billing plugin from the config file (generation 1); claims on built-in rules.
    config("").replacen(
        "name = \"billing\"\n",
        &format!("name = \"billing\"\nplugin = {:?}\n", switchyard_plugin_artifacts::BILLING),
        1,
    )
}

fn item(queue: &str, reference: &str) -> Value {
    let department = if queue.starts_with("billing") { "billing" } else { "claims" };
    json!({
        "department": department, "queue": queue, "channel": "voice", "tier": "gold",
        "attributes": { "ref": reference, "amount": "120" }, "customer": "cust-1", "case": "case-1",
    })
}

/// Scenario: an agent is registered and logs in; items are posted, offered,
/// accepted, completed with a hand-off, rejected and withdrawn; the desktop,
/// case, queues and metrics show it; a plugin is uploaded, a broken one is
/// refused, and ops roll back — all over HTTP. Bad requests change nothing.
/// After SIGTERM and a restart on the same data the state is back.
#[test]
fn the_daemon_routes_work_end_to_end_over_http() {
    let dir = fresh_dir("serve-e2e");
    let mut daemon = Daemon::start(&dir, Some(&billing_plugin_config()));
    let open = daemon.client(None);
    let admin = daemon.client(Some(ADMIN));
    let gateway = daemon.client(Some(INTEGRATION));
    let sup = daemon.client(Some(SUPERVISOR));

    // Health is open; everything under /v1 needs a token; admin endpoints the admin one.
    assert_eq!(open.get("/healthz"), (200, json!({ "status": "ok" })));
    assert_eq!(open.get("/readyz").0, 200);
    assert_eq!(open.post("/v1/items", &item("billing-general", "x")).0, 401);
    let ann = json!({ "group": "billing", "skills": { "billing": 8, "disputes": 5 } });
    assert_eq!(gateway.put("/v1/agents/ann", &ann).0, 403);

    // Register and log in.
    let (status, body) = admin.put("/v1/agents/ann", &ann);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "offline");
    let agent = daemon.agent_client("ann");
    let (status, body) = agent.post("/v1/agents/ann/state", &json!({ "state": "available" }));
    assert_eq!((status, &body["state"]), (200, &json!("available")));

    // Bad requests: 422 naming the field, nothing applied.
    let bad = [
        (json!({ "department": "billing", "queue": "nope" }), "queue"),
        (json!({ "department": "billng", "queue": "billing-general" }), "department"),
        (json!({ "department": "billing", "queue": "claims" }), "queue"),
        (json!({ "department": "billing", "queue": "billing-general", "skills": { "billing": 11 } }), "skills.billing"),
        (json!({ "department": "billing", "queue": "billing-general", "colour": "red" }), "colour"),
        (json!({ "department": "billing", "queue": "billing-general", "priority": "high" }), "priority"),
        (json!({ "department": "billing", "queue": "billing-general", "attributes": { "ref": 7 } }), "attributes.ref"),
        (json!({ "queue": "billing-general" }), "department"),
    ];
    for (body, field) in bad {
        let (status, reply) = gateway.post("/v1/items", &body);
        assert_eq!((status, reply["field"].as_str()), (422, Some(field)), "{body} -> {reply}");
    }
    assert_eq!(gateway.put("/v1/agents/bob", &json!({ "skills": { "billing": 0 } })).0, 403);
    let (status, reply) = admin.put("/v1/agents/bob", &json!({ "skills": { "billing": 0 } }));
    assert_eq!((status, reply["field"].as_str()), (422, Some("skills.billing")));
    let (_, queue) = agent.get("/v1/queues/billing-general");
    assert_eq!(queue["live"]["waiting"], 0);
    assert_eq!(queue["totals"]["offered"], 0);
    assert_eq!(admin.get("/v1/agents").1.as_array().map(Vec::len), Some(1), "bob was not registered");

    // A new item is prioritised by the billing plugin and offered to ann at once.
    let (status, first) = gateway.post("/v1/items", &item("billing-general", "first"));
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["id"], 1);
    assert_eq!(first["status"], "offered");
    assert_eq!(first["queue"], "billing-general");
    assert_eq!(first["why"]["prioritised_by"], json!({ "kind": "plugin", "plugin": "billing", "generation": 1 }));

    // Ann's desktop shows the offer with its attributes and why it came to her.
    let (status, desk) = agent.get("/v1/agents/ann/desktop");
    assert_eq!(status, 200);
    assert_eq!(desk["name"], "ann");
    assert_eq!(desk["items"][0]["id"], 1);
    assert_eq!(desk["items"][0]["status"], "offered");
    assert_eq!(desk["items"][0]["explanation"]["agent"], "ann");
    assert_eq!(desk["items"][0]["attributes"], json!([["amount", "120"], ["ref", "first"]]));

    // Accept; a second call waits (ann is on a call).
    assert_eq!(agent.post_empty("/v1/offers/1/accept"), (200, json!({ "id": 1, "status": "active" })));
    assert_eq!(agent.post_empty("/v1/offers/1/accept").0, 409);
    assert_eq!(agent.get("/v1/agents/ann/desktop").1["state"], "busy");
    let (_, second) = gateway.post("/v1/items", &item("billing-general", "second"));
    assert_eq!((second["id"].clone(), second["status"].clone()), (json!(2), json!("queued")));
    assert_eq!(agent.get("/v1/queues/billing-general").1["live"]["waiting"], 1);

    // Complete with a hand-off to claims: a follow-up item in the same case.
    let (status, done) =
        agent.post("/v1/items/1/complete", &json!({ "resolved": true, "handoff": item("claims", "follow-up") }));
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["handoff_item"], 3);
    let (_, one) = sup.get("/v1/items/1");
    assert_eq!((one["status"].clone(), one["resolved"].clone()), (json!("completed"), json!(true)));
    assert_eq!(sup.get("/v1/items/3").1["queue"], "claims");

    // Ann is free: the waiting call is offered to her; she rejects, the customer hangs up.
    assert_eq!(agent.get("/v1/items/2").1["status"], "offered");
    assert_eq!(agent.post_empty("/v1/offers/2/reject"), (200, json!({ "id": 2, "status": "queued" })));
    assert_eq!(gateway.delete("/v1/items/2"), (200, json!({ "id": 2, "status": "withdrawn" })));
    assert_eq!(gateway.delete("/v1/items/2").0, 404, "only waiting or offered items can be withdrawn");
    assert_eq!(sup.get("/v1/items/2").1["status"], "withdrawn", "a finished item reads back");
    assert_eq!(sup.get("/v1/items/99").0, 404);

    // The case crosses two departments.
    let (status, case) = sup.get("/v1/cases/case-1");
    assert_eq!(status, 200);
    assert_eq!(case["departments"], json!(["billing", "claims"]));
    assert!(case["history"].as_array().is_some_and(|h| h.len() >= 4), "{case}");

    // Queue statistics.
    let (_, queues) = agent.get("/v1/queues");
    let names: Vec<&str> = queues.as_array().unwrap().iter().filter_map(|q| q["name"].as_str()).collect();
    assert_eq!(names, ["billing-general", "billing-disputes", "claims"]);
    let billing = &queues[0];
    assert_eq!(billing["totals"]["answered"], 1);
    assert_eq!(billing["totals"]["completed"], 1);
    assert_eq!(billing["totals"]["abandoned"], 1);
    assert_eq!(queues[2]["live"]["waiting"], 1);

    // Metrics are open and in the Prometheus text format.
    let (status, text) = open.get_text("/metrics");
    assert_eq!(status, 200);
    check_metrics(&text);

    // Plugins: upload a new billing generation, refuse a broken one, roll back.
    let (_, plugins) = sup.get("/v1/plugins");
    assert_eq!(plugins[0]["department"], "billing");
    assert_eq!(plugins[0]["current"]["generation"], 1);
    let bytes = std::fs::read(switchyard_plugin_artifacts::BILLING).unwrap();
    // Refused before the body is read: a 403, or the connection closed under
    // the client while it was still sending the component.
    match agent.try_post_bytes("/v1/plugins/billing", &bytes) {
        Ok((status, reply)) => assert_eq!(status, 403, "{reply}"),
        Err(e) => assert!(e.contains("pipe") || e.contains("reset") || e.contains("disconnected"), "{e}"),
    }
    let (status, uploaded) = admin.post_bytes("/v1/plugins/billing", &bytes);
    assert_eq!(status, 201, "{uploaded}");
    assert_eq!(uploaded["generation"], 2);
    let broken = std::fs::read(switchyard_plugin_artifacts::HOSTILE_WRONG_WORLD).unwrap();
    let (status, refused) = admin.post_bytes("/v1/plugins/billing", &broken);
    assert_eq!((status, refused["field"].as_str()), (422, Some("body")), "{refused}");
    assert_eq!(admin.post_bytes("/v1/plugins/nowhere", &bytes).0, 404);
    assert_eq!(sup.get("/v1/plugins").1[0]["current"]["generation"], 2);
    let (_, item4) = gateway.post("/v1/items", &item("billing-general", "on-gen-2"));
    assert_eq!(item4["why"]["prioritised_by"]["generation"], 2);
    assert_eq!(admin.post_empty("/v1/plugins/billing/rollback/9").0, 404);
    let (status, rolled) = admin.post_empty("/v1/plugins/billing/rollback/1");
    assert_eq!((status, &rolled["generation"]), (200, &json!(1)), "{rolled}");
    let (_, plugins) = sup.get("/v1/plugins");
    assert_eq!(plugins[0]["current"]["generation"], 1);
    let kept: Vec<u64> =
        plugins[0]["kept"].as_array().unwrap().iter().filter_map(|k| k["generation"].as_u64()).collect();
    assert_eq!(kept, [1, 2]);
    let (_, item5) = gateway.post("/v1/items", &item("billing-general", "on-gen-1"));
    assert_eq!(item5["why"]["prioritised_by"]["generation"], 1);
    let (_, audit) = sup.get("/v1/audit");
    let actions: Vec<(&str, Option<u64>)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap_or(""), a["generation"].as_u64()))
        .collect();
    assert_eq!(
        actions,
        [
            ("load", Some(1)),
            ("swap", Some(1)),
            ("load", Some(2)),
            ("swap", Some(2)),
            ("reject", None),
            ("rollback", Some(1))
        ]
    );
    assert_eq!(audit[0]["trigger"]["kind"], "startup", "{audit}");
    assert_eq!(audit[2]["trigger"], json!({ "kind": "api", "who": "admin" }), "{audit}");

    // Graceful stop, then a restart on the same data finds everything again,
    // ann's token included (the journal keeps its hash).
    let ann_token = agent.token().map(str::to_owned);
    assert!(daemon.terminate(), "SIGTERM ends the daemon cleanly");
    let daemon = Daemon::start(&dir, None);
    let sup = daemon.client(Some(SUPERVISOR));
    assert_eq!(daemon.client(ann_token.as_deref()).get("/v1/agents/ann/desktop").0, 200);
    assert_eq!(sup.get("/v1/items/1").1["status"], "completed");
    assert_eq!(sup.get("/v1/items/2").1["status"], "withdrawn");
    assert_eq!(sup.get("/v1/items/3").1["queue"], "claims");
    let (_, queues) = sup.get("/v1/queues");
    assert_eq!(queues[0]["totals"]["answered"], 1);
    assert_eq!(queues[0]["totals"]["abandoned"], 1);
    assert_eq!(sup.get("/v1/plugins").1[0]["current"]["generation"], 1);
    // The audit log survives the restart, and says what the start-up restored
    // (the config's file is the one loaded before, so it is not loaded again).
    let (_, audit) = sup.get("/v1/audit");
    let actions: Vec<(&str, Option<u64>)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap_or(""), a["generation"].as_u64()))
        .collect();
    assert_eq!(actions.len(), 8, "{audit}");
    assert_eq!(actions[6..], [("restore", Some(1)), ("restore", Some(2))], "{audit}");
}

/// The exposition has the families ops chart, with the values of the scenario.
fn check_metrics(text: &str) {
    for needle in [
        "# TYPE switchyard_queue_waiting gauge",
        "switchyard_queue_answered_total{department=\"billing\",queue=\"billing-general\"} 1",
        "switchyard_queue_abandoned_total{department=\"billing\",queue=\"billing-general\"} 1",
        "switchyard_queue_waiting{department=\"claims\",queue=\"claims\"} 1",
        "switchyard_agents{state=\"available\"} 1",
        "switchyard_plugin_generation{department=\"billing\"} 1",
        "switchyard_plugin_breaker_open{department=\"billing\"} 0",
        "# TYPE switchyard_plugin_call_duration_seconds histogram",
        "switchyard_router_records{kind=\"alerts\"} 0",
        "switchyard_router_dropped_total{kind=\"customers\"} 0",
        "switchyard_department_over_rule_budget{department=\"billing\"} 0",
        "switchyard_journal_commits_total",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
}
