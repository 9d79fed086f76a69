//! The customers' recent contacts, for the agent desktop's "earlier contacts"
//! panel. The router keeps only each customer's latest contact (what FCR
//! needs); the console wants the ones before the item in hand, so this book
//! remembers a few per customer from the router's events.
//!
//! It is fed in `Core::after` from the same events live and in replay, and
//! kept in the daemon's snapshots ([`ContactBook::entries`],
//! [`ContactBook::restore`]), so a restart shows the same contacts. Bounded: [`PER_CUSTOMER`]
//! contacts each, [`CUSTOMERS`] customers, the least recently seen forgotten
//! first.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use switchyard_contract::Channel;

use switchyard_core::router::{Event, Router};

/// Contacts kept per customer (the newest): more than a desktop shows.
const PER_CUSTOMER: usize = 8;
/// Customers kept: a busy centre's day of distinct callers, at a few hundred
/// bytes each.
const CUSTOMERS: usize = 100_000;

/// How a contact ended, so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// Not finished yet.
    Open,
    /// Completed, resolved.
    Resolved,
    /// Completed, not resolved.
    Unresolved,
    /// Withdrawn or abandoned before it was handled.
    Withdrawn,
}

/// One contact of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Contact {
    /// The item.
    pub(crate) item: u64,
    /// When it was created, ms since the Unix epoch.
    pub(crate) at_ms: u64,
    pub(crate) department: String,
    pub(crate) queue: String,
    pub(crate) channel: Channel,
    /// How it ended (`open` until it does).
    pub(crate) outcome: Outcome,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct ContactBook {
    by_customer: HashMap<String, (u64, VecDeque<Contact>)>,
    /// The customer of each item in the book, to record its outcome.
    customer_of: HashMap<u64, String>,
    /// (touch number, customer) oldest first; an entry is stale when the
    /// customer was touched again since.
    order: VecDeque<(u64, String)>,
    touches: u64,
}

impl ContactBook {
    /// Take note of one router event (`router` as it is after it).
    pub(crate) fn observe(&mut self, router: &Router, event: &Event) {
        match event {
            Event::Created { at_ms, item, .. } => {
                let Some(view) = router.item_view(*item) else { return };
                let Some(customer) = view.customer else { return };
                let contact = Contact {
                    item: item.0,
                    at_ms: *at_ms,
                    department: view.department,
                    queue: view.queue,
                    channel: view.channel,
                    outcome: Outcome::Open,
                };
                self.add(customer, contact);
            }
            Event::Completed { item, resolved, .. } => {
                self.set_outcome(item.0, if *resolved { Outcome::Resolved } else { Outcome::Unresolved })
            }
            Event::Abandoned { item, .. } => self.set_outcome(item.0, Outcome::Withdrawn),
            // A hand-off is the case's next step in another department, not
            // a contact of the customer's (its `Created` came just before).
            Event::HandedOff { to, .. } => self.forget(to.0),
            _ => {}
        }
    }

    /// `customer`'s contacts other than `except` since `since_ms`, newest first.
    pub(crate) fn earlier(&self, customer: &str, except: u64, since_ms: u64) -> Vec<Contact> {
        let Some((_, contacts)) = self.by_customer.get(customer) else { return Vec::new() };
        contacts.iter().rev().filter(|c| c.item != except && c.at_ms >= since_ms).cloned().collect()
    }

    /// The book for a snapshot: each customer with their contacts, the least
    /// recently seen first (the order [`ContactBook::restore`] rebuilds).
    pub(crate) fn entries(&self) -> Vec<(String, Vec<Contact>)> {
        self.order
            .iter()
            .filter_map(|(touch, customer)| match self.by_customer.get(customer) {
                Some((last, contacts)) if last == touch => Some((customer.clone(), contacts.iter().cloned().collect())),
                _ => None,
            })
            .collect()
    }

    /// Take back what [`ContactBook::entries`] gave, as if seen in that order.
    pub(crate) fn restore(&mut self, entries: Vec<(String, Vec<Contact>)>) {
        for (customer, contacts) in entries {
            for contact in contacts {
                self.add(customer.clone(), contact);
            }
        }
    }

