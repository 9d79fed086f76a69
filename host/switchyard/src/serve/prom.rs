//! `GET /metrics`: the daemon's figures in the Prometheus/OpenMetrics text format
//! (rendered by `prometheus-client`). Per queue and department: waiting, pending
//! offers, oldest wait, service level (with its threshold), ASA, AHT and the
//! counters behind them; agents by state; offers by outcome; per department
//! plugin: calls per hook, failures per kind (each one a fallback decision),
//! call latency histogram, breaker state and generation; journal records.
//!
//! The figures are copied out of the daemon under its lock, then encoded
//! outside it. Statistics count since the journal began (they are rebuilt by
//! the replay on every start).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use switchyard_core::metrics::QueueCounters;
use switchyard_core::router::AgentState;
use switchyard_runtime::stats::{BreakerState, PluginStats, bucket_bound};

use super::api::AppState;
use super::core::Core;

type Labels = Vec<(&'static str, String)>;

/// Everything the exposition shows, copied out of the core.
#[derive(Debug, Default)]
struct Snapshot {
    queues: Vec<QueueFigures>,
    departments: Vec<(String, QueueCounters)>,
    agents: BTreeMap<&'static str, u64>,
    offers: BTreeMap<&'static str, u64>,
    plugins: Vec<(String, PluginStats)>,
    journal_appended: u64,
    journal_recovered: u64,
    journal_commits: u64,
    /// (sequence number covered, bytes, ms the state was locked) of the last snapshot.
    snapshot: Option<(u64, usize, u64)>,
    journal_diverged: u64,
    budgets: Vec<(String, super::budget::BudgetView)>,
    records: switchyard_core::router::RecordCounts,
    retention: switchyard_core::router::RetentionStats,
    exceptions: u64,
    alerts: u64,
    escalations: u64,
    /// In a cluster: (leader 1 / standby 0, records behind, takeovers).
    cluster: Option<(u64, u64, u64)>,
    traffic: Option<super::traffic::TrafficView>,
}

#[derive(Debug)]
struct QueueFigures {
    labels: Labels,
    waiting: u64,
    offered_now: u64,
    oldest_wait_ms: u64,
    threshold_ms: u64,
    totals: QueueCounters,
}

fn snapshot(core: &Core) -> Snapshot {
    let metrics = core.router.metrics();
    let specs = core.router.queue_specs();
    let queues = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let live = core.router.queue_snapshot(&spec.name).unwrap_or_default();
            QueueFigures {
                labels: vec![("department", spec.department.clone()), ("queue", spec.name.clone())],
                waiting: live.waiting as u64,
                offered_now: live.offered as u64,
                oldest_wait_ms: live.oldest_wait_ms,
                threshold_ms: spec.service_level_ms,
                totals: metrics.queue_totals(i).cloned().unwrap_or_default(),
            }
        })
        .collect();
    let departments: Vec<(String, QueueCounters)> =
        core.router.department_names().into_iter().map(|d| (d.clone(), metrics.department_totals(&d))).collect();
    let mut agents: BTreeMap<&'static str, u64> =
        ["available", "busy", "wrap-up", "away", "offline"].into_iter().map(|s| (s, 0)).collect();
    for (id, _, _) in core.router.agents() {
        let state = core.router.agent_state(id).unwrap_or(AgentState::Offline).name();
        *agents.entry(state).or_default() += 1;
    }
    let plugins = departments.iter().filter_map(|(d, _)| core.runtime.stats(d).map(|s| (d.clone(), s))).collect();
    Snapshot {
        queues,
        departments,
        agents,
        offers: core.offers.clone(),
        plugins,
        journal_appended: core.appended,
        journal_recovered: core.recovered,
        journal_commits: core.journal.commits(),
        snapshot: core.last_snapshot,
        journal_diverged: core.diverged,
        budgets: core.budgets.iter().map(|(d, b)| (d.clone(), b.view())).collect(),
        records: core.router.record_counts(),
        retention: core.router.retention_stats(),
        exceptions: core.router.exceptions().len() as u64,
        alerts: metrics.alerts(),
        escalations: metrics.escalations(),
        cluster: None,
        traffic: core.traffic.as_ref().map(|t| t.view()),
    }
}

