//! `switchyard plugin replay FILE.wasm --log decisions.jsonl`: re-run a candidate
//! plugin on recorded decisions (see [`super::record`]) and print where and how
//! its decisions differ from what was decided — the safe way to try new rules on
//! yesterday's traffic before going live.
//!
//! Only records whose hook the candidate exports are compared; for the others the
//! host would keep using its built-in rule. A candidate that fails on a record
//! (trap, deadline, invalid answer) is reported as such.

use std::io::Write;
use std::path::Path;

use super::record::{
    RecordedDecision, escalations_of, priorities_of, ranking_of, read_log, rebuild_batch, rebuild_table,
};
use crate::error::{Error, Result};
use switchyard_runtime::plugin::DepartmentConfig;

/// What `replay` needs besides the component and the log.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Replay only this department's records (default: all).
    pub department: Option<String>,
    /// Department config values (`key=value`).
    pub config: Vec<(String, String)>,
    /// Print at most this many differences (the counts are always complete).
    pub max_shown: usize,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Records in the log (after the department filter).
    pub records: usize,
    /// Records re-decided by the candidate.
    pub compared: usize,
    /// Individual decisions (items, or match calls) compared.
    pub decisions: usize,
    /// Decisions that differ.
    pub differing: usize,
    /// Records on which the candidate failed.
    pub failures: usize,
    /// Records skipped: the candidate does not export their hook.
    pub skipped: usize,
}

