//! Escalation: the `escalate` rule asked about waiting items when they start
//! waiting and when their recheck comes due; its actions applied (raise,
//! relax, drop a skill, move, alert) with a floor, a cap and a count on
//! rechecks; supervisor alerts and their acknowledgement.

use super::*;

impl Router {
    pub(super) fn run_escalations(&mut self, mut ids: Vec<u64>) {
        let now = self.now_ms();
        ids.sort_unstable_by_key(|id| (self.items.get(id).map(|i| i.department), *id));
        let mut start = 0;
        while start < ids.len() {
            let department = self.items.get(&ids[start]).map(|i| i.department);
            let mut end = start + 1;
            while end < ids.len() && self.items.get(&ids[end]).map(|i| i.department) == department {
                end += 1;
            }
            let group: Vec<u64> = ids[start..end].to_vec();
            start = end;
            let Some(d) = department else { continue };
            let items: Vec<&Item> = group.iter().filter_map(|id| self.items.get(id)).collect();
            let batch = self.batch_of(&items, now);
            let decided = self.departments[d].rules.escalate(&batch);
            if decided.source == RuleSource::Deferred {
                for id in group {
                    if let Some(generation) = self.items.get(&id).map(|i| i.escalation_generation) {
                        let item = ItemId(id);
                        self.defer(
                            DeferredCall::Escalate { item, generation },
                            Timer::Escalate { item: id, generation },
                            now,
                        );
                    }
                }
                continue;
            }
            let answers = decided.value;
            for (i, id) in group.iter().enumerate() {
                let escalation = answers.get(i).cloned().unwrap_or_default();
                self.apply_escalation(*id, escalation, &decided.source, now);
            }
        }
    }

    pub(super) fn apply_escalation(&mut self, id: u64, escalation: Escalation, source: &RuleSource, now: u64) {
        let mut notes: Vec<String> = Vec::new();
        for action in escalation.actions {
            let Some(item) = self.items.get_mut(&id) else {
                return;
            };
            if item.status != ItemStatus::Queued {
                break;
            }
            match action {
                EscalationAction::RaiseBy(n) => {
                    self.reprioritise(id, |p| p.saturating_add(n));
                    notes.push(format!("raise priority by {n}"));
                }
                EscalationAction::RaiseTo(n) => {
                    self.reprioritise(id, |p| p.max(n));
                    notes.push(format!("raise priority to {n}"));
                }
                EscalationAction::RelaxLevels(n) => {
                    for r in &mut item.skills {
                        r.level = r.level.saturating_sub(n).max(1);
                    }
                    notes.push(format!("relax skill levels by {n}"));
                }
                EscalationAction::DropSkill(skill) => {
                    item.skills.retain(|r| r.skill != skill);
                    notes.push(format!("drop skill `{}`", self.skill_name(skill.0)));
                }
                EscalationAction::MoveTo(queue) => match self.queue_by_catalog.get(&queue.0).copied() {
                    Some(to) => {
                        notes.push(format!("move to queue `{}`", self.queues[to].spec.name));
                        self.move_queue(id, to, now);
                    }
                    None => notes.push(format!("ignored: move to unknown queue id {}", queue.0)),
                },
                EscalationAction::Alert(message) => {
                    let message = truncate_to(message, self.options.limits.alert_bytes);
                    let alert = Alert {
                        id: self.next_alert,
                        at_ms: now,
                        item: ItemId(id),
                        department: self.departments[item.department].spec.name.clone(),
                        message,
                        acknowledged: None,
                    };
                    self.next_alert += 1;
                    notes.push(format!("alert: {}", alert.message));
                    self.alerts.push_back(alert.clone());
                    while self.alerts.len() > self.options.retention.alerts.max(1) {
                        self.alerts.pop_front();
                        self.stats.alerts_dropped += 1;
                    }
                    self.emit(Event::Alert(alert));
                }
            }
        }
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        item.escalation_generation += 1;
        let generation = item.escalation_generation;
        if !notes.is_empty() {
            item.explanation.priority = item.priority;
            let explanation = &mut item.explanation;
            explanation.escalations.push(EscalationNote { at_ms: now, source: source.clone(), actions: notes.clone() });
            let keep = self.options.retention.notes_per_item.max(1);
            if explanation.escalations.len() > keep {
                let excess = explanation.escalations.len() - keep;
                explanation.escalations.drain(..excess);
                explanation.escalations_dropped += excess as u64;
                self.stats.notes_dropped += excess as u64;
            }
            let text = notes.join(", ");
            self.case_step(id, || format!("escalated: {text}"));
            self.emit(Event::Escalated { at_ms: now, item: ItemId(id), actions: notes.clone() });
        }
        if let Some(ms) = escalation.recheck_in_ms {
            // At least a tick, at most the cap, and only so many times per item.
            let floor = self.options.tick_floor_ms.max(1);
            let ms = ms.max(floor).min(self.options.limits.max_recheck_ms.max(floor));
            let allowed = self.options.limits.rechecks_per_item;
            match self.items.get_mut(&id) {
                Some(item) if item.rechecks < allowed => {
                    item.rechecks += 1;
                    self.arm(now.saturating_add(ms), Timer::Escalate { item: id, generation });
                }
                _ => self.stats.rechecks_refused += 1,
            }
        }
        if !notes.is_empty() {
            self.dispatch_item(id);
        }
    }

