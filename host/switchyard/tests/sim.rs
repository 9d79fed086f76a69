//! The simulator against Erlang C, its determinism, its scenario checks and the
//! report's keys.

use std::path::{Path, PathBuf};

use switchyard::report::Report;
use switchyard::sim::erlang::{erlang_b, erlang_c};
use switchyard::sim::scenario::Scenario;
use switchyard::sim::{SimOptions, simulate};

/// The issue's example, as written.
const EXAMPLE: &str = r#"
seed = 1
duration_s = 360000
warmup_s = 3600
[[departments]]
name = "support"            # plugin = "path/to/rules.wasm" is optional
[[queues]]
name = "general"
department = "support"
service_level_s = 20
[[arrivals]]
queue = "general"
channel = "voice"
per_hour = 252
handle_time = { dist = "exponential", mean_s = 120 }
[[agents]]
count = 12
skills = { general = 5 }
"#;

fn parse(text: &str) -> Scenario {
    Scenario::parse(text, Path::new("test.toml")).unwrap()
}

fn report(scenario: &Scenario, seed: Option<u64>) -> Report {
    let run = simulate(scenario, SimOptions { seed, ..Default::default() }).unwrap();
    Report::build(&run, &Default::default())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Erlang C computed here from first principles (B(0)=1 recursion), checked
/// against the DESIGN.md worked case and against the library's formula.
#[test]
fn erlang_c_formula_matches_the_worked_case() {
    let (a, n, aht, t) = (8.4f64, 12u32, 120.0f64, 20.0f64);
    let mut b = 1.0f64;
    for k in 1..=n {
        b = a * b / (k as f64 + a * b);
    }
    let nf = n as f64;
    let pw = nf * b / (nf - a * (1.0 - b));
    let sl = 1.0 - pw * (-(nf - a) * t / aht).exp();
    let asa = pw * aht / (nf - a);
    assert!((pw - 0.184).abs() < 0.0005, "Pw {pw}");
    assert!((sl - 0.899).abs() < 0.0005, "SL {sl}");
    assert!((asa - 6.1).abs() < 0.05, "ASA {asa}");
    assert!((erlang_b(a, n) - b).abs() < 1e-12);
    let lib = erlang_c(252.0, 120.0, 12, 20.0).unwrap();
    assert!(
        (lib.p_wait - pw).abs() < 1e-12 && (lib.service_level - sl).abs() < 1e-12 && (lib.asa_s - asa).abs() < 1e-12
    );
}

fn assert_close_to_erlang(scenario: &Scenario, queue: &str, per_hour: f64, aht: f64, agents: u32, t: f64) {
    let r = report(scenario, None);
    let q = &r.queues[queue];
    let e = erlang_c(per_hour, aht, agents, t).unwrap();
    let sl = q.service_level.unwrap();
    let asa = q.asa_s.unwrap();
    let occ = q.occupancy.unwrap();
    eprintln!(
        "{queue}: SL {sl:.4} vs {:.4}, ASA {asa:.2} vs {:.2}, occ {occ:.3} vs {:.3}",
        e.service_level, e.asa_s, e.occupancy
    );
    assert!((sl - e.service_level).abs() <= 0.02, "SL {sl} vs Erlang C {}", e.service_level);
    assert!((asa - e.asa_s).abs() <= 0.2 * e.asa_s, "ASA {asa} vs Erlang C {}", e.asa_s);
    assert!((occ - e.occupancy).abs() <= 0.02, "occupancy {occ} vs {}", e.occupancy);
    assert_eq!(q.abandoned, 0);
    assert_eq!(q.erlang_c.map(|c| c.agents), Some(agents), "the report carries the yardstick");
}

/// The issue's example (100 h, ~25,000 calls) reproduces Erlang C: SL within 2
/// points, ASA within 20 %.
#[test]
fn example_scenario_reproduces_erlang_c() {
    assert_close_to_erlang(&parse(EXAMPLE), "general", 252.0, 120.0, 12, 20.0);
}

/// The same system over 1,000 hours (~250,000 calls): the sampling error of ASA
/// in a 100-hour run is ±20 % or so (an M/M/N queue's waits are strongly
/// autocorrelated), so this is the tighter check.
#[test]
fn long_run_of_the_example_reproduces_erlang_c() {
    let text = EXAMPLE.replace("duration_s = 360000", "duration_s = 3600000");
    assert_close_to_erlang(&parse(&text), "general", 252.0, 120.0, 12, 20.0);
}

/// A heavier load: A = 16 erlangs on 20 agents (occupancy 0.8), 4 min AHT, 1,000 h.
#[test]
fn heavier_load_reproduces_erlang_c() {
    let text = EXAMPLE
        .replace("per_hour = 252", "per_hour = 240")
        .replace("mean_s = 120", "mean_s = 240")
        .replace("count = 12", "count = 20")
        .replace("duration_s = 360000", "duration_s = 3600000");
    assert_close_to_erlang(&parse(&text), "general", 240.0, 240.0, 20, 20.0);
}

/// A light load on a small team: A = 2 erlangs on 4 agents, 30 s threshold, 1,000 h.
#[test]
fn light_load_reproduces_erlang_c() {
    let text = EXAMPLE
        .replace("per_hour = 252", "per_hour = 40")
        .replace("mean_s = 120", "mean_s = 180")
        .replace("count = 12", "count = 4")
        .replace("service_level_s = 20", "service_level_s = 30")
        .replace("duration_s = 360000", "duration_s = 3600000");
    assert_close_to_erlang(&parse(&text), "general", 40.0, 180.0, 4, 30.0);
}

/// Same scenario and seed, same report, byte for byte; another seed differs.
#[test]
fn same_seed_same_report() {
    let mut scenario = Scenario::load(&repo_root().join("examples/scenarios/contact-centre.toml")).unwrap();
    for d in &mut scenario.departments {
        d.plugin = None;
    }
    scenario.duration_s = 6.0 * 3600.0;
    scenario.warmup_s = 0.0;
    let a = serde_json::to_string(&report(&scenario, Some(11))).unwrap();
    let b = serde_json::to_string(&report(&scenario, Some(11))).unwrap();
    let c = serde_json::to_string(&report(&scenario, Some(12))).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// The JSON report has the keys the issue names, per queue.
#[test]
fn json_report_has_the_issue_keys() {
    let text = EXAMPLE.replace("duration_s = 360000", "duration_s = 7200").replace("warmup_s = 3600", "warmup_s = 600");
    let json = serde_json::to_value(report(&parse(&text), None)).unwrap();
    let q = &json["queues"]["general"];
    for key in ["offered", "answered", "abandoned", "service_level", "asa_s", "aht_s", "occupancy"] {
        assert!(!q[key].is_null(), "queues.general.{key} missing in {q}");
    }
    let sl = q["service_level"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&sl));
    assert!(json["definitions"]["service_level"].as_str().unwrap().contains("short abandons"));
}

/// Unknown fields are errors that name the field, wherever they are.
#[test]
fn unknown_fields_are_named() {
    let top = Scenario::parse(&format!("{EXAMPLE}\nspeed = 3\n"), Path::new("s.toml")).unwrap_err().to_string();
    assert!(top.contains("unknown field `speed`"), "{top}");
    assert!(top.starts_with("s.toml:"), "{top}");
    let nested = Scenario::parse(&EXAMPLE.replace("mean_s = 120", "mean_s = 120, shape = 2"), Path::new("s.toml"))
        .unwrap_err()
        .to_string();
    assert!(nested.contains("unknown field `shape`"), "{nested}");
    let agents = Scenario::parse(&EXAMPLE.replace("count = 12", "count = 12\nshift = 3"), Path::new("s.toml"))
        .unwrap_err()
        .to_string();
    assert!(agents.contains("unknown field `shift`"), "{agents}");
    let queue = Scenario::parse(&EXAMPLE.replace("queue = \"general\"", "queue = \"genral\""), Path::new("s.toml"))
        .unwrap_err()
        .to_string();
    assert!(queue.contains("arrivals[0]: unknown queue `genral`"), "{queue}");
}

/// A missing plugin fails clearly: department, path and the build command.
#[test]
fn missing_plugin_names_department_path_and_build_command() {
    let scenario = parse(&EXAMPLE.replace(
        "name = \"support\"            # plugin = \"path/to/rules.wasm\" is optional",
        "name = \"support\"\nplugin = \"nowhere/rules.wasm\"",
    ));
    let catalog = Default::default();
    let err = switchyard::sim::plugins::load(&scenario, Path::new("scenarios"), &catalog).err().unwrap().to_string();
    assert!(err.contains("department `support`"), "{err}");
    assert!(err.contains("scenarios/nowhere/rules.wasm"), "{err}");
    assert!(err.contains("cargo build --release --target wasm32-wasip2"), "{err}");
}

/// The bundled scenario (with built-in rules here) exercises abandons, hand-offs
/// across departments, cases, back-office due times and shifts.
#[test]
fn bundled_scenario_runs_every_feature() {
    let mut scenario = Scenario::load(&repo_root().join("examples/scenarios/contact-centre.toml")).unwrap();
    for d in &mut scenario.departments {
        d.plugin = None;
    }
    let r = report(&scenario, None);
    let billing = &r.queues["billing"];
    assert!(billing.offered > 1000, "{}", billing.offered);
    assert!(billing.abandoned > 0);
    assert!(billing.fcr.unwrap() < 1.0 && billing.repeats > 0);
    assert!(r.cases.handoffs > 0 && r.cases.cross_department > 0, "{:?}", r.cases);
    assert!(r.queues["claims"].completed_before_due.is_some());
    assert!(r.agent_groups["claims-team"].occupancy.is_some());
    assert_eq!(r.exceptions.count, 0);
    let html = switchyard::report::html::render(&r, "test").unwrap();
    assert!(html.contains("<svg") && html.matches("<svg").count() >= 4, "SL, queue length, waits, occupancy");
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("<link"), "self-contained");
}

