"""The notification policy is pure: every rule checked exhaustively over kinds, changes, levels, confidences."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from notifications.policy import (
    DEFAULT_POLICY, CasePolicy, ChangeFacts, NoticePlan, QuietHours, VictimPreferences, decide, may_notify,
    plan_notice, release_time,
)

KINDS = ["proximity", "zone_exclusion", "zone_inclusion", "offender_silent", "victim_silent", "device_event", "panic",
         "delivery_failed"]
CHANGES = ["opened", "escalated", "deescalated", "cleared", "acknowledged", "resolved", "note", "notified",
           "delivery_failed", "victim_acknowledged", "victim_not_confirmed", "escalated_to_police", "victim_messaged"]
LEVELS = ["warning", "violation"]
CONFIDENCES = ["possible", "probable", "confirmed"]


def facts(kind: str = "proximity", change: str = "opened", level: str = "violation", confidence: str = "confirmed",
          **kw) -> ChangeFacts:  # type: ignore[no-untyped-def]
    base = dict(alert_id="a1", case_id="c1", kind=kind, change=change, level=level, confidence=confidence,
                max_level=kw.pop("max_level", level), status=kw.pop("status", "open"), seq=kw.pop("seq", 7))
    base.update(kw)
    return ChangeFacts(**base)  # type: ignore[arg-type]


def victim(intents):  # type: ignore[no-untyped-def]
    return [i for i in intents if i.recipient == "victim"]


ALL = list(itertools.product(KINDS, CHANGES, LEVELS, CONFIDENCES))


@pytest.mark.parametrize("kind,change,level,confidence", ALL)
def test_operators_hear_every_change_on_the_stream(kind: str, change: str, level: str, confidence: str) -> None:
    out = decide(facts(kind, change, level, confidence))
    assert out[0].recipient == "operators" and out[0].channel == "stream"


@pytest.mark.parametrize("kind,change,level,confidence", ALL)
def test_victim_violation_rule(kind: str, change: str, level: str, confidence: str) -> None:
    out = [i for i in victim(decide(facts(kind, change, level, confidence))) if i.purpose == "violation"]
    expected = (kind in ("proximity", "zone_exclusion") and change in ("opened", "escalated")
                and level == "violation" and confidence in ("probable", "confirmed"))
    assert bool(out) == expected
    if out:
        assert out[0].safety and out[0].channel == "push" and out[0].key == "violation"


@pytest.mark.parametrize("kind,change,confidence", itertools.product(KINDS, CHANGES, CONFIDENCES))
def test_never_the_victim_for_warnings_from_the_engine(kind: str, change: str, confidence: str) -> None:
    if change in ("victim_messaged", "acknowledged", "cleared", "resolved"):
        return  # not engine approaches: operator messages, panic acknowledgement, order end are level-independent
    assert victim(decide(facts(kind, change, "warning", confidence))) == []


@pytest.mark.parametrize("kind,change,level,confidence", ALL)
def test_may_notify_prefilter_never_hides_a_decision(kind: str, change: str, level: str, confidence: str) -> None:
    out = [i for i in decide(facts(kind, change, level, confidence)) if i.channel != "stream"]
    if out:
        assert may_notify(change, level)


def test_violation_message_is_one_message_per_alert_whatever_change_gets_there() -> None:
    a = victim(decide(facts(change="opened", confidence="probable")))
    b = victim(decide(facts(change="escalated", confidence="confirmed")))
    assert a[0].key == b[0].key == "violation"


def test_safety_push_starts_ack_timer_and_violation_starts_escalation_timer() -> None:
    out = decide(facts())
    timers = {i.purpose: i for i in out if i.channel == "timer"}
    assert timers["ack_check"].delay_s == 30 and timers["escalation_check"].delay_s == 60


def test_panic_escalates_but_is_not_pushed_back_to_the_victim_until_acknowledged() -> None:
    opened = decide(facts(kind="panic"))
    assert victim(opened) == [] and any(i.purpose == "escalation_check" for i in opened)
    acked = victim(decide(facts(kind="panic", change="acknowledged")))
    assert [i.purpose for i in acked] == ["panic_ack"] and acked[0].safety
    assert victim(decide(facts(kind="proximity", change="acknowledged"))) == []


def test_pursuit_on_violation_and_off_when_it_clears() -> None:
    on = [i for i in decide(facts(kind="zone_inclusion")) if i.recipient == "supplier"]
    assert [i.purpose for i in on] == ["pursuit_on"] and on[0].params["interval_s"] == 15
    off = [i for i in decide(facts(kind="zone_inclusion", change="cleared", level="none", max_level="violation"))
           if i.recipient == "supplier"]
    assert [i.purpose for i in off] == ["pursuit_off"]
    never = decide(facts(kind="proximity", change="cleared", level="none", max_level="warning"))
    assert not [i for i in never if i.recipient == "supplier"]
    assert not [i for i in decide(facts(kind="panic")) if i.recipient == "supplier"]


def test_police_on_escalated_to_police_only() -> None:
    for change in CHANGES:
        police = [i for i in decide(facts(change=change)) if i.recipient == "police"]
        assert bool(police) == (change == "escalated_to_police")


def test_an_ending_order_is_a_notice_not_an_alert_push() -> None:
    # Rule: notices are decided by what they are (plan_notice), never by an alert's level; the order_ended alert
    # and a zone alert cleared by the expiry push nothing themselves (the victim's notice does, once).
    assert victim(decide(facts(kind="zone_exclusion", change="cleared", level="none",
                               detail={"reason": "order_expired"}))) == []
    assert victim(decide(facts(kind="order_ended", change="opened", level="warning"))) == []


T = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)  # 13:00 in Amsterdam
NIGHT = QuietHours.parse({"start": "22:00", "end": "07:00"})


def test_plan_notice_safety_ignores_quiet_hours_channel_and_frequency() -> None:
    # Rule: safety goes at once, whatever she chose.
    late = T.replace(hour=22)  # 23:00 local
    prefs = VictimPreferences(channel="letter", quiet_hours=NIGHT, update_frequency="monthly")
    assert plan_notice("safety", late, DEFAULT_POLICY, prefs, [], late) == NoticePlan(True, late, True)


def test_plan_notice_waits_for_her_quiet_hours_and_the_case_policy_wins() -> None:
    # Rule: non-urgent notices wait until the quiet hours end (hers unless staff set the case's).
    late = T.replace(hour=22)  # 23:00 local
    plan = plan_notice("important", late, DEFAULT_POLICY, VictimPreferences(quiet_hours=NIGHT))
    assert plan.push and not plan.safety and plan.at == datetime(2026, 3, 3, 6, 0, tzinfo=timezone.utc)
    assert plan.why == "waiting_for_quiet_hours_or_frequency"
    case = DEFAULT_POLICY.with_overrides({"quiet_hours": {"start": "23:30", "end": "06:00"}})
    assert plan_notice("important", late, case, VictimPreferences(quiet_hours=NIGHT)).at == late
    assert plan_notice("important", T, DEFAULT_POLICY, VictimPreferences(quiet_hours=NIGHT)).at == T


def test_plan_notice_respects_her_channel_and_the_case_switch() -> None:
    # Rule: only the app channel gets pushes; notify_victim false stops non-safety pushes.
    assert plan_notice("important", T, DEFAULT_POLICY, VictimPreferences(channel="phone")) == NoticePlan(
        False, T, False, "victim_prefers_phone")
    off = DEFAULT_POLICY.with_overrides({"notify_victim": False})
    assert not plan_notice("update", T, off, VictimPreferences()).push


def test_plan_notice_updates_follow_her_frequency() -> None:
    # Rule: an update is pushed at most once per update_frequency period; other notices are not held back.
    weekly = VictimPreferences(update_frequency="weekly")
    last = T - timedelta(days=2)
    assert plan_notice("update", T, DEFAULT_POLICY, weekly, [], last).at == last + timedelta(days=7)
    assert plan_notice("important", T, DEFAULT_POLICY, weekly, [], last).at == T
    assert plan_notice("update", T, DEFAULT_POLICY, VictimPreferences(), [], last).at == T
    with pytest.raises(ValueError):
        plan_notice("chatty", T, DEFAULT_POLICY, weekly)


def test_operator_message_urgent_is_safety_with_ack_timer() -> None:
    plain = decide(facts(change="victim_messaged", detail={"text": "hi"}, seq=12))
    v = victim(plain)
    assert v[0].key == "message:12" and not v[0].safety and v[0].template == "operator.text"
    assert not [i for i in plain if i.channel == "timer"]
    urgent = decide(facts(change="victim_messaged", detail={"template": "call_us", "urgent": True}, seq=13))
    assert victim(urgent)[0].safety and victim(urgent)[0].template == "operator.call_us"
    assert [i.purpose for i in urgent if i.channel == "timer"] == ["ack_check"]


def test_case_overrides() -> None:
    p = DEFAULT_POLICY.with_overrides({"victim_kinds": ["proximity", "zone_inclusion"], "victim_min_confidence":
                                       "confirmed", "auto_escalate": False, "pursuit": False})
    assert victim(decide(facts(kind="zone_inclusion"), p))
    assert not victim(decide(facts(kind="zone_exclusion"), p))
    assert not victim(decide(facts(confidence="probable"), p))
    assert not [i for i in decide(facts(), p) if i.purpose in ("escalation_check", "pursuit_on")]
    off = DEFAULT_POLICY.with_overrides({"notify_victim": False})
    assert not victim(decide(facts(), off))
    assert not victim(decide(facts(has_victim=False)))


@pytest.mark.parametrize("bad", [
    {"nope": 1}, {"victim_min_confidence": "possible"}, {"victim_kinds": "proximity"}, {"auto_escalate_after_s": 1},
    {"quiet_hours": {"start": "25:00", "end": "07:00"}}, {"quiet_hours": {"start": "22:00", "end": "07:00",
                                                                           "timezone": "Mars/Base"}},
    {"max_non_safety_per_hour": 0}, {"notify_victim": "yes"}, {"pursuit_interval_s": 0},
])
def test_bad_overrides_are_refused(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        DEFAULT_POLICY.with_overrides(bad)


def test_policy_round_trips_as_dict() -> None:
    p = DEFAULT_POLICY.with_overrides({"quiet_hours": {"start": "22:00", "end": "07:00"}, "max_non_safety_per_hour": 2})
    assert CasePolicy().with_overrides(p.as_dict()) == p


QUIET = DEFAULT_POLICY.with_overrides({"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Amsterdam"}})


def test_quiet_hours_delay_non_safety_to_the_end_of_the_window() -> None:
    night = datetime(2025, 1, 10, 23, 30, tzinfo=timezone.utc)  # 00:30 in Amsterdam (CET)
    assert release_time(night, QUIET, []) == datetime(2025, 1, 11, 6, 0, tzinfo=timezone.utc)
    day = datetime(2025, 1, 10, 12, 0, tzinfo=timezone.utc)
    assert release_time(day, QUIET, []) == day
    evening = datetime(2025, 7, 10, 20, 30, tzinfo=timezone.utc)  # 22:30 CEST
    assert release_time(evening, QUIET, []) == datetime(2025, 7, 11, 5, 0, tzinfo=timezone.utc)


def test_quiet_hours_never_touch_safety_messages() -> None:
    # Safety intents are never passed through release_time by the outbox; the policy marks them so.
    out = decide(facts(), QUIET)
    assert all(i.delay_s == 0 for i in out if i.recipient == "victim" and i.safety)


def test_frequency_limit_is_a_sliding_hour() -> None:
    p = DEFAULT_POLICY.with_overrides({"max_non_safety_per_hour": 2})
    now = datetime(2025, 1, 10, 12, 0, tzinfo=timezone.utc)
    recent = [now - timedelta(minutes=50), now - timedelta(minutes=10)]
    assert release_time(now, p, recent[:1]) == now
    assert release_time(now, p, recent) == now + timedelta(minutes=10)


def test_quiet_window_same_start_and_end_is_empty() -> None:
    q = QuietHours.parse({"start": "07:00", "end": "07:00"})
    now = datetime(2025, 1, 10, 6, 0, tzinfo=timezone.utc)
    assert q.release(now) == now
