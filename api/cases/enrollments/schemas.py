"""Response body of an issued enrollment code."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class EnrollmentOut(BaseModel):
    code: str = Field(description="one-time code for the victim's app: 8-character lookup + secret")
    expires_at: datetime
