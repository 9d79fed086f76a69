//! The native test harness: run a plugin's [`Rules`] under plain `cargo test`,
//! without WebAssembly, with items and agents described by *names*.
//!
//! A [`TestBench`] plays the host: it interns skill, queue and attribute names,
//! holds the department config and the decision time, builds the same
//! struct-of-arrays batches the host sends, and calls the rules through the same
//! batch drivers ([`crate::rules::prioritise_batch`] and friends) that the
//! component's export glue uses. [`WorkItem`] and [`Agent`] are builders for the
//! things a rule reads. [`TestBench::run_fixtures`] runs a fixture file (see
//! [`crate::fixtures`]) natively — the host runs the same file against the built
//! component.
//!
//! ```
//! use switchyard_sdk::testing::{Agent, TestBench, WorkItem};
//! use switchyard_sdk::{Context, Item, Priority, Rules, Tier};
//!
//! #[derive(Default)]
//! struct Vip;
//! impl Rules for Vip {
//!     fn prioritise(&self, ctx: &Context, item: Item<'_>) -> Priority {
//!         let boost = ctx.config_f64("gold-boost", 10.0) as i32;
//!         Priority::new(if item.tier() >= Tier::Gold { boost } else { 0 })
//!     }
//! }
//!
//! let bench = TestBench::new(Vip).config("gold-boost", "40");
//! let got = bench.prioritise(&[WorkItem::voice("billing").tier(Tier::Gold), WorkItem::chat("billing")]);
//! assert_eq!(got.iter().map(|p| p.priority).collect::<Vec<_>>(), vec![40, 0]);
//!
//! // The default match rule prefers the longest-idle agent.
//! let best = bench.best_agent(&WorkItem::voice("billing"), &[Agent::new(7).idle_s(5), Agent::new(9).idle_s(50)]);
//! assert_eq!(best, Some(9));
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::batch::{CandidateTable, ItemBatch, NewCandidate, NewItem};
use crate::context::{Context, LogRecord, TestHost};
use crate::fixtures::{Case, FixtureError, Fixtures, Mismatch};
use crate::names::Catalog;
use crate::rules::{self, Rules};
use crate::types::{Channel, Escalation, MatchResult, Priority, QueueId, SkillId, SkillReq, Tier};

/// Decision time a [`TestBench`] uses unless told otherwise: 2026-01-01T00:00:00Z.
pub const DEFAULT_NOW_MS: u64 = 1_767_225_600_000;

/// A work item described by names, for tests and fixture files.
///
/// ```
/// use switchyard_sdk::testing::WorkItem;
/// use switchyard_sdk::{Channel, Tier};
/// let item = WorkItem::voice("billing")
///     .tier(Tier::Gold)
///     .contacts(2)
///     .value(300.0)
///     .attr("amount", "300")
///     .skill("billing", 3)
///     .age_s(30)
///     .due_in_s(3600);
/// assert_eq!(item.channel, Channel::Voice);
/// assert_eq!(item.skills, vec![("billing".to_string(), 3)]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    /// Host id; `None` numbers items 1, 2, … in batch order.
    pub id: Option<u64>,
    /// Channel.
    pub channel: Channel,
    /// Name of the queue the item waits in.
    pub queue: String,
    /// Customer tier.
    pub tier: Tier,
    /// Contacts about this case within the FCR window (1 = first contact).
    pub contacts: u16,
    /// Current priority.
    pub priority: i32,
    /// Money at stake.
    pub value: f64,
    /// Age (wait so far) in milliseconds.
    pub age_ms: u64,
    /// Time to due in milliseconds (negative = overdue); `None` = no due time.
    pub due_in_ms: Option<i64>,
    /// Required skills by name with minimum level, in order.
    pub skills: Vec<(String, u8)>,
    /// Attributes by key name, in order.
    pub attributes: Vec<(String, String)>,
}

