"""The engine's state as plain data (dicts, lists, strings, numbers, booleans, None) and back.

A snapshot lets a restarted engine resume without raising any episode twice (RULES.md, R-EPI-1). It is plain
data rather than pickled objects so that stored state is not tied to the class layout and reading it can never
run code; the adapter that stores it chooses the encoding (api/monitoring/snapshot.py: compressed JSON).
Floats may be ``inf``, ``-inf`` or ``nan`` (unbounded validity, no fix yet, a speed not measured).

Layout, ``FORMAT_VERSION`` 3 (1 and 2 were pickles and are refused; the engine then rebuilds from the log):

    {"format_version": 3,
     "tracks": [track, ...],               every device track once; referred to by its index below
     "engine_tracks": {device_id: index},
     "cases": [case, ...]}
    track = {"device_id", "case_id", "party", "ts", "lat", "lon", "acc", "speed", "good", "ids",
             "newest_ts", "newest_evaluated_ts", "pending", "silent"}   the arrays as lists
    case = {"config": config, "subjects": [[key, subject], ...], "open": [key, ...],
            "tracks": {party: [index, ...]}, "window_checked": {zone_id: ts}, "next_expiry": ts}
    key = [alert kind, subject id]
    subject = {"live": episode | None, "late": episode | None, "closed": [episode, ...]}
    episode = the AlertEpisode's slots; levels and confidences as integers, ``last_change`` an alert change;
              ``hold_until`` (and a change's ``trigger``, ``rssi``, ``approach``) may be absent: older snapshots
    config = {"case_id", "offender_devices", "victim_devices", "proximity": rule | None, "zones": [zone, ...]}
    zone = {"type": "exclusion" | "inclusion", "zone_id", "geometry": GeoJSON | {"circle": [lon, lat, r]},
            "buffer_m" (exclusion), "validity", "schedule"}

Derived state (compiled rules, the timer queue, window boundaries) is not stored: restore rebuilds it.
Times in configuration and alert changes are ISO 8601 strings; times of fixes are epoch seconds, as the engine
keeps them. Dict and list order is kept, since the engine's output order follows it.
"""

from __future__ import annotations

import math
from array import array
from datetime import datetime, time
from typing import Any

from shapely.geometry import mapping, shape

from geofence.episode import AlertEpisode, CalmRun, SubjectEpisodes
from geofence.model import (
    AlertChange, AlertKind, Approach, CaseConfig, ChangeKind, Circle, Confidence, ExclusionZone, InclusionZone, Level,
    Party, ProximityRule, Schedule, Validity, Window, Zone,
)
from geofence.quality import DeviceTrack

FORMAT_VERSION = 3

Plain = dict[str, Any]
_ARRAYS = {"ts": "d", "lat": "i", "lon": "i", "acc": "f", "speed": "f", "good": "b", "ids": "q"}
_TRACK_VALUES = ("device_id", "case_id", "newest_ts", "newest_evaluated_ts", "silent")
_EPISODE_VALUES = ("episode_id", "case_id", "subject_id", "late", "opened_ts", "cleared_ts", "min_distance_m",
                   "n", "source_device", "window_end_ts", "last_ts")
_EPISODE_LEVELS = ("level", "level_c", "max_level", "max_level_c")


class SnapshotRefused(ValueError):
    """The data is not a snapshot this engine can read; rebuild from the log instead."""


# ------------------------------------------------------------------------------------------------ configuration

def _validity(v: Validity) -> Plain:
    return {"order_id": v.order_id, "valid_from": v.valid_from.isoformat(),
            "valid_until": None if v.valid_until is None else v.valid_until.isoformat()}


def _validity_from(d: Plain) -> Validity:
    until = d["valid_until"]
    return Validity(d["order_id"], datetime.fromisoformat(d["valid_from"]),
                    None if until is None else datetime.fromisoformat(until))


def _schedule(s: Schedule | None) -> Plain | None:
    if s is None:
        return None
    return {"timezone": s.timezone,
            "windows": [{"days": sorted(w.days), "start": w.start.isoformat(), "end": w.end.isoformat()}
                        for w in s.windows]}


def _schedule_from(d: Plain | None) -> Schedule | None:
    if d is None:
        return None
    return Schedule(d["timezone"], tuple(Window(frozenset(w["days"]), time.fromisoformat(w["start"]),
                                                time.fromisoformat(w["end"])) for w in d["windows"]))


def _zone(z: Zone) -> Plain:
    g = z.geometry
    out: Plain = {"zone_id": z.zone_id, "validity": _validity(z.validity), "schedule": _schedule(z.schedule),
                  "geometry": {"circle": [g.lon, g.lat, g.radius_m]} if isinstance(g, Circle) else mapping(g)}
    if isinstance(z, ExclusionZone):
        out.update(type="exclusion", buffer_m=z.buffer_m)
    else:
        out["type"] = "inclusion"
    return out


def _zone_from(d: Plain) -> Zone:
    g = d["geometry"]
    geometry = Circle(*g["circle"]) if "circle" in g else shape(g)
    if d["type"] == "exclusion":
        return ExclusionZone(d["zone_id"], geometry, d["buffer_m"], _validity_from(d["validity"]),
                             _schedule_from(d["schedule"]))
    return InclusionZone(d["zone_id"], geometry, _schedule_from(d["schedule"]), _validity_from(d["validity"]))


def config_to_plain(c: CaseConfig) -> Plain:
    p = c.proximity
    return {
        "case_id": c.case_id,
        "offender_devices": sorted(c.offender_devices),
        "victim_devices": sorted(c.victim_devices),
        "proximity": None if p is None else {"rule_id": p.rule_id, "warn_m": p.warn_m, "alert_m": p.alert_m,
                                             "validity": _validity(p.validity)},
        "zones": [_zone(z) for z in c.zones],
    }


