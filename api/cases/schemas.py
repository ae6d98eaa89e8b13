"""Request and response bodies of the case itself; each sub-domain (orders, zones, devices, enrollments) keeps
its own in its folder. Request models forbid unknown fields (api/cases/schema_base.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictFloat, ValidationInfo, field_validator

from api.cases.devices.schemas import DeviceOut
from api.cases.orders.schemas import OrderOut
from api.cases.schema_base import Page, StrictRequest
from api.cases.zones.schemas import ZoneOut

Metres = Field(ge=50, le=20_000, description="metres, 50–20,000")


class Proximity(StrictRequest):
    """The contact ban's rings around the victim: a warning at ``warn_m``, a violation at ``alert_m``."""

    warn_m: StrictFloat = Metres
    alert_m: StrictFloat = Metres

    @field_validator("alert_m")
    @classmethod
    def _inside_warning_ring(cls, v: float, info: ValidationInfo) -> float:
        # Declared after warn_m, so warn_m is in info.data when it was itself valid.
        warn = info.data.get("warn_m")
        if warn is not None and v > warn:
            raise ValueError(f"alert_m ({v:g}) must not exceed warn_m ({warn:g}): the warning ring lies outside the alert ring")
        return v


class VictimIn(StrictRequest):
    display_name: str = Field(min_length=1, max_length=200)
    language: str = Field(default="nl", pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$", description="BCP 47, e.g. nl, en, tr")


class OffenderIn(StrictRequest):
    display_name: str = Field(min_length=1, max_length=200)


class CaseCreate(StrictRequest):
    reference: str = Field(min_length=1, max_length=100)
    proximity: Proximity | None = None
    victim: VictimIn
    offender: OffenderIn


class CasePatch(StrictRequest):
    """Only the fields sent are changed; ``proximity: null`` lifts the contact-ban distances."""

    proximity: Proximity | None = None
    reason: str | None = Field(default=None, max_length=1000, description="kept in the audit log")


class Victim(BaseModel):
    display_name: str
    language: str


class Offender(BaseModel):
    display_name: str


class ProximityOut(BaseModel):
    warn_m: float
    alert_m: float


class CaseOut(BaseModel):
    id: uuid.UUID
    reference: str
    proximity: ProximityOut | None
    victim: Victim
    offender: Offender
    status: Literal["active", "closed"]
    created_at: datetime


class CaseDetail(CaseOut):
    orders: list[OrderOut]
    zones: list[ZoneOut]
    devices: list[DeviceOut]


class CasePage(Page):
    items: list[CaseOut]
