"""The operator works a whole incident from the console page in a real headless Chromium: sign in, an alert
raised through the supplier API shows in the queue within 2 s, open it (an audited read with a reason), see
zones and fixes drawn, read the case, acknowledge, note, message the victim, escalate, resolve, and find every
step on the alert's history through the API. Screenshots go to tests/artifacts/ (CI artifacts, not committed)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from pyproj import Geod

from tests.console.conftest import Console, run_async
from tests.helpers import signed

pytestmark = pytest.mark.slow

GEOD = Geod(ellps="WGS84")
HOME = (5.1214, 52.0907)  # lon, lat: the victim's street in Utrecht
STREET = [[5.1199, 52.0901], [5.1229, 52.0901], [5.1229, 52.0913], [5.1199, 52.0913], [5.1199, 52.0901]]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _east(metres: float, origin: tuple[float, float] = HOME) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], 90, metres)
    return lon, lat


def setup_case(c: Console, reference: str, serial: str, origin: tuple[float, float] = HOME) -> dict[str, Any]:
    """A case as case staff set it up: contact ban 1000/500 m, an exclusion zone (the victim's street, 100 m
    buffer), a night-time inclusion zone around the offender's home, the tag, the victim's app, a contact person."""
    h = c.http
    case = h.post("/v1/cases", headers=c.admin, json={
        "reference": reference, "proximity": {"warn_m": 1000, "alert_m": 500},
        "victim": {"display_name": "V", "language": "nl"}, "offender": {"display_name": "O"},
    }).raise_for_status().json()
    cid = case["id"]
    now = datetime.now(timezone.utc)
    ban = h.post(f"/v1/cases/{cid}/orders", headers=c.admin, json={
        "kind": "contact_ban", "reference": f"{reference}-OM-1", "valid_from": (now - timedelta(days=10)).isoformat(),
        "valid_until": (now + timedelta(days=40)).isoformat(),
    }).raise_for_status().json()
    h.post(f"/v1/cases/{cid}/orders", headers=c.admin, json={
        "kind": "behavioural_order", "reference": f"{reference}-GA-1", "valid_from": (now - timedelta(days=5)).isoformat(),
        "valid_until": (now + timedelta(days=9)).isoformat(),
    }).raise_for_status()
    street = [[lon - HOME[0] + origin[0], lat - HOME[1] + origin[1]] for lon, lat in STREET]
    h.post(f"/v1/cases/{cid}/zones", headers=c.admin, json={
        "order_id": ban["id"], "name": "Victim's street", "kind": "exclusion",
        "geometry": {"type": "Polygon", "coordinates": [street]}, "buffer_m": 100, "schedule": None,
    }).raise_for_status()
    # In force only on days that are neither today nor yesterday (Amsterdam), so it raises nothing during the test.
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).weekday()
    days = [d for i, d in enumerate(DAYS) if i not in (today, (today - 1) % 7)]
    h.post(f"/v1/cases/{cid}/zones", headers=c.admin, json={
        "order_id": ban["id"], "name": "Offender's home at night", "kind": "inclusion",
        "geometry": {"type": "Circle", "center": list(_east(2500, origin)), "radius_m": 250}, "buffer_m": 0,
        "schedule": {"timezone": "Europe/Amsterdam", "windows": [{"days": days, "start": "22:00", "end": "06:00"}]},
    }).raise_for_status()
    h.post(f"/v1/cases/{cid}/devices", headers=c.admin, json={
        "role": "offender_tag", "supplier_key_id": c.supplier["key_id"], "serial": serial,
    }).raise_for_status()
    code = h.post(f"/v1/cases/{cid}/enrollments", headers=c.admin).raise_for_status().json()["code"]
    app = h.post("/v1/me/enroll", json={"code": code, "installation_id": f"i-{serial}", "platform": "android"})
    app.raise_for_status()
    member = h.post("/v1/staff", headers=c.admin, json={
        "sub": f"cp-{serial}", "display_name": "Sanne de Vries", "agency": "police", "role_title": "wijkagent",
    }).raise_for_status().json()
    h.put(f"/v1/cases/{cid}/assignments", headers=c.admin, json={
        "agency": "police", "function": "contact_person", "staff_id": member["id"],
        "how_to_reach": "0900-8844, ask for Sanne", "when_to_reach": "weekdays 9-17",
    }).raise_for_status()
    return {"case_id": cid, "reference": reference, "serial": serial, "origin": origin,
            "victim": {"Authorization": "Bearer " + app.json()["access_token"]}}


def send_approach(c: Console, s: dict[str, Any], distances: list[float], start: datetime) -> None:
    """The victim at home, then the offender's tag closing in at car speed: victim fixes first, so the engine
    pairs every tag fix; the tag's fixes come in one supplier batch."""
    origin = s["origin"]
    times = [start + timedelta(seconds=15 * i) for i in range(len(distances))]
    r = c.http.post("/v1/me/positions", headers=s["victim"], json={"positions": [
        {"recorded_at": (t - timedelta(seconds=3)).isoformat(), "lat": origin[1], "lon": origin[0], "accuracy_m": 12}
        for t in times]})
    assert r.status_code == 200 and {x["status"] for x in r.json()["results"]} == {"accepted"}, r.text
    positions = []
    for t, d in zip(times, distances):
        lon, lat = _east(d, origin)
        positions.append({"serial": s["serial"], "recorded_at": t.isoformat(), "lat": lat, "lon": lon, "accuracy_m": 8})
    raw, headers = signed(c.supplier["key_id"], c.supplier["secret"], {"positions": positions})
    r = c.http.post("/v1/ingest/positions", content=raw, headers=headers)
    assert r.status_code == 200 and {x["status"] for x in r.json()["results"]} == {"accepted"}, r.text


