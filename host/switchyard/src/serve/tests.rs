//! Property tests of the daemon's request handling, in process (the router of
//! [`api::routes`] driven with `tower::ServiceExt::oneshot`, no sockets): no body a
//! client can send makes the daemon panic or answer 5xx; a refusal names the field.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::api::{self, AppState};
use super::config::ServeConfig;

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
[auth]
insecure_local = true
[[departments]]
name = "billing"
[[departments]]
name = "claims"
[[queues]]
name = "billing-general"
department = "billing"
skill = "billing"
[[queues]]
name = "claims"
department = "claims"
[[agents]]
name = "ann"
skills = { billing = 5, claims = 3 }
state = "available"
"#;

fn daemon() -> (AppState, axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = ServeConfig::parse(CONFIG, &dir.path().join("switchyard.toml")).expect("the test config parses");
    let state: AppState = start_single(&config, &dir.path().join("data")).expect("the daemon starts");
    let app = api::routes(state.clone(), &config.http);
    (state, app, dir)
}

/// JSON values of every shape, biased towards the fields the API knows.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        prop_oneof![Just(1e300), Just(-1.0), Just(1e15), Just(0.001), Just(4.0e9)].prop_map(|f| json!(f)),
        "[a-z-]{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("billing"),
            Just("claims"),
            Just("billing-general"),
            Just("voice"),
            Just("chat"),
            Just("gold"),
            Just("available"),
            Just("away"),
            Just("offline"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let keys = prop_oneof![
            Just("department"),
            Just("queue"),
            Just("channel"),
            Just("skills"),
            Just("attributes"),
            Just("priority"),
            Just("tier"),
            Just("value"),
            Just("customer"),
            Just("case"),
            Just("due_in_s"),
            Just("group"),
            Just("capacity"),
            Just("wrap_up_s"),
            Just("state"),
            Just("resolved"),
            Just("handoff"),
            Just("billing"),
            Just("voice"),
            Just("x")
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.prop_map(str::to_owned), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn request(method: &str, path: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a well-formed request")
}

async fn send(app: &axum::Router, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request(method, path, body)).await.expect("the router answers");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

const ROUTES_WITH_BODIES: &[(&str, &str)] = &[
    ("POST", "/v1/items"),
    ("PUT", "/v1/agents/ann"),
    ("PUT", "/v1/agents/zed"),
    ("POST", "/v1/agents/ann/state"),
    ("POST", "/v1/items/1/complete"),
    ("POST", "/v1/offers/1/accept"),
    ("DELETE", "/v1/items/1"),
    ("PUT", "/v1/plugins/billing/fixtures"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any JSON body (and raw bytes) on every route that takes one: never a 5xx;
    /// a 422 names the field; the daemon still answers afterwards.
    #[test]
    fn no_body_makes_the_daemon_fail(
        bodies in prop::collection::vec((0..ROUTES_WITH_BODIES.len(), any_json()), 1..12),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio");
        runtime.block_on(async {
            let (_state, app, _dir) = daemon();
            for (route, body) in &bodies {
                let (method, path) = ROUTES_WITH_BODIES[*route];
                let bytes = serde_json::to_vec(body).expect("json");
                let (status, reply) = send(&app, method, path, bytes).await;
                prop_assert!(!status.is_server_error(), "{method} {path} {body} -> {status} {reply}");
                if status == StatusCode::UNPROCESSABLE_ENTITY {
                    prop_assert!(reply["field"].is_string(), "{method} {path} {body} -> 422 without a field: {reply}");
                }
            }
            let (status, reply) = send(&app, "POST", "/v1/items", raw.clone()).await;
            prop_assert!(status.is_client_error() || status.is_success(), "raw {raw:?} -> {status} {reply}");
            let (status, _) = send(&app, "GET", "/v1/queues", Vec::new()).await;
            prop_assert_eq!(status, StatusCode::OK);
            Ok(())
        })?;
    }

    /// Any value for each numeric or duration key of the config: parsed, or
    /// refused with an error naming the key — never a panic.
    #[test]
    fn no_config_value_panics(
        key in prop_oneof![
            Just("tick_ms"), Just("keep_finished"), Just("http.max_connections"), Just("http.idle_timeout_s"),
            Just("http.request_timeout_s"), Just("departments.offer_timeout_s"), Just("departments.fcr_window_h"),
            Just("departments.call_deadline_ms"), Just("departments.rule_budget_ms"), Just("queues.service_level_s"),
            Just("agents.wrap_up_s"), Just("agents.capacity.voice"), Just("retention.alerts"),
            Just("retention.closed_case_days"), Just("limits.attributes_per_item"), Just("limits.rechecks_per_item")
        ],
        value in prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| if v.is_finite() { format!("{v:e}") } else { "nan".into() }),
            Just("inf".to_owned()), Just("-inf".to_owned()), Just("1e308".to_owned()), Just("\"x\"".to_owned()),
            Just("-1".to_owned()), Just("0".to_owned()), Just("18446744073709551615".to_owned())
        ],
    ) {
        let (table, field) = key.split_once('.').unwrap_or(("", key));
        let text = match table {
            "" => format!("{field} = {value}\n"),
            "http" | "retention" | "limits" => format!("[{table}]\n{field} = {value}\n"),
            "departments" => format!("[[departments]]\nname = \"b\"\n{field} = {value}\n"),
            "queues" => format!("[[departments]]\nname = \"b\"\n[[queues]]\nname = \"q\"\ndepartment = \"b\"\n{field} = {value}\n"),
            _ => match field.split_once('.') {
                Some((t, f)) => format!("[[agents]]\nname = \"a\"\n{t} = {{ {f} = {value} }}\n"),
                None => format!("[[agents]]\nname = \"a\"\n{field} = {value}\n"),
            },
        };
        if let Err(e) = ServeConfig::parse(&text, std::path::Path::new("p.toml")) {
            let message = e.to_string();
            let leaf = field.rsplit('.').next().unwrap_or(field);
            prop_assert!(message.contains(leaf) || message.contains("invalid") || message.contains("expected"), "{text}\n-> {message}");
        }
    }
}

/// Durations at the edge of the bounds: accepted at the limit, 422 past it.
#[test]
fn durations_are_bounded() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let (_state, app, _dir) = daemon();
        let ok = json!({ "department": "claims", "queue": "claims", "due_in_s": 366.0 * 24.0 * 3600.0 });
        assert_eq!(send(&app, "POST", "/v1/items", ok.to_string().into_bytes()).await.0, StatusCode::CREATED);
        for due in [366.0 * 24.0 * 3600.0 + 1.0, 1e300, -1.0] {
            let body = json!({ "department": "claims", "queue": "claims", "due_in_s": due });
            let (status, reply) = send(&app, "POST", "/v1/items", body.to_string().into_bytes()).await;
            assert_eq!(
                (status, reply["field"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("due_in_s")),
                "{due}"
            );
        }
        let (status, reply) =
            send(&app, "PUT", "/v1/agents/zed", json!({ "wrap_up_s": 1e12 }).to_string().into_bytes()).await;
        assert_eq!((status, reply["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("wrap_up_s")));
    });
}

/// The router's limits are checked before journaling: an item over one is a
/// 422 naming the field, and nothing is created.
#[test]
fn an_item_over_a_router_limit_is_refused_before_it_is_journaled() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let (state, app, _dir) = daemon();
        let attributes: serde_json::Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
        let body = json!({ "department": "claims", "queue": "claims", "attributes": attributes });
        let (status, reply) = send(&app, "POST", "/v1/items", body.to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
        assert!(reply["field"].as_str().is_some_and(|f| f.starts_with("attributes")), "{reply}");
        let long = json!({ "department": "claims", "queue": "claims", "attributes": { "k": "v".repeat(5000) } });
        let (status, reply) = send(&app, "POST", "/v1/items", long.to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
        assert!(reply["error"].as_str().is_some_and(|e| e.contains("over the limit")), "{reply}");
        assert_eq!(state.core.lock().unwrap().router.open_items(), 0);
    });
}

/// Rules that raise one alert per waiting item (built-in otherwise).
struct Alerting;

impl switchyard_core::rules::RuleSet for Alerting {
    fn prioritise(
        &self,
        items: &switchyard_contract::ItemBatch,
    ) -> switchyard_core::rules::Decided<Vec<switchyard_contract::Priority>> {
        switchyard_core::rules::BuiltInRules.prioritise(items)
    }
    fn escalate(
        &self,
        items: &switchyard_contract::ItemBatch,
    ) -> switchyard_core::rules::Decided<Vec<switchyard_contract::Escalation>> {
        let answers = items
            .rows
            .iter()
            .map(|_| switchyard_contract::Escalation {
                actions: vec![switchyard_contract::EscalationAction::Alert("customer waited too long".into())],
                recheck_in_ms: None,
            })
            .collect();
        switchyard_core::rules::Decided::built_in(answers)
    }
    fn match_agents(
        &self,
        item: &switchyard_contract::ItemBatch,
        candidates: &switchyard_contract::CandidateTable,
    ) -> switchyard_core::rules::Decided<switchyard_contract::MatchResult> {
        switchyard_core::rules::BuiltInRules.match_agents(item, candidates)
    }
}

/// Scenario: an escalation rule raises an alert; a supervisor reads it and
/// acknowledges it (journaled, the first acknowledgement kept); an unknown alert
/// is a 404.
#[test]
fn alerts_are_listed_and_acknowledged() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let (state, app, _dir) = daemon();
        state.core.lock().unwrap().router.set_rules("claims", Arc::new(Alerting)).unwrap();
        // Nobody to take the item: it waits, and the escalation rule runs.
        let away = json!({ "state": "away" }).to_string().into_bytes();
        assert_eq!(send(&app, "POST", "/v1/agents/ann/state", away).await.0, StatusCode::OK);
        let body = json!({ "department": "claims", "queue": "claims" });
        assert_eq!(send(&app, "POST", "/v1/items", body.to_string().into_bytes()).await.0, StatusCode::CREATED);
        let (status, alerts) = send(&app, "GET", "/v1/alerts", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(alerts[0]["message"], "customer waited too long", "{alerts}");
        assert!(alerts[0]["acknowledged"].is_null());
        let id = alerts[0]["id"].as_u64().expect("an alert id");
        let (status, acked) = send(&app, "POST", &format!("/v1/alerts/{id}/ack"), Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{acked}");
        assert_eq!(acked["acknowledged"]["by"], "admin");
        assert_eq!(send(&app, "POST", "/v1/alerts/999/ack", Vec::new()).await.0, StatusCode::NOT_FOUND);
        assert_eq!(send(&app, "POST", "/v1/alerts/x/ack", Vec::new()).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    });
}

/// A journal naming active plugins the daemon can no longer load — billing's
/// blob is missing, claims' blob is not a component — still starts: both
/// departments decide with their built-in rules, `GET /v1/plugins` says why,
/// items are routed, and the next upload numbers after the journal's highest.
#[test]
fn an_active_plugin_that_cannot_be_restored_leaves_the_built_in_rules() {
    use super::journal::{JournalStore, Op, Record, RedbJournal};
    use sha2::Digest;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("the data directory");
    {
        let mut journal = RedbJournal::open(&data.join("journal.redb")).expect("the journal opens");
        let garbage = b"not a component".to_vec();
        let garbage_sha = format!("{:x}", sha2::Sha256::digest(&garbage));
        journal.put_blob(&garbage_sha, &garbage).expect("a blob");
        let activated = |department: &str, sha256: &str, generation| {
            let op = Op::PluginActivated {
                department: department.into(),
                plugin: department.into(),
                sha256: sha256.into(),
                generation,
            };
            Record::new(1_000, op)
        };
        journal
            .append(&[activated("billing", &"0".repeat(64), 7), activated("claims", &garbage_sha, 3)])
            .expect("records");
    }
    let config = ServeConfig::parse(CONFIG, &dir.path().join("switchyard.toml")).expect("the test config parses");
    let state: AppState = start_single(&config, &data).expect("the daemon starts anyway");
    let app = api::routes(state.clone(), &config.http);
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let (status, plugins) = send(&app, "GET", "/v1/plugins", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        for (department, why) in [("billing", "is missing"), ("claims", "cannot load plugin")] {
            let entry = plugins
                .as_array()
                .and_then(|a| a.iter().find(|d| d["department"] == department))
                .cloned()
                .unwrap_or_default();
            assert_eq!(entry["rules"], "built-in", "{entry}");
            assert!(entry["built_in_because"].as_str().is_some_and(|w| w.contains(why)), "{entry}");
        }
        let item = json!({ "department": "billing", "queue": "billing-general" });
        let (status, created) = send(&app, "POST", "/v1/items", item.to_string().into_bytes()).await;
        assert_eq!(
            (status, &created["why"]["prioritised_by"]["kind"]),
            (StatusCode::CREATED, &json!("built-in")),
            "{created}"
        );
        let wasm = std::fs::read(switchyard_plugin_artifacts::BILLING).expect("the billing component");
        let (status, uploaded) = send(&app, "POST", "/v1/plugins/billing", wasm).await;
        assert_eq!((status, uploaded["generation"].as_u64()), (StatusCode::CREATED, Some(8)), "{uploaded}");
        let (_, audit) = send(&app, "GET", "/v1/audit?action=restore", Vec::new()).await;
        assert_eq!(audit.as_array().map(Vec::len), Some(2), "{audit}");
        assert!(audit.as_array().is_some_and(|a| a.iter().all(|e| e["result"] == "rejected")), "{audit}");
    });
}

