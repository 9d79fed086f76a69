//! Contact-centre statistics, fed by the router's [`Event`]s: per queue (and so
//! per department) cumulative and per interval — offered, answered, abandoned
//! (short abandons apart), service level, ASA, AHT, longest wait, FCR,
//! back-office completed-before-due share — plus occupancy per agent, and the
//! end-to-end time of cases across departments.
//!
//! Definitions (also written into every report):
//! - an item is *offered* to a queue when it reaches an outcome there: answered
//!   or abandoned; items still waiting at the end are reported apart;
//! - **service level** = answered within the queue's threshold t ÷ (offered −
//!   short abandons); abandons after the short-abandon threshold count as missed;
//! - **ASA** = mean wait of answered items; **AHT** = mean handle time (answer to
//!   end of after-work, pauses excluded) of completed items;
//! - **occupancy** = busy time ÷ (busy + idle available time); away and logged
//!   out time are left out;
//! - **FCR** = (items completed as resolved − repeat contacts within the window
//!   that followed them) ÷ items completed;
//! - items are bucketed into intervals by creation time, counted from the
//!   interval boundary at or before the first event the statistics see
//!   ([`Metrics::origin_ms`]; a fixed [`MetricsConfig::origin_ms`] overrides it),
//!   so a host on the wall clock keeps one entry per interval it has lived
//!   through, not one per interval since 1970 — even when its router was built
//!   on a clock that only later jumped to wall time; only items created at or
//!   after `measure_from_ms` (the warm-up's end) count;
//! - per-interval figures are kept for the last [`MetricsConfig::keep_intervals`]
//!   intervals (older ones are dropped in amortised O(1)); totals are cumulative
//!   over the whole life and never dropped.

use serde::{Deserialize, Serialize};

use crate::model::{Activity, AgentId, Event, QueueSpec};

/// What the statistics count and how they bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Ignore items created, and agent time spent, before this time (warm-up).
    pub measure_from_ms: u64,
    /// Interval length for interval statistics (e.g. 15 or 30 minutes).
    pub interval_ms: u64,
    /// Width of one bin of the wait-time histogram.
    pub wait_bin_ms: u64,
    /// Number of bins (the last one also holds longer waits).
    pub wait_bins: usize,
    /// How many of the most recent intervals keep per-interval figures (per
    /// queue and per agent); `None` keeps every interval. Default 96: two days
    /// of 30-minute intervals — enough for "today against yesterday" on a
    /// wallboard, while a daemon up for months holds a fixed ~100 entries per
    /// queue and agent. The simulator keeps all (its reports show every
    /// interval of a run).
    pub keep_intervals: Option<usize>,
    /// Start of interval 0, fixed. `None` (the default): the interval boundary at
    /// or before the first event observed, so a router whose clock starts at 0
    /// and is then set to wall time numbers intervals from its first real
    /// event. The simulator fixes it at 0 (its reports number intervals from
    /// the start of the run).
    pub origin_ms: Option<u64>,
    /// How many end-to-end case durations [`CaseFigures`] keeps (the most recent
    /// ones, for means and percentiles; counts stay cumulative); `None` keeps
    /// all. Default 10,000: a stable p90 while bounded (80 KB) over months.
    pub keep_case_durations: Option<usize>,
}

impl MetricsConfig {
    /// The settings for a bounded run (the simulator's): every interval and
    /// every case duration kept, intervals numbered from `0`.
    pub fn unbounded(self) -> Self {
        MetricsConfig { keep_intervals: None, origin_ms: Some(0), keep_case_durations: None, ..self }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            measure_from_ms: 0,
            interval_ms: 30 * 60_000,
            wait_bin_ms: 5_000,
            wait_bins: 120,
            keep_intervals: Some(96),
            origin_ms: None,
            keep_case_durations: Some(10_000),
        }
    }
}

/// Per-interval values of one queue or agent, for a sliding window of
/// intervals. `data[skip..]` are live and `data[0]` is interval `base`; the dead
/// prefix is drained once it is as long as the live part, so dropping old
/// intervals costs amortised O(1) and the memory stays under twice the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Series<T> {
    base: u64,
    skip: usize,
    data: Vec<T>,
}

