"""Catalogues, the firebase-admin private hook we depend on, signing, and the FCM message shape."""

from __future__ import annotations

import warnings

from notifications import catalogue
from notifications.channels import Delivery, retry_after
from notifications.channels.fcm import FcmChannel, fcm_url_hook_available
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


def test_firebase_admin_still_has_the_private_fcm_url_hook() -> None:
    """We point the real SDK at a fake / relay through messaging._MessagingService.FCM_URL (7.x). If this fails
    after an upgrade, AFSTAND_FCM_URL no longer works: find the new hook before unpinning firebase-admin."""
    assert fcm_url_hook_available()


def test_endpoint_override_does_not_leak_into_other_apps() -> None:
    from firebase_admin import messaging

    before = messaging._MessagingService.FCM_URL
    with FakeServer() as fcm:
        ch = FcmChannel(project_id="p1", url=fcm.fcm_url)
        assert ch.endpoint == f"{fcm.base}/v1/projects/p1/messages:send"
    assert messaging._MessagingService.FCM_URL == before


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