/// A journal written before config loads were journaled (an upload made
/// generation 2; generation 1 came from the config file and is not in it): at
/// start the journal's generation 2 stays active rather than the config file
/// becoming a new generation, and the next upload is generation 3.
#[test]
fn an_older_journal_keeps_its_active_generation_over_the_config_file() {
    use super::journal::{JournalStore, Op, Record, RedbJournal};
    use sha2::Digest;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("the data directory");
    let wasm = std::fs::read(switchyard_plugin_artifacts::BILLING).expect("the billing component");
    let sha = format!("{:x}", sha2::Sha256::digest(&wasm));
    {
        let mut journal = RedbJournal::open(&data.join("journal.redb")).expect("the journal opens");
        journal.put_blob(&sha, &wasm).expect("a blob");
        let op = Op::PluginActivated {
            department: "billing".into(),
            plugin: "billing".into(),
            sha256: sha.clone(),
            generation: 2,
        };
        journal.append(&[Record::new(1_000, op)]).expect("records");
    }
    let text = CONFIG.replacen(
        "name = \"billing\"\n",
        &format!("name = \"billing\"\nplugin = {:?}\n", switchyard_plugin_artifacts::BILLING),
        1,
    );
    let config = ServeConfig::parse(&text, &dir.path().join("switchyard.toml")).expect("the test config parses");
    let state: AppState = start_single(&config, &data).expect("the daemon starts");
    let app = api::routes(state.clone(), &config.http);
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let (_, plugins) = send(&app, "GET", "/v1/plugins", Vec::new()).await;
        assert_eq!(plugins[0]["department"], "billing");
        assert_eq!(
            (&plugins[0]["current"]["generation"], &plugins[0]["current"]["sha256"]),
            (&json!(2), &json!(sha)),
            "{plugins}"
        );
        let (_, swaps) = send(&app, "GET", "/v1/audit?action=swap", Vec::new()).await;
        assert_eq!(swaps.as_array().map(Vec::len), Some(0), "{swaps}");
        let (status, uploaded) = send(&app, "POST", "/v1/plugins/billing", wasm.clone()).await;
        assert_eq!((status, uploaded["generation"].as_u64()), (StatusCode::CREATED, Some(3)), "{uploaded}");
    });
}