/// The bundled day (`examples/scenarios/contact-centre.toml`) with its
/// department plugins from this test run's build, and its folder.
fn bundled_scenario() -> (Scenario, PathBuf) {
    let path = repo_root().join("examples/scenarios/contact-centre.toml");
    let mut scenario = Scenario::load(&path).unwrap();
    for department in &mut scenario.departments {
        department.plugin = match department.name.as_str() {
            "billing" => Some(switchyard_plugin_artifacts::BILLING.into()),
            "claims" => Some(switchyard_plugin_artifacts::CLAIMS.into()),
            "tech-support" => Some(switchyard_plugin_artifacts::TECH_SUPPORT.into()),
            _ => None,
        };
    }
    (scenario, path.parent().unwrap().to_owned())
}

/// The bundled day run with `traffic` replayed (or drawn when `None`), its
/// traffic recorded.
fn bundled_day(traffic: Option<Vec<switchyard::sim::traffic::Arrival>>) -> switchyard::sim::SimRun {
    let (scenario, dir) = bundled_scenario();
    let catalog: switchyard_core::rules::SharedCatalog = Default::default();
    let loaded = switchyard::sim::plugins::load(&scenario, &dir, &catalog).unwrap();
    assert_eq!(loaded.rules.len(), 3, "the three department plugins");
    let options = SimOptions {
        rules: loaded.rules.clone(),
        catalog: Some(catalog),
        record_traffic: true,
        traffic,
        ..Default::default()
    };
    simulate(&scenario, options).unwrap()
}

