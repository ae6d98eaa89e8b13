"""Bodies of the access routes: grants, watch lists and suppliers' keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Sub = Field(min_length=1, max_length=200, pattern=r"^[^\s/]+$")


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_sub: str = Sub
    relation: Literal["case_director", "contact_person", "prosecutor_coordinator"]
    reason: str | None = Field(default=None, max_length=500)


class WatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_sub: str = Sub


class GrantOut(BaseModel):
    staff_sub: str
    relation: str
    source: Literal["grant", "roster"]
    since: datetime
    by: str


class WatcherOut(BaseModel):
    staff_sub: str
    since: datetime
    by: str


class AccessOut(BaseModel):
    case_id: uuid.UUID
    grants: list[GrantOut]
    watchers: list[WatcherOut]


class KeyOut(BaseModel):
    key_id: str
    supplier_id: uuid.UUID
    secret: str | None = None
    replaces: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None
