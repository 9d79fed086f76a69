//! `switchyard plugin run FILE.wasm --hook prioritise --input items.json`: run
//! one hook of a component on items given as JSON and print the decisions with
//! timings — the quickest way for a rule author to try a rule.
//!
//! Input: for `prioritise` and `escalate`, a JSON array of items or
//! `{"now_ms": …, "items": [...]}`; for `match`, `{"now_ms": …, "item": {...},
//! "agents": [...]}`. Items and agents use the fields of fixture files (see
//! [`switchyard_contract::fixtures`]): `channel`, `queue`, `tier`, `contacts`,
//! `priority`, `value`, `age_s`, `due_in_s`, `skills`, `attributes`, `label`, `id`;
//! agents `id`, `skills`, `idle_s`, `occupancy`, `load`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use switchyard_contract::fixtures::{ItemSpec, NoExpectation};
use switchyard_contract::named::{Agent, DEFAULT_NOW_MS, candidate_table};
use switchyard_contract::{CandidateTable, ItemBatch};

use super::record::{escalations_of, priorities_of};
use crate::error::{Error, Result};
use switchyard_contract::Hook;
use switchyard_runtime::plugin::{DepartmentConfig, Plugin};

/// What `run` needs besides the component.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The hook to call.
    pub hook: Hook,
    /// Department config values (`key=value`).
    pub config: Vec<(String, String)>,
    /// Extra calls after the first, to time a warm instance.
    pub repeat: u32,
}

/// A batch given as an object (an array of items is accepted too).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchInput {
    #[serde(default)]
    now_ms: Option<u64>,
    items: Vec<ItemSpec<NoExpectation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchInput {
    #[serde(default)]
    now_ms: Option<u64>,
    item: ItemSpec<NoExpectation>,
    agents: Vec<Agent>,
}

/// What the hook was called with.
enum Call {
    Batch(ItemBatch, Vec<String>),
    Match(ItemBatch, CandidateTable),
}

