//! Customers and cases: the repeat-contact record (FCR), and each case's
//! timeline across departments, capped per case.

use super::*;

impl Router {
    pub(super) fn record_customer(&mut self, id: u64) {
        let Some(item) = self.items.get(&id) else {
            return;
        };
        let Some(customer) = item.customer.clone() else {
            return;
        };
        let record = CustomerRecord {
            last_item: id,
            last_queue: item.queue,
            last_department: item.department,
            last_seen_ms: item.created_ms,
            contacts: item.contacts,
        };
        self.customer_expiry.push_back((record.last_seen_ms, customer.clone()));
        self.customers.insert(customer, record);
    }

    pub(super) fn case_step(&mut self, id: u64, what: impl FnOnce() -> String) {
        let now = self.now_ms();
        let Some(item) = self.items.get(&id) else {
            return;
        };
        let Some(case) = &item.case else { return };
        let department = self.departments[item.department].spec.name.clone();
        if let Some(record) = self.cases.get_mut(case) {
            let step = CaseStep { at_ms: now, item: ItemId(id), department, what: what() };
            push_step(record, step, &self.options.retention, &mut self.stats);
        }
    }

    pub(super) fn case_item_ended(&mut self, case: Option<String>) {
        let Some(case) = case else { return };
        let now = self.now_ms();
        let Some(record) = self.cases.get_mut(&case) else {
            return;
        };
        record.open_items = record.open_items.saturating_sub(1);
        if record.open_items == 0 {
            record.closed_ms = Some(now);
            self.closed_cases.push_back((now, case.clone()));
            let departments = record.departments.iter().map(|&d| self.departments[d].spec.name.clone()).collect();
            let opened_ms = record.opened_ms;
            self.emit(Event::CaseClosed { at_ms: now, case, opened_ms, departments });
        }
    }

    /// A case's life cycle across departments.
    pub fn case(&self, case: &str) -> Option<CaseView> {
        let record = self.cases.get(case)?;
        Some(CaseView {
            case: case.to_owned(),
            customer: record.customer.clone(),
            opened_ms: record.opened_ms,
            closed_ms: record.closed_ms,
            departments: record.departments.iter().map(|&d| self.departments[d].spec.name.clone()).collect(),
            history: record.history.iter().cloned().collect(),
            history_dropped: record.history_dropped,
        })
    }
}

/// Append a step to a case's history, dropping the oldest past the retention.
pub(super) fn push_step(record: &mut CaseRecord, step: CaseStep, retention: &Retention, stats: &mut RetentionStats) {
    record.history.push_back(step);
    while record.history.len() > retention.case_steps.max(1) {
        record.history.pop_front();
        record.history_dropped += 1;
        stats.case_steps_dropped += 1;
    }
}

/// Append a department to a case's path, dropping the oldest past the retention.
pub(super) fn push_department(record: &mut CaseRecord, department: usize, retention: &Retention) {
    record.departments.push(department);
    if record.departments.len() > retention.case_steps.max(1).saturating_mul(2) {
        let excess = record.departments.len() - retention.case_steps.max(1);
        record.departments.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{item, router};
    use super::*;

    /// A customer's second contact within the FCR window counts as a repeat;
    /// after the window it starts afresh.
    #[test]
    fn repeat_contacts_count_within_the_window_only() {
        let (mut router, clock) = router();
        let contact = |router: &mut Router| {
            let id =
                router.create_item(NewWorkItem { customer: Some("c-1".into()), ..item("billing", Channel::Voice) });
            router.items[&id.0].contacts
        };
        assert_eq!(contact(&mut router), 1);
        assert_eq!(contact(&mut router), 2);
        clock.advance(router.departments[0].spec.fcr_window_ms + 1);
        assert_eq!(contact(&mut router), 1, "outside the window");
    }

    /// A case's timeline keeps the newest steps up to the retention cap and
    /// counts what it dropped.
    #[test]
    fn a_case_timeline_is_capped_and_counts_what_it_dropped() {
        let (mut router, _) = router();
        router.options.retention.case_steps = 3;
        for _ in 0..5 {
            router.create_item(NewWorkItem { case: Some("case-9".into()), ..item("claims", Channel::Case) });
        }
        let record = &router.cases["case-9"];
        assert_eq!(record.history.len(), 3);
        assert_eq!(record.history_dropped, 2);
        assert_eq!(record.open_items, 5);
        assert_eq!(router.retention_stats().case_steps_dropped, 2);
    }
}