def config_from_plain(d: Plain) -> CaseConfig:
    p = d["proximity"]
    return CaseConfig(
        case_id=d["case_id"],
        offender_devices=frozenset(d["offender_devices"]),
        victim_devices=frozenset(d["victim_devices"]),
        proximity=None if p is None else ProximityRule(p["rule_id"], p["warn_m"], p["alert_m"],
                                                       _validity_from(p["validity"])),
        zones=tuple(_zone_from(z) for z in d["zones"]),
    )


# ------------------------------------------------------------------------------------------------ tracks

def track_to_plain(t: DeviceTrack) -> Plain:
    out: Plain = {name: getattr(t, name) for name in _TRACK_VALUES}
    out.update({name: getattr(t, name).tolist() for name in _ARRAYS})
    out.update(party=t.party.value, pending=list(t.pending))
    return out


def track_from_plain(d: Plain) -> DeviceTrack:
    t = DeviceTrack(d["device_id"], d["case_id"], Party(d["party"]))
    for name in _TRACK_VALUES:
        setattr(t, name, d[name])
    for name, code in _ARRAYS.items():
        setattr(t, name, array(code, d[name]))
    t.pending = list(d["pending"])
    return t


# ------------------------------------------------------------------------------------------------ episodes

def _change(c: AlertChange) -> Plain:
    return {"episode_id": c.episode_id, "n": c.n, "case_id": c.case_id, "kind": c.kind.value,
            "subject_id": c.subject_id, "change": c.change.value, "level": int(c.level),
            "max_level": int(c.max_level), "confidence": int(c.confidence), "opened_at": c.opened_at.isoformat(),
            "fix_at": c.fix_at.isoformat(), "late": c.late, "min_distance_m": c.min_distance_m,
            "level_possible": int(c.level_possible), "max_level_possible": int(c.max_level_possible),
            "reason": c.reason, "evidence": list(c.evidence), "trigger": c.trigger, "rssi": c.rssi,
            "approach": None if c.approach is None else [c.approach.closing_speed_mps, c.approach.eta_contact_s,
                                                         c.approach.eta_uncertainty_s]}


def _change_from(d: Plain) -> AlertChange:
    return AlertChange(
        episode_id=d["episode_id"], n=d["n"], case_id=d["case_id"], kind=AlertKind(d["kind"]),
        subject_id=d["subject_id"], change=ChangeKind(d["change"]), level=Level(d["level"]),
        max_level=Level(d["max_level"]), confidence=Confidence(d["confidence"]),
        opened_at=datetime.fromisoformat(d["opened_at"]), fix_at=datetime.fromisoformat(d["fix_at"]),
        late=d["late"], min_distance_m=d["min_distance_m"], level_possible=Level(d["level_possible"]),
        max_level_possible=Level(d["max_level_possible"]), reason=d["reason"], evidence=tuple(d["evidence"]),
        trigger=d.get("trigger", "distance"), rssi=d.get("rssi"),
        approach=None if d.get("approach") is None else Approach(*d["approach"]),
    )


def _episode(e: AlertEpisode | None) -> Plain | None:
    if e is None:
        return None
    out: Plain = {name: getattr(e, name) for name in _EPISODE_VALUES}
    out.update({name: int(getattr(e, name)) for name in _EPISODE_LEVELS})
    out.update(
        kind=e.kind.value, confidence=int(e.confidence), evidence=list(e.evidence),
        runs=[{"calm": [[ts, int(level), int(conf)] for ts, level, conf in run.calm],
               "restless_ts": run.restless_ts} for run in e.runs],
        last_change=None if e.last_change is None else _change(e.last_change),
        states=[[ts, int(level), int(level_c), int(conf)] for ts, level, level_c, conf in e.states],
        late_seen=[int(v) for v in e.late_seen], hold_until=e.hold_until,
    )
    return out


def _episode_from(d: Plain | None) -> AlertEpisode | None:
    if d is None:
        return None
    e = AlertEpisode.__new__(AlertEpisode)  # every slot is set below; __init__ would open a new episode
    for name in _EPISODE_VALUES:
        setattr(e, name, d[name])
    for name in _EPISODE_LEVELS:
        setattr(e, name, Level(d[name]))
    e.kind = AlertKind(d["kind"])
    e.confidence = Confidence(d["confidence"])
    e.evidence = list(d["evidence"])
    e.runs = []
    for r in d["runs"]:
        run = CalmRun()
        run.calm = [(ts, Level(level), Confidence(conf)) for ts, level, conf in r["calm"]]
        run.restless_ts = r["restless_ts"]
        e.runs.append(run)
    e.last_change = None if d["last_change"] is None else _change_from(d["last_change"])
    e.states = [(ts, Level(level), Level(level_c), Confidence(conf)) for ts, level, level_c, conf in d["states"]]
    seen_level, seen_c, seen_confidence = d["late_seen"]
    e.late_seen = (Level(seen_level), Level(seen_c), Confidence(seen_confidence))
    e.hold_until = d.get("hold_until", -math.inf)  # absent from snapshots taken before encounters existed
    return e


def subject_to_plain(s: SubjectEpisodes) -> Plain:
    return {"case_id": s.case_id, "kind": s.kind.value, "subject_id": s.subject_id, "live": _episode(s.live),
            "late": _episode(s.late), "closed": [_episode(e) for e in s.closed]}


def subject_from_plain(d: Plain) -> SubjectEpisodes:
    s = SubjectEpisodes(d["case_id"], AlertKind(d["kind"]), d["subject_id"])
    s.live = _episode_from(d["live"])
    s.late = _episode_from(d["late"])
    s.closed = [e for e in map(_episode_from, d["closed"]) if e is not None]
    return s
