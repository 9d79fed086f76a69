//! Intake: a new item checked against the limits, interned, linked to its
//! customer and case, prioritised, queued, offered or escalated — or sent to
//! the exception queue with the reason. Also the plans a front end uses to ask
//! `prioritise` before it takes its lock ([`Router::plan_intake`],
//! [`Router::plan_handoff`]), and queue moves.

use super::cases::{push_department, push_step};
use super::*;

impl Router {
    /// Create a work item. It is prioritised by its department's rule and offered
    /// at once if a qualified agent is free, or waits in its queue. An item that
    /// cannot be placed (unknown department or queue, invalid data, unusable rule
    /// answer) goes to the exception queue: the id is returned either way.
    ///
    /// An item over one of the [`Limits`] lands in the exception queue too, with
    /// the oversized data left out; call [`Router::check_item`] first to refuse it
    /// instead.
    pub fn create_item(&mut self, new: NewWorkItem) -> ItemId {
        self.create(new, None)
    }

    /// Whether `new` is within the router's [`Limits`]: names, skills,
    /// attributes, ids, due time, and room in the name catalogue for its new
    /// names. A front end calls it before accepting (journaling) a request;
    /// [`Error::Limit`] names the field. Unknown departments, queues and invalid
    /// levels are not refused here (they go to the exception queue).
    pub fn check_item(&self, new: &NewWorkItem) -> Result<()> {
        let l = &self.options.limits;
        for (field, name) in [("department", &new.department), ("queue", &new.queue)] {
            if name.len() > l.name_bytes {
                return Err(limit(field, "name bytes", l.name_bytes, name.len()));
            }
        }
        if new.skills.len() > l.skills_per_item {
            return Err(limit("skills", "skills per item", l.skills_per_item, new.skills.len()));
        }
        if let Some((name, _)) = new.skills.iter().find(|(name, _)| name.len() > l.name_bytes) {
            return Err(limit("skills", "name bytes", l.name_bytes, name.len()));
        }
        if new.attributes.len() > l.attributes_per_item {
            return Err(limit("attributes", "attributes per item", l.attributes_per_item, new.attributes.len()));
        }
        for (key, value) in &new.attributes {
            if key.len() > l.name_bytes {
                return Err(limit("attributes", "attribute key bytes", l.name_bytes, key.len()));
            }
            if value.len() > l.attribute_value_bytes {
                return Err(limit(
                    format!("attributes.{key}"),
                    "attribute value bytes",
                    l.attribute_value_bytes,
                    value.len(),
                ));
            }
        }
        for (field, id) in [("customer", &new.customer), ("case", &new.case)] {
            if let Some(id) = id
                && id.len() > l.id_bytes
            {
                return Err(limit(field, "id bytes", l.id_bytes, id.len()));
            }
        }
        if let Some(due) = new.due_in_ms {
            check_duration("due_in_ms", due)?;
        }
        let unknown = self.unknown_names(
            new.skills.iter().map(|(name, _)| name.as_str()),
            new.attributes.iter().map(|(key, _)| key.as_str()),
        );
        self.check_catalog(&unknown)
    }

    /// Reserve the id the next [`Router::create_item_as`] may use: a front end
    /// that asks the rules before it takes its lock (see [`Router::plan_intake`])
    /// shows the plugin the id the item will have.
    pub fn reserve_item_id(&mut self) -> ItemId {
        let id = self.next_item;
        self.next_item += 1;
        ItemId(id)
    }

    /// [`Router::create_item`] under an id from [`Router::reserve_item_id`] (or
    /// one a journal recorded); an id already in use gets a new one.
    pub fn create_item_as(&mut self, id: ItemId, new: NewWorkItem) -> ItemId {
        self.create_as(Some(id), new, None)
    }

    pub(super) fn create_as(&mut self, id: Option<ItemId>, new: NewWorkItem, handed_from: Option<u64>) -> ItemId {
        match id {
            Some(ItemId(id)) if id != 0 && !self.items.contains_key(&id) => {
                self.next_item = self.next_item.max(id + 1);
                self.create_with(id, new, handed_from)
            }
            _ => self.create(new, handed_from),
        }
    }

