"""Request and response bodies of orders."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from api.cases.schema_base import Page, StrictRequest
from api.platform.times import Instant

ORDER_KINDS = (
    "contact_ban", "exclusion_zone", "inclusion_zone", "behavioural_order", "protection_order", "special_conditions",
)
# The prosecutor's behavioural order (gedragsaanwijzing) runs at most 90 days per term; extensions are new orders.
BEHAVIOURAL_ORDER_MAX = timedelta(days=90)


class OrderCreate(StrictRequest):
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


class OrderPage(Page):
    items: list[OrderOut]


class EndingOrder(OrderOut):
    """An order on the work list of orders ending soon, with what was decided about it."""

    case_reference: str
    due_at: datetime = Field(description="the end it is heading for, or was heading for when it was extended")
    decision: Literal["extended", "let_go"] | None = Field(description="null: nothing decided yet")
    extended_at: datetime | None = None
    extension_reference: str | None = None
    extensions_left: int | None = Field(description="extensions still allowed; null: no legal maximum")


class EndingPage(Page):
    items: list[EndingOrder]