/// `plugin_dir` and a department's `fixtures` are checked at start, and a
/// refusal names the key.
#[test]
fn plugin_dir_and_fixtures_keys_are_checked_at_start() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (text, key) in [
        (format!("plugin_dir = \"missing\"\n{CONFIG}"), "key `plugin_dir`"),
        (
            CONFIG.replacen("name = \"billing\"\n", "name = \"billing\"\nfixtures = \"missing.toml\"\n", 1),
            "key `fixtures`",
        ),
    ] {
        let config = ServeConfig::parse(&text, &dir.path().join("switchyard.toml")).expect("the config parses");
        match start_single(&config, &dir.path().join("data")) {
            Ok(_) => panic!("started with {key} wrong"),
            Err(e) => assert!(e.to_string().contains(key), "{e}"),
        }
    }
}

/// A department's rules that note whether the daemon's state lock is held
/// when they are asked. They claim to run a plugin for every hook, so the
/// daemon may not ask them inline.
struct LockProbe {
    inner: Arc<dyn switchyard_core::rules::RuleSet>,
    state: std::sync::Weak<api::Shared>,
    /// Calls per hook: prioritise, escalate, match-agents.
    calls: [std::sync::atomic::AtomicUsize; 3],
    under_lock: std::sync::atomic::AtomicUsize,
}

