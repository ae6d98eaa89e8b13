"""Data quality before any rule (as Traccar does): invalid, future, duplicate and impossible fixes.

A device's recent fixes are kept in compact arrays, sorted by recorded time, for duplicate detection, for the
speed check against the previous good fix, and for pairing with the other party at a given time.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right

from geofence.geometry import GEOD
from geofence.model import Fix, Party
from geofence.settings import EngineSettings

_geod_inv = GEOD.inv
_PRUNE_BATCH = 64  # drop expired history in chunks, so pruning costs nothing per fix


def invalid_reason(fix: Fix, recorded_ts: float, settings: EngineSettings) -> str | None:
    """Why a fix cannot be used at all, or None. The common, valid case costs a handful of comparisons:
    NaN fails every comparison, so the range tests also catch non-finite numbers."""
    lat, lon, acc = fix.lat, fix.lon, fix.accuracy_m
    try:
        plausible = -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and 0.0 < acc < math.inf
    except TypeError:
        return "non_numeric"
    if not plausible:
        if not (math.isfinite(lat) and math.isfinite(lon) and math.isfinite(acc)):
            return "non_finite"
        return "invalid_accuracy" if acc <= 0.0 else "coordinates_out_of_range"
    if recorded_ts - fix.received_at.timestamp() > settings.future_tolerance_s:
        return "future"
    return None


class DeviceTrack:
    """Recent fixes of one device (enkelband or slachtofferdevice), sorted by recorded time."""

    __slots__ = (
        "device_id", "case_id", "party", "ts", "lat", "lon", "acc", "good", "fix_ids",
        "newest_ts", "newest_evaluated_ts", "pending", "silent",
    )

    def __init__(self, device_id: str, case_id: str, party: Party) -> None:
        self.device_id = device_id
        self.case_id = case_id
        self.party = party
        self.ts = array("d")
        self.lat = array("d")
        self.lon = array("d")
        self.acc = array("d")
        self.good = array("b")  # 0: outlier not (yet) confirmed
        self.fix_ids: list[str] = []
        self.newest_ts = -math.inf  # newest recorded time of any kept fix, for silence
        self.newest_evaluated_ts = -math.inf  # fixes older than this are late
        self.pending: list[int] = []  # unconfirmed outlier chain, as recorded times
        self.silent = False  # an offender_silent/victim_silent episode is open

    def is_duplicate(self, ts: float) -> bool:
        i = bisect_left(self.ts, ts)
        return i < len(self.ts) and self.ts[i] == ts

    def insert(self, ts: float, lat: float, lon: float, acc: float, fix_id: str, good: bool) -> int:
        """Store a fix; returns its index. Appending is the common case; late fixes are inserted in place."""
        times = self.ts
        if not times or ts > times[-1]:
            times.append(ts)
            self.lat.append(lat)
            self.lon.append(lon)
            self.acc.append(acc)
            self.good.append(1 if good else 0)
            self.fix_ids.append(fix_id)
            if ts > self.newest_ts:
                self.newest_ts = ts
            return len(times) - 1
        i = bisect_right(times, ts)
        times.insert(i, ts)
        self.lat.insert(i, lat)
        self.lon.insert(i, lon)
        self.acc.insert(i, acc)
        self.good.insert(i, 1 if good else 0)
        self.fix_ids.insert(i, fix_id)
        return i

    def previous_good(self, ts: float) -> int:
        """Index of the newest good fix recorded before ``ts``, or -1."""
        i = bisect_left(self.ts, ts) - 1
        good = self.good
        while i >= 0 and not good[i]:
            i -= 1
        return i

    def good_at_or_before(self, ts: float, oldest: float) -> int:
        """Index of the newest good fix recorded in [oldest, ts], or -1 (pairing: recorded times only)."""
        times = self.ts
        i = bisect_right(times, ts) - 1
        good = self.good
        while i >= 0 and times[i] >= oldest:
            if good[i]:
                return i
            i -= 1
        return -1

    def newest_good(self) -> int:
        return self.previous_good(math.inf)

    def index_of(self, ts: float) -> int:
        return bisect_left(self.ts, ts)

    def implied_speed(self, i: int, ts: float, lat: float, lon: float, acc: float) -> float:
        """Speed from fix i to the given fix, after giving both accuracy radii the benefit of the doubt."""
        dt = abs(ts - self.ts[i])
        if dt == 0.0:
            return math.inf
        dist = _geod_inv(self.lon[i], self.lat[i], lon, lat)[2]
        return max(0.0, dist - acc - self.acc[i]) / dt

    def prune(self, horizon_s: float) -> None:
        cutoff = self.newest_ts - horizon_s
        times = self.ts
        if len(times) < _PRUNE_BATCH or times[_PRUNE_BATCH - 1] >= cutoff:
            return
        n = bisect_left(times, cutoff)
        # Keep the newest good fix before the cutoff: it is the reference for the speed check.
        while n > 0 and not any(self.good[n:]):
            n -= 1
        for column in (times, self.lat, self.lon, self.acc, self.good):
            del column[:n]
        del self.fix_ids[:n]
