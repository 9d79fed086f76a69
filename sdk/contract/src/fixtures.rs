//! Fixture files: a department's example items, agents and the decisions its
//! rules should make, in TOML, kept beside the plugin (e.g.
//! `plugins/billing/fixtures.toml`).
//!
//! One file runs in two places: natively against the Rust rules under
//! `cargo test` (the SDK's `testing::TestBench::run_fixtures`), and in the host
//! against the built component (validation before a hot swap, host tests). Both
//! use the same three steps, decision in / verdict out:
//!
//! 1. [`Fixtures::load`] (or [`Fixtures::parse`]) reads and checks the file;
//! 2. [`Case::build`] interns the case's names into the caller's [`Catalog`] and
//!    builds the [`ItemBatch`] (and, for match cases, the [`CandidateTable`]);
//! 3. [`Case::check_prioritise`] / [`Case::check_escalate`] / [`Case::check_match`]
//!    compare the decision with the expectation and return a readable [`Mismatch`].
//!
//! ## Format
//!
//! Plain TOML 1.0 (so other languages' parsers read it too). Inline tables must
//! stay on one line; write a long item as a `[[prioritise.items]]` table.
//!
//! ```
//! # use switchyard_contract::fixtures::Fixtures;
//! let text = r#"
//! now_ms = 1767225600000          # optional decision time (default 2026-01-01)
//! queues = ["billing-disputes"]   # names the host knows up front (optional)
//! skills = []                     # likewise for skills (optional)
//!
//! [config]                        # the department's config, as the plugin reads it
//! dispute-threshold = 250         # numbers and booleans are passed as text
//!
//! [[prioritise]]
//! name = "gold repeat caller outranks a first-time standard caller"
//!
//! [[prioritise.items]]
//! label = "gold"
//! channel = "voice"
//! queue = "billing"
//! tier = "gold"
//! contacts = 2
//! value = 300.0
//! attributes = { amount = "300" }
//! skills = { billing = 3 }
//! age_s = 30
//! expect = { at_least = 50, outranks = ["std"] }
//!
//! [[prioritise.items]]
//! label = "std"
//! queue = "billing"
//! expect = { at_most = 20, stays = true }
//!
//! [[escalate]]
//! name = "nearly due case alerts the supervisor"
//! items = [
//!   { channel = "case", queue = "claims", age_s = 86000, due_in_s = 400, expect = { includes = [{ alert = "breach" }], recheck_in_s = 400 } },
//! ]
//!
//! [[match]]
//! name = "Spanish speaker required"
//! item = { channel = "chat", queue = "tech", attributes = { language = "es" } }
//! agents = [
//!   { id = 1, skills = { lang-en = 9 }, idle_s = 300 },
//!   { id = 2, skills = { lang-es = 7 }, idle_s = 10, occupancy = 0.5, load = { chat = 1 } },
//! ]
//! expect = { best = 2, vetoed = [1] }
//! "#;
//! let fixtures = Fixtures::parse(text, "example.toml").unwrap();
//! assert_eq!(fixtures.config["dispute-threshold"], "250");
//! assert_eq!(fixtures.cases().len(), 3);
//! assert_eq!(fixtures.prioritise[0].items.len(), 2);
//! ```
//!
//! Item fields (all optional): `label`, `id`, `channel` (voice, chat, email, case;
//! default voice), `queue` (default `"default"`), `tier` (standard, silver, gold,
//! platinum), `contacts` (default 1), `priority`, `value`, `age_s`, `due_in_s`
//! (negative = overdue; absent = no due time), `skills = { name = level }`,
//! `attributes = { key = "value" }`, and for prioritise/escalate cases `expect`.
//!
//! Expectations — prioritise: `priority` (exact), `at_least`, `at_most`, `queue`
//! (moved to this queue), `stays = true` (no queue change), `reason_contains`,
//! `outranks = ["label", ..]` (strictly higher than those items of the same
//! case). Escalate: `actions = [..]` (exactly these, in order), `includes = [..]`
//! (each present), where an action is `{ raise_by = n }`, `{ raise_to = n }`,
//! `{ relax_levels = n }`, `{ drop_skill = "name" }`, `{ move_to = "queue" }` or
//! `{ alert = "text" }` (the alert message contains the text; `""` = any alert);
//! `recheck_in_s` / `recheck_in_ms` (exact), `no_recheck = true`. Match (on the
//! case): `best` (agent id), `nobody = true` (everyone vetoed), `vetoed = [ids]`,
//! `allowed = [ids]` (not vetoed), `ranking = [ids]` (exact order of the
//! agents not vetoed).
//!
//! ## Example
//!
//! ```
//! use switchyard_contract::fixtures::{Case, Fixtures};
//! use switchyard_contract::{Catalog, Priority};
//!
//! let fixtures = Fixtures::parse(r#"
//!     queues = ["billing-disputes"]
//!     [[prioritise]]
//!     name = "disputes are classified"
//!     items = [{ queue = "billing", value = 900.0, expect = { at_least = 10, queue = "billing-disputes" } }]
//! "#, "inline.toml").unwrap();
//!
//! let mut catalog = fixtures.catalog();
//! let case = &fixtures.cases()[0];
//! let (batch, table) = case.build(&mut catalog);
//! assert_eq!(batch.len(), 1);
//! assert!(table.is_none());
//!
//! // A decision that meets the expectation ...
//! let disputes = switchyard_contract::QueueId(catalog.queues.id("billing-disputes").unwrap());
//! assert!(case.check_prioritise(&catalog, &[Priority::new(40).to_queue(disputes)]).is_ok());
//! // ... and one that does not, with a message naming file, case and item.
//! let err = case.check_prioritise(&catalog, &[Priority::new(5)]).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "inline.toml: prioritise case `disputes are classified`: item 0: priority 5 is below the expected minimum 10; \
//!      item 0: expected a move to queue `billing-disputes`, got no move"
//! );
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::batch::{CandidateTable, ItemBatch};
use crate::hook::Hook;
use crate::named::{Agent, DEFAULT_NOW_MS, WorkItem, candidate_table};
use crate::names::Catalog;
use crate::types::{Channel, Escalation, EscalationAction, MatchResult, Priority, Tier};

