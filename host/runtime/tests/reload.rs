//! Hot reload (issue 6) through the embedding API and the real directory watcher:
//! swaps under load, rejections, rollback, the audit log, shadow mode.
//!
//! Every test's department uses the fixture file [`FIXTURES`], which three real
//! components pass (billing, hostile-slow with no delay, hostile-garbage in its
//! valid mode 3) and which the broken builds fail in each way a build can:
//! truncated bytes, the wrong world, a trap on the fixtures (hostile-panic), and
//! a wrong decision (claims keeps priority 3 where at least 7 is expected).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use switchyard_contract::fixtures::Fixtures;
use switchyard_contract::{CandidateTable, ItemBatch};
use switchyard_core::rules::RuleSource;
use switchyard_plugin_artifacts::{BILLING, CLAIMS, HOSTILE_GARBAGE, HOSTILE_PANIC, HOSTILE_SLOW, HOSTILE_WRONG_WORLD};
use switchyard_runtime::Error;
use switchyard_runtime::reload::{
    AuditAction, AuditEntry, DepartmentSetup, Outcome, ReloadManager, ReloadOptions, TriggerKind, Validation,
};
use switchyard_runtime::runtime::Runtime;
use switchyard_runtime::sandbox::Limits;

/// The department's fixtures. Items carry priority 3 so hostile-garbage answers
/// in its valid mode 3 (priority 7, ranking in table order).
const FIXTURES: &str = r#"
[[prioritise]]
name = "a billing call is worth at least 7"
items = [
  { queue = "billing", channel = "voice", priority = 3, expect = { at_least = 7 } },
  { queue = "billing", channel = "chat", priority = 3, expect = { at_least = 7 } },
]

[[match]]
name = "the longest-idle agent goes first"
item = { channel = "chat", queue = "billing", priority = 3 }
agents = [
  { id = 1, idle_s = 300 },
  { id = 2, idle_s = 10 },
  { id = 3, idle_s = 20 },
]
expect = { best = 1 }
"#;