    /// The `prioritise` batch [`Router::create_item_as`] would hand the item's
    /// department for `new` under `id` at `now`, and the department's name, or
    /// `None` if the item would not reach its rules (over a limit, unknown
    /// department or queue, invalid data). Read-only but for interning names.
    ///
    /// A front end calls it under its lock, asks the rules *outside* the lock,
    /// and hands the answer back for the create (the daemon's tape does): so a
    /// slow plugin holds only its own request.
    pub fn plan_intake(&self, id: ItemId, new: &NewWorkItem, now: u64) -> Option<(String, ItemBatch)> {
        self.plan_create(id, new, now, None)
    }

    /// [`Router::plan_intake`] for the hand-off `handoff` that completing
    /// `item` would create under `id` (its customer and case are the item's).
    /// `None` also when `item` is unknown.
    pub fn plan_handoff(
        &self,
        item: ItemId,
        handoff: &NewWorkItem,
        id: ItemId,
        now: u64,
    ) -> Option<(String, ItemBatch)> {
        let next = self.handoff_item(item.0, handoff.clone())?;
        self.plan_create(id, &next, now, Some(item.0))
    }

    /// The follow-up `new` of item `from`, with `from`'s customer and case
    /// (a new case named after `from` if it had none).
    pub(super) fn handoff_item(&self, from: u64, mut new: NewWorkItem) -> Option<NewWorkItem> {
        let it = self.items.get(&from)?;
        new.customer = it.customer.clone();
        new.case = Some(it.case.clone().unwrap_or_else(|| format!("item-{from}")));
        Some(new)
    }

    pub(super) fn plan_create(
        &self,
        id: ItemId,
        new: &NewWorkItem,
        now: u64,
        handed_from: Option<u64>,
    ) -> Option<(String, ItemBatch)> {
        if self.check_item(new).is_err() {
            return None;
        }
        let built = self.build_item(id.0, new, now, handed_from);
        if built.problem.is_some() {
            return None;
        }
        let department = self.departments[built.item.department].spec.name.clone();
        Some((department, self.batch_of(&[&built.item], now)))
    }

    pub(super) fn create(&mut self, new: NewWorkItem, handed_from: Option<u64>) -> ItemId {
        let id = self.next_item;
        self.next_item += 1;
        self.create_with(id, new, handed_from)
    }

    pub(super) fn create_with(&mut self, id: u64, new: NewWorkItem, handed_from: Option<u64>) -> ItemId {
        self.created_since_prune += 1;
        if self.created_since_prune >= self.options.retention.prune_every {
            self.prune();
        }
        let now = self.now_ms();
        let channel = new.channel.unwrap_or(Channel::Voice);

        // Over a limit: keep nothing oversized, send it to the exception queue.
        let mut new = new;
        let over_limit = match self.check_item(&new) {
            Ok(()) => None,
            Err(e) => {
                self.stats.items_over_limit += 1;
                let name_bytes = self.options.limits.name_bytes;
                new.skills.clear();
                new.attributes.clear();
                new.customer = None;
                new.case = None;
                new.due_in_ms = None;
                new.department = truncate_to(new.department, name_bytes);
                new.queue = truncate_to(new.queue, name_bytes);
                Some(ExceptionReason::InvalidData(e.to_string()))
            }
        };

        let Built { mut item, problem: built_problem, repeat_of } = self.build_item(id, &new, now, handed_from);
        let problem = over_limit.or(built_problem);
        let department = self.department_index.get(&new.department).copied();
        let queue = self.queue_index.get(&new.queue).copied();
        if let Some((last_item, last_queue)) = repeat_of {
            self.emit(Event::Repeat {
                at_ms: now,
                item: ItemId(id),
                previous: ItemId(last_item),
                previous_queue: last_queue,
            });
        }
        if let Some(case) = &new.case {
            let record = self.cases.entry(case.clone()).or_insert_with(|| CaseRecord {
                customer: new.customer.clone(),
                opened_ms: now,
                closed_ms: None,
                open_items: 0,
                departments: Vec::new(),
                history: VecDeque::new(),
                history_dropped: 0,
            });
            record.open_items += 1;
            record.closed_ms = None;
            if let Some(d) = department
                && record.departments.last() != Some(&d)
            {
                push_department(record, d, &self.options.retention);
            }
            let step = CaseStep {
                at_ms: now,
                item: ItemId(id),
                department: new.department.clone(),
                what: format!("created in queue `{}` ({channel})", new.queue),
            };
            push_step(record, step, &self.options.retention, &mut self.stats);
        }

        if let Some(reason) = problem {
            item.status = ItemStatus::Exception;
            self.items.insert(id, item);
            self.emit(Event::Created { at_ms: now, item: ItemId(id), queue: None, channel });
            self.send_to_exception(id, reason);
            return ItemId(id);
        }

        // Prioritise.
        let d = item.department;
        let batch = self.batch_of(&[&item], now);
        let decided = self.departments[d].rules.prioritise(&batch);
        let answer = decided.value.into_iter().next();
        item.explanation.prioritised_by = Some(decided.source.clone());
        self.items.insert(id, item);
        self.emit(Event::Created { at_ms: now, item: ItemId(id), queue, channel });
        let Some(priority) = answer else {
            self.send_to_exception(id, ExceptionReason::NoUsableRule(format!("{} gave no priority", decided.source)));
            return ItemId(id);
        };
        if let Some(target) = priority.queue {
            match self.queue_by_catalog.get(&target.0).copied() {
                Some(to) => self.move_queue(id, to, now),
                None => {
                    self.send_to_exception(
                        id,
                        ExceptionReason::NoUsableRule(format!(
                            "{} moved the item to unknown queue id {}",
                            decided.source, target.0
                        )),
                    );
                    return ItemId(id);
                }
            }
        }
        if let Some(it) = self.items.get_mut(&id) {
            it.priority = priority.priority;
            it.explanation.priority = priority.priority;
            it.explanation.priority_reason = priority.reason;
        }
        self.record_customer(id);
        self.enqueue(id);
        self.dispatch_item(id);
        if self.items.get(&id).is_some_and(|i| i.status == ItemStatus::Queued) {
            self.run_escalations(vec![id]);
        }
        ItemId(id)
    }

