//! Tech-support rules (multi-skilled agents, blended channels).
//!
//! Exports only `match-agents`; prioritisation and escalation stay with the
//! host's built-in rules.
//!
//! Hard requirements (a candidate failing one is vetoed):
//! - every required skill at its minimum level;
//! - the customer's language: attribute `language = "es"` requires skill
//!   `lang-es` at `min-language-level` (default 5). If the host has never heard
//!   of that language skill, nobody speaks it and everyone is vetoed;
//! - capacity on the item's channel (blending: one call *or* up to
//!   `max-digital` chats and e-mails together, default 3; at most `max-cases`
//!   back-office cases, default 1; nobody on a call takes anything else).
//!
//! Among qualified candidates the score is
//! `100 + weight-skill × mean proficiency in the required skills (default 10)`
//! `+ idle seconds / 30 (at most idle-cap, default 20)`
//! `− over-target-penalty (default 50) when occupancy is above occupancy-target (default 0.85)`,
//! so proficiency leads, the longest-idle agent wins among equals, and agents
//! already over their occupancy target are spared unless nobody else fits.

use switchyard_sdk::{Candidate, CandidateTable, Channel, Context, Item, LogLevel, MatchResult, Rules, SkillReq};

/// Config keys and their defaults.
mod defaults {
    pub const MIN_LANGUAGE_LEVEL: f64 = 5.0;
    pub const MAX_DIGITAL: f64 = 3.0;
    pub const MAX_CASES: f64 = 1.0;
    pub const WEIGHT_SKILL: f64 = 10.0;
    pub const IDLE_STEP_S: f64 = 30.0;
    pub const IDLE_CAP: f64 = 20.0;
    pub const OCCUPANCY_TARGET: f64 = 0.85;
    pub const OVER_TARGET_PENALTY: f64 = 50.0;
}

/// Score of a vetoed candidate.
const VETO: f32 = -1.0;

/// The tech-support department's rules.
#[derive(Debug, Default)]
pub struct TechSupport;

/// Whether `agent` can take one more item on `channel`.
/// How much blended work an agent may already hold (department config, read
/// once per call rather than once per candidate).
struct Capacity {
    max_digital: f64,
    max_cases: f64,
}

impl Capacity {
    fn from_config(ctx: &Context) -> Self {
        Capacity {
            max_digital: ctx.config_f64("max-digital", defaults::MAX_DIGITAL),
            max_cases: ctx.config_f64("max-cases", defaults::MAX_CASES),
        }
    }

    fn has_room(&self, agent: &Candidate<'_>, channel: Channel) -> bool {
        if agent.load(Channel::Voice) > 0 {
            return false;
        }
        let digital = agent.load(Channel::Chat) as f64 + agent.load(Channel::Email) as f64;
        match channel {
            Channel::Voice => agent.total_load() == 0,
            Channel::Chat | Channel::Email => digital < self.max_digital,
            Channel::Case => (agent.load(Channel::Case) as f64) < self.max_cases,
        }
    }
}

