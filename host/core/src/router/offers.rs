//! Offers and the work that follows: an offer with its timeout, accepted
//! (work starts), rejected or timed out (back to the queue, this agent blocked
//! for a while), completed (after-work, hand-off) or withdrawn.

use super::dispatch::merge_match;
use super::*;

impl Router {
    pub(super) fn offer(&mut self, id: u64, a: usize, explanation: Explanation) {
        let now = self.now_ms();
        let name = self.agents[a].spec.name.clone();
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        let key = item.key();
        self.queues[item.queue].waiting.remove(&key);
        self.queues[item.queue].offered += 1;
        item.status = ItemStatus::Offered;
        item.agent = Some(a);
        item.offer_seq += 1;
        merge_match(&mut item.explanation, explanation, Some(name.clone()));
        let seq = item.offer_seq;
        let channel = item.channel;
        let timeout = self.departments[item.department].spec.offer_timeout_ms;
        let agent = &mut self.agents[a];
        agent.load[channel.index()] += 1;
        agent.held.push(id);
        self.arm(now.saturating_add(timeout), Timer::OfferTimeout { item: id, seq });
        self.case_step(id, || format!("offered to {name}"));
        self.emit(Event::Offered { at_ms: now, item: ItemId(id), agent: AgentId(a as u64 + 1) });
    }

    /// The agent accepts the item offered to them: it is answered now.
    pub fn accept_offer(&mut self, item: ItemId) -> Result<()> {
        let now = self.now_ms();
        let it = self.items.get_mut(&item.0).ok_or_else(|| unknown_item(item))?;
        if it.status != ItemStatus::Offered {
            return Err(Error::Invalid(format!("{item} has no pending offer")));
        }
        let Some(a) = it.agent else {
            return Err(Error::Invalid(format!("{item} has no pending offer")));
        };
        it.status = ItemStatus::Active;
        let first = it.answered_ms.is_none();
        it.answered_ms.get_or_insert(now);
        it.work_started_ms = now;
        let (queue, created_ms, channel) = (it.queue, it.created_ms, it.channel);
        self.queues[queue].offered -= 1;
        self.agents[a].busy += 1;
        let agent = AgentId(a as u64 + 1);
        let name = self.agents[a].spec.name.clone();
        self.case_step(item.0, || format!("answered by {name}"));
        self.emit(Event::Accepted { at_ms: now, item, agent, queue, created_ms, first });
        if channel != Channel::Case {
            // Cases yield to live and digital work.
            let held = self.agents[a].held.clone();
            for other in held {
                let Some(o) = self.items.get_mut(&other) else {
                    continue;
                };
                if o.channel == Channel::Case && o.status == ItemStatus::Active {
                    o.status = ItemStatus::Paused;
                    o.worked_ms += now.saturating_sub(o.work_started_ms);
                    self.emit(Event::Paused { at_ms: now, item: ItemId(other), agent });
                }
            }
        }
        self.update_activity(a);
        Ok(())
    }

    /// The agent rejects the item offered to them: it goes back to its queue with
    /// its age kept and is not offered to the same agent again at once.
    pub fn reject_offer(&mut self, item: ItemId) -> Result<()> {
        let it = self.items.get(&item.0).ok_or_else(|| unknown_item(item))?;
        if it.status != ItemStatus::Offered {
            return Err(Error::Invalid(format!("{item} has no pending offer")));
        }
        self.end_offer(item.0, "rejected");
        Ok(())
    }

    /// End the pending offer of `id`: back to the queue (age kept) and, unless the
    /// offer was cancelled, block that agent for a while. A timed-out offer also
    /// sets the agent away (they are evidently not at their desk).
    pub(super) fn end_offer(&mut self, id: u64, how: &'static str) {
        let now = self.now_ms();
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        let Some(a) = item.agent.take() else { return };
        let block = self.departments[item.department].spec.reoffer_block_ms;
        if how != "cancelled" {
            item.refused.retain(|&(_, until)| until > now);
            item.refused.push((a, now.saturating_add(block)));
        }
        let channel = item.channel;
        self.queues[item.queue].offered -= 1;
        let agent = &mut self.agents[a];
        agent.load[channel.index()] -= 1;
        agent.held.retain(|&h| h != id);
        if how == "timed-out" {
            agent.presence = Presence::Away;
        }
        self.enqueue(id);
        if how != "cancelled" {
            self.arm(now.saturating_add(block), Timer::Redispatch { item: id });
        }
        let name = self.agents[a].spec.name.clone();
        self.case_step(id, || format!("offer to {name} {how}"));
        self.emit(Event::OfferEnded { at_ms: now, item: ItemId(id), agent: AgentId(a as u64 + 1), how });
        self.update_activity(a);
        self.dispatch_item(id);
        self.fill_agent(a);
    }

