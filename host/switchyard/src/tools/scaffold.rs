//! `switchyard plugin new --lang rust|python|js NAME`: a working plugin with
//! fixtures, in a new directory, ready to test and build.
//!
//! - **rust**: a crate using `switchyard-sdk` (path dependency on the SDK this
//!   binary was built from, or `--sdk PATH`), a `prioritise` and a `match` rule,
//!   native tests that also run the fixture file.
//! - **python**: a componentize-py project: pure rules in `rules.py` with
//!   unittest tests, `app.py` adapting them to the contract, the WIT world and
//!   the contract under `wit/`, and `build.sh`.
//! - **js**: a componentize-js project: pure rules in `rules.js` with `node --test`
//!   tests, `app.js`, the WIT under `wit/`, `package.json` with a build script.
//!
//! Each gets a `fixtures.toml` that `switchyard plugin check` runs against the
//! built component.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The contract every scaffold carries (python and js copy it under `wit/deps`).
const CONTRACT: &str = include_str!("../../../../wit/routing.wit");

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust with switchyard-sdk.
    Rust,
    /// Python with componentize-py.
    Python,
    /// JavaScript with componentize-js.
    Js,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "rust" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            other => Err(format!("unknown language `{other}` (expected rust, python or js)")),
        }
    }
}

/// What `new` needs.
#[derive(Debug, Clone)]
pub struct NewOptions {
    /// Language.
    pub lang: Lang,
    /// Plugin (and department) name: lower-case letters, digits and dashes.
    pub name: String,
    /// Directory to create the plugin in (default: `./NAME`).
    pub dir: Option<PathBuf>,
    /// Path of switchyard-sdk for a Rust plugin (default: the SDK this binary
    /// was built from).
    pub sdk: Option<PathBuf>,
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "plugin name `{name}` must be lower-case letters, digits and single dashes, starting with a letter"
        )))
    }
}

/// Whether `dir` lies inside a Cargo workspace (so a new crate must not declare
/// its own `[workspace]`).
fn inside_workspace(dir: &Path) -> bool {
    dir.ancestors().skip(1).any(|d| {
        std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
    })
}

fn write(dir: &Path, file: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(file);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io { path: parent.to_owned(), source })?;
    }
    std::fs::write(&path, text).map_err(|source| Error::Io { path: path.clone(), source })?;
    Ok(path)
}

