"""The collections plugin's component entry point (``componentize-py … componentize app``).

It adapts the contract's generated types (``wit_world``, made by componentize-py
from ``wit/world.wit``) to the pure rules in ``collections_rules`` and back. The
exported classes are named after the exported interfaces: ``Prioritiser`` for
``switchyard:routing/prioritiser`` and ``Escalator`` for
``switchyard:routing/escalator``.
"""

from typing import List

import collections_rules as rules
from wit_world import exports
from wit_world.imports import host, types

# Name tables are cached for the life of the instance; ids never change.
_queues = rules.Names(lambda first: host.names(types.NameKind.QUEUE, first))
_attributes = rules.Names(lambda first: host.names(types.NameKind.ATTRIBUTE, first))


def _settings() -> rules.Settings:
    settings, problems = rules.Settings.from_config(host.config)
    for problem in problems:
        host.log(types.LogLevel.WARN, problem, [("plugin", "python-collections")])
    return settings


def _action(action: rules.Action) -> types.EscalationAction:
    if isinstance(action, rules.RaiseTo):
        return types.EscalationAction_RaiseTo(action.value)
    return types.EscalationAction_Alert(action.value)


class Prioritiser(exports.Prioritiser):
    """``switchyard:routing/prioritiser``: one priority per case."""

    def prioritise(self, items: types.ItemBatch) -> List[types.Priority]:
        view = rules.BatchView(items, _attributes)
        return [
            types.Priority(d.priority, d.queue, d.reason)
            for d in rules.prioritise(view, _settings(), _queues)
        ]


class Escalator(exports.Escalator):
    """``switchyard:routing/escalator``: one escalation per waiting case."""

    def escalate(self, items: types.ItemBatch) -> List[types.Escalation]:
        view = rules.BatchView(items, _attributes)
        return [
            types.Escalation([_action(a) for a in e.actions], e.recheck_in_ms)
            for e in rules.escalate(view, _settings())
        ]