impl<T> Default for Series<T> {
    fn default() -> Self {
        Series { base: 0, skip: 0, data: Vec::new() }
    }
}

impl<T: Default + Clone> Series<T> {
    /// Drop intervals before `first` (the window's oldest interval).
    fn trim(&mut self, first: u64) {
        if self.base + self.skip as u64 >= first {
            return;
        }
        let dead = first - self.base;
        if dead >= self.data.len() as u64 {
            self.data.clear();
            self.base = first;
            self.skip = 0;
            return;
        }
        self.skip = dead as usize;
        if self.skip * 2 >= self.data.len() {
            self.data.drain(..self.skip);
            self.base = first;
            self.skip = 0;
        }
    }

    /// The entry of interval `index`, created if needed; `None` when it is older
    /// than the window starting at `first`.
    fn slot(&mut self, index: u64, first: u64) -> Option<&mut T> {
        if index < first {
            return None;
        }
        self.trim(first);
        let position = usize::try_from(index - self.base).ok()?;
        if self.data.len() <= position {
            self.data.resize(position + 1, T::default());
        }
        self.data.get_mut(position)
    }

    /// Entries from interval `first` on (`base <= first` always holds).
    fn view(&self, first: u64) -> &[T] {
        let start = usize::try_from(first.saturating_sub(self.base)).unwrap_or(usize::MAX).max(self.skip);
        self.data.get(start..).unwrap_or(&[])
    }
}

/// Counters of one queue over some span of time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueCounters {
    /// Answered + abandoned.
    pub offered: u64,
    /// Answered (offer accepted).
    pub answered: u64,
    /// Answered within the service-level threshold.
    pub answered_within_sl: u64,
    /// Abandoned (withdrawn before answer), short abandons included.
    pub abandoned: u64,
    /// Abandoned before the short-abandon threshold.
    pub short_abandoned: u64,
    /// Sum of waits of answered items, ms.
    pub answered_wait_ms: u64,
    /// Longest wait (answered or abandoned), ms.
    pub longest_wait_ms: u64,
    /// Completed (handled to the end).
    pub completed: u64,
    /// Sum of handle times of completed items, ms.
    pub handle_ms: u64,
    /// Completed as resolved.
    pub resolved: u64,
    /// Repeat contacts that followed an item of this queue within the window.
    pub repeats: u64,
    /// Completed items that had a due time.
    pub with_due: u64,
    /// Of those, completed by their due time.
    pub before_due: u64,
}

impl QueueCounters {
    /// Add `other` into `self`.
    pub fn add(&mut self, other: &QueueCounters) {
        self.offered += other.offered;
        self.answered += other.answered;
        self.answered_within_sl += other.answered_within_sl;
        self.abandoned += other.abandoned;
        self.short_abandoned += other.short_abandoned;
        self.answered_wait_ms += other.answered_wait_ms;
        self.longest_wait_ms = self.longest_wait_ms.max(other.longest_wait_ms);
        self.completed += other.completed;
        self.handle_ms += other.handle_ms;
        self.resolved += other.resolved;
        self.repeats += other.repeats;
        self.with_due += other.with_due;
        self.before_due += other.before_due;
    }

    /// Answered within t ÷ (offered − short abandons); `None` with nothing offered.
    pub fn service_level(&self) -> Option<f64> {
        let base = self.offered.saturating_sub(self.short_abandoned);
        (base > 0).then(|| self.answered_within_sl as f64 / base as f64)
    }

    /// Average speed of answer, seconds.
    pub fn asa_s(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.answered_wait_ms as f64 / self.answered as f64 / 1000.0)
    }

    /// Average handle time, seconds.
    pub fn aht_s(&self) -> Option<f64> {
        (self.completed > 0).then(|| self.handle_ms as f64 / self.completed as f64 / 1000.0)
    }

    /// First-contact resolution share.
    pub fn fcr(&self) -> Option<f64> {
        (self.completed > 0).then(|| self.resolved.saturating_sub(self.repeats) as f64 / self.completed as f64)
    }

    /// Share of due-dated items completed by their due time.
    pub fn before_due_share(&self) -> Option<f64> {
        (self.with_due > 0).then(|| self.before_due as f64 / self.with_due as f64)
    }
}

