"""The collections department's routing rules, as pure Python.

Collections is a back-office / outbound department: each work item is a case
about an overdue debt. This module owns the *decisions* — how urgent a case is
(``prioritise``) and what happens as its due time passes (``escalate``) — and
nothing else. It imports no WebAssembly bindings, so the rules are unit-tested
with plain ``python3 -m unittest``; ``app.py`` adapts the contract's types
(``switchyard:routing/types@0.1.0``) to and from the values used here.

Inputs a case carries (see ``wit/routing.wit``):

* ``value`` of the item row: the outstanding balance;
* ``tier`` of the item row: 0 standard, 1 silver, 2 gold, 3 platinum;
* attribute ``days-past-due``: whole days the debt is past due;
* attribute ``broken-promises``: promises to pay the customer has broken;
* attribute ``hardship``: ``yes`` when the customer declared financial hardship;
* ``due-in-ms`` of the item row: time left until the case's own due time.

Department configuration keys (``host.config``): ``alert-balance`` (balance at
or over which an overdue case alerts the supervisor, default 10000) and
``late-stage-days`` (days past due from which a case moves to the late-stage
queue, default 90).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

#: ``due-in-ms`` of an item without a due time (``i64::MAX``).
NO_DUE = 2**63 - 1
#: One hour and one day in milliseconds.
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

#: Attribute keys the rules read.
DAYS_PAST_DUE = "days-past-due"
BROKEN_PROMISES = "broken-promises"
HARDSHIP = "hardship"

#: Queues the rules may move a case to (used only if the host has interned them).
LATE_STAGE_QUEUE = "collections-late-stage"
HARDSHIP_QUEUE = "collections-hardship"

#: Priority a case is raised to when it becomes due soon.
DUE_SOON_PRIORITY = 300
#: How long before its due time a case counts as "due soon".
DUE_SOON_MS = 4 * HOUR_MS
#: Priority of a case on its first overdue day; each further day adds
#: ``OVERDUE_STEP`` up to ``OVERDUE_CAP``.
OVERDUE_PRIORITY = 500
OVERDUE_STEP = 100
OVERDUE_CAP = 800
#: Priority an alerted case is raised to. A case at or above it has already
#: alerted the supervisor, so the rule stays stateless and alerts exactly once.
ALERTED_PRIORITY = 900

TIER_NAMES = ("standard", "silver", "gold", "platinum")


@dataclass(frozen=True)
class Settings:
    """The department's tunable thresholds (from ``host.config``)."""

    alert_balance: float = 10_000.0
    late_stage_days: int = 90

    @classmethod
    def from_config(cls, get: Callable[[str], Optional[str]]) -> Tuple["Settings", List[str]]:
        """Read the settings through ``get(key)``; returns them and a list of
        problems (an invalid value keeps its default and is reported)."""
        problems: List[str] = []
        defaults = cls()

        def number(key: str, default: float, cast: Callable[[str], float]) -> float:
            raw = get(key)
            if raw is None:
                return default
            try:
                value = cast(raw.strip())
            except ValueError:
                problems.append(f"config `{key}` = {raw!r} is not a number; using {default}")
                return default
            if value < 0:
                problems.append(f"config `{key}` = {raw!r} is negative; using {default}")
                return default
            return value

        return (
            cls(
                alert_balance=number("alert-balance", defaults.alert_balance, float),
                late_stage_days=int(number("late-stage-days", defaults.late_stage_days, int)),
            ),
            problems,
        )


class Names:
    """One interned name table (queues, attributes or skills), cached.

    ``fetch(first)`` returns the names with ids ``first, first+1, …`` — in the
    component it is ``host.names(kind, first)``. Tables only grow and ids never
    change, so the cache asks the host only for the tail it has not seen.
    """

    def __init__(self, fetch: Callable[[int], List[str]]) -> None:
        self._fetch = fetch
        self._names: List[str] = []
        self._ids: Dict[str, int] = {}

    def _refresh(self) -> None:
        for name in self._fetch(len(self._names)):
            self._ids.setdefault(name, len(self._names))
            self._names.append(name)

    def name(self, id: int) -> Optional[str]:
        """The name of ``id``, or None if the host never interned it."""
        if id >= len(self._names):
            self._refresh()
        return self._names[id] if 0 <= id < len(self._names) else None

    def id(self, name: str) -> Optional[int]:
        """The id of ``name``, or None if the host never interned it."""
        if name not in self._ids:
            self._refresh()
        return self._ids.get(name)