/// Why a fixture file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The file could not be read.
    #[error("cannot read fixture file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not follow the fixture format.
    #[error("invalid fixture file {}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (entry, line).
        message: String,
    },
}

/// A decision that does not meet a case's expectation: every problem found, with
/// the file and case it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {hook} case `{case}`: {}", file.display(), problems.join("; "))]
pub struct Mismatch {
    /// The fixture file.
    pub file: PathBuf,
    /// The hook of the case.
    pub hook: Hook,
    /// The case's name.
    pub case: String,
    /// Each unmet expectation, e.g. "item 1 (gold): priority 30 is below the expected minimum 50".
    pub problems: Vec<String>,
}

/// Where a case came from, filled in by the loader.
#[derive(Debug, Clone, Default)]
struct Origin {
    file: PathBuf,
    now_ms: u64,
    known: Arc<Known>,
}

/// Names the host knows before any item mentions them.
#[derive(Debug, Clone, Default)]
struct Known {
    queues: Vec<String>,
    skills: Vec<String>,
}

impl Known {
    fn intern(&self, catalog: &mut Catalog) {
        for q in &self.queues {
            catalog.queues.intern(q);
        }
        for s in &self.skills {
            catalog.skills.intern(s);
        }
    }
}

/// Expectations of a match item: there are none (the case has them), so any
/// `expect` on a match item is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum NoExpectation {}

fn default_channel() -> Channel {
    Channel::Voice
}
fn default_queue() -> String {
    "default".to_owned()
}
fn one() -> u16 {
    1
}

/// One work item of a case, described by names, with its expectation `E`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "E: Deserialize<'de>"))]
pub struct ItemSpec<E> {
    /// Name other expectations can refer to (e.g. `outranks`).
    #[serde(default)]
    pub label: Option<String>,
    /// Host id; default: position in the case, from 1.
    #[serde(default)]
    pub id: Option<u64>,
    /// Channel.
    #[serde(default = "default_channel")]
    pub channel: Channel,
    /// Queue name.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Customer tier.
    #[serde(default)]
    pub tier: Tier,
    /// Contacts in the FCR window, this one included.
    #[serde(default = "one")]
    pub contacts: u16,
    /// Current priority.
    #[serde(default)]
    pub priority: i32,
    /// Money at stake.
    #[serde(default)]
    pub value: f64,
    /// Age (wait so far) in seconds.
    #[serde(default)]
    pub age_s: u64,
    /// Time to due in seconds; negative = overdue; absent = no due time.
    #[serde(default)]
    pub due_in_s: Option<i64>,
    /// Required skills: name = minimum level (1-10).
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Attributes: key = value.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// What the rules should decide for this item.
    #[serde(default)]
    pub expect: Option<E>,
}

