//! Per-plugin statistics and the circuit breaker.
//!
//! Every loaded plugin generation counts its calls per hook, its failures by
//! [`FailureKind`], the latency of each call in a fixed log-bucket histogram, and
//! the instances it had to make. [`PluginStats`] is a snapshot of all of it.
//!
//! The [`Breaker`] keeps a department on the built-in rules while its plugin keeps
//! failing: it opens after [`BreakerConfig::failures_to_open`] consecutive
//! failures, lets one trial call through once [`BreakerConfig::cooldown`] has
//! passed (half-open), and closes again on the first success. The time is passed
//! in, so the state machine is tested without sleeping.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use switchyard_contract::Hook;

/// Why a plugin's answer was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The call trapped (panic, unreachable, stack overflow, bad memory access).
    Trap,
    /// The call ran past its wall-clock deadline.
    Deadline,
    /// A resource limit: memory, table, instances, fuel or answer size.
    Limit,
    /// The answer broke the contract (length, NaN, unknown id, bad index).
    InvalidAnswer,
    /// The breaker was open; the plugin was not called.
    BreakerOpen,
}

impl FailureKind {
    /// Every kind, in the order of [`FailureCounts`].
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Trap,
        FailureKind::Deadline,
        FailureKind::Limit,
        FailureKind::InvalidAnswer,
        FailureKind::BreakerOpen,
    ];

    /// The kind of a plugin call error, if it is a plugin failure.
    pub fn of(error: &Error) -> Option<FailureKind> {
        Some(match error {
            Error::PluginTrap { .. } => FailureKind::Trap,
            Error::PluginDeadline { .. } => FailureKind::Deadline,
            Error::PluginLimit { .. } => FailureKind::Limit,
            Error::InvalidAnswer { .. } => FailureKind::InvalidAnswer,
            Error::BreakerOpen { .. } => FailureKind::BreakerOpen,
            _ => return None,
        })
    }

    /// Short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Deadline => "deadline",
            FailureKind::Limit => "limit",
            FailureKind::InvalidAnswer => "invalid-answer",
            FailureKind::BreakerOpen => "breaker-open",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Calls per hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct HookCounts {
    /// `prioritise` calls.
    pub prioritise: u64,
    /// `escalate` calls.
    pub escalate: u64,
    /// `match-agents` calls.
    pub match_agents: u64,
}

impl HookCounts {
    /// Sum over the hooks.
    pub fn total(&self) -> u64 {
        self.prioritise + self.escalate + self.match_agents
    }
}

/// Failures per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FailureCounts {
    /// Traps.
    pub trap: u64,
    /// Missed deadlines.
    pub deadline: u64,
    /// Limit hits (memory, fuel, table, answer size).
    pub limit: u64,
    /// Invalid answers.
    pub invalid_answer: u64,
    /// Calls refused because the breaker was open.
    pub breaker_open: u64,
}

impl FailureCounts {
    /// The count of `kind`.
    pub fn get(&self, kind: FailureKind) -> u64 {
        match kind {
            FailureKind::Trap => self.trap,
            FailureKind::Deadline => self.deadline,
            FailureKind::Limit => self.limit,
            FailureKind::InvalidAnswer => self.invalid_answer,
            FailureKind::BreakerOpen => self.breaker_open,
        }
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        FailureKind::ALL.iter().map(|&k| self.get(k)).sum()
    }
}

/// Number of latency buckets. Bucket `i` holds calls that took less than
/// `2^(i + 8)` ns (bucket 0: under 256 ns; the last: everything slower).
pub const LATENCY_BUCKETS: usize = 32;

/// Upper bound (exclusive) of latency bucket `i`.
pub fn bucket_bound(i: usize) -> Duration {
    Duration::from_nanos(1u64 << (i + 8).min(63))
}

fn bucket_of(latency: Duration) -> usize {
    let ns = latency.as_nanos().min(u128::from(u64::MAX)) as u64;
    let bits = 64 - ns.leading_zeros() as usize; // ns < 2^bits
    bits.saturating_sub(8).min(LATENCY_BUCKETS - 1)
}

/// A latency histogram with fixed power-of-two buckets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatencyHistogram {
    /// Calls per bucket; see [`bucket_bound`].
    pub buckets: Vec<u64>,
}

impl LatencyHistogram {
    /// Calls recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The bucket bound under which a share `q` (0.0-1.0) of the calls finished;
    /// `None` without calls. Precise to a factor of two.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_bound(i));
            }
        }
        Some(bucket_bound(LATENCY_BUCKETS - 1))
    }

    /// Median latency (bucket bound).
    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.50)
    }

    /// 99th percentile latency (bucket bound).
    pub fn p99(&self) -> Option<Duration> {
        self.quantile(0.99)
    }
}

