"""Weekly schedules of zones (e.g. a curfew, avondklok, 22:00-06:00) resolved to UTC intervals.

Windows are wall-clock times in the schedule's time zone, so a 22:00-06:00 window lasts 9 hours on the night
the clocks go back and 7 hours on the night they go forward; zoneinfo does that arithmetic.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from geofence.model import Schedule

_SCAN_DAYS = 8  # a week of window starts plus the day before, enough to find the next state change


class CompiledSchedule:
    """Answers "is a window active at ts, and from when until when does that state last" with a cache, because
    fixes of one device arrive in nearly increasing time."""

    __slots__ = ("schedule", "tz", "_from", "_until", "_active")

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.tz = ZoneInfo(schedule.timezone)
        self._from = math.inf
        self._until = -math.inf
        self._active = False

    def state_at(self, ts: float) -> tuple[bool, float, float]:
        """(active, start, end): the state at ``ts`` holds throughout [start, end)."""
        if not (self._from <= ts < self._until):
            self._active, self._from, self._until = self._resolve(ts)
        return self._active, self._from, self._until

    def _resolve(self, ts: float) -> tuple[bool, float, float]:
        local_day = datetime.fromtimestamp(ts, self.tz).date()
        intervals = _merge(self._occurrences(local_day - timedelta(days=1), _SCAN_DAYS + 1))
        previous_end = ts  # earlier state is unknown from this scan; cache only from ts on
        for start, end in intervals:
            if ts < start:
                return False, previous_end, start
            if ts < end:
                return True, start, end
            previous_end = end
        return False, previous_end, math.inf

    def _occurrences(self, first_day: date, days: int) -> list[tuple[float, float]]:
        found = []
        for offset in range(days):
            day = first_day + timedelta(days=offset)
            for window in self.schedule.windows:
                if day.isoweekday() not in window.days:
                    continue
                start = datetime.combine(day, window.start, tzinfo=self.tz)
                end_day = day if window.end > window.start else day + timedelta(days=1)
                end = datetime.combine(end_day, window.end, tzinfo=self.tz)
                found.append((_utc_ts(start), _utc_ts(end)))
        return sorted(found)


def _utc_ts(local: datetime) -> float:
    return local.astimezone(timezone.utc).timestamp()


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching windows (Mon 22-06 followed by Tue 06-08) form one uninterrupted window."""
    merged: list[tuple[float, float]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
