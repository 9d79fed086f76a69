//! The plugin author's tools (`switchyard plugin new|check|run|replay`) on good
//! and broken plugins, through the same library calls the CLI makes, asserting on
//! the report a person reads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use switchyard::tools::check::{CheckOptions, check};
use switchyard::tools::record::{DecisionLog, RecordedDecision, RecordingRules, read_log};
use switchyard::tools::replay::{ReplayOptions, replay};
use switchyard::tools::run::{RunOptions, run};
use switchyard::tools::scaffold::{Lang, NewOptions, new_plugin};
use switchyard_contract::named::{Agent, WorkItem, candidate_table};
use switchyard_contract::{Catalog, ItemBatch, Tier};
use switchyard_plugin_artifacts as artifacts;
use switchyard_runtime::contract::Hook;
use switchyard_runtime::runtime::{DepartmentConfig, Runtime};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-tools-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn billing_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/billing/fixtures.toml")
}

fn report(f: impl FnOnce(&mut Vec<u8>) -> bool) -> (bool, String) {
    let mut out = Vec::new();
    let ok = f(&mut out);
    (ok, String::from_utf8(out).expect("utf-8 report"))
}

/// A good plugin with its fixtures: every case passes, the hooks and imports are listed.
#[test]
fn check_passes_a_good_plugin_and_lists_what_it_is() {
    let options = CheckOptions { fixtures: Some(billing_fixtures()), config: vec![] };
    let (ok, text) = report(|out| check(Path::new(artifacts::BILLING), &options, out).expect("check runs"));
    assert!(ok, "{text}");
    assert!(text.contains("contract     switchyard:routing@0.1.0"), "{text}");
    assert!(text.contains("prioritise (plugin), escalate (built-in), match (built-in)"), "{text}");
    assert!(text.contains("switchyard:routing/host@0.1.0"), "imports are listed: {text}");
    assert!(text.contains("verdict      OK"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

/// Fixtures the plugin does not meet: the failing case is named and the verdict is FAIL.
#[test]
fn check_fails_a_plugin_that_misses_its_fixtures() {
    let dir = temp_dir("wrong-fixtures");
    let fixtures = dir.join("wrong.fixtures.toml");
    std::fs::write(
        &fixtures,
        "[[prioritise]]\nname = \"standard caller\"\nitems = [{ queue = \"billing\", expect = { priority = 999 } }]\n",
    )
    .unwrap();
    let options = CheckOptions { fixtures: Some(fixtures), config: vec![] };
    let (ok, text) = report(|out| check(Path::new(artifacts::BILLING), &options, out).expect("check runs"));
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL  prioritise case `standard caller`"), "{text}");
    assert!(text.contains("verdict      FAIL: 1 of 1 fixture cases fail"), "{text}");
}

/// Components the host would refuse: a wrong world, and bytes that are not wasm.
#[test]
fn check_refuses_what_the_host_would_refuse() {
    let (ok, text) = report(|out| {
        check(Path::new(artifacts::HOSTILE_WRONG_WORLD), &CheckOptions::default(), out).expect("check runs")
    });
    assert!(!ok, "{text}");
    assert!(text.contains("exports none of the hook interfaces"), "{text}");
    assert!(text.contains("verdict      FAIL"), "{text}");

    let dir = temp_dir("not-wasm");
    let junk = dir.join("rules.wasm");
    std::fs::write(&junk, b"#!/bin/sh\necho not a component\n").unwrap();
    let (ok, text) = report(|out| check(&junk, &CheckOptions::default(), out).expect("check runs"));
    assert!(!ok, "{text}");
    assert!(text.contains("rules.wasm"), "the file is named: {text}");
}

/// `run` prints one decision per item, as the rule computes it.
#[test]
fn run_prints_the_decisions_of_one_hook() {
    let dir = temp_dir("run");
    let input = dir.join("items.json");
    std::fs::write(
        &input,
        r#"[{"label": "gold-repeat", "channel": "voice", "queue": "billing", "tier": "gold", "contacts": 2, "attributes": {"amount": "300"}},
            {"label": "standard", "channel": "voice", "queue": "billing"}]"#,
    )
    .unwrap();
    let options = RunOptions { hook: Hook::Prioritise, config: vec![], repeat: 5 };
    let (ok, text) = report(|out| run(Path::new(artifacts::BILLING), &input, &options, out).expect("run runs"));
    assert!(ok, "{text}");
    // The billing fixtures pin these two: 75 (gold, repeat, 300 at stake, voice) and 10 (voice only).
    let line = |label: &str| {
        text.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no line for {label}: {text}")).to_owned()
    };
    assert!(line("gold-repeat").split_whitespace().nth(1) == Some("75"), "{text}");
    assert!(line("standard").split_whitespace().nth(1) == Some("10"), "{text}");
    assert!(text.contains("median"), "timings are printed: {text}");
}

/// A plugin that loops forever: `run` reports the deadline instead of hanging.
#[test]
fn run_reports_a_hook_that_fails() {
    let dir = temp_dir("run-loop");
    let input = dir.join("items.json");
    std::fs::write(&input, r#"{"items": [{"queue": "billing"}]}"#).unwrap();
    let options = RunOptions { hook: Hook::Prioritise, config: vec![], repeat: 0 };
    let (ok, text) = report(|out| run(Path::new(artifacts::HOSTILE_LOOP), &input, &options, out).expect("run runs"));
    assert!(!ok, "{text}");
    assert!(text.contains("`prioritise` failed"), "{text}");

    // Bad input names the file and the place.
    std::fs::write(&input, r#"{"items": [{"queue": "billing", "tier": "diamond"}]}"#).unwrap();
    let err = run(Path::new(artifacts::BILLING), &input, &options, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("items.json") && err.contains("diamond"), "{err}");
}

/// Decisions recorded from live rules replay with no difference on the same
/// plugin, and with exactly the expected differences on another.
#[test]
fn replay_shows_where_a_candidate_decides_differently() {
    let dir = temp_dir("replay");
    let log_path = dir.join("decisions.jsonl");
    let catalog = Arc::new(RwLock::new(Catalog::default()));
    let runtime = Runtime::builder().catalog(catalog.clone()).build().expect("runtime");
    runtime.register_file("billing", artifacts::BILLING, DepartmentConfig::new()).expect("billing loads");
    let log = DecisionLog::create(&log_path).expect("log file");
    let rules = RecordingRules::new("billing", runtime.rules("billing"), catalog.clone(), log.clone());

    // Two prioritise calls and one match call (billing's match is the built-in rule).
    let items = [
        WorkItem::voice("billing").tier(Tier::Gold).contacts(2).attr("amount", "300"),
        WorkItem::chat("billing"),
        WorkItem::voice("billing").tier(Tier::Platinum),
    ];
    let batch = |items: &[WorkItem]| {
        let mut names = catalog.write().unwrap();
        let mut batch = ItemBatch::new(1_767_225_600_000);
        for (i, item) in items.iter().enumerate() {
            item.push_into(&mut batch, &mut names, i);
        }
        batch
    };
    use switchyard_core::rules::RuleSet;
    rules.prioritise(&batch(&items[..2]));
    rules.prioritise(&batch(&items[2..]));
    let agents = [Agent::new(1).skill("billing", 5).idle_s(30), Agent::new(2).skill("billing", 5).idle_s(90)];
    let item = WorkItem::voice("billing").skill("billing", 3);
    let table = candidate_table(&item, &agents, &mut catalog.write().unwrap());
    rules.match_agents(&batch(std::slice::from_ref(&item)), &table);
    log.flush().unwrap();

    let records = read_log(&log_path).expect("the log reads back");
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].source, "billing#1");
    assert!(matches!(&records[2].decision, RecordedDecision::Match { ranking } if ranking == &vec![2, 1]));

    // The same plugin decides the same.
    let options = ReplayOptions { max_shown: 50, ..Default::default() };
    let mut out = Vec::new();
    let same = replay(Path::new(artifacts::BILLING), &log_path, &options, &mut out).expect("replay");
    assert_eq!((same.records, same.compared, same.skipped, same.decisions, same.differing), (3, 2, 1, 3, 0));

    // hostile-slow answers priority 10 for everything: billing gave 75, 5 and 55.
    let mut out = Vec::new();
    let other = replay(Path::new(artifacts::HOSTILE_SLOW), &log_path, &options, &mut out).expect("replay");
    let text = String::from_utf8(out).unwrap();
    assert_eq!((other.decisions, other.differing, other.failures), (3, 3, 0), "{text}");
    assert!(text.contains("priority 75 -> 10"), "{text}");
    assert!(text.contains("3 of 3 decisions differ"), "{text}");

    // A broken candidate: every prioritise record is a reported failure, not a crash.
    let mut out = Vec::new();
    let broken = replay(Path::new(artifacts::HOSTILE_PANIC), &log_path, &options, &mut out).expect("replay");
    let text = String::from_utf8(out).unwrap();
    assert_eq!((broken.compared, broken.failures), (0, 2), "{text}");
    assert!(text.contains("candidate failed"), "{text}");
}

/// Python and JavaScript scaffolds: their rule tests pass out of the box.
#[test]
fn scaffolds_for_python_and_js_have_passing_tests() {
    let dir = temp_dir("scaffold-polyglot");
    for (lang, name) in [(Lang::Python, "py-rules"), (Lang::Js, "js-rules")] {
        let target = dir.join(name);
        let files = new_plugin(&NewOptions { lang, name: name.into(), dir: Some(target.clone()), sdk: None })
            .expect("scaffold");
        assert!(files.iter().any(|f| f.ends_with("fixtures.toml")));
        assert!(target.join("wit/deps/routing/routing.wit").is_file());
        let status = match lang {
            Lang::Python => {
                std::process::Command::new("python3").args(["-m", "unittest", "-q"]).current_dir(&target).status()
            }
            _ => std::process::Command::new("node").args(["--test"]).current_dir(&target).status(),
        }
        .expect("the test runner starts");
        assert!(status.success(), "{name}'s scaffolded tests fail");
    }
    // A second scaffold into the same place is refused rather than overwriting.
    let err = new_plugin(&NewOptions {
        lang: Lang::Python,
        name: "py-rules".into(),
        dir: Some(dir.join("py-rules")),
        sdk: None,
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("already exists"), "{err}");
    let err = new_plugin(&NewOptions { lang: Lang::Rust, name: "Bad_Name".into(), dir: None, sdk: None })
        .unwrap_err()
        .to_string();
    assert!(err.contains("Bad_Name"), "{err}");
}

/// A Rust scaffold builds into a component that `check` passes with its own fixtures.
#[test]
fn rust_scaffold_builds_a_component_that_passes_check() {
    let dir = temp_dir("scaffold-rust");
    let target = dir.join("fresh-rules");
    new_plugin(&NewOptions { lang: Lang::Rust, name: "fresh-rules".into(), dir: Some(target.clone()), sdk: None })
        .expect("scaffold");
    // Outside this repository the SDK is a versioned dependency; only the
    // patch (while the SDK is unpublished) names this checkout.
    let manifest = std::fs::read_to_string(target.join("Cargo.toml")).expect("the manifest");
    let versioned = format!("switchyard-sdk = {{ version = \"{}\" }}", env!("CARGO_PKG_VERSION"));
    assert!(manifest.contains(&versioned), "{manifest}");
    assert!(manifest.contains("[patch.crates-io]") && manifest.contains("[workspace]"), "{manifest}");
    // One shared target dir across runs keeps this to one incremental build.
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/scaffold-test");
    let output = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(&target)
        .output()
        .expect("cargo starts");
    assert!(output.status.success(), "the scaffold builds: {}", String::from_utf8_lossy(&output.stderr));
    let wasm = target_dir.join("wasm32-wasip2/release/fresh_rules.wasm");
    let options = CheckOptions { fixtures: Some(target.join("fixtures.toml")), config: vec![] };
    let (ok, text) = report(|out| check(&wasm, &options, out).expect("check runs"));
    assert!(ok, "{text}");
    assert!(text.contains("prioritise (plugin), escalate (built-in), match (plugin)"), "{text}");
    assert!(text.contains("verdict      OK: 2 fixture cases pass"), "{text}");
}
