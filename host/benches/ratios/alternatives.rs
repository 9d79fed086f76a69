//! The alternatives a team would pick instead of Switchyard's components, each
//! called the way its documentation recommends and each running the same rule:
//! an Extism plugin (`Plugin::call`, raw bytes and `Json<T>`, from
//! `Wasm::data`) and a Rhai script (compiled once to an `AST`, called with
//! `Engine::call_fn`). Both run with limits on, like the sandbox: Extism with a
//! 16 MiB memory cap and a 50 ms timeout, Rhai with an operation budget.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bench_rules::json::{JsonBatch, JsonMatch};
use bench_rules::wire;
use extism::convert::Json;
use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};
use rhai::{AST, Array, Dynamic, Engine, Map, Scope};
use switchyard_sdk::{CandidateTable, ItemBatch, MatchResult, Priority};

/// Build the Extism guest (`host/benches/extism-guest`) for wasm32-unknown-unknown
/// into `target/bench-extism-guest` (a no-op when up to date) and return its path.
pub fn build_extism_guest(workspace: &Path) -> Result<PathBuf> {
    let manifest = workspace.join("host/benches/extism-guest/Cargo.toml");
    let target_dir = workspace.join("target/bench-extism-guest");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--release", "--target", "wasm32-unknown-unknown", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("cannot run cargo to build the Extism guest")?;
    if !status.success() {
        bail!(
            "building the Extism guest {} failed ({status}); is the wasm32-unknown-unknown target installed \
             (`rustup target add wasm32-unknown-unknown`)?",
            manifest.display()
        );
    }
    Ok(target_dir.join("wasm32-unknown-unknown/release/bench_extism_guest.wasm"))
}

/// The Extism manifest: the guest's bytes (`Wasm::data`) with limits on.
fn manifest(wasm: &[u8]) -> Manifest {
    Manifest::new([Wasm::data(wasm.to_vec())]).with_memory_max(256).with_timeout(Duration::from_millis(50))
}

/// The rule as an Extism plugin.
pub struct ExtismRules {
    plugin: Plugin,
}

impl ExtismRules {
    /// Compile and instantiate the guest.
    pub fn new(wasm: &[u8]) -> Result<ExtismRules> {
        let plugin = Plugin::new(&manifest(wasm), [], false).map_err(|e| anyhow::anyhow!("extism plugin: {e:#}"))?;
        Ok(ExtismRules { plugin })
    }

    /// Compile once, for [`ExtismRules::instantiate`].
    pub fn compile(wasm: &[u8]) -> Result<CompiledPlugin> {
        CompiledPlugin::new(PluginBuilder::new(manifest(wasm)).with_wasi(false))
            .map_err(|e| anyhow::anyhow!("extism compile: {e:#}"))
    }

    /// A fresh instance of a compiled plugin.
    pub fn instantiate(compiled: &CompiledPlugin) -> Result<Plugin> {
        Plugin::new_from_compiled(compiled).map_err(|e| anyhow::anyhow!("extism instantiate: {e:#}"))
    }

    /// The empty export.
    pub fn noop(&mut self) -> Result<usize> {
        let empty: &[u8] = &[];
        let out: &[u8] = self.plugin.call("noop", empty).map_err(|e| anyhow::anyhow!("extism noop: {e:#}"))?;
        Ok(out.len())
    }

    /// `prioritise`, raw bytes style.
    pub fn prioritise_raw(&mut self, batch: &ItemBatch) -> Result<Vec<Priority>> {
        let input = wire::encode_batch(batch);
        let out: &[u8] = self
            .plugin
            .call("prioritise_raw", input.as_slice())
            .map_err(|e| anyhow::anyhow!("extism prioritise_raw: {e:#}"))?;
        wire::decode_priorities(out).context("extism prioritise_raw: malformed answer")
    }

    /// `prioritise`, JSON style.
    pub fn prioritise_json(&mut self, batch: &ItemBatch) -> Result<Vec<Priority>> {
        let Json(out): Json<Vec<Priority>> = self
            .plugin
            .call("prioritise_json", Json(JsonBatch::of(batch)))
            .map_err(|e| anyhow::anyhow!("extism prioritise_json: {e:#}"))?;
        Ok(out)
    }

    /// `match-agents`, raw bytes style.
    pub fn match_raw(&mut self, item: &ItemBatch, table: &CandidateTable) -> Result<MatchResult> {
        let input = wire::encode_match(item, table);
        let out: &[u8] =
            self.plugin.call("match_raw", input.as_slice()).map_err(|e| anyhow::anyhow!("extism match_raw: {e:#}"))?;
        wire::decode_match_result(out).context("extism match_raw: malformed answer")
    }

