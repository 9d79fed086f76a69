//! Validation of a candidate generation before it may be swapped in: every case
//! of the department's fixture file is decided by the candidate (loaded but not
//! active) and checked with [`switchyard_contract::fixtures`]. A hook the candidate
//! does not export is decided by the built-in rule, exactly as it would be once
//! active, and that answer is checked too: a build that drops a hook the
//! department's fixtures cover is caught here.
//!
//! Runs on the reloading thread, never on the decision path. The candidate's
//! limits (deadline, memory, fuel) apply to every call, so a trap, a deadline or
//! a limit hit is a failed case.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use switchyard_contract::Hook;
use switchyard_contract::fixtures::{Case, Fixtures};
use switchyard_contract::{CandidateTable, Channel, ItemBatch, NewCandidate, NewItem};

use crate::plugin::Plugin;
use switchyard_core::rules::{BuiltInRules, SharedCatalog};

/// The outcome of validating a candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum Validation {
    /// Loaded and passed every fixture case.
    Passed {
        /// Fixture cases run (0 when the department has no fixture file).
        cases: usize,
        /// The slowest case, microseconds.
        slowest_case_us: u64,
    },
    /// Refused; the running generation stayed active.
    Failed {
        /// Why: the case and what went wrong.
        reason: String,
    },
}

impl Validation {
    /// Whether the candidate passed.
    pub fn passed(&self) -> bool {
        matches!(self, Validation::Passed { .. })
    }
}

/// Run every case of `fixtures` against `plugin`; `budget` caps each case's
/// wall-clock time (on top of the plugin's own deadline).
pub(crate) fn run_fixtures(
    plugin: &Plugin,
    fixtures: Option<&Fixtures>,
    catalog: &SharedCatalog,
    budget: Option<Duration>,
) -> Validation {
    let Some(fixtures) = fixtures else {
        return Validation::Passed { cases: 0, slowest_case_us: 0 };
    };
    let cases = fixtures.cases();
    let mut slowest = Duration::ZERO;
    for case in &cases {
        match run_case(plugin, case, catalog) {
            Err(reason) => return Validation::Failed { reason: format!("{}: {reason}", fixtures.path.display()) },
            Ok(took) => {
                if let Some(budget) = budget
                    && took > budget
                {
                    return Validation::Failed {
                        reason: format!(
                            "{}: {} case `{}` took {:.1} ms, over the validation budget of {} ms",
                            fixtures.path.display(),
                            case.hook(),
                            case.name(),
                            took.as_secs_f64() * 1e3,
                            budget.as_millis()
                        ),
                    };
                }
                slowest = slowest.max(took);
            }
        }
    }
    Validation::Passed { cases: cases.len(), slowest_case_us: slowest.as_micros() as u64 }
}

/// Decide one case with the candidate and check it; the time of the call.
pub fn run_case(plugin: &Plugin, case: &Case<'_>, catalog: &SharedCatalog) -> Result<Duration, String> {
    // Interning into the host's catalog: the candidate checks answers against it
    // (known queues and skills), as it will once active.
    let (batch, table) = case.build(&mut catalog.write().unwrap_or_else(|p| p.into_inner()));
    let failed = |e: crate::Error| format!("{} case `{}`: {e}", case.hook(), case.name());
    let started = Instant::now();
    let verdict = match case.hook() {
        Hook::Prioritise => {
            let answer = plugin.prioritise(&batch).map_err(failed)?.unwrap_or_else(|| BuiltInRules::prioritise(&batch));
            let took = started.elapsed();
            let names = catalog.read().unwrap_or_else(|p| p.into_inner());
            (took, case.check_prioritise(&names, &answer))
        }
        Hook::Escalate => {
            let answer = plugin.escalate(&batch).map_err(failed)?.unwrap_or_else(|| BuiltInRules::escalate(&batch));
            let took = started.elapsed();
            let names = catalog.read().unwrap_or_else(|p| p.into_inner());
            (took, case.check_escalate(&names, &answer))
        }
        Hook::Match => {
            let Some(table) = table else {
                return Err(format!("match case `{}` has no candidate table", case.name()));
            };
            let answer = plugin
                .match_agents(&batch, &table)
                .map_err(failed)?
                .unwrap_or_else(|| BuiltInRules::match_agents(&batch, &table));
            let took = started.elapsed();
            let names = catalog.read().unwrap_or_else(|p| p.into_inner());
            (took, case.check_match(&names, &answer))
        }
    };
    match verdict {
        (took, Ok(())) => Ok(took),
        // The mismatch names the file itself; strip it so the caller's prefix is not doubled.
        (_, Err(mismatch)) => {
            Err(format!("{} case `{}`: {}", mismatch.hook, mismatch.case, mismatch.problems.join("; ")))
        }
    }
}

/// One call of each hook `plugin` exports, on one plain item in `queue` (and one
/// candidate for `match`), under the plugin's deadline and limits: what every
/// candidate must survive before it may be swapped in, fixtures or not. A
/// plugin that traps, hangs, blocks or answers nonsense on a plain item is
/// refused here rather than costing fallback decisions once active.
pub(crate) fn smoke_call(plugin: &Plugin, queue: u32) -> Result<(), String> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut batch = ItemBatch::new(now);
    batch.push(NewItem { id: 1, channel: Some(Channel::Voice), queue, age_ms: 1_000, ..Default::default() });
    let fail = |hook: &str, e: crate::Error| format!("smoke call of `{hook}` on one plain item failed: {e}");
    plugin.prioritise(&batch).map_err(|e| fail("prioritise", e))?;
    plugin.escalate(&batch).map_err(|e| fail("escalate", e))?;
    let mut table = CandidateTable::new(Vec::new());
    table.push(NewCandidate { id: 1, proficiency: &[], idle_ms: 1_000, ..Default::default() });
    plugin.match_agents(&batch, &table).map_err(|e| fail("match-agents", e))?;
    Ok(())
}