impl LockProbe {
    fn note(&self, hook: usize) {
        use std::sync::atomic::Ordering::SeqCst;
        self.calls[hook].fetch_add(1, SeqCst);
        // One request at a time in this test: the lock is busy only if the
        // caller holds it.
        if self.state.upgrade().is_some_and(|s| s.core.try_lock().is_err()) {
            self.under_lock.fetch_add(1, SeqCst);
        }
    }
    fn counts(&self) -> ([usize; 3], usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.calls.each_ref().map(|c| c.load(SeqCst)), self.under_lock.load(SeqCst))
    }
}

impl switchyard_core::rules::RuleSet for LockProbe {
    fn prioritise(
        &self,
        items: &switchyard_contract::ItemBatch,
    ) -> switchyard_core::rules::Decided<Vec<switchyard_contract::Priority>> {
        self.note(0);
        self.inner.prioritise(items)
    }
    fn escalate(
        &self,
        items: &switchyard_contract::ItemBatch,
    ) -> switchyard_core::rules::Decided<Vec<switchyard_contract::Escalation>> {
        self.note(1);
        self.inner.escalate(items)
    }
    fn match_agents(
        &self,
        item: &switchyard_contract::ItemBatch,
        candidates: &switchyard_contract::CandidateTable,
    ) -> switchyard_core::rules::Decided<switchyard_contract::MatchResult> {
        self.note(2);
        self.inner.match_agents(item, candidates)
    }
}

