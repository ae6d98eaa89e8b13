"""A case's configuration compiled for evaluation: ladders of thresholds, projected shapes, validity as
timestamps. Rebuilt from ``CaseConfig`` whenever a case is configured or the engine is restored."""

from __future__ import annotations

import math

from geofence.episode import Ladder
from geofence.geometry import CircleShape, PolygonShape, compile_shape
from geofence.model import AlertKind, CaseConfig, ExclusionZone, Level, ProximityRule, Validity, Zone
from geofence.schedule import CompiledSchedule
from geofence.settings import EngineSettings

SubjectKey = tuple[AlertKind, str]


def _validity_ts(validity: Validity) -> tuple[float, float]:
    until = math.inf if validity.valid_until is None else validity.valid_until.timestamp()
    return validity.valid_from.timestamp(), until


def _two_step_ladder(violation_m: float, warning_m: float, settings: EngineSettings) -> Ladder:
    steps = [(Level.VIOLATION, violation_m, settings.margin(violation_m))]
    if warning_m > violation_m:
        steps.append((Level.WARNING, warning_m, settings.margin(warning_m)))
    return Ladder(tuple(steps))


class CompiledProximity:
    """Contact ban (contactverbod): x = geodesic distance between offender and victim."""

    __slots__ = ("key", "ladder", "valid_from", "valid_until", "approach_reach_m")

    def __init__(self, rule: ProximityRule, settings: EngineSettings) -> None:
        self.key: SubjectKey = (AlertKind.PROXIMITY, rule.rule_id)
        self.ladder = _two_step_ladder(rule.alert_m, rule.warn_m, settings)
        # Out to here the offender's approach is measured, and a fast one warned of (R-ETA-1, R-ETA-2).
        self.approach_reach_m = settings.fast_approach_reach * rule.warn_m
        self.valid_from, self.valid_until = _validity_ts(rule.validity)


class CompiledZone:
    """Gebiedsverbod (x = signed distance) or gebiedsgebod (x = minus the signed distance)."""

    __slots__ = ("key", "zone_id", "inclusion", "shape", "ladder", "reach_m", "valid_from", "valid_until",
                 "schedule")

    def __init__(self, zone: Zone, settings: EngineSettings) -> None:
        self.zone_id = zone.zone_id
        self.inclusion = not isinstance(zone, ExclusionZone)
        kind = AlertKind.ZONE_INCLUSION if self.inclusion else AlertKind.ZONE_EXCLUSION
        self.key: SubjectKey = (kind, zone.zone_id)
        self.shape: CircleShape | PolygonShape = compile_shape(zone.geometry)
        if self.inclusion:
            self.ladder = Ladder(((Level.VIOLATION, 0.0, 0.0),), calm_counts_uncertainty=False)
            self.reach_m = math.inf  # outside is the breach: always measured exactly
        else:
            self.ladder = _two_step_ladder(0.0, zone.buffer_m, settings)
            self.reach_m = max(threshold + margin for _, threshold, margin in self.ladder.steps)
        self.valid_from, self.valid_until = _validity_ts(zone.validity)
        self.schedule = CompiledSchedule(zone.schedule) if zone.schedule is not None else None


class CompiledCase:
    __slots__ = ("proximity", "zones", "inclusion_zones", "exclusion_bounds", "exclusion_reach_m", "_by_zone_id")

    def __init__(self, config: CaseConfig, settings: EngineSettings) -> None:
        self.proximity = CompiledProximity(config.proximity, settings) if config.proximity else None
        self.zones = [CompiledZone(zone, settings) for zone in config.zones]
        self.inclusion_zones = [zone for zone in self.zones if zone.inclusion]
        self._by_zone_id = {zone.zone_id: zone for zone in self.zones}
        exclusions = [zone for zone in self.zones if not zone.inclusion]
        if exclusions:
            boxes = [zone.shape.lonlat_bounds for zone in exclusions]
            self.exclusion_bounds = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                     max(b[2] for b in boxes), max(b[3] for b in boxes))
            self.exclusion_reach_m = max(zone.reach_m for zone in exclusions)
        else:
            self.exclusion_bounds = None
            self.exclusion_reach_m = 0.0

    def zone(self, zone_id: str) -> CompiledZone | None:
        return self._by_zone_id.get(zone_id)

    def first_expiry(self) -> float:
        return min((rule.valid_until for rule in self.rules()), default=math.inf)

    def rules(self) -> list[CompiledProximity | CompiledZone]:
        return ([self.proximity] if self.proximity else []) + self.zones

    def keys(self) -> set[SubjectKey]:
        return {rule.key for rule in self.rules()}
