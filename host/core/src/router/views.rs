//! What the router shows: queue snapshots, item views with their
//! explanation, agents' desktops, waiting lists. Read-only.

use super::*;

impl Router {
    /// What `queue` holds now.
    pub fn queue_snapshot(&self, queue: &str) -> Result<QueueSnapshot> {
        Ok(self.snapshot_of(self.queue(queue)?))
    }

    pub(super) fn snapshot_of(&self, q: usize) -> QueueSnapshot {
        let now = self.now_ms();
        let queue = &self.queues[q];
        let mut snapshot = QueueSnapshot { waiting: queue.waiting.len(), offered: queue.offered, ..Default::default() };
        let mut total = 0u128;
        for &(_, created, id) in &queue.waiting {
            let age = now.saturating_sub(created);
            snapshot.oldest_wait_ms = snapshot.oldest_wait_ms.max(age);
            total += age as u128;
            if self.items.get(&id).and_then(|i| i.due_ms).is_some_and(|d| d < now) {
                snapshot.overdue += 1;
            }
        }
        if snapshot.waiting > 0 {
            snapshot.mean_wait_ms = total as f64 / snapshot.waiting as f64;
        }
        snapshot
    }

    /// Number of items waiting in each queue, in queue order (cheap; for sampling).
    pub fn queue_lengths(&self) -> Vec<usize> {
        self.queues.iter().map(|q| q.waiting.len()).collect()
    }

    /// Queue names in index order (the `queue` index of [`Event`]s).
    pub fn queue_names(&self) -> Vec<String> {
        self.queues.iter().map(|q| q.spec.name.clone()).collect()
    }

    /// Queue specs in index order.
    pub fn queue_specs(&self) -> Vec<QueueSpec> {
        self.queues.iter().map(|q| q.spec.clone()).collect()
    }

    /// Department names in order.
    pub fn department_names(&self) -> Vec<String> {
        self.departments.iter().map(|d| d.spec.name.clone()).collect()
    }

    /// An item's status.
    pub fn item_status(&self, item: ItemId) -> Option<ItemStatus> {
        self.items.get(&item.0).map(|i| i.status)
    }

    /// The agent an item is offered to or held by (its desktop shows it).
    pub fn item_holder(&self, item: ItemId) -> Option<AgentId> {
        let a = self.items.get(&item.0)?.agent?;
        Some(AgentId(a as u64 + 1))
    }

    /// Where an item is: status, queue name, priority, required skills (name, level).
    pub fn item_view(&self, item: ItemId) -> Option<DesktopItem> {
        self.items.get(&item.0).map(|i| self.desktop_item(i))
    }

    /// An item's required skills by name and level.
    pub fn item_skills(&self, item: ItemId) -> Option<Vec<(String, u8)>> {
        self.items.get(&item.0).map(|i| i.skills.iter().map(|r| (self.skill_name(r.skill.0), r.level)).collect())
    }

    pub(super) fn desktop_item(&self, item: &Item) -> DesktopItem {
        let now = self.now_ms();
        let end = item.answered_ms.unwrap_or(now);
        DesktopItem {
            id: ItemId(item.id),
            status: item.status,
            channel: item.channel,
            department: self.departments[item.department].spec.name.clone(),
            queue: self.queues[item.queue].spec.name.clone(),
            priority: item.priority,
            wait_ms: end.saturating_sub(item.created_ms),
            attributes: item.attributes.iter().map(|(k, v)| (self.attribute_name(*k), v.clone())).collect(),
            customer: item.customer.clone(),
            case: item.case.clone(),
            explanation: item.explanation.clone(),
        }
    }

    /// An agent's desktop: state, and the items offered to or held by them with
    /// attributes, wait, priority and the explanation of the routing.
    pub fn desktop(&self, agent: AgentId) -> Result<Desktop> {
        let a = self.agent_ix(agent)?;
        let items =
            self.agents[a].held.iter().filter_map(|id| self.items.get(id)).map(|i| self.desktop_item(i)).collect();
        Ok(Desktop { agent, name: self.agents[a].spec.name.clone(), state: self.state_of(a), items })
    }

    /// Items currently waiting in `queue`, best first.
    pub fn waiting(&self, queue: &str) -> Result<Vec<ItemId>> {
        let q = self.queue(queue)?;
        Ok(self.queues[q].waiting.iter().map(|&(_, _, id)| ItemId(id)).collect())
    }

    /// Number of items in the system (waiting, offered, in hand, exceptions).
    pub fn open_items(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{available, item, router};
    use super::*;

    /// A desktop shows its own agent's items only; a waiting list is in queue
    /// order (priority, then age); a queue snapshot counts what is waiting.
    #[test]
    fn views_show_what_the_state_holds() {
        let (mut router, clock) = router();
        let ann = available(&mut router, "ann", &[("billing", 5)]);
        let bob = available(&mut router, "bob", &[("claims", 5)]);
        let hers = router.create_item(item("billing", Channel::Voice));
        let old = router.create_item(item("billing", Channel::Voice));
        clock.advance(1_000);
        let urgent = router.create_item(NewWorkItem { priority: 5, ..item("billing", Channel::Voice) });
        let young = router.create_item(item("billing", Channel::Voice));
        let ids = |d: Desktop| d.items.iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(router.desktop(ann).unwrap()), vec![hers]);
        assert!(ids(router.desktop(bob).unwrap()).is_empty());
        assert_eq!(router.waiting("billing").unwrap(), vec![urgent, old, young]);
        assert_eq!(router.queue_snapshot("billing").unwrap().waiting, 3);
        assert_eq!(router.open_items(), 4);
    }
}
