"""The policy for the new warnings (geofence/RULES.md R-TICK-6, R-BLE-1, R-ETA-2): a silence near the victim is
a violation for her and the police timer; a Bluetooth contact is a violation; a fast approach stays with the
operators."""

from notifications.policy import ChangeFacts, decide


def _facts(kind: str, level: str, confidence: str = "confirmed", **detail) -> ChangeFacts:  # type: ignore[no-untyped-def]
    return ChangeFacts(alert_id="a", case_id="c", kind=kind, change="opened", level=level, confidence=confidence,
                       max_level=level, status="open", seq=1, detail={"late": False, **detail})


def _purposes(facts: ChangeFacts) -> set[str]:
    return {i.purpose for i in decide(facts)}


def test_a_silence_near_the_victim_pushes_her_and_starts_the_police_timer():
    for kind in ("offender_silent", "victim_silent"):
        assert {"violation", "ack_check", "escalation_check"} <= _purposes(
            _facts(kind, "violation", near_victim=True, trigger="silence"))
        push = [i for i in decide(_facts(kind, "violation", near_victim=True)) if i.channel == "push"]
        assert push[0].template == f"violation.{kind}" and push[0].safety


def test_a_far_silence_stays_with_the_operators():
    assert _purposes(_facts("offender_silent", "violation", near_victim=False)) == {"alert_change"}


def test_a_bluetooth_contact_is_pushed_as_a_violation():
    assert {"violation", "escalation_check", "pursuit_on"} <= _purposes(
        _facts("proximity", "violation", trigger="ble", rssi=-60))


def test_a_fast_approach_warning_is_for_the_operators_only():
    assert _purposes(_facts("proximity", "warning", "probable", trigger="fast_approach")) == {"alert_change"}
