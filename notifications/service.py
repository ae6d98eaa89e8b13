"""Builds the outbox, the channels and the dispatcher from a :class:`NotificationConfig`; started and stopped by
the app's lifespan. The alert writers are passed in, so this package never imports ``api``."""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import asyncpg

from notifications.channels import Channel, fcm, police, sms, staff, supplier
from notifications.clock import Clock, SystemClock
from notifications.config import NotificationConfig
from notifications.dispatcher import AlertHooks, Dispatcher
from notifications.outbox import Outbox

log = logging.getLogger(__name__)

# Every channel, registered here once: each ``build`` returns the channel, or None when it is not configured.
# Adding a channel is its module in notifications/channels/ and one entry here.
CHANNELS: tuple[Callable[[NotificationConfig, Callable[[bytes], str]], Channel | None], ...] = (
    fcm.build, sms.build, police.build, supplier.build, staff.build,
)
# Warned about at startup when missing: without them a victim or the police may not be reached.
_EXPECTED = ("push", "sms", "police_webhook")


def outbox_for(config: NotificationConfig, wake_channel: str, clock: Clock | None = None) -> Outbox:
    # Enqueueing never depends on dispatching: rows written now are delivered by whichever process dispatches.
    return Outbox(wake_channel=wake_channel, defaults=config.defaults, deadline_s=config.deadline_s, staff_webhook=config.staff is not None,
                  clock=clock or SystemClock())


def build_channels(config: NotificationConfig, decrypt: Callable[[bytes], str]) -> tuple[Channel, ...]:
    channels = tuple(c for c in (build(config, decrypt) for build in CHANNELS) if c is not None)
    missing = [name for name in _EXPECTED if name not in {c.name for c in channels}]
    if missing:
        log.warning("notification channels not configured", extra={"missing": missing})
    return channels


class NotificationService:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @property
    def outbox(self) -> Outbox:
        return self.dispatcher.outbox

    @classmethod
    def build(
        cls,
        config: NotificationConfig,
        *,
        pool: asyncpg.Pool,
        outbox: Outbox,
        hooks: AlertHooks,
        channels: Sequence[Channel] | None = None,
    ) -> "NotificationService":
        built = channels if channels is not None else build_channels(config, hooks.decrypt)
        return cls(Dispatcher(pool, outbox, built, hooks, config))

    async def start(self) -> None:
        await self.dispatcher.start()

    async def stop(self) -> None:
        await self.dispatcher.stop()
        for ch in self.dispatcher.channels.values():
            try:
                await ch.close()
            except Exception:
                log.warning("closing a notification channel failed", exc_info=True)
