//! Per-department time budgets for rules: a department whose plugin uses more
//! than its share of time decides with the built-in rules until its window ends,
//! and says so (`/v1/plugins`, `/metrics`, the decision's [`RuleSource`]).
//!
//! Two bounds keep one department's slow rules from holding up the others:
//! - each plugin call is cut at the department's `call_deadline_ms` (the plugin's
//!   deadline, enforced by epoch interruption: a call over it is a fallback and a
//!   breaker failure), so no single decision holds the daemon longer than that;
//! - over each one-second window the department's rules may run for at most
//!   `rule_budget_ms`; past that every decision of the department is the built-in
//!   rule's, at no cost, until the next window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use switchyard_contract::{CandidateTable, Escalation, ItemBatch, MatchResult, Priority};

use switchyard_core::rules::{BuiltInRules, Decided, RuleSet, RuleSource};
use switchyard_runtime::runtime::Runtime;

/// Length of a budget window.
const WINDOW: Duration = Duration::from_secs(1);

/// One department's budget and what it has spent.
#[derive(Debug)]
pub(crate) struct Budget {
    department: String,
    per_window: Duration,
    window: Mutex<Window>,
    /// Decisions sent to the built-in rules because the budget was spent.
    over_budget: AtomicU64,
    /// Windows in which the budget ran out.
    exhausted_windows: AtomicU64,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    used: Duration,
    exhausted: bool,
}

/// What `/v1/plugins` and `/metrics` show of a budget.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BudgetView {
    /// Rule time the department may use per second, ms.
    pub(crate) budget_ms_per_s: u64,
    /// Spent in the current window, ms.
    pub(crate) used_ms: f64,
    /// Whether the department decides with the built-in rules now.
    pub(crate) over_budget: bool,
    /// Decisions sent to the built-in rules for lack of budget, since start.
    pub(crate) fallback_decisions: u64,
    /// Windows in which the budget ran out, since start.
    pub(crate) exhausted_windows: u64,
}

impl Budget {
    pub(crate) fn new(department: &str, per_window: Duration) -> Budget {
        Budget {
            department: department.to_owned(),
            per_window,
            window: Mutex::new(Window { started: Instant::now(), used: Duration::ZERO, exhausted: false }),
            over_budget: AtomicU64::new(0),
            exhausted_windows: AtomicU64::new(0),
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if window.started.elapsed() >= WINDOW {
            *window = Window { started: Instant::now(), used: Duration::ZERO, exhausted: false };
        }
        window
    }

    /// Whether a plugin may be called now; counts a refused decision.
    fn admit(&self) -> bool {
        if self.window().exhausted {
            self.over_budget.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn charge(&self, spent: Duration) {
        let mut window = self.window();
        window.used += spent;
        if !window.exhausted && window.used > self.per_window {
            window.exhausted = true;
            self.exhausted_windows.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(department = %self.department, used_ms = window.used.as_millis() as u64, budget_ms = self.per_window.as_millis() as u64, "department over its rule time budget: built-in rules for the rest of the second");
        }
    }

    pub(crate) fn view(&self) -> BudgetView {
        let window = self.window();
        BudgetView {
            budget_ms_per_s: self.per_window.as_millis() as u64,
            used_ms: window.used.as_secs_f64() * 1000.0,
            over_budget: window.exhausted,
            fallback_decisions: self.over_budget.load(Ordering::Relaxed),
            exhausted_windows: self.exhausted_windows.load(Ordering::Relaxed),
        }
    }
}

/// A department's rules under its [`Budget`].
pub(crate) struct BudgetedRules {
    pub(crate) inner: Arc<dyn RuleSet>,
    pub(crate) budget: Arc<Budget>,
    pub(crate) runtime: Runtime,
}

impl BudgetedRules {
    /// Run `call` on the inner rules if the budget allows (and charge it), else
    /// answer with `built_in` and say why.
    fn run<T>(&self, call: impl FnOnce(&dyn RuleSet) -> Decided<T>, built_in: impl FnOnce() -> T) -> Decided<T> {
        // Only a plugin spends budget: the built-in rules cost next to nothing.
        let Some(plugin) = self.runtime.current(&self.budget.department) else {
            return call(self.inner.as_ref());
        };
        if !self.budget.admit() {
            return Decided {
                value: built_in(),
                source: RuleSource::Fallback {
                    plugin: plugin.name().to_owned(),
                    generation: plugin.generation(),
                    reason: format!(
                        "department `{}` used its rule time budget ({} ms per second)",
                        self.budget.department,
                        self.budget.per_window.as_millis()
                    ),
                },
            };
        }
        let started = Instant::now();
        let decided = call(self.inner.as_ref());
        self.budget.charge(started.elapsed());
        decided
    }
}

impl RuleSet for BudgetedRules {
    fn prioritise(&self, items: &ItemBatch) -> Decided<Vec<Priority>> {
        self.run(|r| r.prioritise(items), || BuiltInRules::prioritise(items))
    }
    fn escalate(&self, items: &ItemBatch) -> Decided<Vec<Escalation>> {
        self.run(|r| r.escalate(items), || BuiltInRules::escalate(items))
    }
    fn match_agents(&self, item: &ItemBatch, candidates: &CandidateTable) -> Decided<MatchResult> {
        self.run(|r| r.match_agents(item, candidates), || BuiltInRules::match_agents(item, candidates))
    }
    fn calls_plugin(&self, hook: switchyard_contract::Hook) -> bool {
        self.inner.calls_plugin(hook)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_refuses_until_the_window_ends() {
        let budget = Budget::new("billing", Duration::from_millis(10));
        assert!(budget.admit(), "obeyed: a fresh window admits");
        budget.charge(Duration::from_millis(4));
        assert!(budget.admit());
        assert!(!budget.view().over_budget);
        budget.charge(Duration::from_millis(7));
        assert!(!budget.admit(), "violated: 11 ms of 10 spent");
        let view = budget.view();
        assert!(view.over_budget);
        assert_eq!((view.fallback_decisions, view.exhausted_windows), (1, 1));
        // A new window starts afresh.
        budget.window.lock().unwrap().started -= WINDOW;
        assert!(budget.admit());
        assert!(!budget.view().over_budget);
    }
}
