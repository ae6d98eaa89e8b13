"""Bodies of the victim app API (``/v1/me/…``).

What the app may read is deliberately narrow: :class:`VictimAlert` has no position, distance, evidence, zone,
device or detail field, so the offender's whereabouts cannot leak through it even by mistake.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.contacts.notices.schemas import VictimNotice
from api.contacts.schemas import FREQUENCIES, Channel, Page
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
    kind: str = Field(description="proximity, zone_exclusion, panic; offender_silent or victim_silent only when the"
                                  " device went dark near her")
    title: str = Field(description="what happened, in her language")
    level: str
    confidence: str
    status: str
    opened_at: datetime
    cleared_at: datetime | None
    state: Literal["active", "closed"] = Field(
        description="closed once the danger is over: cleared (the other person left, or the order that made it a"
                    " breach has ended) or resolved by the monitoring room")


class Beacon(BaseModel):
    beacon_id: str = Field(description="16 lowercase hex characters, as the tag advertises it")
    valid_from: datetime
    valid_until: datetime


class BeaconList(BaseModel):
    beacons: list[Beacon]


class VictimAlertPage(BaseModel):
    items: list[VictimAlert]
    next_cursor: str | None


class AckOut(BaseModel):
    alert_id: uuid.UUID
    acknowledged_at: datetime


class VictimNotices(BaseModel):
    items: list[VictimNotice]
    next_cursor: str | None = None


# ---------------------------------------------------------------- her case, timeline, orders

class Stage(BaseModel):
    code: str
    title: str
    description: str
    since: datetime | None


class ContactPerson(BaseModel):
    agency: str
    agency_name: str
    assigned: bool
    name: str | None = None
    role: str | None = None
    function: str | None = None
    how_to_reach: str | None = None
    when_to_reach: str | None = None
    phone: str | None = None
    email: str | None = None
    note: str | None = Field(default=None, description="shown when no one is assigned")


class NextContact(BaseModel):
    due_at: datetime
    agency: str
    channel: str
    overdue: bool = Field(default=False, description="the agreed date has passed without the contact")
    text: str


class VictimCase(BaseModel):
    language: str
    stage: Stage
    contact_persons: list[ContactPerson]
    next_contact: NextContact | None


class VictimEvent(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    note: str | None
    occurred_at: datetime


class VictimEventPage(Page):
    items: list[VictimEvent]


class VictimOrder(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    forbids: str
    status: str
    status_text: str
    valid_from: datetime
    valid_until: datetime | None
    until_text: str
    zones: dict[str, Any] = Field(description="GeoJSON FeatureCollection of the victim's protective (exclusion) zones")


class VictimOrders(BaseModel):
    items: list[VictimOrder]


# ---------------------------------------------------------------- preferences

class QuietHours(_Request):
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM local time")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @field_validator("end")
    @classmethod
    def _not_empty(cls, v: str, info: Any) -> str:
        if info.data.get("start") == v:
            raise ValueError("start and end are equal: quiet hours would be empty")
        return v


class Preferences(_Request):
    language: str = Field(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$", description="BCP 47, e.g. nl, en")
    channel: Channel
    quiet_hours: QuietHours | None = Field(description="no updates in this window; safety alerts ignore it")
    update_frequency: Literal[FREQUENCIES]  # type: ignore[valid-type]
    quiet_hours_note: str | None = Field(
        default=None, description="read-only, in her language: what quiet hours hold back, and that safety alerts"
                                  " always come through (ignored when sent)")