/// Time an agent spent in each activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentTimes {
    /// Handling or wrapping up, ms.
    pub busy_ms: u64,
    /// Available with nothing in hand, ms.
    pub idle_ms: u64,
    /// Away, ms.
    pub away_ms: u64,
}

impl AgentTimes {
    /// Add `other` into `self`.
    pub fn add(&mut self, other: &AgentTimes) {
        self.busy_ms += other.busy_ms;
        self.idle_ms += other.idle_ms;
        self.away_ms += other.away_ms;
    }

    /// Busy ÷ (busy + idle).
    pub fn occupancy(&self) -> Option<f64> {
        let base = self.busy_ms + self.idle_ms;
        (base > 0).then(|| self.busy_ms as f64 / base as f64)
    }
}

#[derive(Debug, Clone)]
struct QueueMeta {
    name: String,
    department: String,
    service_level_ms: u64,
    short_abandon_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AgentTrack {
    group: String,
    activity: Activity,
    since_ms: u64,
    total: AgentTimes,
    intervals: Series<AgentTimes>,
}

/// End-to-end case figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseFigures {
    /// Cases closed (opened after the warm-up).
    pub closed: u64,
    /// Of those, cases that crossed more than one department.
    pub cross_department: u64,
    /// End-to-end durations (open to close), ms, in closing order: all of them,
    /// or with [`MetricsConfig::keep_case_durations`] = n at least the last n
    /// (at most 2n).
    pub durations_ms: Vec<u64>,
    /// Cross-department durations only, ms (kept like `durations_ms`).
    pub cross_department_durations_ms: Vec<u64>,
    /// Hand-offs between departments.
    pub handoffs: u64,
}

/// The statistics. Feed it every router event with [`Metrics::observe`] (the
/// [`Router`](crate::router::Router) does).
#[derive(Debug, Clone)]
pub struct Metrics {
    config: MetricsConfig,
    /// Start of interval 0: the interval boundary at or before the first event
    /// (or the configured origin); `None` until then.
    origin_ms: Option<u64>,
    /// The boundary at or before construction, reported until an event fixes the origin.
    start_ms: u64,
    /// The latest interval any event or flush reached (the window's end).
    latest: u64,
    queues: Vec<QueueMeta>,
    totals: Vec<QueueCounters>,
    intervals: Vec<Series<QueueCounters>>,
    wait_histograms: Vec<Vec<u64>>,
    agents: Vec<AgentTrack>,
    cases: CaseFigures,
    exceptions: u64,
    alerts: u64,
    escalations: u64,
}

