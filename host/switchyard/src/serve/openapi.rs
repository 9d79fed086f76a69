//! The OpenAPI document of the daemon's HTTP API, produced from the route
//! table ([`super::ROUTES`]) so that it cannot drift from what is served.
//!
//! From the table come the paths, methods, path parameters, security, the
//! roles (`x-roles`), the body limits (`x-body-limit`) and the answers every
//! route of a kind can give (401/403 for a route with roles, 413 for one with a
//! body, 408 for all). From `openapi.json` beside this file come the words and
//! shapes no table holds: each operation's summary, request body, its own
//! answers and query parameters, the path parameters' types, the info and the
//! component schemas. A route without an entry there, or an entry without a
//! route, fails the test that keeps `host/switchyard/openapi.json` (the generated document,
//! checked in for readers and tools) equal to [`document`]; the daemon also
//! serves it at `GET /openapi.json`.

use serde_json::{Map, Value, json};

use super::api::{JSON_BODY_LIMIT, ROUTES, RouteSpec, path_body_limit};
use super::auth::Role;

/// The hand-written parts (see the module docs).
const WORDS: &str = include_str!("openapi.json");

/// The document. Panics only if `openapi.json` beside this file is not JSON
/// of the expected shape, which the test suite rules out.
pub fn document() -> Value {
    let words: Value = serde_json::from_str(WORDS).expect("serve/openapi.json is JSON");
    let mut paths = Map::new();
    for route in ROUTES {
        let key = format!("{} {}", route.method.to_uppercase(), route.path);
        let mut operation = words["operations"][&key].as_object().cloned().unwrap_or_default();
        let has_body = operation.contains_key("requestBody");
        let responses = operation.entry("responses").or_insert_with(|| json!({}));
        for (status, description) in common_responses(route, has_body) {
            responses[status] = json!({ "description": description });
        }
        if !route.roles.is_empty() {
            operation.insert("security".into(), json!([{ "bearer": [] }]));
        }
        operation.insert("x-roles".into(), json!(route.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()));
        if has_body {
            operation.insert("x-body-limit".into(), json!(route.body_limit));
        }
        let item = paths.entry(route.path).or_insert_with(|| json!({}));
        let parameters = path_parameters(route.path, &words["path_parameters"][route.path]);
        if !parameters.is_empty() {
            item["parameters"] = Value::Array(parameters);
        }
        item[route.method] = Value::Object(operation);
    }
    json!({
        "openapi": "3.0.3",
        "info": words["info"],
        "components": words["components"],
        "paths": paths,
    })
}

/// Operations documented in `openapi.json` that no route serves, and routes
/// it does not document, as `METHOD /path` (both empty when they agree).
pub fn undocumented_and_unserved() -> (Vec<String>, Vec<String>) {
    let words: Value = serde_json::from_str(WORDS).expect("serve/openapi.json is JSON");
    let documented: Vec<String> =
        words["operations"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let served: Vec<String> = ROUTES.iter().map(|r| format!("{} {}", r.method.to_uppercase(), r.path)).collect();
    let undocumented = served.iter().filter(|s| !documented.contains(s)).cloned().collect();
    let unserved = documented.iter().filter(|d| !served.contains(d)).cloned().collect();
    (undocumented, unserved)
}

/// What any route like `route` may answer besides its own outcomes.
fn common_responses(route: &RouteSpec, has_body: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if !route.roles.is_empty() {
        out.push(("401", "no valid token".to_owned()));
        let forbidden = if route.roles.contains(&Role::Agent) {
            "the token's role may not call this route, or an agent reached for another agent's things"
        } else {
            "the token's role may not call this route"
        };
        out.push(("403", forbidden.to_owned()));
    }
    if has_body {
        out.push(("413", format!("body over the route's limit ({} bytes)", route.body_limit)));
    }
    // The edge's timeout is per path (see `api::edge`).
    let upload = path_body_limit(route.path) > JSON_BODY_LIMIT;
    let timeout = if upload { "http.upload_timeout_s" } else { "http.request_timeout_s" };
    out.push(("408", format!("the request took longer than `{timeout}`")));
    out
}

/// The path parameters of `path` (`{name}` segments), typed and described by
/// `words` (a parameter it does not mention is a string).
fn path_parameters(path: &str, words: &Value) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let mut parameter = json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } });
            if let Some(extra) = words[name].as_object() {
                for (key, value) in extra {
                    parameter[key] = value.clone();
                }
            }
            parameter
        })
        .collect()
}
