"""Request and response bodies of devices."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.cases.schema_base import Page, StrictRequest


class DeviceCreate(StrictRequest):
    # Victim app devices come into being only through enrollment, never by staff registration.
    role: Literal["offender_tag"]
    supplier_key_id: str = Field(min_length=1, max_length=200)
    serial: str = Field(min_length=1, max_length=100)


class DeviceOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    role: Literal["offender_tag", "victim_app"]
    serial: str | None
    supplier_id: uuid.UUID | None
    supplier_name: str | None
    supplier_key_id: str | None = Field(description="the key given at registration, else the supplier's current key")
    platform: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None
    last_battery_pct: float | None


class DevicePage(Page):
    items: list[DeviceOut]