    /// The item `create` routes for `new`, and why it cannot be routed if so,
    /// and the customer's previous contact if this one repeats it. Changes
    /// nothing but the name catalogue (interning), so [`Router::plan_intake`]
    /// builds the very batch `create` will.
    pub(super) fn build_item(&self, id: u64, new: &NewWorkItem, now: u64, handed_from: Option<u64>) -> Built {
        let channel = new.channel.unwrap_or(Channel::Voice);
        // Where does it go, and is it well-formed?
        let mut problem: Option<ExceptionReason> = None;
        let department = self.department_index.get(&new.department).copied();
        let queue = self.queue_index.get(&new.queue).copied();
        match (department, queue) {
            (None, _) => problem = Some(ExceptionReason::UnknownDepartment(new.department.clone())),
            (Some(d), Some(q)) if self.queues[q].department == d => {}
            (Some(_), _) => problem = Some(ExceptionReason::UnknownQueue(new.queue.clone())),
        }
        let mut skills: Vec<SkillReq> = Vec::new();
        if let Some(q) = queue {
            skills.push(SkillReq { skill: SkillId(self.queues[q].skill), level: 1 });
        }
        for (name, level) in &new.skills {
            if !(1..=10).contains(level) {
                problem.get_or_insert(ExceptionReason::InvalidData(format!(
                    "skill `{name}` has level {level}, expected 1-10"
                )));
                continue;
            }
            let skill = SkillId(self.intern_skill(name));
            match skills.iter_mut().find(|r| r.skill == skill) {
                Some(r) => r.level = *level,
                None => skills.push(SkillReq { skill, level: *level }),
            }
        }
        if !new.value.is_finite() {
            problem.get_or_insert(ExceptionReason::InvalidData(format!("value {} is not a number", new.value)));
        }
        let attributes: Vec<(u32, String)> =
            new.attributes.iter().map(|(k, v)| (self.intern_attribute(k), v.clone())).collect();

        // Repeat contacts (FCR).
        let mut contacts = 1u16;
        let mut repeat_of = None;
        if let (Some(customer), None) = (&new.customer, handed_from)
            && let Some(record) = self.customers.get(customer)
        {
            let window = self.departments[record.last_department].spec.fcr_window_ms;
            if now.saturating_sub(record.last_seen_ms) <= window {
                contacts = record.contacts.saturating_add(1);
                repeat_of = Some((record.last_item, record.last_queue));
            }
        }
        let item = Item {
            id,
            department: department.unwrap_or(0),
            queue: queue.unwrap_or(0),
            channel,
            skills,
            attributes,
            priority: new.priority,
            tier: new.tier,
            value: if new.value.is_finite() { new.value } else { 0.0 },
            customer: new.customer.clone(),
            case: new.case.clone(),
            created_ms: now,
            due_ms: new.due_in_ms.map(|d| now.saturating_add(d)),
            contacts,
            status: ItemStatus::Queued,
            agent: None,
            offer_seq: 0,
            refused: Vec::new(),
            explanation: Explanation { priority: new.priority, ..Default::default() },
            escalation_generation: 0,
            answered_ms: None,
            work_started_ms: 0,
            worked_ms: 0,
            wrap_up_ms: 0,
            resolved: false,
            rechecks: 0,
            asked: (new.department.clone(), new.queue.clone()),
        };
        Built { item, problem, repeat_of }
    }