const DEPARTMENT: &str = "billing";

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixtures() -> Fixtures {
    Fixtures::parse(FIXTURES, "reload-test.fixtures.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// A runtime whose compiled components are cached on disk in `cache`, so loading
/// the same bytes again skips compilation. The call deadline is generous: these
/// tests are about swapping, and a debug-build host on a shared 2-core machine
/// can be descheduled past the 50 ms production default mid-call.
fn manager(cache: &Path, options: ReloadOptions) -> ReloadManager {
    let runtime = Runtime::builder()
        .cache_dir(cache)
        .limits(Limits { deadline: Duration::from_secs(5), ..Limits::default() })
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let manager = ReloadManager::new(runtime, options).unwrap_or_else(|e| panic!("manager: {e}"));
    manager.configure(DEPARTMENT, DepartmentSetup::new().with_fixtures(fixtures()));
    manager
}

/// The batches the routing threads decide: the fixture cases themselves, built
/// into the runtime's catalog.
fn traffic(manager: &ReloadManager) -> (ItemBatch, ItemBatch, CandidateTable) {
    let fixtures = fixtures();
    let cases = fixtures.cases();
    let mut catalog = manager.runtime().catalog().write().unwrap_or_else(|p| p.into_inner());
    let (items, _) = cases[0].build(&mut catalog);
    let (item, table) = cases[1].build(&mut catalog);
    (items, item, table.expect("a match case builds a candidate table"))
}

fn actions(entries: &[AuditEntry], action: AuditAction) -> Vec<&AuditEntry> {
    entries.iter().filter(|e| e.action == action).collect()
}

/// One step of the stress test.
#[derive(Clone, Copy, Debug)]
enum Step {
    Good(&'static str),
    Truncated,
    Broken(&'static str),
    Rollback,
}

/// Several threads route without pause while the department's plugin is
/// replaced 100 times (good builds, four kinds of broken build, rollbacks): no
/// decision fails, every decision names one generation that was made active at
/// some point and none that was rejected, broken builds never become active, and
/// the last good generation is the one left active.
#[test]
fn swaps_under_load_never_fail_a_decision_nor_activate_a_broken_build() {
    let cache = tempfile::tempdir().unwrap();
    let reload = manager(cache.path(), ReloadOptions::default().keep(4));
    let billing = read(BILLING);
    let first = reload.reload(DEPARTMENT, &billing).unwrap_or_else(|e| panic!("billing: {e}"));
    assert_eq!(first.generation, 1);
    assert!(first.active);

    let (items, item, table) = traffic(&reload);
    let rules = reload.rules(DEPARTMENT);
    let stop = Arc::new(AtomicBool::new(false));
    let decisions = Arc::new(AtomicU64::new(0));
    let mut routers = Vec::new();
    for _ in 0..2 {
        let (rules, stop, decisions) = (rules.clone(), stop.clone(), decisions.clone());
        let (items, item, table) = (items.clone(), item.clone(), table.clone());
        routers.push(std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            let mut failures = Vec::new();
            let mut match_built_in = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let prioritised = rules.prioritise(&items);
                match &prioritised.source {
                    RuleSource::Plugin { generation, .. } => {
                        seen.insert(*generation);
                    }
                    other => failures.push(format!("prioritise: {other}")),
                }
                let matched = rules.match_agents(&item, &table);
                match &matched.source {
                    RuleSource::Plugin { generation, .. } => {
                        seen.insert(*generation);
                    }
                    // billing and hostile-slow export no matcher: the built-in rule is theirs.
                    RuleSource::BuiltIn => match_built_in += 1,
                    other => failures.push(format!("match: {other}")),
                }
                assert_eq!(matched.value.best(), Some(0), "agent 1 is first under every good generation");
                decisions.fetch_add(2, Ordering::Relaxed);
            }
            (seen, failures, match_built_in)
        }));
    }

    let plan = [
        Step::Good(HOSTILE_SLOW),
        Step::Truncated,
        Step::Good(HOSTILE_GARBAGE),
        Step::Broken(HOSTILE_WRONG_WORLD),
        Step::Good(BILLING),
        Step::Broken(HOSTILE_PANIC),
        Step::Rollback,
        Step::Broken(CLAIMS),
        Step::Good(HOSTILE_GARBAGE),
        Step::Rollback,
    ];
    let mut expected_active = 1u64;
    let mut last_good = 1u64;
    let mut rejected_generations = HashSet::new();
    for i in 0..100 {
        let step = plan[i % plan.len()];
        let before = reload.active_generation(DEPARTMENT);
        match step {
            Step::Good(path) => {
                let info = reload.reload(DEPARTMENT, &read(path)).unwrap_or_else(|e| panic!("step {i} {path}: {e}"));
                assert!(info.active && info.validation.passed(), "step {i}: {info:?}");
                expected_active = info.generation;
                last_good = info.generation;
            }
            Step::Truncated => {
                let error = reload.reload(DEPARTMENT, &billing[..billing.len() / 2]).unwrap_err();
                assert!(matches!(error, Error::PluginLoad { .. }), "step {i}: {error}");
            }
            Step::Broken(path) => {
                let error = reload.reload(DEPARTMENT, &read(path)).unwrap_err();
                match (&error, path) {
                    (Error::PluginLoad { .. }, p) if p == HOSTILE_WRONG_WORLD => {}
                    (Error::Rejected { generation, reason, .. }, p) if p == HOSTILE_PANIC => {
                        assert!(reason.contains("trapped"), "step {i}: {reason}");
                        rejected_generations.insert(*generation);
                    }
                    (Error::Rejected { generation, reason, .. }, p) if p == CLAIMS => {
                        assert!(reason.contains("below the expected minimum 7"), "step {i}: {reason}");
                        rejected_generations.insert(*generation);
                    }
                    _ => panic!("step {i}: {path} failed unexpectedly: {error}"),
                }
            }
            Step::Rollback => {
                let target = reload
                    .generations(DEPARTMENT)
                    .iter()
                    .rev()
                    .find(|g| g.kept && !g.active)
                    .map(|g| g.generation)
                    .expect("a kept generation to roll back to");
                let info = reload.rollback(DEPARTMENT, target).unwrap_or_else(|e| panic!("step {i}: {e}"));
                assert!(info.active);
                expected_active = target;
                last_good = target;
            }
        }
        let after = reload.active_generation(DEPARTMENT);
        assert_eq!(after, Some(expected_active), "step {i} ({step:?}): active before {before:?}");
    }
    stop.store(true, Ordering::Relaxed);

    let mut seen = BTreeSet::new();
    let mut match_built_in = 0;
    for router in routers {
        let (s, failures, built_in) = router.join().expect("routing thread");
        assert_eq!(failures, Vec::<String>::new(), "failed decisions");
        seen.extend(s);
        match_built_in += built_in;
    }

    let audit = reload.audit();
    let made_active: BTreeSet<u64> = audit
        .iter()
        .filter(|e| matches!(e.action, AuditAction::Swap | AuditAction::Rollback) && e.result == Outcome::Ok)
        .filter_map(|e| e.generation)
        .collect();
    let rejected: BTreeSet<u64> = actions(&audit, AuditAction::Reject).iter().filter_map(|e| e.generation).collect();
    assert_eq!(rejected, rejected_generations.iter().copied().collect::<BTreeSet<_>>());
    assert!(seen.is_subset(&made_active), "decided by generations {seen:?}, made active {made_active:?}");
    assert!(seen.is_disjoint(&rejected), "a rejected generation decided: {:?}", seen.intersection(&rejected));
    assert!(made_active.is_disjoint(&rejected));
    assert_eq!(reload.active_generation(DEPARTMENT), Some(last_good));
    // 40 good loads, 40 broken builds and 20 rollbacks in 100 steps, after the first load.
    assert_eq!(actions(&audit, AuditAction::Swap).len(), 1 + 40);
    assert_eq!(actions(&audit, AuditAction::Rollback).len(), 20);
    assert_eq!(actions(&audit, AuditAction::Reject).len(), 40);
    assert!(decisions.load(Ordering::Relaxed) > 0);
    assert!(match_built_in > 0, "billing/hostile-slow generations left matching to the built-in rule");
    // Kept: at most 4 validated generations, plus at most 4 rejected ones.
    let kept = reload.generations(DEPARTMENT);
    assert!(kept.iter().filter(|g| g.kept).count() <= 4);
    assert_eq!(kept.iter().filter(|g| g.active).count(), 1);
}

/// Wait for the next entry with `action` (others are collected), up to a minute.
fn wait_for(
    events: &std::sync::mpsc::Receiver<AuditEntry>,
    action: AuditAction,
    seen: &mut Vec<AuditEntry>,
) -> AuditEntry {
    loop {
        let entry = events
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no {action:?} event within a minute; saw {seen:#?}"));
        seen.push(entry.clone());
        if entry.action == action {
            return entry;
        }
    }
}

/// Events arriving until the directory has been quiet for `window`.
fn drain(events: &std::sync::mpsc::Receiver<AuditEntry>, window: Duration) -> Vec<AuditEntry> {
    let mut rest = Vec::new();
    while let Ok(entry) = events.recv_timeout(window) {
        rest.push(entry);
    }
    rest
}

/// The real watcher: the component already in the directory is loaded at start;
/// a new component written over it in several chunks, then another one written
/// beside it and renamed over it, each become active without a restart, with
/// exactly one reload per save; a broken save is rejected and the running
/// generation keeps deciding.
#[test]
fn watched_directory_saves_become_active_once_each() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reload = manager(cache.path(), ReloadOptions::default());
    std::fs::write(dir.path().join("billing.fixtures.toml"), FIXTURES).unwrap();
    std::fs::write(dir.path().join("billing.wasm"), read(BILLING)).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a plugin").unwrap();

    let events = reload.subscribe();
    let watcher = reload.watch(dir.path()).unwrap_or_else(|e| panic!("watch: {e}"));
    // The initial scan loaded billing before `watch` returned.
    assert_eq!(reload.active_generation(DEPARTMENT), Some(1));
    let mut seen = Vec::new();
    let swap = wait_for(&events, AuditAction::Swap, &mut seen);
    assert_eq!(swap.generation, Some(1));
    assert_eq!(swap.trigger.kind, TriggerKind::Watcher);
    let rules = reload.rules(DEPARTMENT);
    let (items, _, _) = traffic(&reload);
    assert!(matches!(rules.prioritise(&items).source, RuleSource::Plugin { generation: 1, .. }));

    // Save 1: hostile-slow written in place, in four chunks with pauses.
    let slow = read(HOSTILE_SLOW);
    {
        use std::io::Write;
        let mut file = std::fs::File::create(dir.path().join("billing.wasm")).unwrap();
        for chunk in slow.chunks(slow.len() / 4 + 1) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(40));
        }
    }
    let mut seen = Vec::new();
    let swap = wait_for(&events, AuditAction::Swap, &mut seen);
    assert_eq!(swap.generation, Some(2));
    assert_eq!(swap.previous, Some(1));
    assert!(swap.source.ends_with("billing.wasm"), "{}", swap.source);
    let after = drain(&events, Duration::from_millis(1500));
    assert_eq!(after, Vec::new(), "one save, one reload");
    assert_eq!(seen.iter().map(|e| e.action).collect::<Vec<_>>(), [AuditAction::Load, AuditAction::Swap]);
    assert!(matches!(rules.prioritise(&items).source, RuleSource::Plugin { generation: 2, .. }));

    // Save 2: hostile-garbage written to a hidden file, then renamed over.
    std::fs::write(dir.path().join(".billing.wasm.tmp"), read(HOSTILE_GARBAGE)).unwrap();
    std::fs::rename(dir.path().join(".billing.wasm.tmp"), dir.path().join("billing.wasm")).unwrap();
    let mut seen = Vec::new();
    let swap = wait_for(&events, AuditAction::Swap, &mut seen);
    assert_eq!(swap.generation, Some(3));
    assert_eq!(drain(&events, Duration::from_millis(1500)), Vec::new(), "one rename, one reload");
    assert_eq!(reload.active_generation(DEPARTMENT), Some(3));

    // Save 3: hostile-panic (traps on the fixtures) is rejected; 3 keeps deciding.
    std::fs::write(dir.path().join(".billing.wasm.tmp"), read(HOSTILE_PANIC)).unwrap();
    std::fs::rename(dir.path().join(".billing.wasm.tmp"), dir.path().join("billing.wasm")).unwrap();
    let mut seen = Vec::new();
    let rejected = wait_for(&events, AuditAction::Reject, &mut seen);
    assert_eq!(rejected.generation, Some(4));
    assert_eq!(rejected.result, Outcome::Rejected);
    assert!(rejected.reason.as_deref().is_some_and(|r| r.contains("trapped")), "{rejected:?}");
    assert_eq!(drain(&events, Duration::from_millis(1500)), Vec::new());
    assert_eq!(reload.active_generation(DEPARTMENT), Some(3));
    assert!(matches!(rules.prioritise(&items).source, RuleSource::Plugin { generation: 3, .. }));
    drop(watcher);
}