    pub(super) fn reprioritise(&mut self, id: u64, f: impl FnOnce(i32) -> i32) {
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        let queued = item.status == ItemStatus::Queued;
        if queued {
            self.queues[item.queue].waiting.remove(&item.key());
        }
        item.priority = f(item.priority);
        if queued {
            self.queues[item.queue].waiting.insert(item.key());
        }
    }

    /// Supervisor alerts raised by escalation rules, oldest first, with their
    /// acknowledgement (the most recent [`Retention::alerts`]).
    pub fn alerts(&self) -> &VecDeque<Alert> {
        &self.alerts
    }

    /// Alert `id` is acknowledged by `by` now. Acknowledging again keeps the
    /// first acknowledgement. An alert past retention (or never raised) is
    /// [`Error::Unknown`].
    pub fn acknowledge_alert(&mut self, id: u64, by: &str) -> Result<&Alert> {
        let now = self.now_ms();
        let by = truncate_to(by.to_owned(), self.options.limits.name_bytes);
        let position = self
            .alerts
            .binary_search_by_key(&id, |a| a.id)
            .map_err(|_| Error::Unknown { kind: "alert", name: id.to_string() })?;
        let alert = &mut self.alerts[position];
        alert.acknowledged.get_or_insert(Acknowledgement { by, at_ms: now });
        Ok(&self.alerts[position])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::testing::{available, check_invariants, item, router};
    use super::*;

    /// Escalate rules that count their calls, raise by 1 and recheck in 10 s.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl RuleSet for Counting {
        fn prioritise(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<switchyard_contract::Priority>> {
            crate::rules::Decided::built_in(BuiltInRules::prioritise(items))
        }
        fn escalate(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<Escalation>> {
            self.0.fetch_add(items.len(), Ordering::SeqCst);
            let raise = || Escalation::none().then(EscalationAction::RaiseBy(1)).recheck_in_ms(10_000);
            crate::rules::Decided::built_in(items.iter().map(|_| raise()).collect())
        }
        fn match_agents(&self, item: &ItemBatch, c: &CandidateTable) -> crate::rules::Decided<MatchResult> {
            crate::rules::Decided::built_in(BuiltInRules::match_agents(item, c))
        }
    }

    /// Only the latest recheck of an item asks the rules: a timer armed before
    /// the item was escalated again is stale and fires for nothing. A raise
    /// keeps the queue ordered.
    #[test]
    fn a_stale_recheck_asks_nothing() {
        let (mut router, clock) = router();
        let rules = Arc::new(Counting::default());
        router.set_rules("billing", rules.clone()).unwrap();
        let id = router.create_item(item("billing", Channel::Voice));
        assert_eq!(rules.0.load(Ordering::SeqCst), 1, "asked when it started waiting");
        let generation = router.items[&id.0].escalation_generation;
        router.arm(clock.now_ms() + 5_000, Timer::Escalate { item: id.0, generation: generation - 1 });
        clock.advance(5_000);
        router.on_tick();
        assert_eq!(rules.0.load(Ordering::SeqCst), 1, "the stale timer asked nothing");
        clock.advance(5_000);
        router.on_tick();
        assert_eq!(rules.0.load(Ordering::SeqCst), 2, "the current recheck did");
        assert_eq!(router.item_view(id).unwrap().priority, 2);
        check_invariants(&router);
    }

    /// A recheck that comes due while the item is offered asks nothing and
    /// looks again once the offer has had its time.
    #[test]
    fn an_offered_item_is_rechecked_after_the_offer() {
        let (mut router, clock) = router();
        let rules = Arc::new(Counting::default());
        router.set_rules("billing", rules.clone()).unwrap();
        let id = router.create_item(item("billing", Channel::Voice));
        available(&mut router, "ann", &[("billing", 5)]);
        assert_eq!(router.item_status(id), Some(ItemStatus::Offered));
        clock.advance(10_000);
        router.on_tick();
        assert_eq!(rules.0.load(Ordering::SeqCst), 1, "offered: not escalated");
        check_invariants(&router);
        router.reject_offer(id).unwrap();
        clock.advance(router.departments[0].spec.offer_timeout_ms);
        router.on_tick();
        assert_eq!(rules.0.load(Ordering::SeqCst), 2, "waiting again: the recheck ran");
        check_invariants(&router);
    }
}