impl<E> ItemSpec<E> {
    /// The item as a test-harness [`WorkItem`].
    pub fn work_item(&self) -> WorkItem {
        WorkItem {
            id: self.id,
            channel: self.channel,
            queue: self.queue.clone(),
            tier: self.tier,
            contacts: self.contacts,
            priority: self.priority,
            value: self.value,
            age_ms: self.age_s.saturating_mul(1000),
            due_in_ms: self.due_in_s.map(|s| s.saturating_mul(1000)),
            skills: self.skills.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            attributes: self.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    fn describe(&self, index: usize) -> String {
        match &self.label {
            Some(label) => format!("item {index} ({label})"),
            None => format!("item {index}"),
        }
    }
}

/// What a prioritise rule should decide for one item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityExpect {
    /// Exactly this priority.
    #[serde(default)]
    pub priority: Option<i32>,
    /// At least this priority.
    #[serde(default)]
    pub at_least: Option<i32>,
    /// At most this priority.
    #[serde(default)]
    pub at_most: Option<i32>,
    /// Moved (classified) to this queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// Not moved.
    #[serde(default)]
    pub stays: bool,
    /// The reason contains this text.
    #[serde(default)]
    pub reason_contains: Option<String>,
    /// Strictly higher priority than the items with these labels.
    #[serde(default)]
    pub outranks: Vec<String>,
}

/// An escalation action described by names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionExpect {
    /// `raise-by(n)`.
    RaiseBy(i32),
    /// `raise-to(n)`.
    RaiseTo(i32),
    /// `relax-levels(n)`.
    RelaxLevels(u8),
    /// `drop-skill(skill)`.
    DropSkill(String),
    /// `move-to(queue)`.
    MoveTo(String),
    /// `alert(message)` whose message contains this text (`""` = any alert).
    Alert(String),
}

impl ActionExpect {
    fn matches(&self, catalog: &Catalog, action: &EscalationAction) -> bool {
        match (self, action) {
            (ActionExpect::RaiseBy(a), EscalationAction::RaiseBy(b)) => a == b,
            (ActionExpect::RaiseTo(a), EscalationAction::RaiseTo(b)) => a == b,
            (ActionExpect::RelaxLevels(a), EscalationAction::RelaxLevels(b)) => a == b,
            (ActionExpect::DropSkill(name), EscalationAction::DropSkill(id)) => catalog.skills.name(id.0) == Some(name),
            (ActionExpect::MoveTo(name), EscalationAction::MoveTo(id)) => catalog.queues.name(id.0) == Some(name),
            (ActionExpect::Alert(text), EscalationAction::Alert(message)) => message.contains(text.as_str()),
            _ => false,
        }
    }
}

impl std::fmt::Display for ActionExpect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionExpect::RaiseBy(n) => write!(f, "raise-by {n}"),
            ActionExpect::RaiseTo(n) => write!(f, "raise-to {n}"),
            ActionExpect::RelaxLevels(n) => write!(f, "relax-levels {n}"),
            ActionExpect::DropSkill(s) => write!(f, "drop-skill `{s}`"),
            ActionExpect::MoveTo(q) => write!(f, "move-to `{q}`"),
            ActionExpect::Alert(t) if t.is_empty() => write!(f, "alert"),
            ActionExpect::Alert(t) => write!(f, "alert containing {t:?}"),
        }
    }
}

/// What an escalation rule should decide for one waiting item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationExpect {
    /// Exactly these actions, in this order (`[]` = nothing yet).
    #[serde(default)]
    pub actions: Option<Vec<ActionExpect>>,
    /// Each of these actions is present.
    #[serde(default)]
    pub includes: Vec<ActionExpect>,
    /// Recheck after exactly this many seconds.
    #[serde(default)]
    pub recheck_in_s: Option<u64>,
    /// Recheck after exactly this many milliseconds.
    #[serde(default)]
    pub recheck_in_ms: Option<u64>,
    /// Never look again.
    #[serde(default)]
    pub no_recheck: bool,
}

/// How a match rule should rank a case's agents (by agent id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchExpect {
    /// The best agent.
    #[serde(default)]
    pub best: Option<u64>,
    /// Every agent is vetoed.
    #[serde(default)]
    pub nobody: bool,
    /// These agents are vetoed.
    #[serde(default)]
    pub vetoed: Vec<u64>,
    /// These agents are not vetoed.
    #[serde(default)]
    pub allowed: Vec<u64>,
    /// Exactly this order of the agents not vetoed.
    #[serde(default)]
    pub ranking: Option<Vec<u64>>,
}

/// A prioritise case: a batch of items, each with an optional expectation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrioritiseCase {
    /// Name shown in reports.
    pub name: String,
    /// Decision time of this case (default: the file's).
    #[serde(default)]
    pub now_ms: Option<u64>,
    /// The batch.
    pub items: Vec<ItemSpec<PriorityExpect>>,
    #[serde(skip)]
    origin: Origin,
}

/// An escalate case: a batch of waiting items, each with an optional expectation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateCase {
    /// Name shown in reports.
    pub name: String,
    /// Decision time of this case (default: the file's).
    #[serde(default)]
    pub now_ms: Option<u64>,
    /// The batch.
    pub items: Vec<ItemSpec<EscalationExpect>>,
    #[serde(skip)]
    origin: Origin,
}

