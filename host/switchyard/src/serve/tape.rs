//! Rule decisions on tape: what makes a restart independent of the rules.
//!
//! Every department's rules reach the router through a [`TapedRules`], the
//! outermost wrapper. Live, it passes each call to the rules and records the
//! answer (with names, not interned ids) on the daemon's one [`Tape`]; the core
//! takes the tape after applying an input and journals it with the input's
//! record ([`Record::outcomes`](super::journal::Record::outcomes)). On replay the
//! core loads a record's outcomes onto the tape and the wrapper hands them back
//! in the order the router asks, **never calling a plugin**: a plugin that now
//! hangs, is missing, or was rolled back cannot change what the journal says
//! happened.
//!
//! The router asks for decisions in a deterministic order for the same state and
//! inputs, so the tape lines up. If it does not (a journal from a build whose
//! router asks differently), the wrapper answers with the built-in rule, marks
//! the answer as a replay fallback, and the core logs the record as diverged.
//!
//! **Decisions outside the lock.** Live, the wrapper never calls a department's
//! `match-agents` or `escalate` itself (those run under the daemon's state
//! lock, and a slow plugin there would hold up every department). Instead it
//! answers [`RuleSource::Deferred`], records that as the decision, and keeps
//! the question ([`Question`]); the router leaves the item as it was and
//! remembers what to redo. The request that caused it then asks the rules with
//! the lock released (`serve/core.rs`, `settle`), and applies an
//! [`Op::Decide`](super::journal::Op::Decide) with the answers preloaded here
//! ([`Tape::preload_answers`]): a call that finds its answer (same department,
//! item and candidates) takes it and records it like any other. A hook no
//! plugin answers ([`RuleSet::calls_plugin`]: the built-in rule) is asked
//! inline: it costs microseconds and needs no second round. A new item's
//! `prioritise` (and a completion's hand-off's) is asked outside the lock the
//! same way, before the op that creates the item ([`Tape::preload`]).
//!
//! The wrapper runs under the daemon's state lock, so the tape's own mutex is
//! never contended; it exists because [`RuleSet`] takes `&self`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use switchyard_contract::{
    CandidateTable, Catalog, Escalation, EscalationAction, ItemBatch, MatchResult, NameKind, Priority, QueueId, SkillId,
};

use switchyard_contract::Hook;
use switchyard_core::rules::{BuiltInRules, Decided, RuleSet, RuleSource, SharedCatalog};

use super::journal::{ActionOutcome, EscalationOutcome, Origin, Outcome, PriorityOutcome};

/// The decisions of the input being applied (live) or replayed.
#[derive(Debug, Default)]
pub(crate) struct Tape {
    state: Mutex<TapeState>,
}

#[derive(Debug, Default)]
struct TapeState {
    /// Replaying: answers come from `playing`, never from the rules.
    replaying: bool,
    /// Live: the decisions taken so far for the current input.
    recorded: Vec<Outcome>,
    /// Replay: the decisions still to hand back for the current record.
    playing: VecDeque<Outcome>,
    /// Replay: calls the tape had no fitting decision for.
    missed: Vec<String>,
    /// Live: a new item's `prioritise` answer, asked outside the daemon's lock
    /// before its create (department, answer); used by the create's first
    /// `prioritise` call of that department, if it fits.
    preloaded: Option<(String, Decided<Vec<Priority>>)>,
    /// Live: questions deferred while applying the current input.
    wanted: Vec<Question>,
    /// Live: answers to deferred questions, asked outside the lock, for the
    /// [`Op::Decide`](super::journal::Op::Decide) being applied.
    answers: Vec<Answer>,
}

/// A decision deferred to be asked outside the daemon's lock: the call as the
/// router made it.
#[derive(Debug, Clone)]
pub(crate) enum Question {
    /// `match-agents` for one item over a candidate table.
    Match {
        /// Department whose rules decide.
        department: String,
        /// The item.
        item: ItemBatch,
        /// The candidates.
        candidates: CandidateTable,
    },
    /// `escalate` for a department's waiting items whose recheck came due.
    Escalate {
        /// Department whose rules decide.
        department: String,
        /// The items.
        items: ItemBatch,
    },
}

