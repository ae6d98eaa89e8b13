"""The notification layer's own settings, as plain data: the app builds them from its settings (AFSTAND_...)
and passes them in, so this package never reads the environment and never imports ``api``."""

from __future__ import annotations

from dataclasses import dataclass

from notifications import policy


@dataclass(frozen=True)
class PushConfig:
    """FCM HTTP v1 (notifications/channels/fcm.py); ``url`` points at a fake or a private relay."""

    project_id: str
    url: str | None = None
    credentials_file: str | None = None
    timeout_s: float = 10.0
    ttl_s: int = 60
    critical: bool = False  # iOS critical alerts (an Apple entitlement)


@dataclass(frozen=True)
class SmsConfig:
    url: str
    api_key: str | None = None
    sender: str = "Afstand"


@dataclass(frozen=True)
class WebhookTarget:
    """A receiver we sign to as suppliers sign to us (CONTRACT.md, Supplier API)."""

    url: str
    key_id: str = "afstand"
    secret: str | None = None


@dataclass(frozen=True)
class NotificationConfig:
    # Enqueueing (the outbox): the case policy's defaults and how long a message is retried.
    defaults: policy.CasePolicy = policy.DEFAULT_POLICY
    deadline_s: float = 900.0
    # Delivering (the dispatcher). ``dispatch`` off: this process enqueues, another one delivers.
    dispatch: bool = True
    workers: int = 2
    batch: int = 100
    concurrency: int = 32
    poll_s: float = 1.0
    lease_s: float = 60.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 3600.0
    # The channels; None: not configured.
    push: PushConfig | None = None
    sms: SmsConfig | None = None
    police: WebhookTarget | None = None
    staff: WebhookTarget | None = None
    webhook_timeout_s: float = 10.0
