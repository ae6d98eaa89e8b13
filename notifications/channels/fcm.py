"""Push to the victim's app through FCM HTTP v1, over one long-lived HTTP/2 client (httpx).

* The address is the push token of the case's newest live victim app; a token FCM calls dead is cleared on
  that device (the app registers again) and the message falls back to SMS.

* Why not firebase-admin's ``send``: it is blocking (requests in a thread pool) and, with its async twin, tops
  out near 500 sends/s on two cores (bench/README.md); one httpx client multiplexes the sends on the event loop
  at about half the CPU per message. The SDK still builds the message (its typed ``Message``) and encodes it,
  so the request body is exactly what the SDK would send; ``fcm_encoder_available()`` is checked by a test that
  fails the day that private encoder disappears.
* Nothing retries inside the channel: the outbox retries, records every attempt and falls back to SMS.
* OAuth2 is google-auth's: a service-account file (signed JWT exchanged at its ``token_uri``) or the
  application default credentials; the token is refreshed off the event loop shortly before it expires, and
  again when FCM answers 401. A ``url`` without credentials (a fake FCM or a private relay that authenticates
  otherwise) sends a fixed bearer token.
* HTTP/2 is negotiated over TLS (ALPN), as FCM serves it; a plain ``http://`` url (a fake or a relay on
  loopback) speaks HTTP/1.1 over a pool of keep-alive connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Sequence

import asyncpg
import google.auth
import google.auth.credentials
import google.auth.transport.requests
import httpx
from firebase_admin import messaging
from google.oauth2 import service_account

from notifications.channels import Delivery, Outcome, address_each, retry_after, victim_message
from notifications.config import NotificationConfig

log = logging.getLogger(__name__)

FCM_URL = "https://fcm.googleapis.com/v1/projects/{0}/messages:send"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
RELAY_TOKEN = "afstand-relay"
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
# FCM error codes that mean the address is dead: forget it and fall back.
_DEAD_ADDRESS = {"UNREGISTERED": "unregistered", "SENDER_ID_MISMATCH": "sender_id_mismatch"}


def fcm_encoder_available() -> bool:
    svc = getattr(messaging, "_MessagingService", None)
    return callable(getattr(svc, "encode_message", None))


class _AccessToken:
    """The OAuth2 bearer token from google-auth credentials; refreshed in a thread (google-auth's transport is
    blocking), one refresh at a time."""

    def __init__(self, credentials_file: str | None, static: bool) -> None:
        self._file = credentials_file
        self._static = static and not credentials_file
        self._creds: google.auth.credentials.Credentials | None = None
        self._lock = asyncio.Lock()

    def _load(self) -> google.auth.credentials.Credentials:
        if self._file:
            return service_account.Credentials.from_service_account_file(self._file, scopes=[SCOPE])
        creds, _ = google.auth.default(scopes=[SCOPE])
        return creds

    def _refresh(self) -> None:
        if self._creds is None:
            self._creds = self._load()
        self._creds.refresh(google.auth.transport.requests.Request())

    async def header(self) -> str:
        if self._static:
            return f"Bearer {RELAY_TOKEN}"
        if self._creds is None or not self._creds.valid:
            async with self._lock:
                if self._creds is None or not self._creds.valid:
                    await asyncio.to_thread(self._refresh)
        assert self._creds is not None
        return f"Bearer {self._creds.token}"

    def reject(self) -> None:
        """FCM refused the token (401): fetch a new one before the next send."""
        if self._creds is not None:
            self._creds.token = None


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
        self._ttl_s = ttl_s
        self._critical = critical
        self.endpoint = (url or FCM_URL).replace("{project}", "{0}").format(project_id)
        self._token = _AccessToken(credentials_file, static=url is not None)
        # Created on first use, on the loop that sends (the app's); kept for the process's life.
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(workers)
        self._timeout_s = timeout_s
        self._workers = workers

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                http2=True, timeout=self._timeout_s,
                limits=httpx.Limits(max_connections=self._workers, max_keepalive_connections=self._workers),
                headers={"X-GOOG-API-FORMAT-VERSION": "2", "X-FIREBASE-CLIENT": "afstand"},
            )
        return self._client

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

    async def send(self, delivery: Delivery) -> Outcome:
        body = {"message": messaging._MessagingService.encode_message(self.build(delivery))}
        http = self._http()
        try:
            # No more requests in httpx's pool than it has connections: it scans every waiting request against
            # every connection on each event, which at a batch of 100 cost more CPU than the sends themselves.
            async with self._slots:
                resp = await http.post(self.endpoint, json=body, headers={"Authorization": await self._token.header()})
        except httpx.TimeoutException:
            return Outcome("retry", "timeout")
        except Exception as e:  # a transport error or a failed token refresh: retry, never crash the loop
            return Outcome("retry", type(e).__name__)
        if resp.status_code == 401:
            self._token.reject()
        return outcome(resp.status_code, resp.content, resp.headers.get("Retry-After"))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def outcome(status: int, content: bytes, retry_after_header: str | None) -> Outcome:
    """What FCM's answer means for the outbox, as firebase-admin classifies it (HTTP status, then the FCM error
    code in ``details``)."""
    try:
        answer = json.loads(content)
    except ValueError:  # an HTML error page from a proxy, an empty body
        answer = None
    answer = answer if isinstance(answer, dict) else {}
    if status == 200:
        return Outcome("sent", provider_id=answer.get("name"))
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    fcm_code = next((d.get("errorCode") for d in error.get("details") or []
                     if isinstance(d, dict) and d.get("@type") == _FCM_ERROR), None)
    wait = retry_after(retry_after_header)
    if fcm_code in _DEAD_ADDRESS:
        return Outcome("failed", _DEAD_ADDRESS[fcm_code], invalid_address=True)
    if status == 400:
        if "token" in str(error.get("message", "")).lower():
            return Outcome("failed", "invalid_token", invalid_address=True)
        return Outcome("failed", "invalid_argument")
    if status == 429 or fcm_code == "QUOTA_EXCEEDED":
        return Outcome("retry", "quota_exceeded", retry_after_s=wait)
    if status == 503:
        return Outcome("retry", "unavailable", retry_after_s=wait)
    if status == 500:
        return Outcome("retry", "internal", retry_after_s=wait)
    return Outcome("retry", str(error.get("status") or f"http_{status}").lower(), retry_after_s=wait)


def build(config: NotificationConfig, decrypt: Callable[[bytes], str]) -> FcmChannel | None:  # noqa: ARG001
    push = config.push
    if push is None:
        return None
    return FcmChannel(project_id=push.project_id, url=push.url, credentials_file=push.credentials_file,
                      timeout_s=push.timeout_s, ttl_s=push.ttl_s, critical=push.critical, workers=config.concurrency)
