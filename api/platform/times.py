"""Date-times that clients send: with an offset, held in UTC, inside the range the service computes with.

One type for every client date-time (bodies and query parameters), so that no route meets a time it cannot
convert or add a day to: ``0001-01-01T00:00:00+14:00`` is a valid ISO string whose UTC value lies before year 1,
and ``9999-12-31T23:59:59-14:00`` one after year 9999; Python cannot represent either, and arithmetic near those
ends (an order's reminders, a period's end) overflows. Such a time is the client's mistake: a 422 naming the
field, never a 500. Times reported by devices (fixes, events, panic) must moreover be RFC 3339 strings.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

# Far enough from Python's limits (years 1 and 9999) that adding centuries never overflows, and wide enough for
# any date a case, an order or a fix can carry.
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def in_utc(value: datetime) -> datetime:
    """``value`` in UTC; a ValueError (a validation error in a model) when it lies outside the supported range."""
    if value.tzinfo is None:
        raise ValueError("a date-time needs an offset (RFC 3339), e.g. 2025-01-01T08:00:00Z")
    try:
        at = value.astimezone(timezone.utc)
    except OverflowError:
        at = None
    if at is None or not EARLIEST <= at < LATEST:
        raise ValueError(f"date-time out of range: it must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return at


def rfc3339_text(value: Any) -> Any:
    """Only an RFC 3339 date-time string passes (no numbers, no dates without a time, no missing offset)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time string with an offset, e.g. 2025-01-01T08:00:00Z")
    return value


def parse_rfc3339(value: Any) -> datetime | None:
    """The UTC time of an RFC 3339 string within the supported range, else None (for callers that must not fail)."""
    try:
        return in_utc(datetime.fromisoformat(rfc3339_text(value).replace("z", "Z").replace("t", "T")))
    except ValueError:
        return None


Instant = Annotated[AwareDatetime, AfterValidator(in_utc)]
DeviceTime = Annotated[AwareDatetime, BeforeValidator(rfc3339_text), AfterValidator(in_utc)]


def iso(value: datetime | None) -> str | None:
    """A stored time as the API writes it: RFC 3339 in UTC with ``Z``; ``None`` stays ``None``."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value else None
