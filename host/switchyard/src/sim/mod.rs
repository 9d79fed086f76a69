//! The discrete-event simulator behind `switchyard simulate`: the real routing
//! core (and the departments' real rules) on a [`VirtualClock`], fed by Poisson
//! arrivals, handle-time and patience distributions and agent rosters with
//! shifts.
//!
//! The event loop keeps one heap of its own events (arrivals, ends of work,
//! abandons, shifts, samples) and asks the router for its next deadline (offer
//! timeouts, escalation rechecks, end of after-work); whichever is earlier runs
//! next. Agents accept offers at once. Every random stream (arrivals, work,
//! patience, outcomes — per arrival stream) has its own seed derived from the
//! scenario's, so a run is reproducible and one stream's draws do not shift
//! another's.
//!
//! A run can record its traffic ([`SimOptions::record_traffic`]: every arrival
//! and what became of it, [`traffic`]) and a run can replay recorded traffic
//! instead of drawing arrivals ([`SimOptions::traffic`]): the backtest of a
//! rule change runs the same traffic under other rules.

pub mod backtest;
pub mod dist;
pub mod erlang;
pub mod plugins;
pub mod scenario;
pub mod traffic;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, RwLock};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchyard_contract::Catalog;

use crate::error::Result;
use dist::Sampler;
use scenario::{HandoffDef, Scenario};
use switchyard_core::clock::{Clock, VirtualClock};
use switchyard_core::metrics::MetricsConfig;
use switchyard_core::router::{
    AgentId, AgentSpec, Completion, DepartmentSpec, Event, HandOff, ItemId, ItemStatus, Limits, NewWorkItem, Presence,
    QueueSpec, Retention, Router, RouterOptions,
};
use switchyard_core::rules::{RuleSet, SharedCatalog};

fn secs_to_ms(s: f64) -> u64 {
    (s * 1000.0).round().max(0.0) as u64
}

/// SplitMix64: turns the scenario seed and a stream number into well-spread
/// sub-seeds.
fn sub_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SimEvent {
    Arrival { stream: u32 },
    Callback { stream: u32, customer: u64 },
    Complete { item: u64, generation: u32 },
    Abandon { item: u64 },
    ShiftStart { agent: u64 },
    ShiftEnd { agent: u64 },
    Sample,
    Replayed { index: u32 },
}

struct Stream {
    queue: String,
    department: String,
    rate_per_ms: f64,
    profile: Option<Vec<f64>>,
    next_at: f64,
    arrivals: StdRng,
    work: StdRng,
    patience: StdRng,
    outcomes: StdRng,
    handle: Sampler,
    /// Handle times of the hand-off chain, by depth (1 = first hand-off).
    handoff_handle: Vec<Sampler>,
    patience_dist: Option<Sampler>,
    callback: Option<Sampler>,
    next_customer: u64,
    needs_customer: bool,
}

struct SimItem {
    stream: u32,
    /// 0 = the arrival itself, n = the n-th hand-off of it.
    depth: u32,
    remaining_ms: u64,
    started_ms: u64,
    generation: u32,
    customer: Option<u64>,
    /// Its arrival in the recording ([`Sim::recording`]) or in the replayed
    /// traffic: the arrival's index.
    arrival: Option<usize>,
}

/// Queue lengths sampled over the run (for the report's plots).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Samples {
    /// Sample times, seconds from the start.
    pub t_s: Vec<f64>,
    /// Waiting items per queue (queue order), one entry per sample.
    pub queue_lengths: Vec<Vec<usize>>,
}

