//! Identity and roles of `switchyard serve`: every route walked with every role
//! (and with no token), agents confined to themselves, and the HTTP edge limits
//! (auth before the body, body limits, header timeout, open daemon on loopback only).

mod serve_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use serve_common::{ADMIN, Client, Daemon, INTEGRATION, SUPERVISOR, config, fresh_dir};
use switchyard::serve::{ROUTES, Role};

/// A body the route accepts (or at least parses far enough to reach its checks).
fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("post", "/v1/items") => Some(json!({ "department": "billing", "queue": "billing-general" })),
        ("post", "/v1/items/{id}/complete") => Some(json!({ "resolved": true })),
        ("put", "/v1/agents/{id}") => Some(json!({ "skills": { "billing": 5 } })),
        ("post", "/v1/agents/{id}/state") => Some(json!({ "state": "available" })),
        _ => None,
    }
}

/// Scenario: agents ann and bob are registered and hold tokens; item 1 is offered
/// to ann. Each route is called with no token, with the admin, supervisor and
/// integration tokens, with ann's token on ann's own things and with ann's token
/// on bob's (or on an item she does not hold). A role the route does not list
/// gets 403 and a missing token 401 — before anything is applied; a listed role
/// gets neither; ann never reaches bob's things.
#[test]
fn every_route_with_every_role() {
    let dir = fresh_dir("serve-roles");
    let daemon = Daemon::start(&dir, Some(&config("")));
    let admin = daemon.client(Some(ADMIN));
    for name in ["ann", "bob"] {
        assert_eq!(admin.put(&format!("/v1/agents/{name}"), &json!({ "skills": { "billing": 5 } })).0, 201);
    }
    let ann = daemon.agent_client("ann");
    let bob = daemon.agent_client("bob");
    assert_eq!(ann.post("/v1/agents/ann/state", &json!({ "state": "available" })).0, 200);
    let gateway = daemon.client(Some(INTEGRATION));
    let (status, item) =
        gateway.post("/v1/items", &json!({ "department": "billing", "queue": "billing-general", "case": "c-1" }));
    assert_eq!((status, &item["status"]), (201, &json!("offered")), "{item}");
    assert_eq!(ann.get("/v1/agents/ann/desktop").1["items"][0]["id"], 1, "item 1 is offered to ann");

    let callers: [(&str, Option<Role>, Client); 4] = [
        ("admin", Some(Role::Admin), admin.clone()),
        ("supervisor", Some(Role::Supervisor), daemon.client(Some(SUPERVISOR))),
        ("integration", Some(Role::Integration), gateway.clone()),
        ("none", None, daemon.client(None)),
    ];
    let mut calls = 0;
    for route in ROUTES {
        let body = body_for(route.method, route.path);
        // Paths that change state are filled so that a permitted call is refused
        // by the handler (unknown id) rather than changing the scene for the
        // next caller; what is checked here is the auth layer's answer.
        let neutral = route
            .path
            .replace("/v1/items/{id}", "/v1/items/999")
            .replace("/v1/offers/{id}", "/v1/offers/999")
            .replace("/v1/agents/{id}", "/v1/agents/nobody")
            .replace("{name}", "billing-general")
            .replace("{department}", "nowhere")
            .replace("{generation}", "1")
            .replace("/v1/cases/{id}", "/v1/cases/c-1");
        for (who, role, client) in &callers {
            let (status, reply) = if route.path == "/v1/plugins/{department}" {
                client.post_bytes(&neutral, b"not a component")
            } else {
                client.request(route.method, &neutral, body.as_ref())
            };
            calls += 1;
            match role {
                _ if route.roles.is_empty() => {
                    assert!(status < 400, "{who} {} {neutral}: {status} {reply}", route.method)
                }
                None => assert_eq!(status, 401, "{who} {} {neutral}: {reply}", route.method),
                Some(role) if route.roles.contains(role) => {
                    assert!(status != 401 && status != 403, "{who} {} {neutral}: {status} {reply}", route.method)
                }
                Some(_) => {
                    assert_eq!(status, 403, "{who} {} {neutral}: {reply}", route.method);
                    assert!(reply["error"].as_str().is_some_and(|e| e.contains("is for the roles")), "{reply}");
                }
            }
        }
        // An agent: on its own things where the route takes an agent or item.
        let own = route
            .path
            .replace("/v1/agents/{id}", "/v1/agents/ann")
            .replace("/v1/items/{id}", "/v1/items/1")
            .replace("/v1/offers/{id}", "/v1/offers/999")
            .replace("{name}", "billing-general")
            .replace("{department}", "billing")
            .replace("{generation}", "1")
            .replace("/v1/cases/{id}", "/v1/cases/c-1");
        let reads_only = route.method == "get";
        if reads_only || !route.roles.contains(&Role::Agent) {
            let (status, reply) = ann.request(route.method, &own, body.as_ref());
            calls += 1;
            if route.roles.is_empty() || route.roles.contains(&Role::Agent) {
                assert!(status != 401 && status != 403, "ann {} {own}: {status} {reply}", route.method);
            } else {
                assert_eq!(status, 403, "ann {} {own}: {reply}", route.method);
            }
        }
        // …and never on another agent's.
        if route.roles.contains(&Role::Agent) && (route.path.contains("{id}")) {
            let other = route
                .path
                .replace("/v1/agents/{id}", "/v1/agents/bob")
                .replace("/v1/items/{id}", "/v1/items/1")
                .replace("/v1/offers/{id}", "/v1/offers/1");
            let (status, reply) = bob.request(route.method, &other, body.as_ref());
            calls += 1;
            if other.contains("/agents/bob") {
                // bob on his own: allowed. Now ann on bob's:
                assert!(status != 401 && status != 403, "bob {} {other}: {status} {reply}", route.method);
                let (status, reply) = ann.request(route.method, &other, body.as_ref());
                assert_eq!(status, 403, "ann {} {other}: {reply}", route.method);
                assert!(reply["error"].as_str().is_some_and(|e| e.contains("may act only as itself")), "{reply}");
            } else {
                // Item 1 is ann's: bob may not read, accept, reject or complete it.
                assert_eq!(status, 403, "bob {} {other}: {reply}", route.method);
                assert!(
                    reply["error"].as_str().is_some_and(|e| e.contains("not offered to or held by agent `bob`")),
                    "{reply}"
                );
            }
        }
    }
    assert!(calls >= ROUTES.len() * 4, "{calls} calls");
    // Nothing bob or the refused callers tried changed item 1.
    assert_eq!(admin.get("/v1/items/1").1["status"], "offered");
    // Ann accepts her own offer; a revoked token stops working.
    assert_eq!(ann.post_empty("/v1/offers/1/accept").0, 200);
    assert_eq!(admin.delete("/v1/agents/ann/token").0, 200);
    assert_eq!(ann.get("/v1/agents/ann/desktop").0, 401);
}