impl WorkItem {
    /// A first-contact standard-tier item on `channel` in queue `queue`, age 0, no due time.
    pub fn new(channel: Channel, queue: &str) -> Self {
        WorkItem {
            id: None,
            channel,
            queue: queue.to_owned(),
            tier: Tier::Standard,
            contacts: 1,
            priority: 0,
            value: 0.0,
            age_ms: 0,
            due_in_ms: None,
            skills: Vec::new(),
            attributes: Vec::new(),
        }
    }
    /// A voice call in `queue`.
    pub fn voice(queue: &str) -> Self {
        Self::new(Channel::Voice, queue)
    }
    /// A chat in `queue`.
    pub fn chat(queue: &str) -> Self {
        Self::new(Channel::Chat, queue)
    }
    /// An e-mail in `queue`.
    pub fn email(queue: &str) -> Self {
        Self::new(Channel::Email, queue)
    }
    /// A back-office case in `queue`.
    pub fn case(queue: &str) -> Self {
        Self::new(Channel::Case, queue)
    }
    /// Set the host id.
    pub fn id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }
    /// Set the customer tier.
    pub fn tier(mut self, tier: Tier) -> Self {
        self.tier = tier;
        self
    }
    /// Set the contact count (2 or more = repeat contact).
    pub fn contacts(mut self, contacts: u16) -> Self {
        self.contacts = contacts;
        self
    }
    /// Set the current priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
    /// Set the money at stake.
    pub fn value(mut self, value: f64) -> Self {
        self.value = value;
        self
    }
    /// Add an attribute.
    pub fn attr(mut self, key: &str, value: &str) -> Self {
        self.attributes.push((key.to_owned(), value.to_owned()));
        self
    }
    /// Require `skill` at `level` or above.
    pub fn skill(mut self, skill: &str, level: u8) -> Self {
        self.skills.push((skill.to_owned(), level));
        self
    }
    /// Set the age in seconds.
    pub fn age_s(mut self, seconds: u64) -> Self {
        self.age_ms = seconds.saturating_mul(1000);
        self
    }
    /// Set the age in milliseconds.
    pub fn age_ms(mut self, ms: u64) -> Self {
        self.age_ms = ms;
        self
    }
    /// Set the time left to the due time in seconds (negative = overdue).
    pub fn due_in_s(mut self, seconds: i64) -> Self {
        self.due_in_ms = Some(seconds.saturating_mul(1000));
        self
    }
    /// Set the time left to the due time in milliseconds (negative = overdue).
    pub fn due_in_ms(mut self, ms: i64) -> Self {
        self.due_in_ms = Some(ms);
        self
    }

    /// Append this item to `batch`, interning its names into `catalog`; `index`
    /// numbers it when it has no explicit id.
    pub fn push_into(&self, batch: &mut ItemBatch, catalog: &mut Catalog, index: usize) -> usize {
        let queue = catalog.queues.intern(&self.queue);
        let skills: Vec<SkillReq> = self
            .skills
            .iter()
            .map(|(name, level)| SkillReq { skill: SkillId(catalog.skills.intern(name)), level: *level })
            .collect();
        let keys: Vec<u32> = self.attributes.iter().map(|(k, _)| catalog.attributes.intern(k)).collect();
        let attributes: Vec<(u32, &str)> =
            keys.iter().zip(&self.attributes).map(|(&k, (_, v))| (k, v.as_str())).collect();
        batch.push(NewItem {
            id: self.id.unwrap_or(index as u64 + 1),
            channel: Some(self.channel),
            queue,
            tier: self.tier,
            contacts: self.contacts,
            priority: self.priority,
            age_ms: self.age_ms,
            due_in_ms: self.due_in_ms,
            value: self.value,
            skills: &skills,
            attributes: &attributes,
        })
    }
}

/// Items an agent handles now, per channel (blending).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Calls in progress.
    #[serde(default)]
    pub voice: u8,
    /// Chats in progress.
    #[serde(default)]
    pub chat: u8,
    /// E-mails in progress.
    #[serde(default)]
    pub email: u8,
    /// Cases in progress.
    #[serde(default, rename = "case")]
    pub case: u8,
}

impl Load {
    /// The load in contract channel order.
    pub fn as_array(&self) -> [u8; 4] {
        [self.voice, self.chat, self.email, self.case]
    }
}

/// A candidate agent described by names, for tests and fixture files.
///
/// ```
/// use switchyard_sdk::testing::Agent;
/// use switchyard_sdk::Channel;
/// let a = Agent::new(7).skill("billing", 6).skill("lang-es", 8).idle_s(40).occupancy(0.7).load(Channel::Chat, 2);
/// assert_eq!(a.id, 7);
/// assert_eq!(a.load.chat, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Host id of the agent.
    pub id: u64,
    /// Proficiency (1-10) by skill name.
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Idle time in seconds (fractions allowed).
    #[serde(default)]
    pub idle_s: f64,
    /// Occupancy so far, 0.0-1.0.
    #[serde(default)]
    pub occupancy: f32,
    /// Current load per channel.
    #[serde(default)]
    pub load: Load,
}