/// No rule is asked under the daemon's state lock: a new item's
/// `prioritise`, its `match-agents` and `escalate`, an agent filled when
/// it becomes available, and a hand-off's `prioritise` inside a completion —
/// and the replies still show the decisions taken (offered, handed off).
#[test]
fn no_rule_is_asked_under_the_state_lock() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let (state, app, _dir) = daemon();
        let mut probes = Vec::new();
        {
            let mut core = state.core.lock().unwrap();
            let catalog = core.runtime.catalog().clone();
            for department in ["billing", "claims"] {
                let probe = Arc::new(LockProbe {
                    inner: core.direct_rules[department].clone(),
                    state: Arc::downgrade(&state),
                    calls: Default::default(),
                    under_lock: Default::default(),
                });
                core.direct_rules.insert(department.into(), probe.clone());
                let taped = super::tape::TapedRules::new(department, probe.clone(), core.tape.clone(), catalog.clone());
                core.router.set_rules(department, Arc::new(taped)).unwrap();
                probes.push(probe);
            }
        }
        let post = |body: Value| send(&app, "POST", "/v1/items", body.to_string().into_bytes());
        // Ann is available: the item is prioritised, matched and offered.
        let (status, first) = post(json!({ "department": "billing", "queue": "billing-general" })).await;
        assert_eq!((status, first["status"].as_str()), (StatusCode::CREATED, Some("offered")), "{first}");
        let first = first["id"].as_u64().unwrap();
        // A second item waits (ann is busy): `escalate` is asked about it.
        let (_, second) = post(json!({ "department": "billing", "queue": "billing-general" })).await;
        assert_eq!(second["status"], "queued", "{second}");
        // (Accepting is an agent's route; an open daemon's caller is admin.)
        state.core.lock().unwrap().submit(super::journal::Op::Accept { item: first }).expect("ann accepts");
        // Completing hands off to claims; ann is then filled with the second item.
        let handoff =
            json!({ "resolved": false, "handoff": { "department": "claims", "queue": "claims", "channel": "case" } });
        let (status, done) =
            send(&app, "POST", &format!("/v1/items/{first}/complete"), handoff.to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        let handed = done["handoff_item"].as_u64().expect("a hand-off item");
        let (_, item) = send(&app, "GET", &format!("/v1/items/{handed}"), vec![]).await;
        assert_eq!(item["queue"], "claims", "{item}");
        let (_, item) = send(&app, "GET", &format!("/v1/items/{}", second["id"]), vec![]).await;
        assert_eq!(item["status"], "offered", "ann was filled with the waiting item: {item}");

        let (billing, claims) = (probes[0].counts(), probes[1].counts());
        assert!(billing.0.iter().all(|&n| n > 0), "billing asked every hook: {billing:?}");
        assert!(claims.0[0] > 0, "the hand-off was prioritised by claims' rules: {claims:?}");
        assert_eq!((billing.1, claims.1), (0, 0), "calls under the lock: billing {billing:?}, claims {claims:?}");
    });
}

