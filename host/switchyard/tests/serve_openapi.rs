//! `host/switchyard/openapi.json` (generated from the route table, `serve/openapi.rs`)
//! against the running daemon: it is the generated document, every documented
//! route is served, every served route is documented, and basic requests get
//! documented status codes.

mod serve_common;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use serve_common::{ADMIN, Daemon, INTEGRATION, config, fresh_dir};

fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// (method, path template) pairs of the document.
fn documented(spec: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

/// `host/switchyard/openapi.json` is the document the daemon generates from its route
/// table (`SWITCHYARD_WRITE_OPENAPI=1` rewrites it after a change).
#[test]
fn the_checked_in_document_is_the_generated_one() {
    let generated = switchyard::serve::openapi_document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    if std::env::var_os("SWITCHYARD_WRITE_OPENAPI").is_some() {
        std::fs::write(path, serde_json::to_string_pretty(&generated).unwrap() + "\n").unwrap();
    }
    assert_eq!(spec(), generated, "host/switchyard/openapi.json is stale: run with SWITCHYARD_WRITE_OPENAPI=1");
}

/// Every route has its words in `serve/openapi.json`, and nothing else does.
#[test]
fn every_route_is_documented_and_only_routes_are() {
    let (undocumented, unserved) = switchyard::serve::undocumented_and_unserved();
    assert!(undocumented.is_empty(), "routes without words in serve/openapi.json: {undocumented:?}");
    assert!(unserved.is_empty(), "words for routes nobody serves: {unserved:?}");
}

/// The daemon's route list and the document name the same routes.
#[test]
fn the_document_and_the_server_list_the_same_routes() {
    let served: BTreeSet<(String, String)> =
        switchyard::serve::ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(documented(&spec()), served);
}

/// Every operation's `x-roles` in the document are the roles the daemon enforces.
#[test]
fn the_document_states_each_routes_roles_as_enforced() {
    let spec = spec();
    for route in switchyard::serve::ROUTES {
        let documented: Vec<&str> = spec["paths"][route.path][route.method]["x-roles"]
            .as_array()
            .unwrap_or_else(|| panic!("{} {} has no x-roles", route.method, route.path))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let enforced: Vec<&str> = route.roles.iter().map(|r| r.as_str()).collect();
        assert_eq!(documented, enforced, "{} {}", route.method, route.path);
        let secured = spec["paths"][route.path][route.method].get("security").is_some();
        assert_eq!(secured, !route.roles.is_empty(), "{} {}: security vs roles", route.method, route.path);
    }
}

/// Scenario: with one item, one offline agent and no plugin, send every
/// documented operation once without a token and once with the admin token
/// (path parameters filled with existing names, bodies from the document's
/// examples): each answer's status is one the document lists, and no documented
/// route falls through to the "no such endpoint" fallback.
#[test]
fn every_documented_operation_answers_with_a_documented_status() {
    let spec = spec();
    let dir = fresh_dir("serve-openapi");
    let daemon = Daemon::start(&dir, Some(&config("")));
    let admin = daemon.client(Some(ADMIN));
    let open = daemon.client(None);
    assert_eq!(admin.put("/v1/agents/ann", &json!({ "skills": { "billing": 3 } })).0, 201);
    let created = daemon
        .client(Some(INTEGRATION))
        .post("/v1/items", &json!({ "department": "billing", "queue": "billing-general", "case": "case-1" }));
    assert_eq!(created.0, 201);
    let wasm = std::fs::read(switchyard_plugin_artifacts::BILLING).unwrap();

    let fill = |path: &str| {
        path.replace("/v1/items/{id}", "/v1/items/1")
            .replace("/v1/offers/{id}", "/v1/offers/1")
            .replace("/v1/agents/{id}", "/v1/agents/ann")
            .replace("/v1/cases/{id}", "/v1/cases/case-1")
            .replace("{name}", "billing-general")
            .replace("{department}", "billing")
            .replace("{generation}", "1")
    };
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap().iter().filter(|(k, _)| *k != "parameters") {
            let statuses: BTreeSet<u16> =
                op["responses"].as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect();
            let url = fill(path);
            let content = &op["requestBody"]["content"];
            let secured = op.get("security").is_some();
            let send = |client: &serve_common::Client| {
                if content.get("application/wasm").is_some() {
                    // Refused before the body is read, the connection may close
                    // while the component is still being sent: status 0.
                    return client.try_post_bytes(&url, &wasm).unwrap_or((0, Value::Null));
                }
                let json_body = &content["application/json"];
                let example = if json_body["example"].is_null() {
                    let schema = &json_body["schema"];
                    let reference = schema["$ref"].as_str().unwrap_or("");
                    spec.pointer(&reference.replacen('#', "", 1)).map(|s| s["example"].clone()).unwrap_or(Value::Null)
                } else {
                    json_body["example"].clone()
                };
                let body = (!content.is_null()).then_some(&example);
                client.request(method, &url, body)
            };
            let (status, reply) = send(&open);
            if secured {
                assert!(status == 401 || status == 0, "{method} {url} without a token: {status} {reply}");
                assert!(statuses.contains(&401), "{method} {path} does not document 401");
            } else {
                assert!(
                    statuses.contains(&status),
                    "{method} {url} without a token answered {status}, documented {statuses:?}"
                );
            }
            let (status, reply) = send(&admin);
            assert!(statuses.contains(&status), "{method} {url} answered {status} ({reply}), documented {statuses:?}");
            assert_ne!(reply["error"], "no such endpoint", "{method} {path} is not served");
            checked += 1;
        }
    }
    assert_eq!(checked, switchyard::serve::ROUTES.len());
    // The daemon serves the document it generates.
    assert_eq!(open.get("/openapi.json"), (200, switchyard::serve::openapi_document()));
    assert_eq!(admin.get("/v1/nothing-here"), (404, json!({ "error": "no such endpoint" })));
}
