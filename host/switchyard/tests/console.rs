//! The web console (issue 16) in a real browser: Debian's Chromium, driven
//! over WebDriver, against the real `switchyard serve` binary on 127.0.0.1
//! with the real billing plugin. Each test is one person's flow; every wait is
//! for a condition on the page, bounded by `console_common::WAIT`. Screenshots
//! land in `target/tmp/console-screenshots/`.

mod console_common;
mod serve_common;

use console_common::Browser;
use serde_json::json;
use serve_common::{ADMIN, Daemon, SUPERVISOR, config, fresh_dir};
use switchyard_plugin_artifacts as artifacts;

/// The shared test config with billing and claims deciding through their
/// plugins and agent `ann` (billing and disputes skills, offline at start). Billing's calls get
/// the sandbox's longest deadline (50 ms, not 20): these tests run four
/// daemons and four browsers at once on a debug build, and instantiating the
/// plugin at start must not miss its deadline on a busy machine.
fn console_config() -> String {
    config("\n[[agents]]\nname = \"ann\"\ngroup = \"front\"\nskills = { billing = 8, disputes = 6 }\n")
        .replacen(
            "name = \"billing\"\n",
            &format!("name = \"billing\"\nplugin = {:?}\ncall_deadline_ms = 50\n", artifacts::BILLING),
            1,
        )
        .replacen(
            "name = \"claims\"\n",
            &format!("name = \"claims\"\nplugin = {:?}\ncall_deadline_ms = 50\n", artifacts::CLAIMS),
            1,
        )
}

