//! Reports of a simulation run: a [`Report`] (serialised as the `--json` file),
//! a plain-text per-queue table for the terminal, and a self-contained HTML page
//! with plots ([`html`]).

pub mod backtest;
pub mod html;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sim::SimRun;
use crate::sim::dist::DistSpec;
use crate::sim::erlang::{ErlangC, erlang_c};
use switchyard_core::metrics::{AgentTimes, QueueCounters};
use switchyard_core::router::{AgentId, ExceptionReason};

/// How the figures are defined (written into every report).
pub const DEFINITIONS: [(&str, &str); 7] = [
    ("offered", "items that reached an outcome in the queue (answered or abandoned), created after the warm-up"),
    (
        "service_level",
        "answered within the queue's threshold ÷ (offered − short abandons); abandons after the short-abandon threshold count as missed",
    ),
    ("asa_s", "average wait of answered items, seconds"),
    ("aht_s", "average handle time of completed items (answer to end of after-work, pauses excluded), seconds"),
    (
        "occupancy",
        "busy time ÷ (busy + idle available time) of the agents serving the queue; away and logged-out time excluded",
    ),
    ("fcr", "(completed items resolved − repeat contacts within the FCR window after them) ÷ completed items"),
    ("intervals", "items are bucketed by creation time"),
];

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Seed used.
    pub seed: u64,
    /// Simulated time, seconds.
    pub duration_s: f64,
    /// Warm-up left out, seconds.
    pub warmup_s: f64,
    /// Interval length, seconds.
    pub interval_s: f64,
    /// Definitions of the figures.
    pub definitions: BTreeMap<String, String>,
    /// Items created (arrivals, call-backs, hand-offs).
    pub items_created: u64,
    /// Items still in the system at the end.
    pub items_open_at_end: usize,
    /// Per queue.
    pub queues: BTreeMap<String, QueueReport>,
    /// Per department.
    pub departments: BTreeMap<String, DepartmentReport>,
    /// Per agent group.
    pub agent_groups: BTreeMap<String, GroupReport>,
    /// End-to-end case figures.
    pub cases: CaseReport,
    /// Exception queue.
    pub exceptions: ExceptionReport,
    /// Supervisor alerts raised.
    pub alerts: u64,
    /// Escalation steps taken.
    pub escalations: u64,
    /// Queue lengths over time.
    pub queue_length_samples: QueueLengthSamples,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueReport {
    /// Department.
    pub department: String,
    /// Offered (answered + abandoned).
    pub offered: u64,
    /// Answered.
    pub answered: u64,
    /// Abandoned (short abandons included).
    pub abandoned: u64,
    /// Short abandons.
    pub short_abandoned: u64,
    /// Service level (0-1), see definitions.
    pub service_level: Option<f64>,
    /// Threshold of the service level, seconds.
    pub service_level_threshold_s: f64,
    /// Average speed of answer, seconds.
    pub asa_s: Option<f64>,
    /// Average handle time, seconds.
    pub aht_s: Option<f64>,
    /// Longest wait, seconds.
    pub longest_wait_s: f64,
    /// Occupancy (0-1) of the agents serving the queue.
    pub occupancy: Option<f64>,
    /// Agents serving the queue.
    pub agents: usize,
    /// Completed.
    pub completed: u64,
    /// First-contact resolution (0-1).
    pub fcr: Option<f64>,
    /// Repeat contacts counted against FCR.
    pub repeats: u64,
    /// Share of due-dated items completed by their due time.
    pub completed_before_due: Option<f64>,
    /// Backlog at the end.
    pub backlog: Backlog,
    /// Erlang C for the queue, when it is a plain M/M/N queue (one voice stream,
    /// exponential handle times, no patience, dedicated agents).
    pub erlang_c: Option<ErlangC>,
    /// Wait-time histogram of answered items.
    pub wait_histogram: Histogram,
    /// Per interval.
    pub intervals: Vec<IntervalReport>,
}

/// What is left waiting at the end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Backlog {
    /// Items waiting.
    pub waiting: usize,
    /// Age of the oldest, seconds.
    pub oldest_s: f64,
    /// Mean age, seconds.
    pub mean_age_s: f64,
    /// Past their due time.
    pub overdue: usize,
}

/// A histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Bin width, seconds (the last bin also holds longer values).
    pub bin_s: f64,
    /// Counts.
    pub counts: Vec<u64>,
}

