//! Backtesting a rule change: the same traffic through the rules that were
//! active and through candidate rules, on the same scenario (rosters, shifts,
//! what the traffic lacks) and the same seed.
//!
//! The traffic comes from a file ([`super::traffic`]) or, without one, from a
//! run of the scenario itself with the active rules, recorded. Both runs then
//! replay it, so they differ only in what the rules decide: every arrival,
//! handle time, abandonment and hand-off the recording saw is the same in
//! both (the random streams for what it did not see start from the same
//! seed). [`crate::report::backtest`] compares them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use switchyard_contract::Catalog;

use super::plugins::{self, LoadedRules};
use super::scenario::Scenario;
use super::traffic::Arrival;
use super::{SimOptions, SimRun, simulate};
use crate::error::{Error, Result};
use switchyard_core::rules::SharedCatalog;

/// Both runs of a backtest.
pub struct Backtest {
    /// Where the traffic came from (a file, or the scenario's own run).
    pub traffic_source: String,
    /// The traffic both runs replayed.
    pub traffic: Vec<Arrival>,
    /// The run with the rules that were active (the scenario's plugins).
    pub active: SimRun,
    /// The run with the candidates in place.
    pub candidate: SimRun,
    /// (department, candidate component) as given.
    pub candidates: Vec<(String, PathBuf)>,
    /// The plugins of each run, for the reports' figures.
    pub active_rules: LoadedRules,
    /// The candidate run's plugins.
    pub candidate_rules: LoadedRules,
}

/// Run `scenario`'s traffic (`traffic`, or its own recorded run) through its
/// rules and through `candidates` (department, component path), with `seed`
/// for both. A candidate for a department the scenario lacks, or a component
/// that does not load, is an error naming it.
pub fn backtest(
    scenario: &Scenario,
    scenario_dir: &Path,
    traffic: Option<(String, Vec<Arrival>)>,
    candidates: &[(String, PathBuf)],
    seed: Option<u64>,
) -> Result<Backtest> {
    backtest_with(scenario, scenario_dir, traffic, candidates, seed, None)
}

/// [`backtest`], stopped with an error as soon as `stop` says so (asked now
/// and then during each run; see [`SimOptions::stop`]).
pub fn backtest_with(
    scenario: &Scenario,
    scenario_dir: &Path,
    traffic: Option<(String, Vec<Arrival>)>,
    candidates: &[(String, PathBuf)],
    seed: Option<u64>,
    stop: Option<&(dyn Fn() -> bool + Sync)>,
) -> Result<Backtest> {
    let mut with_candidates = scenario.clone();
    for (department, path) in candidates {
        let def = with_candidates.departments.iter_mut().find(|d| &d.name == department).ok_or_else(|| {
            Error::Invalid(format!("--rules {department}=…: the scenario has no department `{department}`"))
        })?;
        def.plugin = Some(
            std::fs::canonicalize(path)
                .map_err(|e| Error::Invalid(format!("--rules {department}={}: {e}", path.display())))?,
        );
    }
    let run = |scenario: &Scenario, traffic: Option<Vec<Arrival>>| -> Result<(SimRun, LoadedRules)> {
        let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::default()));
        let loaded = plugins::load(scenario, scenario_dir, &catalog)?;
        let options = SimOptions {
            seed,
            rules: loaded.rules.clone(),
            catalog: Some(catalog),
            record_traffic: true,
            traffic,
            stop,
            ..Default::default()
        };
        Ok((simulate(scenario, options)?, loaded))
    };
    let (traffic_source, traffic) = match traffic {
        Some(given) => given,
        None => {
            let (recorded, _) = run(scenario, None)?;
            ("the scenario's own run with the active rules, recorded".to_owned(), recorded.traffic)
        }
    };
    let (active, active_rules) = run(scenario, Some(traffic.clone()))?;
    let (candidate, candidate_rules) = run(&with_candidates, Some(traffic.clone()))?;
    Ok(Backtest {
        traffic_source,
        traffic,
        active,
        candidate,
        candidates: candidates.to_vec(),
        active_rules,
        candidate_rules,
    })
}
