"""The operator lifecycle of an alert: which action the monitoring room may take in which status.

A pure transition table, as h11 keeps its connection states in one table: ``(status, action) -> new status``;
a pair missing from the table is refused. The service consults it, never its own ifs, so the rules are read in
one place. Each action is also the name of the ``alert_changes`` row it writes.

    status         acknowledged  resolved  note  escalated_to_police  victim_messaged
    open           acknowledged  resolved  open  open                 open
    acknowledged   -             resolved  ack.  acknowledged         acknowledged
    resolved       -             -         res.  -                    resolved

Why: an alert is acknowledged once, by the operator who takes it; it is resolved with an outcome and then stays
resolved (a new finding raises a new alert). Notes and messages to the victim belong to the history even after
the resolution (the call afterwards); the police are called for a live alert only.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Action(str, Enum):
    ACKNOWLEDGE = "acknowledged"
    RESOLVE = "resolved"
    NOTE = "note"
    ESCALATE_TO_POLICE = "escalated_to_police"
    MESSAGE_VICTIM = "victim_messaged"


_O, _A, _R = Status.OPEN, Status.ACKNOWLEDGED, Status.RESOLVED
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (_O, Action.ACKNOWLEDGE): _A,
    (_O, Action.RESOLVE): _R,
    (_A, Action.RESOLVE): _R,
    (_O, Action.NOTE): _O,
    (_A, Action.NOTE): _A,
    (_R, Action.NOTE): _R,
    (_O, Action.ESCALATE_TO_POLICE): _O,
    (_A, Action.ESCALATE_TO_POLICE): _A,
    (_O, Action.MESSAGE_VICTIM): _O,
    (_A, Action.MESSAGE_VICTIM): _A,
    (_R, Action.MESSAGE_VICTIM): _R,
}

# Actions taken at most once per alert: the police are called once; a second call is a conflict, not a retry.
ONCE = frozenset({Action.ESCALATE_TO_POLICE})

# How the monitoring room closes an alert (``resolve``'s ``outcome``).
OUTCOMES = (
    "offender_contacted_complied", "police_dispatched", "false_alarm_gps", "victim_safe_confirmed",
    "technical_fault", "order_expired", "other",
)


class Refused(Exception):
    """The action is not possible in the alert's status; the message says from which statuses it is."""


def allowed_from(action: Action) -> tuple[Status, ...]:
    return tuple(s for s in Status if (s, action) in TRANSITIONS)


def transition(status: str, action: Action) -> Status:
    """The status after ``action``, or :class:`Refused`."""
    new = TRANSITIONS.get((Status(status), action))
    if new is None:
        raise Refused(f"the alert is {status}; {action.value} is possible only when it is "
                      f"{' or '.join(s.value for s in allowed_from(action))}")
    return new
