"""What every request and page body of the cases domain shares.

Every request model forbids unknown fields: a misspelt field must fail loudly, not be silently ignored
(a dropped ``valid_until`` would leave an order running forever).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StrictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(BaseModel):
    items: list[Any]
    next_cursor: str | None