    fn add(&mut self, customer: String, contact: Contact) {
        self.touches += 1;
        let touch = self.touches;
        self.customer_of.insert(contact.item, customer.clone());
        let (last, contacts) = self.by_customer.entry(customer.clone()).or_default();
        *last = touch;
        contacts.push_back(contact);
        while contacts.len() > PER_CUSTOMER {
            if let Some(old) = contacts.pop_front() {
                self.customer_of.remove(&old.item);
            }
        }
        self.order.push_back((touch, customer));
        while self.by_customer.len() > CUSTOMERS {
            let Some((touch, customer)) = self.order.pop_front() else { break };
            if self.by_customer.get(&customer).is_some_and(|(last, _)| *last == touch)
                && let Some((_, gone)) = self.by_customer.remove(&customer)
            {
                for c in gone {
                    self.customer_of.remove(&c.item);
                }
            }
        }
        // Stale entries (customers touched again since) are dropped once they
        // outnumber the live ones, so `order` stays within twice the book.
        if self.order.len() > 2 * CUSTOMERS.max(self.by_customer.len()) {
            let by_customer = &self.by_customer;
            self.order.retain(|(touch, c)| by_customer.get(c).is_some_and(|(last, _)| last == touch));
        }
    }

    fn forget(&mut self, item: u64) {
        let Some(customer) = self.customer_of.remove(&item) else { return };
        if let Some((_, contacts)) = self.by_customer.get_mut(&customer) {
            contacts.retain(|c| c.item != item);
        }
    }

    fn set_outcome(&mut self, item: u64, outcome: Outcome) {
        let Some(customer) = self.customer_of.get(&item) else { return };
        if let Some((_, contacts)) = self.by_customer.get_mut(customer)
            && let Some(c) = contacts.iter_mut().find(|c| c.item == item)
        {
            c.outcome = outcome;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(item: u64, at_ms: u64) -> Contact {
        Contact {
            item,
            at_ms,
            department: "billing".into(),
            queue: "billing-general".into(),
            channel: Channel::Voice,
            outcome: Outcome::Open,
        }
    }

    /// A customer's earlier contacts come newest first, without the item in
    /// hand or those before the window, and at most `PER_CUSTOMER` are kept.
    #[test]
    fn earlier_contacts_are_windowed_and_bounded() {
        let mut book = ContactBook::default();
        for i in 1..=(PER_CUSTOMER as u64 + 2) {
            book.add("c-1".into(), contact(i, i * 10));
        }
        book.set_outcome(PER_CUSTOMER as u64 + 1, Outcome::Resolved);
        let earlier = book.earlier("c-1", PER_CUSTOMER as u64 + 2, 40);
        let items: Vec<u64> = earlier.iter().map(|c| c.item).collect();
        assert_eq!(items, (4..=PER_CUSTOMER as u64 + 1).rev().collect::<Vec<_>>());
        assert_eq!(earlier[0].outcome, Outcome::Resolved);
        assert!(book.customer_of.len() <= PER_CUSTOMER);
        assert!(book.earlier("nobody", 0, 0).is_empty());
        // A hand-off's item is forgotten: it is not a contact.
        book.forget(PER_CUSTOMER as u64 + 1);
        assert!(book.earlier("c-1", 0, 0).iter().all(|c| c.item != PER_CUSTOMER as u64 + 1));
        assert!(!book.customer_of.contains_key(&(PER_CUSTOMER as u64 + 1)));
    }

    /// A book taken for a snapshot and restored answers as the original did,
    /// outcomes included, and forgets the same customer first afterwards.
    #[test]
    fn a_restored_book_answers_as_the_original() {
        let mut book = ContactBook::default();
        book.add("c-1".into(), contact(1, 10));
        book.add("c-2".into(), contact(2, 20));
        book.add("c-1".into(), contact(3, 30));
        book.set_outcome(1, Outcome::Unresolved);
        let mut back = ContactBook::default();
        back.restore(book.entries());
        for customer in ["c-1", "c-2"] {
            assert_eq!(back.earlier(customer, 0, 0), book.earlier(customer, 0, 0), "{customer}");
        }
        assert_eq!(back.earlier("c-1", 3, 0)[0].outcome, Outcome::Unresolved);
        // c-2 was seen least recently in both.
        assert_eq!(back.entries().first().map(|(c, _)| c.as_str()), Some("c-2"));
        back.set_outcome(3, Outcome::Resolved);
        assert_eq!(back.earlier("c-1", 1, 0)[0].outcome, Outcome::Resolved);
    }
}
