"""Warnings that survive GPS loss and come earlier: Bluetooth contact (R-BLE), going dark near the victim
(R-TICK-6) and the time to contact (R-ETA), on hand-built tracks."""

from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from geofence import AlertKind, ChangeKind, Confidence, Encounter, Engine, Level

from tests.geofence.builders import T0, UTRECHT, at, fix, offset, proximity_case

_ids = count(10_000_000)


def encounter(t: float, rssi: int = -70, received: float | None = None) -> Encounter:
    return Encounter(str(next(_ids)), "phone-1", "case-1", "tag-1", at(t), at(t if received is None else received),
                     rssi)


def _engine() -> Engine:
    engine = Engine()
    engine.configure(proximity_case(warn_m=1000, alert_m=500), T0)
    return engine


def test_r_ble_1_an_encounter_while_gps_says_2_km_is_a_violation_at_once():
    """R-BLE-1: GPS says 2 km; the phone hears the tag: a confirmed proximity violation at the encounter's time,
    trigger ble, with the signal strength."""
    engine = _engine()
    assert engine.process([fix("phone-1", 0, UTRECHT), fix("tag-1", 0, offset(UTRECHT, 2000))])[1] == []
    verdicts, changes = engine.process([encounter(5, rssi=-61)])
    assert verdicts[0].status.value == "accepted"
    assert [(c.kind, c.change, c.level, c.confidence, c.trigger, c.rssi, c.fix_at) for c in changes] == [
        (AlertKind.PROXIMITY, ChangeKind.OPENED, Level.VIOLATION, Confidence.CONFIRMED, "ble", -61, at(5))]


def test_r_ble_1_an_encounter_raises_an_open_warning():
    """R-BLE-1: a warning open from GPS (800 m) is escalated to a confirmed violation by an encounter."""
    engine = _engine()
    engine.process([fix("phone-1", 0, UTRECHT), fix("tag-1", 0, offset(UTRECHT, 800))])
    _, changes = engine.process([encounter(10)])
    assert [(c.change, c.level, c.confidence, c.trigger) for c in changes] == [
        (ChangeKind.ESCALATED, Level.VIOLATION, Confidence.CONFIRMED, "ble")]


def test_r_ble_2_encounters_for_3_minutes_are_one_episode_cleared_after_the_hold():
    """R-BLE-2: encounters every 10 s for 3 minutes while GPS says 2 km, then none: one episode, which GPS may
    clear only once the Bluetooth trigger lapsed 60 s after the last encounter and the distance hold is done."""
    engine = _engine()
    far = offset(UTRECHT, 2000)
    changes = []
    for t in range(0, 400, 5):
        batch = [fix("phone-1", t, UTRECHT), fix("tag-1", t, far)] if t % 15 == 0 else []
        if t <= 180 and t % 10 == 0:
            batch.append(encounter(t))
        changes += engine.process(batch)[1]
    proximity = [c for c in changes if c.kind is AlertKind.PROXIMITY]
    assert len({c.episode_id for c in proximity}) == 1
    assert [c.change for c in proximity] == [ChangeKind.OPENED, ChangeKind.CLEARED]
    cleared = proximity[-1]
    assert cleared.reason == "departed"
    assert 240 <= (cleared.fix_at - T0).total_seconds() <= 255  # lapse at 180 + 60, then the hold's next fix


def test_r_ble_2_no_gps_keeps_the_episode_open():
    """R-BLE-2: a phone that stops reporting says nothing about distance: without fixes the violation stays."""
    engine = _engine()
    engine.process([encounter(0), encounter(10)])
    assert [(c.level, c.trigger) for c in engine.open_episodes()] == [(Level.VIOLATION, "ble")]


def test_r_ble_1_an_encounter_from_another_cases_phone_or_for_an_unknown_tag_is_refused():
    """R-BLE-1: only the case's own phone and tag; the API checked the identifier, the engine the parties."""
    engine = _engine()
    stranger = Encounter("77", "phone-9", "case-1", "tag-1", at(0), at(0), -60)
    wrong_tag = Encounter("78", "phone-1", "case-1", "tag-9", at(0), at(0), -60)
    verdicts, changes = engine.process([stranger, wrong_tag])
    assert [v.reason for v in verdicts] == ["unknown_device", "unknown_tag"] and changes == []


def _silent_after(tag_at, phone_at):  # type: ignore[no-untyped-def]
    engine = _engine()
    engine.process([fix("tag-1", 10_000, tag_at), fix("phone-1", 10_000, phone_at),
                    fix("phone-1", 10_500, phone_at)])
    early = engine.tick(at(10_100))
    late = engine.tick(at(10_400))
    return early, late


def test_r_tick_6_a_tag_silent_400_m_from_her_gets_the_short_timeout():
    """R-TICK-6: silent 400 m from her: an offender_silent violation after 90 s, near_victim."""
    early, _ = _silent_after(offset(UTRECHT, 400), UTRECHT)
    assert [(c.kind, c.level, c.opened_at, c.near_victim, c.trigger) for c in early] == [
        (AlertKind.OFFENDER_SILENT, Level.VIOLATION, at(10_090), True, "silence")]


