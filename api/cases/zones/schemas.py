"""Request and response bodies of zones."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictFloat

from api.cases.schema_base import Page, StrictRequest


class ZoneCreate(StrictRequest):
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


class ZonePage(Page):
    items: list[ZoneOut]
