"""Request and response bodies of devices."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from api.cases.schema_base import Page, StrictRequest
from api.intake.beacons import parse_key


class DeviceCreate(StrictRequest):
    # Victim app devices come into being only through enrollment, never by staff registration.
    role: Literal["offender_tag"]
    supplier_key_id: str = Field(min_length=1, max_length=200)
    serial: str = Field(min_length=1, max_length=100)
    ble_key: str | None = Field(default=None, description=(
        "write-only: the tag's 16-byte key for its rotating Bluetooth identifiers, as 32 hex characters"
        " (CONTRACT.md, beacon identifiers); stored encrypted and never returned"))

    @field_validator("ble_key")
    @classmethod
    def _hex_key(cls, value: str | None) -> str | None:
        if value is not None:
            parse_key(value)
        return value


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
    ble_key_set: bool = Field(description="a Bluetooth key is stored for this tag (the key itself is never shown)")


class DevicePage(Page):
    items: list[DeviceOut]


class AttentionDevice(DeviceOut):
    """A device on the work list of devices needing attention, and why."""

    case_reference: str
    silent: bool = Field(description="never seen, or not for longer than the engine's silence limit of its role")
    battery_low: bool = Field(description="its last reported battery is below the list's threshold")
    open_alerts: list[str] = Field(description="families of its open device alerts: tamper, battery, gps, offline")


class AttentionPage(Page):
    items: list[AttentionDevice]
