"""Afstand's pure proximity engine: decides from positions whether a protection order is breached."""

from geofence.engine import Engine
from geofence.model import (
    AlertChange, AlertKind, Approach, CaseConfig, ChangeKind, Circle, Confidence, Encounter, ExclusionZone, Fix,
    FixStatus,
    FixVerdict, InclusionZone, Level, Party, ProximityRule, Schedule, Validity, Window, Zone,
)
from geofence.settings import EngineSettings

__all__ = [
    "AlertChange", "AlertKind", "Approach", "CaseConfig", "ChangeKind", "Circle", "Confidence", "Encounter",
    "Engine", "EngineSettings",
    "ExclusionZone", "Fix", "FixStatus", "FixVerdict", "InclusionZone", "Level", "Party", "ProximityRule",
    "Schedule", "Validity", "Window", "Zone",
]