/// A snapshot of one plugin generation's statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginStats {
    /// Plugin name.
    pub plugin: String,
    /// Generation.
    pub generation: u64,
    /// Calls made into the plugin, per hook (breaker refusals not included).
    pub calls: HookCounts,
    /// Failures per kind.
    pub failures: FailureCounts,
    /// Latency of plugin calls (including failed ones).
    pub latency: LatencyHistogram,
    /// Breaker state now.
    pub breaker: BreakerState,
    /// Instances made (the first at load, then one after every discarded instance
    /// or when concurrent callers need more).
    pub instances_created: u64,
    /// The most recent failure's reason.
    pub last_failure: Option<String>,
}

/// Live counters behind [`PluginStats`].
#[derive(Debug)]
pub(crate) struct StatsCell {
    /// Calls by hook and latency bucket: a hook's calls are the sum of its
    /// row, the histogram the sum of the columns, and a call costs one atomic
    /// increment instead of two.
    calls: [[AtomicU64; LATENCY_BUCKETS]; 3],
    failures: [AtomicU64; 5],
    pub instances_created: AtomicU64,
    last_failure: Mutex<Option<String>>,
}

impl Default for StatsCell {
    fn default() -> Self {
        StatsCell {
            calls: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            failures: Default::default(),
            instances_created: AtomicU64::new(0),
            last_failure: Mutex::new(None),
        }
    }
}

impl StatsCell {
    pub fn record_call(&self, hook: Hook, latency: Duration) {
        self.calls[hook as usize][bucket_of(latency)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_failure(&self, kind: FailureKind, reason: &str) {
        self.failures[kind as usize].fetch_add(1, Ordering::Relaxed);
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_owned());
    }

    pub fn snapshot(&self, plugin: &str, generation: u64, breaker: BreakerState) -> PluginStats {
        let c = |i: usize| self.calls[i].iter().map(|n| n.load(Ordering::Relaxed)).sum();
        let f = |i: usize| self.failures[i].load(Ordering::Relaxed);
        PluginStats {
            plugin: plugin.to_owned(),
            generation,
            calls: HookCounts { prioritise: c(0), escalate: c(1), match_agents: c(2) },
            failures: FailureCounts {
                trap: f(0),
                deadline: f(1),
                limit: f(2),
                invalid_answer: f(3),
                breaker_open: f(4),
            },
            latency: LatencyHistogram {
                buckets: (0..LATENCY_BUCKETS)
                    .map(|b| self.calls.iter().map(|hook| hook[b].load(Ordering::Relaxed)).sum())
                    .collect(),
            },
            breaker,
            instances_created: self.instances_created.load(Ordering::Relaxed),
            last_failure: self.last_failure.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker. Default 5: one bad item is not
    /// a bad plugin, five in a row are.
    pub failures_to_open: u32,
    /// How long the breaker stays open before one trial call. Default 30 s.
    #[serde(with = "secs")]
    pub cooldown: Duration,
}

mod secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(f64::deserialize(d)?.max(0.0)))
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { failures_to_open: 5, cooldown: Duration::from_secs(30) }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum BreakerState {
    /// Calls go to the plugin.
    Closed {
        /// Failures in a row so far.
        consecutive_failures: u32,
    },
    /// The built-in rules decide; the plugin is not called.
    Open {
        /// Failures in a row that opened it.
        consecutive_failures: u32,
    },
    /// The cooldown passed: one trial call is (or may be) in flight.
    HalfOpen,
}

/// What the breaker says about the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Call the plugin.
    Call,
    /// Call the plugin as the half-open trial.
    Trial,
    /// Do not call; the breaker is open after this many failures.
    Refuse(u32),
}

#[derive(Debug)]
struct BreakerInner {
    consecutive: u32,
    opened_at: Option<Instant>,
    trial_in_flight: bool,
}

/// A circuit breaker (see the module docs).
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<BreakerInner>,
    /// Closed with no failure since the last success: the state of almost every
    /// call, answered without the lock (written only under it).
    healthy: AtomicBool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            inner: Mutex::new(BreakerInner { consecutive: 0, opened_at: None, trial_in_flight: false }),
            healthy: AtomicBool::new(true),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a call go to the plugin now? Reads the clock only when the breaker
    /// is not healthy.
    pub fn admit_now(&self) -> Admission {
        if self.healthy.load(Ordering::Acquire) {
            return Admission::Call;
        }
        self.admit(Instant::now())
    }

