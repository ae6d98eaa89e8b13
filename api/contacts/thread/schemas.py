"""Bodies of the message thread."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, BaseModel

from api.contacts.schemas import Page, _Request


class MessageIn(_Request):
    body: str = Field(min_length=1, max_length=5000)


class MessageOut(BaseModel):
    id: uuid.UUID
    sender: Literal["victim", "staff"]
    author: str = Field(description="staff: name and agency; victim: 'victim'")
    agency: str | None = None
    body: str
    created_at: datetime
    read_by_victim_at: datetime | None
    read_by_staff_at: datetime | None
    push_status: str = Field(description="not_needed (from the victim), pending, enqueued (the outbox holds its push),"
                                         " not_pushed (her channel or the case policy: she reads it in the app)")
    push_detail: str | None = Field(default=None, description="why it is not pushed, or why its push waits")
    deliveries: list[dict[str, Any]] | None = Field(
        default=None, description="staff view of a message to the victim: each delivery (push, SMS) and its state")


class MessagePage(Page):
    items: list[MessageOut]
