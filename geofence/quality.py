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


_DEG = 1e7  # positions are kept as int32 tenths of a microdegree: about 1 cm, half the bytes of a double


class DeviceTrack:
    """Recent fixes of one device (enkelband or slachtofferdevice), sorted by recorded time.

    Kept compact (R-HIST-1): per fix a double for the time, two int32 for the position, float32 for the
    accuracy and the speed, a byte for "good" and an int64 for the fix id: 33 bytes, where Python objects would
    take ~100.
    """

    __slots__ = (
        "device_id", "case_id", "party", "ts", "lat", "lon", "acc", "speed", "good", "ids",
        "newest_ts", "newest_evaluated_ts", "pending", "silent", "timer",
    )

    def __init__(self, device_id: str, case_id: str, party: Party) -> None:
        self.device_id = device_id
        self.case_id = case_id
        self.party = party
        self.ts = array("d")
        self.lat = array("i")
        self.lon = array("i")
        self.acc = array("f")
        self.speed = array("f")  # measured speed at each fix (R-PAIR-2)
        self.good = array("b")  # 0: outlier not (yet) confirmed
        self.ids = array("q")
        self.newest_ts = -math.inf  # newest recorded time of any kept fix, for silence
        self.newest_evaluated_ts = -math.inf  # fixes older than this are late
        self.pending: list[float] = []  # unconfirmed outlier chain, as recorded times
        self.silent = False  # an offender_silent/victim_silent episode is open
        self.timer = False  # a silence check for this device is in the engine's timer queue

    def is_duplicate(self, ts: float) -> bool:
        i = bisect_left(self.ts, ts)
        return i < len(self.ts) and self.ts[i] == ts

    def insert(self, ts: float, lat: float, lon: float, acc: float, speed: float, fix_id: int, good: bool) -> int:
        """Store a fix; returns its index. Appending is the common case; late fixes are inserted in place."""
        times = self.ts
        ilat, ilon = round(lat * _DEG), round(lon * _DEG)
        if not times or ts > times[-1]:
            times.append(ts)
            self.lat.append(ilat)
            self.lon.append(ilon)
            self.acc.append(acc)
            self.speed.append(speed)
            self.good.append(1 if good else 0)
            self.ids.append(fix_id)
            if ts > self.newest_ts:
                self.newest_ts = ts
            return len(times) - 1
        i = bisect_right(times, ts)
        times.insert(i, ts)
        self.lat.insert(i, ilat)
        self.lon.insert(i, ilon)
        self.acc.insert(i, acc)
        self.speed.insert(i, speed)
        self.good.insert(i, 1 if good else 0)
        self.ids.insert(i, fix_id)
        return i

    def position(self, i: int) -> tuple[float, float]:
        """(lon, lat) of fix i."""
        return self.lon[i] / _DEG, self.lat[i] / _DEG

    def fix_id(self, i: int) -> str:
        return str(self.ids[i])

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
        dist = _geod_inv(self.lon[i] / _DEG, self.lat[i] / _DEG, lon, lat)[2]
        return max(0.0, dist - acc - self.acc[i]) / dt

    def speed_between(self, i: int, j: int) -> float:
        lon, lat = self.position(j)
        return self.implied_speed(i, self.ts[j], lat, lon, self.acc[j])

    def outlier_run(self, i: int, max_speed_mps: float) -> tuple[list[int], bool]:
        """The held fixes next to fix i in time that agree with it and each other (speed), and whether the
        good fix right after them agrees too: what a late outlier's confirmation is judged on (R-QUAL-3)."""
        good = self.good
        start = end = i
        while start > 0 and not good[start - 1] and self.speed_between(start - 1, start) <= max_speed_mps:
            start -= 1
        limit = len(self.ts) - 1
        if self.pending:  # the live jump being judged is not part of a late chain
            limit = min(limit, bisect_left(self.ts, self.pending[0]) - 1)
        while end < limit and not good[end + 1] and self.speed_between(end, end + 1) <= max_speed_mps:
            end += 1
        followed = end < limit and bool(good[end + 1]) and self.speed_between(end, end + 1) <= max_speed_mps
        return list(range(start, end + 1)), followed

    def prune(self, horizon_s: float) -> None:
        cutoff = self.newest_ts - horizon_s
        times = self.ts
        if len(times) < _PRUNE_BATCH or times[_PRUNE_BATCH - 1] >= cutoff:
            return
        n = bisect_left(times, cutoff)
        # Keep the newest good fix before the cutoff: it is the reference for the speed check.
        while n > 0 and not any(self.good[n:]):
            n -= 1
        for column in (times, self.lat, self.lon, self.acc, self.speed, self.good, self.ids):
            del column[:n]