/// Match rules that veto every candidate for an item of priority 9, and
/// otherwise rank like the built-in rule; they claim to run a plugin, so the
/// daemon defers them.
struct VetoesPriorityNine;

impl switchyard_core::rules::RuleSet for VetoesPriorityNine {
    fn prioritise(
        &self,
        items: &switchyard_contract::ItemBatch,
    ) -> switchyard_core::rules::Decided<Vec<switchyard_contract::Priority>> {
        switchyard_core::rules::Decided::built_in(switchyard_core::rules::BuiltInRules::prioritise(items))
    }
    fn escalate(
        &self,
        items: &switchyard_contract::ItemBatch,
    ) -> switchyard_core::rules::Decided<Vec<switchyard_contract::Escalation>> {
        switchyard_core::rules::Decided::built_in(switchyard_core::rules::BuiltInRules::escalate(items))
    }
    fn match_agents(
        &self,
        item: &switchyard_contract::ItemBatch,
        candidates: &switchyard_contract::CandidateTable,
    ) -> switchyard_core::rules::Decided<switchyard_contract::MatchResult> {
        if item.rows.first().is_some_and(|row| row.priority == 9) {
            return switchyard_core::rules::Decided::built_in(switchyard_contract::MatchResult::Ranked(Vec::new()));
        }
        switchyard_core::rules::Decided::built_in(switchyard_core::rules::BuiltInRules::match_agents(item, candidates))
    }
}

/// An agent who becomes available is offered the first waiting item the match
/// rule accepts for them, even when the rule refuses the items ahead of it:
/// each deferred round asks about several waiting items and keeps the answers
/// of the rounds before, so filling the agent moves past refusals instead of
/// asking about the first one again and again.
#[test]
fn filling_an_agent_moves_past_items_the_rule_refuses() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let (state, app, _dir) = daemon();
        {
            let mut core = state.core.lock().unwrap();
            let catalog = core.runtime.catalog().clone();
            let rules: Arc<dyn switchyard_core::rules::RuleSet> = Arc::new(VetoesPriorityNine);
            core.direct_rules.insert("billing".into(), rules.clone());
            let taped = super::tape::TapedRules::new("billing", rules, core.tape.clone(), catalog);
            core.router.set_rules("billing", Arc::new(taped)).unwrap();
        }
        let away = json!({ "state": "away" }).to_string().into_bytes();
        assert_eq!(send(&app, "POST", "/v1/agents/ann/state", away).await.0, StatusCode::OK);
        let post = |body: Value| send(&app, "POST", "/v1/items", body.to_string().into_bytes());
        let mut refused = Vec::new();
        // More refusals ahead than one round asks about, more than a settle's
        // rounds if it asked one at a time.
        for _ in 0..12 {
            let (_, item) = post(json!({ "department": "billing", "queue": "billing-general", "priority": 9 })).await;
            refused.push(item["id"].clone());
        }
        let (_, wanted) = post(json!({ "department": "billing", "queue": "billing-general", "priority": 1 })).await;
        let available = json!({ "state": "available" }).to_string().into_bytes();
        assert_eq!(send(&app, "POST", "/v1/agents/ann/state", available).await.0, StatusCode::OK);
        let (_, item) = send(&app, "GET", &format!("/v1/items/{}", wanted["id"]), vec![]).await;
        assert_eq!(item["status"], "offered", "{item}");
        for id in refused {
            let (_, item) = send(&app, "GET", &format!("/v1/items/{id}"), vec![]).await;
            assert_eq!(item["status"], "queued", "{item}");
        }
    });
}

/// Start a node of its own (the embedded store) on `data`.
fn start_single(config: &super::config::ServeConfig, data: &std::path::Path) -> crate::error::Result<AppState> {
    super::start(config, data, &super::Store::Embedded, std::sync::Arc::new(super::cluster::NodeStatus::single()))
}