impl Metrics {
    /// Empty statistics for a router started at `start_ms`. Intervals are
    /// counted from the interval boundary at or before the first event observed
    /// (or [`MetricsConfig::origin_ms`]); `start_ms` is only what
    /// [`Metrics::origin_ms`] says before any event.
    pub fn new(config: MetricsConfig, start_ms: u64) -> Self {
        let interval_ms = config.interval_ms.max(1);
        Metrics {
            origin_ms: config.origin_ms.map(|o| o - o % interval_ms),
            start_ms: start_ms - start_ms % interval_ms,
            latest: 0,
            config,
            queues: Vec::new(),
            totals: Vec::new(),
            intervals: Vec::new(),
            wait_histograms: Vec::new(),
            agents: Vec::new(),
            cases: CaseFigures::default(),
            exceptions: 0,
            alerts: 0,
            escalations: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MetricsConfig {
        &self.config
    }

    /// Register a queue (index order = the router's queue order).
    pub fn add_queue(&mut self, spec: &QueueSpec, department: &str) {
        self.queues.push(QueueMeta {
            name: spec.name.clone(),
            department: department.to_owned(),
            service_level_ms: spec.service_level_ms,
            short_abandon_ms: spec.short_abandon_ms,
        });
        self.totals.push(QueueCounters::default());
        self.intervals.push(Series::default());
        self.wait_histograms.push(vec![0; self.config.wait_bins.max(1)]);
    }

    /// Register an agent (id order), logged out at `now_ms`.
    pub fn add_agent(&mut self, _agent: AgentId, group: &str, now_ms: u64) {
        self.agents.push(AgentTrack {
            group: group.to_owned(),
            activity: Activity::Offline,
            since_ms: now_ms,
            total: AgentTimes::default(),
            intervals: Series::default(),
        });
    }

    fn measured(&self, created_ms: u64) -> bool {
        created_ms >= self.config.measure_from_ms
    }

    /// Start of interval 0 (ms on the router's clock): the interval boundary at
    /// or before the first event observed (before any event: at or before the
    /// construction time).
    pub fn origin_ms(&self) -> u64 {
        self.origin_ms.unwrap_or(self.start_ms)
    }

    /// Start of interval `index` (ms on the router's clock).
    pub fn interval_start_ms(&self, index: usize) -> u64 {
        self.origin_ms().saturating_add((index as u64).saturating_mul(self.config.interval_ms.max(1)))
    }

    /// The oldest interval that still has per-interval figures: element `k` of
    /// [`Metrics::queue_intervals`] and [`Metrics::agent_intervals`] is interval
    /// `first_interval() + k`. Always 0 when every interval is kept.
    pub fn first_interval(&self) -> usize {
        self.window_first() as usize
    }

    /// Number of per-interval entries held across all queues and agents (dead
    /// entries awaiting their amortised drain included): what the interval
    /// statistics cost in memory, for a gauge or a test.
    pub fn interval_entries(&self) -> usize {
        self.intervals.iter().map(|s| s.data.len()).sum::<usize>()
            + self.agents.iter().map(|a| a.intervals.data.len()).sum::<usize>()
    }

    fn window_first(&self) -> u64 {
        match self.config.keep_intervals {
            Some(keep) => (self.latest + 1).saturating_sub(keep.max(1) as u64),
            None => 0,
        }
    }

    fn interval_of(&self, ms: u64) -> u64 {
        ms.saturating_sub(self.origin_ms()) / self.config.interval_ms.max(1)
    }

    /// Fix the origin at the first event and move the window's end to `at_ms`.
    fn see(&mut self, at_ms: u64) {
        if self.origin_ms.is_none() {
            let interval_ms = self.config.interval_ms.max(1);
            self.origin_ms = Some(at_ms - at_ms % interval_ms);
        }
        self.latest = self.latest.max(self.interval_of(at_ms));
    }

    fn bucket(&mut self, queue: usize, created_ms: u64) -> Option<(&mut QueueCounters, Option<&mut QueueCounters>)> {
        if queue >= self.totals.len() || !self.measured(created_ms) {
            return None;
        }
        let interval = self.interval_of(created_ms);
        let first = self.window_first();
        Some((&mut self.totals[queue], self.intervals[queue].slot(interval, first)))
    }

    /// Count one event.
    pub fn observe(&mut self, event: &Event) {
        self.see(event.at_ms());
        match event {
            Event::Accepted { at_ms, queue, created_ms, first: true, .. } => {
                let wait = at_ms.saturating_sub(*created_ms);
                let Some(meta) = self.queues.get(*queue) else {
                    return;
                };
                let within = wait <= meta.service_level_ms;
                let (bin_ms, bins) = (self.config.wait_bin_ms.max(1), self.config.wait_bins.max(1));
                if self.measured(*created_ms) {
                    let bin = ((wait / bin_ms) as usize).min(bins - 1);
                    self.wait_histograms[*queue][bin] += 1;
                }
                if let Some((total, interval)) = self.bucket(*queue, *created_ms) {
                    for c in std::iter::once(total).chain(interval) {
                        c.offered += 1;
                        c.answered += 1;
                        c.answered_within_sl += within as u64;
                        c.answered_wait_ms += wait;
                        c.longest_wait_ms = c.longest_wait_ms.max(wait);
                    }
                }
            }
            Event::Abandoned { at_ms, queue, created_ms, .. } => {
                let wait = at_ms.saturating_sub(*created_ms);
                let Some(meta) = self.queues.get(*queue) else {
                    return;
                };
                let short = wait < meta.short_abandon_ms;
                if let Some((total, interval)) = self.bucket(*queue, *created_ms) {
                    for c in std::iter::once(total).chain(interval) {
                        c.offered += 1;
                        c.abandoned += 1;
                        c.short_abandoned += short as u64;
                        c.longest_wait_ms = c.longest_wait_ms.max(wait);
                    }
                }
            }
            Event::Completed { at_ms, queue, created_ms, handle_ms, due_ms, resolved, .. } => {
                if let Some((total, interval)) = self.bucket(*queue, *created_ms) {
                    for c in std::iter::once(total).chain(interval) {
                        c.completed += 1;
                        c.handle_ms += handle_ms;
                        c.resolved += *resolved as u64;
                        if let Some(due) = due_ms {
                            c.with_due += 1;
                            c.before_due += (at_ms <= due) as u64;
                        }
                    }
                }
            }
            Event::Repeat { at_ms, previous_queue, .. } => {
                if let Some((total, interval)) = self.bucket(*previous_queue, *at_ms) {
                    total.repeats += 1;
                    if let Some(interval) = interval {
                        interval.repeats += 1;
                    }
                }
            }
            Event::CaseClosed { at_ms, opened_ms, departments, .. } if self.measured(*opened_ms) => {
                let duration = at_ms.saturating_sub(*opened_ms);
                let keep = self.config.keep_case_durations;
                self.cases.closed += 1;
                push_bounded(&mut self.cases.durations_ms, duration, keep);
                if departments.len() > 1 {
                    self.cases.cross_department += 1;
                    push_bounded(&mut self.cases.cross_department_durations_ms, duration, keep);
                }
            }
            Event::HandedOff { at_ms, .. } if self.measured(*at_ms) => self.cases.handoffs += 1,
            Event::Exception { .. } => self.exceptions += 1,
            Event::Alert(_) => self.alerts += 1,
            Event::Escalated { .. } => self.escalations += 1,
            Event::Activity { at_ms, agent, activity } => {
                let index = agent.0.saturating_sub(1) as usize;
                self.account(index, *at_ms);
                if let Some(track) = self.agents.get_mut(index) {
                    track.activity = *activity;
                }
            }
            _ => {}
        }
    }

    /// Add agent `index`'s time from its last change up to `now_ms` to its
    /// current activity, split at interval boundaries, warm-up left out.
    /// Time before the window goes to the totals in one step, so a long stretch
    /// costs at most one iteration per kept interval.
    fn account(&mut self, index: usize, now_ms: u64) {
        let interval_ms = self.config.interval_ms.max(1);
        let Some(origin) = self.origin_ms else {
            // No event yet: every agent is still logged out, nothing to count.
            return;
        };
        let first = self.window_first();
        let window_start = origin.saturating_add(first.saturating_mul(interval_ms));
        let from_limit = self.config.measure_from_ms.max(origin);
        let Some(track) = self.agents.get_mut(index) else {
            return;
        };
        let mut from = track.since_ms.max(from_limit);
        track.since_ms = now_ms;
        if from < window_start.min(now_ms) {
            let end = window_start.min(now_ms);
            add_time(&mut track.total, track.activity, end - from);
            from = end;
        }
        while from < now_ms {
            let interval = (from - origin) / interval_ms;
            let end = origin.saturating_add((interval + 1).saturating_mul(interval_ms)).min(now_ms);
            let span = end - from;
            add_time(&mut track.total, track.activity, span);
            if let Some(times) = track.intervals.slot(interval, first) {
                add_time(times, track.activity, span);
            }
            from = end;
        }
    }

    /// Account every agent's time up to `now_ms` (call before reading agent times
    /// at the end of a run).
    pub fn flush(&mut self, now_ms: u64) {
        if self.origin_ms.is_some() {
            self.see(now_ms);
        }
        for index in 0..self.agents.len() {
            self.account(index, now_ms);
        }
    }

    /// Queue names in order.
    pub fn queue_names(&self) -> Vec<&str> {
        self.queues.iter().map(|q| q.name.as_str()).collect()
    }

    /// The department of queue `queue`.
    pub fn queue_department(&self, queue: usize) -> Option<&str> {
        self.queues.get(queue).map(|q| q.department.as_str())
    }

    /// The service-level threshold of queue `queue`, ms.
    pub fn queue_service_level_ms(&self, queue: usize) -> Option<u64> {
        self.queues.get(queue).map(|q| q.service_level_ms)
    }

    /// Cumulative counters of queue `queue`.
    pub fn queue_totals(&self, queue: usize) -> Option<&QueueCounters> {
        self.totals.get(queue)
    }

    /// Per-interval counters of queue `queue`: element `k` is interval
    /// [`Metrics::first_interval`]` + k` from [`Metrics::origin_ms`] (with every
    /// interval kept, element `k` is interval `k`). Ends at the latest interval
    /// the queue saw an item of.
    pub fn queue_intervals(&self, queue: usize) -> &[QueueCounters] {
        let first = self.window_first();
        self.intervals.get(queue).map(|s| s.view(first)).unwrap_or(&[])
    }

    /// Wait-time histogram of answered items of queue `queue`.
    pub fn wait_histogram(&self, queue: usize) -> &[u64] {
        self.wait_histograms.get(queue).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Cumulative counters of all queues of `department`.
    pub fn department_totals(&self, department: &str) -> QueueCounters {
        let mut sum = QueueCounters::default();
        for (meta, counters) in self.queues.iter().zip(&self.totals) {
            if meta.department == department {
                sum.add(counters);
            }
        }
        sum
    }

    /// Time totals of agent `agent`.
    pub fn agent_times(&self, agent: AgentId) -> Option<AgentTimes> {
        self.agents.get(agent.0.saturating_sub(1) as usize).map(|t| t.total)
    }

    /// Per-interval times of agent `agent`, numbered like
    /// [`Metrics::queue_intervals`].
    pub fn agent_intervals(&self, agent: AgentId) -> &[AgentTimes] {
        let first = self.window_first();
        self.agents.get(agent.0.saturating_sub(1) as usize).map(|t| t.intervals.view(first)).unwrap_or(&[])
    }

    /// The group of agent `agent`.
    pub fn agent_group(&self, agent: AgentId) -> Option<&str> {
        self.agents.get(agent.0.saturating_sub(1) as usize).map(|t| t.group.as_str())
    }

    /// Occupancy so far of `agent` (0 when unknown), as reported: after the
    /// warm-up. (The match table's occupancy is the router's own, counted from
    /// the start.)
    pub fn agent_occupancy(&self, agent: AgentId) -> f32 {
        self.agent_times(agent).and_then(|t| t.occupancy()).unwrap_or(0.0) as f32
    }

    /// When `agent`'s current activity was last accounted (its last activity
    /// change), for a router restoring its own occupancy from these figures.
    pub(crate) fn agent_since_ms(&self, agent: AgentId) -> Option<u64> {
        self.agents.get(agent.0.saturating_sub(1) as usize).map(|t| t.since_ms)
    }

    /// Case figures.
    pub fn cases(&self) -> &CaseFigures {
        &self.cases
    }

    /// Items sent to the exception queue.
    pub fn exceptions(&self) -> u64 {
        self.exceptions
    }

    /// Supervisor alerts raised.
    pub fn alerts(&self) -> u64 {
        self.alerts
    }

    /// Escalation steps taken.
    pub fn escalations(&self) -> u64 {
        self.escalations
    }
}

/// What [`Metrics`] holds, by queue name, for a router snapshot: restored into
/// statistics built for a configuration whose queues may be listed in another
/// order, added or removed (see [`Metrics::restore`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MetricsSnapshot {
    /// Settings that give the figures their meaning; a restore under other
    /// values is refused.
    interval_ms: u64,
    wait_bin_ms: u64,
    wait_bins: usize,
    origin_ms: Option<u64>,
    start_ms: u64,
    latest: u64,
    queues: Vec<QueueFigures>,
    agents: Vec<AgentTrack>,
    cases: CaseFigures,
    exceptions: u64,
    alerts: u64,
    escalations: u64,
}

/// One queue's figures in a [`MetricsSnapshot`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueueFigures {
    name: String,
    totals: QueueCounters,
    intervals: Series<QueueCounters>,
    wait_histogram: Vec<u64>,
}

impl Metrics {
    /// Everything the statistics hold, queues by name.
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            interval_ms: self.config.interval_ms,
            wait_bin_ms: self.config.wait_bin_ms,
            wait_bins: self.config.wait_bins,
            origin_ms: self.origin_ms,
            start_ms: self.start_ms,
            latest: self.latest,
            queues: self
                .queues
                .iter()
                .enumerate()
                .map(|(i, meta)| QueueFigures {
                    name: meta.name.clone(),
                    totals: self.totals[i].clone(),
                    intervals: self.intervals[i].clone(),
                    wait_histogram: self.wait_histograms[i].clone(),
                })
                .collect(),
            agents: self.agents.clone(),
            cases: self.cases.clone(),
            exceptions: self.exceptions,
            alerts: self.alerts,
            escalations: self.escalations,
        }
    }

    /// Take over the figures of `snapshot` into statistics just built (queues
    /// registered, no agent, no event yet). Queues are matched by name: a
    /// queue of the snapshot that is no longer registered loses its figures,
    /// a queue registered anew starts at zero; the registered queues keep
    /// their current thresholds. Refused (naming the setting) when the
    /// interval length, wait bins or a fixed origin differ from the
    /// snapshot's, since its figures would then be misread.
    pub(crate) fn restore(&mut self, snapshot: MetricsSnapshot) -> Result<(), String> {
        let config = &self.config;
        for (setting, was, is) in [
            ("interval_ms", snapshot.interval_ms, config.interval_ms),
            ("wait_bin_ms", snapshot.wait_bin_ms, config.wait_bin_ms),
            ("wait_bins", snapshot.wait_bins as u64, config.wait_bins as u64),
        ] {
            if was != is {
                return Err(format!("metrics.{setting} was {was} in the snapshot and is {is} now"));
            }
        }
        if let (Some(fixed), Some(was)) = (self.origin_ms, snapshot.origin_ms)
            && fixed != was
        {
            return Err(format!(
                "metrics.origin_ms: the snapshot's intervals start at {was}, the configuration fixes {fixed}"
            ));
        }
        if !self.agents.is_empty() {
            return Err("metrics already track agents".into());
        }
        self.origin_ms = self.origin_ms.or(snapshot.origin_ms);
        self.start_ms = snapshot.start_ms;
        self.latest = snapshot.latest;
        for figures in snapshot.queues {
            let Some(q) = self.queues.iter().position(|m| m.name == figures.name) else {
                continue;
            };
            if figures.wait_histogram.len() != self.wait_histograms[q].len() {
                return Err(format!(
                    "queue `{}`: wait histogram of {} bins",
                    figures.name,
                    figures.wait_histogram.len()
                ));
            }
            self.totals[q] = figures.totals;
            self.intervals[q] = figures.intervals;
            self.wait_histograms[q] = figures.wait_histogram;
        }
        self.agents = snapshot.agents;
        self.cases = snapshot.cases;
        self.exceptions = snapshot.exceptions;
        self.alerts = snapshot.alerts;
        self.escalations = snapshot.escalations;
        Ok(())
    }
}

fn add_time(times: &mut AgentTimes, activity: Activity, span: u64) {
    match activity {
        Activity::Busy => times.busy_ms += span,
        Activity::Idle => times.idle_ms += span,
        Activity::Away => times.away_ms += span,
        Activity::Offline => {}
    }
}

/// Push `value`, and once more than `2 * keep` values are held drop the oldest
/// down to `keep` (amortised O(1) per push).
fn push_bounded(values: &mut Vec<u64>, value: u64, keep: Option<usize>) {
    values.push(value);
    if let Some(keep) = keep
        && values.len() > keep.max(1).saturating_mul(2)
    {
        let excess = values.len() - keep.max(1);
        values.drain(..excess);
    }
}
