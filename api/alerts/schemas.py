"""Request and response bodies of the alert queue, the operator actions and the notification policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from api.alerts.lifecycle import OUTCOMES


class AlertPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class Resolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    note: str | None = Field(default=None, max_length=4000)


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=4000)


class Escalate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=1000)


class MessageVictim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, min_length=1, max_length=500)
    template: str | None = Field(default=None, max_length=64)
    urgent: StrictBool = False

    @model_validator(mode="after")
    def _one_of(self) -> "MessageVictim":
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of text or template")
        return self


class NotificationPolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    victim_phone: str | None = Field(default=None, max_length=32)
    policy: dict[str, Any] = Field(default_factory=dict)


class HourCount(BaseModel):
    start: datetime
    alerts: int
    violations: int


class CauseCount(BaseModel):
    cause: str = Field(description="the alert kind, or for a device event 'device_event:<event type>'")
    open: int | None = None
    overdue: int | None = None
    alerts: int | None = None
    violations: int | None = None


class OperatorLoad(BaseModel):
    actor: str
    acknowledged: int
    late: int = Field(description="acknowledged more than deadline_s after the alert was raised")
    median_s: float


class RoomLoad(BaseModel):
    """Counts only: no case, no reference, no position."""

    at: datetime
    deadline_s: float
    hours: list[HourCount] = Field(description="alerts raised per hour, oldest first; the last hour is running")
    open: int
    open_overdue: int = Field(description="open, not acknowledged, raised more than deadline_s ago")
    open_by_cause: list[CauseCount]
    operators: list[OperatorLoad] = Field(description="acknowledgements per operator over the same hours")
    recent_s: float
    recent: int = Field(description="alerts raised in the last recent_s seconds")
    recent_by_cause: list[CauseCount]