/// Write one gauge family.
fn gauges<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, V)>,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// Write one counter family (`_total` is appended by the encoder).
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        family.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let q = &self.queues;
        gauges(
            &mut e,
            "switchyard_queue_waiting",
            "Items waiting in the queue (not offered)",
            q.iter().map(|f| (f.labels.clone(), f.waiting)),
        )?;
        gauges(
            &mut e,
            "switchyard_queue_offers_pending",
            "Items of the queue offered, awaiting an answer",
            q.iter().map(|f| (f.labels.clone(), f.offered_now)),
        )?;
        gauges(
            &mut e,
            "switchyard_queue_oldest_wait_seconds",
            "Age of the oldest waiting item",
            q.iter().map(|f| (f.labels.clone(), f.oldest_wait_ms as f64 / 1000.0)),
        )?;
        gauges(
            &mut e,
            "switchyard_queue_service_level_threshold_seconds",
            "Service-level threshold t of the queue",
            q.iter().map(|f| (f.labels.clone(), f.threshold_ms as f64 / 1000.0)),
        )?;
        gauges(
            &mut e,
            "switchyard_queue_service_level",
            "Share answered within t of (offered - short abandons); NaN before any item",
            q.iter().map(|f| (f.labels.clone(), f.totals.service_level().unwrap_or(f64::NAN))),
        )?;
        gauges(
            &mut e,
            "switchyard_queue_asa_seconds",
            "Average speed of answer",
            q.iter().map(|f| (f.labels.clone(), f.totals.asa_s().unwrap_or(f64::NAN))),
        )?;
        gauges(
            &mut e,
            "switchyard_queue_aht_seconds",
            "Average handle time (with after-work)",
            q.iter().map(|f| (f.labels.clone(), f.totals.aht_s().unwrap_or(f64::NAN))),
        )?;
        let counter_rows = |get: fn(&QueueCounters) -> u64| {
            q.iter().map(move |f| (f.labels.clone(), get(&f.totals))).collect::<Vec<_>>()
        };
        counters(&mut e, "switchyard_queue_offered", "Items answered or abandoned", counter_rows(|c| c.offered))?;
        counters(&mut e, "switchyard_queue_answered", "Items answered (offer accepted)", counter_rows(|c| c.answered))?;
        counters(
            &mut e,
            "switchyard_queue_answered_within_sl",
            "Items answered within the service-level threshold",
            counter_rows(|c| c.answered_within_sl),
        )?;
        counters(
            &mut e,
            "switchyard_queue_abandoned",
            "Items withdrawn before an answer",
            counter_rows(|c| c.abandoned),
        )?;
        counters(&mut e, "switchyard_queue_completed", "Items handled to the end", counter_rows(|c| c.completed))?;
        counters(&mut e, "switchyard_queue_resolved", "Items completed as resolved", counter_rows(|c| c.resolved))?;
        let d = &self.departments;
        let dept = |name: &String| vec![("department", name.clone())];
        gauges(
            &mut e,
            "switchyard_department_service_level",
            "Service level over the department's queues",
            d.iter().map(|(n, c)| (dept(n), c.service_level().unwrap_or(f64::NAN))),
        )?;
        gauges(
            &mut e,
            "switchyard_department_asa_seconds",
            "Average speed of answer over the department's queues",
            d.iter().map(|(n, c)| (dept(n), c.asa_s().unwrap_or(f64::NAN))),
        )?;
        gauges(
            &mut e,
            "switchyard_department_aht_seconds",
            "Average handle time over the department's queues",
            d.iter().map(|(n, c)| (dept(n), c.aht_s().unwrap_or(f64::NAN))),
        )?;
        gauges(
            &mut e,
            "switchyard_department_waiting",
            "Items waiting in the department's queues",
            d.iter().map(|(n, _)| (dept(n), q.iter().filter(|f| f.labels[0].1 == *n).map(|f| f.waiting).sum::<u64>())),
        )?;
        gauges(
            &mut e,
            "switchyard_agents",
            "Agents by state",
            self.agents.iter().map(|(s, n)| (vec![("state", (*s).to_owned())], *n)),
        )?;
        counters(
            &mut e,
            "switchyard_offers",
            "Offers by outcome",
            self.offers.iter().map(|(s, n)| (vec![("outcome", (*s).to_owned())], *n)),
        )?;
        let p = &self.plugins;
        gauges(
            &mut e,
            "switchyard_plugin_generation",
            "Generation of the department's current plugin",
            p.iter().map(|(d, s)| (dept(d), s.generation)),
        )?;
        gauges(
            &mut e,
            "switchyard_plugin_breaker_open",
            "1 when the plugin's circuit breaker is open, 0.5 half-open, 0 closed",
            p.iter().map(|(d, s)| {
                let v = match s.breaker {
                    BreakerState::Open { .. } => 1.0,
                    BreakerState::HalfOpen => 0.5,
                    BreakerState::Closed { .. } => 0.0,
                };
                (dept(d), v)
            }),
        )?;
        counters(
            &mut e,
            "switchyard_plugin_calls",
            "Calls into the plugin per hook",
            p.iter().flat_map(|(d, s)| {
                [
                    ("prioritise", s.calls.prioritise),
                    ("escalate", s.calls.escalate),
                    ("match-agents", s.calls.match_agents),
                ]
                .map(|(hook, n)| (vec![("department", d.clone()), ("hook", hook.to_owned())], n))
            }),
        )?;
        counters(
            &mut e,
            "switchyard_plugin_fallbacks",
            "Decisions the built-in rule made because the plugin failed, per failure kind",
            p.iter().flat_map(|(d, s)| {
                let f = s.failures;
                [
                    ("trap", f.trap),
                    ("deadline", f.deadline),
                    ("limit", f.limit),
                    ("invalid-answer", f.invalid_answer),
                    ("breaker-open", f.breaker_open),
                ]
                .map(|(kind, n)| (vec![("department", d.clone()), ("kind", kind.to_owned())], n))
            }),
        )?;
        {
            let mut family = e.encode_descriptor(
                "switchyard_plugin_call_duration_seconds",
                "Latency of plugin calls (power-of-two buckets; the sum is estimated from bucket midpoints)",
                None,
                MetricType::Histogram,
            )?;
            for (d, s) in p {
                let n = s.latency.buckets.len();
                let buckets: Vec<(f64, u64)> = s
                    .latency
                    .buckets
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| (if i + 1 == n { f64::INFINITY } else { bucket_bound(i).as_secs_f64() }, c))
                    .collect();
                let sum: f64 = s
                    .latency
                    .buckets
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| c as f64 * bucket_bound(i).as_secs_f64() * 0.75)
                    .sum();
                family.encode_family(&dept(d))?.encode_histogram::<NoLabelSet>(
                    sum,
                    s.latency.count(),
                    &buckets,
                    None,
                )?;
            }
        }
        counters(
            &mut e,
            "switchyard_journal_records",
            "Records appended to the journal since start",
            [(Labels::new(), self.journal_appended)],
        )?;
        counters(
            &mut e,
            "switchyard_journal_commits",
            "Synced journal commits since start (group commit: one per batch of concurrent requests)",
            [(Labels::new(), self.journal_commits)],
        )?;
        gauges(
            &mut e,
            "switchyard_department_over_rule_budget",
            "1 while the department has used its rule time budget for the current second (built-in rules decide)",
            self.budgets.iter().map(|(d, b)| (vec![("department", d.clone())], u64::from(b.over_budget))),
        )?;
        counters(
            &mut e,
            "switchyard_department_budget_fallbacks",
            "Decisions given to the built-in rules because the department had used its rule time budget",
            self.budgets.iter().map(|(d, b)| (vec![("department", d.clone())], b.fallback_decisions)),
        )?;
        let r = &self.records;
        gauges(
            &mut e,
            "switchyard_router_records",
            "Records the router holds, by kind: each is bounded by [retention] or [limits]",
            [
                ("items", r.items),
                ("customers", r.customers),
                ("cases", r.cases),
                ("alerts", r.alerts),
                ("exceptions", r.exceptions),
                ("timers", r.timers),
                ("interval-entries", r.interval_entries),
            ]
            .map(|(kind, n)| (vec![("kind", kind.to_owned())], n as u64)),
        )?;
        let d = &self.retention;
        counters(
            &mut e,
            "switchyard_router_dropped",
            "Records dropped by retention since start, by kind",
            [
                ("alerts", d.alerts_dropped),
                ("cases", d.cases_forgotten),
                ("case-steps", d.case_steps_dropped),
                ("customers", d.customers_forgotten),
                ("escalation-notes", d.notes_dropped),
                ("exceptions", d.exceptions_dropped),
            ]
            .map(|(kind, n)| (vec![("kind", kind.to_owned())], n)),
        )?;
        gauges(
            &mut e,
            "switchyard_journal_recovered_records",
            "Records recovered at start (those the snapshot covered, and those replayed after it)",
            [(Labels::new(), self.journal_recovered)],
        )?;
        gauges(
            &mut e,
            "switchyard_journal_replay_diverged_records",
            "Records whose replay did not line up with their recorded rule decisions (normally 0)",
            [(Labels::new(), self.journal_diverged)],
        )?;
        if let Some((covers, bytes, locked_ms)) = self.snapshot {
            gauges(
                &mut e,
                "switchyard_journal_snapshot_covers",
                "Sequence number of the last journal record the latest snapshot covers",
                [(Labels::new(), covers)],
            )?;
            gauges(
                &mut e,
                "switchyard_journal_snapshot_bytes",
                "Size of the latest snapshot",
                [(Labels::new(), bytes as u64)],
            )?;
            gauges(
                &mut e,
                "switchyard_journal_snapshot_locked_ms",
                "How long taking the latest snapshot held the daemon's state (0 for one restored at start)",
                [(Labels::new(), locked_ms)],
            )?;
        }
        gauges(&mut e, "switchyard_exceptions", "Items in the exception queue", [(Labels::new(), self.exceptions)])?;
        counters(
            &mut e,
            "switchyard_alerts",
            "Supervisor alerts raised by escalation rules",
            [(Labels::new(), self.alerts)],
        )?;
        counters(&mut e, "switchyard_escalations", "Escalation steps taken", [(Labels::new(), self.escalations)])?;
        if let Some((leader, behind, takeovers)) = self.cluster {
            gauges(
                &mut e,
                "switchyard_cluster_leader",
                "1 while this node leads its cluster, 0 while it stands by",
                [(Labels::new(), leader)],
            )?;
            gauges(
                &mut e,
                "switchyard_cluster_behind_records",
                "Records the leader committed that this standby has not applied yet",
                [(Labels::new(), behind)],
            )?;
            counters(
                &mut e,
                "switchyard_cluster_takeovers",
                "Times this node took over the lead since it started",
                [(Labels::new(), takeovers)],
            )?;
        }
        if let Some(t) = self.traffic {
            let one = |v: u64| [(Labels::new(), v)];
            counters(&mut e, "switchyard_traffic_lines", "Lines written to the traffic log", one(t.lines))?;
            counters(&mut e, "switchyard_traffic_bytes", "Bytes written to the traffic log", one(t.bytes))?;
            counters(
                &mut e,
                "switchyard_traffic_write_errors",
                "Failed writes of the traffic log (their lines are lost; routing is not affected)",
                one(t.write_errors),
            )?;
            counters(
                &mut e,
                "switchyard_traffic_dropped_lines",
                "Traffic lines dropped because the writer was behind",
                one(t.dropped),
            )?;
            counters(
                &mut e,
                "switchyard_traffic_segments_deleted",
                "Traffic log segments deleted by retention",
                one(t.segments_deleted),
            )?;
            counters(
                &mut e,
                "switchyard_traffic_wait_timeouts",
                "Requests answered before their traffic lines were written (the writer was slow)",
                one(t.wait_timeouts),
            )?;
        }
        Ok(())
    }
}

/// The handler.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let node = state.node.clone();
    let taken =
        tokio::task::spawn_blocking(move || snapshot(&state.core.lock().unwrap_or_else(|p| p.into_inner()))).await;
    let Ok(mut snap) = taken else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "metrics task failed").into_response();
    };
    if node.clustered {
        let leader = u64::from(node.role() == super::cluster::Role::Leader);
        snap.cluster = Some((leader, node.behind(), node.takeovers.load(std::sync::atomic::Ordering::Relaxed)));
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snap));
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}")).into_response();
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
        .into_response()
}
