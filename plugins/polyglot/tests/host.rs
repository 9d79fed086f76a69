//! The Python and JavaScript components load in the Switchyard host (the same
//! sandboxed runtime as Rust plugins) and pass their `fixtures.toml` there: every
//! case is decided by the plugin itself, never by a fallback, and meets its
//! expectations.

use std::path::Path;
use std::sync::{Arc, RwLock};

use switchyard_host::rules::{RuleSet, RuleSource, SharedCatalog};
use switchyard_host::runtime::{DepartmentConfig, Hooks, Runtime};
use switchyard_host::sandbox::Limits;
use switchyard_polyglot_artifacts::{
    COMPILED_CACHE_DIR, JS_RETAIL_CHAT, JS_RETAIL_CHAT_DIR, PYTHON_COLLECTIONS, PYTHON_COLLECTIONS_DIR,
};
use switchyard_sdk::Hook;
use switchyard_sdk::fixtures::{Case, Fixtures};

/// The default limits (16 MiB of linear memory is enough for both interpreters),
/// with a generous deadline: a debug-build test host on a shared 2-core CI machine
/// may run an interpreter's first calls slowly, and a timed-out call would be
/// decided by the fallback instead of the plugin. Production keeps 50 ms.
fn limits() -> Limits {
    Limits { deadline: std::time::Duration::from_secs(5), ..Limits::default() }
}

/// Loads `component` for `department` with the fixture file's config and names,
/// runs every case through the runtime's rule set, and returns the hooks it exports.
fn run_fixtures(department: &str, component: &str, dir: &str) -> (Hooks, usize) {
    let fixtures = Fixtures::load(Path::new(dir).join("fixtures.toml")).unwrap_or_else(|e| panic!("{e}"));
    let catalog: SharedCatalog = Arc::new(RwLock::new(fixtures.catalog()));
    let runtime = Runtime::builder()
        .catalog(catalog.clone())
        // Compiling an interpreter component takes about a minute: keep the result.
        .cache_dir(COMPILED_CACHE_DIR)
        .build()
        .unwrap_or_else(|e| panic!("cannot build the runtime: {e}"));
    let config = fixtures
        .config
        .iter()
        .fold(DepartmentConfig::new().with_limits(limits()), |config, (key, value)| config.with(key, value));
    let report = runtime
        .register_file(department, component, config)
        .unwrap_or_else(|e| panic!("{department}: {component} does not load: {e}"));
    assert_eq!(report.generation, 1);
    eprintln!(
        "{department}: {component} compiled in {:.1} s (from the cache: {})",
        report.compile_time.as_secs_f64(),
        report.cache_hit
    );
    let rules = runtime.rules(department);

    let cases = fixtures.cases();
    for case in &cases {
        check_case(department, rules.as_ref(), &catalog, case);
    }
    (report.hooks, cases.len())
}

/// Decide one case with the plugin and check the decision against the case.
fn check_case(department: &str, rules: &dyn RuleSet, catalog: &SharedCatalog, case: &Case<'_>) {
    let (batch, table) = case.build(&mut catalog.write().unwrap_or_else(|p| p.into_inner()));
    let names = catalog.read().unwrap_or_else(|p| p.into_inner());
    let (source, verdict) = match case.hook() {
        Hook::Prioritise => {
            let decided = rules.prioritise(&batch);
            (decided.source, case.check_prioritise(&names, &decided.value))
        }
        Hook::Escalate => {
            let decided = rules.escalate(&batch);
            (decided.source, case.check_escalate(&names, &decided.value))
        }
        Hook::Match => {
            let table = table.unwrap_or_else(|| panic!("match case `{}` built no candidate table", case.name()));
            let decided = rules.match_agents(&batch, &table);
            (decided.source, case.check_match(&names, &decided.value))
        }
    };
    assert!(
        matches!(source, RuleSource::Plugin { .. }),
        "{department}: {} case `{}` was not decided by the plugin: {source}",
        case.hook(),
        case.name()
    );
    if let Err(mismatch) = verdict {
        panic!("{department}: {mismatch}");
    }
}

/// The collections plugin (Python, componentize-py) loads in the host, exports
/// prioritise and escalate, and passes its fixtures there.
#[test]
fn python_collections_passes_its_fixtures_in_the_host() {
    let (hooks, cases) = run_fixtures("collections", PYTHON_COLLECTIONS, PYTHON_COLLECTIONS_DIR);
    assert_eq!(hooks, Hooks { prioritise: true, escalate: true, match_agents: false });
    assert_eq!(cases, 4);
}

/// The retail chat plugin (JavaScript, componentize-js) loads in the host,
/// exports prioritise and match, and passes its fixtures there.
#[test]
fn js_retail_chat_passes_its_fixtures_in_the_host() {
    let (hooks, cases) = run_fixtures("retail-chat", JS_RETAIL_CHAT, JS_RETAIL_CHAT_DIR);
    assert_eq!(hooks, Hooks { prioritise: true, escalate: false, match_agents: true });
    assert_eq!(cases, 4);
}
