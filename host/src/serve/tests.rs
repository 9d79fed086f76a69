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
    let state: AppState = Arc::new(super::start(&config, &dir.path().join("data")).expect("the daemon starts"));
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
            Just("billing"), Just("claims"), Just("billing-general"), Just("voice"), Just("chat"),
            Just("gold"), Just("available"), Just("away"), Just("offline"), Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let keys = prop_oneof![
            Just("department"), Just("queue"), Just("channel"), Just("skills"), Just("attributes"),
            Just("priority"), Just("tier"), Just("value"), Just("customer"), Just("case"), Just("due_in_s"),
            Just("group"), Just("capacity"), Just("wrap_up_s"), Just("state"), Just("resolved"),
            Just("handoff"), Just("billing"), Just("voice"), Just("x")
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
            Just("agents.wrap_up_s"), Just("agents.capacity.voice")
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
            "http" => format!("[http]\n{field} = {value}\n"),
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
            assert_eq!((status, reply["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("due_in_s")), "{due}");
        }
        let (status, reply) = send(&app, "PUT", "/v1/agents/zed", json!({ "wrap_up_s": 1e12 }).to_string().into_bytes()).await;
        assert_eq!((status, reply["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("wrap_up_s")));
    });
}
