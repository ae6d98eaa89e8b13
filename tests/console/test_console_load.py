"""The monitoring room's load in a real Chromium: thirty tags report a cut strap at once; the flood banner groups
them by cause and keeps the victim's panic above them; the load view plots the day from its own data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.console.a11y import assert_contrast, assert_labelled
from tests.console.conftest import Console
from tests.console.test_console_browser import open_page, sign_in, wait_js
from tests.console.test_console_setup import assert_screenshot
from tests.helpers import signed

pytestmark = pytest.mark.slow

TAGS = 30


def test_a_flood_is_grouped_by_cause_and_the_load_is_plotted(chromium: Any, console_server: Console,
                                                             artifacts: Path) -> None:
    c = console_server
    h = c.http
    serials = []
    for i in range(TAGS):
        cid = h.post("/v1/cases", headers=c.admin, json={
            "reference": f"FLOOD-{i:02d}", "proximity": None, "victim": {"display_name": "V", "language": "nl"},
            "offender": {"display_name": "O"}}).raise_for_status().json()["id"]
        serials.append(f"FLOOD-TAG-{i:02d}")
        h.post(f"/v1/cases/{cid}/devices", headers=c.admin, json={
            "role": "offender_tag", "supplier_key_id": c.supplier["key_id"], "serial": serials[-1]}).raise_for_status()
    # One victim who presses her panic button in the middle of it: the alert that must not drown.
    cid = h.post("/v1/cases", headers=c.admin, json={
        "reference": "PANIC-1", "proximity": None, "victim": {"display_name": "V", "language": "nl"},
        "offender": {"display_name": "O"}}).raise_for_status().json()["id"]
    code = h.post(f"/v1/cases/{cid}/enrollments", headers=c.admin).raise_for_status().json()["code"]
    app = h.post("/v1/me/enroll", json={"code": code, "installation_id": "panic-phone", "platform": "ios"})
    victim = {"Authorization": "Bearer " + app.raise_for_status().json()["access_token"]}

    context, page, seen = open_page(chromium, c)
    try:
        sign_in(page, c.operator_token)
        assert page.is_hidden("#flood-banner")
        at = datetime.now(timezone.utc) - timedelta(seconds=2)
        raw, headers = signed(c.supplier["key_id"], c.supplier["secret"], {"events": [
            {"serial": s, "recorded_at": at.isoformat(), "type": "strap_tamper"} for s in serials]})
        r = h.post("/v1/ingest/events", content=raw, headers=headers)
        assert r.status_code == 200, r.text
        panic = h.post("/v1/me/panic", headers=victim, json={"recorded_at": datetime.now(timezone.utc).isoformat()})
        panic_id = panic.raise_for_status().json()["alert_id"]

        page.wait_for_selector("#flood-banner:not([hidden])", timeout=10_000)
        wait_js(page, f"Number(document.documentElement.dataset.flood) >= {TAGS + 1}", timeout=10)
        causes = page.locator("#flood-causes li")
        assert causes.count() == 1 and causes.first.get_attribute("data-cause") == "device_event:strap_tamper"
        assert f"{TAGS} ×" in causes.first.inner_text() and "strap tampered" in causes.first.inner_text()
        assert page.is_visible(f"#flood-real button[data-alert-id='{panic_id}']")
        assert_contrast(page, "#flood-banner", at_least=3)
        page.screenshot(path=str(artifacts / "console-flood.png"), full_page=True)

        # The load view, by keyboard: the tab, then its plots and tables.
        page.focus("#views [data-view='load']")
        page.keyboard.press("Enter")
        page.wait_for_selector("#load[data-loaded]", timeout=5_000)
        bars = page.locator("#hours-chart svg g.bar")
        assert bars.count() == 24
        assert int(bars.last.get_attribute("data-value")) >= TAGS + 1
        assert page.locator("#hours-chart svg rect.value").count() == 24
        recent = page.locator("#recent-chart svg g.bar")
        assert recent.count() == 2 and int(recent.first.get_attribute("data-value")) == TAGS
        assert f"{TAGS + 1} open" in page.inner_text("#load-open")
        assert_labelled(page, "#load")
        assert_contrast(page, "#load")
        page.screenshot(path=str(artifacts / "console-load.png"), full_page=True)

        # The panic is one click from the banner, above the flood.
        page.click(f"#flood-real button[data-alert-id='{panic_id}']")
        page.wait_for_selector("#reason-dialog[open]", timeout=5_000)
        assert not seen["errors"], seen["errors"]
        assert not seen["external"], seen["external"]
    finally:
        context.close()
    for name in ("console-flood.png", "console-load.png"):
        assert_screenshot(artifacts / name)
