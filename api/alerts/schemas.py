"""Request and response bodies of the alert queue, the operator actions and the notification policy."""

from __future__ import annotations

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
