"""Push to the victim's app through firebase-admin (FCM HTTP v1), wrapped so nothing else touches the SDK.

* The address is the push token of the case's newest live victim app; a token FCM calls dead is cleared on
  that device (the app registers again) and the message falls back to SMS.

* The SDK is blocking (requests): every send runs in a bounded thread pool, off the event loop.
* ``httpTimeout`` is set (default 10 s; the SDK's own default is 120 s).
* The SDK's own urllib3 retries (up to 4 on 500/503, sleeping for ``Retry-After`` inside a worker thread) are
  switched off for our endpoint: the outbox retries, records every attempt and falls back to SMS instead.
* The endpoint is configurable for tests and private relays. firebase-admin has no supported setting for it;
  on 7.x ``messaging._MessagingService.FCM_URL`` is read when an app's messaging service is created, so we set
  it, create the service for our own named app, and put it back, under a lock. ``fcm_url_hook_available()``
  is checked by a test that fails the day the private attribute disappears.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Sequence

import asyncpg
import firebase_admin
import google.auth.credentials
import requests
from firebase_admin import credentials, exceptions, messaging

from notifications.channels import Delivery, Outcome, address_each, retry_after, victim_message
from notifications.config import NotificationConfig

log = logging.getLogger(__name__)

_INIT_LOCK = threading.Lock()


def fcm_url_hook_available() -> bool:
    svc = getattr(messaging, "_MessagingService", None)
    return svc is not None and isinstance(getattr(svc, "FCM_URL", None), str) and "{0}" in svc.FCM_URL


class _StaticGoogleCredential(google.auth.credentials.Credentials):
    """A credential whose ``refresh()`` does nothing: for a fake FCM or a private relay that authenticates
    otherwise. Never used when a service-account file is configured."""

    def __init__(self, token: str = "afstand-relay") -> None:
        super().__init__()
        self.token = token
        self.expiry = None

    def refresh(self, request: Any) -> None:  # noqa: ARG002 - nothing to refresh
        return None


class StaticCredential(credentials.Base):
    def __init__(self, token: str = "afstand-relay") -> None:
        self._g = _StaticGoogleCredential(token)

    def get_credential(self) -> google.auth.credentials.Credentials:
        return self._g


class FcmChannel:
    name = "push"

    def __init__(
        self,
        *,
        project_id: str,
        url: str | None = None,
        credentials_file: str | None = None,
        timeout_s: float = 10.0,
        ttl_s: int = 60,
        critical: bool = False,
        workers: int = 32,
    ) -> None:
        if credentials_file:
            cred: credentials.Base = credentials.Certificate(credentials_file)
        elif url:
            cred = StaticCredential()
        else:
            cred = credentials.ApplicationDefault()
        self._ttl_s = ttl_s
        self._critical = critical
        self._timeout_s = timeout_s
        with _INIT_LOCK:
            self._app = firebase_admin.initialize_app(
                cred, {"projectId": project_id, "httpTimeout": timeout_s}, name=f"afstand-{uuid.uuid4().hex}"
            )
            self._service = self._create_service(url)
        self._no_sdk_retries(workers)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fcm")

    async def address(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Delivery | str]:
        tokens = {r["case_id"]: r for r in await conn.fetch(
            "SELECT DISTINCT ON (case_id) case_id, id, push_token, platform FROM devices"
            " WHERE case_id = ANY($1) AND role = 'victim_app' AND revoked_at IS NULL"
            " AND push_token IS NOT NULL ORDER BY case_id, created_at DESC",
            list({r["case_id"] for r in rows}))}

        def deliver(r: Mapping[str, Any], tok: asyncpg.Record) -> Delivery:
            _, title, body, data = victim_message(r)
            return Delivery(str(r["message_key"]), tok["push_token"], title, body, data, bool(r["safety"]),
                            platform=tok["platform"], address_id=tok["id"])

        return address_each(rows, "case_id", tokens, "no_push_token", deliver)

    async def forget_address(self, conn: asyncpg.Connection, delivery: Delivery, reason: str | None,
                             now: datetime) -> None:
        await conn.execute(
            "UPDATE devices SET push_token = NULL, push_token_disabled_at = $3, push_token_disabled_reason = $4"
            " WHERE id = $1 AND push_token = $2", delivery.address_id, delivery.address, now, reason,
        )

    def _create_service(self, url: str | None) -> Any:
        if url is None:
            return messaging._get_messaging_service(self._app)
        if not fcm_url_hook_available():
            raise RuntimeError(
                "firebase-admin no longer exposes messaging._MessagingService.FCM_URL; "
                "AFSTAND_FCM_URL cannot be honoured with this version (pinned >=7.5,<8)"
            )
        svc_cls = messaging._MessagingService
        saved = svc_cls.FCM_URL
        svc_cls.FCM_URL = url if "{0}" in url else url.replace("{project}", "{0}")
        try:
            return messaging._get_messaging_service(self._app)
        finally:
            svc_cls.FCM_URL = saved

    def _no_sdk_retries(self, workers: int) -> None:
        client = getattr(self._service, "_client", None)
        session = getattr(client, "session", None)
        if session is None:
            log.warning("firebase-admin internals changed: SDK retries stay on")
            return
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(workers, 10), max_retries=0)
        for prefix in ("http://", "https://", "https://fcm.googleapis.com"):
            session.mount(prefix, adapter)

    @property
    def endpoint(self) -> str:
        return str(getattr(self._service, "_fcm_url", ""))

    def build(self, d: Delivery) -> messaging.Message:
        """The FCM message: notification part (title/body), data with ids only, platform options."""
        collapse = d.idempotency_key
        if d.safety:
            level = "critical" if self._critical else "time-sensitive"
        else:
            level = "active"
        sound: Any = messaging.CriticalSound("default", critical=True, volume=1.0) if (
            d.safety and self._critical) else "default"
        return messaging.Message(
            fid=d.address,
            notification=messaging.Notification(title=d.title, body=d.body),
            data=dict(d.data),
            android=messaging.AndroidConfig(
                priority="high" if d.safety else "normal",
                ttl=timedelta(seconds=self._ttl_s),
                collapse_key=collapse,
                notification=messaging.AndroidNotification(
                    channel_id="safety_alerts" if d.safety else "updates", tag=collapse,
                    priority="max" if d.safety else "default",
                ),
            ),
            apns=messaging.APNSConfig(
                headers={
                    "apns-priority": "10",
                    "apns-push-type": "alert",
                    "apns-collapse-id": collapse[:64],
                },
                payload=messaging.APNSPayload(aps=messaging.Aps(
                    sound=sound, thread_id=d.data.get("alert_id"),
                    custom_data={"interruption-level": level},
                )),
            ),
        )

    def _send_sync(self, message: messaging.Message) -> Outcome:
        try:
            name = messaging.send(message, app=self._app)
        except (messaging.UnregisteredError, messaging.SenderIdMismatchError) as e:
            return Outcome("failed", "unregistered" if isinstance(e, messaging.UnregisteredError) else
                           "sender_id_mismatch", invalid_address=True)
        except exceptions.InvalidArgumentError as e:
            if "token" in str(e).lower():
                return Outcome("failed", "invalid_token", invalid_address=True)
            return Outcome("failed", "invalid_argument")
        except messaging.QuotaExceededError as e:
            return Outcome("retry", "quota_exceeded", retry_after_s=_retry_after(e))
        except exceptions.UnavailableError as e:
            return Outcome("retry", "unavailable", retry_after_s=_retry_after(e))
        except exceptions.DeadlineExceededError:
            return Outcome("retry", "timeout")
        except exceptions.InternalError as e:
            return Outcome("retry", "internal", retry_after_s=_retry_after(e))
        except exceptions.FirebaseError as e:
            return Outcome("retry", (e.code or "firebase_error").lower(), retry_after_s=_retry_after(e))
        except Exception as e:  # a bug or a transport error the SDK did not wrap: retry, never crash the loop
            return Outcome("retry", type(e).__name__)
        return Outcome("sent", provider_id=name)

    async def send(self, delivery: Delivery) -> Outcome:
        message = self.build(delivery)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._send_sync, message)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

        def delete() -> None:  # the SDK's cleanup calls asyncio.run(): not on our running loop
            with _INIT_LOCK:
                firebase_admin.delete_app(self._app)

        await asyncio.to_thread(delete)


def build(config: NotificationConfig, decrypt: Callable[[bytes], str]) -> FcmChannel | None:  # noqa: ARG001
    push = config.push
    if push is None:
        return None
    return FcmChannel(project_id=push.project_id, url=push.url, credentials_file=push.credentials_file,
                      timeout_s=push.timeout_s, ttl_s=push.ttl_s, critical=push.critical, workers=config.concurrency)


def _retry_after(e: exceptions.FirebaseError) -> float | None:
    resp = getattr(e, "http_response", None)
    return retry_after(resp.headers.get("Retry-After")) if resp is not None else None
