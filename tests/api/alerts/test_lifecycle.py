"""The operator lifecycle table (api/alerts/lifecycle.py): each test names the rule of its docstring it pins."""

import pytest

from api.alerts.lifecycle import Action, Refused, Status, TRANSITIONS, allowed_from, transition


def test_acknowledge_only_an_open_alert() -> None:
    # Rule: an alert is acknowledged once, by the operator who takes it.
    assert transition("open", Action.ACKNOWLEDGE) is Status.ACKNOWLEDGED
    for status in ("acknowledged", "resolved"):
        with pytest.raises(Refused, match=f"the alert is {status}; acknowledged is possible only when it is open$"):
            transition(status, Action.ACKNOWLEDGE)


def test_resolved_stays_resolved() -> None:
    # Rule: resolved with an outcome, then it stays resolved.
    assert transition("open", Action.RESOLVE) is Status.RESOLVED
    assert transition("acknowledged", Action.RESOLVE) is Status.RESOLVED
    with pytest.raises(Refused, match="only when it is open or acknowledged$"):
        transition("resolved", Action.RESOLVE)
    assert all(new is Status.RESOLVED for (old, _), new in TRANSITIONS.items() if old is Status.RESOLVED)


def test_notes_and_victim_messages_belong_to_the_history_in_every_status() -> None:
    # Rule: notes and messages to the victim are possible even after the resolution, and change no status.
    for action in (Action.NOTE, Action.MESSAGE_VICTIM):
        assert allowed_from(action) == (Status.OPEN, Status.ACKNOWLEDGED, Status.RESOLVED)
        for status in Status:
            assert transition(status.value, action) is status


def test_police_are_called_for_a_live_alert_only() -> None:
    # Rule: the police are called for a live alert only, without changing its status.
    assert transition("open", Action.ESCALATE_TO_POLICE) is Status.OPEN
    assert transition("acknowledged", Action.ESCALATE_TO_POLICE) is Status.ACKNOWLEDGED
    with pytest.raises(Refused, match="the alert is resolved; escalated_to_police is possible only when it is open"
                                      " or acknowledged$"):
        transition("resolved", Action.ESCALATE_TO_POLICE)
