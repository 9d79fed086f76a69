//! Shadow mode: a candidate generation runs beside the active one on live
//! traffic. The department's [`RuleSet`] handle from
//! [`ReloadManager::rules`](crate::reload::ReloadManager::rules) asks the active
//! rules first (that answer is the one returned and applied), then the shadow,
//! and tallies per hook how often they agree and how they differ (priority,
//! queue, best agent, ranking, escalation actions, recheck time), with both
//! sides' latency and the shadow's failures. Ops read the evidence with
//! [`ReloadManager::shadow_report`](crate::reload::ReloadManager::shadow_report)
//! and promote with one call.
//!
//! The shadow is called on the deciding thread, after the active answer is
//! computed: while a shadow runs, the department pays for two plugin calls per
//! decision. Its own limits and breaker bound that cost; a shadow that fails is
//! counted, never applied.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use switchyard_contract::{CandidateTable, Escalation, ItemBatch, MatchResult, Priority};

use crate::plugin::Plugin;
use crate::stats::Admission;
use switchyard_core::rules::{BuiltInRules, Decided, RuleSet};

/// Disagreement samples kept per shadow (the latest).
const SAMPLES: usize = 20;

/// Quarter-octave buckets over nanoseconds: bucket of `v` ≥ 4 is
/// `4·⌊log2 v⌋ + (the two bits below the leading one)`.
const BUCKETS: usize = 256;

/// A lock-free latency histogram (quarter-octave buckets, ≤ 19 % relative error).
struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    total_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < 4 {
        return ns as usize;
    }
    let octave = 63 - ns.leading_zeros() as usize;
    let sub = ((ns >> (octave - 2)) & 3) as usize;
    (octave * 4 + sub).min(BUCKETS - 1)
}

/// The largest value that falls in `bucket`.
fn bucket_top(bucket: usize) -> u64 {
    if bucket < 4 {
        return bucket as u64;
    }
    let octave = bucket / 4;
    let sub = (bucket % 4) as u64;
    let base = 1u64 << octave;
    let step = base >> 2;
    base.saturating_add(step.saturating_mul(sub + 1)).saturating_sub(1)
}

impl Histogram {
    fn record(&self, took: Duration) {
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_ns.fetch_add(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    fn quantile_ns(&self, counts: &[u64], total: u64, q: f64) -> u64 {
        let rank = ((total as f64 * q).ceil() as u64).clamp(1, total.max(1));
        let mut seen = 0;
        for (bucket, &n) in counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_top(bucket);
            }
        }
        0
    }

    fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return LatencySummary::default();
        }
        let us = |ns: u64| ns as f64 / 1e3;
        let max = self.max_ns.load(Ordering::Relaxed);
        LatencySummary {
            count,
            mean_us: us(self.total_ns.load(Ordering::Relaxed)) / count as f64,
            p50_us: us(self.quantile_ns(&counts, count, 0.50).min(max)),
            p99_us: us(self.quantile_ns(&counts, count, 0.99).min(max)),
            max_us: us(max),
        }
    }
}

/// Latency of one side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencySummary {
    /// Calls measured.
    pub count: u64,
    /// Mean, microseconds.
    pub mean_us: f64,
    /// Median, microseconds (histogram bucket bound: within 19 %).
    pub p50_us: f64,
    /// 99th percentile, microseconds (histogram bucket bound: within 19 %).
    pub p99_us: f64,
    /// Slowest call, microseconds.
    pub max_us: f64,
}

/// How decisions differed, counted once per decision per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Differences {
    /// Prioritise: some item got another priority.
    pub priority: u64,
    /// Prioritise: some item was moved to another queue (or not moved).
    pub queue: u64,
    /// Match: another best agent (or nobody on one side).
    pub best_agent: u64,
    /// Match: same best agent, another order of the rest.
    pub ranking: u64,
    /// Escalate: some item got other actions.
    pub actions: u64,
    /// Escalate: some item gets rechecked at another time.
    pub recheck: u64,
}

/// The comparison for one hook.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct HookReport {
    /// Decisions the shadow answered (failures excluded).
    pub decisions: u64,
    /// ... that were the same as the active rules' answer.
    pub agreed: u64,
    /// ... that differed.
    pub disagreed: u64,
    /// How they differed.
    pub differences: Differences,
    /// Calls where the shadow trapped, missed its deadline, hit a limit or
    /// answered against the contract (or its breaker was open).
    pub failures: u64,
    /// The shadow's latency.
    pub shadow_latency: LatencySummary,
    /// The active rules' latency on the same decisions.
    pub active_latency: LatencySummary,
}