/// The outcome of a run: the router (with its statistics) and what the
/// simulator recorded around it.
pub struct SimRun {
    /// The scenario as run.
    pub scenario: Scenario,
    /// The seed used.
    pub seed: u64,
    /// The router after the run (statistics in [`Router::metrics`]).
    pub router: Router,
    /// Sampled queue lengths.
    pub samples: Samples,
    /// Items created by arrivals, call-backs and hand-offs.
    pub items_created: u64,
    /// Simulator events processed (router events not included).
    pub events: u64,
    /// The traffic of the run, if [`SimOptions::record_traffic`] asked for it.
    pub traffic: Vec<traffic::Arrival>,
    /// With the traffic: what the rules made of each arrival (its queue and
    /// priority once created), in the same order.
    pub decided: Vec<Decided>,
}

/// What the rules made of an arrival when it was created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decided {
    /// The queue it was placed in (the exception queue: `None`).
    pub queue: Option<String>,
    /// Its priority.
    pub priority: i32,
    /// The prioritise rule's reason, if it gave one.
    pub reason: Option<String>,
}

impl std::fmt::Debug for SimRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimRun").field("seed", &self.seed).field("items_created", &self.items_created).finish()
    }
}

/// Options of one run.
#[derive(Default)]
pub struct SimOptions<'a> {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Rule sets per department (from plugins); departments not listed use the
    /// built-in rules.
    pub rules: Vec<(String, Arc<dyn RuleSet>)>,
    /// The catalog the rules were built with (a fresh one if `None`).
    pub catalog: Option<SharedCatalog>,
    /// Called now and then with (simulated ms so far, total ms).
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    /// Record every arrival and what became of it ([`SimRun::traffic`]).
    pub record_traffic: bool,
    /// Replay these arrivals instead of the scenario's arrival streams. An
    /// arrival's recorded outcome gives its handle time, resolution, hand-offs
    /// and abandonment; an arrival answered in the recording never abandons
    /// (its patience is unknown but outlasted its wait). What the recording
    /// lacks is drawn from the scenario's stream for the arrival's queue and
    /// channel (handle time, patience of an arrival still waiting when the
    /// recording ended); rosters and shifts are the scenario's. Call-backs are
    /// arrivals of their own in a recording, so none are drawn.
    pub traffic: Option<Vec<traffic::Arrival>>,
    /// Asked now and then; `true` stops the run with an error (the daemon's
    /// backtests: cancelled, or over their time limit).
    pub stop: Option<&'a (dyn Fn() -> bool + Sync)>,
}

/// Build the router for `scenario` on `clock`.
pub fn build_router(scenario: &Scenario, clock: Arc<dyn Clock>, catalog: SharedCatalog) -> Result<Router> {
    let departments = scenario
        .departments
        .iter()
        .map(|d| {
            let mut spec = DepartmentSpec::new(&d.name);
            if let Some(s) = d.offer_timeout_s {
                spec.offer_timeout_ms = secs_to_ms(s);
            }
            if let Some(s) = d.reoffer_block_s {
                spec.reoffer_block_ms = secs_to_ms(s);
            }
            if let Some(s) = d.fcr_window_s {
                spec.fcr_window_ms = secs_to_ms(s);
            }
            spec
        })
        .collect();
    let queues = scenario
        .queues
        .iter()
        .map(|q| QueueSpec {
            name: q.name.clone(),
            department: q.department.clone(),
            skill: q.skill.clone(),
            service_level_ms: secs_to_ms(q.service_level_s),
            short_abandon_ms: secs_to_ms(q.short_abandon_s),
        })
        .collect();
    let options = RouterOptions {
        keep_events: true,
        metrics: MetricsConfig {
            measure_from_ms: secs_to_ms(scenario.warmup_s),
            interval_ms: secs_to_ms(scenario.interval_s).max(1),
            ..MetricsConfig::default()
        }
        // A run is bounded and its report shows every interval from 0.
        .unbounded(),
        // Keep what the report reads, and rechecks as the rules ask (the run's
        // virtual clock has no tick to floor them to).
        retention: Retention::unbounded(),
        limits: Limits { rechecks_per_item: u32::MAX, ..Limits::default() },
        tick_floor_ms: 1,
    };
    Ok(Router::new(departments, queues, clock, catalog, options)?)
}

