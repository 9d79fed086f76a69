//! The scenario file of `switchyard simulate`: departments (with optional
//! plugins), queues, arrival streams and agent rosters. Every table rejects
//! unknown fields, naming the field and where it is. Scenarios serialise too:
//! `export-traffic --scenario` writes the one a daemon's traffic replays in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchyard_contract::{Channel, Tier};

use super::dist::DistSpec;
use crate::error::{Error, Result};
use switchyard_core::router::Capacity;

fn default_seed() -> u64 {
    1
}
fn default_interval() -> f64 {
    1800.0
}
fn default_sample() -> f64 {
    60.0
}
fn default_sl() -> f64 {
    20.0
}
fn default_short() -> f64 {
    5.0
}
fn default_one() -> f64 {
    1.0
}
fn default_count() -> u32 {
    1
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Seed of every random stream (overridden by `--seed`).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated time, seconds.
    pub duration_s: f64,
    /// Leading time left out of the statistics, seconds.
    #[serde(default)]
    pub warmup_s: f64,
    /// Statistics interval, seconds (e.g. 900 or 1800).
    #[serde(default = "default_interval")]
    pub interval_s: f64,
    /// How often queue lengths are sampled for the report, seconds.
    #[serde(default = "default_sample")]
    pub sample_s: f64,
    /// Departments.
    pub departments: Vec<DepartmentDef>,
    /// Queues.
    pub queues: Vec<QueueDef>,
    /// Arrival streams.
    #[serde(default)]
    pub arrivals: Vec<ArrivalDef>,
    /// Agent rosters.
    #[serde(default)]
    pub agents: Vec<AgentDef>,
}

/// A department.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentDef {
    /// Name.
    pub name: String,
    /// Rule plugin (`.wasm` component), relative to the scenario file.
    pub plugin: Option<PathBuf>,
    /// Plugin configuration (what the plugin reads through its config import).
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
    /// Seconds an agent has to accept an offer.
    pub offer_timeout_s: Option<f64>,
    /// Seconds a rejected/missed item is kept from the same agent.
    pub reoffer_block_s: Option<f64>,
    /// First-contact-resolution window, seconds.
    pub fcr_window_s: Option<f64>,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueDef {
    /// Name.
    pub name: String,
    /// Owning department.
    pub department: String,
    /// Skill agents need (defaults to the queue's name).
    pub skill: Option<String>,
    /// Service-level threshold, seconds.
    #[serde(default = "default_sl")]
    pub service_level_s: f64,
    /// Abandons quicker than this are short abandons, seconds.
    #[serde(default = "default_short")]
    pub short_abandon_s: f64,
}

/// A stream of arriving items (Poisson).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalDef {
    /// Queue the items arrive in.
    pub queue: String,
    /// Channel.
    #[serde(default = "voice")]
    pub channel: Channel,
    /// Mean arrivals per hour.
    pub per_hour: f64,
    /// Optional multipliers of `per_hour`, one per statistics interval, repeated
    /// cyclically (e.g. a day of 48 half-hours).
    pub profile: Option<Vec<f64>>,
    /// Handle time (answer to end of after-work).
    pub handle_time: DistSpec,
    /// Patience: how long a customer waits before abandoning; none = never.
    pub patience: Option<DistSpec>,
    /// Extra required skills and levels.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Attributes of every item.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Initial priority.
    #[serde(default)]
    pub priority: i32,
    /// Customer tier.
    #[serde(default)]
    pub tier: Tier,
    /// Due time after arrival, seconds (back office).
    pub due_s: Option<f64>,
    /// Share of items resolved at first contact (the rest call back).
    #[serde(default = "default_one")]
    pub resolve_share: f64,
    /// When an unresolved customer calls back.
    pub callback_after: Option<DistSpec>,
    /// Follow-up work in another department for a share of the items.
    pub handoff: Option<HandoffDef>,
}

fn voice() -> Channel {
    Channel::Voice
}

/// A hand-off of a share of completed items to another department.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffDef {
    /// Share of completed items handed off (0-1).
    pub share: f64,
    /// Target department.
    pub department: String,
    /// Target queue.
    pub queue: String,
    /// Channel of the follow-up item.
    #[serde(default = "voice")]
    pub channel: Channel,
    /// Handle time of the follow-up item.
    pub handle_time: DistSpec,
    /// Due time of the follow-up, seconds after the hand-off.
    pub due_s: Option<f64>,
    /// Extra required skills.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Priority of the follow-up.
    #[serde(default)]
    pub priority: i32,
    /// A further hand-off from the follow-up (e.g. back for a call-back).
    pub then: Option<Box<HandoffDef>>,
}