/// The desktop's earlier contacts come from the daemon's own book, which its
/// snapshots keep: after a clean stop (it takes a snapshot and drops the
/// records the snapshot covers) and a start, the customer's earlier call is
/// still beside the new one. No browser: this is the API the page draws from.
#[test]
fn earlier_contacts_survive_a_restart() {
    let dir = fresh_dir("console-contacts-restart");
    let call = |reference: &str| {
        json!({ "department": "billing", "queue": "billing-general", "customer": "c-7",
                "attributes": { "ref": reference, "amount": "40" } })
    };
    let mut daemon = Daemon::start(&dir, Some(&console_config()));
    let (status, first) = daemon.gateway().post("/v1/items", &call("INV-1"));
    assert_eq!(status, 201, "{first}");
    let first_id = first["id"].as_u64().unwrap();
    assert_eq!(daemon.gateway().delete(&format!("/v1/items/{first_id}")).0, 200);
    assert!(daemon.terminate(), "a clean stop");

    let daemon = Daemon::start(&dir, Some(&console_config()));
    let (_, ready) = daemon.admin().get("/readyz");
    assert_eq!(ready["replayed_records"], 0, "the start came from the snapshot alone: {ready}");
    let ann = daemon.agent_client("ann");
    assert_eq!(ann.post("/v1/agents/ann/state", &json!({ "state": "available" })).0, 200);
    let (status, second) = daemon.gateway().post("/v1/items", &call("INV-2"));
    assert_eq!(status, 201, "{second}");
    let (status, workspace) = ann.get("/v1/agents/ann/workspace");
    assert_eq!(status, 200, "{workspace}");
    let offered = workspace["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == second["id"]))
        .unwrap_or_else(|| panic!("the new call is on ann's desk: {workspace}"));
    let earlier = offered["earlier_contacts"].as_array().expect("earlier contacts");
    assert_eq!(earlier.len(), 1, "{offered}");
    assert_eq!((earlier[0]["item"].as_u64(), earlier[0]["outcome"].as_str()), (Some(first_id), Some("withdrawn")));
}

/// A console left open does not hold up a stop: the event stream ends when
/// the daemon begins to stop, so the graceful drain finishes instead of
/// waiting out its limit (before, SIGTERM with one page open took the whole
/// 30 s drain and logged that requests were still running).
#[test]
fn an_open_event_stream_does_not_hold_up_a_stop() {
    use std::io::BufRead;
    let dir = fresh_dir("console-stop-with-stream");
    let mut daemon = Daemon::start(&dir, Some(&console_config()));
    let mut response = ureq::get(format!("{}/v1/events", daemon.base))
        .header("authorization", format!("Bearer {SUPERVISOR}"))
        .call()
        .expect("the event stream opens");
    assert_eq!(response.status(), 200);
    let mut stream = std::io::BufReader::new(response.body_mut().as_reader());
    let mut first = String::new();
    stream.read_line(&mut first).expect("the first event");
    assert_eq!(first.trim(), "event: change", "the stream is open and has spoken");

    assert!(daemon.terminate(), "a clean stop");
    let mut rest = String::new();
    // The stream ends (the daemon closed it) rather than being cut by the exit.
    let _ = std::io::Read::read_to_string(&mut stream, &mut rest);
    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(!log.contains("requests still running"), "the drain waited for the stream:\n{log}");
}

/// Scenario: customer c-42 called billing earlier (an item the gateway
/// withdrew). Agent ann signs in with her own token and goes
/// available; the gateway posts the customer's new call; the offer appears
/// with a countdown, the earlier contact and why it came to ann (the billing
/// plugin's priority and reason, the built-in match over one candidate); she
/// accepts, sees the case timeline, and
/// completes it as resolved — which the API confirms. Her next call from the
/// customer she hands off to the claims queue, and the case moves there.
#[test]
fn an_agent_takes_an_offer_from_sign_in_to_completion() {
    let Some(browser) = Browser::open("console-agent") else { return };
    let dir = fresh_dir("console-agent");
    let daemon = Daemon::start(&dir, Some(&console_config()));
    let gateway = daemon.gateway();
    let call = |reference: &str| {
        json!({ "department": "billing", "queue": "billing-general", "customer": "c-42", "case": "case-9",
                "tier": "gold", "attributes": { "ref": reference, "amount": "300" } })
    };
    let (status, earlier) = gateway.post("/v1/items", &call("INV-1"));
    assert_eq!(status, 201, "{earlier}");
    let earlier_id = earlier["id"].as_u64().unwrap();
    assert_eq!(gateway.delete(&format!("/v1/items/{earlier_id}")).0, 200);

    let ann = daemon.agent_client("ann");
    browser.sign_in(&daemon.base, ann.token().unwrap());
    println!("desk page navigation: {:.1} ms", browser.navigation_ms());
    browser.wait_text("#whoami", "agent ann");
    browser.wait_text("#agent-state", "offline");
    browser.click("button[data-presence=available]");
    browser.wait_text("#agent-state", "available");

    let (status, created) = gateway.post("/v1/items", &call("INV-2"));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().unwrap();
    let offer = format!("#offers [data-item=\"{id}\"]");
    let text = browser.wait_text(&offer, "Expires in");
    assert!(text.contains("billing-general") && text.contains("INV-2"), "{text}");
    // Why it came here: the plugin's reason for the priority and its match.
    let reason = created["why"]["priority_reason"].as_str().unwrap_or_default().to_owned();
    assert!(!reason.is_empty(), "the billing plugin gives a reason: {created}");
    browser.wait_text(&offer, &format!("{reason} (set by plugin billing generation 1)"));
    browser.wait_text(&format!("{offer} .why"), "Chosen by built-in rule from 1 qualified of 1 candidates");
    browser.wait_text(&format!("{offer} .customer"), "Contact 2 within the first-contact window");
    // The customer's earlier contact, withdrawn.
    browser.wait_text(&format!("{offer} .earlier-contacts"), &format!("Item {earlier_id}"));
    browser.wait_text(&format!("{offer} .earlier-contacts"), "withdrawn");
    browser.screenshot("desk-offer");
    browser.js(&format!("document.querySelector('{offer} .why').scrollIntoView()"), &[]);
    browser.screenshot("desk-offer-customer");

    browser.click(&format!("{offer} button.accept"));
    let card = format!("#work [data-item=\"{id}\"]");
    browser.wait_text(&card, "active");
    browser.wait_text(&format!("{card} .case-timeline"), "offered to ann");
    browser.js(&format!("document.querySelector('{card} .customer').scrollIntoView()"), &[]);
    browser.screenshot("desk-in-work");
    browser.click(&format!("{card} form.complete button[type=submit]"));
    browser.wait("the completed item to leave the desk", &format!("return !document.querySelector('{card}')"));
    let (status, item) = daemon.admin().get(&format!("/v1/items/{id}"));
    assert_eq!((status, item["status"].as_str(), item["resolved"].as_bool()), (200, Some("completed"), Some(true)));

    // The customer calls again; this time ann hands the case off to claims.
    let (status, created) = gateway.post("/v1/items", &call("INV-3"));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().unwrap();
    browser.click(&format!("#offers [data-item=\"{id}\"] button.accept"));
    let card = format!("#work [data-item=\"{id}\"]");
    browser.wait_text(&card, "active");
    browser.js(
        &format!("const s = document.querySelector('{card} form.handoff select'); s.value = 'claims|claims';"),
        &[],
    );
    browser.click(&format!("{card} form.handoff button[type=submit]"));
    browser.wait("the handed-off item to leave the desk", &format!("return !document.querySelector('{card}')"));
    let (status, case) = daemon.supervisor().get("/v1/cases/case-9");
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["departments"].as_array().and_then(|d| d.last()), Some(&json!("claims")), "{case}");
}