    /// May a call go to the plugin at `now`?
    pub fn admit(&self, now: Instant) -> Admission {
        let mut inner = self.lock();
        match inner.opened_at {
            None => Admission::Call,
            Some(opened) if !inner.trial_in_flight && now.saturating_duration_since(opened) >= self.config.cooldown => {
                inner.trial_in_flight = true;
                Admission::Trial
            }
            Some(_) => Admission::Refuse(inner.consecutive),
        }
    }

    /// The plugin answered well: close.
    pub fn record_success(&self) {
        if self.healthy.load(Ordering::Acquire) {
            return;
        }
        let mut inner = self.lock();
        self.healthy.store(true, Ordering::Release);
        if inner.opened_at.is_some() {
            tracing::info!("circuit breaker closed after a successful trial call");
        }
        *inner = BreakerInner { consecutive: 0, opened_at: None, trial_in_flight: false };
    }

    /// The plugin failed at `now`; returns true when this failure opened the breaker.
    pub fn record_failure(&self, now: Instant) -> bool {
        let mut inner = self.lock();
        self.healthy.store(false, Ordering::Release);
        inner.consecutive = inner.consecutive.saturating_add(1);
        if inner.trial_in_flight {
            // The trial failed: open again for a full cooldown.
            inner.trial_in_flight = false;
            inner.opened_at = Some(now);
            return true;
        }
        if inner.opened_at.is_none() && inner.consecutive >= self.config.failures_to_open.max(1) {
            inner.opened_at = Some(now);
            return true;
        }
        false
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> BreakerState {
        let inner = self.lock();
        match inner.opened_at {
            None => BreakerState::Closed { consecutive_failures: inner.consecutive },
            Some(opened) if inner.trial_in_flight || now.saturating_duration_since(opened) >= self.config.cooldown => {
                BreakerState::HalfOpen
            }
            Some(_) => BreakerState::Open { consecutive_failures: inner.consecutive },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_n_failures_half_opens_after_cooldown_and_closes_on_success() {
        let breaker = Breaker::new(BreakerConfig { failures_to_open: 3, cooldown: Duration::from_secs(10) });
        let t0 = Instant::now();
        assert!(!breaker.record_failure(t0));
        assert!(!breaker.record_failure(t0));
        assert_eq!(breaker.state(t0), BreakerState::Closed { consecutive_failures: 2 });
        assert!(breaker.record_failure(t0), "the third failure opens it");
        assert_eq!(breaker.admit(t0 + Duration::from_secs(9)), Admission::Refuse(3));
        assert_eq!(breaker.state(t0 + Duration::from_secs(9)), BreakerState::Open { consecutive_failures: 3 });
        let later = t0 + Duration::from_secs(10);
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);
        assert_eq!(breaker.admit(later), Admission::Trial);
        assert_eq!(breaker.admit(later), Admission::Refuse(3), "only one trial at a time");
        breaker.record_success();
        assert_eq!(breaker.state(later), BreakerState::Closed { consecutive_failures: 0 });
        assert_eq!(breaker.admit(later), Admission::Call);
    }

    #[test]
    fn a_failed_trial_reopens_for_a_full_cooldown() {
        let breaker = Breaker::new(BreakerConfig { failures_to_open: 1, cooldown: Duration::from_secs(5) });
        let t0 = Instant::now();
        assert!(breaker.record_failure(t0));
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(breaker.admit(t1), Admission::Trial);
        assert!(breaker.record_failure(t1));
        assert_eq!(breaker.admit(t1 + Duration::from_secs(4)), Admission::Refuse(2));
        assert_eq!(breaker.admit(t1 + Duration::from_secs(5)), Admission::Trial);
    }

    #[test]
    fn histogram_quantiles_come_from_log_buckets() {
        let cell = StatsCell::default();
        for _ in 0..98 {
            cell.record_call(Hook::Prioritise, Duration::from_nanos(900)); // < 1024 ns
        }
        cell.record_call(Hook::Match, Duration::from_micros(40)); // < 65 536 ns
        cell.record_call(Hook::Match, Duration::from_millis(60)); // < 2^26 ns
        let stats = cell.snapshot("p", 1, BreakerState::Closed { consecutive_failures: 0 });
        assert_eq!(stats.calls, HookCounts { prioritise: 98, escalate: 0, match_agents: 2 });
        assert_eq!(stats.latency.count(), 100);
        assert_eq!(stats.latency.p50(), Some(Duration::from_nanos(1024)));
        assert_eq!(stats.latency.p99(), Some(Duration::from_nanos(65_536)));
        assert_eq!(stats.latency.quantile(1.0), Some(Duration::from_nanos(1 << 26)));
    }
}