impl Question {
    /// The department whose rules answer.
    pub(crate) fn department(&self) -> &str {
        match self {
            Question::Match { department, .. } | Question::Escalate { department, .. } => department,
        }
    }

    /// Ask `rules` (the department's rules below the tape; no lock held).
    pub(crate) fn ask(self, rules: &dyn RuleSet) -> Answer {
        match self {
            Question::Match { department, item, candidates } => Answer::Match {
                department,
                item: item.rows.first().map_or(0, |row| row.id),
                agents: candidates.agent_ids.clone(),
                decided: rules.match_agents(&item, &candidates),
            },
            Question::Escalate { department, items } => Answer::Escalate {
                department,
                items: items.rows.iter().map(|row| row.id).collect(),
                decided: rules.escalate(&items),
            },
        }
    }
}

/// The answer to a [`Question`], and what it fits: a later call fits if it asks
/// the same department about the same item over the same candidates (in the
/// same order), or, for `escalate`, about items this answer covers.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// `match-agents`.
    Match {
        /// Department.
        department: String,
        /// Item id.
        item: u64,
        /// Candidate agent ids, in table order.
        agents: Vec<u64>,
        /// The answer.
        decided: Decided<MatchResult>,
    },
    /// `escalate`, one answer per item of `items`.
    Escalate {
        /// Department.
        department: String,
        /// Item ids, in batch order.
        items: Vec<u64>,
        /// The answers.
        decided: Decided<Vec<Escalation>>,
    },
}

impl Tape {
    fn state(&self) -> MutexGuard<'_, TapeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start recording the decisions of a new live input.
    pub(crate) fn record(&self) {
        let mut state = self.state();
        state.replaying = false;
        state.recorded.clear();
    }

    /// Hand the next live `prioritise` of `department` this answer (asked
    /// outside the lock); see [`Tape::clear_preloaded`].
    pub(crate) fn preload(&self, department: String, answer: Decided<Vec<Priority>>) {
        self.state().preloaded = Some((department, answer));
    }

    /// Drop a preloaded answer the create did not use (the item went to the
    /// exception queue, say).
    pub(crate) fn clear_preloaded(&self) {
        self.state().preloaded = None;
    }

    /// Questions deferred since the last call, to ask outside the lock.
    pub(crate) fn take_wanted(&self) -> Vec<Question> {
        std::mem::take(&mut self.state().wanted)
    }

    /// Answers (asked outside the lock) for the deferred calls about to be
    /// taken again; see [`Tape::clear_answers`].
    pub(crate) fn preload_answers(&self, answers: Vec<Answer>) {
        self.state().answers = answers;
    }

    /// Drop answers no call used (the item was offered meanwhile, say).
    pub(crate) fn clear_answers(&self) {
        self.state().answers.clear();
    }

    /// The preloaded `match-agents` answer for exactly this call. It stays for
    /// the same question later in the settle: filling an agent asks about
    /// each waiting item in turn, and must move past one the rule refused.
    fn take_match_answer(
        &self,
        department: &str,
        item: &ItemBatch,
        candidates: &CandidateTable,
    ) -> Option<Decided<MatchResult>> {
        let id = item.rows.first()?.id;
        self.state().answers.iter().find_map(|a| match a {
            Answer::Match { department: d, item: i, agents, decided }
                if d == department && *i == id && *agents == candidates.agent_ids =>
            {
                Some(decided.clone())
            }
            _ => None,
        })
    }

    /// Preloaded `escalate` answers covering every item of `items`, in batch
    /// order, with the source of the first; `None` unless all are covered.
    fn escalate_answers(&self, department: &str, items: &ItemBatch) -> Option<Decided<Vec<Escalation>>> {
        let state = self.state();
        let mut source = None;
        let mut value = Vec::with_capacity(items.len());
        for row in &items.rows {
            let found = state.answers.iter().find_map(|a| match a {
                Answer::Escalate { department: d, items, decided } if d == department => {
                    let at = items.iter().position(|&id| id == row.id)?;
                    Some((decided.value.get(at).cloned().unwrap_or_default(), &decided.source))
                }
                _ => None,
            })?;
            source.get_or_insert_with(|| found.1.clone());
            value.push(found.0);
        }
        Some(Decided { value, source: source? })
    }