    /// `match-agents`, JSON style.
    pub fn match_json(&mut self, item: &ItemBatch, table: &CandidateTable) -> Result<MatchResult> {
        let Json(out): Json<MatchResult> = self
            .plugin
            .call("match_json", Json(JsonMatch::of(item, table)))
            .map_err(|e| anyhow::anyhow!("extism match_json: {e:#}"))?;
        Ok(out)
    }
}

/// The rule as a Rhai script.
pub struct RhaiRules {
    engine: Engine,
    ast: AST,
    scope: Scope<'static>,
}

fn ints(values: impl Iterator<Item = i64>) -> Dynamic {
    Dynamic::from_array(values.map(Dynamic::from_int).collect())
}

impl RhaiRules {
    /// Compile the script once.
    pub fn new() -> Result<RhaiRules> {
        let mut engine = Engine::new();
        // Limits on, as for the sandbox: a runaway script stops.
        engine.set_max_operations(100_000_000);
        engine.set_max_array_size(1 << 20);
        let ast = engine.compile(include_str!("rule.rhai")).map_err(|e| anyhow::anyhow!("rule.rhai: {e}"))?;
        Ok(RhaiRules { engine, ast, scope: Scope::new() })
    }

    /// The empty function.
    pub fn noop(&mut self) -> Result<()> {
        self.engine.call_fn::<()>(&mut self.scope, &self.ast, "noop", ()).map_err(|e| anyhow::anyhow!("rhai noop: {e}"))
    }

    /// `prioritise`: the batch as a map of arrays in, an array of priorities out.
    pub fn prioritise(&mut self, batch: &ItemBatch) -> Result<Vec<Priority>> {
        let rows = &batch.rows;
        let mut b = Map::new();
        b.insert("priority".into(), ints(rows.iter().map(|r| i64::from(r.priority))));
        b.insert("tier".into(), ints(rows.iter().map(|r| i64::from(r.tier))));
        b.insert("contacts".into(), ints(rows.iter().map(|r| i64::from(r.contacts))));
        b.insert("value".into(), Dynamic::from_array(rows.iter().map(|r| Dynamic::from_float(r.value)).collect()));
        b.insert("channel".into(), ints(rows.iter().map(|r| r.channel.index() as i64)));
        b.insert("age".into(), ints(rows.iter().map(|r| r.age_ms as i64)));
        b.insert("due".into(), ints(rows.iter().map(|r| r.due_in_ms)));
        let out: Array = self
            .engine
            .call_fn(&mut self.scope, &self.ast, "prioritise", (b,))
            .map_err(|e| anyhow::anyhow!("rhai prioritise: {e}"))?;
        out.into_iter()
            .map(|p| {
                p.as_int()
                    .map(|p| Priority::new(p as i32))
                    .map_err(|t| anyhow::anyhow!("rhai prioritise answered a {t}"))
            })
            .collect()
    }

    /// `match-agents`: the table as a map of arrays and blobs in, scores out.
    pub fn match_agents(&mut self, item: &ItemBatch, table: &CandidateTable) -> Result<MatchResult> {
        let Some(item) = item.get(0) else {
            return Ok(MatchResult::Ranked(Vec::new()));
        };
        let mut m = Map::new();
        m.insert("cols".into(), ints(item.skills().iter().map(|r| table.column_of(r.skill).map_or(-1, |c| c as i64))));
        m.insert("levels".into(), ints(item.skills().iter().map(|r| i64::from(r.level))));
        m.insert("k".into(), Dynamic::from_int(table.skill_columns.len() as i64));
        m.insert("prof".into(), Dynamic::from_blob(table.proficiency.clone()));
        m.insert("idle".into(), ints(table.idle_ms.iter().map(|&i| i as i64)));
        m.insert(
            "occ".into(),
            Dynamic::from_array(table.occupancy.iter().map(|&o| Dynamic::from_float(f64::from(o))).collect()),
        );
        m.insert("load".into(), Dynamic::from_blob(table.load.clone()));
        let out: Array = self
            .engine
            .call_fn(&mut self.scope, &self.ast, "match_agents", (m,))
            .map_err(|e| anyhow::anyhow!("rhai match_agents: {e}"))?;
        let scores = out
            .into_iter()
            .map(|s| s.as_float().map(|s| s as f32).map_err(|t| anyhow::anyhow!("rhai match_agents answered a {t}")))
            .collect::<Result<Vec<f32>>>()?;
        Ok(MatchResult::Scores(scores))
    }
}
