"""Builds the channels and the dispatcher from the app's settings; started and stopped by the app's lifespan.

``settings`` is duck-typed (the app's pydantic Settings) and the alert writers are passed in, so this package
never imports ``api``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import asyncpg

from notifications import outbox, policy
from notifications.channels import Channel
from notifications.clock import Clock, SystemClock
from notifications.dispatcher import AlertHooks, Dispatcher, DispatcherConfig

log = logging.getLogger(__name__)


def default_policy(settings: Any) -> policy.CasePolicy:
    return policy.CasePolicy(
        victim_ack_deadline_s=float(settings.victim_ack_deadline_s),
        auto_escalate_after_s=float(settings.auto_escalate_after_s),
        pursuit_interval_s=int(settings.pursuit_interval_s),
    )


def configure_outbox(settings: Any, clock: Clock | None = None) -> None:
    # Enqueueing never depends on notify_enabled: rows written now are delivered by whichever process dispatches.
    outbox.configure(outbox.OutboxConfig(defaults=default_policy(settings), deadline_s=float(settings.notify_deadline_s),
                                         staff_webhook=bool(settings.staff_webhook_url)),
                     clock=clock)


def build_channels(settings: Any) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    if settings.fcm_project_id:
        from notifications.channels.fcm import FcmChannel

        channels["push"] = FcmChannel(
            project_id=settings.fcm_project_id, url=settings.fcm_url, credentials_file=settings.fcm_credentials_file,
            timeout_s=settings.fcm_timeout_s, ttl_s=settings.fcm_ttl_s, critical=settings.fcm_critical_alerts,
            workers=settings.notify_concurrency,
        )
    from notifications.channels.webhook import SmsGatewayChannel, WebhookChannel

    if settings.sms_url:
        channels["sms"] = SmsGatewayChannel(settings.sms_url, settings.sms_api_key, settings.sms_sender,
                                            settings.webhook_timeout_s)
    if settings.police_webhook_url:
        channels["police_webhook"] = WebhookChannel("police_webhook", settings.webhook_timeout_s)
    if settings.staff_webhook_url:
        channels["staff_webhook"] = WebhookChannel("staff_webhook", settings.webhook_timeout_s)
    channels["supplier_webhook"] = WebhookChannel("supplier_webhook", settings.webhook_timeout_s)
    missing = [c for c in ("push", "sms", "police_webhook") if c not in channels]
    if missing:
        log.warning("notification channels not configured", extra={"missing": missing})
    return channels


class NotificationService:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        pool: asyncpg.Pool,
        append_change: Callable[..., Any],
        open_alert: Callable[..., Any],
        decrypt: Callable[[bytes], str],
        on_failure: Callable[[str, str], None] = lambda c, r: None,
        on_depth: Callable[[int], None] = lambda d: None,
        clock: Clock | None = None,
        channels: dict[str, Channel] | None = None,
        alert_log_lock: int | None = None,
    ) -> "NotificationService":
        clock = clock or SystemClock()
        configure_outbox(settings, clock)
        config = DispatcherConfig(
            batch=settings.notify_batch, workers=settings.notify_workers, poll_s=settings.notify_poll_s,
            lease_s=settings.notify_lease_s, backoff_base_s=settings.notify_backoff_base_s,
            backoff_max_s=settings.notify_backoff_max_s, police_url=settings.police_webhook_url,
            police_key_id=settings.police_webhook_key_id, police_secret=settings.police_webhook_secret,
            staff_url=settings.staff_webhook_url, staff_key_id=settings.staff_webhook_key_id,
            staff_secret=settings.staff_webhook_secret,
        )
        hooks = AlertHooks(append_change=append_change, open_alert=open_alert, decrypt=decrypt,
                           on_failure=on_failure, on_depth=on_depth, alert_log_lock=alert_log_lock)
        return cls(Dispatcher(pool, channels if channels is not None else build_channels(settings), hooks, config,
                              clock))

    async def start(self) -> None:
        await self.dispatcher.start()

    async def stop(self) -> None:
        await self.dispatcher.stop()
        for ch in self.dispatcher.channels.values():
            try:
                await ch.close()
            except Exception:
                log.warning("closing a notification channel failed", exc_info=True)