/// Scenario: a wrong token gets an error in words; the supervisor signs in
/// and watches the dashboard; the gateway posts two items
/// nobody can take; the queue's waiting count goes from 0 to 2 on the same
/// page, without a reload (a marker set on the page survives). An alert
/// raised by claims' escalation rule appears and is acknowledged.
#[test]
fn a_supervisor_sees_queue_counts_change_live() {
    let Some(browser) = Browser::open("console-supervisor") else { return };
    let dir = fresh_dir("console-supervisor");
    let daemon = Daemon::start(&dir, Some(&console_config()));
    // A wrong token is refused in words, and the sign-in form stays.
    browser.goto(&format!("{}/", daemon.base));
    browser.type_into("#token", "not-a-token-anyone-has");
    browser.click("#signin-form button[type=submit]");
    browser.wait_text("#error", "That token was not accepted.");
    browser.sign_in(&daemon.base, SUPERVISOR);
    println!("dashboard page navigation: {:.1} ms", browser.navigation_ms());
    let waiting = "#queues tr[data-queue=\"billing-general\"] td.waiting";
    browser.wait_text(waiting, "0");
    browser.wait_text("#agents tr[data-agent=\"ann\"] td.state", "offline");
    browser.wait_text("#live", "Live");
    browser.js("window.__same_page = true;", &[]);

    let gateway = daemon.gateway();
    for reference in ["A-1", "A-2"] {
        let body = json!({ "department": "billing", "queue": "billing-general", "attributes": { "ref": reference } });
        assert_eq!(gateway.post("/v1/items", &body).0, 201);
    }
    browser
        .wait("the waiting count to reach 2", &format!("return document.querySelector('{waiting}').innerText === '2'"));
    assert_eq!(browser.js("return window.__same_page === true;", &[]), json!(true), "the page was not reloaded");
    // Claims' escalation rule alerts the supervisor at 90 % of a case's due
    // time: a case due in 2 s raises one, which the supervisor acknowledges.
    let case = json!({ "department": "claims", "queue": "claims", "channel": "case", "due_in_s": 2.0 });
    assert_eq!(gateway.post("/v1/items", &case).0, 201);
    let alert = browser
        .wait("an alert", "const li = document.querySelector('#alerts li[data-alert]'); return li && li.innerText;");
    assert!(alert.as_str().is_some_and(|a| a.contains("claims") && a.contains("case ")), "{alert}");
    browser.screenshot("dashboard");
    browser.click("#alerts button[data-ack]");
    browser.wait_text("#alerts", "acknowledged by supervisor");
    // A narrow window keeps every control reachable (the tables scroll).
    browser.window(420, 800);
    browser.wait_text(waiting, "2");
    browser.screenshot("dashboard-narrow");
}

