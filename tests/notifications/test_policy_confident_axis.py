"""The policy decides on the confident axis (geofence/RULES.md, R-CONF-3), and nothing automatic follows late data."""

from __future__ import annotations

import itertools

import pytest

from notifications.policy import ChangeFacts, decide

KINDS = ["proximity", "zone_exclusion", "zone_inclusion", "panic"]


def facts(kind: str, change: str, confidence: str, late: bool = False) -> ChangeFacts:
    return ChangeFacts(alert_id="a1", case_id="c1", kind=kind, change=change, level="violation",
                       confidence=confidence, max_level="violation", status="open", seq=7,
                       detail={"late": late, "evidence": []})


def purposes(f: ChangeFacts) -> set[str]:
    return {i.purpose for i in decide(f)}


@pytest.mark.parametrize("kind,change", itertools.product(KINDS, ["opened", "escalated"]))
def test_possible_only_violation_never_pushes_the_victim_nor_auto_escalates(kind: str, change: str) -> None:
    """R-CONF-3: a possible-only violation (no probable or confirmed reading) is for the operator to judge."""
    found = purposes(facts(kind, change, "possible"))
    assert "violation" not in found and "escalation_check" not in found
    sure = purposes(facts(kind, change, "probable"))
    assert "escalation_check" in sure or kind == "zone_inclusion"  # inclusion zones do not auto-escalate
    assert ("violation" in sure) == (kind in ("proximity", "zone_exclusion"))


@pytest.mark.parametrize("kind,change,confidence",
                         itertools.product(KINDS, ["opened", "escalated"], ["possible", "probable", "confirmed"]))
def test_a_late_violation_starts_nothing_automatic(kind: str, change: str, confidence: str) -> None:
    """R-LATE-2: a breach in the past found in a buffered upload: no push, no police timer, no pursuit mode."""
    found = purposes(facts(kind, change, confidence, late=True))
    assert found == {"alert_change"}  # the operators' stream only