/// Faithful replay (issue 18): a day of the bundled scenario recorded and
/// replayed with the same rules and the recorded handle times, abandons,
/// resolutions and hand-offs shows the same per-queue figures. The replay
/// re-creates the same items at the same times and the router is
/// deterministic, so the tolerance reached is zero; what could make it differ
/// is only the order of events in the same millisecond (the recording drew
/// each arrival as the previous one arrived, the replay schedules them all
/// at the start), which this day does not hit.
#[test]
fn replaying_recorded_traffic_reproduces_the_recorded_figures() {
    let recorded = bundled_day(None);
    let traffic = recorded.traffic.clone();
    assert!(traffic.len() > 1_000, "a day of traffic: {} arrivals", traffic.len());
    let answered = traffic.iter().filter(|a| a.answered_after_ms.is_some()).count();
    let abandoned = traffic.iter().filter(|a| a.abandoned_after_ms.is_some()).count();
    let handed_off = traffic.iter().filter(|a| a.handoff.is_some()).count();
    assert!(
        answered > 0 && abandoned > 0 && handed_off > 0,
        "{answered} answered, {abandoned} abandoned, {handed_off} handed off"
    );

    let replayed = bundled_day(Some(traffic.clone()));
    // The replay's own recording is the traffic it replayed (first difference shown).
    assert_eq!(replayed.traffic.len(), traffic.len());
    if let Some(i) = (0..traffic.len()).find(|&i| replayed.traffic[i] != traffic[i]) {
        panic!("arrival {i} differs:\nrecorded {:?}\nreplayed {:?}", traffic[i], replayed.traffic[i]);
    }
    let (a, b) = (recorded.router.metrics(), replayed.router.metrics());
    for (q, name) in a.queue_names().iter().enumerate() {
        let (was, now) = (a.queue_totals(q).unwrap(), b.queue_totals(q).unwrap());
        assert_eq!(
            (now.offered, now.answered, now.service_level(), now.asa_s(), now.aht_s()),
            (was.offered, was.answered, was.service_level(), was.asa_s(), was.aht_s()),
            "queue {name}"
        );
    }
}

