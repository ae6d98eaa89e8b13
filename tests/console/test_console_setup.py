"""A case director sets up a whole case through the console in a real headless Chromium: the case, its orders, an
exclusion zone drawn with the mouse (first too narrow for GPS: the finding shows before saving; then fixed), a
night curfew with a schedule, the ankle monitor, the victim app's enrollment QR code, which the test decodes from a
screenshot and enrolls a simulated phone with; then a supplier fix inside the zone raises an alert in the queue."""

from __future__ import annotations

import io
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from pyproj import Geod

from api.auth.principals import mint_staff_token
from tests.console.conftest import Console
from tests.console.test_console_browser import open_page, sign_in, wait_js
from tests.helpers import signed

pytestmark = pytest.mark.slow

GEOD = Geod(ellps="WGS84")
STREET = (52.0907, 5.1214)  # lat, lon: the victim's street in Utrecht
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def offset(origin: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(origin[1], origin[0], 90, east_m)
    lon, lat, _ = GEOD.fwd(lon, lat, 0, north_m)
    return lat, lon


def assert_screenshot(path: Path) -> None:
    """A view's screenshot exists and shows something: not a tiny file, not one colour."""
    assert path.is_file(), f"{path.name} was not written"
    assert path.stat().st_size > 5_000, f"{path.name} is too small to show a view"
    with Image.open(path) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 8, f"{path.name} is (nearly) one colour"


def draw_rectangle_polygon(page: Any, corners: list[tuple[float, float]]) -> None:
    """Draw a polygon with geoman's tool as a person would: the tool, a click per corner, Finish."""
    page.click("#zone-map .leaflet-pm-icon-polygon")
    for lat, lon in corners:
        p = page.evaluate(f"window.afstandConsole.zonePoint({lat}, {lon})")
        page.mouse.click(p["x"], p["y"])
        time.sleep(0.1)
    page.click("#zone-map .leaflet-pm-actions-container .action-finish")


def wait_checked(page: Any) -> None:
    page.wait_for_selector("#zone-form[data-checked='done']", timeout=5_000)


def test_case_director_sets_up_a_case_and_the_victim_enrolls(chromium: Any, console_server: Console,
                                                           artifacts: Path) -> None:
    c = console_server
    director_token = mint_staff_token(c.server.key, "case_director", "cd-anna")
    c.http.post("/v1/staff", headers=c.admin, json={
        "sub": "pol-sanne", "display_name": "Sanne de Vries", "agency": "police", "role_title": "wijkagent",
    }).raise_for_status()
    reference = "SETUP-1"
    serial = "SETUP-TAG-1"
    context, page, seen = open_page(chromium, c)
    try:
        sign_in(page, director_token)
        page.click("#views [data-view='setup']")
        page.wait_for_selector("#setup:not([hidden])")

        # The case, with the distances.
        page.fill("#case-reference", reference)
        page.fill("#case-victim", "V.")
        page.fill("#case-offender", "O.")
        page.fill("#case-warn", "1000")
        page.fill("#case-alert", "500")
        page.click("#case-form button[type=submit]")
        page.wait_for_selector("#case-editor:not([hidden])[data-case-id]")
        case_id = page.get_attribute("#case-editor", "data-case-id")
        assert reference in page.inner_text("#editor-title")
        assert "1.00 km" in page.inner_text("#prox-current")

        # Its orders: a zone ban and a curfew, from today for 60 days.
        until = (date.today() + timedelta(days=60)).isoformat()
        for kind, ref in (("exclusion_zone", f"{reference}-EZ"), ("inclusion_zone", f"{reference}-CF")):
            page.select_option("#order-kind", kind)
            page.fill("#order-reference", ref)
            page.fill("#order-until", until)
            page.click("#order-form button[type=submit]")
            page.wait_for_selector(f"#editor-orders tr:has-text('{ref}')")

        # Zoom the drawing map in on the street (the map's own buttons), then draw a strip 60 m wide.
        for _ in range(3):
            page.click("#zone-map .leaflet-control-zoom-in")
            time.sleep(0.4)
        assert page.evaluate("window.afstandConsole.zonePoint(0, 0).zoom") == 16
        narrow = [offset(STREET, e, n) for e, n in ((-150, -30), (150, -30), (150, 30), (-150, 30))]
        draw_rectangle_polygon(page, narrow)
        page.wait_for_selector("#zone-form[data-parts='1']")
        wait_checked(page)
        # The finding shows before anything is saved.
        page.wait_for_selector("#zone-findings .finding[data-code='zone_smaller_than_gps_accuracy']")
        assert "GPS" in page.inner_text("#zone-findings")
        assert c.http.get(f"/v1/cases/{case_id}/zones", headers=c.admin).json()["items"] == []
        page.screenshot(path=str(artifacts / "console-setup-finding.png"), full_page=True)

        # Fixed: the strip removed, the whole block drawn instead; the finding goes.
        page.click("#shapes-clear")
        wide = [offset(STREET, e, n) for e, n in ((-200, -130), (200, -130), (200, 130), (-200, 130))]
        draw_rectangle_polygon(page, wide)
        wait_checked(page)
        page.wait_for_selector("#zone-findings .findings-none")
        page.fill("#zone-name", "Victim's street")
        page.select_option("#zone-kind", "exclusion")
        page.select_option("#zone-order", label=f"{reference}-EZ (exclusion zone)")
        page.fill("#zone-buffer", "50")
        page.click("#zone-save")
        page.wait_for_selector("#editor-zones .zone-card.exclusion")

        # The curfew, by keyboard: a circle by its centre, inclusion, nights on days other than today and yesterday.
        home = offset(STREET, 2500, 0)
        page.fill("#circle-lat", str(home[0]))
        page.fill("#circle-lon", str(home[1]))
        page.fill("#circle-radius", "250")
        page.click("#circle-add")
        page.fill("#zone-name", "Home at night")
        page.select_option("#zone-kind", "inclusion")
        page.select_option("#zone-order", label=f"{reference}-CF (inclusion zone)")
        page.fill("#zone-buffer", "0")
        page.uncheck("#zone-always")
        today = datetime.now(ZoneInfo("Europe/Amsterdam")).weekday()
        days = [d for i, d in enumerate(DAYS) if i not in (today, (today - 1) % 7)]
        for d in days:
            page.check(f"#zone-days input[data-day='{d}']")
        page.fill("#zone-start", "22:00")
        page.fill("#zone-end", "06:00")
        wait_checked(page)
        page.click("#zone-save")
        page.wait_for_selector("#editor-zones .zone-card.inclusion")
        zones = c.http.get(f"/v1/cases/{case_id}/zones", headers=c.admin).raise_for_status().json()["items"]
        by_kind = {z["kind"]: z for z in zones}
        assert by_kind["exclusion"]["geometry"]["type"] == "Polygon" and by_kind["exclusion"]["buffer_m"] == 50
        assert by_kind["inclusion"]["geometry"]["type"] == "Circle"
        assert by_kind["inclusion"]["schedule"]["windows"] == [{"days": days, "start": "22:00", "end": "06:00"}]

        # The ankle monitor and a contact person.
        page.fill("#device-supplier", c.supplier["key_id"])
        page.fill("#device-serial", serial)
        page.click("#device-form button[type=submit]")
        page.wait_for_selector(f"#editor-devices tr[data-role='offender_tag']:has-text('{serial}')")
        page.select_option("#assign-agency", "police")
        page.select_option("#assign-function", "contact_person")
        page.select_option("#assign-staff", label="Sanne de Vries (police, wijkagent)")
        page.fill("#assign-how", "0900-8844")
        page.click("#assign-form button[type=submit]")
        page.wait_for_selector("#editor-contacts:has-text('Sanne de Vries')")
        page.screenshot(path=str(artifacts / "console-setup.png"), full_page=True)

        # The enrollment code: on screen as a QR code and as text, counting down.
        page.click("#enroll-issue")
        page.wait_for_selector("#enroll-box:not([hidden]) #enroll-qr[src^='data:image/']")
        code = page.inner_text("#enroll-code").strip()
        first = page.inner_text("#enroll-expiry")
        wait_js(page, f"document.querySelector('#enroll-expiry').textContent !== {first!r}", timeout=3)
        png = page.locator("#enroll-qr").screenshot(path=str(artifacts / "console-enroll-qr.png"))
        import zxingcpp

        decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]
        assert decoded == [code], decoded
        page.screenshot(path=str(artifacts / "console-enroll.png"), full_page=True)

        # A phone enrolls with the decoded code; the page shows when.
        app = c.http.post("/v1/me/enroll", json={"code": decoded[0], "installation_id": "setup-phone", "platform": "ios"})
        assert app.status_code == 201, app.text
        page.wait_for_selector("#enroll-done:not([hidden])", timeout=8_000)
        page.wait_for_selector("#editor-devices tr[data-role='victim_app']")

        # The tag reports from inside the street: an exclusion alert in the monitoring room's queue.
        inside = offset(STREET, 0, 0)
        now = datetime.now(timezone.utc)
        positions = [{"serial": serial, "recorded_at": (now - timedelta(seconds=30 - 10 * i)).isoformat(),
                      "lat": inside[0], "lon": inside[1], "accuracy_m": 8} for i in range(3)]
        raw, headers = signed(c.supplier["key_id"], c.supplier["secret"], {"positions": positions})
        r = c.http.post("/v1/ingest/positions", content=raw, headers=headers)
        assert r.status_code == 200 and {x["status"] for x in r.json()["results"]} == {"accepted"}, r.text
        page.click("#views [data-view='room']")
        page.wait_for_selector(f"#queue-body tr[data-case-reference='{reference}'][data-kind='zone_exclusion']",
                               timeout=10_000)
        page.screenshot(path=str(artifacts / "console-setup-queue.png"), full_page=True)
        assert not seen["errors"], seen["errors"]
        assert not seen["external"], seen["external"]
    finally:
        context.close()
    for name in ("console-setup-finding.png", "console-setup.png", "console-enroll.png",
                 "console-setup-queue.png"):
        assert_screenshot(artifacts / name)