    pub(super) fn send_to_exception(&mut self, id: u64, reason: ExceptionReason) {
        let now = self.now_ms();
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        if item.status == ItemStatus::Queued {
            let key = item.key();
            self.queues[item.queue].waiting.remove(&key);
        }
        item.status = ItemStatus::Exception;
        let entry = ExceptionEntry {
            item: ItemId(id),
            at_ms: now,
            reason: reason.clone(),
            department: item.asked.0.clone(),
            queue: item.asked.1.clone(),
        };
        self.exceptions.push_back(entry);
        let text = reason.to_string();
        self.case_step(id, || format!("exception: {text}"));
        self.emit(Event::Exception { at_ms: now, item: ItemId(id), reason });
        // A full exception queue forgets its oldest entry and that item.
        while self.exceptions.len() > self.options.retention.exceptions.max(1) {
            let Some(old) = self.exceptions.pop_front() else {
                break;
            };
            self.stats.exceptions_dropped += 1;
            self.case_step(old.item.0, || "discarded from the full exception queue".into());
            if let Some(it) = self.items.remove(&old.item.0) {
                self.case_item_ended(it.case);
            }
        }
    }

    /// Items no rule could place, with the reason, oldest first (the most recent
    /// [`Retention::exceptions`]).
    pub fn exceptions(&self) -> &VecDeque<ExceptionEntry> {
        &self.exceptions
    }

    /// Route an item out of the exception queue into `department`/`queue`.
    pub fn resolve_exception(&mut self, item: ItemId, department: &str, queue: &str) -> Result<()> {
        let d = self.department(department)?;
        let q = self.queue(queue)?;
        if self.queues[q].department != d {
            return Err(Error::Invalid(format!("queue `{queue}` does not belong to department `{department}`")));
        }
        let Some(position) = self.exceptions.iter().position(|e| e.item == item) else {
            return Err(Error::Invalid(format!("{item} is not in the exception queue")));
        };
        self.exceptions.remove(position);
        let skill = self.queues[q].skill;
        let Some(it) = self.items.get_mut(&item.0) else {
            return Err(Error::Unknown { kind: "item", name: item.0.to_string() });
        };
        it.department = d;
        it.queue = q;
        if !it.skills.iter().any(|r| r.skill.0 == skill) {
            it.skills.insert(0, SkillReq { skill: SkillId(skill), level: 1 });
        }
        it.status = ItemStatus::Queued;
        if let Some(case) = it.case.clone()
            && let Some(record) = self.cases.get_mut(&case)
            && record.departments.last() != Some(&d)
        {
            push_department(record, d, &self.options.retention);
        }
        self.case_step(item.0, || format!("resolved from the exception queue into `{queue}`"));
        self.enqueue(item.0);
        self.dispatch_item(item.0);
        Ok(())
    }

    pub(super) fn enqueue(&mut self, id: u64) {
        if let Some(item) = self.items.get_mut(&id) {
            item.status = ItemStatus::Queued;
            item.agent = None;
            let key = item.key();
            self.queues[item.queue].waiting.insert(key);
        }
    }

