"""Time for the notification layer, injectable so tests can run a two-minute outage without waiting for it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with ``Z``, as the API writes every time."""
    return value.isoformat().replace("+00:00", "Z") if value else None