/// Scenario: a client without a valid token sends a 10 MB body to a JSON route
/// and to the plugin upload: it gets 401 at once, and the daemon closes or
/// answers without reading the body (the upload's 64 MiB limit is for admins).
/// An admin's JSON body over the route's 64 KiB limit gets 413.
#[test]
fn tokens_are_checked_before_bodies_are_read_and_bodies_are_limited() {
    let dir = fresh_dir("serve-edge-bodies");
    let daemon = Daemon::start(&dir, Some(&config("")));
    let address = daemon.base.trim_start_matches("http://").to_owned();
    for path in ["/v1/items", "/v1/plugins/billing"] {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-wrong-token\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        // Send no body at all: the answer must come without it.
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"HTTP/1.1 401", "{path}");
    }
    let big =
        json!({ "department": "billing", "queue": "billing-general", "attributes": { "blob": "x".repeat(100_000) } });
    assert_eq!(daemon.client(Some(INTEGRATION)).post("/v1/items", &big).0, 413);
    assert_eq!(daemon.client(Some(ADMIN)).put("/v1/agents/ann", &json!({ "group": "y".repeat(70_000) })).0, 413);
}

/// Scenario: a client opens a connection and sends half a request line, then
/// nothing: the daemon closes the connection after `http.idle_timeout_s`, and
/// goes on serving others meanwhile.
#[test]
fn a_client_that_stalls_its_headers_is_disconnected() {
    let dir = fresh_dir("serve-edge-stall");
    let text = config("").replacen("tick_ms = 50\n", "tick_ms = 50\n\n[http]\nidle_timeout_s = 1\n", 1);
    let daemon = Daemon::start(&dir, Some(&text));
    let address = daemon.base.trim_start_matches("http://").to_owned();
    let mut stalled = TcpStream::connect(&address).unwrap();
    stalled.write_all(b"GET /v1/queues HTT").unwrap();
    assert_eq!(daemon.client(None).get("/healthz").0, 200, "others are served meanwhile");
    stalled.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    // Closed by the daemon: read ends (EOF, possibly after a 408), well before 30 s.
    let read = stalled.read_to_end(&mut rest);
    assert!(read.is_ok(), "the connection was not closed: {read:?}");
}

/// `insecure_local` opens every route, so the daemon refuses it on an address
/// other machines can reach.
#[test]
fn an_open_daemon_refuses_a_non_loopback_address() {
    let dir = fresh_dir("serve-edge-insecure");
    let text = config("").replacen("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:0\"", 1).replacen(
        &format!("admin_token = \"{ADMIN}\"\n"),
        "insecure_local = true\n",
        1,
    );
    std::fs::write(dir.join("switchyard.toml"), &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config"])
        .arg(dir.join("switchyard.toml"))
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("key `auth.insecure_local`: an open daemon may listen only on a loopback address, not 0.0.0.0:0"),
        "{stderr}"
    );
}

/// Scenario: the disk holding the daemon's log is full (stderr is
/// `/dev/full`) and every item is logged (`RUST_LOG=info`). Requests are still
/// answered: a log line that cannot be written is lost, not a 500.
#[cfg(target_os = "linux")]
#[test]
fn a_log_that_cannot_be_written_costs_no_request() {
    let dir = fresh_dir("serve-log-full");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let daemon = Daemon::start_logging(&dir, Some(&config("")), full, "info");
    let gateway = daemon.gateway();
    for n in 0..20 {
        let (status, reply) = gateway.post(
            "/v1/items",
            &json!({ "department": "claims", "queue": "claims", "attributes": { "n": n.to_string() } }),
        );
        assert_eq!(status, 201, "{reply}");
    }
    let (status, queue) = daemon.supervisor().get("/v1/queues/claims");
    assert_eq!((status, &queue["live"]["waiting"]), (200, &json!(20)), "{queue}");
}