/// Scenario: ops (the admin token) upload the claims component as billing's
/// rules: billing's fixtures refuse it, and the page shows the failed check
/// with the daemon's words while generation 1 stays (the refusal took number
/// 2). Then the billing component passes every check and becomes generation
/// 3; it goes into shadow again as generation 4, is promoted, and ops roll
/// back to generation 1 — each visible on the page and in the audit trail.
#[test]
fn ops_upload_shadow_promote_and_roll_back() {
    let Some(browser) = Browser::open("console-ops") else { return };
    let dir = fresh_dir("console-ops");
    let daemon = Daemon::start(&dir, Some(&console_config()));
    let fixtures =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/billing/fixtures.toml")).unwrap();
    assert_eq!(daemon.admin().put_text("/v1/plugins/billing/fixtures", &fixtures).0, 200);

    browser.sign_in(&daemon.base, ADMIN);
    browser.goto(&format!("{}/#/rules", daemon.base));
    println!("rules page navigation: {:.1} ms", browser.navigation_ms());
    let billing = "#departments [data-department=\"billing\"]";
    browser.wait_text(&format!("{billing} .active-generation"), "1");
    let upload = |path: &str, button: &str| {
        browser.type_into(&format!("{billing} input[type=file]"), path);
        browser.click(&format!("{billing} button[value={button}]"));
    };

    upload(artifacts::CLAIMS, "activate");
    let failed = browser.wait_text(&format!("{billing} .checks li.failed"), "fixtures");
    assert!(failed.contains("billing (uploaded fixtures)"), "the daemon's words: {failed}");
    browser.wait_text(&format!("{billing} .checks li[data-check=contract]"), "passed");
    browser.wait_text(&format!("{billing} .checks li[data-check=\"smoke call\"]"), "not run");
    browser.wait_text(&format!("{billing} .active-generation"), "1");
    browser.js(&format!("document.querySelector('{billing} .upload').scrollIntoView()"), &[]);
    browser.screenshot("rules-refused");

    upload(artifacts::BILLING, "activate");
    browser.wait_text(&format!("{billing} .validation"), "is now active as generation 3");
    browser.wait_text(&format!("{billing} .active-generation"), "3");

    upload(artifacts::BILLING, "shadow");
    browser.wait_text(&format!("{billing} .validation"), "now runs in shadow as generation 4");
    browser.wait_text(&format!("{billing} .shadow-report"), "generation 4");
    browser.click(&format!("{billing} button.promote"));
    browser.wait_text(&format!("{billing} .active-generation"), "4");

    browser.click(&format!("{billing} button[data-rollback=\"1\"]"));
    browser.wait_text(&format!("{billing} .active-generation"), "1");
    browser.wait_text("#audit tbody", "rollback");
    browser.wait_text("#audit tbody", "reject");
    browser.screenshot("rules");
    let (_, plugins) = daemon.supervisor().get("/v1/plugins");
    assert_eq!(plugins[0]["current"]["generation"], 1, "{plugins}");
}