def test_r_tick_6_a_tag_silent_8_km_away_waits_the_usual_5_minutes():
    """R-TICK-6: silent 8 km from her: nothing after 90 s, the ordinary silence at 300 s, not near."""
    early, late = _silent_after(offset(UTRECHT, 8000), UTRECHT)
    assert early == []
    assert [(c.kind, c.opened_at, c.near_victim) for c in late] == [(AlertKind.OFFENDER_SILENT, at(10_300), False)]


def test_r_tick_6_her_last_fix_up_to_15_minutes_old_counts():
    """R-TICK-6: her newest fix is 10 minutes older than his last one, 300 m away: still near."""
    engine = _engine()
    engine.process([fix("phone-1", 9_400, UTRECHT), fix("tag-1", 10_000, offset(UTRECHT, 300))])
    opened = [c for c in engine.tick(at(10_100)) if c.kind is AlertKind.OFFENDER_SILENT]
    assert [(c.opened_at, c.near_victim) for c in opened] == [(at(10_090), True)]


def test_r_tick_6_her_phone_silent_while_he_is_near_is_a_violation():
    """R-TICK-6: her phone silent while he is 600 m from her: victim_silent at violation after 90 s."""
    engine = _engine()
    engine.process([fix("tag-1", 10_000, offset(UTRECHT, 600)), fix("phone-1", 10_000, UTRECHT)])
    for t in range(10_015, 10_120, 15):
        engine.process([fix("tag-1", t, offset(UTRECHT, 600))])
    opened = [c for c in engine.tick(at(10_100)) if c.kind is AlertKind.VICTIM_SILENT]
    assert [(c.level, c.opened_at, c.near_victim) for c in opened] == [(Level.VIOLATION, at(10_090), True)]


def _approach(speed_mps: float, start_m: float = 4000, step_s: float = 15, until_m: float = 1000):  # type: ignore[no-untyped-def]
    """He comes straight at her (standing still) from start_m at speed_mps; the changes, with his distance."""
    engine = _engine()
    found = []
    t, d = 0.0, start_m
    while d > until_m and t < 4 * 3600:
        _, changes = engine.process([fix("phone-1", t, UTRECHT), fix("tag-1", t, offset(UTRECHT, d))])
        found += [(c, d) for c in changes]
        t += step_s
        d -= speed_mps * step_s
    return found


def test_r_eta_2_a_car_closing_at_14_m_s_from_4_km_is_a_fast_approach_before_1000_m():
    """R-ETA-2: a car at 14 m/s from 4 km: a fast-approach warning (operators) before the 1,000 m band, within
    3,000 m, with the closing speed and the time to contact."""
    found = _approach(14.0)
    assert found, "no warning before the band"
    change, distance = found[0]
    assert (change.kind, change.change, change.level, change.trigger) == (
        AlertKind.PROXIMITY, ChangeKind.OPENED, Level.WARNING, "fast_approach")
    assert 1000 < distance <= 3000
    assert abs(change.approach.closing_speed_mps - 14.0) < 1.0
    assert abs(change.approach.eta_contact_s - distance / 14.0) < 15
    assert change.approach.eta_uncertainty_s >= 0


def test_r_eta_2_a_walker_at_1_4_m_s_from_the_same_place_is_no_fast_approach():
    """R-ETA-2: a walker at 1.4 m/s: 1,500 m to the violation distance is 18 minutes away: no warning before the
    band."""
    assert _approach(1.4) == []


def test_r_eta_1_proximity_changes_in_the_band_carry_the_time_to_contact():
    """R-ETA-1: the car entering the band: the warning and violation changes carry the closing speed."""
    found = _approach(14.0, until_m=300)
    in_band = [c for c, d in found if c.trigger == "distance"]
    assert in_band and all(c.approach is not None and c.approach.closing_speed_mps > 10 for c in in_band)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 360), st.floats(3, 60)), min_size=12, max_size=40),
       st.floats(1200, 2900))
def test_r_eta_1_a_jittering_stationary_offender_never_makes_a_fast_approach(noise, distance_m):
    """R-ETA-1 / R-ETA-2: he stands still between 1,200 and 2,900 m from her; each fix lands anywhere within its
    stated accuracy (hypothesis picks fraction, bearing and radius). No closing speed is ever provable, so no
    fast approach opens and no change is made."""
    from tests.geofence.builders import GEOD
    engine = _engine()
    here = offset(UTRECHT, distance_m)
    for k, (fraction, bearing, acc) in enumerate(noise):
        t = 15.0 * k
        # A centimetre inside the radius: positions are kept to about a centimetre (R-HIST-1).
        lon, lat, _ = GEOD.fwd(here[0], here[1], bearing, max(fraction * acc - 0.02, 0.0))
        _, changes = engine.process([fix("phone-1", t, UTRECHT, acc=5.0), fix("tag-1", t, (lon, lat), acc=acc)])
        assert changes == []