/// A match case: one item, its candidate agents, and the expected ranking.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchCase {
    /// Name shown in reports.
    pub name: String,
    /// Decision time of this case (default: the file's).
    #[serde(default)]
    pub now_ms: Option<u64>,
    /// The item to place.
    pub item: ItemSpec<NoExpectation>,
    /// The candidates, in table order.
    pub agents: Vec<Agent>,
    /// The expected ranking.
    #[serde(default)]
    pub expect: Option<MatchExpect>,
    #[serde(skip)]
    origin: Origin,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    now_ms: Option<u64>,
    #[serde(default)]
    queues: Vec<String>,
    #[serde(default)]
    skills: Vec<String>,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    #[serde(default)]
    prioritise: Vec<PrioritiseCase>,
    #[serde(default)]
    escalate: Vec<EscalateCase>,
    #[serde(default, rename = "match")]
    match_agents: Vec<MatchCase>,
}

/// A loaded fixture file.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// The file the fixtures came from.
    pub path: PathBuf,
    /// The department config the rules run with.
    pub config: BTreeMap<String, String>,
    /// Prioritise cases, in file order.
    pub prioritise: Vec<PrioritiseCase>,
    /// Escalate cases, in file order.
    pub escalate: Vec<EscalateCase>,
    /// Match cases, in file order.
    pub match_agents: Vec<MatchCase>,
    known: Arc<Known>,
}

impl Fixtures {
    /// Read and check the fixture file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Fixtures, FixtureError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| FixtureError::Read { path: path.to_owned(), source })?;
        Fixtures::parse(&text, path)
    }

    /// Parse and check fixture text; `origin` names it in messages.
    pub fn parse(text: &str, origin: impl Into<PathBuf>) -> Result<Fixtures, FixtureError> {
        let path: PathBuf = origin.into();
        let invalid = |message: String| FixtureError::Invalid { path: path.clone(), message };
        let spec: FileSpec = toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;

        let mut config = BTreeMap::new();
        for (key, value) in spec.config {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(invalid(format!(
                        "config key `{key}`: expected a string, number or boolean, got a {}",
                        other.type_str()
                    )));
                }
            };
            config.insert(key, text);
        }

        let known = Arc::new(Known { queues: spec.queues, skills: spec.skills });
        let file_now = spec.now_ms.unwrap_or(DEFAULT_NOW_MS);
        let origin_for =
            |now: Option<u64>| Origin { file: path.clone(), now_ms: now.unwrap_or(file_now), known: known.clone() };

        let mut names = std::collections::HashSet::new();
        let mut prioritise = spec.prioritise;
        for case in &mut prioritise {
            let at = format!("prioritise case `{}`", case.name);
            check_name(&mut names, Hook::Prioritise, &case.name).map_err(&invalid)?;
            check_items(&at, &case.items).map_err(&invalid)?;
            let labels: Vec<Option<&str>> = case.items.iter().map(|i| i.label.as_deref()).collect();
            for (i, item) in case.items.iter().enumerate() {
                for target in item.expect.iter().flat_map(|e| &e.outranks) {
                    if !labels.contains(&Some(target.as_str())) {
                        return Err(invalid(format!(
                            "{at}, {}: `outranks` names `{target}`, which is no item label of this case",
                            item.describe(i)
                        )));
                    }
                }
            }
            case.origin = origin_for(case.now_ms);
        }
        let mut escalate = spec.escalate;
        for case in &mut escalate {
            let at = format!("escalate case `{}`", case.name);
            check_name(&mut names, Hook::Escalate, &case.name).map_err(&invalid)?;
            check_items(&at, &case.items).map_err(&invalid)?;
            case.origin = origin_for(case.now_ms);
        }
        let mut match_agents = spec.match_agents;
        for case in &mut match_agents {
            let at = format!("match case `{}`", case.name);
            check_name(&mut names, Hook::Match, &case.name).map_err(&invalid)?;
            check_items(&at, std::slice::from_ref(&case.item)).map_err(&invalid)?;
            let mut ids = std::collections::HashSet::new();
            for agent in &case.agents {
                if !ids.insert(agent.id) {
                    return Err(invalid(format!("{at}: agent id {} appears twice", agent.id)));
                }
                for (skill, &level) in &agent.skills {
                    if !(1..=10).contains(&level) {
                        return Err(invalid(format!(
                            "{at}: agent {} has skill `{skill}` at proficiency {level}; proficiency is 1-10",
                            agent.id
                        )));
                    }
                }
                if !(0.0..=1.0).contains(&agent.occupancy) {
                    return Err(invalid(format!(
                        "{at}: agent {} has occupancy {}; occupancy is 0.0-1.0",
                        agent.id, agent.occupancy
                    )));
                }
            }
            if let Some(expect) = &case.expect {
                let named = expect
                    .best
                    .iter()
                    .chain(&expect.vetoed)
                    .chain(&expect.allowed)
                    .chain(expect.ranking.iter().flatten());
                for id in named {
                    if !ids.contains(id) {
                        return Err(invalid(format!(
                            "{at}: the expectation names agent {id}, which is not among the case's agents"
                        )));
                    }
                }
            }
            case.origin = origin_for(case.now_ms);
        }

        Ok(Fixtures { path, config, prioritise, escalate, match_agents, known })
    }

    /// A fresh catalog holding the names the file says the host knows up front
    /// (`queues`, `skills`).
    pub fn catalog(&self) -> Catalog {
        let mut catalog = Catalog::default();
        self.known.intern(&mut catalog);
        catalog
    }

    /// Every case, prioritise first, then escalate, then match, each in file order.
    pub fn cases(&self) -> Vec<Case<'_>> {
        self.prioritise
            .iter()
            .map(Case::Prioritise)
            .chain(self.escalate.iter().map(Case::Escalate))
            .chain(self.match_agents.iter().map(Case::Match))
            .collect()
    }

    /// The hooks the file has cases for.
    pub fn hooks(&self) -> Vec<Hook> {
        let mut hooks = Vec::new();
        if !self.prioritise.is_empty() {
            hooks.push(Hook::Prioritise);
        }
        if !self.escalate.is_empty() {
            hooks.push(Hook::Escalate);
        }
        if !self.match_agents.is_empty() {
            hooks.push(Hook::Match);
        }
        hooks
    }
}

