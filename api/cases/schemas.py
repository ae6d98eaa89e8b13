"""Request and response bodies of the staff API for cases, orders, zones, devices and enrollments.

Every request model forbids unknown fields: a misspelt field must fail loudly, not be silently ignored
(a dropped ``valid_until`` would leave an order running forever).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationInfo, field_validator

from api.platform.times import Instant

ORDER_KINDS = (
    "contact_ban", "exclusion_zone", "inclusion_zone", "behavioural_order", "protection_order", "special_conditions",
)
# The prosecutor's behavioural order (gedragsaanwijzing) runs at most 90 days per term; extensions are new orders.
BEHAVIOURAL_ORDER_MAX = timedelta(days=90)

Metres = Field(ge=50, le=20_000, description="metres, 50–20,000")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------- cases

class Proximity(_Request):
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


class VictimIn(_Request):
    display_name: str = Field(min_length=1, max_length=200)
    language: str = Field(default="nl", pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$", description="BCP 47, e.g. nl, en, tr")


class OffenderIn(_Request):
    display_name: str = Field(min_length=1, max_length=200)


class CaseCreate(_Request):
    reference: str = Field(min_length=1, max_length=100)
    proximity: Proximity | None = None
    victim: VictimIn
    offender: OffenderIn


class CasePatch(_Request):
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


# ---------------------------------------------------------------- orders

class OrderCreate(_Request):
    kind: Literal[ORDER_KINDS]  # type: ignore[valid-type]
    reference: str = Field(min_length=1, max_length=100)
    valid_from: Instant
    valid_until: Instant | None = Field(default=None, description="null: until further notice")
    legal_basis: str | None = Field(default=None, max_length=500, description="e.g. 'art. 509hh Sv'")

    @field_validator("valid_until")
    @classmethod
    def _term(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        start, kind = info.data.get("valid_from"), info.data.get("kind")
        if kind == "behavioural_order" and v is None:
            raise ValueError("a behavioural order runs at most 90 days, so valid_until is required")
        if v is None or start is None:
            return v
        if v <= start:
            raise ValueError("valid_until must be after valid_from")
        if kind == "behavioural_order" and v - start > BEHAVIOURAL_ORDER_MAX:
            raise ValueError(
                f"a behavioural order runs at most 90 days per term; this one runs {(v - start) / timedelta(days=1):.1f}"
                " days. Impose it for at most 90 days and extend it (POST …/orders/{order_id}/extensions) when that is granted"
            )
        return v


class OrderOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    kind: str
    reference: str
    valid_from: datetime
    valid_until: datetime | None
    created_at: datetime
    created_by: str
    legal_basis: str | None = None
    extension_count: int = Field(default=0, description="extensions granted so far (a behavioural order: at most 3)")
    let_go_at: datetime | None = Field(default=None, description="set when the order is deliberately not extended")
    let_go_reason: str | None = None


# ---------------------------------------------------------------- zones

class ZoneCreate(_Request):
    order_id: uuid.UUID
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["exclusion", "inclusion"]
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon/MultiPolygon or {type: Circle, center: [lon, lat], radius_m}")
    buffer_m: StrictFloat = Field(default=0, ge=0, le=20_000)
    schedule: dict[str, Any] | None = Field(default=None, description="null: always in force")
    override_reason: str | None = Field(
        default=None, min_length=3, max_length=1000,
        description="store the zone despite blocking feasibility findings, for this reason (audited)")


class ZoneOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    order_id: uuid.UUID
    name: str
    kind: str
    geometry: dict[str, Any]
    buffer_m: float
    schedule: dict[str, Any] | None
    created_at: datetime
    created_by: str
    findings: list[dict[str, Any]] = Field(
        default_factory=list,
        description="feasibility findings {severity, subject, code, explanation, location} from when it was stored",
    )


# ---------------------------------------------------------------- devices and enrollments

class DeviceCreate(_Request):
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


class EnrollmentOut(BaseModel):
    code: str = Field(description="one-time code for the victim's app: 8-character lookup + secret")
    expires_at: datetime


class CaseDetail(CaseOut):
    orders: list[OrderOut]
    zones: list[ZoneOut]
    devices: list[DeviceOut]


class Page(BaseModel):
    items: list[Any]
    next_cursor: str | None


class CasePage(Page):
    items: list[CaseOut]


class OrderPage(Page):
    items: list[OrderOut]


class ZonePage(Page):
    items: list[ZoneOut]


class DevicePage(Page):
    items: list[DeviceOut]
