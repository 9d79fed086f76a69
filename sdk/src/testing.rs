//! The native test harness: run a plugin's [`Rules`] under plain `cargo test`,
//! without WebAssembly, with items and agents described by *names*.
//!
//! A [`TestBench`] plays the host: it interns skill, queue and attribute names,
//! holds the department config and the decision time, builds the same
//! struct-of-arrays batches the host sends, and calls the rules through the same
//! batch drivers ([`crate::rules::prioritise_batch`] and friends) that the
//! component's export glue uses. [`WorkItem`] and [`Agent`] are builders for the
//! things a rule reads. `TestBench::run_fixtures` (feature `fixtures`) runs a
//! fixture file (the contract's `fixtures` format) natively — the host runs the same file against the built
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
#[cfg(feature = "fixtures")]
use std::path::Path;

use crate::batch::{CandidateTable, ItemBatch};
use crate::context::{Context, LogRecord, TestHost};
#[cfg(feature = "fixtures")]
use crate::fixtures::{Case, FixtureError, Fixtures, Mismatch};
use crate::names::Catalog;
use crate::rules::{self, Rules};
use crate::types::{Escalation, MatchResult, Priority, QueueId, SkillId};

pub use switchyard_contract::named::{Agent, DEFAULT_NOW_MS, Load, WorkItem, candidate_table};

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
    #[cfg(feature = "fixtures")]
    pub fn run_fixtures(&self, path: impl AsRef<Path>) -> Result<FixtureRun, FixtureError> {
        let fixtures = Fixtures::load(path)?;
        Ok(run_fixtures_with(&self.rules, &fixtures))
    }
}

/// The outcome of running a fixture file: how many cases ran and which failed.
#[cfg(feature = "fixtures")]
#[derive(Debug, Clone, Default)]
pub struct FixtureRun {
    /// Number of cases run.
    pub cases: usize,
    /// Every case whose decision did not meet its expectation.
    pub mismatches: Vec<Mismatch>,
}

#[cfg(feature = "fixtures")]
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
#[cfg(feature = "fixtures")]
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

    #[cfg(feature = "fixtures")]
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

    #[cfg(feature = "fixtures")]
    #[test]
    fn a_missing_fixture_file_is_a_read_error_naming_it() {
        let err = TestBench::new(Seven).run_fixtures("/no/such/fixtures.toml").unwrap_err();
        assert!(err.to_string().starts_with("cannot read fixture file /no/such/fixtures.toml: "), "{err}");
    }
}