/// Evidence for or against promoting a shadow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowReport {
    /// Department.
    pub department: String,
    /// The shadow's generation.
    pub generation: u64,
    /// SHA-256 of its component.
    pub sha256: String,
    /// How long it has run, milliseconds.
    pub running_ms: u64,
    /// `prioritise` decisions.
    pub prioritise: HookReport,
    /// `escalate` decisions.
    pub escalate: HookReport,
    /// `match-agents` decisions.
    pub match_agents: HookReport,
    /// The latest failure of the shadow, if any.
    pub last_failure: Option<String>,
    /// The latest disagreements, described (oldest first).
    pub samples: Vec<String>,
    /// The latest disagreements as examples: the item and both answers (oldest
    /// first, at most one per decision).
    pub examples: Vec<Example>,
}

/// One decision on which the shadow disagreed with the active rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// `prioritise`, `escalate` or `match`.
    pub hook: &'static str,
    /// The item decided (the first one that differed in a batch).
    pub item: ExampleItem,
    /// The active rules' answer for it (the one applied).
    pub active: String,
    /// The shadow's answer for it.
    pub shadow: String,
}

/// The item of an [`Example`], as the plugins saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExampleItem {
    /// Item id.
    pub id: u64,
    /// Queue id (interned).
    pub queue: u32,
    /// Channel.
    pub channel: switchyard_contract::Channel,
    /// Customer tier.
    pub tier: switchyard_contract::Tier,
    /// Priority before the decision.
    pub priority: i32,
    /// Age, ms.
    pub age_ms: u64,
    /// Contacts of the customer so far.
    pub contacts: u16,
}

impl ExampleItem {
    fn of(items: &ItemBatch, index: usize) -> Option<ExampleItem> {
        let item = items.get(index)?;
        Some(ExampleItem {
            id: item.id(),
            queue: item.queue().0,
            channel: item.channel(),
            tier: item.tier(),
            priority: item.priority(),
            age_ms: item.age_ms(),
            contacts: item.contacts(),
        })
    }
}

#[derive(Default)]
struct Tally {
    decisions: AtomicU64,
    agreed: AtomicU64,
    disagreed: AtomicU64,
    failures: AtomicU64,
    priority: AtomicU64,
    queue: AtomicU64,
    best_agent: AtomicU64,
    ranking: AtomicU64,
    actions: AtomicU64,
    recheck: AtomicU64,
    shadow_latency: Histogram,
    active_latency: Histogram,
}

impl Tally {
    fn report(&self) -> HookReport {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HookReport {
            decisions: get(&self.decisions),
            agreed: get(&self.agreed),
            disagreed: get(&self.disagreed),
            differences: Differences {
                priority: get(&self.priority),
                queue: get(&self.queue),
                best_agent: get(&self.best_agent),
                ranking: get(&self.ranking),
                actions: get(&self.actions),
                recheck: get(&self.recheck),
            },
            failures: get(&self.failures),
            shadow_latency: self.shadow_latency.summary(),
            active_latency: self.active_latency.summary(),
        }
    }
}

/// A candidate generation running in shadow, and its tallies.
pub(crate) struct Shadow {
    pub(crate) plugin: Arc<Plugin>,
    started: Instant,
    prioritise: Tally,
    escalate: Tally,
    matching: Tally,
    samples: Mutex<VecDeque<String>>,
    examples: Mutex<VecDeque<Example>>,
    last_failure: Mutex<Option<String>>,
}

impl Shadow {
    pub(crate) fn new(plugin: Arc<Plugin>) -> Shadow {
        Shadow {
            plugin,
            started: Instant::now(),
            prioritise: Tally::default(),
            escalate: Tally::default(),
            matching: Tally::default(),
            samples: Mutex::new(VecDeque::new()),
            examples: Mutex::new(VecDeque::new()),
            last_failure: Mutex::new(None),
        }
    }

