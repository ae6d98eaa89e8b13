"""Delivery channels behind one small interface: push (FCM), SMS (HTTP gateway), signed webhooks.

A channel takes one :class:`Delivery` (already addressed and rendered) and answers with an :class:`Outcome`;
it never raises for a delivery problem. The dispatcher decides what an outcome means (retry, fall back,
dead-letter); channels only classify what the provider said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Result = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class Delivery:
    """One message to one address. ``data`` never holds coordinates: see ``notifications.outbox``."""

    idempotency_key: str  # the message key: the same for every attempt and every channel of one message
    address: str  # push token, phone number or URL
    title: str = ""
    body: str = ""
    data: dict[str, str] = field(default_factory=dict)
    safety: bool = True
    platform: str | None = None  # ios | android, for push
    json_body: dict[str, Any] | None = None  # for webhooks
    signing_key_id: str | None = None
    signing_secret: str | None = None


@dataclass(frozen=True)
class Outcome:
    result: Result
    reason: str | None = None  # short machine reason: unregistered, quota_exceeded, unavailable, timeout, http_400…
    provider_id: str | None = None
    retry_after_s: float | None = None
    invalid_address: bool = False  # the token / number is dead: disable it and fall back


class Channel(Protocol):
    name: str

    async def send(self, delivery: Delivery) -> Outcome: ...

    async def close(self) -> None: ...


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import datetime, timezone
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
