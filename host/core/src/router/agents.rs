//! Agents: registration (skills, capacity, group, after-work), presence, and
//! the activity each is in for occupancy. Becoming available fills the agent
//! with waiting work ([`super::dispatch`]).

use super::*;

impl Router {
    /// Register an agent (logged out until [`Router::set_agent_state`]), or update
    /// the skills, capacity, group and after-work of an agent with the same name.
    pub fn register_agent(&mut self, spec: AgentSpec) -> Result<AgentId> {
        check_duration("wrap_up_ms", spec.wrap_up_ms)?;
        let name_bytes = self.options.limits.name_bytes;
        if let Some((name, _)) = spec.skills.iter().find(|(name, _)| name.len() > name_bytes) {
            return Err(limit("skills", "name bytes", name_bytes, name.len()));
        }
        let unknown = self.unknown_names(spec.skills.iter().map(|(name, _)| name.as_str()), std::iter::empty());
        self.check_catalog(&unknown)?;
        let mut skills = Vec::with_capacity(spec.skills.len());
        for (name, level) in &spec.skills {
            if !(1..=10).contains(level) {
                return Err(Error::Invalid(format!(
                    "agent `{}`: skill `{name}` has level {level}, expected 1-10",
                    spec.name
                )));
            }
            skills.push((self.intern_skill(name), *level));
        }
        skills.sort_unstable();
        skills.dedup_by_key(|s| s.0);
        let now = self.now_ms();
        let index = match self.agent_index.get(&spec.name) {
            Some(&index) => {
                let agent = &mut self.agents[index];
                agent.spec = spec;
                agent.skills = skills;
                index
            }
            None => {
                let index = self.agents.len();
                self.agent_index.insert(spec.name.clone(), index);
                self.metrics.add_agent(AgentId(index as u64 + 1), &spec.group, now);
                self.agents.push(Agent {
                    spec,
                    skills,
                    presence: Presence::Offline,
                    load: [0; 4],
                    held: Vec::new(),
                    busy: 0,
                    idle_since_ms: now,
                    activity: Activity::Offline,
                    work: WorkTime { since_ms: now, ..WorkTime::default() },
                });
                index
            }
        };
        for queue in &mut self.queues {
            queue.agents.retain(|&a| a != index);
            if self.agents[index].level(queue.skill) >= 1 {
                queue.agents.push(index);
                queue.agents.sort_unstable();
            }
        }
        self.fill_agent(index);
        Ok(AgentId(index as u64 + 1))
    }

    /// The id of the agent called `name`.
    pub fn agent_id(&self, name: &str) -> Option<AgentId> {
        self.agent_index.get(name).map(|&i| AgentId(i as u64 + 1))
    }

    /// The login of agent `agent`, if it is registered.
    pub fn agent_name(&self, agent: AgentId) -> Option<String> {
        self.agent_ix(agent).ok().map(|a| self.agents[a].spec.name.clone())
    }

    /// The registration of agent `agent` (skills, capacity, after-work), if it
    /// is registered: what the daemon's traffic log records of its roster.
    pub fn agent_spec(&self, agent: AgentId) -> Option<&AgentSpec> {
        self.agent_ix(agent).ok().map(|a| &self.agents[a].spec)
    }

    /// Set an agent's presence. Becoming available offers them waiting work at
    /// once; going away or offline returns their pending offers to the queue
    /// (work in hand is finished).
    pub fn set_agent_state(&mut self, agent: AgentId, presence: Presence) -> Result<()> {
        let a = self.agent_ix(agent)?;
        self.agents[a].presence = presence;
        if presence != Presence::Available {
            let pending: Vec<u64> = self.agents[a]
                .held
                .iter()
                .copied()
                .filter(|id| self.items.get(id).is_some_and(|i| i.status == ItemStatus::Offered))
                .collect();
            for id in pending {
                self.end_offer(id, "cancelled");
            }
        }
        self.update_activity(a);
        if presence == Presence::Available {
            self.fill_agent(a);
        }
        Ok(())
    }