    /// The agent finished handling the item. With after-work time configured for
    /// the agent, the slot stays taken until it ends. A hand-off creates the
    /// follow-up item in its department, in the same case.
    pub fn complete(&mut self, item: ItemId, completion: Completion) -> Result<Option<ItemId>> {
        let now = self.now_ms();
        let it = self.items.get_mut(&item.0).ok_or_else(|| unknown_item(item))?;
        if !matches!(it.status, ItemStatus::Active | ItemStatus::Paused) {
            return Err(Error::Invalid(format!("{item} is not being handled")));
        }
        let Some(a) = it.agent else {
            return Err(Error::Invalid(format!("{item} is not being handled")));
        };
        if it.status == ItemStatus::Active {
            it.worked_ms += now.saturating_sub(it.work_started_ms);
        }
        it.resolved = completion.resolved;
        let wrap_up = self.agents[a].spec.wrap_up_ms;
        let resolved = completion.resolved;
        self.case_step(item.0, || format!("completed ({})", if resolved { "resolved" } else { "not resolved" }));
        let mut follow_up = None;
        if let Some(handoff) = completion.handoff {
            let it = &self.items[&item.0];
            let next = self.handoff_item(item.0, handoff.item).unwrap_or_default();
            if it.case.is_none() {
                // Open a case for the hand-off, with this item as its first step.
                let case = next.case.clone().unwrap_or_default();
                let department = it.department;
                let (created, customer) = (it.created_ms, it.customer.clone());
                let record = CaseRecord {
                    customer,
                    opened_ms: created,
                    closed_ms: None,
                    open_items: 1,
                    departments: vec![department],
                    history: VecDeque::from([CaseStep {
                        at_ms: created,
                        item,
                        department: self.departments[department].spec.name.clone(),
                        what: "created".into(),
                    }]),
                    history_dropped: 0,
                };
                self.cases.insert(case.clone(), record);
                if let Some(it) = self.items.get_mut(&item.0) {
                    it.case = Some(case);
                }
            }
            let case = next.case.clone().unwrap_or_default();
            let to_department = next.department.clone();
            let to = self.create_as(handoff.id, next, Some(item.0));
            self.case_step(item.0, || format!("handed off to `{to_department}` as {to}"));
            self.emit(Event::HandedOff { at_ms: now, from: item, to, case });
            follow_up = Some(to);
        }
        if let Some(it) = self.items.get_mut(&item.0) {
            if wrap_up > 0 {
                it.status = ItemStatus::WrapUp;
                it.wrap_up_ms = wrap_up;
                self.arm(now.saturating_add(wrap_up), Timer::WrapUpEnd { item: item.0 });
            } else {
                self.finish(item.0);
            }
        }
        Ok(follow_up)
    }

    /// Free the slot of a handled item and record it.
    pub(super) fn finish(&mut self, id: u64) {
        let now = self.now_ms();
        let Some(item) = self.items.remove(&id) else {
            return;
        };
        let Some(a) = item.agent else { return };
        let agent = &mut self.agents[a];
        agent.load[item.channel.index()] -= 1;
        agent.held.retain(|&h| h != id);
        agent.busy = agent.busy.saturating_sub(1);
        if let Some(customer) = &item.customer
            && let Some(record) = self.customers.get_mut(customer)
            && record.last_item == id
        {
            record.last_seen_ms = now;
            self.customer_expiry.push_back((now, customer.clone()));
        }
        self.emit(Event::Completed {
            at_ms: now,
            item: ItemId(id),
            agent: AgentId(a as u64 + 1),
            queue: item.queue,
            created_ms: item.created_ms,
            handle_ms: item.worked_ms + item.wrap_up_ms,
            due_ms: item.due_ms,
            resolved: item.resolved,
        });
        self.case_item_ended(item.case.clone());
        // Paused cases resume once the live and digital work is done.
        if self.agents[a].live_load() == 0 {
            let held = self.agents[a].held.clone();
            for other in held {
                let Some(o) = self.items.get_mut(&other) else {
                    continue;
                };
                if o.status == ItemStatus::Paused {
                    o.status = ItemStatus::Active;
                    o.work_started_ms = now;
                    self.emit(Event::Resumed { at_ms: now, item: ItemId(other), agent: AgentId(a as u64 + 1) });
                }
            }
        }
        self.update_activity(a);
        self.fill_agent(a);
    }

