"""Delivery channels behind one small interface, one module each: push (``fcm``), SMS (``sms``), the police
control room (``police``), the tag supplier's pursuit mode (``supplier``) and staff notices (``staff``).

A channel addresses outbox rows itself (it knows where its recipient's address lives and renders the message),
sends one :class:`Delivery` and answers with an :class:`Outcome`; it never raises for a delivery problem. The
dispatcher decides what an outcome means (retry, fall back, dead-letter); channels only classify what the
provider said. The channels a process runs are built in one place: ``notifications.service.CHANNELS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
import uuid
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence

import asyncpg

from notifications import catalogue

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
    address_id: uuid.UUID | None = None  # where the address is kept (the victim app's device row, for push)


@dataclass(frozen=True)
class Outcome:
    result: Result
    reason: str | None = None  # short machine reason: unregistered, quota_exceeded, unavailable, timeout, http_400…
    provider_id: str | None = None
    retry_after_s: float | None = None
    invalid_address: bool = False  # the token / number is dead: disable it and fall back


class Channel(Protocol):
    name: str  # the ``channel`` of the outbox rows it delivers

    async def address(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Delivery | str]:
        """Per row, in order: the addressed and rendered delivery, or why there is none (``no_push_token``…)."""
        ...

    async def send(self, delivery: Delivery) -> Outcome: ...

    async def forget_address(self, conn: asyncpg.Connection, delivery: Delivery, reason: str | None,
                             now: datetime) -> None:
        """The provider said the address is dead (``Outcome.invalid_address``): stop using it."""
        ...

    async def close(self) -> None: ...


def address_each(rows: Sequence[Mapping[str, Any]], by: str, found: Mapping[Any, Any], missing: str,
                 deliver: Callable[[Mapping[str, Any], Any], Delivery]) -> list[Delivery | str]:
    """Per row: ``deliver(row, found[row[by]])``, or ``missing`` when nothing was found for it."""
    return [missing if found.get(r[by]) is None else deliver(r, found[r[by]]) for r in rows]


def victim_message(row: Mapping[str, Any]) -> tuple[str, str, str, dict[str, str]]:
    """(language, title, body, data) of a message to the victim, for push and its SMS fallback alike.

    A notice or a thread message carries its text, rendered when it was stored; an alert message is rendered
    here from the catalogue in her language. ``data`` holds ids only, never coordinates."""
    p = row["payload"]
    language = p.get("language") or "nl"
    if "title" in p:
        title, body = p["title"], p["body"]
    else:
        title, body = catalogue.render(language, p.get("template") or "violation.default", p.get("text"))
    data = {k: p[k] for k in ("alert_id", "kind", "level", "notice_id", "message_id") if p.get(k)}
    data.update(purpose=p["purpose"], idempotency_key=str(row["message_key"]))
    return language, title, body, data


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
