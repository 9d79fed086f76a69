//! Read-only views the web console needs beyond the API's: an agent's
//! capacity and load per channel, when a pending offer times out, and an
//! item's due time and contact count. Nothing here changes the state.

use super::*;

/// An agent's blending capacity and what it holds now, per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AgentLoad {
    /// What the agent says about themself.
    pub presence: Presence,
    /// The agent's capacity.
    pub capacity: Capacity,
    /// Slots taken now: voice, chat, email, case (offers, work, after-work,
    /// paused cases).
    pub load: [u8; 4],
}

/// What the console shows of an item beyond its [`DesktopItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ItemTiming {
    /// When the item was created, ms on the router's clock.
    pub created_ms: u64,
    /// When it is due (back-office SLA), if it has a due time.
    pub due_ms: Option<u64>,
    /// When its pending offer times out, if it is offered.
    pub offer_expires_ms: Option<u64>,
    /// The customer's contacts within the FCR window, this one included.
    pub contacts: u16,
    /// The department's FCR window, ms.
    pub fcr_window_ms: u64,
}

impl Router {
    /// An agent's presence, capacity and load.
    pub fn agent_load(&self, agent: AgentId) -> Result<AgentLoad> {
        let a = &self.agents[self.agent_ix(agent)?];
        Ok(AgentLoad { presence: a.presence, capacity: a.spec.capacity, load: a.load })
    }

    /// An item's times and contact count, while the router holds it.
    ///
    /// The offer's expiry is its armed timeout; finding it scans the timer
    /// heap, which is fine for the handful of items on one desktop.
    pub fn item_timing(&self, item: ItemId) -> Option<ItemTiming> {
        let i = self.items.get(&item.0)?;
        let offer_expires_ms = (i.status == ItemStatus::Offered)
            .then(|| {
                self.timers
                    .iter()
                    .filter_map(|Reverse((at, _, timer))| match timer {
                        Timer::OfferTimeout { item, seq } if *item == i.id && *seq == i.offer_seq => Some(*at),
                        _ => None,
                    })
                    .min()
            })
            .flatten();
        Some(ItemTiming {
            created_ms: i.created_ms,
            due_ms: i.due_ms,
            offer_expires_ms,
            contacts: i.contacts,
            fcr_window_ms: self.departments[i.department].spec.fcr_window_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{available, item, router};
    use super::*;

    /// An offered item times out at the department's offer timeout after the
    /// offer; the agent's voice slot is taken by it.
    #[test]
    fn an_offer_shows_its_expiry_and_takes_a_slot() {
        let (mut router, clock) = router();
        let ann = available(&mut router, "ann", &[("billing", 5)]);
        clock.advance(500);
        let id = router.create_item(item("billing", Channel::Voice));
        let timing = router.item_timing(id).unwrap();
        let timeout = router.departments[0].spec.offer_timeout_ms;
        assert_eq!(timing.offer_expires_ms, Some(timing.created_ms + timeout));
        assert_eq!(timing.contacts, 1);
        assert_eq!(router.agent_load(ann).unwrap().load[Channel::Voice.index()], 1);
        router.accept_offer(id).unwrap();
        assert_eq!(router.item_timing(id).unwrap().offer_expires_ms, None, "accepted: no countdown");
    }
}
