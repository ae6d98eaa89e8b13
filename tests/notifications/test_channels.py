"""Catalogues, the firebase-admin encoder we depend on, the OAuth2 flow, signing, and the FCM message shape."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifications import catalogue
from notifications.channels import Delivery, retry_after
from notifications.channels.fcm import SCOPE, FcmChannel, fcm_encoder_available
from notifications.channels.webhook import sign
from tests.notifications.fakes import FakeServer


def test_every_language_has_every_key() -> None:
    langs = catalogue.languages()
    assert {"nl", "en"} <= set(langs)
    keys = {lang: set(catalogue.load(lang)) for lang in langs}
    for lang, k in keys.items():
        assert k == keys["en"], f"{lang}: missing {sorted(keys['en'] - k)}, extra {sorted(k - keys['en'])}"
        assert all(catalogue.load(lang)[key].strip() for key in k), f"{lang}: an empty message"


def test_render_in_the_victims_language_with_fallbacks() -> None:
    assert catalogue.render("nl", "violation.proximity")[0] == "Veiligheidsmelding"
    assert catalogue.render("en", "violation.zone_inclusion")[0] == "Safety alert"  # kind without own text
    assert catalogue.render("tr", "panic_ack") == catalogue.render("en", "panic_ack")  # unknown language
    assert catalogue.render("nl", "operator.text", "Bel ons")[1] == "Bel ons"
    assert "call_us" in catalogue.operator_templates()


def test_firebase_admin_still_has_the_private_message_encoder() -> None:
    """The request body is firebase-admin's own encoding of its Message (7.x: _MessagingService.encode_message).
    If this fails after an upgrade, find the new encoder before unpinning firebase-admin."""
    assert fcm_encoder_available()


def test_endpoint_names_the_project() -> None:
    assert FcmChannel(project_id="p1").endpoint == "https://fcm.googleapis.com/v1/projects/p1/messages:send"
    with FakeServer() as fcm:
        assert FcmChannel(project_id="p1", url=fcm.fcm_url).endpoint == f"{fcm.base}/v1/projects/p1/messages:send"


def test_message_shape_without_deprecation_warnings() -> None:
    with FakeServer() as fcm:
        ch = FcmChannel(project_id="p", url=fcm.fcm_url, critical=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            safety = ch.build(Delivery("key-1", "tok", "T", "B", {"alert_id": "a"}, safety=True))
            info = ch.build(Delivery("key-2", "tok", "T", "B", {"alert_id": "a"}, safety=False))
        assert safety.fid == "tok" and safety.token is None
        assert safety.apns.payload.aps.custom_data == {"interruption-level": "critical"}
        assert safety.apns.payload.aps.sound.critical
        assert info.apns.payload.aps.custom_data == {"interruption-level": "active"}
        assert info.android.priority == "normal" and safety.android.priority == "high"
        assert safety.apns.headers["apns-priority"] == "10" and info.apns.headers["apns-push-type"] == "alert"


def test_webhook_signature_is_the_supplier_scheme() -> None:
    from api.auth.principals import sign as api_sign

    assert sign("s3cret", "1700000000", b'{"a":1}') == api_sign("s3cret", "1700000000", b'{"a":1}')


def test_retry_after_parses_seconds_and_dates() -> None:
    assert retry_after("12") == 12.0
    assert retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


async def test_service_account_token_is_fetched_once_used_and_renewed_after_a_401(tmp_path: Path) -> None:
    """The real google-auth flow: a JWT signed with the service account's key, exchanged at its token_uri (the
    fake FCM's token endpoint) for the bearer token FCM then receives."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    with FakeServer() as fcm:
        account = {"type": "service_account", "project_id": "p", "private_key_id": "k1", "private_key": pem,
                   "client_email": "afstand@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": fcm.token_url}
        (tmp_path / "sa.json").write_text(json.dumps(account))
        ch = FcmChannel(project_id="p", url=fcm.fcm_url, credentials_file=str(tmp_path / "sa.json"))
        d = Delivery("key-1", "tok", "T", "B", {"alert_id": "a"}, safety=True)
        try:
            assert (await ch.send(d)).result == "sent"
            assert (await ch.send(d)).result == "sent"
            [grant] = fcm.token_requests
            assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            claims = jwt.decode(grant["assertion"], key.public_key(), algorithms=["RS256"],
                                audience="https://oauth2.googleapis.com/token")  # google-auth names Google
            assert claims["iss"] == account["client_email"] and claims["scope"] == SCOPE
            assert [r.headers["authorization"] for r in fcm.received] == ["Bearer fake-access-1"] * 2

            fcm.script = ["unauthenticated"]
            failed = await ch.send(d)
            assert failed.result == "retry" and failed.reason == "unauthenticated"
            assert (await ch.send(d)).result == "sent"
            assert len(fcm.token_requests) == 2 and fcm.received[-1].headers["authorization"] == "Bearer fake-access-2"
        finally:
            await ch.close()