def test_a_blocking_finding_needs_a_reason_before_the_zone_is_saved(chromium: Any, console_server: Console,
                                                                  artifacts: Path) -> None:
    c = console_server
    director = mint_staff_token(c.server.key, "case_director", "cd-override")
    headers = {"Authorization": "Bearer " + director}
    cid = c.http.post("/v1/cases", headers=headers, json={
        "reference": "OVERRIDE-1", "proximity": None, "victim": {"display_name": "V", "language": "nl"},
        "offender": {"display_name": "O"}}).raise_for_status().json()["id"]
    c.http.post(f"/v1/cases/{cid}/orders", headers=headers, json={
        "kind": "exclusion_zone", "reference": "OVR-EZ", "valid_from": datetime.now(timezone.utc).isoformat(),
        "valid_until": (datetime.now(timezone.utc) + timedelta(days=60)).isoformat()}).raise_for_status()
    home = offset(STREET, 100, 0)  # the offender lives in the victim's street
    c.http.put(f"/v1/cases/{cid}/addresses", headers=headers,
               json={"offender_home": {"lat": home[0], "lon": home[1]}}).raise_for_status()
    context, page, seen = open_page(chromium, c)
    try:
        sign_in(page, director)
        page.click("#views [data-view='setup']")
        page.click(f"#case-list button[data-case-id='{cid}']")
        page.wait_for_selector(f"#case-editor[data-case-id='{cid}']")
        # A circle over the street, by its centre (keyboard): it covers the offender's home.
        page.fill("#circle-lat", str(STREET[0]))
        page.fill("#circle-lon", str(STREET[1]))
        page.fill("#circle-radius", "300")
        page.click("#circle-add")
        page.fill("#zone-name", "Street")
        page.select_option("#zone-kind", "exclusion")
        wait_checked(page)
        page.wait_for_selector("#zone-findings .finding.severity-blocking[data-code='zone_contains_offender_home']")
        assert page.is_visible("#override-label") and page.is_disabled("#zone-save")
        # Enter in a field does not save it either: the default button is disabled until a reason is given.
        page.focus("#zone-name")
        page.keyboard.press("Enter")
        page.screenshot(path=str(artifacts / "console-setup-override.png"), full_page=True)
        assert c.http.get(f"/v1/cases/{cid}/zones", headers=headers).json()["items"] == []
        # A blank reason is no reason.
        page.fill("#zone-override", "   ")
        assert page.is_disabled("#zone-save")
        page.fill("#zone-override", "Court order: the ban includes his street; he moves out this week")
        assert page.is_enabled("#zone-save")
        page.click("#zone-save")
        page.wait_for_selector("#editor-zones .zone-card.exclusion", timeout=5_000)
        assert not seen["errors"], seen["errors"]
    finally:
        context.close()
    zones = c.http.get(f"/v1/cases/{cid}/zones", headers=headers).raise_for_status().json()["items"]
    assert len(zones) == 1 and any(f["code"] == "zone_contains_offender_home" for f in zones[0]["findings"])
    audit = c.http.get("/v1/audit", headers={"Authorization": "Bearer " + mint_staff_token(c.server.key, "auditor", "aud")},
                       params={"case_id": cid}).raise_for_status().json()["items"]
    assert any((e.get("reason") or "").startswith("Court order") for e in audit if e["action"] == "zone.create"), audit
    assert_screenshot(artifacts / "console-setup-override.png")