    pub(super) fn move_queue(&mut self, id: u64, to: usize, now: u64) {
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        let from = item.queue;
        if from == to {
            return;
        }
        // Re-insert only what was actually waiting: a new item is moved by its
        // prioritise answer before it is enqueued, and inserting it here too would
        // leave a second, stale entry (old priority) that is later offered again.
        let queued = item.status == ItemStatus::Queued && self.queues[from].waiting.remove(&item.key());
        let old_skill = self.queues[from].skill;
        let new_skill = self.queues[to].skill;
        item.queue = to;
        item.department = self.queues[to].department;
        // The queue's own skill requirement follows the queue.
        item.skills.retain(|r| r.skill.0 != old_skill);
        if !item.skills.iter().any(|r| r.skill.0 == new_skill) {
            item.skills.insert(0, SkillReq { skill: SkillId(new_skill), level: 1 });
        }
        if queued {
            self.queues[to].waiting.insert(item.key());
        }
        let d = self.queues[to].department;
        if let Some(case) = item.case.clone()
            && let Some(record) = self.cases.get_mut(&case)
            && record.departments.last() != Some(&d)
        {
            push_department(record, d, &self.options.retention);
        }
        let name = self.queues[to].spec.name.clone();
        self.case_step(id, || format!("moved to queue `{name}`"));
        self.emit(Event::Moved { at_ms: now, item: ItemId(id), from, to });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::testing::{available, check_invariants, item, router};
    use super::*;

    /// Every new item ends in exactly one place: waiting in its queue, offered,
    /// or in the exception queue with the reason — never half-created.
    #[test]
    fn every_new_item_ends_up_in_exactly_one_place() {
        let (mut router, _) = router();
        let waiting = router.create_item(item("claims", Channel::Case));
        check_invariants(&router);
        let unknown = router.create_item(item("nowhere", Channel::Voice));
        let attributes =
            (0..=router.options.limits.attributes_per_item).map(|i| (format!("k{i}"), "v".into())).collect();
        let oversized = router.create_item(NewWorkItem { attributes, ..item("billing", Channel::Voice) });
        check_invariants(&router);
        let ann = available(&mut router, "ann", &[("billing", 5)]);
        let offered = router.create_item(item("billing", Channel::Voice));
        check_invariants(&router);

        assert_eq!(router.item_status(waiting), Some(ItemStatus::Queued));
        assert_eq!(router.item_status(offered), Some(ItemStatus::Offered));
        assert_eq!(router.item_holder(offered), Some(ann));
        let excepted: Vec<ItemId> = router.exceptions().iter().map(|e| e.item).collect();
        assert_eq!(excepted, vec![unknown, oversized]);
        assert!(matches!(router.exceptions()[0].reason, ExceptionReason::UnknownQueue(ref q) if q == "nowhere"));
        assert_eq!(router.retention_stats().items_over_limit, 1);
    }

    /// Prioritise rules that keep the batches they were asked about.
    #[derive(Default)]
    struct Asked(Mutex<Vec<ItemBatch>>);

    impl RuleSet for Asked {
        fn prioritise(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<switchyard_contract::Priority>> {
            self.0.lock().unwrap().push(items.clone());
            crate::rules::Decided::built_in(BuiltInRules::prioritise(items))
        }
        fn escalate(&self, items: &ItemBatch) -> crate::rules::Decided<Vec<Escalation>> {
            crate::rules::Decided::built_in(BuiltInRules::escalate(items))
        }
        fn match_agents(&self, item: &ItemBatch, c: &CandidateTable) -> crate::rules::Decided<MatchResult> {
            crate::rules::Decided::built_in(BuiltInRules::match_agents(item, c))
        }
    }

    /// A front end that asks `prioritise` before it takes its lock shows the
    /// rules exactly what the create itself would have: the plan's batch is the
    /// create's, under the reserved id — for a new item and for a hand-off.
    #[test]
    fn a_plan_is_the_batch_the_create_asks_about() {
        let (mut router, _) = router();
        let asked = Arc::new(Asked::default());
        router.set_rules("billing", asked.clone()).unwrap();
        router.set_rules("claims", asked.clone()).unwrap();
        let new = NewWorkItem {
            customer: Some("c-1".into()),
            attributes: vec![("amount".into(), "300".into())],
            skills: vec![("disputes".into(), 3)],
            ..item("billing", Channel::Chat)
        };
        let id = router.reserve_item_id();
        let (department, planned) = router.plan_intake(id, &new, router.now_ms()).expect("a routable item");
        assert_eq!(department, "billing");
        assert_eq!(router.create_item_as(id, new), id);
        assert_eq!(asked.0.lock().unwrap().last(), Some(&planned));

        // A hand-off of that item, once it is being worked.
        let ann = available(&mut router, "ann", &[("billing", 5), ("disputes", 5)]);
        assert_eq!(router.item_holder(id), Some(ann));
        router.accept_offer(id).unwrap();
        let follow_up = item("claims", Channel::Case);
        let next = router.reserve_item_id();
        let (department, planned) = router.plan_handoff(id, &follow_up, next, router.now_ms()).expect("routable");
        assert_eq!(department, "claims");
        let completion = Completion { resolved: false, handoff: Some(HandOff { item: follow_up, id: Some(next) }) };
        assert_eq!(router.complete(id, completion).unwrap(), Some(next));
        assert_eq!(asked.0.lock().unwrap().last(), Some(&planned));
        check_invariants(&router);
    }
}