struct Sim<'a> {
    clock: VirtualClock,
    router: Router,
    streams: Vec<Stream>,
    handoffs: Vec<Vec<HandoffDef>>,
    items: HashMap<u64, SimItem>,
    heap: BinaryHeap<Reverse<(u64, u64, SimEvent)>>,
    seq: u64,
    pending: Vec<Event>,
    samples: Samples,
    sample_ms: u64,
    end_ms: u64,
    interval_ms: u64,
    items_created: u64,
    scenario: &'a Scenario,
    /// What is being recorded ([`SimOptions::record_traffic`]).
    recording: Option<Vec<traffic::Arrival>>,
    /// With the recording: what the rules made of each arrival.
    decided: Vec<Decided>,
    /// What is being replayed ([`SimOptions::traffic`]), with the stream each
    /// arrival draws what it lacks from.
    replay: Option<Vec<(traffic::Arrival, Option<u32>)>>,
}

/// Run `scenario`.
pub fn simulate(scenario: &Scenario, options: SimOptions<'_>) -> Result<SimRun> {
    let seed = options.seed.unwrap_or(scenario.seed);
    let clock = VirtualClock::new(0);
    let catalog = options.catalog.unwrap_or_else(|| Arc::new(RwLock::new(Catalog::default())));
    let mut router = build_router(scenario, Arc::new(clock.clone()), catalog)?;
    for (department, rules) in options.rules {
        router.set_rules(&department, rules)?;
    }
    let interval_ms = secs_to_ms(scenario.interval_s).max(1);
    let mut streams = Vec::new();
    let mut handoffs = Vec::new();
    for (i, a) in scenario.arrivals.iter().enumerate() {
        let department =
            scenario.queues.iter().find(|q| q.name == a.queue).map(|q| q.department.clone()).unwrap_or_default();
        let s = i as u64 * 8;
        let mut chain = Vec::new();
        let mut h = a.handoff.as_ref();
        while let Some(def) = h {
            chain.push(def.clone());
            h = def.then.as_deref();
        }
        streams.push(Stream {
            queue: a.queue.clone(),
            department,
            rate_per_ms: a.per_hour / 3_600_000.0,
            profile: a.profile.clone(),
            next_at: 0.0,
            arrivals: StdRng::seed_from_u64(sub_seed(seed, s)),
            work: StdRng::seed_from_u64(sub_seed(seed, s + 1)),
            patience: StdRng::seed_from_u64(sub_seed(seed, s + 2)),
            outcomes: StdRng::seed_from_u64(sub_seed(seed, s + 3)),
            handle: a.handle_time.sampler(),
            handoff_handle: chain.iter().map(|h| h.handle_time.sampler()).collect(),
            patience_dist: a.patience.map(|p| p.sampler()),
            callback: a.callback_after.map(|p| p.sampler()),
            next_customer: 0,
            needs_customer: a.resolve_share < 1.0 || a.handoff.is_some(),
        });
        handoffs.push(chain);
    }
    let mut sim = Sim {
        clock,
        router,
        streams,
        handoffs,
        items: HashMap::new(),
        heap: BinaryHeap::new(),
        seq: 0,
        pending: Vec::new(),
        samples: Samples::default(),
        sample_ms: secs_to_ms(scenario.sample_s).max(1),
        end_ms: secs_to_ms(scenario.duration_s),
        interval_ms,
        items_created: 0,
        scenario,
        recording: options.record_traffic.then(Vec::new),
        decided: Vec::new(),
        replay: None,
    };
    sim.roster()?;
    match options.traffic {
        Some(arrivals) => sim.schedule_replay(arrivals)?,
        None => {
            for stream in 0..sim.streams.len() {
                sim.schedule_arrival(stream as u32);
            }
        }
    }
    sim.push(0, SimEvent::Sample);
    let events = sim.run(options.progress, options.stop)?;
    let end_ms = sim.end_ms;
    sim.router.metrics_mut().flush(end_ms);
    Ok(SimRun {
        scenario: scenario.clone(),
        seed,
        router: sim.router,
        samples: sim.samples,
        items_created: sim.items_created,
        events,
        traffic: sim.recording.unwrap_or_default(),
        decided: sim.decided,
    })
}