/// Create the plugin; returns the files written.
pub fn new_plugin(options: &NewOptions) -> Result<Vec<PathBuf>> {
    check_name(&options.name)?;
    let dir = options.dir.clone().unwrap_or_else(|| PathBuf::from(&options.name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::Invalid(format!(
            "{} already exists and is not empty; pick another name or --dir",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
    let name = options.name.as_str();
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect::<String>()
        + "Rules";
    let fill = |template: &str| {
        template.replace("{{name}}", name).replace("{{crate}}", &name.replace('-', "_")).replace("{{type}}", &type_name)
    };
    let mut files = vec![write(&dir, "fixtures.toml", &fill(FIXTURES))?];
    match options.lang {
        Lang::Rust => {
            let sdk = match &options.sdk {
                Some(sdk) => sdk.clone(),
                None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk")),
            };
            let sdk = sdk.canonicalize().unwrap_or(sdk);
            let absolute_dir = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
            let (dependency, workspace) = if inside_workspace(&absolute_dir) {
                // A member of this repository's workspace builds against the SDK beside it.
                (format!("path = {:?}", sdk.display().to_string()), String::new())
            } else {
                // Anywhere else: the published SDK by version, its own workspace,
                // and (while the SDK is not on crates.io) a patch to this copy of it.
                (
                    format!("version = \"{SDK_VERSION}\""),
                    format!(
                        "\n# A workspace of its own, so it builds wherever it is put.\n[workspace]\n\n\
                         # Until switchyard-sdk is on crates.io: build against this copy of it.\n\
                         # Remove these two lines once it is published.\n\
                         [patch.crates-io]\nswitchyard-sdk = {{ path = {:?} }}\n",
                        sdk.display().to_string()
                    ),
                )
            };
            let manifest = fill(RUST_CARGO).replace("{{sdk}}", &dependency).replace("{{workspace}}", &workspace);
            files.push(write(&dir, "Cargo.toml", &manifest)?);
            files.push(write(&dir, "src/lib.rs", &fill(RUST_LIB))?);
            files.push(write(&dir, "README.md", &fill(RUST_README))?);
        }
        Lang::Python => {
            files.push(write(&dir, "rules.py", &fill(PY_RULES))?);
            files.push(write(&dir, "app.py", &fill(PY_APP))?);
            files.push(write(&dir, "test_rules.py", &fill(PY_TEST))?);
            files.push(write(&dir, "wit/world.wit", &fill(WORLD))?);
            files.push(write(&dir, "wit/deps/routing/routing.wit", CONTRACT)?);
            files.push(write(&dir, "build.sh", &fill(PY_BUILD))?);
            files.push(write(&dir, "README.md", &fill(PY_README))?);
        }
        Lang::Js => {
            files.push(write(&dir, "rules.js", &fill(JS_RULES))?);
            files.push(write(&dir, "app.js", &fill(JS_APP))?);
            files.push(write(&dir, "rules.test.js", &fill(JS_TEST))?);
            files.push(write(&dir, "wit/world.wit", &fill(WORLD))?);
            files.push(write(&dir, "wit/deps/routing/routing.wit", CONTRACT)?);
            files.push(write(&dir, "package.json", &fill(JS_PACKAGE))?);
            files.push(write(&dir, "README.md", &fill(JS_README))?);
        }
    }
    Ok(files)
}

/// The rule every scaffold starts with, the same in each language: priority =
/// 20 per customer tier step + 30 for a repeat contact; match = veto agents
/// below the required levels, then longest idle.
const FIXTURES: &str = r#"# Fixtures of the {{name}} plugin: `switchyard plugin check` runs them against
# the built component; the native tests run them against the source.

[[prioritise]]
name = "a gold repeat caller outranks a first-time standard caller"
items = [
  { label = "gold-repeat", queue = "{{name}}", tier = "gold", contacts = 2, expect = { priority = 70, outranks = ["standard"] } },
  { label = "standard", queue = "{{name}}", expect = { priority = 0 } },
]

[[match]]
name = "the longest-idle qualified agent gets the item"
item = { queue = "{{name}}", skills = { {{name}} = 3 } }
agents = [
  { id = 1, skills = { {{name}} = 2 }, idle_s = 600 },
  { id = 2, skills = { {{name}} = 5 }, idle_s = 60 },
  { id = 3, skills = { {{name}} = 4 }, idle_s = 120 },
]
expect = { best = 3, vetoed = [1] }
"#;

/// The SDK version a scaffold asks for: this host's (they are released together).
const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

const RUST_CARGO: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the WebAssembly component; rlib: lets `cargo test` run the rules natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
switchyard-sdk = { {{sdk}} }

[dev-dependencies]
# Fixture files in the native tests only: the component compiles neither serde nor TOML.
switchyard-sdk = { {{sdk}}, features = ["fixtures"] }
{{workspace}}"#;

const RUST_LIB: &str = r#"//! The {{name}} department's routing rules.

use switchyard_sdk::{CandidateTable, Context, Item, MatchResult, Priority, Rules};

/// The rules. Hooks not written here (escalate) use the host's built-in rule.
#[derive(Debug, Default)]
pub struct {{type}};

#[switchyard_sdk::rules]
impl Rules for {{type}} {
    fn prioritise(&self, _ctx: &Context, item: Item<'_>) -> Priority {
        let tier = 20 * item.tier().as_u8() as i32;
        let repeat = if item.is_repeat() { 30 } else { 0 };
        Priority::new(item.priority() + tier + repeat).because(format!("tier +{tier}, repeat +{repeat}"))
    }

    fn match_agents(&self, _ctx: &Context, item: Item<'_>, candidates: &CandidateTable) -> MatchResult {
        let required = item.skills();
        MatchResult::Scores(
            candidates
                .iter()
                .map(|c| if c.qualifies(required) { c.idle_ms() as f32 / 1000.0 } else { -1.0 })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::{TestBench, WorkItem};
    use switchyard_sdk::Tier;

    #[test]
    fn repeat_contacts_and_tiers_raise_priority() {
        let bench = TestBench::new({{type}});
        let decided = bench.prioritise(&[WorkItem::voice("{{name}}").tier(Tier::Gold).contacts(2), WorkItem::voice("{{name}}")]);
        assert_eq!(decided[0].priority, 70);
        assert_eq!(decided[1].priority, 0);
    }

    #[test]
    fn fixtures_pass_natively() {
        TestBench::new({{type}})
            .run_fixtures(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures.toml"))
            .expect("the fixture file loads")
            .assert_ok();
    }
}
"#;

const RUST_README: &str = r#"# {{name}}

A Switchyard rule plugin.

    cargo test                                              # rules and fixtures, natively
    cargo build --release --target wasm32-wasip2            # the component
    switchyard plugin check target/wasm32-wasip2/release/{{crate}}.wasm --fixtures fixtures.toml
"#;

const WORLD: &str = r#"/// The {{name}} department's rule plugin. The contract is in deps/routing.
package switchyard:plugin;

world rules {
    include switchyard:routing/rules-base@0.1.0;
    export switchyard:routing/prioritiser@0.1.0;
    export switchyard:routing/matcher@0.1.0;
}
"#;

const PY_RULES: &str = r#""""The {{name}} department's rules, as pure functions (tested without wasm)."""


def priority(tier: int, contacts: int, current: int) -> int:
    """20 per customer tier step, 30 more for a repeat contact."""
    return current + 20 * tier + (30 if contacts > 1 else 0)


def scores(required, proficiency, columns, idle_ms):
    """One score per agent: its idle seconds, or -1 (veto) below a required level.

    required: list of (skill id, level); columns: skill ids of the matrix;
    proficiency: row-major agents x columns; idle_ms: per agent.
    """
    k = len(columns)
    out = []
    for i, idle in enumerate(idle_ms):
        row = proficiency[i * k:(i + 1) * k]
        ok = all(skill in columns and row[columns.index(skill)] >= level for skill, level in required)
        out.append(idle / 1000.0 if ok else -1.0)
    return out
"#;

const PY_APP: &str = r#""""Component entry point: adapts the contract's types to rules.py."""

from typing import List

import rules
from wit_world import exports
from wit_world.imports import types


class Prioritiser(exports.Prioritiser):
    def prioritise(self, items: types.ItemBatch) -> List[types.Priority]:
        return [
            types.Priority(rules.priority(row.tier, row.contacts, row.priority), None, None)
            for row in items.rows
        ]


class Matcher(exports.Matcher):
    def match_agents(self, item: types.ItemBatch, candidates: types.CandidateTable) -> types.MatchResult:
        row = item.rows[0]
        required = [(s.skill, s.level) for s in item.skills[row.skill_start:row.skill_start + row.skill_count]]
        return types.MatchResult_Scores(
            rules.scores(required, list(candidates.proficiency), list(candidates.skill_columns), list(candidates.idle_ms))
        )
"#;

const PY_TEST: &str = r#"import unittest

import rules


class RulesTest(unittest.TestCase):
    def test_repeat_gold_caller(self):
        self.assertEqual(rules.priority(2, 2, 0), 70)
        self.assertEqual(rules.priority(0, 1, 0), 0)

    def test_unqualified_agents_are_vetoed(self):
        got = rules.scores([(7, 3)], [2, 5, 4], [7], [600_000, 60_000, 120_000])
        self.assertEqual(got, [-1.0, 60.0, 120.0])


if __name__ == "__main__":
    unittest.main()
"#;

const PY_BUILD: &str = r#"#!/usr/bin/env sh
# Build the component (needs: pip install componentize-py==0.25.1).
set -e
cd "$(dirname "$0")"
python3 -m unittest -q
componentize-py -d wit -w rules componentize app -o {{name}}.wasm
echo "built {{name}}.wasm; check it with: switchyard plugin check {{name}}.wasm"
"#;

const PY_README: &str = r#"# {{name}} (Python)

    python3 -m unittest            # the rules, without wasm
    sh build.sh                    # the component: {{name}}.wasm
    switchyard plugin check {{name}}.wasm
"#;

const JS_RULES: &str = r#"// The {{name}} department's rules, as pure functions (tested without wasm).

/** 20 per customer tier step, 30 more for a repeat contact. */
export function priority(tier, contacts, current) {
  return current + 20 * tier + (contacts > 1 ? 30 : 0);
}

/** One score per agent: idle seconds, or -1 (veto) below a required level. */
export function scores(required, proficiency, columns, idleMs) {
  const k = columns.length;
  return idleMs.map((idle, i) => {
    const ok = required.every(([skill, level]) => {
      const j = columns.indexOf(skill);
      return j >= 0 && proficiency[i * k + j] >= level;
    });
    return ok ? Number(idle) / 1000 : -1;
  });
}
"#;

const JS_APP: &str = r#"// Component entry point: adapts the contract's types to rules.js.
import { priority, scores } from "./rules.js";

export const prioritiser = {
  prioritise(items) {
    return items.rows.map((row) => ({ priority: priority(row.tier, row.contacts, row.priority) }));
  },
};

export const matcher = {
  matchAgents(item, candidates) {
    const row = item.rows[0];
    const required = item.skills.slice(row.skillStart, row.skillStart + row.skillCount).map((s) => [s.skill, s.level]);
    return {
      tag: "scores",
      val: new Float32Array(scores(required, Array.from(candidates.proficiency), Array.from(candidates.skillColumns), Array.from(candidates.idleMs))),
    };
  },
};
"#;

const JS_TEST: &str = r#"import { test } from "node:test";
import assert from "node:assert/strict";
import { priority, scores } from "./rules.js";

test("a gold repeat caller gets 70", () => {
  assert.equal(priority(2, 2, 0), 70);
  assert.equal(priority(0, 1, 0), 0);
});

test("unqualified agents are vetoed", () => {
  assert.deepEqual(scores([[7, 3]], [2, 5, 4], [7], [600000n, 60000n, 120000n]), [-1, 60, 120]);
});
"#;

const JS_PACKAGE: &str = r#"{
  "name": "{{name}}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {
    "test": "node --test",
    "build": "componentize-js --wit wit --world-name rules --disable stdio random clocks http fetch-event --out {{name}}.wasm app.js"
  },
  "devDependencies": {
    "@bytecodealliance/componentize-js": "0.23.0",
    "@bytecodealliance/preview2-shim": "0.25.0"
  }
}
"#;

const JS_README: &str = r#"# {{name}} (JavaScript)

    npm install
    npm test                       # the rules, without wasm
    npm run build                  # the component: {{name}}.wasm
    switchyard plugin check {{name}}.wasm
"#;