    /// Keep `question` for the caller to ask outside the lock.
    fn want(&self, question: Question) {
        self.state().wanted.push(question);
    }

    /// The decisions recorded since [`Tape::record`].
    pub(crate) fn take(&self) -> Vec<Outcome> {
        std::mem::take(&mut self.state().recorded)
    }

    /// Replay `outcomes` for the next record.
    pub(crate) fn play(&self, outcomes: Vec<Outcome>) {
        let mut state = self.state();
        state.replaying = true;
        state.playing = outcomes.into();
        state.missed.clear();
    }

    /// End a record's replay: `Err` describes how the router's calls and the
    /// recorded decisions disagreed.
    pub(crate) fn finish(&self) -> Result<(), String> {
        let mut state = self.state();
        state.replaying = false;
        let left = std::mem::take(&mut state.playing);
        let missed = std::mem::take(&mut state.missed);
        if missed.is_empty() && left.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} call(s) without a recorded decision ({}), {} recorded decision(s) not asked for",
            missed.len(),
            missed.join(", "),
            left.len()
        ))
    }
}

/// A department's rules as the router sees them in the daemon; see the module docs.
pub(crate) struct TapedRules {
    department: String,
    inner: Arc<dyn RuleSet>,
    tape: Arc<Tape>,
    catalog: SharedCatalog,
}

impl TapedRules {
    /// Tape `inner`'s decisions for `department`.
    pub(crate) fn new(department: &str, inner: Arc<dyn RuleSet>, tape: Arc<Tape>, catalog: SharedCatalog) -> Self {
        TapedRules { department: department.to_owned(), inner, tape, catalog }
    }

    fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaying: the next recorded decision if `fits` it, else note the miss.
    fn next_recorded(&self, hook: &str, fits: impl Fn(&Outcome) -> bool) -> Option<Option<Outcome>> {
        let mut state = self.tape.state();
        if !state.replaying {
            return None;
        }
        match state.playing.front() {
            Some(outcome) if fits(outcome) => Some(state.playing.pop_front()),
            _ => {
                state.missed.push(format!("{hook} for {}", self.department));
                Some(None)
            }
        }
    }

    fn push(&self, outcome: Outcome) {
        self.tape.state().recorded.push(outcome);
    }

    /// What answers a call the tape cannot: the built-in rule, labelled.
    fn replay_fallback(&self) -> RuleSource {
        RuleSource::Fallback {
            plugin: self.department.clone(),
            generation: 0,
            reason: "replay: the journal held no decision for this call".into(),
        }
    }

    /// An id for a recorded name (`#<id>` keeps an id that had no name).
    fn id_of(&self, kind: NameKind, name: &str) -> u32 {
        if let Some(id) = name.strip_prefix('#').and_then(|n| n.parse().ok()) {
            return id;
        }
        if let Some(id) = self.catalog().table(kind).id(name) {
            return id;
        }
        self.catalog.write().unwrap_or_else(|p| p.into_inner()).table_mut(kind).intern(name)
    }
}

/// A name for an interned id, or `#<id>` if it has none.
fn name_of(catalog: &Catalog, kind: NameKind, id: u32) -> String {
    catalog.table(kind).name(id).map(str::to_owned).unwrap_or_else(|| format!("#{id}"))
}

