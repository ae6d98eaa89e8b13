"""Plain data that goes into and comes out of the proximity engine.

Everything here is immutable and free of I/O: adapters (HTTP, database) build these objects, the engine turns
them into decisions. Times are timezone-aware ``datetime`` values in UTC; coordinates are WGS84 degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from enum import Enum, IntEnum

from shapely.geometry.base import BaseGeometry


class Party(str, Enum):
    OFFENDER = "offender"
    VICTIM = "victim"


class Level(IntEnum):
    """Ordered so that ``max`` gives the more serious level."""

    NONE = 0
    WARNING = 1
    VIOLATION = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class Confidence(IntEnum):
    """How sure the engine is that the level is real, given both accuracy radii."""

    POSSIBLE = 1
    PROBABLE = 2
    CONFIRMED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class AlertKind(str, Enum):
    PROXIMITY = "proximity"
    ZONE_EXCLUSION = "zone_exclusion"
    ZONE_INCLUSION = "zone_inclusion"
    OFFENDER_SILENT = "offender_silent"
    VICTIM_SILENT = "victim_silent"


class ChangeKind(str, Enum):
    OPENED = "opened"
    ESCALATED = "escalated"
    DEESCALATED = "deescalated"
    CLEARED = "cleared"


class FixStatus(str, Enum):
    """What the engine's data-quality stage made of one fix."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    OUTLIER = "outlier"  # kept, not evaluated unless later fixes confirm it


@dataclass(frozen=True, slots=True)
class Fix:
    """One position report of one device.

    ``fix_id`` is the fix's position in the log, a decimal integer as text: the engine keeps the ids of its
    history as 64-bit integers (RULES.md, R-HIST-1). ``received_at`` is the server time the fix was accepted; the engine uses it (never a clock) to judge
    fixes from the future, so replaying the same log gives the same decisions.
    """

    fix_id: str
    device_id: str
    case_id: str
    party: Party
    recorded_at: datetime
    received_at: datetime
    lat: float
    lon: float
    accuracy_m: float
    source: str = "gps"
    speed_mps: float | None = None  # speed the device measured itself, when it reports one


@dataclass(frozen=True, slots=True)
class Encounter:
    """The victim's phone heard the case's offender tag over Bluetooth (its rotating identifier matched).

    The third kind of input beside the two parties' fixes, from the same ordered log: ``fix_id`` is its position
    in the log, ``device_id`` the phone that heard it, ``tag_id`` the tag it heard. The identifier was checked at
    the edge; the engine takes a match as proof of proximity (RULES.md, R-BLE-1). ``rssi`` is the received signal
    strength in dBm, kept as evidence.
    """

    fix_id: str
    device_id: str
    case_id: str
    tag_id: str
    recorded_at: datetime
    received_at: datetime
    rssi: int


@dataclass(frozen=True, slots=True)
class Approach:
    """How fast the offender closes in on the victim (RULES.md, R-ETA-1): closing speed and the time to contact
    (distance over closing speed), with the uncertainty of that time from accuracy and fix age."""

    closing_speed_mps: float
    eta_contact_s: float
    eta_uncertainty_s: float


@dataclass(frozen=True, slots=True)
class Validity:
    """The period in which the order behind a rule or zone is in force (``valid_until`` None: open-ended)."""

    order_id: str
    valid_from: datetime
    valid_until: datetime | None = None

    def in_force(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)


@dataclass(frozen=True, slots=True)
class ProximityRule:
    """Contact ban (contactverbod): a moving zone around the victim."""

    rule_id: str
    warn_m: float
    alert_m: float
    validity: Validity


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly window in the schedule's local time. ``days`` are ISO weekdays (1 = Monday) on which the window
    starts; ``end <= start`` means it runs past midnight into the next day."""

    days: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Schedule:
    timezone: str = "Europe/Amsterdam"
    windows: tuple[Window, ...] = ()


@dataclass(frozen=True, slots=True)
class Circle:
    """A geodesic circle: every point within ``radius_m`` metres of ``(lon, lat)``."""

    lon: float
    lat: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class ExclusionZone:
    """Area the offender may not enter (gebiedsverbod / locatieverbod). ``geometry`` is a shapely Polygon or
    MultiPolygon in lon/lat, or a ``Circle``."""

    zone_id: str
    geometry: BaseGeometry | Circle
    buffer_m: float
    validity: Validity
    schedule: Schedule | None = None  # None: always in force


@dataclass(frozen=True, slots=True)
class InclusionZone:
    """Area the offender must stay inside during the schedule's windows (gebiedsgebod)."""

    zone_id: str
    geometry: BaseGeometry | Circle
    schedule: Schedule | None
    validity: Validity


Zone = ExclusionZone | InclusionZone


@dataclass(frozen=True, slots=True)
class CaseConfig:
    """What the engine needs to know of one case."""

    case_id: str
    offender_devices: frozenset[str] = frozenset()
    victim_devices: frozenset[str] = frozenset()
    proximity: ProximityRule | None = None
    zones: tuple[Zone, ...] = ()


@dataclass(frozen=True, slots=True)
class FixVerdict:
    fix_id: str
    status: FixStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One step in the life of an alert episode.

    ``(episode_id, n)`` identifies the change: replaying the same fixes yields the same pairs, so storing them
    with ``ON CONFLICT DO NOTHING`` never raises an alert twice.

    Two axes (RULES.md, R-CONF-2): ``level`` / ``max_level`` / ``confidence`` show the confident axis (probable
    or confirmed readings), and the possible axis only while the episode has no confident level;
    ``level_possible`` / ``max_level_possible`` are the possible axis (every reading, whatever its confidence).
    ``late`` marks a change made from data that arrived after the fact; a late ``escalated`` change raises
    ``max_level`` (and the distance) but never ``level`` (R-LATE-2).
    """

    episode_id: str
    n: int
    case_id: str
    kind: AlertKind
    subject_id: str  # rule id, zone id or device id
    change: ChangeKind
    level: Level
    max_level: Level
    confidence: Confidence
    opened_at: datetime
    fix_at: datetime
    late: bool = False
    min_distance_m: float | None = None
    level_possible: Level = Level.NONE
    max_level_possible: Level = Level.NONE
    reason: str | None = None
    evidence: tuple[str, ...] = field(default=())
    # A silence's ``opened`` change only: the device's last position was near the victim (R-TICK-5).
    near_victim: bool | None = None
    # What moved the episode: "distance", "ble" (an encounter, R-BLE-1), "fast_approach" (R-ETA-2), "silence".
    trigger: str = "distance"
    rssi: int | None = None  # the encounter's signal strength, for trigger "ble"
    approach: Approach | None = None  # proximity: when a closing speed is known (R-ETA-1)

    @property
    def zone_id(self) -> str | None:
        return self.subject_id if self.kind in (AlertKind.ZONE_EXCLUSION, AlertKind.ZONE_INCLUSION) else None