fn check_name(names: &mut std::collections::HashSet<(Hook, String)>, hook: Hook, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("a {hook} case has an empty name"));
    }
    if !names.insert((hook, name.to_owned())) {
        return Err(format!("two {hook} cases are named `{name}`"));
    }
    Ok(())
}

fn check_items<E>(at: &str, items: &[ItemSpec<E>]) -> Result<(), String> {
    if items.is_empty() {
        return Err(format!("{at} has no items"));
    }
    let mut labels = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(label) = &item.label
            && !labels.insert(label.as_str())
        {
            return Err(format!("{at}: label `{label}` is used by two items"));
        }
        for (skill, &level) in &item.skills {
            if !(1..=10).contains(&level) {
                return Err(format!(
                    "{at}, {}: skill `{skill}` requires level {level}; levels are 1-10",
                    item.describe(i)
                ));
            }
        }
    }
    Ok(())
}

/// One case of a fixture file, whatever its hook.
#[derive(Debug, Clone, Copy)]
pub enum Case<'a> {
    /// A prioritise case.
    Prioritise(&'a PrioritiseCase),
    /// An escalate case.
    Escalate(&'a EscalateCase),
    /// A match case.
    Match(&'a MatchCase),
}

impl<'a> Case<'a> {
    /// The hook the case exercises.
    pub fn hook(&self) -> Hook {
        match self {
            Case::Prioritise(_) => Hook::Prioritise,
            Case::Escalate(_) => Hook::Escalate,
            Case::Match(_) => Hook::Match,
        }
    }

    /// The case's name.
    pub fn name(&self) -> &'a str {
        match self {
            Case::Prioritise(c) => &c.name,
            Case::Escalate(c) => &c.name,
            Case::Match(c) => &c.name,
        }
    }

    fn origin(&self) -> &'a Origin {
        match self {
            Case::Prioritise(c) => &c.origin,
            Case::Escalate(c) => &c.origin,
            Case::Match(c) => &c.origin,
        }
    }

    /// Decision time of the case, ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.origin().now_ms
    }

    /// Intern the case's names into `catalog` (the file's known names first) and
    /// build what the hook is called with: the item batch, and for match cases
    /// the candidate table.
    pub fn build(&self, catalog: &mut Catalog) -> (ItemBatch, Option<CandidateTable>) {
        let origin = self.origin();
        origin.known.intern(catalog);
        let mut batch = ItemBatch::new(origin.now_ms);
        match self {
            Case::Prioritise(c) => {
                for (i, item) in c.items.iter().enumerate() {
                    item.work_item().push_into(&mut batch, catalog, i);
                }
                (batch, None)
            }
            Case::Escalate(c) => {
                for (i, item) in c.items.iter().enumerate() {
                    item.work_item().push_into(&mut batch, catalog, i);
                }
                (batch, None)
            }
            Case::Match(c) => {
                let item = c.item.work_item();
                item.push_into(&mut batch, catalog, 0);
                let table = candidate_table(&item, &c.agents, catalog);
                (batch, Some(table))
            }
        }
    }

    fn mismatch(&self, problems: Vec<String>) -> Result<(), Mismatch> {
        if problems.is_empty() {
            return Ok(());
        }
        Err(Mismatch { file: self.origin().file.clone(), hook: self.hook(), case: self.name().to_owned(), problems })
    }

    fn wrong_hook(&self, got: Hook) -> Result<(), Mismatch> {
        self.mismatch(vec![format!("this is a {} case but was given a {got} decision", self.hook())])
    }

    /// Check prioritise answers (one per item, in order) against the case.
    /// `catalog` resolves queue ids to names.
    pub fn check_prioritise(&self, catalog: &Catalog, got: &[Priority]) -> Result<(), Mismatch> {
        let Case::Prioritise(case) = self else {
            return self.wrong_hook(Hook::Prioritise);
        };
        if got.len() != case.items.len() {
            return self.mismatch(vec![format!(
                "expected {} answers (one per item), got {}",
                case.items.len(),
                got.len()
            )]);
        }
        let mut problems = Vec::new();
        for (i, (item, answer)) in case.items.iter().zip(got).enumerate() {
            let Some(expect) = &item.expect else { continue };
            let who = item.describe(i);
            let p = answer.priority;
            if let Some(want) = expect.priority
                && p != want
            {
                problems.push(format!("{who}: priority {p}, expected exactly {want}"));
            }
            if let Some(min) = expect.at_least
                && p < min
            {
                problems.push(format!("{who}: priority {p} is below the expected minimum {min}"));
            }
            if let Some(max) = expect.at_most
                && p > max
            {
                problems.push(format!("{who}: priority {p} is above the expected maximum {max}"));
            }
            let moved_to = answer.queue.map(|q| {
                catalog.queues.name(q.0).map_or_else(|| format!("unknown queue id {}", q.0), |n| format!("`{n}`"))
            });
            if let Some(want) = &expect.queue {
                match &moved_to {
                    Some(got) if *got == format!("`{want}`") => {}
                    Some(got) => {
                        problems.push(format!("{who}: expected a move to queue `{want}`, got a move to {got}"))
                    }
                    None => problems.push(format!("{who}: expected a move to queue `{want}`, got no move")),
                }
            }
            if expect.stays
                && let Some(got) = &moved_to
            {
                problems.push(format!("{who}: expected no queue change, got a move to {got}"));
            }
            if let Some(text) = &expect.reason_contains {
                match &answer.reason {
                    Some(reason) if reason.contains(text.as_str()) => {}
                    Some(reason) => problems.push(format!("{who}: reason {reason:?} does not contain {text:?}")),
                    None => problems.push(format!("{who}: expected a reason containing {text:?}, got none")),
                }
            }
            for target in &expect.outranks {
                if let Some((j, other)) =
                    case.items.iter().enumerate().find(|(_, o)| o.label.as_deref() == Some(target))
                {
                    let q = got[j].priority;
                    if p <= q {
                        problems.push(format!("{who}: priority {p} should be above {} with {q}", other.describe(j)));
                    }
                }
            }
        }
        self.mismatch(problems)
    }

    /// Check escalation answers (one per item, in order) against the case.
    /// `catalog` resolves skill and queue ids to names.
    pub fn check_escalate(&self, catalog: &Catalog, got: &[Escalation]) -> Result<(), Mismatch> {
        let Case::Escalate(case) = self else {
            return self.wrong_hook(Hook::Escalate);
        };
        if got.len() != case.items.len() {
            return self.mismatch(vec![format!(
                "expected {} answers (one per item), got {}",
                case.items.len(),
                got.len()
            )]);
        }
        let mut problems = Vec::new();
        for (i, (item, answer)) in case.items.iter().zip(got).enumerate() {
            let Some(expect) = &item.expect else { continue };
            let who = item.describe(i);
            let shown = describe_actions(catalog, &answer.actions);
            if let Some(want) = &expect.actions {
                let same = want.len() == answer.actions.len()
                    && want.iter().zip(&answer.actions).all(|(w, a)| w.matches(catalog, a));
                if !same {
                    let want: Vec<String> = want.iter().map(ToString::to_string).collect();
                    problems.push(format!("{who}: expected actions [{}], got [{shown}]", want.join(", ")));
                }
            }
            for want in &expect.includes {
                if !answer.actions.iter().any(|a| want.matches(catalog, a)) {
                    problems.push(format!("{who}: expected an action {want}, got [{shown}]"));
                }
            }
            let want_ms = expect.recheck_in_ms.or(expect.recheck_in_s.map(|s| s.saturating_mul(1000)));
            if let Some(want) = want_ms
                && answer.recheck_in_ms != Some(want)
            {
                problems.push(format!(
                    "{who}: expected a recheck in {}, got {}",
                    show_ms(want),
                    show_recheck(answer.recheck_in_ms)
                ));
            }
            if expect.no_recheck && answer.recheck_in_ms.is_some() {
                problems.push(format!("{who}: expected no recheck, got {}", show_recheck(answer.recheck_in_ms)));
            }
        }
        self.mismatch(problems)
    }

    /// Check a match answer against the case (agents are compared by id, in the
    /// case's table order).
    pub fn check_match(&self, catalog: &Catalog, got: &MatchResult) -> Result<(), Mismatch> {
        let _ = catalog;
        let Case::Match(case) = self else {
            return self.wrong_hook(Hook::Match);
        };
        let n = case.agents.len();
        // An answer the host would refuse is a mismatch whatever the expectation.
        match got {
            MatchResult::Scores(scores) => {
                if scores.len() != n {
                    return self.mismatch(vec![format!("expected {n} scores (one per agent), got {}", scores.len())]);
                }
                if let Some(i) = scores.iter().position(|s| s.is_nan()) {
                    return self.mismatch(vec![format!("score of agent {} is NaN", case.agents[i].id)]);
                }
            }
            MatchResult::Ranked(order) => {
                let mut seen = vec![false; n];
                for &i in order {
                    match seen.get_mut(i as usize) {
                        Some(s) if !*s => *s = true,
                        Some(_) => {
                            return self.mismatch(vec![format!("ranking lists candidate {i} twice")]);
                        }
                        None => {
                            return self.mismatch(vec![format!("ranking names candidate {i}, but there are {n}")]);
                        }
                    }
                }
            }
        }
        let Some(expect) = &case.expect else {
            return Ok(());
        };
        let ranking: Vec<u64> = got.ranking().into_iter().filter_map(|i| case.agents.get(i)).map(|a| a.id).collect();
        let shown = format!("{ranking:?}");
        let mut problems = Vec::new();
        if let Some(best) = expect.best
            && ranking.first() != Some(&best)
        {
            match ranking.first() {
                Some(first) => {
                    problems.push(format!("expected agent {best} best, got agent {first} (ranking {shown})"))
                }
                None => problems.push(format!("expected agent {best} best, got everyone vetoed")),
            }
        }
        if expect.nobody && !ranking.is_empty() {
            problems.push(format!("expected every agent vetoed, got ranking {shown}"));
        }
        for id in &expect.vetoed {
            if ranking.contains(id) {
                problems.push(format!("expected agent {id} vetoed, got ranking {shown}"));
            }
        }
        for id in &expect.allowed {
            if !ranking.contains(id) {
                problems.push(format!("expected agent {id} not vetoed, got ranking {shown}"));
            }
        }
        if let Some(want) = &expect.ranking
            && *want != ranking
        {
            problems.push(format!("expected ranking {want:?}, got {shown}"));
        }
        self.mismatch(problems)
    }
}