/// A recorded arrival in a queue the scenario lacks, or one that needs a
/// handle time the scenario cannot draw, is refused and named.
#[test]
fn traffic_the_scenario_cannot_replay_is_refused() {
    use switchyard::sim::traffic::Arrival;
    let scenario = parse(EXAMPLE);
    let arrival = |queue: &str, channel| Arrival {
        at_ms: 1_000,
        department: "support".into(),
        queue: queue.into(),
        channel,
        skills: Default::default(),
        attributes: Default::default(),
        priority: 0,
        tier: Default::default(),
        customer: None,
        case: None,
        value: 0.0,
        due_in_ms: None,
        handle_ms: None,
        answered_after_ms: None,
        abandoned_after_ms: None,
        resolved: None,
        handoff: None,
    };
    let replay = |arrivals| simulate(&scenario, SimOptions { traffic: Some(arrivals), ..Default::default() });
    let error = replay(vec![arrival("sales", switchyard_contract::Channel::Voice)]).unwrap_err().to_string();
    assert!(error.contains("traffic arrival 1") && error.contains("queue `sales` is not in the scenario"), "{error}");
    let error = replay(vec![arrival("general", switchyard_contract::Channel::Chat)]).unwrap_err().to_string();
    assert!(error.contains("no recorded handle time"), "{error}");
    assert!(replay(vec![arrival("general", switchyard_contract::Channel::Voice)]).is_ok());
}

/// A backtest (issue 18): the bundled day's traffic through the active rules
/// and through a candidate billing rule (`plugins/billing-candidate`: chats
/// first, disputes not moved). The active run is the recorded run again; both
/// runs get the same arrivals; the candidate's decisions show in the figures
/// (nothing reaches `billing-disputes`) and in the arrivals that differed.
#[test]
fn a_backtest_compares_the_active_rules_with_a_candidate() {
    use switchyard::report::backtest::BacktestReport;
    let (scenario, dir) = bundled_scenario();
    let candidates = vec![("billing".to_owned(), PathBuf::from(switchyard_plugin_artifacts::BILLING_CANDIDATE))];
    let run = switchyard::sim::backtest::backtest(&scenario, &dir, None, &candidates, None).unwrap();
    let report = BacktestReport::build(&run);

    // The active run is the plain run of the day, replayed.
    let plain = Report::build(&bundled_day(None), &Default::default());
    for (name, q) in &report.queues {
        let was = &plain.queues[name];
        assert_eq!(
            (q.active.offered, q.active.service_level, q.active.asa_s),
            (was.offered, was.service_level, was.asa_s),
            "{name}"
        );
    }
    // Both runs replayed the same arrivals.
    let arrivals = |t: &[switchyard::sim::traffic::Arrival]| {
        t.iter().map(|a| (a.at_ms, a.queue.clone(), a.handle_ms)).collect::<Vec<_>>()
    };
    assert_eq!(arrivals(&run.candidate.traffic), arrivals(&run.active.traffic));
    assert_eq!(report.arrivals, run.traffic.len());

    // The candidate decided differently, and it shows.
    let disputes = &report.queues["billing-disputes"];
    assert!(disputes.active.offered > 0 && disputes.candidate.offered == 0, "{disputes:?}");
    assert!(report.decided_differently > 0);
    assert!(!report.differed_most.is_empty());
    assert!(report.differed_most.iter().any(|d| d.active.decided != d.candidate.decided));
    let reasons: Vec<_> =
        report.differed_most.iter().filter_map(|d| d.candidate.decided.as_ref()?.reason.clone()).collect();
    assert!(reasons.iter().any(|r| r.contains("chats first")), "{reasons:?}");

    let html = switchyard::report::html::render_backtest(&report, "backtest").unwrap();
    assert!(html.contains("billing (active)") && html.contains("billing (candidate)"));
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["queues"]["billing"]["candidate"]["service_level"].is_number());
}
