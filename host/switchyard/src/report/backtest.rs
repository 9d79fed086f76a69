//! The report of a backtest ([`crate::sim::backtest`]): per queue, the figures
//! of the run with the active rules and of the run with the candidates, side
//! by side; the arrivals whose fate differed most, with both rules' answers;
//! and where each input of the runs came from.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Report;
use crate::sim::backtest::Backtest;
use crate::sim::traffic::Arrival;
use crate::sim::{Decided, SimRun};

/// How many differing arrivals the report lists.
const DIFFERED_MOST: usize = 20;

/// The whole comparison (serialised as the `--json` file of a backtest).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    /// Where the traffic came from.
    pub traffic_source: String,
    /// Arrivals replayed.
    pub arrivals: usize,
    /// The candidate component of each department that has one.
    pub candidates: BTreeMap<String, String>,
    /// What came from the recording and what from the scenario.
    pub inputs: Vec<String>,
    /// Per queue: both runs.
    pub queues: BTreeMap<String, QueueComparison>,
    /// Arrivals the two rule sets decided differently (queue, priority).
    pub decided_differently: usize,
    /// The arrivals whose fate differed most (outcome first, then wait).
    pub differed_most: Vec<ItemDifference>,
    /// The active run's full report.
    pub active: Report,
    /// The candidate run's full report.
    pub candidate: Report,
}

/// One queue in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueComparison {
    /// Department.
    pub department: String,
    /// With the active rules.
    pub active: QueueFigures,
    /// With the candidates.
    pub candidate: QueueFigures,
}

/// The figures a backtest compares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueFigures {
    /// Offered.
    pub offered: u64,
    /// Answered.
    pub answered: u64,
    /// Abandoned.
    pub abandoned: u64,
    /// Service level (0-1).
    pub service_level: Option<f64>,
    /// ASA, seconds.
    pub asa_s: Option<f64>,
    /// AHT, seconds.
    pub aht_s: Option<f64>,
    /// First-contact resolution (0-1).
    pub fcr: Option<f64>,
    /// Due-dated items completed by their due time (0-1).
    pub completed_before_due: Option<f64>,
    /// Waiting at the end.
    pub backlog: usize,
}

/// One arrival whose fate differed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemDifference {
    /// Its number in the traffic (1 = first).
    pub arrival: usize,
    /// When it arrived, seconds.
    pub at_s: f64,
    /// Department.
    pub department: String,
    /// Queue it arrived in.
    pub queue: String,
    /// With the active rules.
    pub active: Fate,
    /// With the candidates.
    pub candidate: Fate,
}

/// What a run's rules made of an arrival, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fate {
    /// The rules' answer.
    pub decided: Option<Decided>,
    /// `answered`, `abandoned` or `waiting` (at the end).
    pub outcome: &'static str,
    /// Waited until answered, abandoned or the end, seconds.
    pub wait_s: f64,
}

impl BacktestReport {
    /// Compare the two runs of `backtest`.
    pub fn build(backtest: &Backtest) -> BacktestReport {
        let active = Report::build(&backtest.active, &backtest.active_rules.figures());
        let candidate = Report::build(&backtest.candidate, &backtest.candidate_rules.figures());
        let queues = active
            .queues
            .iter()
            .filter_map(|(name, a)| {
                let c = candidate.queues.get(name)?;
                Some((
                    name.clone(),
                    QueueComparison { department: a.department.clone(), active: figures(a), candidate: figures(c) },
                ))
            })
            .collect();
        let end_ms = (backtest.active.scenario.duration_s * 1000.0) as u64;
        let fate = |run: &SimRun, i: usize| fate_of(run.traffic.get(i), run.decided.get(i), end_ms);
        let mut differences: Vec<ItemDifference> = (0..backtest.traffic.len())
            .filter_map(|i| {
                let (a, c) = (fate(&backtest.active, i), fate(&backtest.candidate, i));
                if a == c {
                    return None;
                }
                let arrival = &backtest.traffic[i];
                Some(ItemDifference {
                    arrival: i + 1,
                    at_s: arrival.at_ms as f64 / 1000.0,
                    department: arrival.department.clone(),
                    queue: arrival.queue.clone(),
                    active: a,
                    candidate: c,
                })
            })
            .collect();
        let decided_differently = differences.iter().filter(|d| d.active.decided != d.candidate.decided).count();
        differences.sort_by(|x, y| {
            let changed = |d: &ItemDifference| d.active.outcome != d.candidate.outcome;
            let gap = |d: &ItemDifference| (d.active.wait_s - d.candidate.wait_s).abs();
            changed(y).cmp(&changed(x)).then(gap(y).total_cmp(&gap(x))).then(x.arrival.cmp(&y.arrival))
        });
        differences.truncate(DIFFERED_MOST);
        BacktestReport {
            traffic_source: backtest.traffic_source.clone(),
            arrivals: backtest.traffic.len(),
            candidates: backtest.candidates.iter().map(|(d, p)| (d.clone(), p.display().to_string())).collect(),
            inputs: inputs(&backtest.traffic),
            queues,
            decided_differently,
            differed_most: differences,
            active,
            candidate,
        }
    }