impl Agent {
    /// An idle-for-0-s agent with no skills and no load.
    pub fn new(id: u64) -> Self {
        Agent { id, skills: BTreeMap::new(), idle_s: 0.0, occupancy: 0.0, load: Load::default() }
    }
    /// Give the agent `skill` at proficiency `level`.
    pub fn skill(mut self, skill: &str, level: u8) -> Self {
        self.skills.insert(skill.to_owned(), level);
        self
    }
    /// Set the idle time in seconds.
    pub fn idle_s(mut self, seconds: u64) -> Self {
        self.idle_s = seconds as f64;
        self
    }
    /// Set the occupancy so far (0.0-1.0).
    pub fn occupancy(mut self, occupancy: f32) -> Self {
        self.occupancy = occupancy;
        self
    }
    /// Set the number of items the agent handles on `channel`.
    pub fn load(mut self, channel: Channel, items: u8) -> Self {
        match channel {
            Channel::Voice => self.load.voice = items,
            Channel::Chat => self.load.chat = items,
            Channel::Email => self.load.email = items,
            Channel::Case => self.load.case = items,
        }
        self
    }
}

/// Build the candidate table for `item` (already in `catalog`) and `agents`. The
/// skill columns are the item's required skills first, then every other skill an
/// agent has, in order of first appearance.
pub fn candidate_table(item: &WorkItem, agents: &[Agent], catalog: &mut Catalog) -> CandidateTable {
    let mut columns: Vec<u32> = Vec::new();
    let names = item
        .skills
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(agents.iter().flat_map(|a| a.skills.keys().map(String::as_str)));
    for name in names {
        let id = catalog.skills.intern(name);
        if !columns.contains(&id) {
            columns.push(id);
        }
    }
    let mut table = CandidateTable::new(columns.clone());
    for agent in agents {
        let proficiency: Vec<u8> = columns
            .iter()
            .map(|&c| {
                let name = catalog.skills.name(c).unwrap_or_default();
                agent.skills.get(name).copied().unwrap_or(0)
            })
            .collect();
        table.push(NewCandidate {
            id: agent.id,
            proficiency: &proficiency,
            idle_ms: (agent.idle_s.max(0.0) * 1000.0).round() as u64,
            occupancy: agent.occupancy,
            load: agent.load.as_array(),
        });
    }
    table
}

/// Plays the host for a plugin's rules in native tests.
///
/// Methods take `&self`: the bench interns names as it meets them (like the host),
/// keeps the department config and decision time, and remembers what the rules
/// logged during the last call ([`TestBench::logs`]).
pub struct TestBench<R> {
    rules: R,
    catalog: RefCell<Catalog>,
    config: BTreeMap<String, String>,
    now_ms: u64,
    logs: RefCell<Vec<LogRecord>>,
}

impl<R> std::fmt::Debug for TestBench<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBench").field("config", &self.config).field("now_ms", &self.now_ms).finish_non_exhaustive()
    }
}

impl<R: Rules> TestBench<R> {
    /// A bench for `rules` with no config, decision time [`DEFAULT_NOW_MS`].
    pub fn new(rules: R) -> Self {
        TestBench {
            rules,
            catalog: RefCell::default(),
            config: BTreeMap::new(),
            now_ms: DEFAULT_NOW_MS,
            logs: RefCell::default(),
        }
    }

    /// Set one department config key.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Set the decision time (ms since the Unix epoch).
    pub fn now_ms(mut self, now_ms: u64) -> Self {
        self.now_ms = now_ms;
        self
    }

    /// Make the host know queue `name` (e.g. a classification target) before any item uses it.
    pub fn queue(self, name: &str) -> Self {
        self.catalog.borrow_mut().queues.intern(name);
        self
    }

    /// Make the host know skill `name` before any item uses it.
    pub fn skill(self, name: &str) -> Self {
        self.catalog.borrow_mut().skills.intern(name);
        self
    }

    /// The rules under test.
    pub fn rules(&self) -> &R {
        &self.rules
    }

    /// A snapshot of the names interned so far.
    pub fn catalog(&self) -> Catalog {
        self.catalog.borrow().clone()
    }