    pub(crate) fn report(&self) -> ShadowReport {
        ShadowReport {
            department: self.plugin.department().to_owned(),
            generation: self.plugin.generation(),
            sha256: self.plugin.load_report().sha256.clone(),
            running_ms: self.started.elapsed().as_millis() as u64,
            prioritise: self.prioritise.report(),
            escalate: self.escalate.report(),
            match_agents: self.matching.report(),
            last_failure: self.last_failure.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            samples: self.samples.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect(),
            examples: self.examples.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect(),
        }
    }

    fn sample(&self, text: String) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(text);
    }

    /// Ask the shadow; `None` (counted as a failure) when it cannot answer.
    fn ask<T>(
        &self,
        tally: &Tally,
        built_in: impl FnOnce() -> T,
        call: impl FnOnce(&Plugin) -> crate::Result<Option<T>>,
    ) -> Option<T> {
        let plugin = &self.plugin;
        if let Admission::Refuse(failures) = plugin.breaker().admit(Instant::now()) {
            tally.failures.fetch_add(1, Ordering::Relaxed);
            *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("circuit breaker open after {failures} consecutive failures"));
            return None;
        }
        let started = Instant::now();
        let answer = call(plugin);
        tally.shadow_latency.record(started.elapsed());
        match answer {
            Ok(Some(value)) => {
                plugin.breaker().record_success();
                Some(value)
            }
            Ok(None) => Some(built_in()),
            Err(error) => {
                plugin.breaker().record_failure(Instant::now());
                tally.failures.fetch_add(1, Ordering::Relaxed);
                *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
                None
            }
        }
    }

    fn example(&self, hook: &'static str, items: &ItemBatch, index: usize, active: String, shadow: String) {
        let Some(item) = ExampleItem::of(items, index) else { return };
        let mut examples = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if examples.len() == SAMPLES {
            examples.pop_front();
        }
        examples.push_back(Example { hook, item, active, shadow });
    }

    fn settle(&self, tally: &Tally, problems: Vec<String>, hook: &str) {
        tally.decisions.fetch_add(1, Ordering::Relaxed);
        if problems.is_empty() {
            tally.agreed.fetch_add(1, Ordering::Relaxed);
        } else {
            tally.disagreed.fetch_add(1, Ordering::Relaxed);
            self.sample(format!("{hook}: {}", problems.join("; ")));
        }
    }

    fn prioritise(&self, items: &ItemBatch, active: &[Priority], active_took: Duration) {
        let tally = &self.prioritise;
        tally.active_latency.record(active_took);
        let Some(shadow) = self.ask(tally, || BuiltInRules::prioritise(items), |p| p.prioritise(items)) else {
            return;
        };
        let mut problems = Vec::new();
        let (mut priority, mut queue) = (false, false);
        for (i, (a, s)) in active.iter().zip(&shadow).enumerate() {
            if a.priority != s.priority {
                priority = true;
                problems.push(format!("item {i}: priority {} (active) vs {} (shadow)", a.priority, s.priority));
            }
            if a.queue != s.queue {
                queue = true;
                problems.push(format!("item {i}: queue {:?} (active) vs {:?} (shadow)", a.queue, s.queue));
            }
        }
        if active.len() != shadow.len() {
            priority = true;
            problems.push(format!("{} answers (active) vs {} (shadow)", active.len(), shadow.len()));
        }
        if let Some(i) = active.iter().zip(&shadow).position(|(a, s)| a.priority != s.priority || a.queue != s.queue) {
            self.example("prioritise", items, i, format!("{:?}", active[i]), format!("{:?}", shadow[i]));
        }
        if priority {
            tally.priority.fetch_add(1, Ordering::Relaxed);
        }
        if queue {
            tally.queue.fetch_add(1, Ordering::Relaxed);
        }
        self.settle(tally, problems, "prioritise");
    }

    fn escalate(&self, items: &ItemBatch, active: &[Escalation], active_took: Duration) {
        let tally = &self.escalate;
        tally.active_latency.record(active_took);
        let Some(shadow) = self.ask(tally, || BuiltInRules::escalate(items), |p| p.escalate(items)) else {
            return;
        };
        let mut problems = Vec::new();
        let (mut actions, mut recheck) = (false, false);
        for (i, (a, s)) in active.iter().zip(&shadow).enumerate() {
            if a.actions != s.actions {
                actions = true;
                problems.push(format!("item {i}: actions {:?} (active) vs {:?} (shadow)", a.actions, s.actions));
            }
            if a.recheck_in_ms != s.recheck_in_ms {
                recheck = true;
                problems.push(format!(
                    "item {i}: recheck {:?} ms (active) vs {:?} ms (shadow)",
                    a.recheck_in_ms, s.recheck_in_ms
                ));
            }
        }
        if active.len() != shadow.len() {
            actions = true;
            problems.push(format!("{} answers (active) vs {} (shadow)", active.len(), shadow.len()));
        }
        if let Some(i) =
            active.iter().zip(&shadow).position(|(a, s)| a.actions != s.actions || a.recheck_in_ms != s.recheck_in_ms)
        {
            self.example("escalate", items, i, format!("{:?}", active[i]), format!("{:?}", shadow[i]));
        }
        if actions {
            tally.actions.fetch_add(1, Ordering::Relaxed);
        }
        if recheck {
            tally.recheck.fetch_add(1, Ordering::Relaxed);
        }
        self.settle(tally, problems, "escalate");
    }

    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable, active: &MatchResult, active_took: Duration) {
        let tally = &self.matching;
        tally.active_latency.record(active_took);
        let Some(shadow) =
            self.ask(tally, || BuiltInRules::match_agents(item, candidates), |p| p.match_agents(item, candidates))
        else {
            return;
        };
        let mut problems = Vec::new();
        let id = |index: Option<usize>| index.and_then(|i| candidates.get(i)).map(|c| c.id());
        let (a_best, s_best) = (active.best(), shadow.best());
        if a_best != s_best {
            tally.best_agent.fetch_add(1, Ordering::Relaxed);
            problems.push(format!("best agent {:?} (active) vs {:?} (shadow)", id(a_best), id(s_best)));
        } else if active.ranking() != shadow.ranking() {
            tally.ranking.fetch_add(1, Ordering::Relaxed);
            problems.push(format!("ranking {:?} (active) vs {:?} (shadow)", active.ranking(), shadow.ranking()));
        }
        if !problems.is_empty() {
            let answer = |m: &MatchResult| format!("best {:?}, ranking {:?}", id(m.best()), m.ranking());
            self.example("match", item, 0, answer(active), answer(&shadow));
        }
        self.settle(tally, problems, "match");
    }
}

