//! Dispatch, the hot path: the batch and candidate table a rule sees, the
//! `match-agents` call, offering a waiting item to the best free agent and
//! filling an agent who frees up; and decisions the rules deferred
//! ([`RuleSource::Deferred`]) taken again ([`Router::decide_deferred`]).

use super::*;

/// How many waiting items filling an agent asks the match rule about in one
/// round when the answers are deferred (see [`Router::decide_deferred`]): the
/// first it would offer may be refused.
const FILL_LOOKAHEAD: usize = 8;

/// How long a deferred decision ([`RuleSource::Deferred`]) may go unanswered
/// before the router asks again by itself: the embedder normally answers
/// within milliseconds ([`Router::decide_deferred`]); this covers one that
/// stopped before it could (the daemon killed between the two).
const DEFERRED_RETRY_MS: u64 = 1_000;

/// How many waiting items an agent that frees up looks at per queue before
/// giving up (keeps a long backlog of items they cannot take cheap).
const SCAN_LIMIT: usize = 64;

impl Router {
    pub(super) fn batch_of(&self, items: &[&Item], now: u64) -> ItemBatch {
        let mut batch = ItemBatch::with_capacity(now, items.len());
        let mut attrs: Vec<(u32, &str)> = Vec::new();
        for item in items {
            attrs.clear();
            attrs.extend(item.attributes.iter().map(|(k, v)| (*k, v.as_str())));
            batch.push(NewItem {
                id: item.id,
                channel: Some(item.channel),
                queue: self.queues[item.queue].catalog_id,
                tier: item.tier,
                contacts: item.contacts,
                priority: item.priority,
                age_ms: now.saturating_sub(item.created_ms),
                due_in_ms: item.due_ms.map(|d| d as i64 - now as i64),
                value: item.value,
                skills: &item.skills,
                attributes: &attrs,
            });
        }
        batch
    }

    /// The candidate table for `item` over `agents` (already filtered), longest
    /// idle first: columns are the item's required skills, then every other skill
    /// a candidate holds.
    pub(super) fn candidate_table(&self, item: &Item, agents: &mut [usize], now: u64) -> CandidateTable {
        agents.sort_by_key(|&a| {
            let agent = &self.agents[a];
            let idle = if agent.total_load() == 0 { now.saturating_sub(agent.idle_since_ms) } else { 0 };
            (Reverse(idle), agent.total_load(), a)
        });
        let mut columns: Vec<u32> = item.skills.iter().map(|r| r.skill.0).collect();
        let required = columns.len();
        let mut others: Vec<u32> = Vec::new();
        for &a in agents.iter() {
            for &(skill, _) in &self.agents[a].skills {
                if !columns[..required].contains(&skill) {
                    others.push(skill);
                }
            }
        }
        others.sort_unstable();
        others.dedup();
        columns.extend(others);
        let mut table = CandidateTable::new(columns);
        let mut proficiency = Vec::with_capacity(table.skill_columns.len());
        for &a in agents.iter() {
            let agent = &self.agents[a];
            proficiency.clear();
            proficiency.extend(table.skill_columns.iter().map(|&s| agent.level(s)));
            let idle = if agent.total_load() == 0 { now.saturating_sub(agent.idle_since_ms) } else { 0 };
            table.push(NewCandidate {
                id: a as u64 + 1,
                proficiency: &proficiency,
                idle_ms: idle,
                occupancy: agent.work.occupancy(),
                load: agent.load,
            });
        }
        table
    }

    /// Ask the match rule; returns the chosen table index and the explanation
    /// parts, or `None` if the rules deferred the decision.
    pub(super) fn run_match(
        &self,
        item: &Item,
        table: &CandidateTable,
        now: u64,
    ) -> Option<(Option<usize>, Explanation)> {
        let batch = self.batch_of(&[item], now);
        let decided = self.departments[item.department].rules.match_agents(&batch, table);
        if decided.source == RuleSource::Deferred {
            return None;
        }
        let n = table.len();
        let ranking: Vec<usize> = decided.value.ranking().into_iter().filter(|&i| i < n).collect();
        let best = ranking.first().copied();
        let score = match (&decided.value, best) {
            (MatchResult::Scores(scores), Some(b)) => scores.get(b).copied(),
            _ => None,
        };
        let explanation = Explanation {
            matched_by: Some(decided.source),
            score,
            candidates_considered: n,
            candidates_qualified: ranking.len(),
            ..Default::default()
        };
        Some((best, explanation))
    }