fn parse_input(path: &Path, hook: Hook, catalog: &switchyard_core::rules::SharedCatalog) -> Result<Call> {
    let text = super::read_text(path)?;
    let invalid = |e: serde_json::Error| Error::Config {
        path: path.to_owned(),
        message: format!("line {}, column {}: {e}", e.line(), e.column()),
    };
    let mut names = catalog.write().unwrap_or_else(|p| p.into_inner());
    match hook {
        Hook::Prioritise | Hook::Escalate => {
            // Parse the shape the text starts with, so errors keep their line and column.
            let (now_ms, items) = if text.trim_start().starts_with('[') {
                (None, serde_json::from_str::<Vec<ItemSpec<NoExpectation>>>(&text).map_err(invalid)?)
            } else {
                let batch: BatchInput = serde_json::from_str(&text).map_err(invalid)?;
                (batch.now_ms, batch.items)
            };
            if items.is_empty() {
                return Err(Error::Config { path: path.to_owned(), message: "no items to decide".into() });
            }
            let mut batch = ItemBatch::with_capacity(now_ms.unwrap_or(DEFAULT_NOW_MS), items.len());
            let mut labels = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                item.work_item().push_into(&mut batch, &mut names, i);
                labels.push(item.label.clone().unwrap_or_else(|| format!("#{}", batch.rows[i].id)));
            }
            Ok(Call::Batch(batch, labels))
        }
        Hook::Match => {
            let input: MatchInput = serde_json::from_str(&text).map_err(invalid)?;
            let mut batch = ItemBatch::new(input.now_ms.unwrap_or(DEFAULT_NOW_MS));
            let item = input.item.work_item();
            item.push_into(&mut batch, &mut names, 0);
            let table = candidate_table(&item, &input.agents, &mut names);
            Ok(Call::Match(batch, table))
        }
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Run `options.hook` of the component at `wasm` on the items in `input`, print
/// the decisions and timings to `out`. Returns whether the plugin answered (a
/// trap, deadline, invalid answer or a hook it does not export is `false`).
pub fn run(wasm: &Path, input: &Path, options: &RunOptions, out: &mut dyn Write) -> Result<bool> {
    let runtime = super::tool_runtime()?;
    let mut config = DepartmentConfig::new();
    for (k, v) in &options.config {
        config = config.with(k.clone(), v.clone());
    }
    let plugin = runtime.load_file("cli", wasm, config)?;
    let call = parse_input(input, options.hook, runtime.catalog())?;
    let hook = options.hook.name();
    let io = |e: std::io::Error| Error::Invalid(format!("cannot write the report: {e}"));

    // Time the first call (a fresh instance) and then the warm ones.
    let mut timings = Vec::with_capacity(options.repeat as usize + 1);
    let mut answer = None;
    for _ in 0..=options.repeat {
        let started = Instant::now();
        let result = call_hook(&plugin, options.hook, &call);
        timings.push(started.elapsed());
        match result {
            Ok(Some(decision)) => answer = Some(decision),
            Ok(None) => {
                writeln!(out, "{}: does not export `{hook}`; the host would use its built-in rule", wasm.display())
                    .map_err(io)?;
                return Ok(false);
            }
            Err(err) => {
                writeln!(out, "{}: `{hook}` failed: {err}", wasm.display()).map_err(io)?;
                return Ok(false);
            }
        }
    }
    let first = timings[0];
    let mut warm: Vec<Duration> = timings[1..].to_vec();
    warm.sort();
    let catalog = runtime.catalog().read().unwrap_or_else(|p| p.into_inner());
    write!(out, "{} · {hook} · first call {}", wasm.display(), micros(first)).map_err(io)?;
    if let Some(median) = warm.get(warm.len() / 2) {
        write!(out, ", median {} over {} warm calls", micros(*median), warm.len()).map_err(io)?;
    }
    writeln!(out).map_err(io)?;
    match (call, answer) {
        (Call::Batch(_, labels), Some(Decision::Priorities(priorities))) => {
            writeln!(out, "{:<16} {:>9}  {:<20} reason", "item", "priority", "queue").map_err(io)?;
            for (label, p) in labels.iter().zip(priorities_of(&catalog, &priorities)) {
                let queue = p.queue.unwrap_or_else(|| "(stays)".into());
                writeln!(out, "{label:<16} {:>9}  {queue:<20} {}", p.priority, p.reason.unwrap_or_default())
                    .map_err(io)?;
            }
        }
        (Call::Batch(_, labels), Some(Decision::Escalations(escalations))) => {
            writeln!(out, "{:<16} {:<12} actions", "item", "recheck").map_err(io)?;
            for (label, e) in labels.iter().zip(escalations_of(&catalog, &escalations)) {
                let recheck =
                    e.recheck_in_ms.map(|ms| format!("{:.0} s", ms as f64 / 1000.0)).unwrap_or_else(|| "never".into());
                let actions = if e.actions.is_empty() { "(none)".to_owned() } else { e.actions.join(", ") };
                writeln!(out, "{label:<16} {recheck:<12} {actions}").map_err(io)?;
            }
        }
        (Call::Match(_, table), Some(Decision::Match(result))) => {
            let ranking = result.ranking();
            writeln!(out, "{:<6} {:>10}  {:>6}", "agent", "score", "rank").map_err(io)?;
            for (i, id) in table.agent_ids.iter().enumerate() {
                let score = match &result {
                    switchyard_contract::MatchResult::Scores(s) => {
                        s.get(i).map(|s| format!("{s:.3}")).unwrap_or_default()
                    }
                    switchyard_contract::MatchResult::Ranked(_) => "-".to_owned(),
                };
                let rank = ranking
                    .iter()
                    .position(|&r| r == i)
                    .map(|r| (r + 1).to_string())
                    .unwrap_or_else(|| "vetoed".into());
                writeln!(out, "{id:<6} {score:>10}  {rank:>6}").map_err(io)?;
            }
            match result.best().and_then(|i| table.agent_ids.get(i)) {
                Some(best) => writeln!(out, "best: agent {best}").map_err(io)?,
                None => writeln!(out, "best: nobody (every candidate vetoed)").map_err(io)?,
            }
        }
        _ => return Err(Error::Invalid("the hook's answer does not fit its input".into())),
    }
    Ok(true)
}

enum Decision {
    Priorities(Vec<switchyard_contract::Priority>),
    Escalations(Vec<switchyard_contract::Escalation>),
    Match(switchyard_contract::MatchResult),
}

fn call_hook(plugin: &Plugin, hook: Hook, call: &Call) -> Result<Option<Decision>> {
    Ok(match (hook, call) {
        (Hook::Prioritise, Call::Batch(batch, _)) => plugin.prioritise(batch)?.map(Decision::Priorities),
        (Hook::Escalate, Call::Batch(batch, _)) => plugin.escalate(batch)?.map(Decision::Escalations),
        (Hook::Match, Call::Match(batch, table)) => plugin.match_agents(batch, table)?.map(Decision::Match),
        _ => return Err(Error::Invalid(format!("the input does not fit the `{}` hook", hook.name()))),
    })
}