impl RuleSet for TapedRules {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        let n = items.len();
        let fits = |o: &Outcome| matches!(o, Outcome::Prioritise { answers, .. } if answers.len() == n);
        match self.next_recorded("prioritise", fits) {
            Some(Some(Outcome::Prioritise { by, answers })) => Decided {
                value: answers
                    .into_iter()
                    .map(|a| Priority {
                        priority: a.priority,
                        queue: a.queue.map(|q| QueueId(self.id_of(NameKind::Queue, &q))),
                        reason: a.reason,
                    })
                    .collect(),
                source: by.into(),
            },
            Some(_) => Decided { value: BuiltInRules::prioritise(items), source: self.replay_fallback() },
            None => {
                let preloaded = {
                    let mut state = self.tape.state();
                    match state.preloaded.take() {
                        Some((department, answer)) if department == self.department && answer.value.len() == n => {
                            Some(answer)
                        }
                        other => {
                            state.preloaded = other;
                            None
                        }
                    }
                };
                let decided = preloaded.unwrap_or_else(|| self.inner.prioritise(items));
                let answers = {
                    let catalog = self.catalog();
                    decided
                        .value
                        .iter()
                        .map(|p| PriorityOutcome {
                            priority: p.priority,
                            queue: p.queue.map(|q| name_of(&catalog, NameKind::Queue, q.0)),
                            reason: p.reason.clone(),
                        })
                        .collect()
                };
                self.push(Outcome::Prioritise { by: Origin::from(&decided.source), answers });
                decided
            }
        }
    }

    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        let n = items.len();
        let fits = |o: &Outcome| matches!(o, Outcome::Escalate { answers, .. } if answers.len() == n);
        match self.next_recorded("escalate", fits) {
            Some(Some(Outcome::Escalate { by, answers })) => Decided {
                value: answers
                    .into_iter()
                    .map(|a| Escalation {
                        actions: a
                            .actions
                            .into_iter()
                            .map(|action| match action {
                                ActionOutcome::RaiseBy(n) => EscalationAction::RaiseBy(n),
                                ActionOutcome::RaiseTo(n) => EscalationAction::RaiseTo(n),
                                ActionOutcome::RelaxLevels(n) => EscalationAction::RelaxLevels(n),
                                ActionOutcome::DropSkill(s) => {
                                    EscalationAction::DropSkill(SkillId(self.id_of(NameKind::Skill, &s)))
                                }
                                ActionOutcome::MoveTo(q) => {
                                    EscalationAction::MoveTo(QueueId(self.id_of(NameKind::Queue, &q)))
                                }
                                ActionOutcome::Alert(text) => EscalationAction::Alert(text),
                            })
                            .collect(),
                        recheck_in_ms: a.recheck_in_ms,
                    })
                    .collect(),
                source: by.into(),
            },
            Some(_) => Decided { value: BuiltInRules::escalate(items), source: self.replay_fallback() },
            None => {
                let decided = if !self.inner.calls_plugin(Hook::Escalate) {
                    // The built-in rule: nothing to wait for.
                    self.inner.escalate(items)
                } else {
                    self.tape.escalate_answers(&self.department, items).unwrap_or_else(|| {
                        self.tape
                            .want(Question::Escalate { department: self.department.clone(), items: items.clone() });
                        Decided { value: BuiltInRules::escalate(items), source: RuleSource::Deferred }
                    })
                };
                let answers = {
                    let catalog = self.catalog();
                    decided
                        .value
                        .iter()
                        .map(|e| EscalationOutcome {
                            actions: e
                                .actions
                                .iter()
                                .map(|action| match action {
                                    EscalationAction::RaiseBy(n) => ActionOutcome::RaiseBy(*n),
                                    EscalationAction::RaiseTo(n) => ActionOutcome::RaiseTo(*n),
                                    EscalationAction::RelaxLevels(n) => ActionOutcome::RelaxLevels(*n),
                                    EscalationAction::DropSkill(s) => {
                                        ActionOutcome::DropSkill(name_of(&catalog, NameKind::Skill, s.0))
                                    }
                                    EscalationAction::MoveTo(q) => {
                                        ActionOutcome::MoveTo(name_of(&catalog, NameKind::Queue, q.0))
                                    }
                                    EscalationAction::Alert(text) => ActionOutcome::Alert(text.clone()),
                                })
                                .collect(),
                            recheck_in_ms: e.recheck_in_ms,
                        })
                        .collect()
                };
                self.push(Outcome::Escalate { by: Origin::from(&decided.source), answers });
                decided
            }
        }
    }

    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        match self.next_recorded("match-agents", |o| matches!(o, Outcome::Match { .. })) {
            Some(Some(Outcome::Match { by, result })) => Decided { value: result, source: by.into() },
            Some(_) => Decided { value: BuiltInRules::match_agents(item, candidates), source: self.replay_fallback() },
            None => {
                let decided = if !self.inner.calls_plugin(Hook::Match) {
                    self.inner.match_agents(item, candidates)
                } else {
                    self.tape.take_match_answer(&self.department, item, candidates).unwrap_or_else(|| {
                        self.tape.want(Question::Match {
                            department: self.department.clone(),
                            item: item.clone(),
                            candidates: candidates.clone(),
                        });
                        Decided { value: MatchResult::Ranked(Vec::new()), source: RuleSource::Deferred }
                    })
                };
                self.push(Outcome::Match { by: Origin::from(&decided.source), result: decided.value.clone() });
                decided
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_contract::{NewCandidate, NewItem};

    /// Answers that could only come from the wrapped rules: priority 42, a
    /// move to `vip`, an alert, and candidate 1 preferred.
    struct Distinct {
        catalog: SharedCatalog,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl RuleSet for Distinct {
        fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let vip = self.catalog.write().unwrap().queues.intern("vip");
            let source = RuleSource::Plugin { plugin: "billing".into(), generation: 7 };
            Decided {
                value: items.iter().map(|_| Priority::new(42).to_queue(QueueId(vip)).because("gold")).collect(),
                source,
            }
        }
        fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let skill = self.catalog.write().unwrap().skills.intern("french");
            let value = items
                .iter()
                .map(|_| {
                    Escalation::none()
                        .then(EscalationAction::RaiseBy(5))
                        .then(EscalationAction::DropSkill(SkillId(skill)))
                        .then(EscalationAction::Alert("late".into()))
                        .recheck_in_ms(9_000)
                })
                .collect();
            Decided { value, source: RuleSource::BuiltIn }
        }
        fn match_agents(&self, _: &ItemBatch, _: &CandidateTable) -> Decided<MatchResult> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let source = RuleSource::Fallback { plugin: "billing".into(), generation: 7, reason: "trap".into() };
            Decided { value: MatchResult::Scores(vec![0.5, 2.0]), source }
        }
    }

    fn batch() -> ItemBatch {
        let mut batch = ItemBatch::new(1_000);
        batch.push(NewItem { id: 1, ..Default::default() });
        batch.push(NewItem { id: 2, ..Default::default() });
        batch
    }

    fn table() -> CandidateTable {
        let mut table = CandidateTable::new(Vec::new());
        table.push(NewCandidate { id: 10, proficiency: &[], ..Default::default() });
        table.push(NewCandidate { id: 11, proficiency: &[], ..Default::default() });
        table
    }

    /// Scenario: decisions taken live, journaled as JSON and replayed into a
    /// host whose catalogue interned names in another order, come back equal
    /// (ids remapped through names) and the rules are not called again.
    #[test]
    fn replayed_decisions_equal_live_ones_without_calling_the_rules() {
        let catalog: SharedCatalog = Default::default();
        let rules = Arc::new(Distinct { catalog: catalog.clone(), calls: Default::default() });
        let tape = Arc::new(Tape::default());
        let taped = TapedRules::new("billing", rules.clone(), tape.clone(), catalog.clone());
        tape.record();
        let first = (taped.escalate(&batch()), taped.match_agents(&batch(), &table()));
        assert_eq!((first.0.source, first.1.source), (RuleSource::Deferred, RuleSource::Deferred));
        // Asked outside the lock, then taken again with the answers at hand.
        let answers = tape.take_wanted().into_iter().map(|q| q.ask(&*rules)).collect();
        tape.preload_answers(answers);
        let live = (taped.prioritise(&batch()), taped.escalate(&batch()), taped.match_agents(&batch(), &table()));
        tape.clear_answers();
        let mut outcomes = tape.take();
        assert_eq!(outcomes.len(), 5);
        assert!(outcomes[..2].iter().all(|o| matches!(
            o,
            Outcome::Escalate { by: Origin::Deferred, .. } | Outcome::Match { by: Origin::Deferred, .. }
        )));
        outcomes.drain(..2);
        let json = serde_json::to_string(&outcomes).unwrap();
        assert!(json.contains("\"vip\"") && json.contains("french"), "names, not ids: {json}");

        // Another host: `vip` and `french` get other ids there.
        let other: SharedCatalog = Default::default();
        other.write().unwrap().queues.intern("first");
        other.write().unwrap().skills.intern("dutch");
        let replay_rules = Arc::new(Distinct { catalog: other.clone(), calls: Default::default() });
        let replay_tape = Arc::new(Tape::default());
        let replayed = TapedRules::new("billing", replay_rules.clone(), replay_tape.clone(), other.clone());
        replay_tape.play(serde_json::from_str(&json).unwrap());
        let again =
            (replayed.prioritise(&batch()), replayed.escalate(&batch()), replayed.match_agents(&batch(), &table()));
        assert_eq!(replay_tape.finish(), Ok(()));
        assert_eq!(replay_rules.calls.load(std::sync::atomic::Ordering::Relaxed), 0, "replay never calls the rules");

        let vip = other.read().unwrap().queues.id("vip").unwrap();
        let french = other.read().unwrap().skills.id("french").unwrap();
        assert_eq!(again.0.value[0].queue, Some(QueueId(vip)));
        assert_ne!(Some(QueueId(vip)), live.0.value[0].queue, "the ids differ between the hosts");
        assert_eq!((again.0.value[1].priority, again.0.value[1].reason.as_deref()), (42, Some("gold")));
        assert_eq!(again.0.source, live.0.source);
        assert_eq!(again.1.value[0].actions[1], EscalationAction::DropSkill(SkillId(french)));
        assert_eq!(again.1.value[0].actions[2], live.1.value[0].actions[2]);
        assert_eq!(again.1.value[0].recheck_in_ms, Some(9_000));
        assert_eq!((again.2.value, again.2.source), (live.2.value, live.2.source));
    }

    /// A replay asking for a decision the tape does not hold gets the built-in
    /// answer, labelled, and the record is reported as diverged.
    #[test]
    fn a_call_the_tape_lacks_falls_back_and_is_reported() {
        let catalog: SharedCatalog = Default::default();
        let rules = Arc::new(Distinct { catalog: catalog.clone(), calls: Default::default() });
        let tape = Arc::new(Tape::default());
        let taped = TapedRules::new("billing", rules.clone(), tape.clone(), catalog);
        let recorded = Outcome::Match { by: Origin::BuiltIn, result: MatchResult::Ranked(vec![1]) };
        tape.play(vec![recorded]);
        let answer = taped.prioritise(&batch());
        assert_eq!(answer.value.iter().map(|p| p.priority).collect::<Vec<_>>(), vec![0, 0]);
        assert!(matches!(answer.source, RuleSource::Fallback { ref reason, .. } if reason.contains("replay")));
        let why = tape.finish().unwrap_err();
        assert!(
            why.contains("prioritise for billing") && why.contains("1 recorded decision(s) not asked for"),
            "{why}"
        );
        assert_eq!(rules.calls.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    /// An answer asked outside the lock is used by the create's `prioritise`
    /// of its department (and journaled like any other), not asked again; one
    /// for another department, or of another size, is not used.
    #[test]
    fn a_preloaded_answer_is_used_once_by_its_department() {
        let catalog: SharedCatalog = Default::default();
        let rules = Arc::new(Distinct { catalog: catalog.clone(), calls: Default::default() });
        let tape = Arc::new(Tape::default());
        let taped = TapedRules::new("billing", rules.clone(), tape.clone(), catalog);
        let mut one = ItemBatch::new(1_000);
        one.push(NewItem { id: 1, ..Default::default() });
        let asked_outside = Decided { value: vec![Priority::new(77)], source: RuleSource::BuiltIn };
        let calls = || rules.calls.load(std::sync::atomic::Ordering::Relaxed);

        tape.record();
        tape.preload("claims".into(), asked_outside.clone());
        assert_eq!(taped.prioritise(&one).value[0].priority, 42, "another department's answer is not used");
        tape.preload("billing".into(), asked_outside.clone());
        assert_eq!(taped.prioritise(&batch()).value[0].priority, 42, "an answer for one item does not serve two");
        assert_eq!(calls(), 2);
        assert_eq!(taped.prioritise(&one).value[0].priority, 77);
        assert_eq!(calls(), 2, "the preloaded answer was used, not asked again");
        assert_eq!(taped.prioritise(&one).value[0].priority, 42, "and only once");
        let recorded = tape.take();
        assert_eq!(recorded.len(), 4, "every answer is journaled, the preloaded one too");
        assert!(matches!(&recorded[2], Outcome::Prioritise { answers, .. } if answers[0].priority == 77));
    }

    /// Live, `match-agents` and `escalate` never call the rules: they defer and
    /// keep the question. An answer serves only a call that asks the same
    /// thing: same department and item, same candidates in the same order;
    /// for `escalate`, items it covers (a subset is fine: an item offered
    /// meanwhile has left the batch).
    #[test]
    fn deferred_calls_take_only_answers_that_fit() {
        let catalog: SharedCatalog = Default::default();
        let rules = Arc::new(Distinct { catalog: catalog.clone(), calls: Default::default() });
        let tape = Arc::new(Tape::default());
        let taped = TapedRules::new("billing", rules.clone(), tape.clone(), catalog.clone());
        let calls = || rules.calls.load(std::sync::atomic::Ordering::Relaxed);
        tape.record();
        assert_eq!(taped.match_agents(&batch(), &table()).source, RuleSource::Deferred);
        assert_eq!(taped.escalate(&batch()).source, RuleSource::Deferred);
        assert_eq!(calls(), 0, "nothing is asked under the lock");
        let answers: Vec<Answer> = tape.take_wanted().into_iter().map(|q| q.ask(&*rules)).collect();
        assert_eq!(calls(), 2);

        // Another candidate order: the ranking's indexes would name other agents.
        tape.preload_answers(answers.clone());
        let mut reordered = CandidateTable::new(Vec::new());
        reordered.push(NewCandidate { id: 11, proficiency: &[], ..Default::default() });
        reordered.push(NewCandidate { id: 10, proficiency: &[], ..Default::default() });
        assert_eq!(taped.match_agents(&batch(), &reordered).source, RuleSource::Deferred);
        // Another department's rules.
        let claims = TapedRules::new("claims", rules.clone(), tape.clone(), catalog);
        assert_eq!(claims.match_agents(&batch(), &table()).source, RuleSource::Deferred);
        assert_eq!(claims.escalate(&batch()).source, RuleSource::Deferred);
        // An item the answer does not cover.
        let mut other = ItemBatch::new(1_000);
        other.push(NewItem { id: 1, ..Default::default() });
        other.push(NewItem { id: 3, ..Default::default() });
        assert_eq!(taped.escalate(&other).source, RuleSource::Deferred);
        assert_eq!(tape.take_wanted().len(), 4, "each misfit is a new question");

        // The call as asked, and a subset for escalate.
        let matched = taped.match_agents(&batch(), &table());
        assert_eq!(matched.value, MatchResult::Scores(vec![0.5, 2.0]));
        assert_eq!(taped.match_agents(&batch(), &table()).value, matched.value, "and again, the same question");
        let mut second = ItemBatch::new(1_000);
        second.push(NewItem { id: 2, ..Default::default() });
        let escalated = taped.escalate(&second);
        assert_eq!(escalated.source, RuleSource::BuiltIn);
        assert_eq!(escalated.value[0].recheck_in_ms, Some(9_000));
        tape.clear_answers();
        assert_eq!(taped.escalate(&second).source, RuleSource::Deferred, "answers end with their decide");
        assert_eq!(calls(), 2, "still only the two calls made outside");
    }
}