/// Scenario: ann takes billing calls while ten arrive; ops put
/// `billing-candidate` in shadow, and on the rules page start a backtest of it
/// over the last 24 hours with the billing card's button. The card follows
/// it to the end and shows both runs' table; "Show the report" brings the
/// HTML report into the page.
#[test]
fn ops_backtest_the_shadow_from_the_rules_page() {
    let Some(browser) = Browser::open("console-backtest") else { return };
    let dir = fresh_dir("console-backtest");
    let daemon = Daemon::start(&dir, Some(&console_config()));
    let admin = daemon.admin();
    assert_eq!(admin.post("/v1/agents/ann/state", &json!({ "state": "available" })).0, 200);
    for n in 0..10 {
        let item =
            json!({ "department": "billing", "queue": "billing-general", "attributes": { "ref": format!("bt-{n}") } });
        assert_eq!(daemon.gateway().post("/v1/items", &item).0, 201);
    }
    let candidate = std::fs::read(artifacts::BILLING_CANDIDATE).unwrap();
    assert_eq!(admin.post_bytes("/v1/plugins/billing/shadow", &candidate).0, 201);

    browser.sign_in(&daemon.base, ADMIN);
    browser.goto(&format!("{}/#/rules", daemon.base));
    let billing = "#departments [data-department=\"billing\"]";
    browser.wait_text(&format!("{billing} .shadow-actions"), "Backtest the shadow");
    browser.click(&format!("{billing} .backtest button"));
    browser.wait_text(&format!("{billing} .backtest-status"), "Backtest 1");
    // The backtest's own time is the daemon's (bounded here); the page then
    // shows it within its next look.
    let started = std::time::Instant::now();
    while daemon.supervisor().get("/v1/backtest").1["state"] == "running" {
        assert!(started.elapsed() < std::time::Duration::from_secs(300), "the backtest did not finish");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let table = browser.wait_text(&format!("{billing} .backtest-status"), "done in");
    assert!(table.contains("billing-general") && table.contains("10 arrivals replayed"), "{table}");
    // The run goes on after the window, so the arrivals at its very end are
    // served in both runs (ann, available at its end, stays on).
    assert!(table.contains("10 → 10"), "every arrival offered in both runs: {table}");
    browser.click(&format!("{billing} .show-backtest-report"));
    browser.wait(
        "the report in the page",
        &format!("const f = document.querySelector('{billing} .backtest-report'); const d = f && !f.hidden && f.contentDocument; return d && d.body && d.body.innerText.includes('billing-general');"),
    );
    browser.js(&format!("document.querySelector('{billing} .backtest-status').scrollIntoView()"), &[]);
    browser.screenshot("rules-backtest");
}

/// Scenario: a daemon with 500 agents and 50 queues. The supervisor's
/// dashboard, the rules page and one agent's desktop are each loaded afresh
/// (signed in already); the test prints the navigation time and the time until
/// the page showed its data, and checks that every queue and agent is drawn.
#[test]
fn pages_with_500_agents_and_50_queues_print_their_load_times() {
    let Some(browser) = Browser::open("console-scale") else { return };
    let dir = fresh_dir("console-scale");
    let mut extra = String::new();
    for q in 0..47 {
        extra.push_str(&format!("\n[[queues]]\nname = \"claims-{q}\"\ndepartment = \"claims\"\nskill = \"claims\"\n"));
    }
    for a in 0..500 {
        let state = if a % 3 == 0 { "available" } else { "offline" };
        extra.push_str(&format!(
            "\n[[agents]]\nname = \"agent-{a}\"\ngroup = \"group-{}\"\nskills = {{ claims = 5 }}\nstate = \"{state}\"\n",
            a % 10
        ));
    }
    let daemon = Daemon::start(&dir, Some(&config(&extra)));
    browser.sign_in(&daemon.base, SUPERVISOR);
    for (page, check) in [
        (
            "board",
            "return document.querySelectorAll('#queues tbody tr').length === 50 && document.querySelectorAll('#agents tbody tr').length === 500",
        ),
        ("rules", "return document.querySelectorAll('#departments [data-department]').length === 2"),
    ] {
        // A new query string: a full navigation, signed in from the tab's session.
        browser.goto(&format!("{}/?{page}#/{page}", daemon.base));
        let drawn = browser.drawn_ms();
        browser.wait(&format!("the {page} page to show everything"), check);
        println!(
            "{page} with 500 agents, 50 queues: navigation {:.1} ms, data drawn at {drawn:.1} ms",
            browser.navigation_ms()
        );
    }
    let agent = daemon.agent_client("agent-0");
    browser.js("sessionStorage.clear()", &[]);
    browser.sign_in(&daemon.base, agent.token().unwrap());
    browser.goto(&format!("{}/?desk", daemon.base));
    let drawn = browser.drawn_ms();
    browser.wait_text("#agent-state", "available");
    println!(
        "desk with 500 agents, 50 queues: navigation {:.1} ms, data drawn at {drawn:.1} ms",
        browser.navigation_ms()
    );
}
