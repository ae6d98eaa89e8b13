"""The rotating Bluetooth identifiers of offender tags, exactly as CONTRACT.md ("Beacon identifiers") fixes them:
the one implementation used by the API (``GET /v1/me/beacons``, the check of ``POST /v1/me/encounters``) and by
any simulator of a tag or phone (api/demo/phone.py).

For counter ``c = floor(unix_seconds / 1024)`` a tag advertises the first 8 bytes, as 16 lowercase hex characters,
of ``HMAC-SHA256(ble_key, b"afstand-beacon" + c as 8 bytes big-endian)``. Only identifiers ever leave the server:
never the key or the serial, so the phone cannot follow the tag beyond the hours it was given.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

COUNTER_S = 1024
KEY_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
BEACON_HEX = re.compile(r"^[0-9a-f]{16}$")
DRIFT = 1  # an encounter matches its recorded_at's counter or one either side (clock drift)
# How far (in counters, about 24 h either side) an identifier of the case's tag is still recognised, to say
# "stale" rather than "not this case's tag".
RECOGNISED = 85


@dataclass(frozen=True)
class Beacon:
    beacon_id: str
    valid_from: datetime
    valid_until: datetime


def parse_key(text: str) -> bytes:
    """The 16 key bytes of a ``ble_key``; ValueError unless it is exactly 32 hex characters."""
    if not isinstance(text, str) or not KEY_HEX.match(text):
        raise ValueError("ble_key: 16 bytes as 32 hex characters")
    return bytes.fromhex(text)


def counter_at(at: datetime) -> int:
    return int(at.timestamp() // COUNTER_S)


def beacon_id(key: bytes, counter: int) -> str:
    return hmac.new(key, b"afstand-beacon" + counter.to_bytes(8, "big"), hashlib.sha256).digest()[:8].hex()


def _at(counter: int) -> datetime:
    return datetime.fromtimestamp(counter * COUNTER_S, timezone.utc)


def schedule(key: bytes, now: datetime, hours: float = 24.0) -> list[Beacon]:
    """The identifiers the tag advertises from the current counter until ``hours`` from ``now``."""
    first = counter_at(now)
    last = counter_at(datetime.fromtimestamp(now.timestamp() + hours * 3600, timezone.utc))
    return [Beacon(beacon_id(key, c), _at(c), _at(c + 1)) for c in range(first, last + 1)]


class Matcher:
    """Matches reported identifiers against the keys of one case's tags (``{tag id: key}``)."""

    def __init__(self, keys: Mapping[object, bytes]) -> None:
        self.keys = dict(keys)
        self._ids: dict[tuple[object, int], str] = {}

    def _id(self, tag: object, counter: int) -> str:
        found = self._ids.get((tag, counter))
        if found is None:
            found = self._ids[(tag, counter)] = beacon_id(self.keys[tag], counter)
        return found

    def match(self, reported: str, at: datetime) -> tuple[object | None, str | None]:
        """(tag, None) when ``reported`` is a tag's identifier at ``at`` (± DRIFT counters), else (None, why)."""
        c = counter_at(at)
        for tag in self.keys:
            if any(self._id(tag, c + d) == reported for d in range(-DRIFT, DRIFT + 1)):
                return tag, None
        for tag in self.keys:
            if any(self._id(tag, c + d) == reported for d in range(-RECOGNISED, RECOGNISED + 1)):
                return None, "beacon_id: stale, this case's tag did not advertise it at recorded_at"
        return None, "beacon_id: not an identifier of this case's tag"
