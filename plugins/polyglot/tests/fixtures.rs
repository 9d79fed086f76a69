//! Each polyglot plugin's `fixtures.toml` is a valid fixture file whose cases
//! cover exactly the hooks the plugin exports.

use std::path::Path;

use switchyard_polyglot_artifacts::{JS_RETAIL_CHAT_DIR, PYTHON_COLLECTIONS_DIR};
use switchyard_sdk::Hook;
use switchyard_sdk::fixtures::Fixtures;

fn load(dir: &str) -> Fixtures {
    let path = Path::new(dir).join("fixtures.toml");
    Fixtures::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Collections: prioritise and escalate cases, with the department's config.
#[test]
fn python_collections_fixtures_cover_prioritise_and_escalate() {
    let fixtures = load(PYTHON_COLLECTIONS_DIR);
    assert_eq!(fixtures.hooks(), [Hook::Prioritise, Hook::Escalate]);
    assert_eq!(fixtures.cases().len(), 4);
    assert_eq!(fixtures.config["alert-balance"], "10000");
}

/// Retail chat: prioritise and match cases.
#[test]
fn js_retail_chat_fixtures_cover_prioritise_and_match() {
    let fixtures = load(JS_RETAIL_CHAT_DIR);
    assert_eq!(fixtures.hooks(), [Hook::Prioritise, Hook::Match]);
    assert_eq!(fixtures.cases().len(), 4);
}