    /// The rules deferred `call`: remember it for [`Router::take_deferred`] and
    /// arm the timer that asks again if nobody answers.
    ///
    /// No new timer while a deferred call is being redone, or a dispatch
    /// retried: the first deferral's timer still stands, and a retry that
    /// armed another would ask about an item the rule keeps refusing once a
    /// second for as long as it waits.
    pub(super) fn defer(&mut self, call: DeferredCall, retry: Timer, now: u64) {
        self.deferred.push(call);
        if !self.redoing {
            self.arm(now.saturating_add(DEFERRED_RETRY_MS), retry);
        }
    }

    /// Try to offer a waiting item to a free qualified agent.
    pub(super) fn dispatch_item(&mut self, id: u64) {
        let now = self.now_ms();
        let Some(item) = self.items.get(&id) else {
            return;
        };
        if item.status != ItemStatus::Queued {
            return;
        }
        let mut candidates: Vec<usize> = self.queues[item.queue]
            .agents
            .iter()
            .copied()
            .filter(|&a| self.agents[a].can_take(item.channel) && !item.refused_by(a, now))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let table = self.candidate_table(item, &mut candidates, now);
        let Some((best, explanation)) = self.run_match(item, &table, now) else {
            self.defer(DeferredCall::Dispatch { item: ItemId(id) }, Timer::Redispatch { item: id }, now);
            return;
        };
        match best {
            Some(index) => self.offer(id, candidates[index], explanation),
            None => {
                if let Some(item) = self.items.get_mut(&id) {
                    merge_match(&mut item.explanation, explanation, None);
                }
            }
        }
    }

    /// Offer waiting work to agent `a` while they have room and something fits.
    pub(super) fn fill_agent(&mut self, a: usize) {
        let now = self.now_ms();
        loop {
            if self.agents[a].presence != Presence::Available {
                return;
            }
            let mut picks: Vec<(bool, Reverse<i32>, u64, u64)> = Vec::new();
            for &q in &self.agents_queues(a) {
                let mut looked = 0;
                for &(priority, created, id) in &self.queues[q].waiting {
                    looked += 1;
                    if looked > SCAN_LIMIT {
                        break;
                    }
                    let Some(item) = self.items.get(&id) else {
                        continue;
                    };
                    if self.agents[a].can_take(item.channel) && !item.refused_by(a, now) {
                        picks.push((item.channel == Channel::Case, priority, created, id));
                    }
                }
            }
            if picks.is_empty() {
                return;
            }
            // Live and digital work before cases (cases fill idle time), then
            // priority, then age.
            picks.sort_unstable();
            let mut offered = false;
            // Picks whose answer was deferred, the first of them.
            let mut deferred: (usize, Option<u64>) = (0, None);
            for &(_, _, _, id) in picks.iter().take(SCAN_LIMIT) {
                let Some(item) = self.items.get(&id) else {
                    continue;
                };
                let mut one = [a];
                let table = self.candidate_table(item, &mut one, now);
                match self.run_match(item, &table, now) {
                    // Ask about the next picks in the same round too: the rule
                    // may refuse this one, and each round costs the embedder a
                    // trip outside its lock.
                    None => {
                        deferred = (deferred.0 + 1, deferred.1.or(Some(id)));
                        if deferred.0 >= FILL_LOOKAHEAD {
                            break;
                        }
                    }
                    // An earlier pick is undecided: it goes first if accepted.
                    Some(_) if deferred.0 > 0 => {}
                    Some((Some(_), explanation)) => {
                        self.offer(id, a, explanation);
                        offered = true;
                        break;
                    }
                    Some((None, _)) => {}
                }
            }
            if let (true, Some(first)) = (deferred.0 > 0, deferred.1) {
                let agent = AgentId(a as u64 + 1);
                self.defer(DeferredCall::Fill { agent }, Timer::Redispatch { item: first }, now);
                return;
            }
            if !offered {
                return;
            }
        }
    }

