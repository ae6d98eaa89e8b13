"""Bodies of the victim app API (``/v1/me/…``).

What the app may read is deliberately narrow: :class:`VictimAlert` has no position, distance, evidence, zone,
device or detail field, so the offender's whereabouts cannot leak through it even by mistake.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.contacts.notices.schemas import VictimNotice
from api.intake.schemas import ItemResult


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Enroll(_Request):
    code: str = Field(min_length=1, max_length=64, description="the one-time code from the case director")
    installation_id: str = Field(min_length=1, max_length=200)
    platform: Literal["ios", "android"]
    push_token: str | None = Field(default=None, min_length=1, max_length=4096)


class Refresh(_Request):
    refresh_token: str = Field(min_length=1, max_length=512)


class TokenPair(BaseModel):
    device_id: uuid.UUID
    access_token: str
    refresh_token: str = Field(description="single use: each /v1/me/token call returns a new one")
    expires_in: int = Field(description="seconds until the access token expires")
    token_type: Literal["Bearer"] = "Bearer"


class Panic(_Request):
    """The panic button. Only ``recorded_at`` is required; a position, when given, is stored as a victim fix
    but a bad or partial one never stops the alert (it is reported in ``position`` instead)."""

    recorded_at: Any = Field(description="RFC 3339 with an offset; any other value, or an implausible time, still "
                                         "raises the alert, at server time and marked clock_suspect")
    # Taken as sent and checked as a victim fix (strict numbers, ranges) after the alert is certain: a bad
    # position is reported in ``position`` and never stops the panic.
    lat: Any = None
    lon: Any = None
    accuracy_m: Any = None


class PanicOut(BaseModel):
    alert_id: uuid.UUID
    position: ItemResult | None = Field(default=None, description="what became of the position sent, if any")
    clock_suspect: bool = Field(default=False, description="recorded_at was not a plausible time: raised at server time")


class PushToken(_Request):
    push_token: str = Field(min_length=1, max_length=4096)


class VictimAlert(BaseModel):
    """An alert as the victim sees it: never a position, distance, zone, device or evidence."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    kind: str
    level: str
    confidence: str
    status: str
    opened_at: datetime
    cleared_at: datetime | None
    state: Literal["active", "closed"] = Field(
        description="closed once the danger is over: cleared (the other person left, or the order that made it a"
                    " breach has ended) or resolved by the monitoring room")


class VictimAlertPage(BaseModel):
    items: list[VictimAlert]
    next_cursor: str | None


class AckOut(BaseModel):
    alert_id: uuid.UUID
    acknowledged_at: datetime


class VictimNotices(BaseModel):
    items: list[VictimNotice]
    next_cursor: str | None = None
