"""Unit tests of the collections rules, without WebAssembly.

Run from this directory: ``python3 -m unittest -v`` (or ``python3 -m pytest``).
Batches are built the way the host builds them (struct-of-arrays, interned
names, UTF-8 byte offsets), so the rules see exactly what the component sees.
"""

import unittest
from types import SimpleNamespace

import collections_rules as rules

QUEUES = ["collections", "collections-late-stage", "collections-hardship"]
ATTRIBUTES = ["note", "days-past-due", "broken-promises", "hardship"]
NOW = 1_767_225_600_000


def names(table):
    """A Names cache over a fixed table, counting host calls."""
    calls = []

    def fetch(first):
        calls.append(first)
        return table[first:]

    cache = rules.Names(fetch)
    cache.calls = calls
    return cache


def batch(*items):
    """Build an item-batch like the host does; each item is a dict of row fields
    plus ``attrs`` ({name: value})."""
    rows, keys, ends, values = [], [], [], b""
    for i, item in enumerate(items):
        attrs = item.get("attrs", {})
        start = len(keys)
        for key, value in attrs.items():
            keys.append(ATTRIBUTES.index(key))
            values += value.encode("utf-8")
            ends.append(len(values))
        rows.append(
            SimpleNamespace(
                id=item.get("id", i + 1),
                channel=3,
                queue=item.get("queue", 0),
                tier=item.get("tier", 0),
                contacts=item.get("contacts", 1),
                priority=item.get("priority", 0),
                age_ms=item.get("age_ms", 0),
                due_in_ms=item.get("due_in_ms", rules.NO_DUE),
                value=item.get("value", 0.0),
                skill_start=0,
                skill_count=0,
                attr_start=start,
                attr_count=len(attrs),
            )
        )
    return SimpleNamespace(
        now_ms=NOW,
        rows=rows,
        skills=[],
        attr_keys=keys,
        attr_value_ends=ends,
        attr_values=values.decode("utf-8"),
    )


def prioritise(*items, settings=rules.Settings()):
    view = rules.BatchView(batch(*items), names(ATTRIBUTES))
    return rules.prioritise(view, settings, names(QUEUES))


def escalate(*items, settings=rules.Settings()):
    return rules.escalate(rules.BatchView(batch(*items), names(ATTRIBUTES)), settings)


class AttributesTest(unittest.TestCase):
    def test_values_are_sliced_by_utf8_byte_offsets(self):
        b = batch(
            {"attrs": {"note": "Zahlungsvereinbarung für Müller", "days-past-due": "12"}},
            {"attrs": {"note": "€€€", "broken-promises": "2"}},
        )
        view = rules.BatchView(b, names(ATTRIBUTES))
        self.assertEqual(
            view.attributes(b.rows[0]),
            {"note": "Zahlungsvereinbarung für Müller", "days-past-due": "12"},
        )
        self.assertEqual(view.attributes(b.rows[1]), {"note": "€€€", "broken-promises": "2"})

    def test_names_are_fetched_once_and_then_only_the_tail(self):
        table = ["a", "b"]
        cache = names(table)
        self.assertEqual(cache.id("b"), 1)
        self.assertEqual(cache.name(0), "a")
        table.append("c")
        self.assertEqual(cache.id("c"), 2)
        self.assertEqual(cache.calls, [0, 2])
        self.assertIsNone(cache.name(7))