/// One interval of a queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalReport {
    /// Interval start, seconds.
    pub start_s: f64,
    /// Offered.
    pub offered: u64,
    /// Answered.
    pub answered: u64,
    /// Abandoned.
    pub abandoned: u64,
    /// Service level.
    pub service_level: Option<f64>,
    /// ASA, seconds.
    pub asa_s: Option<f64>,
    /// AHT, seconds.
    pub aht_s: Option<f64>,
    /// Occupancy of the queue's agents.
    pub occupancy: Option<f64>,
}

/// One department.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepartmentReport {
    /// Offered.
    pub offered: u64,
    /// Answered.
    pub answered: u64,
    /// Abandoned.
    pub abandoned: u64,
    /// Service level.
    pub service_level: Option<f64>,
    /// ASA, seconds.
    pub asa_s: Option<f64>,
    /// AHT, seconds.
    pub aht_s: Option<f64>,
    /// FCR.
    pub fcr: Option<f64>,
    /// Completed before due.
    pub completed_before_due: Option<f64>,
    /// Plugin figures, when the department has a plugin.
    pub plugin: Option<PluginFigures>,
}

/// What a department's plugin did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginFigures {
    /// Plugin file.
    pub path: String,
    /// Calls into the plugin.
    pub calls: u64,
    /// Decisions that fell back to the built-in rule.
    pub fallbacks: u64,
    /// Median latency of a call, microseconds (histogram bucket bound).
    pub p50_latency_us: Option<f64>,
    /// 99th percentile latency, microseconds (histogram bucket bound).
    pub p99_latency_us: Option<f64>,
}

/// One agent group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupReport {
    /// Agents.
    pub agents: usize,
    /// Occupancy (0-1).
    pub occupancy: Option<f64>,
    /// Busy hours.
    pub busy_h: f64,
    /// Idle hours.
    pub idle_h: f64,
    /// Away hours.
    pub away_h: f64,
    /// Occupancy per interval.
    pub interval_occupancy: Vec<Option<f64>>,
}

/// End-to-end cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseReport {
    /// Cases closed.
    pub closed: u64,
    /// Closed after crossing departments.
    pub cross_department: u64,
    /// Hand-offs.
    pub handoffs: u64,
    /// Mean end-to-end time, seconds.
    pub mean_s: Option<f64>,
    /// 90th percentile, seconds.
    pub p90_s: Option<f64>,
    /// Mean end-to-end time of cross-department cases, seconds.
    pub cross_department_mean_s: Option<f64>,
}

/// The exception queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExceptionReport {
    /// Items sent there.
    pub count: u64,
    /// Still there at the end, by reason.
    pub open_by_reason: BTreeMap<String, usize>,
}

/// Queue lengths over time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueLengthSamples {
    /// Sample times, seconds.
    pub t_s: Vec<f64>,
    /// Per queue, one value per sample.
    pub queues: BTreeMap<String, Vec<usize>>,
}

fn mean(values: &[u64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64 / 1000.0)
}

