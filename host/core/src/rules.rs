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
use switchyard_contract::{CandidateTable, Escalation, ItemBatch, MatchResult, Priority};

/// The host-wide interned names (skills, queues, attribute keys). The router
/// interns into it; plugins read it through the `names` import.
pub type SharedCatalog = Arc<RwLock<switchyard_contract::Catalog>>;

/// Which rule made a decision.
///
/// In JSON (and other human-readable formats) an object tagged by `kind`:
/// `{"kind": "plugin", "plugin": "billing", "generation": 3}`. Binary formats
/// (a router snapshot in postcard) get the externally tagged form, since they
/// cannot read an internally tagged enum back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    /// The host's built-in rule (the department has no plugin for this hook).
    BuiltIn,
    /// A department plugin at a given generation.
    Plugin {
        /// Plugin name (usually the department); shared with the plugin, so an
        /// answer costs no allocation.
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
    /// No answer yet: the embedder asks the rules later, outside its own lock
    /// (the daemon does; see `serve/tape.rs`). The router changes nothing for
    /// the item, remembers the question ([`crate::router::Router::take_deferred`])
    /// and asks again when told to ([`crate::router::Router::decide_deferred`]).
    /// Never stored in an explanation.
    Deferred,
}

/// [`RuleSource`] as serde sees it in human-readable formats (`S` is `&str` on
/// the way out, `String` on the way in).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
enum TaggedSource<S> {
    BuiltIn,
    Plugin { plugin: S, generation: u64 },
    Fallback { plugin: S, generation: u64, reason: S },
    Deferred,
}

/// [`RuleSource`] as serde sees it in binary formats.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PlainSource<S> {
    BuiltIn,
    Plugin { plugin: S, generation: u64 },
    Fallback { plugin: S, generation: u64, reason: S },
    Deferred,
}

impl Serialize for RuleSource {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let human = serializer.is_human_readable();
        match self {
            RuleSource::BuiltIn if human => TaggedSource::<&str>::BuiltIn.serialize(serializer),
            RuleSource::BuiltIn => PlainSource::<&str>::BuiltIn.serialize(serializer),
            RuleSource::Plugin { plugin, generation } if human => {
                TaggedSource::Plugin { plugin: &**plugin, generation: *generation }.serialize(serializer)
            }
            RuleSource::Plugin { plugin, generation } => {
                PlainSource::Plugin { plugin: &**plugin, generation: *generation }.serialize(serializer)
            }
            RuleSource::Fallback { plugin, generation, reason } if human => {
                TaggedSource::Fallback { plugin: plugin.as_str(), generation: *generation, reason: reason.as_str() }
                    .serialize(serializer)
            }
            RuleSource::Fallback { plugin, generation, reason } => {
                PlainSource::Fallback { plugin: plugin.as_str(), generation: *generation, reason: reason.as_str() }
                    .serialize(serializer)
            }
            RuleSource::Deferred if human => TaggedSource::<&str>::Deferred.serialize(serializer),
            RuleSource::Deferred => PlainSource::<&str>::Deferred.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for RuleSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let plain = if deserializer.is_human_readable() {
            match TaggedSource::<String>::deserialize(deserializer)? {
                TaggedSource::BuiltIn => PlainSource::BuiltIn,
                TaggedSource::Plugin { plugin, generation } => PlainSource::Plugin { plugin, generation },
                TaggedSource::Fallback { plugin, generation, reason } => {
                    PlainSource::Fallback { plugin, generation, reason }
                }
                TaggedSource::Deferred => PlainSource::Deferred,
            }
        } else {
            PlainSource::<String>::deserialize(deserializer)?
        };
        Ok(match plain {
            PlainSource::BuiltIn => RuleSource::BuiltIn,
            PlainSource::Plugin { plugin, generation } => RuleSource::Plugin { plugin: Arc::from(plugin), generation },
            PlainSource::Fallback { plugin, generation, reason } => RuleSource::Fallback { plugin, generation, reason },
            PlainSource::Deferred => RuleSource::Deferred,
        })
    }
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::BuiltIn => f.write_str("built-in"),
            RuleSource::Plugin { plugin, generation } => write!(f, "{plugin}#{generation}"),
            RuleSource::Fallback { plugin, generation, reason } => {
                write!(f, "built-in (fallback from {plugin}#{generation}: {reason})")
            }
            RuleSource::Deferred => f.write_str("deferred"),
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
    /// Whether answering `hook` now may run plugin code (and so take up to its
    /// deadline). A caller holding a lock asks inline what does not, and defers
    /// the rest (the daemon does). Default: `true`.
    ///
    /// ```
    /// use switchyard_core::rules::{BuiltInRules, RuleSet};
    /// use switchyard_contract::Hook;
    /// assert!(!BuiltInRules.calls_plugin(Hook::Match));
    /// ```
    fn calls_plugin(&self, _hook: switchyard_contract::Hook) -> bool {
        true
    }
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
            candidates.iter().map(|c| if c.qualifies(required) { c.idle_ms() as f32 / 1000.0 } else { -1.0 }).collect(),
        )
    }
}

impl RuleSet for BuiltInRules {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        Decided::built_in(BuiltInRules::prioritise(items))
    }
    fn calls_plugin(&self, _hook: switchyard_contract::Hook) -> bool {
        false
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
    use switchyard_contract::{NewCandidate, NewItem, SkillId, SkillReq};

    /// JSON keeps the `kind`-tagged shape the API and reports show; a binary
    /// format reads back what it wrote.
    #[test]
    fn rule_source_serde_shapes() {
        let sources = [
            RuleSource::BuiltIn,
            RuleSource::Plugin { plugin: "billing".into(), generation: 3 },
            RuleSource::Fallback { plugin: "claims".into(), generation: 2, reason: "trap".into() },
        ];
        let json: Vec<String> = sources.iter().map(|s| serde_json::to_string(s).unwrap()).collect();
        assert_eq!(
            json,
            [
                r#"{"kind":"built-in"}"#,
                r#"{"kind":"plugin","plugin":"billing","generation":3}"#,
                r#"{"kind":"fallback","plugin":"claims","generation":2,"reason":"trap"}"#,
            ]
        );
        for (source, json) in sources.iter().zip(&json) {
            assert_eq!(&serde_json::from_str::<RuleSource>(json).unwrap(), source);
            let bytes = postcard::to_allocvec(source).unwrap();
            assert_eq!(&postcard::from_bytes::<RuleSource>(&bytes).unwrap(), source);
        }
    }

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