    pub(super) fn agents_queues(&self, a: usize) -> Vec<usize> {
        self.queues.iter().enumerate().filter(|(_, q)| q.agents.binary_search(&a).is_ok()).map(|(i, _)| i).collect()
    }

    /// The decisions deferred since the last call (see [`RuleSource::Deferred`]),
    /// in the order the router asked for them.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use switchyard_core::clock::VirtualClock;
    /// # use switchyard_core::router::{Router, RouterOptions};
    /// let mut router = Router::new(vec![], vec![], Arc::new(VirtualClock::new(0)), Default::default(), RouterOptions::default())?;
    /// assert!(router.take_deferred().is_empty()); // built-in rules never defer
    /// # Ok::<(), switchyard_core::error::Error>(())
    /// ```
    pub fn take_deferred(&mut self) -> Vec<DeferredCall> {
        std::mem::take(&mut self.deferred)
    }

    /// Take deferred decisions again, now that the rules can answer them: each
    /// call is redone against the current state (an item no longer waiting, or
    /// an escalation overtaken by a later one, is skipped). A rule may defer
    /// again (the state changed since it was asked); those calls are in the
    /// next [`Router::take_deferred`].
    pub fn decide_deferred(&mut self, calls: &[DeferredCall]) {
        self.redoing = true;
        self.redo(calls);
        self.redoing = false;
    }

    fn redo(&mut self, calls: &[DeferredCall]) {
        let mut escalations: Vec<u64> = Vec::new();
        for call in calls {
            match *call {
                DeferredCall::Dispatch { item } => self.dispatch_item(item.0),
                DeferredCall::Fill { agent } => {
                    if let Ok(a) = self.agent_ix(agent) {
                        self.fill_agent(a);
                    }
                }
                DeferredCall::Escalate { item, generation } => {
                    let due = self
                        .items
                        .get(&item.0)
                        .is_some_and(|i| i.status == ItemStatus::Queued && i.escalation_generation == generation);
                    if due && !escalations.contains(&item.0) {
                        escalations.push(item.0);
                    }
                }
            }
        }
        if !escalations.is_empty() {
            self.run_escalations(escalations);
        }
    }
}