/// The department's rules with the shadow (if any) beside them.
pub(crate) struct ShadowedRules {
    pub(crate) active: Arc<dyn RuleSet>,
    pub(crate) shadow: Arc<ArcSwapOption<Shadow>>,
}

impl RuleSet for ShadowedRules {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        let Some(shadow) = self.shadow.load_full() else {
            return self.active.prioritise(items);
        };
        let started = Instant::now();
        let decided = self.active.prioritise(items);
        shadow.prioritise(items, &decided.value, started.elapsed());
        decided
    }

    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        let Some(shadow) = self.shadow.load_full() else {
            return self.active.escalate(items);
        };
        let started = Instant::now();
        let decided = self.active.escalate(items);
        shadow.escalate(items, &decided.value, started.elapsed());
        decided
    }

    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        let Some(shadow) = self.shadow.load_full() else {
            return self.active.match_agents(item, candidates);
        };
        let started = Instant::now();
        let decided = self.active.match_agents(item, candidates);
        shadow.match_agents(item, candidates, &decided.value, started.elapsed());
        decided
    }

    fn calls_plugin(&self, hook: switchyard_contract::Hook) -> bool {
        // A shadow runs beside the active rules on every call.
        self.active.calls_plugin(hook) || self.shadow.load().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values() {
        for ns in [0u64, 1, 3, 4, 5, 7, 8, 100, 1_000, 12_345, 1 << 40] {
            let b = bucket_of(ns);
            assert!(bucket_top(b) >= ns, "{ns} above the top of its bucket {b}");
            if b > 0 {
                assert!(bucket_top(b - 1) < ns, "{ns} fits the bucket below {b}");
            }
        }
    }

    #[test]
    fn quantiles_come_from_the_recorded_values() {
        let h = Histogram::default();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert!((50.0..=60.0).contains(&s.p50_us), "p50 {}", s.p50_us);
        assert!((99.0..=100.0).contains(&s.p99_us), "p99 {}", s.p99_us);
        assert_eq!(s.max_us, 100.0);
    }
}