/// Rollback is one call and is audited; a rejected generation cannot be rolled
/// back to; the audit file holds one JSON line per action with time, department,
/// generation, content hash, trigger and result.
#[test]
fn rollback_and_the_audit_file() {
    let cache = tempfile::tempdir().unwrap();
    let audit_dir = tempfile::tempdir().unwrap();
    let audit_file = audit_dir.path().join("audit.jsonl");
    let reload = manager(cache.path(), ReloadOptions::default().audit_file(&audit_file));

    let billing = reload.reload(DEPARTMENT, &read(BILLING)).unwrap();
    let slow =
        reload.reload_with(DEPARTMENT, &read(HOSTILE_SLOW), switchyard_runtime::reload::Trigger::api("alice")).unwrap();
    let claims = reload.reload(DEPARTMENT, &read(CLAIMS)).unwrap_err();
    let Error::Rejected { generation: rejected, .. } = claims else { panic!("claims: {claims}") };
    assert_eq!((billing.generation, slow.generation, rejected), (1, 2, 3));
    assert_eq!(reload.active_generation(DEPARTMENT), Some(2));

    let back = reload.rollback_by(DEPARTMENT, 1, "bob").unwrap();
    assert!(back.active);
    assert_eq!(reload.active_generation(DEPARTMENT), Some(1));
    let error = reload.rollback(DEPARTMENT, 3).unwrap_err();
    assert!(error.to_string().contains("generation 3 was rejected"), "{error}");
    let error = reload.rollback(DEPARTMENT, 9).unwrap_err();
    assert!(matches!(error, Error::Unknown { kind: "generation", .. }), "{error}");

    let generations = reload.generations(DEPARTMENT);
    let summary: Vec<(u64, bool, bool, bool)> =
        generations.iter().map(|g| (g.generation, g.active, g.kept, g.validation.passed())).collect();
    assert_eq!(summary, [(1, true, true, true), (2, false, true, true), (3, false, false, false)]);
    assert_eq!(generations[0].sha256, generations[0].sha256.to_lowercase());
    assert_eq!(generations[0].sha256.len(), 64);
    assert!(
        matches!(&generations[2].validation, Validation::Failed { reason } if reason.contains("reload-test.fixtures.toml"))
    );

    let lines: Vec<AuditEntry> = std::fs::read_to_string(&audit_file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(lines, reload.audit());
    type Digest<'a> = (AuditAction, Option<u64>, Option<u64>, TriggerKind, &'a str, Outcome);
    let digest: Vec<Digest<'_>> = lines
        .iter()
        .map(|e| (e.action, e.generation, e.previous, e.trigger.kind, e.trigger.who.as_str(), e.result))
        .collect();
    assert_eq!(
        digest,
        [
            (AuditAction::Load, Some(1), None, TriggerKind::Api, "api", Outcome::Ok),
            (AuditAction::Swap, Some(1), None, TriggerKind::Api, "api", Outcome::Ok),
            (AuditAction::Load, Some(2), None, TriggerKind::Api, "alice", Outcome::Ok),
            (AuditAction::Swap, Some(2), Some(1), TriggerKind::Api, "alice", Outcome::Ok),
            (AuditAction::Reject, Some(3), None, TriggerKind::Api, "api", Outcome::Rejected),
            (AuditAction::Rollback, Some(1), Some(2), TriggerKind::Rollback, "bob", Outcome::Ok),
        ]
    );
    assert!(lines.iter().all(|e| e.department == DEPARTMENT && e.sha256.len() == 64 && e.at.ends_with('Z')));
    assert_eq!(lines[0].sha256, billing.sha256);
    assert_eq!(lines[5].sha256, billing.sha256);
    assert!(lines[4].reason.as_deref().is_some_and(|r| r.contains("below the expected minimum 7")), "{:?}", lines[4]);
    assert_eq!(lines.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
}

/// A shadow runs beside the active generation on live decisions: only the active
/// answer is returned, agreements and disagreements are counted per hook with
/// how they differ, and promotion makes the shadow active in one audited call.
#[test]
fn shadow_counts_agreement_and_promotes() {
    let cache = tempfile::tempdir().unwrap();
    let reload = manager(cache.path(), ReloadOptions::default());
    reload.reload(DEPARTMENT, &read(BILLING)).unwrap();
    let shadow = reload.shadow(DEPARTMENT, &read(HOSTILE_SLOW)).unwrap();
    assert_eq!((shadow.generation, shadow.active, shadow.shadow), (2, false, true));
    assert_eq!(reload.active_generation(DEPARTMENT), Some(1));

    let (items, item, table) = traffic(&reload);
    let rules = reload.rules(DEPARTMENT);
    // billing adds 10 for voice and 5 for chat to the item's priority 3 (13, 8);
    // hostile-slow answers 10 for every item: both items differ.
    for _ in 0..5 {
        let decided = rules.prioritise(&items);
        assert!(matches!(decided.source, RuleSource::Plugin { generation: 1, .. }), "{}", decided.source);
        assert_eq!(
            decided.value.iter().map(|p| p.priority).collect::<Vec<_>>(),
            [13, 8],
            "the active answer is applied"
        );
    }
    // A single voice item of priority 0: both answer 10.
    let mut voice = ItemBatch::new(items.now_ms);
    let mut row = items.rows[0];
    row.priority = 0;
    voice.rows.push(row);
    for _ in 0..3 {
        assert_eq!(rules.prioritise(&voice).value[0].priority, 10);
    }
    // Neither exports a matcher: both sides are the built-in rule, always agreeing.
    for _ in 0..2 {
        rules.match_agents(&item, &table);
    }

    let report = reload.shadow_report(DEPARTMENT).expect("a shadow runs");
    assert_eq!(report.generation, 2);
    let p = &report.prioritise;
    assert_eq!((p.decisions, p.agreed, p.disagreed, p.failures), (8, 3, 5, 0), "{report:#?}");
    assert_eq!((p.differences.priority, p.differences.queue), (5, 0));
    assert_eq!(p.shadow_latency.count, 8);
    assert_eq!(p.active_latency.count, 8);
    let m = &report.match_agents;
    assert_eq!((m.decisions, m.agreed, m.disagreed, m.differences.best_agent), (2, 2, 0, 0));
    assert_eq!(report.samples.len(), 5);
    assert_eq!(
        report.samples[0],
        "prioritise: item 0: priority 13 (active) vs 10 (shadow); item 1: priority 8 (active) vs 10 (shadow)"
    );

    let promoted = reload.promote_by(DEPARTMENT, "carol").unwrap();
    assert!(promoted.active && !promoted.shadow);
    assert_eq!(reload.active_generation(DEPARTMENT), Some(2));
    assert!(reload.shadow_report(DEPARTMENT).is_none());
    assert!(matches!(rules.prioritise(&items).source, RuleSource::Plugin { generation: 2, .. }));
    let last = reload.audit().pop().unwrap();
    assert_eq!((last.action, last.generation, last.previous), (AuditAction::Promote, Some(2), Some(1)));
    assert_eq!((last.trigger.kind, last.trigger.who.as_str()), (TriggerKind::Promotion, "carol"));
    assert_eq!(last.reason.as_deref(), Some("shadow agreed on 5 of 10 decisions, 0 failures"));
    assert!(reload.promote(DEPARTMENT).is_err(), "nothing left to promote");

    // A shadow that traps is counted, never applied.
    reload.configure(DEPARTMENT, DepartmentSetup::new());
    reload.shadow(DEPARTMENT, &read(HOSTILE_PANIC)).unwrap();
    let decided = rules.prioritise(&items);
    assert!(matches!(decided.source, RuleSource::Plugin { generation: 2, .. }));
    assert_eq!(decided.value.iter().map(|p| p.priority).collect::<Vec<_>>(), [10, 10]);
    let report = reload.stop_shadow(DEPARTMENT).unwrap();
    assert_eq!((report.prioritise.decisions, report.prioritise.failures), (0, 1));
    assert!(report.last_failure.as_deref().is_some_and(|f| f.contains("trapped")), "{report:?}");
}

/// Smoke call (`ReloadOptions::smoke_call`), obeyed and violated: with it off a
/// candidate without fixtures that panics on any item is admitted (the
/// library's default, which the hostile-plugin tests rely on); with it on the
/// same candidate is refused naming the smoke call, and billing stays active.
#[test]
fn the_smoke_call_refuses_a_plugin_that_traps_on_a_plain_item() {
    let cache = tempfile::tempdir().unwrap();
    for smoke in [false, true] {
        let reload = manager(cache.path(), ReloadOptions::default().smoke_call(smoke));
        reload.configure(DEPARTMENT, DepartmentSetup::new());
        reload.reload(DEPARTMENT, &read(BILLING)).unwrap_or_else(|e| panic!("billing: {e}"));
        let panic = reload.reload(DEPARTMENT, &read(HOSTILE_PANIC));
        match (smoke, panic) {
            (false, Ok(info)) => assert!(info.active),
            (true, Err(Error::Rejected { check, reason, generation, .. })) => {
                assert_eq!((check, generation), ("smoke call", 2));
                assert!(reason.contains("smoke call of `prioritise` on one plain item failed"), "{reason}");
                assert_eq!(reload.active_generation(DEPARTMENT), Some(1));
            }
            (smoke, other) => panic!("smoke {smoke}: {other:?}"),
        }
    }
}

/// The commit hook sees each change before it takes effect, and a refusing hook
/// leaves the active generation as it was; `restore` brings recorded
/// generations back with their own numbers (a missing one is reported and
/// skipped), and later loads number after the highest.
#[test]
fn a_commit_hook_gates_changes_and_restore_keeps_the_numbers() {
    use std::sync::Mutex;
    use switchyard_runtime::reload::{Change, Restored};
    let cache = tempfile::tempdir().unwrap();
    let reload = manager(cache.path(), ReloadOptions::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let refuse = Arc::new(AtomicBool::new(false));
    {
        let (seen, refuse) = (seen.clone(), refuse.clone());
        reload.set_commit(Arc::new(move |change: &Change<'_>| {
            let what = match change {
                Change::Activate { generation, .. } => format!("activate {generation}"),
                Change::Rollback { generation, .. } => format!("rollback {generation}"),
                Change::Reject { generation, .. } => format!("reject {generation}"),
                other => format!("{other:?}"),
            };
            seen.lock().unwrap().push(what);
            if refuse.load(Ordering::Relaxed) { Err(Error::Invalid("journal full".into())) } else { Ok(()) }
        }));
    }
    let billing = read(BILLING);
    reload.reload(DEPARTMENT, &billing).unwrap();
    reload.reload(DEPARTMENT, &billing).unwrap();
    assert!(reload.reload(DEPARTMENT, &read(CLAIMS)).is_err(), "claims fails the fixtures");
    refuse.store(true, Ordering::Relaxed);
    assert!(matches!(reload.rollback(DEPARTMENT, 1), Err(Error::Invalid(m)) if m == "journal full"));
    assert!(reload.reload(DEPARTMENT, &billing).is_err());
    assert_eq!(reload.active_generation(DEPARTMENT), Some(2), "refused changes did not happen");
    assert_eq!(*seen.lock().unwrap(), ["activate 1", "activate 2", "reject 3", "rollback 1", "activate 4"]);

    // A fresh manager (a restart) restores 2 as active and 1 as kept; 9 is gone.
    let restarted = manager(cache.path(), ReloadOptions::default());
    let sha = |bytes: &[u8]| {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(bytes))
    };
    let restored = |generation, bytes: Option<Vec<u8>>| Restored {
        generation,
        sha256: sha(&billing),
        plugin: "billing".into(),
        bytes,
    };
    let errors = restarted.restore(
        DEPARTMENT,
        vec![restored(1, Some(billing.clone())), restored(2, Some(billing.clone())), restored(9, None)],
        Some(2),
        None,
    );
    assert_eq!(errors.iter().map(|(g, _)| *g).collect::<Vec<_>>(), [9]);
    assert_eq!(restarted.active_generation(DEPARTMENT), Some(2));
    let kept: Vec<u64> = restarted.generations(DEPARTMENT).iter().map(|g| g.generation).collect();
    assert_eq!(kept, [1, 2]);
    assert_eq!(restarted.reload(DEPARTMENT, &billing).unwrap().generation, 10, "after the highest, missing or not");
    restarted.rollback(DEPARTMENT, 1).unwrap();
    let restores = actions(&restarted.audit(), AuditAction::Restore).len();
    assert_eq!(restores, 3);

    // Restored again (a cluster's standby following its leader): the shadow
    // the first restore started stops when the journal says none runs.
    let follower = manager(cache.path(), ReloadOptions::default());
    let both = || vec![restored(1, Some(billing.clone())), restored(2, Some(billing.clone()))];
    assert!(follower.restore(DEPARTMENT, both(), Some(2), Some(1)).is_empty());
    assert!(follower.shadow_report(DEPARTMENT).is_some(), "1 runs in shadow");
    assert!(follower.restore(DEPARTMENT, both(), Some(1), None).is_empty());
    assert!(follower.shadow_report(DEPARTMENT).is_none(), "promoted: no shadow runs");
    assert_eq!(follower.active_generation(DEPARTMENT), Some(1));
}