    /// Id of queue `name`, if interned.
    pub fn queue_id(&self, name: &str) -> Option<QueueId> {
        self.catalog.borrow().queues.id(name).map(QueueId)
    }

    /// Name of queue `id`, if interned.
    pub fn queue_name(&self, id: QueueId) -> Option<String> {
        self.catalog.borrow().queues.name(id.0).map(str::to_owned)
    }

    /// Id of skill `name`, if interned.
    pub fn skill_id(&self, name: &str) -> Option<SkillId> {
        self.catalog.borrow().skills.id(name).map(SkillId)
    }

    /// What the rules logged during the last call.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.logs.borrow().clone()
    }

    /// Build the batch the host would send for `items`.
    pub fn batch(&self, items: &[WorkItem]) -> ItemBatch {
        let mut catalog = self.catalog.borrow_mut();
        let mut batch = ItemBatch::with_capacity(self.now_ms, items.len());
        for (i, item) in items.iter().enumerate() {
            item.push_into(&mut batch, &mut catalog, i);
        }
        batch
    }

    /// Run `f` with a fresh test context over the current names and config, and
    /// keep what it logged.
    fn with_context<T>(&self, f: impl FnOnce(&Context) -> T) -> T {
        let ctx = Context::for_tests(TestHost {
            catalog: self.catalog.borrow().clone(),
            config: self.config.clone(),
            now_ms: self.now_ms,
            logs: RefCell::default(),
            lookups: Default::default(),
        });
        let out = f(&ctx);
        if let Some(host) = ctx.test_host() {
            *self.logs.borrow_mut() = host.logs.borrow().clone();
        }
        out
    }

    /// Prioritise `items` as one batch; one answer per item.
    pub fn prioritise(&self, items: &[WorkItem]) -> Vec<Priority> {
        let batch = self.batch(items);
        self.prioritise_batch(&batch)
    }

    /// Prioritise an already built batch.
    pub fn prioritise_batch(&self, batch: &ItemBatch) -> Vec<Priority> {
        self.with_context(|ctx| rules::prioritise_batch(&self.rules, ctx, batch))
    }

    /// Escalate `items` (their age is the wait so far) as one batch.
    pub fn escalate(&self, items: &[WorkItem]) -> Vec<Escalation> {
        let batch = self.batch(items);
        self.escalate_batch(&batch)
    }

    /// Escalate an already built batch.
    pub fn escalate_batch(&self, batch: &ItemBatch) -> Vec<Escalation> {
        self.with_context(|ctx| rules::escalate_batch(&self.rules, ctx, batch))
    }

    /// Rank `agents` for `item`.
    pub fn match_agents(&self, item: &WorkItem, agents: &[Agent]) -> MatchResult {
        let batch = self.batch(std::slice::from_ref(item));
        let table = candidate_table(item, agents, &mut self.catalog.borrow_mut());
        self.match_table(&batch, &table)
    }

    /// Rank an already built candidate table for the single item of `batch`.
    pub fn match_table(&self, batch: &ItemBatch, table: &CandidateTable) -> MatchResult {
        self.with_context(|ctx| rules::match_one(&self.rules, ctx, batch, table))
    }

    /// Id of the agent the rules would pick for `item`, if any is not vetoed.
    pub fn best_agent(&self, item: &WorkItem, agents: &[Agent]) -> Option<u64> {
        let result = self.match_agents(item, agents);
        result.best().and_then(|i| agents.get(i)).map(|a| a.id)
    }

    /// Agent ids in the rules' order, vetoed agents left out.
    pub fn ranking(&self, item: &WorkItem, agents: &[Agent]) -> Vec<u64> {
        let result = self.match_agents(item, agents);
        result.ranking().into_iter().filter_map(|i| agents.get(i)).map(|a| a.id).collect()
    }

    /// Run every case of a fixture file against these rules, natively, with the
    /// file's config and decision time (the bench's own config and names are not
    /// used). Returns every mismatch; `Ok` when all cases pass.
    pub fn run_fixtures(&self, path: impl AsRef<Path>) -> Result<FixtureRun, FixtureError> {
        let fixtures = Fixtures::load(path)?;
        Ok(run_fixtures_with(&self.rules, &fixtures))
    }
}

