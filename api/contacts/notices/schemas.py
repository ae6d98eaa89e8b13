"""Bodies of notices: a notice as the victim reads it and as staff see it, with its delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.contacts.schemas import Page


class VictimNotice(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    body: str
    created_at: datetime


class StaffVictimNotice(VictimNotice):
    urgency: str
    push_status: str = Field(description="enqueued, not_pushed (her channel or the case policy), pending")
    push_detail: str | None
    deliveries: list[dict[str, Any]]


class StaffVictimNoticePage(Page):
    items: list[StaffVictimNotice]
