//! Runs each polyglot plugin's own unit tests — Python's `unittest` for
//! `python-collections`, Node's test runner for `js-retail-chat` — so that
//! `cargo test --workspace` fails when a rule's logic does.

use std::path::Path;
use std::process::Command;

use switchyard_polyglot_artifacts::{JS_RETAIL_CHAT_DIR, PYTHON_COLLECTIONS_DIR};

/// Runs `program args…` in `dir`; returns its combined output, or panics with it
/// when the program cannot start or fails.
fn run(dir: &str, program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .current_dir(Path::new(dir))
        // Keep the source tree clean: no __pycache__ next to the plugin sources.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{program}` in {dir}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "`{program} {}` failed in {dir} ({}):\n{text}", args.join(" "), output.status);
    text
}

/// The number after `prefix` on the first line that starts with it.
fn count(text: &str, prefix: &str) -> Option<u32> {
    text.lines().find_map(|line| line.trim().strip_prefix(prefix)?.split_whitespace().next()?.parse().ok())
}

/// The collections rules pass their Python unit tests (and there are some).
#[test]
fn python_collections_unit_tests_pass() {
    let python = std::env::var("SWITCHYARD_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = run(PYTHON_COLLECTIONS_DIR, &python, &["-m", "unittest", "-v"]);
    let ran = count(&out, "Ran ").unwrap_or(0);
    assert!(ran > 0, "python unittest ran no test:\n{out}");
    assert!(out.lines().any(|line| line.trim() == "OK"), "python unittest did not report OK:\n{out}");
}

/// The retail chat rules pass their Node unit tests (and there are some).
#[test]
fn js_retail_chat_unit_tests_pass() {
    let out = run(JS_RETAIL_CHAT_DIR, "node", &["--test", "rules.test.js"]);
    assert!(count(&out, "# pass").unwrap_or(0) > 0, "node --test passed no test:\n{out}");
    assert_eq!(count(&out, "# fail"), Some(0), "node --test reported failures:\n{out}");
}