/// The outcome of running a fixture file: how many cases ran and which failed.
#[derive(Debug, Clone, Default)]
pub struct FixtureRun {
    /// Number of cases run.
    pub cases: usize,
    /// Every case whose decision did not meet its expectation.
    pub mismatches: Vec<Mismatch>,
}

impl FixtureRun {
    /// Panic with every mismatch listed, if there is any (for use in `#[test]`s).
    #[track_caller]
    pub fn assert_ok(&self) {
        if !self.mismatches.is_empty() {
            let all: Vec<String> = self.mismatches.iter().map(ToString::to_string).collect();
            panic!("{} of {} fixture cases failed:\n{}", self.mismatches.len(), self.cases, all.join("\n"));
        }
    }
}

/// Run every case of `fixtures` against `rules` natively. Each case gets a fresh
/// catalog (with the file's known names), the file's config and its decision time.
pub fn run_fixtures_with<R: Rules + ?Sized>(rules: &R, fixtures: &Fixtures) -> FixtureRun {
    let mut run = FixtureRun::default();
    for case in fixtures.cases() {
        run.cases += 1;
        let mut catalog = fixtures.catalog();
        let (batch, table) = case.build(&mut catalog);
        let ctx = Context::for_tests(TestHost {
            catalog: catalog.clone(),
            config: fixtures.config.clone(),
            now_ms: batch.now_ms,
            logs: RefCell::default(),
            lookups: Default::default(),
        });
        let verdict = match case {
            Case::Prioritise(_) => case.check_prioritise(&catalog, &rules::prioritise_batch(rules, &ctx, &batch)),
            Case::Escalate(_) => case.check_escalate(&catalog, &rules::escalate_batch(rules, &ctx, &batch)),
            Case::Match(_) => {
                let table = table.unwrap_or_default();
                case.check_match(&catalog, &rules::match_one(rules, &ctx, &batch, &table))
            }
        };
        if let Err(mismatch) = verdict {
            run.mismatches.push(mismatch);
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Item;
    use crate::types::LogLevel;

    /// Every item gets priority 7; logs the number of required skills.
    #[derive(Default)]
    struct Seven;
    impl Rules for Seven {
        fn prioritise(&self, ctx: &Context, item: Item<'_>) -> Priority {
            ctx.log(LogLevel::Info, "seen", &[("skills", &item.skills().len().to_string())]);
            Priority::new(7)
        }
    }

    #[test]
    fn items_are_numbered_and_names_interned_like_the_host_does() {
        let bench = TestBench::new(Seven).queue("vip").now_ms(42);
        let batch = bench.batch(&[WorkItem::chat("billing").skill("billing", 3), WorkItem::email("vip").id(99)]);
        assert_eq!(batch.now_ms, 42);
        assert_eq!(batch.rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 99]);
        assert_eq!(batch.rows.iter().map(|r| r.queue).collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(bench.queue_name(QueueId(1)).as_deref(), Some("billing"));
        assert_eq!(bench.skill_id("billing"), Some(SkillId(0)));
    }

    #[test]
    fn logs_of_the_last_call_are_kept() {
        let bench = TestBench::new(Seven);
        bench.prioritise(&[WorkItem::voice("q").skill("a", 1).skill("b", 2)]);
        let logs = bench.logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].fields, vec![("skills".to_string(), "2".to_string())]);
    }

    #[test]
    fn run_fixtures_reports_every_failing_case() {
        let text = "[[prioritise]]\nname = \"ok\"\nitems = [{ expect = { priority = 7 } }]\n\
                    [[prioritise]]\nname = \"bad\"\nitems = [{ expect = { at_least = 10 } }, { expect = { at_most = 5 } }]\n";
        let fixtures = Fixtures::parse(text, "f.toml").unwrap();
        let run = run_fixtures_with(&Seven, &fixtures);
        assert_eq!(run.cases, 2);
        assert_eq!(run.mismatches.len(), 1);
        assert_eq!(
            run.mismatches[0].to_string(),
            "f.toml: prioritise case `bad`: item 0: priority 7 is below the expected minimum 10; \
             item 1: priority 7 is above the expected maximum 5"
        );
    }

    #[test]
    fn a_missing_fixture_file_is_a_read_error_naming_it() {
        let err = TestBench::new(Seven).run_fixtures("/no/such/fixtures.toml").unwrap_err();
        assert!(err.to_string().starts_with("cannot read fixture file /no/such/fixtures.toml: "), "{err}");
    }
}
