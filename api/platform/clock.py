"""The clock of the order scheduler, the engine and the notification layer, with a development-only offset.

A demonstration or an acceptance run needs to live a 90-day order to its end in minutes. ``AFSTAND_DEV_CLOCK_OFFSET_S``
moves this clock (and only this one) forward; token, enrollment-code and supplier-signature expiry keep reading
the real time, so a moved clock can never make a stale credential valid. The settings refuse an offset when an
OIDC issuer is configured (production).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class OffsetClock:
    """Real UTC time plus ``offset_s``. Tests and demonstrations move it with :meth:`advance`."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = float(offset_s)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.offset_s)

    def advance(self, seconds: float) -> datetime:
        self.offset_s += seconds
        return self.now()

    def __call__(self) -> datetime:  # the order scheduler takes a plain callable
        return self.now()


def utcnow() -> datetime:
    """The real time, for loops whose tests pass in their own clock."""
    return datetime.now(timezone.utc)