class BatchView:
    """Reads the variable-size parts of an ``item-batch``.

    Attribute values travel concatenated in one UTF-8 string; ``attr-value-ends``
    holds *byte* offsets, so the string is encoded once per batch and sliced as
    bytes (Python ``str`` indices count code points, not bytes).
    """

    def __init__(self, batch, attribute_names: Names) -> None:
        self.batch = batch
        self.rows = batch.rows
        self._names = attribute_names
        self._values = batch.attr_values.encode("utf-8")

    def attributes(self, row) -> Dict[str, str]:
        """The attributes of ``row`` as ``{name: value}``."""
        ends = self.batch.attr_value_ends
        keys = self.batch.attr_keys
        out: Dict[str, str] = {}
        for i in range(row.attr_start, row.attr_start + row.attr_count):
            start = ends[i - 1] if i > 0 else 0
            name = self._names.name(keys[i])
            if name is not None:
                out[name] = self._values[start : ends[i]].decode("utf-8")
        return out


def whole_number(attributes: Dict[str, str], key: str) -> int:
    """A non-negative whole-number attribute; absent or malformed counts as 0."""
    try:
        return max(0, int(attributes.get(key, "0").strip()))
    except ValueError:
        return 0


def balance_points(balance: float) -> int:
    """Points for the outstanding balance, in bands."""
    for floor, points in ((25_000, 120), (10_000, 80), (2_500, 40), (500, 20)):
        if balance >= floor:
            return points
    return 0


@dataclass(frozen=True)
class Decision:
    """One prioritise answer: mirrors the contract's ``priority`` record."""

    priority: int
    queue: Optional[int] = None
    reason: Optional[str] = None


def score(days_past_due: int, balance: float, tier: int, broken_promises: int) -> int:
    """How urgent a case is: days past due (capped at 180), balance band,
    30 points per broken promise (up to 3) and 25 per tier step."""
    return min(days_past_due, 180) + balance_points(balance) + 30 * min(broken_promises, 3) + 25 * tier


def prioritise(view: BatchView, settings: Settings, queues: Names) -> List[Decision]:
    """One decision per item, in batch order."""
    decisions: List[Decision] = []
    for row in view.rows:
        attrs = view.attributes(row)
        dpd = whole_number(attrs, DAYS_PAST_DUE)
        broken = whole_number(attrs, BROKEN_PROMISES)
        tier = TIER_NAMES[row.tier] if row.tier < len(TIER_NAMES) else f"tier {row.tier}"
        reason = f"{dpd} days past due, balance {row.value:.2f}, {tier}, {broken} broken promises"

        target = None
        if attrs.get(HARDSHIP, "").strip().lower() == "yes":
            target = HARDSHIP_QUEUE
        elif dpd >= settings.late_stage_days:
            target = LATE_STAGE_QUEUE
        queue = queues.id(target) if target else None
        if queue is not None and queue != row.queue:
            reason += f"; to {target}"
        else:
            queue = None
        decisions.append(Decision(score(dpd, row.value, row.tier, broken), queue, reason))
    return decisions


@dataclass(frozen=True)
class RaiseTo:
    """Escalation action: set priority to at least ``value``."""

    value: int


@dataclass(frozen=True)
class Alert:
    """Escalation action: alert the supervisor."""

    value: str


Action = Union[RaiseTo, Alert]


@dataclass(frozen=True)
class Escalation:
    """One escalate answer: mirrors the contract's ``escalation`` record."""

    actions: List[Action] = field(default_factory=list)
    recheck_in_ms: Optional[int] = None


def escalate_one(row, settings: Settings) -> Escalation:
    """The escalation of one waiting case, from its time to due and balance.

    * no due time: nothing to do, never look again;
    * more than 4 h to due: nothing yet, look again when it is 4 h from due;
    * due within 4 h: raise to 300, look again when it falls due;
    * overdue: raise to 500 on the first day, +100 per further day (cap 800),
      look again at the next whole day overdue; a case whose balance is at or
      over ``alert-balance`` instead goes to 900 and alerts the supervisor once.
    """
    due = row.due_in_ms
    if due == NO_DUE:
        return Escalation()
    if due > DUE_SOON_MS:
        return Escalation([], due - DUE_SOON_MS)
    if due > 0:
        return Escalation([RaiseTo(DUE_SOON_PRIORITY)], due)

    overdue = -due
    next_day = DAY_MS - overdue % DAY_MS
    if row.priority >= ALERTED_PRIORITY:
        return Escalation([], next_day)
    if row.value >= settings.alert_balance:
        hours = overdue // HOUR_MS
        message = (
            f"collections case {row.id} is {hours} h overdue with balance "
            f"{row.value:.2f} (alert at {settings.alert_balance:.2f})"
        )
        return Escalation([RaiseTo(ALERTED_PRIORITY), Alert(message)], next_day)
    days = overdue // DAY_MS
    return Escalation([RaiseTo(min(OVERDUE_PRIORITY + OVERDUE_STEP * days, OVERDUE_CAP))], next_day)


def escalate(view: BatchView, settings: Settings) -> List[Escalation]:
    """One escalation per item, in batch order."""
    return [escalate_one(row, settings) for row in view.rows]