    /// The per-queue comparison as a plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<17} {:>15} {:>17} {:>17} {:>13} {:>11}\n",
            "queue", "offered", "SL %", "ASA s", "abandoned", "backlog"
        ));
        let pct = |v: Option<f64>| v.map(|v| format!("{:.1}", v * 100.0)).unwrap_or_else(|| "-".into());
        let secs = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        for (name, q) in &self.queues {
            let (a, c) = (&q.active, &q.candidate);
            out.push_str(&format!(
                "{:<17} {:>15} {:>17} {:>17} {:>13} {:>11}\n",
                name,
                format!("{} → {}", a.offered, c.offered),
                format!("{} → {}", pct(a.service_level), pct(c.service_level)),
                format!("{} → {}", secs(a.asa_s), secs(c.asa_s)),
                format!("{} → {}", a.abandoned, c.abandoned),
                format!("{} → {}", a.backlog, c.backlog),
            ));
        }
        out.push_str(&format!(
            "{} arrivals replayed ({}); {} decided differently by the candidates\n",
            self.arrivals, self.traffic_source, self.decided_differently
        ));
        out
    }
}

fn figures(q: &super::QueueReport) -> QueueFigures {
    QueueFigures {
        offered: q.offered,
        answered: q.answered,
        abandoned: q.abandoned,
        service_level: q.service_level,
        asa_s: q.asa_s,
        aht_s: q.aht_s,
        fcr: q.fcr,
        completed_before_due: q.completed_before_due,
        backlog: q.backlog.waiting,
    }
}

fn fate_of(arrival: Option<&Arrival>, decided: Option<&Decided>, end_ms: u64) -> Fate {
    let (outcome, wait_ms) = match arrival {
        Some(a) => match (a.answered_after_ms, a.abandoned_after_ms) {
            (Some(w), _) => ("answered", w),
            (None, Some(w)) => ("abandoned", w),
            (None, None) => ("waiting", end_ms.saturating_sub(a.at_ms)),
        },
        None => ("waiting", 0),
    };
    Fate { decided: decided.cloned(), outcome, wait_s: wait_ms as f64 / 1000.0 }
}

/// Where the runs' inputs came from, in words.
fn inputs(traffic: &[Arrival]) -> Vec<String> {
    let count = |f: &dyn Fn(&Arrival) -> bool| traffic.iter().filter(|a| f(a)).count();
    let handled = count(&|a| a.handle_ms.is_some());
    let answered = count(&|a| a.answered_after_ms.is_some());
    let abandoned = count(&|a| a.abandoned_after_ms.is_some());
    let completed = count(&|a| a.resolved.is_some());
    vec![
        format!(
            "arrivals: all {} from the recording (times, queues, channels, skills, attributes, customers)",
            traffic.len()
        ),
        format!("handle times: {handled} recorded, {} drawn from the scenario", traffic.len() - handled),
        format!(
            "patience: {abandoned} recorded abandons; {answered} answered in the recording never abandon (they outlasted their wait); {} drawn from the scenario",
            traffic.len() - abandoned - answered
        ),
        format!("resolution and hand-offs: {completed} recorded, the rest drawn from the scenario"),
        "agent rosters and shifts: the scenario's".to_owned(),
    ]
}