class PrioritiseTest(unittest.TestCase):
    def test_score_adds_days_balance_promises_and_tier(self):
        [d] = prioritise(
            {"value": 12_000.0, "tier": 2, "attrs": {"days-past-due": "45", "broken-promises": "2"}}
        )
        # 45 days + 80 (balance >= 10k) + 2 * 30 + 2 * 25
        self.assertEqual(d.priority, 235)
        self.assertIsNone(d.queue)
        self.assertEqual(d.reason, "45 days past due, balance 12000.00, gold, 2 broken promises")

    def test_a_fresh_small_standard_case_scores_zero(self):
        self.assertEqual(prioritise({"value": 120.0}), [rules.Decision(0, None, "0 days past due, balance 120.00, standard, 0 broken promises")])

    def test_days_and_broken_promises_are_capped(self):
        [d] = prioritise({"attrs": {"days-past-due": "400", "broken-promises": "9"}})
        self.assertEqual(d.priority, 180 + 90)

    def test_malformed_numbers_count_as_zero(self):
        [d] = prioritise({"attrs": {"days-past-due": "soon", "broken-promises": "-3"}})
        self.assertEqual(d.priority, 0)

    def test_late_stage_cases_move_to_the_late_stage_queue(self):
        [d] = prioritise({"value": 600.0, "attrs": {"days-past-due": "95"}})
        self.assertEqual(d.priority, 95 + 20)
        self.assertEqual(d.queue, 1)
        self.assertTrue(d.reason.endswith("; to collections-late-stage"), d.reason)

    def test_hardship_wins_over_late_stage(self):
        [d] = prioritise({"attrs": {"days-past-due": "120", "hardship": "Yes"}})
        self.assertEqual(d.queue, 2)

    def test_a_case_already_in_its_queue_is_not_moved(self):
        [d] = prioritise({"queue": 1, "attrs": {"days-past-due": "95"}})
        self.assertIsNone(d.queue)

    def test_unknown_queue_keeps_the_case_where_it_is(self):
        view = rules.BatchView(batch({"attrs": {"days-past-due": "95"}}), names(ATTRIBUTES))
        [d] = rules.prioritise(view, rules.Settings(), names(["collections"]))
        self.assertIsNone(d.queue)

    def test_late_stage_threshold_comes_from_config(self):
        config = {"late-stage-days": "30", "alert-balance": "oops"}
        settings, problems = rules.Settings.from_config(config.get)
        self.assertEqual(settings, rules.Settings(alert_balance=10_000.0, late_stage_days=30))
        self.assertEqual(problems, ["config `alert-balance` = 'oops' is not a number; using 10000.0"])
        [d] = prioritise({"attrs": {"days-past-due": "31"}}, settings=settings)
        self.assertEqual(d.queue, 1)

    def test_one_decision_per_item_in_batch_order(self):
        decisions = prioritise({"tier": 3}, {"tier": 1}, {"tier": 0})
        self.assertEqual([d.priority for d in decisions], [75, 25, 0])


class EscalateTest(unittest.TestCase):
    def test_no_due_time_never_escalates(self):
        self.assertEqual(escalate({}), [rules.Escalation([], None)])

    def test_far_from_due_waits_until_four_hours_before(self):
        [e] = escalate({"due_in_ms": 10 * rules.HOUR_MS})
        self.assertEqual(e, rules.Escalation([], 6 * rules.HOUR_MS))

    def test_due_soon_raises_to_300_and_rechecks_at_due(self):
        [e] = escalate({"due_in_ms": 90 * 60_000})
        self.assertEqual(e, rules.Escalation([rules.RaiseTo(300)], 90 * 60_000))

    def test_overdue_raises_by_day(self):
        first, third, late = escalate(
            {"due_in_ms": -rules.HOUR_MS},
            {"due_in_ms": -(2 * rules.DAY_MS + 1)},
            {"due_in_ms": -30 * rules.DAY_MS},
        )
        self.assertEqual(first, rules.Escalation([rules.RaiseTo(500)], 23 * rules.HOUR_MS))
        self.assertEqual(third, rules.Escalation([rules.RaiseTo(700)], rules.DAY_MS - 1))
        self.assertEqual(late.actions, [rules.RaiseTo(800)])

    def test_overdue_big_balance_alerts_the_supervisor_once(self):
        [e] = escalate({"id": 42, "value": 15_000.0, "priority": 500, "due_in_ms": -3 * rules.HOUR_MS})
        self.assertEqual(
            e.actions,
            [
                rules.RaiseTo(900),
                rules.Alert("collections case 42 is 3 h overdue with balance 15000.00 (alert at 10000.00)"),
            ],
        )
        [again] = escalate({"id": 42, "value": 15_000.0, "priority": 900, "due_in_ms": -5 * rules.HOUR_MS})
        self.assertEqual(again, rules.Escalation([], 19 * rules.HOUR_MS))

    def test_alert_threshold_comes_from_config(self):
        settings, problems = rules.Settings.from_config({"alert-balance": "2500"}.get)
        self.assertEqual(problems, [])
        [e] = escalate({"value": 3_000.0, "due_in_ms": -1}, settings=settings)
        self.assertEqual(e.actions[0], rules.RaiseTo(900))
        self.assertIsInstance(e.actions[1], rules.Alert)


if __name__ == "__main__":
    unittest.main()