/// A roster line: `count` agents alike.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDef {
    /// Group name (for reports); defaults to `group-N`.
    pub name: Option<String>,
    /// How many agents.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Skills and proficiency (1-10).
    pub skills: BTreeMap<String, u8>,
    /// Blending capacity (default: one call or up to three chats/e-mails, one case).
    #[serde(default)]
    pub capacity: Capacity,
    /// After-work per item, seconds, on top of the handle time drawn.
    #[serde(default)]
    pub wrap_up_s: f64,
    /// Shifts; none = logged in the whole run.
    #[serde(default)]
    pub shifts: Vec<ShiftDef>,
}

/// A shift, seconds from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftDef {
    /// Log in.
    pub start_s: f64,
    /// Log out (work in hand is finished).
    pub end_s: f64,
}

impl Scenario {
    /// Parse a scenario from TOML text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| Error::Config { path: path.to_owned(), message: e.to_string() })?;
        scenario.check().map_err(|message| Error::Config { path: path.to_owned(), message })?;
        Ok(scenario)
    }

    /// Read and parse a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Scenario::parse(&text, path)
    }

    /// Check what the types cannot: names that must match, numbers in range.
    fn check(&self) -> std::result::Result<(), String> {
        let positive = |v: f64, what: &str| {
            if v.is_finite() && v > 0.0 { Ok(()) } else { Err(format!("`{what}` must be a positive number, got {v}")) }
        };
        positive(self.duration_s, "duration_s")?;
        positive(self.interval_s, "interval_s")?;
        positive(self.sample_s, "sample_s")?;
        if !(self.warmup_s >= 0.0 && self.warmup_s < self.duration_s) {
            return Err(format!("`warmup_s` ({}) must be at least 0 and less than `duration_s`", self.warmup_s));
        }
        let departments: Vec<&str> = self.departments.iter().map(|d| d.name.as_str()).collect();
        let queue_department =
            |queue: &str| self.queues.iter().find(|q| q.name == queue).map(|q| q.department.as_str());
        for (i, queue) in self.queues.iter().enumerate() {
            if !departments.contains(&queue.department.as_str()) {
                return Err(format!("queues[{i}] (`{}`): unknown department `{}`", queue.name, queue.department));
            }
        }
        for (i, arrival) in self.arrivals.iter().enumerate() {
            let at = format!("arrivals[{i}]");
            if queue_department(&arrival.queue).is_none() {
                return Err(format!("{at}: unknown queue `{}`", arrival.queue));
            }
            if !(arrival.per_hour.is_finite() && arrival.per_hour >= 0.0) {
                return Err(format!("{at}: `per_hour` must be 0 or more"));
            }
            if let Some(profile) = &arrival.profile
                && (profile.is_empty() || profile.iter().any(|m| !m.is_finite() || *m < 0.0))
            {
                return Err(format!("{at}: `profile` must be a non-empty list of multipliers of 0 or more"));
            }
            if !(0.0..=1.0).contains(&arrival.resolve_share) {
                return Err(format!("{at}: `resolve_share` must be between 0 and 1"));
            }
            arrival.handle_time.check().map_err(|e| format!("{at}.handle_time: {e}"))?;
            if let Some(p) = &arrival.patience {
                p.check().map_err(|e| format!("{at}.patience: {e}"))?;
            }
            if let Some(p) = &arrival.callback_after {
                p.check().map_err(|e| format!("{at}.callback_after: {e}"))?;
            }
            let mut handoff = arrival.handoff.as_ref();
            let mut path = format!("{at}.handoff");
            while let Some(h) = handoff {
                match queue_department(&h.queue) {
                    Some(d) if d == h.department => {}
                    Some(d) => {
                        return Err(format!("{path}: queue `{}` belongs to `{d}`, not `{}`", h.queue, h.department));
                    }
                    None => return Err(format!("{path}: unknown queue `{}`", h.queue)),
                }
                if !(0.0..=1.0).contains(&h.share) {
                    return Err(format!("{path}: `share` must be between 0 and 1"));
                }
                h.handle_time.check().map_err(|e| format!("{path}.handle_time: {e}"))?;
                handoff = h.then.as_deref();
                path.push_str(".then");
            }
        }
        for (i, agents) in self.agents.iter().enumerate() {
            for (skill, level) in &agents.skills {
                if !(1..=10).contains(level) {
                    return Err(format!("agents[{i}].skills.{skill}: level {level} is outside 1-10"));
                }
            }
            for (j, shift) in agents.shifts.iter().enumerate() {
                if !(shift.start_s >= 0.0 && shift.end_s > shift.start_s) {
                    return Err(format!("agents[{i}].shifts[{j}]: `end_s` must be after `start_s` (both ≥ 0)"));
                }
            }
        }
        Ok(())
    }
}
