"""Afstand's pure proximity engine: decides from positions whether a protection order is breached."""

from geofence.engine import Engine
from geofence.model import (
    AlertChange, AlertKind, CaseConfig, ChangeKind, Circle, Confidence, ExclusionZone, Fix, FixStatus,
    FixVerdict, InclusionZone, Level, Party, ProximityRule, Schedule, Validity, Window, Zone,
)
from geofence.settings import EngineSettings

__all__ = [
    "AlertChange", "AlertKind", "CaseConfig", "ChangeKind", "Circle", "Confidence", "Engine", "EngineSettings",
    "ExclusionZone", "Fix", "FixStatus", "FixVerdict", "InclusionZone", "Level", "Party", "ProximityRule",
    "Schedule", "Validity", "Window", "Zone",
]
