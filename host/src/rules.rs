//! The seam between the routing core and whatever decides: a department's
//! [`RuleSet`]. The router asks a rule set to prioritise, escalate and match; it
//! does not know whether a WebAssembly plugin or the built-in rules answer. Every
//! answer carries its [`RuleSource`] so each decision can be explained and audited.
//!
//! [`BuiltInRules`] are the defaults the core falls back on: keep the priority
//! (the queue then orders by priority and age), never escalate, and offer to the
//! qualified agent who has been idle longest.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use switchyard_sdk::{CandidateTable, Escalation, ItemBatch, MatchResult, Priority};

/// The host-wide interned names (skills, queues, attribute keys). The router
/// interns into it; plugins read it through the `names` import.
pub type SharedCatalog = Arc<RwLock<switchyard_sdk::Catalog>>;

fn serialize_name<S: serde::Serializer>(name: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(name)
}

/// Read back what [`serialize_name`] wrote (serde's own `Arc<str>` support needs
/// its `rc` feature, which shares nothing on the way back in either).
fn deserialize_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
    String::deserialize(deserializer).map(Arc::from)
}

/// Which rule made a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum RuleSource {
    /// The host's built-in rule (the department has no plugin for this hook).
    BuiltIn,
    /// A department plugin at a given generation.
    Plugin {
        /// Plugin name (usually the department); shared with the plugin, so an
        /// answer costs no allocation.
        #[serde(serialize_with = "serialize_name", deserialize_with = "deserialize_name")]
        plugin: Arc<str>,
        /// Generation of the plugin that answered.
        generation: u64,
    },
    /// The plugin failed (trap, deadline, limit, invalid answer, open breaker) and
    /// the built-in rule decided instead.
    Fallback {
        /// Plugin name.
        plugin: String,
        /// Generation that failed.
        generation: u64,
        /// Why the plugin's answer was not used.
        reason: String,
    },
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::BuiltIn => f.write_str("built-in"),
            RuleSource::Plugin { plugin, generation } => write!(f, "{plugin}#{generation}"),
            RuleSource::Fallback { plugin, generation, reason } => {
                write!(f, "built-in (fallback from {plugin}#{generation}: {reason})")
            }
        }
    }
}

/// An answer and the rule that gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided<T> {
    /// The answer.
    pub value: T,
    /// Who answered.
    pub source: RuleSource,
}

impl<T> Decided<T> {
    /// An answer from the built-in rule.
    pub fn built_in(value: T) -> Self {
        Decided { value, source: RuleSource::BuiltIn }
    }
}

/// A department's rules as the router sees them. Implementations never fail: a
/// plugin that cannot answer falls back to [`BuiltInRules`] and says so in
/// [`Decided::source`]. Answers always have one entry per item.
pub trait RuleSet: Send + Sync {
    /// Priority (and optional new queue) for each item of `items`.
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>>;
    /// Escalation for each waiting item of `items`.
    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>>;
    /// Ranking of `candidates` for the single item in `item`.
    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult>;
}

/// The host's default rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltInRules;

impl BuiltInRules {
    /// Keep each item's priority; the queue orders by priority, then age.
    pub fn prioritise(items: &ItemBatch) -> Vec<Priority> {
        items.rows.iter().map(|row| Priority::new(row.priority)).collect()
    }

    /// Never escalate.
    pub fn escalate(items: &ItemBatch) -> Vec<Escalation> {
        items.rows.iter().map(|_| Escalation::none()).collect()
    }

    /// Score each candidate that meets every required skill by its idle time;
    /// veto the rest. The longest-idle qualified agent wins.
    pub fn match_agents(item: &ItemBatch, candidates: &CandidateTable) -> MatchResult {
        let Some(item) = item.get(0) else {
            return MatchResult::Ranked(Vec::new());
        };
        let required = item.skills();
        MatchResult::Scores(
            candidates
                .iter()
                .map(|c| if c.qualifies(required) { c.idle_ms() as f32 / 1000.0 } else { -1.0 })
                .collect(),
        )
    }
}

impl RuleSet for BuiltInRules {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        Decided::built_in(BuiltInRules::prioritise(items))
    }
    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        Decided::built_in(BuiltInRules::escalate(items))
    }
    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        Decided::built_in(BuiltInRules::match_agents(item, candidates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::{NewCandidate, NewItem, SkillId, SkillReq};

    #[test]
    fn built_in_match_prefers_longest_idle_qualified_agent() {
        let mut item = ItemBatch::new(0);
        item.push(NewItem { id: 1, skills: &[SkillReq { skill: SkillId(0), level: 5 }], ..Default::default() });
        let mut table = CandidateTable::new(vec![0]);
        table.push(NewCandidate { id: 10, proficiency: &[4], idle_ms: 90_000, ..Default::default() });
        table.push(NewCandidate { id: 11, proficiency: &[5], idle_ms: 10_000, ..Default::default() });
        table.push(NewCandidate { id: 12, proficiency: &[9], idle_ms: 30_000, ..Default::default() });
        let result = BuiltInRules::match_agents(&item, &table);
        assert_eq!(result.best(), Some(2), "agent 10 lacks the level, 12 idled longer than 11");
        assert_eq!(result.ranking(), vec![2, 1]);
    }
}