def open_page(chromium: Any, c: Console, locale: str = "en-GB") -> tuple[Any, Any, dict[str, list]]:
    context = chromium.new_context(viewport={"width": 1600, "height": 1000}, locale=locale)
    page = context.new_page()
    seen: dict[str, list] = {"external": [], "errors": []}
    local = (c.base, c.base.replace("http://", "ws://"), "data:")
    page.on("request", lambda r: None if r.url.startswith(local) else seen["external"].append(r.url))
    page.on("websocket", lambda ws: None if ws.url.startswith(local) else seen["external"].append(ws.url))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.goto(c.base + "/console")
    page.wait_for_selector("html[data-ready='1']")
    return context, page, seen


def sign_in(page: Any, token: str) -> None:
    page.fill("#token-input", token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#conn[data-state='live']", timeout=10_000)


def wait_js(page: Any, expression: str, timeout: float = 5.0) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function evaluates its predicate with
    eval, which the page's CSP rightly forbids; evaluate goes through the DevTools protocol instead.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.05)


def row_selector(alert_id: str) -> str:
    return f"#queue-body tr[data-alert-id='{alert_id}']"


def test_operator_works_an_incident_from_the_console(chromium: Any, console_server: Console, artifacts,
                                                     database_url: str) -> None:  # type: ignore[no-untyped-def]
    c = console_server
    s = setup_case(c, "CONSOLE-1", "CONSOLE-TAG-1")
    context, page, seen = open_page(chromium, c)
    try:
        # Sign in with the staff token; it is kept for this tab only.
        sign_in(page, c.operator_token)
        assert page.evaluate("sessionStorage.getItem('afstand.token')") == c.operator_token
        assert page.inner_text("#queue-empty").strip()

        # An alert raised through the supplier API appears in the queue within 2 s of the supplier's 200.
        send_approach(c, s, [1300, 900, 600, 400, 300], datetime.now(timezone.utc) - timedelta(seconds=80))
        sent = time.monotonic()
        page.wait_for_selector(f"#queue-body tr[data-case-reference='{s['reference']}']", timeout=2_000)
        latency = time.monotonic() - sent
        assert latency < 2.0
        alert_id = page.wait_for_selector(
            f"#queue-body tr[data-case-reference='{s['reference']}'][data-level='violation']", timeout=5_000,
        ).get_attribute("data-alert-id")
        row = row_selector(alert_id)
        assert page.get_attribute(row, "data-kind") == "proximity" and page.get_attribute(row, "data-status") == "open"
        cells = page.inner_text(row)
        assert "CONSOLE-1" in cells and "Too close to the victim" in cells and "violation" in cells
        # A new violation sounds the alarm and flashes the row.
        assert int(page.evaluate("window.afstandConsole.alarms")) >= 1
        page.wait_for_selector(row + ".flash")
        # The timer runs.
        timer = page.inner_text(row_selector(alert_id) + " [data-role='timer']")
        wait_js(page, f"document.querySelector(\"{row_selector(alert_id)} [data-role='timer']\").textContent !== {timer!r}")
        page.screenshot(path=str(artifacts / "console-queue.png"), full_page=True)

        # Open it: the operator picks a reason; the positions are read with it (audited).
        page.click(row_selector(alert_id))
        page.wait_for_selector("#reason-dialog[open]")
        page.select_option("#reason-select", "handling_alert")
        page.click("#reason-confirm")
        page.wait_for_selector(f"#incident[data-alert-id='{alert_id}']")
        try:
            page.wait_for_selector("#map svg .fix.offender", state="attached", timeout=10_000)
        except Exception:
            pytest.fail(f"no fixes drawn; track: {page.get_attribute('#track-status', 'data-state')}"
                        f" {page.inner_text('#track-status')!r}; errors: {seen['errors']}")
        svg = "#map svg"
        counts = {sel: page.locator(f"{svg} {sel}").count() for sel in (
            ".zone.exclusion", ".zone.inclusion", ".buffer.exclusion", ".fix.offender", ".fix.victim",
            ".accuracy.offender", ".accuracy.victim", ".fix.evidence", ".track.offender", ".ring.alert")}
        assert counts[".zone.exclusion"] == 1 and counts[".zone.inclusion"] == 1 and counts[".buffer.exclusion"] == 1
        assert counts[".fix.offender"] == 5 and counts[".fix.victim"] == 5, counts
        assert counts[".accuracy.offender"] == 5 and counts[".accuracy.victim"] == 5, counts
        assert counts[".fix.evidence"] >= 2 and counts[".track.offender"] == 1 and counts[".ring.alert"] == 1, counts
        assert page.get_attribute(f"{svg} .zone.exclusion", "d").startswith("M")
        # The evidence: distances, confidence, the proving fixes, the late flag.
        evidence = page.inner_text("#evidence")
        assert "Smallest distance" in evidence and "confirmed" in evidence and "Late data" in evidence
        fixes = page.inner_text("#evidence-fixes")
        assert "Offender" in fixes and "from the victim" in fixes and "not loaded" not in fixes
        page.screenshot(path=str(artifacts / "console-incident.png"), full_page=True)

        # The case: orders and the next expiry, zones with findings, devices with last contact, contact persons.
        page.click("[data-tab='case-pane']")
        page.wait_for_selector("#case-pane:not([hidden]) .orders-table")
        assert page.locator(".orders-table tbody tr").count() == 2
        assert "CONSOLE-1-GA-1" in page.inner_text("#next-expiry") and "in 9 days" in page.inner_text("#next-expiry")
        assert page.locator("#case-zones .zone-card").count() == 2
        assert page.locator("#case-zones .findings, #case-zones .findings-none").count() == 2
        devices = page.inner_text("#case-devices")
        assert "ankle monitor" in devices and "CONSOLE-TAG-1" in devices and "victim's app" in devices
        assert page.locator(".devices-table tbody tr").count() == 2
        assert "Sanne de Vries" in page.inner_text("#case-contacts")
        page.screenshot(path=str(artifacts / "console-case.png"), full_page=True)
        page.click("[data-tab='incident-pane']")

        # Work it: acknowledge, call-log note, message the victim, escalate to police, resolve with an outcome.
        page.click("[data-action='acknowledge']")
        page.wait_for_selector("#incident[data-status='acknowledged']")
        page.wait_for_selector(f"{row_selector(alert_id)}[data-status='acknowledged']")
        page.fill("#note-text", "Called the offender; he says he is driving home.")
        page.click("[data-action='note']")
        page.wait_for_selector("#history-body tr[data-change='note']")
        page.select_option("#message-template", "stay_inside")
        page.check("#message-urgent")
        page.click("[data-action='message']")
        page.wait_for_selector("#history-body tr[data-change='victim_messaged']")
        page.fill("#escalate-reason", "offender does not comply")
        page.click("[data-action='escalate']")
        page.click("[data-action='escalate-confirm']")
        page.wait_for_selector("#history-body tr[data-change='escalated_to_police']")
        assert page.is_disabled("[data-action='escalate']")
        page.select_option("#resolve-outcome", "police_dispatched")
        page.fill("#resolve-note", "unit on site in 8 min")
        page.click("[data-action='resolve']")
        page.wait_for_selector("#incident[data-status='resolved']")
        page.wait_for_selector(f"{row_selector(alert_id)}[data-status='resolved']")
        assert page.is_disabled("[data-action='resolve']") and page.is_disabled("[data-action='acknowledge']")
        page.screenshot(path=str(artifacts / "console-resolved.png"), full_page=True)

        assert not seen["errors"], seen["errors"]
        assert not seen["external"], seen["external"]
    finally:
        context.close()

    # Every action is on the alert's history, by this operator, in order.
    alert = c.http.get(f"/v1/alerts/{alert_id}", headers=c.admin).raise_for_status().json()
    assert alert["status"] == "resolved" and alert["outcome"] == "police_dispatched"
    mine = [ch for ch in alert["changes"] if ch["actor"] == "operator:console-operator"]
    assert [ch["change"] for ch in mine] == ["acknowledged", "note", "victim_messaged", "escalated_to_police", "resolved"]
    assert mine[1]["detail"]["note"] == "Called the offender; he says he is driving home."
    assert mine[2]["detail"] == {"template": "stay_inside", "urgent": True}
    assert mine[3]["detail"]["reason"] == "offender does not comply"
    assert mine[4]["detail"] == {"outcome": "police_dispatched", "note": "unit on site in 8 min"}

    # Opening the incident read the positions once, with the operator's reason, in the audit log.
    async def track_reads() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch("SELECT actor, reason FROM audit_log WHERE action = 'track.read'")
        finally:
            await conn.close()

    reads = run_async(track_reads())
    assert len(reads) == 1 and reads[0]["reason"].startswith("handling this alert")
    assert alert_id in reads[0]["reason"] and "console-operator" in reads[0]["actor"]


def test_queue_reconnects_without_missing_changes_and_marks_overdue(chromium: Any, console_server: Console,
                                                                   artifacts) -> None:  # type: ignore[no-untyped-def]
    c = console_server
    first = setup_case(c, "CONSOLE-2", "CONSOLE-TAG-2")
    second = setup_case(c, "CONSOLE-3", "CONSOLE-TAG-3", origin=(5.0500, 52.0500))
    context, page, seen = open_page(chromium, c, locale="nl-NL")
    try:
        # The browser asks for Dutch; the toggle switches to English and back.
        assert page.inner_text("#signin h1").strip() == "Inloggen"
        sign_in(page, c.operator_token)
        assert page.inner_text("#queue-title").strip() == "Meldingenrij"
        page.click("#lang-toggle")
        wait_js(page, "document.querySelector('#queue-title').textContent === 'Alert queue'")
        page.click("#lang-toggle")
        wait_js(page, "document.querySelector('#queue-title').textContent === 'Meldingenrij'")

        send_approach(c, first, [1300, 900, 600, 400, 300], datetime.now(timezone.utc) - timedelta(seconds=80))
        alert_id = page.wait_for_selector("#queue-body tr[data-case-reference='CONSOLE-2'][data-level='violation']",
                                          timeout=5_000).get_attribute("data-alert-id")

        # The stream drops and stays down for 3 s; meanwhile the alert is acknowledged elsewhere and a new one opens.
        page.evaluate("window.afstandConsole.dropStream(3000)")
        wait_js(page, "!window.afstandConsole.connected")
        c.http.post(f"/v1/alerts/{alert_id}/acknowledge", headers=c.operator).raise_for_status()
        send_approach(c, second, [1300, 900, 600, 400, 300], datetime.now(timezone.utc) - timedelta(seconds=80))
        deadline = time.monotonic() + 10
        while not c.http.get("/v1/alerts", headers=c.operator, params={"status": "open"}).json()["items"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert not page.evaluate("window.afstandConsole.connected")
        # Back on the stream after `after=` the last seq it saw: both show, nothing is missed.
        wait_js(page, "window.afstandConsole.connected", timeout=10)
        page.wait_for_selector(f"{row_selector(alert_id)}[data-status='acknowledged']", timeout=5_000)
        page.wait_for_selector("#queue-body tr[data-case-reference='CONSOLE-3'][data-status='open']", timeout=5_000)
        newest = max(a["seq"] for a in c.http.get("/v1/alerts", headers=c.operator).json()["items"])
        wait_js(page, f"window.afstandConsole.lastSeq >= {newest}")

        # Open first, by level, confidence, age; the acknowledged one after every open one.
        statuses = page.eval_on_selector_all("#queue-body tr", "rows => rows.map(r => r.dataset.status)")
        assert statuses.index("acknowledged") > max(i for i, st in enumerate(statuses) if st == "open")

        # A 5 s acknowledgement deadline (set in the page) marks the open alert overdue; not the acknowledged one.
        page.fill("#deadline", "5")
        page.dispatch_event("#deadline", "change")
        overdue = "#queue-body tr[data-case-reference='CONSOLE-3'][data-status='open'].overdue"
        page.wait_for_selector(overdue, timeout=10_000)
        assert "TE LAAT" in page.inner_text(overdue)
        assert "overdue" not in (page.get_attribute(row_selector(alert_id), "class") or "")
        assert int(page.inner_text("#count-overdue")) >= 1
        page.screenshot(path=str(artifacts / "console-queue-overdue-nl.png"), full_page=True)
        assert not seen["errors"], seen["errors"]
        assert not seen["external"], seen["external"]
    finally:
        context.close()


def test_sign_in_refuses_a_bad_token_and_sign_out_forgets_it(chromium: Any, console_server: Console) -> None:
    c = console_server
    context, page, _ = open_page(chromium, c)
    try:
        page.fill("#token-input", "not-a-token")
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("#signin-error:not([hidden])")
        assert "not accepted" in page.inner_text("#signin-error")
        assert page.evaluate("sessionStorage.getItem('afstand.token')") is None
        sign_in(page, c.operator_token)
        page.reload()  # the token survives a reload of the tab
        page.wait_for_selector("#conn[data-state='live']", timeout=10_000)
        page.click("#sign-out")
        page.wait_for_selector("#signin:not([hidden])")
        assert page.evaluate("sessionStorage.getItem('afstand.token')") is None
    finally:
        context.close()