pub(super) fn merge_match(target: &mut Explanation, found: Explanation, agent: Option<String>) {
    target.matched_by = found.matched_by;
    target.score = found.score;
    target.candidates_considered = found.candidates_considered;
    target.candidates_qualified = found.candidates_qualified;
    target.agent = agent;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::super::testing::{available, check_invariants, departments, item, offers, queues, router};
    use super::*;

    /// A waiting item goes to the qualified agent idle longest; the offer takes
    /// it out of the queue and onto the agent's load; an unqualified agent is
    /// not offered it however long idle.
    #[test]
    fn an_offer_goes_to_the_longest_idle_qualified_agent() {
        let (mut router, clock) = router();
        let novice = available(&mut router, "novice", &[("billing", 1)]);
        clock.advance(5_000);
        let ann = available(&mut router, "ann", &[("billing", 5)]);
        clock.advance(5_000);
        let bob = available(&mut router, "bob", &[("billing", 5)]);
        clock.advance(1_000);
        let first =
            router.create_item(NewWorkItem { skills: vec![("billing".into(), 3)], ..item("billing", Channel::Voice) });
        assert_eq!(offers(&mut router), vec![(first, ann)], "ann idled 6 s, bob 1 s; the novice lacks the level");
        check_invariants(&router);
        let second =
            router.create_item(NewWorkItem { skills: vec![("billing".into(), 3)], ..item("billing", Channel::Voice) });
        assert_eq!(offers(&mut router), vec![(second, bob)]);
        let third =
            router.create_item(NewWorkItem { skills: vec![("billing".into(), 3)], ..item("billing", Channel::Voice) });
        assert!(offers(&mut router).is_empty(), "nobody qualified is free");
        assert_eq!(router.waiting("billing").unwrap(), vec![third]);
        assert_eq!(router.agents[(novice.0 - 1) as usize].load, [0, 0, 0, 0]);
        check_invariants(&router);
    }

    /// An agent who frees up is offered live work before cases, and within a
    /// kind the higher priority, then the older.
    #[test]
    fn filling_an_agent_takes_live_work_before_cases() {
        let (mut router, clock) = router();
        let case = router.create_item(item("claims", Channel::Case));
        clock.advance(1_000);
        let low = router.create_item(NewWorkItem { priority: 1, ..item("billing", Channel::Chat) });
        clock.advance(1_000);
        let high = router.create_item(NewWorkItem { priority: 9, ..item("billing", Channel::Chat) });
        let ann = available(&mut router, "ann", &[("billing", 5), ("claims", 5)]);
        let offered: Vec<ItemId> = offers(&mut router)
            .into_iter()
            .map(|(i, a)| {
                assert_eq!(a, ann);
                i
            })
            .collect();
        assert_eq!(offered, vec![high, low], "chats first (she has room for both), the case waits");
        assert_eq!(router.item_status(case), Some(ItemStatus::Queued));
        check_invariants(&router);
    }

    /// Match rules that defer until told to answer.
    struct Deferring(AtomicBool);

    impl RuleSet for Deferring {
        fn prioritise(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<switchyard_contract::Priority>> {
            crate::rules::Decided::built_in(BuiltInRules::prioritise(items))
        }
        fn escalate(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<Escalation>> {
            crate::rules::Decided::built_in(BuiltInRules::escalate(items))
        }
        fn match_agents(&self, item: &ItemBatch, c: &CandidateTable) -> crate::rules::Decided<MatchResult> {
            if self.0.load(Ordering::SeqCst) {
                crate::rules::Decided::built_in(BuiltInRules::match_agents(item, c))
            } else {
                crate::rules::Decided { value: MatchResult::Ranked(Vec::new()), source: RuleSource::Deferred }
            }
        }
    }

    /// A deferred match changes nothing but the retry timer: the item waits in
    /// its queue as it was, the agent is free, the explanation is untouched —
    /// so the answer, when it comes, is taken on the state it was asked about.
    #[test]
    fn a_deferred_match_leaves_the_state_as_it_was() {
        let (mut router, _) = router();
        let rules = Arc::new(Deferring(AtomicBool::new(false)));
        router.set_rules("billing", rules.clone()).unwrap();
        let ann = available(&mut router, "ann", &[("billing", 5)]);
        let id = router.create_item(item("billing", Channel::Voice));
        let before =
            (router.waiting("billing").unwrap(), router.agents[(ann.0 - 1) as usize].load, router.item_view(id));
        assert_eq!(router.take_deferred(), vec![DeferredCall::Dispatch { item: id }]);
        assert!(offers(&mut router).is_empty());
        assert_eq!(before.0, vec![id]);
        assert_eq!(before.1, [0, 0, 0, 0]);
        assert_eq!(before.2.unwrap().explanation.matched_by, None);
        check_invariants(&router);
        let timers = router.timers.len();
        assert!(timers >= 1, "a retry is armed");

        rules.0.store(true, Ordering::SeqCst);
        router.decide_deferred(&[DeferredCall::Dispatch { item: id }]);
        assert_eq!(offers(&mut router), vec![(id, ann)]);
        assert!(router.item_view(id).unwrap().explanation.matched_by.is_some());
        check_invariants(&router);
        // Deciding again is a no-op: the item is no longer waiting.
        router.decide_deferred(&[DeferredCall::Dispatch { item: id }]);
        assert!(offers(&mut router).is_empty());
        check_invariants(&router);
    }

    /// Match rules that keep the occupancy column of the tables they see.
    #[derive(Default)]
    struct SeesOccupancy(std::sync::Mutex<Vec<Vec<f32>>>);

    impl RuleSet for SeesOccupancy {
        fn prioritise(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<switchyard_contract::Priority>> {
            crate::rules::Decided::built_in(BuiltInRules::prioritise(items))
        }
        fn escalate(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<Escalation>> {
            crate::rules::Decided::built_in(BuiltInRules::escalate(items))
        }
        fn match_agents(&self, item: &ItemBatch, c: &CandidateTable) -> crate::rules::Decided<MatchResult> {
            self.0.lock().unwrap().push(c.occupancy.clone());
            crate::rules::Decided::built_in(BuiltInRules::match_agents(item, c))
        }
    }

    /// The occupancy in a candidate table is the router's own (busy ÷ busy +
    /// idle over the activities closed so far): a reporting setting such as a
    /// simulation's warm-up does not change what a rule sees, and a snapshot
    /// keeps it.
    #[test]
    fn match_rules_see_the_routers_own_occupancy() {
        let mut seen = Vec::new();
        for warm_up_ms in [0, 3_600_000] {
            let (mut router, clock) = router();
            router.metrics =
                Metrics::new(MetricsConfig { measure_from_ms: warm_up_ms, ..MetricsConfig::default() }, 1_000);
            let rules = Arc::new(SeesOccupancy::default());
            router.set_rules("billing", rules.clone()).unwrap();
            let ann = available(&mut router, "ann", &[("billing", 5)]);
            clock.advance(10_000); // idle 10 s
            let first = router.create_item(item("billing", Channel::Voice));
            router.accept_offer(first).unwrap();
            clock.advance(30_000); // busy 30 s
            router.complete(first, Completion { resolved: true, handoff: None }).unwrap();
            router.create_item(item("billing", Channel::Voice));
            assert_eq!(offers(&mut router).len(), 2);
            let tables = rules.0.lock().unwrap().clone();
            assert_eq!(tables, vec![vec![0.0], vec![0.75]], "warm-up {warm_up_ms} ms");
            seen.push(tables);

            let snapshot = router.snapshot();
            let restored = Router::restore(
                departments(),
                queues(),
                Arc::new(clock.clone()),
                SharedCatalog::default(),
                RouterOptions::default(),
                snapshot,
            )
            .unwrap();
            if warm_up_ms == 0 {
                let a = (ann.0 - 1) as usize;
                assert_eq!(restored.agents[a].work, router.agents[a].work, "restored from the statistics");
            }
        }
        assert_eq!(seen[0], seen[1]);
    }

    /// Match rules that defer under the embedder's lock (`open` false) and,
    /// asked outside it, refuse everyone; they count the calls answered.
    #[derive(Default)]
    struct RefusesOutside {
        open: AtomicBool,
        answered: std::sync::atomic::AtomicUsize,
    }

    impl RuleSet for RefusesOutside {
        fn prioritise(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<switchyard_contract::Priority>> {
            crate::rules::Decided::built_in(BuiltInRules::prioritise(items))
        }
        fn escalate(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<Escalation>> {
            crate::rules::Decided::built_in(BuiltInRules::escalate(items))
        }
        fn match_agents(&self, _: &ItemBatch, _: &CandidateTable) -> crate::rules::Decided<MatchResult> {
            if !self.open.load(Ordering::SeqCst) {
                return crate::rules::Decided { value: MatchResult::Ranked(Vec::new()), source: RuleSource::Deferred };
            }
            self.answered.fetch_add(1, Ordering::SeqCst);
            crate::rules::Decided::built_in(MatchResult::Ranked(Vec::new()))
        }
    }

    /// An item the rule refuses while an agent is free is asked about once
    /// more by the deferral's retry, not once a second: a retry (or a redo)
    /// that defers again arms no new timer.
    #[test]
    fn a_refused_item_is_not_asked_about_every_second() {
        let (mut router, clock) = router();
        let rules = Arc::new(RefusesOutside::default());
        router.set_rules("billing", rules.clone()).unwrap();
        available(&mut router, "ann", &[("billing", 5)]);
        let id = router.create_item(item("billing", Channel::Voice));
        // What an embedder does: ask outside its lock, then redo.
        let settle = |router: &mut Router| loop {
            let calls = router.take_deferred();
            if calls.is_empty() {
                break;
            }
            rules.open.store(true, Ordering::SeqCst);
            router.decide_deferred(&calls);
            rules.open.store(false, Ordering::SeqCst);
        };
        settle(&mut router);
        assert_eq!(rules.answered.load(Ordering::SeqCst), 1);
        for _ in 0..10 {
            clock.advance(1_000);
            router.on_tick();
            settle(&mut router);
        }
        assert_eq!(rules.answered.load(Ordering::SeqCst), 2, "one retry in ten seconds");
        assert_eq!(router.item_status(id), Some(ItemStatus::Queued));
        check_invariants(&router);
    }
}