    /// The customer withdrew a waiting or offered item (abandoned); it is counted,
    /// and an offer of it is cancelled. An item already answered cannot be
    /// withdrawn (complete it instead).
    pub fn withdraw(&mut self, item: ItemId) -> Result<()> {
        let now = self.now_ms();
        let it = self.items.get(&item.0).ok_or_else(|| unknown_item(item))?;
        let mut freed = None;
        match it.status {
            ItemStatus::Queued => {}
            // Free the agent's slot without putting the item back in its queue:
            // ending the offer the usual way re-queues and re-offers the item,
            // and the slot it then took was never given back.
            ItemStatus::Offered => freed = self.release_offer(item.0),
            ItemStatus::Exception => {
                if let Some(position) = self.exceptions.iter().position(|e| e.item == item) {
                    self.exceptions.remove(position);
                }
            }
            _ => {
                return Err(Error::Invalid(format!("{item} is already answered; complete it instead")));
            }
        }
        self.case_step(item.0, || "withdrawn by the customer".into());
        let Some(it) = self.items.remove(&item.0) else {
            return Ok(());
        };
        if it.status == ItemStatus::Queued {
            self.queues[it.queue].waiting.remove(&it.key());
        }
        if it.status != ItemStatus::Exception {
            self.emit(Event::Abandoned { at_ms: now, item, queue: it.queue, created_ms: it.created_ms });
        }
        self.case_item_ended(it.case);
        if let Some(a) = freed {
            self.fill_agent(a);
        }
        Ok(())
    }

    /// Cancel the pending offer of item `id` (the customer left): the agent's slot
    /// is free again; the item stays where it is. Returns the agent.
    pub(super) fn release_offer(&mut self, id: u64) -> Option<usize> {
        let now = self.now_ms();
        let item = self.items.get_mut(&id)?;
        let a = item.agent.take()?;
        let channel = item.channel;
        self.queues[item.queue].offered -= 1;
        let agent = &mut self.agents[a];
        agent.load[channel.index()] -= 1;
        agent.held.retain(|&h| h != id);
        let name = agent.spec.name.clone();
        self.case_step(id, || format!("offer to {name} cancelled"));
        self.emit(Event::OfferEnded { at_ms: now, item: ItemId(id), agent: AgentId(a as u64 + 1), how: "cancelled" });
        self.update_activity(a);
        Some(a)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{available, check_invariants, item, offers, router};
    use super::*;

    /// Whatever happens to an offer — rejected, timed out, accepted and
    /// completed, withdrawn — the books balance after every step, a refusal
    /// keeps the item from the same agent for the re-offer block, and the item
    /// keeps its place (age) in the queue.
    #[test]
    fn every_way_an_offer_ends_keeps_the_books() {
        let (mut router, clock) = router();
        let ann = available(&mut router, "ann", &[("billing", 5)]);
        let id = router.create_item(item("billing", Channel::Voice));
        assert_eq!(offers(&mut router), vec![(id, ann)]);
        router.reject_offer(id).unwrap();
        check_invariants(&router);
        assert_eq!(router.item_status(id), Some(ItemStatus::Queued), "back in the queue; ann refused it");
        assert!(offers(&mut router).is_empty());

        let bob = available(&mut router, "bob", &[("billing", 5)]);
        assert_eq!(offers(&mut router), vec![(id, bob)]);
        clock.advance(router.departments[0].spec.offer_timeout_ms);
        router.on_tick();
        check_invariants(&router);
        assert_eq!(router.item_status(id), Some(ItemStatus::Queued), "bob missed it");

        clock.advance(router.departments[0].spec.reoffer_block_ms);
        router.on_tick();
        let (offered, to) = offers(&mut router)[0];
        assert_eq!(offered, id, "offered again once the block ended");
        router.accept_offer(id).unwrap();
        check_invariants(&router);
        assert_eq!(router.item_status(id), Some(ItemStatus::Active));
        router.complete(id, Completion { resolved: true, handoff: None }).unwrap();
        check_invariants(&router);
        assert_eq!(router.item_status(id), None, "finished and gone");
        assert!(router.desktop(to).unwrap().items.is_empty());

        let gone = router.create_item(item("billing", Channel::Voice));
        assert_eq!(router.item_status(gone), Some(ItemStatus::Offered));
        router.withdraw(gone).unwrap();
        check_invariants(&router);
        assert_eq!(router.item_status(gone), None);
    }

    /// After-work holds the agent's slot until it ends; then the agent is
    /// offered the next item.
    #[test]
    fn after_work_holds_the_slot_until_it_ends() {
        let (mut router, clock) = router();
        let ann = router
            .register_agent(AgentSpec {
                name: "ann".into(),
                group: "team".into(),
                skills: vec![("billing".into(), 5)],
                capacity: Capacity::default(),
                wrap_up_ms: 30_000,
            })
            .unwrap();
        router.set_agent_state(ann, Presence::Available).unwrap();
        let first = router.create_item(item("billing", Channel::Voice));
        router.accept_offer(first).unwrap();
        let second = router.create_item(item("billing", Channel::Voice));
        router.complete(first, Completion { resolved: true, handoff: None }).unwrap();
        check_invariants(&router);
        assert_eq!(router.item_status(first), Some(ItemStatus::WrapUp));
        assert_eq!(router.item_status(second), Some(ItemStatus::Queued));
        clock.advance(30_000);
        router.on_tick();
        check_invariants(&router);
        assert_eq!(router.item_status(first), None);
        assert_eq!(router.item_holder(second), Some(ann));
    }
}