fn p90(values: &[u64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let index = ((sorted.len() as f64 * 0.9).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[index] as f64 / 1000.0)
}

fn occupancy_of(times: impl Iterator<Item = AgentTimes>) -> Option<f64> {
    let mut sum = AgentTimes::default();
    for t in times {
        sum.add(&t);
    }
    sum.occupancy()
}

impl Report {
    /// Build the report of a finished run. `plugins` gives each department's
    /// plugin figures, when it has one.
    pub fn build(run: &SimRun, plugins: &BTreeMap<String, PluginFigures>) -> Report {
        let router = &run.router;
        let metrics = router.metrics();
        let scenario = &run.scenario;
        let interval_s = scenario.interval_s;
        let first_interval = (scenario.warmup_s / interval_s).floor() as usize;
        let last_interval = ((scenario.duration_s / interval_s).ceil() as usize).max(first_interval);
        let agents = router.agents();
        let names = router.queue_names();

        let mut queues = BTreeMap::new();
        for (q, name) in names.iter().enumerate() {
            let totals = metrics.queue_totals(q).cloned().unwrap_or_default();
            let serving = router.queue_agents(name).unwrap_or_default();
            let occupancy = occupancy_of(serving.iter().filter_map(|&a| metrics.agent_times(a)));
            let sl_ms = metrics.queue_service_level_ms(q).unwrap_or(0);
            let snapshot = router.queue_snapshot(name).unwrap_or_default();
            let intervals = metrics.queue_intervals(q);
            let interval_reports = (first_interval..last_interval)
                .map(|i| {
                    let c = intervals.get(i).cloned().unwrap_or_default();
                    let occ = occupancy_of(
                        serving.iter().map(|&a| metrics.agent_intervals(a).get(i).copied().unwrap_or_default()),
                    );
                    IntervalReport {
                        start_s: i as f64 * interval_s,
                        offered: c.offered,
                        answered: c.answered,
                        abandoned: c.abandoned,
                        service_level: c.service_level(),
                        asa_s: c.asa_s(),
                        aht_s: c.aht_s(),
                        occupancy: occ,
                    }
                })
                .collect();
            queues.insert(
                name.clone(),
                QueueReport {
                    department: metrics.queue_department(q).unwrap_or_default().to_owned(),
                    offered: totals.offered,
                    answered: totals.answered,
                    abandoned: totals.abandoned,
                    short_abandoned: totals.short_abandoned,
                    service_level: totals.service_level(),
                    service_level_threshold_s: sl_ms as f64 / 1000.0,
                    asa_s: totals.asa_s(),
                    aht_s: totals.aht_s(),
                    longest_wait_s: totals.longest_wait_ms as f64 / 1000.0,
                    occupancy,
                    agents: serving.len(),
                    completed: totals.completed,
                    fcr: totals.fcr(),
                    repeats: totals.repeats,
                    completed_before_due: totals.before_due_share(),
                    backlog: Backlog {
                        waiting: snapshot.waiting,
                        oldest_s: snapshot.oldest_wait_ms as f64 / 1000.0,
                        mean_age_s: snapshot.mean_wait_ms / 1000.0,
                        overdue: snapshot.overdue,
                    },
                    erlang_c: erlang_for(run, name, serving.len(), sl_ms as f64 / 1000.0),
                    wait_histogram: Histogram {
                        bin_s: metrics.config().wait_bin_ms as f64 / 1000.0,
                        counts: metrics.wait_histogram(q).to_vec(),
                    },
                    intervals: interval_reports,
                },
            );
        }

        let mut departments = BTreeMap::new();
        for name in router.department_names() {
            let t: QueueCounters = metrics.department_totals(&name);
            departments.insert(
                name.clone(),
                DepartmentReport {
                    offered: t.offered,
                    answered: t.answered,
                    abandoned: t.abandoned,
                    service_level: t.service_level(),
                    asa_s: t.asa_s(),
                    aht_s: t.aht_s(),
                    fcr: t.fcr(),
                    completed_before_due: t.before_due_share(),
                    plugin: plugins.get(&name).cloned(),
                },
            );
        }

        let mut groups: BTreeMap<String, Vec<AgentId>> = BTreeMap::new();
        for (id, _, group) in &agents {
            groups.entry(group.clone()).or_default().push(*id);
        }
        let agent_groups = groups
            .into_iter()
            .map(|(group, ids)| {
                let mut sum = AgentTimes::default();
                for &a in &ids {
                    if let Some(t) = metrics.agent_times(a) {
                        sum.add(&t);
                    }
                }
                let interval_occupancy = (first_interval..last_interval)
                    .map(|i| {
                        occupancy_of(
                            ids.iter().map(|&a| metrics.agent_intervals(a).get(i).copied().unwrap_or_default()),
                        )
                    })
                    .collect();
                let report = GroupReport {
                    agents: ids.len(),
                    occupancy: sum.occupancy(),
                    busy_h: sum.busy_ms as f64 / 3_600_000.0,
                    idle_h: sum.idle_ms as f64 / 3_600_000.0,
                    away_h: sum.away_ms as f64 / 3_600_000.0,
                    interval_occupancy,
                };
                (group, report)
            })
            .collect();

        let cases = metrics.cases();
        let mut open_by_reason = BTreeMap::new();
        for e in router.exceptions() {
            let key = match &e.reason {
                ExceptionReason::UnknownDepartment(_) => "unknown-department",
                ExceptionReason::UnknownQueue(_) => "unknown-queue",
                ExceptionReason::InvalidData(_) => "invalid-data",
                ExceptionReason::NoUsableRule(_) => "no-usable-rule",
            };
            *open_by_reason.entry(key.to_owned()).or_insert(0) += 1;
        }
        let mut sample_queues = BTreeMap::new();
        for (q, name) in names.iter().enumerate() {
            sample_queues.insert(
                name.clone(),
                run.samples.queue_lengths.iter().map(|row| row.get(q).copied().unwrap_or(0)).collect(),
            );
        }

        Report {
            seed: run.seed,
            duration_s: scenario.duration_s,
            warmup_s: scenario.warmup_s,
            interval_s,
            definitions: DEFINITIONS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            items_created: run.items_created,
            items_open_at_end: router.open_items(),
            queues,
            departments,
            agent_groups,
            cases: CaseReport {
                closed: cases.closed,
                cross_department: cases.cross_department,
                handoffs: cases.handoffs,
                mean_s: mean(&cases.durations_ms),
                p90_s: p90(&cases.durations_ms),
                cross_department_mean_s: mean(&cases.cross_department_durations_ms),
            },
            exceptions: ExceptionReport { count: metrics.exceptions(), open_by_reason },
            alerts: metrics.alerts(),
            escalations: metrics.escalations(),
            queue_length_samples: QueueLengthSamples { t_s: run.samples.t_s.clone(), queues: sample_queues },
        }
    }

    /// The per-queue table printed on the terminal.
    pub fn table(&self) -> String {
        let fmt = |v: Option<f64>, scale: f64, digits: usize| match v {
            Some(v) => format!("{:.*}", digits, v * scale),
            None => "-".to_owned(),
        };
        let mut out = format!(
            "{:<16} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6}\n",
            "queue", "offered", "answered", "abandon", "SL %", "ASA s", "AHT s", "occ %", "FCR %", "due %"
        );
        for (name, q) in &self.queues {
            out.push_str(&format!(
                "{:<16} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6}\n",
                name,
                q.offered,
                q.answered,
                q.abandoned,
                format!("{}@{}s", fmt(q.service_level, 100.0, 1), q.service_level_threshold_s),
                fmt(q.asa_s, 1.0, 1),
                fmt(q.aht_s, 1.0, 1),
                fmt(q.occupancy, 100.0, 1),
                fmt(q.fcr, 100.0, 1),
                fmt(q.completed_before_due, 100.0, 1),
            ));
            if let Some(e) = &q.erlang_c {
                out.push_str(&format!(
                    "{:<16} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7}\n",
                    "  (Erlang C)",
                    "",
                    "",
                    "",
                    format!("{:.1}", e.service_level * 100.0),
                    format!("{:.1}", e.asa_s),
                    "",
                    format!("{:.1}", e.occupancy * 100.0),
                ));
            }
        }
        out.push_str("SL = answered within threshold / (offered - short abandons); abandons after the short-abandon threshold count as missed.\n");
        if self.cases.closed > 0 {
            out.push_str(&format!(
                "cases: {} closed, {} across departments, mean end-to-end {}s\n",
                self.cases.closed,
                self.cases.cross_department,
                fmt(self.cases.mean_s, 1.0, 0)
            ));
        }
        if self.exceptions.count > 0 {
            out.push_str(&format!("exception queue: {} items\n", self.exceptions.count));
        }
        out
    }
}

/// Erlang C for `queue` when the scenario makes it a plain M/M/N queue.
fn erlang_for(run: &SimRun, queue: &str, agents: usize, threshold_s: f64) -> Option<ErlangC> {
    let scenario = &run.scenario;
    let streams: Vec<_> = scenario.arrivals.iter().filter(|a| a.queue == queue).collect();
    let [stream] = streams.as_slice() else { return None };
    let DistSpec::Exponential { mean_s } = stream.handle_time else { return None };
    if stream.patience.is_some() || stream.profile.is_some() || stream.channel != switchyard_contract::Channel::Voice {
        return None;
    }
    // Dedicated agents: every agent serving the queue serves only it, all day.
    let serving = run.router.queue_agents(queue).ok()?;
    let others = run.router.queue_names();
    for other in others.iter().filter(|o| o.as_str() != queue) {
        let theirs = run.router.queue_agents(other).ok()?;
        if theirs.iter().any(|a| serving.contains(a)) {
            return None;
        }
    }
    if scenario.agents.iter().any(|a| !a.shifts.is_empty() || a.wrap_up_s > 0.0) {
        return None;
    }
    erlang_c(stream.per_hour, mean_s, agents as u32, threshold_s)
}