/// Listing generations and fixtures never waits for a reload in progress (which
/// holds the department while it compiles and runs the fixtures): hostile-slow
/// configured to take 400 ms per call is being validated while the listing
/// answers at once.
#[test]
fn listing_does_not_wait_for_a_reload_in_progress() {
    use std::time::Instant;
    use switchyard_runtime::runtime::DepartmentConfig;
    let cache = tempfile::tempdir().unwrap();
    let reload = manager(cache.path(), ReloadOptions::default());
    reload.reload(DEPARTMENT, &read(BILLING)).unwrap();
    reload.configure(
        DEPARTMENT,
        DepartmentSetup::new().with_config(DepartmentConfig::new().with("delay_ms", "400")).with_fixtures(fixtures()),
    );
    let slow = {
        let reload = reload.clone();
        std::thread::spawn(move || reload.reload(DEPARTMENT, &read(HOSTILE_SLOW)))
    };
    std::thread::sleep(Duration::from_millis(150));
    let started = Instant::now();
    let listed = reload.generations(DEPARTMENT);
    let has_fixtures = reload.fixtures(DEPARTMENT).is_some();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(100), "listing took {took:?}");
    assert_eq!(listed.iter().map(|g| g.generation).collect::<Vec<_>>(), [1]);
    assert!(has_fixtures);
    let swapped = slow.join().unwrap().unwrap_or_else(|e| panic!("hostile-slow: {e}"));
    assert_eq!(swapped.generation, 2);
    assert_eq!(reload.generations(DEPARTMENT).len(), 2);
}