/// Replay `log` against the component at `wasm`, print differences to `out`.
pub fn replay(wasm: &Path, log: &Path, options: &ReplayOptions, out: &mut dyn Write) -> Result<ReplaySummary> {
    let io = |e: std::io::Error| Error::Invalid(format!("cannot write the report: {e}"));
    let records = read_log(log)?;
    let runtime = super::tool_runtime()?;
    let mut config = DepartmentConfig::new();
    for (k, v) in &options.config {
        config = config.with(k.clone(), v.clone());
    }
    let plugin = runtime.load_file("replay", wasm, config)?;
    let hooks = plugin.hooks();
    let catalog = runtime.catalog().clone();
    // The live host knew every queue its departments route to; rules consult that
    // (e.g. classify only into a queue the host knows), so make them known here too.
    {
        let mut names = catalog.write().unwrap_or_else(|p| p.into_inner());
        for record in &records {
            for item in &record.items {
                names.queues.intern(&item.queue);
            }
            if let RecordedDecision::Prioritise { priorities } = &record.decision {
                for queue in priorities.iter().filter_map(|p| p.queue.as_deref()) {
                    names.queues.intern(queue);
                }
            }
        }
    }
    let mut summary = ReplaySummary::default();
    let mut shown = 0usize;
    let mut show = |out: &mut dyn Write, line: String| -> Result<()> {
        if shown < options.max_shown {
            writeln!(out, "{line}").map_err(io)?;
        }
        shown += 1;
        Ok(())
    };

    for record in records.iter().filter(|r| options.department.as_deref().is_none_or(|d| d == r.department)) {
        summary.records += 1;
        let at = format!("record {} ({} {})", record.seq, record.department, hook_name(&record.decision));
        let batch =
            rebuild_batch(&mut catalog.write().unwrap_or_else(|p| p.into_inner()), record.now_ms, &record.items);
        match &record.decision {
            RecordedDecision::Prioritise { priorities } => {
                if !hooks.prioritise {
                    summary.skipped += 1;
                    continue;
                }
                let got = match plugin.prioritise(&batch) {
                    Ok(got) => got.unwrap_or_default(),
                    Err(err) => {
                        summary.failures += 1;
                        show(out, format!("{at}: candidate failed: {err}"))?;
                        continue;
                    }
                };
                summary.compared += 1;
                let got = priorities_of(&catalog.read().unwrap_or_else(|p| p.into_inner()), &got);
                for ((item, was), now) in record.items.iter().zip(priorities).zip(&got) {
                    summary.decisions += 1;
                    let mut changes = Vec::new();
                    if was.priority != now.priority {
                        changes.push(format!("priority {} -> {}", was.priority, now.priority));
                    }
                    if was.queue != now.queue {
                        changes.push(format!(
                            "queue {} -> {}",
                            queue(&was.queue, &item.queue),
                            queue(&now.queue, &item.queue)
                        ));
                    }
                    if !changes.is_empty() {
                        summary.differing += 1;
                        show(out, format!("{at}: item {}: {}", item.id, changes.join(", ")))?;
                    }
                }
            }
            RecordedDecision::Escalate { escalations } => {
                if !hooks.escalate {
                    summary.skipped += 1;
                    continue;
                }
                let got = match plugin.escalate(&batch) {
                    Ok(got) => got.unwrap_or_default(),
                    Err(err) => {
                        summary.failures += 1;
                        show(out, format!("{at}: candidate failed: {err}"))?;
                        continue;
                    }
                };
                summary.compared += 1;
                let got = escalations_of(&catalog.read().unwrap_or_else(|p| p.into_inner()), &got);
                for ((item, was), now) in record.items.iter().zip(escalations).zip(&got) {
                    summary.decisions += 1;
                    if was != now {
                        summary.differing += 1;
                        show(
                            out,
                            format!(
                                "{at}: item {}: actions [{}] -> [{}], recheck {:?} -> {:?} ms",
                                item.id,
                                was.actions.join(", "),
                                now.actions.join(", "),
                                was.recheck_in_ms,
                                now.recheck_in_ms
                            ),
                        )?;
                    }
                }
            }
            RecordedDecision::Match { ranking } => {
                if !hooks.match_agents {
                    summary.skipped += 1;
                    continue;
                }
                let Some(recorded) = &record.candidates else {
                    return Err(Error::Config {
                        path: log.to_owned(),
                        message: format!("{at}: a match record without candidates"),
                    });
                };
                let table = rebuild_table(&mut catalog.write().unwrap_or_else(|p| p.into_inner()), recorded)?;
                let got = match plugin.match_agents(&batch, &table) {
                    Ok(Some(got)) => ranking_of(&table, &got),
                    Ok(None) => Vec::new(),
                    Err(err) => {
                        summary.failures += 1;
                        show(out, format!("{at}: candidate failed: {err}"))?;
                        continue;
                    }
                };
                summary.compared += 1;
                summary.decisions += 1;
                if ranking.first() != got.first() {
                    summary.differing += 1;
                    let who = |r: &[u64]| r.first().map(|a| format!("agent {a}")).unwrap_or_else(|| "nobody".into());
                    let item = record.items.first().map(|i| i.id).unwrap_or_default();
                    show(out, format!("{at}: item {item}: best {} -> {}", who(ranking), who(&got)))?;
                }
            }
        }
    }
    if shown > options.max_shown {
        writeln!(out, "… and {} more differences", shown - options.max_shown).map_err(io)?;
    }
    let share = if summary.decisions == 0 { 0.0 } else { 100.0 * summary.differing as f64 / summary.decisions as f64 };
    writeln!(
        out,
        "replayed {} records ({} compared, {} skipped: hook not exported): {} of {} decisions differ ({share:.1} %), {} failures",
        summary.records, summary.compared, summary.skipped, summary.differing, summary.decisions, summary.failures
    )
    .map_err(io)?;
    Ok(summary)
}

fn hook_name(decision: &RecordedDecision) -> &'static str {
    match decision {
        RecordedDecision::Prioritise { .. } => "prioritise",
        RecordedDecision::Escalate { .. } => "escalate",
        RecordedDecision::Match { .. } => "match",
    }
}

fn queue<'a>(target: &'a Option<String>, current: &'a str) -> &'a str {
    target.as_deref().unwrap_or(current)
}