#[switchyard_sdk::rules]
impl Rules for TechSupport {
    fn match_agents(&self, ctx: &Context, item: Item<'_>, candidates: &CandidateTable) -> MatchResult {
        // Room for the language requirement: no reallocation when it is added.
        let mut requirements: Vec<SkillReq> = Vec::with_capacity(item.skills().len() + 1);
        requirements.extend_from_slice(item.skills());

        let language = ctx.attribute("language").and_then(|key| item.attr(key)).map(|l| l.trim().to_ascii_lowercase());
        if let Some(language) = language.filter(|l| !l.is_empty()) {
            // Concatenated, not `format!`: `core::fmt` costs a component ≈3.5×
            // what it costs natively (sdk/README.md, "Writing fast rules").
            let skill_name = ["lang-", &language].concat();
            let Some(skill) = ctx.skill(&skill_name) else {
                ctx.log(LogLevel::Warn, "no agent has the item's language skill", &[("skill", &skill_name)]);
                return MatchResult::Scores(vec![VETO; candidates.len()]);
            };
            let level = ctx.config_f64("min-language-level", defaults::MIN_LANGUAGE_LEVEL).clamp(1.0, 10.0) as u8;
            match requirements.iter_mut().find(|r| r.skill == skill) {
                Some(existing) => existing.level = existing.level.max(level),
                None => requirements.push(SkillReq { skill, level }),
            }
        }

        let weight_skill = ctx.config_f64("weight-skill", defaults::WEIGHT_SKILL);
        let idle_step_s = ctx.config_f64("idle-step-s", defaults::IDLE_STEP_S).max(1.0);
        // `f64::min`/`max` ignore a NaN; a configured "NaN" cap means no cap.
        let idle_cap = match ctx.config_f64("idle-cap", defaults::IDLE_CAP) {
            cap if cap.is_nan() => f64::INFINITY,
            cap => cap,
        };
        let target = ctx.config_f64("occupancy-target", defaults::OCCUPANCY_TARGET);
        let penalty = ctx.config_f64("over-target-penalty", defaults::OVER_TARGET_PENALTY);
        let capacity = Capacity::from_config(ctx);
        // Each requirement's proficiency column, found once, not per candidate.
        let resolved = candidates.resolve(&requirements);

        let scores = candidates
            .iter()
            .map(|agent| {
                if !agent.meets(&resolved) || !capacity.has_room(&agent, item.channel()) {
                    return VETO;
                }
                let proficiency = if requirements.is_empty() {
                    0.0
                } else {
                    agent.proficiency_sum(&resolved) as f64 / requirements.len() as f64
                };
                // Comparisons, not `f64::min`/`max`: in a component those are
                // calls (wasm's own min/max treat NaN differently), and neither
                // side is NaN here (the score's NaN, from a NaN weight, still
                // becomes 0 below).
                let idle = agent.idle_ms() as f64 / 1000.0 / idle_step_s;
                let idle = if idle < idle_cap { idle } else { idle_cap };
                let over = if agent.occupancy() as f64 > target { penalty } else { 0.0 };
                // The base of 100 keeps every qualified agent's score positive (not a veto).
                let score = 100.0 + weight_skill * proficiency + idle - over;
                (if score > 0.0 { score } else { 0.0 }) as f32
            })
            .collect();
        MatchResult::Scores(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::{Agent, TestBench, WorkItem};

    #[test]
    fn scores_are_proficiency_plus_idle_minus_overload() {
        let bench = TestBench::new(TechSupport);
        let item = WorkItem::chat("tech").skill("network", 4);
        let got = bench.match_agents(
            &item,
            &[
                Agent::new(1).skill("network", 6).idle_s(60).occupancy(0.5),
                Agent::new(2).skill("network", 6).idle_s(60).occupancy(0.9),
                Agent::new(3).skill("network", 4).idle_s(6000),
            ],
        );
        // 100 + 10×6 + 60/30; the same minus 50 for being over 0.85; 100 + 40 + capped 20.
        assert_eq!(got, MatchResult::Scores(vec![162.0, 112.0, 160.0]));
    }

    #[test]
    fn unqualified_agents_are_vetoed() {
        let bench = TestBench::new(TechSupport);
        let item = WorkItem::voice("tech").skill("network", 5).skill("hardware", 3);
        let agents = [
            Agent::new(1).skill("network", 9).idle_s(500),
            Agent::new(2).skill("network", 5).skill("hardware", 3),
            Agent::new(3).skill("network", 4).skill("hardware", 9).idle_s(900),
        ];
        assert_eq!(bench.ranking(&item, &agents), vec![2]);
    }

    #[test]
    fn the_longest_idle_wins_among_equals_and_proficiency_beats_a_little_idle() {
        let bench = TestBench::new(TechSupport);
        let item = WorkItem::chat("tech").skill("software", 3);
        let equals = [Agent::new(1).skill("software", 5).idle_s(30), Agent::new(2).skill("software", 5).idle_s(90)];
        assert_eq!(bench.best_agent(&item, &equals), Some(2));
        let better = [Agent::new(1).skill("software", 7).idle_s(30), Agent::new(2).skill("software", 5).idle_s(90)];
        assert_eq!(bench.best_agent(&item, &better), Some(1));
    }

    #[test]
    fn agents_over_the_occupancy_target_are_spared_unless_nobody_else_fits() {
        let bench = TestBench::new(TechSupport).config("occupancy-target", "0.8");
        let item = WorkItem::chat("tech").skill("software", 3);
        let agents = [
            Agent::new(1).skill("software", 7).idle_s(600).occupancy(0.95),
            Agent::new(2).skill("software", 5).occupancy(0.6),
        ];
        assert_eq!(bench.ranking(&item, &agents), vec![2, 1]);
        assert_eq!(bench.best_agent(&item, &agents[..1]), Some(1));
    }

    #[test]
    fn the_customers_language_is_a_hard_requirement() {
        let bench = TestBench::new(TechSupport);
        let item = WorkItem::chat("tech").attr("language", "ES");
        let agents = [
            Agent::new(1).skill("lang-en", 9).idle_s(900),
            Agent::new(2).skill("lang-es", 7).idle_s(10),
            Agent::new(3).skill("lang-es", 3).idle_s(900),
        ];
        assert_eq!(bench.ranking(&item, &agents), vec![2]);
    }

    #[test]
    fn a_language_nobody_has_vetoes_everyone_and_says_why() {
        let bench = TestBench::new(TechSupport);
        let item = WorkItem::chat("tech").attr("language", "fi");
        assert_eq!(bench.match_agents(&item, &[Agent::new(1).skill("lang-en", 9)]), MatchResult::Scores(vec![-1.0]));
        let logs = bench.logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].level, LogLevel::Warn);
        assert_eq!(logs[0].fields, vec![("skill".to_string(), "lang-fi".to_string())]);
    }

    #[test]
    fn blending_limits_follow_the_channel() {
        let bench = TestBench::new(TechSupport);
        let agents = [
            Agent::new(1).load(Channel::Voice, 1),
            Agent::new(2).load(Channel::Chat, 3),
            Agent::new(3).load(Channel::Chat, 1).load(Channel::Email, 1),
            Agent::new(4),
            Agent::new(5).load(Channel::Case, 1),
        ];
        assert_eq!(bench.ranking(&WorkItem::chat("tech"), &agents), vec![3, 4, 5]);
        assert_eq!(bench.ranking(&WorkItem::voice("tech"), &agents), vec![4]);
        assert_eq!(bench.ranking(&WorkItem::case("tech"), &agents), vec![2, 3, 4]);
    }

    #[test]
    fn fixtures_pass_natively() {
        TestBench::new(TechSupport)
            .run_fixtures(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures.toml"))
            .unwrap()
            .assert_ok();
    }
}