impl Sim<'_> {
    fn push(&mut self, at_ms: u64, event: SimEvent) {
        self.seq += 1;
        self.heap.push(Reverse((at_ms, self.seq, event)));
    }

    fn roster(&mut self) -> Result<()> {
        let scenario = self.scenario;
        for (g, def) in scenario.agents.iter().enumerate() {
            let group = def.name.clone().unwrap_or_else(|| format!("group-{}", g + 1));
            for n in 0..def.count {
                let spec = AgentSpec {
                    name: format!("{group}-{}", n + 1),
                    group: group.clone(),
                    skills: def.skills.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    capacity: def.capacity,
                    wrap_up_ms: secs_to_ms(def.wrap_up_s),
                };
                let id = self.router.register_agent(spec)?;
                if def.shifts.is_empty() {
                    self.router.set_agent_state(id, Presence::Available)?;
                } else {
                    for shift in &def.shifts {
                        self.push(secs_to_ms(shift.start_s), SimEvent::ShiftStart { agent: id.0 });
                        self.push(secs_to_ms(shift.end_s), SimEvent::ShiftEnd { agent: id.0 });
                    }
                }
            }
        }
        self.drain()
    }

    /// Draw the next arrival of `stream` after its last one (piecewise-constant
    /// rate: a draw that crosses an interval boundary restarts there, which is
    /// exact for a Poisson process).
    fn schedule_arrival(&mut self, stream: u32) {
        let interval = self.interval_ms as f64;
        let end = self.end_ms as f64;
        let s = &mut self.streams[stream as usize];
        let mut t = s.next_at;
        let at = loop {
            if t >= end {
                return;
            }
            let (multiplier, boundary) = match &s.profile {
                Some(p) if !p.is_empty() => {
                    let k = (t / interval).floor();
                    (p[(k as usize) % p.len()], (k + 1.0) * interval)
                }
                _ => (1.0, f64::INFINITY),
            };
            let rate = s.rate_per_ms * multiplier;
            if rate <= 0.0 {
                if boundary.is_infinite() {
                    return;
                }
                t = boundary;
                continue;
            }
            let u: f64 = s.arrivals.random();
            let candidate = t - (1.0 - u).ln() / rate;
            if candidate < boundary {
                break candidate;
            }
            t = boundary;
        };
        s.next_at = at;
        if at < end {
            self.push(at.round() as u64, SimEvent::Arrival { stream });
        }
    }

    fn run(
        &mut self,
        mut progress: Option<&mut dyn FnMut(u64, u64)>,
        stop: Option<&(dyn Fn() -> bool + Sync)>,
    ) -> Result<u64> {
        let mut count = 0u64;
        loop {
            let next_event = self.heap.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self.router.next_deadline();
            let run_timer = match (next_timer, next_event) {
                (Some(t), Some(e)) => t <= e,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let at = if run_timer { next_timer } else { next_event }.unwrap_or(u64::MAX);
            if at > self.end_ms {
                break;
            }
            self.clock.set(at);
            if run_timer {
                self.router.on_tick();
            } else if let Some(Reverse((_, _, event))) = self.heap.pop() {
                count += 1;
                self.handle(event)?;
            }
            self.drain()?;
            if count.is_multiple_of(16_384)
                && let Some(p) = progress.as_mut()
            {
                p(at, self.end_ms);
            }
            if count.is_multiple_of(64) && stop.is_some_and(|stop| stop()) {
                return Err(crate::error::Error::Invalid(format!(
                    "the run was stopped at {:.1} h of {:.1} h simulated",
                    at as f64 / 3_600_000.0,
                    self.end_ms as f64 / 3_600_000.0
                )));
            }
        }
        self.clock.set(self.end_ms);
        if let Some(p) = progress.as_mut() {
            p(self.end_ms, self.end_ms);
        }
        Ok(count)
    }

    fn new_item(&mut self, stream: u32, customer: Option<u64>) -> Result<()> {
        let scenario = self.scenario;
        let def = &scenario.arrivals[stream as usize];
        let s = &mut self.streams[stream as usize];
        let customer = customer.or_else(|| {
            s.needs_customer.then(|| {
                s.next_customer += 1;
                s.next_customer
            })
        });
        let handle_ms = s.handle.sample_ms(&mut s.work);
        let patience_ms = s.patience_dist.map(|p| p.sample_ms(&mut s.patience));
        let new = NewWorkItem {
            department: s.department.clone(),
            queue: s.queue.clone(),
            channel: Some(def.channel),
            skills: def.skills.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            attributes: def.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            priority: def.priority,
            tier: def.tier,
            value: 0.0,
            customer: customer.map(|c| format!("s{stream}-c{c}")),
            case: None,
            due_in_ms: def.due_s.map(secs_to_ms),
        };
        self.create(new, stream, customer, handle_ms, patience_ms, None);
        Ok(())
    }

    /// Create `new` now: its simulator side (handle time, patience, the
    /// arrival it records or replays) and, when recording, its arrival.
    fn create(
        &mut self,
        new: NewWorkItem,
        stream: u32,
        customer: Option<u64>,
        handle_ms: u64,
        patience_ms: Option<u64>,
        replayed: Option<usize>,
    ) {
        let now = self.clock.now_ms();
        let arrival = match &mut self.recording {
            Some(recording) => {
                recording.push(traffic::Arrival {
                    at_ms: now,
                    department: new.department.clone(),
                    queue: new.queue.clone(),
                    channel: new.channel.unwrap_or(switchyard_contract::Channel::Voice),
                    skills: new.skills.iter().cloned().collect(),
                    attributes: new.attributes.iter().cloned().collect(),
                    priority: new.priority,
                    tier: new.tier,
                    customer: new.customer.clone(),
                    case: new.case.clone(),
                    value: new.value,
                    due_in_ms: new.due_in_ms,
                    handle_ms: Some(handle_ms),
                    answered_after_ms: None,
                    abandoned_after_ms: None,
                    resolved: None,
                    handoff: None,
                });
                Some(recording.len() - 1)
            }
            None => replayed,
        };
        self.items_created += 1;
        let id = self.router.create_item(new);
        if self.recording.is_some() {
            let view = self.router.item_view(id);
            self.decided.push(Decided {
                queue: view.as_ref().map(|v| v.queue.clone()),
                priority: view.as_ref().map_or(0, |v| v.priority),
                reason: view.and_then(|v| v.explanation.priority_reason),
            });
        }
        let item =
            SimItem { stream, depth: 0, remaining_ms: handle_ms, started_ms: now, generation: 0, customer, arrival };
        self.items.insert(id.0, item);
        if let Some(p) = patience_ms {
            self.push(now + p, SimEvent::Abandon { item: id.0 });
        }
    }

    /// Check `arrivals` against the scenario and schedule them.
    fn schedule_replay(&mut self, arrivals: Vec<traffic::Arrival>) -> Result<()> {
        let mut replay = Vec::with_capacity(arrivals.len());
        for (index, arrival) in arrivals.into_iter().enumerate() {
            if !self.scenario.queues.iter().any(|q| q.name == arrival.queue) {
                return Err(crate::error::Error::Invalid(format!(
                    "traffic arrival {} (at {} ms): queue `{}` is not in the scenario",
                    index + 1,
                    arrival.at_ms,
                    arrival.queue
                )));
            }
            let stream =
                self.scenario.arrivals.iter().position(|a| a.queue == arrival.queue && a.channel == arrival.channel);
            if stream.is_none() && arrival.handle_ms.is_none() {
                return Err(crate::error::Error::Invalid(format!(
                    "traffic arrival {} (at {} ms, queue `{}`, {:?}): no recorded handle time, and the scenario has no arrival stream for that queue and channel to draw one from",
                    index + 1,
                    arrival.at_ms,
                    arrival.queue,
                    arrival.channel
                )));
            }
            if arrival.at_ms < self.end_ms {
                self.push(arrival.at_ms, SimEvent::Replayed { index: index as u32 });
            }
            replay.push((arrival, stream.map(|s| s as u32)));
        }
        self.replay = Some(replay);
        Ok(())
    }

    /// A recorded arrival arrives.
    fn replay_arrival(&mut self, index: usize) {
        let Some((arrival, stream)) = self.replay.as_ref().and_then(|r| r.get(index)).cloned() else { return };
        let stream_of = stream.and_then(|s| self.streams.get_mut(s as usize));
        let (handle_ms, patience_ms) = match stream_of {
            Some(s) => {
                let handle_ms = arrival.handle_ms.unwrap_or_else(|| s.handle.sample_ms(&mut s.work));
                // Answered in the recording: it outlasted its wait, patience unknown.
                let patience = match (arrival.abandoned_after_ms, arrival.answered_after_ms) {
                    (Some(after_ms), _) => Some(after_ms),
                    (None, Some(_)) => None,
                    (None, None) => s.patience_dist.map(|p| p.sample_ms(&mut s.patience)),
                };
                (handle_ms, patience)
            }
            // `schedule_replay` made sure the handle time is recorded.
            None => (arrival.handle_ms.unwrap_or(0), arrival.abandoned_after_ms),
        };
        let new = NewWorkItem {
            department: arrival.department,
            queue: arrival.queue,
            channel: Some(arrival.channel),
            skills: arrival.skills.into_iter().collect(),
            attributes: arrival.attributes.into_iter().collect(),
            priority: arrival.priority,
            tier: arrival.tier,
            value: arrival.value,
            customer: arrival.customer,
            case: arrival.case,
            due_in_ms: arrival.due_in_ms,
        };
        self.create(new, stream.unwrap_or(u32::MAX), None, handle_ms, patience_ms, Some(index));
    }

    fn handle(&mut self, event: SimEvent) -> Result<()> {
        let now = self.clock.now_ms();
        match event {
            SimEvent::Arrival { stream } => {
                self.new_item(stream, None)?;
                self.schedule_arrival(stream);
            }
            SimEvent::Callback { stream, customer } => self.new_item(stream, Some(customer))?,
            SimEvent::Abandon { item } => {
                if matches!(self.router.item_status(ItemId(item)), Some(ItemStatus::Queued | ItemStatus::Offered)) {
                    self.router.withdraw(ItemId(item))?;
                    if let Some(gone) = self.items.remove(&item)
                        && let (Some(recording), Some(index)) = (&mut self.recording, gone.arrival)
                    {
                        recording[index].abandoned_after_ms = Some(now.saturating_sub(recording[index].at_ms));
                    }
                }
            }
            SimEvent::Replayed { index } => self.replay_arrival(index as usize),
            SimEvent::ShiftStart { agent } => self.router.set_agent_state(AgentId(agent), Presence::Available)?,
            SimEvent::ShiftEnd { agent } => self.router.set_agent_state(AgentId(agent), Presence::Offline)?,
            SimEvent::Sample => {
                self.samples.t_s.push(now as f64 / 1000.0);
                self.samples.queue_lengths.push(self.router.queue_lengths());
                self.push(now + self.sample_ms, SimEvent::Sample);
            }
            SimEvent::Complete { item, generation } => self.complete(item, generation)?,
        }
        Ok(())
    }

    fn complete(&mut self, item: u64, generation: u32) -> Result<()> {
        let now = self.clock.now_ms();
        let Some(sim_item) = self.items.get(&item) else { return Ok(()) };
        if sim_item.generation != generation || self.router.item_status(ItemId(item)) != Some(ItemStatus::Active) {
            return Ok(());
        }
        let (stream, depth, customer, arrival) = (sim_item.stream, sim_item.depth, sim_item.customer, sim_item.arrival);
        let next = if self.replay.is_some() {
            self.replayed_outcome(stream, depth, arrival)
        } else {
            self.drawn_outcome(stream, depth, customer, now)
        };
        let recorded_handoff = next.handoff.as_ref().map(|(new, _)| traffic::Handoff {
            department: new.department.clone(),
            queue: new.queue.clone(),
            channel: new.channel.unwrap_or(switchyard_contract::Channel::Voice),
            skills: new.skills.iter().cloned().collect(),
            priority: new.priority,
            due_in_ms: new.due_in_ms,
            handle_ms: next.handoff.as_ref().map(|(_, handle_ms)| *handle_ms),
            completed: false,
            then: None,
        });
        if let (Some(recording), Some(index)) = (&mut self.recording, arrival) {
            record_completion(&mut recording[index], depth, next.resolved, recorded_handoff);
        }
        let (handoff, next_handle) = match next.handoff {
            Some((item, handle_ms)) => (Some(HandOff { item, id: None }), Some(handle_ms)),
            None => (None, None),
        };
        let follow_up = self.router.complete(ItemId(item), Completion { resolved: next.resolved, handoff })?;
        self.items.remove(&item);
        if let (Some(to), Some(handle_ms)) = (follow_up, next_handle) {
            self.items_created += 1;
            self.items.insert(
                to.0,
                SimItem {
                    stream,
                    depth: depth + 1,
                    remaining_ms: handle_ms,
                    started_ms: now,
                    generation: 0,
                    customer,
                    arrival,
                },
            );
        }
        Ok(())
    }

    /// How a completed item of `stream` at hand-off `depth` ends, drawn from the
    /// scenario: resolved or not (then maybe a call-back, scheduled here), and
    /// a hand-off with its handle time.
    fn drawn_outcome(&mut self, stream: u32, depth: u32, customer: Option<u64>, now: u64) -> Next {
        let scenario = self.scenario;
        let def = &scenario.arrivals[stream as usize];
        let s = &mut self.streams[stream as usize];
        let mut resolved = true;
        if depth == 0 && def.resolve_share < 1.0 {
            resolved = s.outcomes.random::<f64>() < def.resolve_share;
            if !resolved && let (Some(after), Some(c)) = (s.callback, customer) {
                let at = now + after.sample_ms(&mut s.outcomes);
                self.push(at, SimEvent::Callback { stream, customer: c });
            }
        }
        let s = &mut self.streams[stream as usize];
        let mut handoff = None;
        if let Some(h) = self.handoffs[stream as usize].get(depth as usize)
            && s.outcomes.random::<f64>() < h.share
        {
            let handle_ms = s.handoff_handle[depth as usize].sample_ms(&mut s.work);
            let item = NewWorkItem {
                department: h.department.clone(),
                queue: h.queue.clone(),
                channel: Some(h.channel),
                skills: h.skills.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                priority: h.priority,
                due_in_ms: h.due_s.map(secs_to_ms),
                ..Default::default()
            };
            handoff = Some((item, handle_ms));
        }
        Next { resolved, handoff }
    }

    /// How a replayed item ends: as recorded if the recording saw it complete;
    /// otherwise as the arrival's scenario stream draws it. A hand-off's handle
    /// time is the recorded one, or drawn.
    fn replayed_outcome(&mut self, stream: u32, depth: u32, arrival: Option<usize>) -> Next {
        let recorded = arrival.and_then(|i| self.replay.as_ref()?.get(i)).map(|(a, _)| a.clone());
        let completed = recorded.and_then(|a| {
            if depth == 0 {
                return Some((a.resolved?, a.handoff));
            }
            let mut link = a.handoff;
            for _ in 1..depth {
                link = link.and_then(|h| h.then);
            }
            let link = link?;
            link.completed.then_some((true, link.then))
        });
        let Some((resolved, handoff)) = completed else {
            return match self.streams.get(stream as usize) {
                Some(_) => self.drawn_outcome(stream, depth, None, self.clock.now_ms()),
                None => Next { resolved: true, handoff: None },
            };
        };
        let handoff = handoff.map(|h| {
            let handle_ms = h.handle_ms.unwrap_or_else(|| match self.streams.get_mut(stream as usize) {
                Some(s) => match s.handoff_handle.get(depth as usize) {
                    Some(sampler) => sampler.sample_ms(&mut s.work),
                    None => s.handle.sample_ms(&mut s.work),
                },
                None => 0,
            });
            let item = NewWorkItem {
                department: h.department,
                queue: h.queue,
                channel: Some(h.channel),
                skills: h.skills.into_iter().collect(),
                priority: h.priority,
                due_in_ms: h.due_in_ms,
                ..Default::default()
            };
            (item, handle_ms)
        });
        Next { resolved, handoff }
    }

    /// Let the simulated agents react to what the router did until it is quiet:
    /// accept offers at once, start and pause the work clocks.
    fn drain(&mut self) -> Result<()> {
        loop {
            self.pending.extend(self.router.drain_events());
            if self.pending.is_empty() {
                return Ok(());
            }
            let events = std::mem::take(&mut self.pending);
            let now = self.clock.now_ms();
            for event in &events {
                match event {
                    Event::Offered { item, .. } => self.router.accept_offer(*item)?,
                    Event::Accepted { item, .. } | Event::Resumed { item, .. } => {
                        if let Some(s) = self.items.get(&item.0)
                            && let (0, Some(index), Some(recording)) = (s.depth, s.arrival, &mut self.recording)
                            && recording[index].answered_after_ms.is_none()
                        {
                            recording[index].answered_after_ms = Some(now.saturating_sub(recording[index].at_ms));
                        }
                        if let Some(s) = self.items.get_mut(&item.0) {
                            s.started_ms = now;
                            s.generation += 1;
                            let (at, generation) = (now + s.remaining_ms, s.generation);
                            self.push(at, SimEvent::Complete { item: item.0, generation });
                        }
                    }
                    Event::Paused { item, .. } => {
                        if let Some(s) = self.items.get_mut(&item.0) {
                            s.remaining_ms = s.remaining_ms.saturating_sub(now.saturating_sub(s.started_ms));
                            s.generation += 1;
                        }
                    }
                    _ => {}
                }
            }
            let mut events = events;
            events.clear();
            if self.pending.is_empty() {
                self.pending = events;
            }
        }
    }
}

/// How a completed item ends: resolved or not, and its hand-off (the new item
/// and its handle time).
struct Next {
    resolved: bool,
    handoff: Option<(NewWorkItem, u64)>,
}

/// Record in `arrival` that its item at hand-off `depth` was completed,
/// `resolved` (first contact only), handing off to `handoff`.
fn record_completion(arrival: &mut traffic::Arrival, depth: u32, resolved: bool, handoff: Option<traffic::Handoff>) {
    if depth == 0 {
        arrival.resolved = Some(resolved);
        arrival.handoff = handoff.map(Box::new);
        return;
    }
    let mut link = arrival.handoff.as_deref_mut();
    for _ in 1..depth {
        link = link.and_then(|h| h.then.as_deref_mut());
    }
    if let Some(h) = link {
        h.completed = true;
        h.then = handoff.map(Box::new);
    }
}
