//! Retention: what the router forgets so a daemon up for months stays small —
//! customers past every FCR window, closed cases, stale timers — and the
//! counts that show it ([`Router::retention_stats`], [`Router::record_counts`]).

use super::*;

impl Router {
    /// Forget what retention says is no longer needed: customers past every FCR
    /// window, closed cases past their window, stale timers. Each pass pops only
    /// expired records from time-ordered queues (amortised O(1) per record); the
    /// timer heap is compacted only once it has doubled since the last time.
    pub(super) fn prune(&mut self) {
        let now = self.now_ms();
        self.created_since_prune = 0;
        // Customers: a record can only make a repeat contact within its
        // department's FCR window of its last sighting, and its last item, while
        // open, may still refresh it — so it goes once past the largest window
        // with its last item closed.
        let mut still_open: Vec<(u64, String)> = Vec::new();
        while let Some((seen, _)) = self.customer_expiry.front() {
            if now.saturating_sub(*seen) <= self.max_fcr_window_ms {
                break;
            }
            let Some((seen, customer)) = self.customer_expiry.pop_front() else {
                break;
            };
            let Some(record) = self.customers.get(&customer) else {
                continue;
            };
            if record.last_seen_ms > seen {
                continue; // refreshed since; a later entry stands for it
            }
            if self.items.contains_key(&record.last_item) {
                still_open.push((now, customer));
            } else {
                self.customers.remove(&customer);
                self.stats.customers_forgotten += 1;
            }
        }
        self.customer_expiry.extend(still_open);
        // Closed cases.
        let window = self.options.retention.closed_case_ms;
        while let Some((closed, _)) = self.closed_cases.front() {
            if now.saturating_sub(*closed) <= window {
                break;
            }
            let Some((closed, case)) = self.closed_cases.pop_front() else {
                break;
            };
            if self.cases.get(&case).is_some_and(|r| r.closed_ms == Some(closed)) {
                self.cases.remove(&case);
                self.stats.cases_forgotten += 1;
            }
        }
        // Stale timers (items gone, offers answered, escalations superseded).
        if self.timers.len() > self.timers_compacted_len.saturating_mul(2).max(1_024) {
            let before = self.timers.len();
            let items = &self.items;
            self.timers.retain(|Reverse((_, _, timer))| match *timer {
                Timer::OfferTimeout { item, seq } => {
                    items.get(&item).is_some_and(|i| i.status == ItemStatus::Offered && i.offer_seq == seq)
                }
                Timer::Escalate { item, generation } => {
                    items.get(&item).is_some_and(|i| i.escalation_generation == generation)
                }
                Timer::WrapUpEnd { item } | Timer::Redispatch { item } => items.contains_key(&item),
            });
            self.timers_compacted_len = self.timers.len();
            self.stats.timers_compacted += (before - self.timers.len()) as u64;
        }
    }

    /// What retention and limits have dropped or refused so far.
    pub fn retention_stats(&self) -> RetentionStats {
        self.stats
    }

    /// How many records of each kind the router holds now (for a gauge).
    pub fn record_counts(&self) -> RecordCounts {
        RecordCounts {
            items: self.items.len(),
            customers: self.customers.len(),
            cases: self.cases.len(),
            alerts: self.alerts.len(),
            exceptions: self.exceptions.len(),
            timers: self.timers.len(),
            interval_entries: self.metrics.interval_entries(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{available, check_invariants, item, router};
    use super::*;

    /// Compaction drops only timers that can no longer fire for anything: after
    /// thousands of answered offers, the heap shrinks to the live timers, and a
    /// live offer still times out on time.
    #[test]
    fn compaction_keeps_every_live_timer() {
        let (mut router, clock) = router();
        available(&mut router, "ann", &[("billing", 5)]);
        for _ in 0..1_100 {
            let id = router.create_item(item("billing", Channel::Voice));
            router.accept_offer(id).unwrap();
            router.complete(id, Completion { resolved: true, handoff: None }).unwrap();
        }
        let live = router.create_item(item("billing", Channel::Voice));
        assert_eq!(router.item_status(live), Some(ItemStatus::Offered));
        assert!(router.timers.len() > 1_024);
        router.prune();
        assert!(router.timers.len() < 10, "{} timers left", router.timers.len());
        assert!(router.retention_stats().timers_compacted >= 1_100);
        clock.advance(router.departments[0].spec.offer_timeout_ms);
        router.on_tick();
        assert_eq!(router.item_status(live), Some(ItemStatus::Queued), "the live offer timed out");
        check_invariants(&router);
    }
}