    /// An agent's wallboard state.
    pub fn agent_state(&self, agent: AgentId) -> Result<AgentState> {
        let a = self.agent_ix(agent)?;
        Ok(self.state_of(a))
    }

    pub(super) fn state_of(&self, a: usize) -> AgentState {
        let agent = &self.agents[a];
        let working = agent
            .held
            .iter()
            .any(|id| self.items.get(id).is_some_and(|i| matches!(i.status, ItemStatus::Active | ItemStatus::Paused)));
        if working {
            AgentState::Busy
        } else if agent.busy > 0 {
            AgentState::WrapUp
        } else {
            match agent.presence {
                Presence::Available => AgentState::Available,
                Presence::Away => AgentState::Away,
                Presence::Offline => AgentState::Offline,
            }
        }
    }

    pub(super) fn update_activity(&mut self, a: usize) {
        let now = self.now_ms();
        let agent = &mut self.agents[a];
        if agent.total_load() == 0 && agent.activity == Activity::Busy {
            agent.idle_since_ms = now;
        }
        let activity = if agent.busy > 0 {
            Activity::Busy
        } else {
            match agent.presence {
                Presence::Available => Activity::Idle,
                Presence::Away => Activity::Away,
                Presence::Offline => Activity::Offline,
            }
        };
        if activity != agent.activity {
            agent.work.close(agent.activity, now);
            if activity == Activity::Idle {
                agent.idle_since_ms = now;
            }
            agent.activity = activity;
            self.emit(Event::Activity { at_ms: now, agent: AgentId(a as u64 + 1), activity });
        }
    }

    /// The agents serving `queue` (holding its skill).
    pub fn queue_agents(&self, queue: &str) -> Result<Vec<AgentId>> {
        let q = self.queue(queue)?;
        Ok(self.queues[q].agents.iter().map(|&a| AgentId(a as u64 + 1)).collect())
    }

    /// Every agent: id, name and group.
    pub fn agents(&self) -> Vec<(AgentId, String, String)> {
        self.agents
            .iter()
            .enumerate()
            .map(|(i, a)| (AgentId(i as u64 + 1), a.spec.name.clone(), a.spec.group.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{available, check_invariants, item, offers, router};
    use super::*;

    /// Going away returns pending offers to their queue (no refusal: the item
    /// may come back to the same agent) and keeps work in hand; coming back
    /// takes new work.
    #[test]
    fn going_away_returns_offers_and_keeps_work_in_hand() {
        let (mut router, _) = router();
        let ann = available(&mut router, "ann", &[("billing", 5)]);
        let chat = router.create_item(item("billing", Channel::Chat));
        let second = router.create_item(item("billing", Channel::Chat));
        assert_eq!(offers(&mut router).len(), 2);
        router.accept_offer(chat).unwrap();
        router.set_agent_state(ann, Presence::Away).unwrap();
        check_invariants(&router);
        assert_eq!(router.item_status(chat), Some(ItemStatus::Active), "work in hand stays");
        assert_eq!(router.item_status(second), Some(ItemStatus::Queued), "the offer went back");
        router.set_agent_state(ann, Presence::Available).unwrap();
        check_invariants(&router);
        assert_eq!(offers(&mut router), vec![(second, ann)]);
    }

    /// Registering an agent again updates skills and capacity in place: same
    /// id, work in hand kept, queues served follow the new skills.
    #[test]
    fn registering_again_updates_in_place() {
        let (mut router, _) = router();
        let ann = available(&mut router, "ann", &[("billing", 5)]);
        let chat = router.create_item(item("billing", Channel::Chat));
        router.accept_offer(chat).unwrap();
        let spec = AgentSpec {
            name: "ann".into(),
            group: "team".into(),
            skills: vec![("billing".into(), 5), ("claims".into(), 4)],
            capacity: Capacity::default(),
            wrap_up_ms: 0,
        };
        assert_eq!(router.register_agent(spec).unwrap(), ann);
        check_invariants(&router);
        assert_eq!(router.item_holder(chat), Some(ann));
        assert_eq!(router.queue_agents("claims").unwrap(), vec![ann]);
    }
}