fn show_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) { format!("{} s", ms / 1000) } else { format!("{ms} ms") }
}

fn show_recheck(recheck: Option<u64>) -> String {
    match recheck {
        Some(ms) => show_ms(ms),
        None => "no recheck".to_owned(),
    }
}

/// Escalation actions with names resolved, e.g. `raise-by 10, move-to `claims-urgent``.
pub fn describe_actions(catalog: &Catalog, actions: &[EscalationAction]) -> String {
    let shown: Vec<String> = actions
        .iter()
        .map(|a| match a {
            EscalationAction::RaiseBy(n) => format!("raise-by {n}"),
            EscalationAction::RaiseTo(n) => format!("raise-to {n}"),
            EscalationAction::RelaxLevels(n) => format!("relax-levels {n}"),
            EscalationAction::DropSkill(s) => match catalog.skills.name(s.0) {
                Some(name) => format!("drop-skill `{name}`"),
                None => format!("drop-skill #{}", s.0),
            },
            EscalationAction::MoveTo(q) => match catalog.queues.name(q.0) {
                Some(name) => format!("move-to `{name}`"),
                None => format!("move-to #{}", q.0),
            },
            EscalationAction::Alert(m) => format!("alert {m:?}"),
        })
        .collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::QueueId;

    fn parse(text: &str) -> Result<Fixtures, FixtureError> {
        Fixtures::parse(text, "t.toml")
    }

    #[test]
    fn unknown_fields_are_refused_with_file_and_place() {
        let err = parse("[[prioritise]]\nname = \"x\"\nitems = [{ queue = \"q\", teir = \"gold\" }]\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("invalid fixture file t.toml: "), "{text}");
        assert!(text.contains("unknown field `teir`"), "{text}");
        assert!(text.contains("line 3"), "{text}");
    }

    #[test]
    fn bad_levels_outranks_and_agent_ids_are_named() {
        let err = parse("[[prioritise]]\nname = \"lv\"\nitems = [{ skills = { billing = 11 } }]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid fixture file t.toml: prioritise case `lv`, item 0: skill `billing` requires level 11; levels are 1-10"
        );
        let err = parse("[[prioritise]]\nname = \"o\"\nitems = [{ label = \"a\", expect = { outranks = [\"b\"] } }]\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid fixture file t.toml: prioritise case `o`, item 0 (a): `outranks` names `b`, which is no item label of this case"
        );
        let err =
            parse("[[match]]\nname = \"m\"\nitem = {}\nagents = [{ id = 1 }]\nexpect = { best = 2 }\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid fixture file t.toml: match case `m`: the expectation names agent 2, which is not among the case's agents"
        );
    }

    #[test]
    fn a_match_item_takes_no_expectation() {
        let err =
            parse("[[match]]\nname = \"m\"\nitem = { expect = { best = 1 } }\nagents = [{ id = 1 }]\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("expect"), "{text}");
    }

    #[test]
    fn config_values_become_text() {
        let f = parse("[config]\nweight = 2.5\nlimit = 10\nname = \"x\"\non = true\n").unwrap();
        assert_eq!(f.config.get("weight").map(String::as_str), Some("2.5"));
        assert_eq!(f.config.get("limit").map(String::as_str), Some("10"));
        assert_eq!(f.config.get("on").map(String::as_str), Some("true"));
        assert!(f.cases().is_empty());
    }

    #[test]
    fn build_interns_known_names_first_and_lays_out_the_table() {
        let f = parse(
            "queues = [\"vip\"]\n[[match]]\nname = \"m\"\nitem = { queue = \"tech\", skills = { network = 4 } }\n\
             agents = [{ id = 7, skills = { network = 6, lang-es = 3 }, idle_s = 2.5, load = { chat = 2 } }, { id = 9 }]\n",
        )
        .unwrap();
        let mut catalog = Catalog::default();
        let case = f.cases()[0];
        let (batch, table) = case.build(&mut catalog);
        let table = table.unwrap();
        assert_eq!(catalog.queues.id("vip"), Some(0));
        assert_eq!(catalog.queues.id("tech"), Some(1));
        assert_eq!(batch.rows[0].queue, 1);
        assert_eq!(batch.now_ms, DEFAULT_NOW_MS);
        assert_eq!(table.agent_ids, vec![7, 9]);
        assert_eq!(
            table.skill_columns,
            vec![catalog.skills.id("network").unwrap(), catalog.skills.id("lang-es").unwrap()]
        );
        assert_eq!(table.proficiency, vec![6, 3, 0, 0]);
        assert_eq!(table.idle_ms, vec![2500, 0]);
        assert_eq!(table.load, vec![0, 2, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn escalation_and_match_checks_name_every_problem() {
        let f = parse(
            "[[escalate]]\nname = \"e\"\nitems = [{ label = \"late\", expect = { actions = [{ raise_by = 10 }, { alert = \"breach\" }], recheck_in_s = 60 } }]\n\
             [[match]]\nname = \"m\"\nitem = {}\nagents = [{ id = 1 }, { id = 2 }]\nexpect = { best = 2, vetoed = [1] }\n",
        )
        .unwrap();
        let catalog = f.catalog();
        let cases = f.cases();
        let ok = Escalation::none()
            .then(EscalationAction::RaiseBy(10))
            .then(EscalationAction::Alert("SLA breach in 5 min".into()))
            .recheck_in_ms(60_000);
        assert_eq!(cases[0].check_escalate(&catalog, std::slice::from_ref(&ok)), Ok(()));
        let err =
            cases[0].check_escalate(&catalog, &[Escalation::none().then(EscalationAction::RaiseBy(5))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.toml: escalate case `e`: item 0 (late): expected actions [raise-by 10, alert containing \"breach\"], got [raise-by 5]; \
             item 0 (late): expected a recheck in 60 s, got no recheck"
        );
        assert_eq!(cases[1].check_match(&catalog, &MatchResult::Scores(vec![-1.0, 3.0])), Ok(()));
        let err = cases[1].check_match(&catalog, &MatchResult::Ranked(vec![0, 1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.toml: match case `m`: expected agent 2 best, got agent 1 (ranking [1, 2]); expected agent 1 vetoed, got ranking [1, 2]"
        );
        let err = cases[1].check_match(&catalog, &MatchResult::Scores(vec![1.0])).unwrap_err();
        assert_eq!(err.problems, vec!["expected 2 scores (one per agent), got 1".to_string()]);
        let err = cases[1].check_prioritise(&catalog, &[]).unwrap_err();
        assert_eq!(err.problems, vec!["this is a match case but was given a prioritise decision".to_string()]);
    }

    #[test]
    fn priority_checks_cover_queue_and_order() {
        let f = parse(
            "queues = [\"a\", \"b\"]\n[[prioritise]]\nname = \"p\"\nitems = [\
             { label = \"hi\", expect = { outranks = [\"lo\"], queue = \"a\" } }, { label = \"lo\", expect = { stays = true, priority = 1 } }]\n",
        )
        .unwrap();
        let catalog = f.catalog();
        let case = f.cases()[0];
        assert_eq!(case.check_prioritise(&catalog, &[Priority::new(5).to_queue(QueueId(0)), Priority::new(1)]), Ok(()));
        let err = case
            .check_prioritise(&catalog, &[Priority::new(1).to_queue(QueueId(1)), Priority::new(2).to_queue(QueueId(0))])
            .unwrap_err();
        assert_eq!(
            err.problems,
            vec![
                "item 0 (hi): expected a move to queue `a`, got a move to `b`".to_string(),
                "item 0 (hi): priority 1 should be above item 1 (lo) with 2".to_string(),
                "item 1 (lo): priority 2, expected exactly 1".to_string(),
                "item 1 (lo): expected no queue change, got a move to `a`".to_string(),
            ]
        );
    }
}
