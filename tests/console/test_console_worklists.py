"""A contact person finds an overdue follow-up in the console's work lists and records the contact; a case director
sees the same case listed where an agency has no contact person; a contact person records, by keyboard, what is
decided about orders ending soon, and the victim's timeline shows it. Real server, real Chromium."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from api.auth.principals import mint_staff_token
from tests.console.a11y import assert_contrast, assert_labelled
from tests.console.conftest import Console
from tests.console.test_console_browser import open_page, sign_in
from tests.console.test_console_setup import assert_screenshot

pytestmark = pytest.mark.slow


def test_contact_person_records_an_overdue_contact_from_the_work_list(chromium: Any, console_server: Console,
                                                                      artifacts: Path) -> None:
    c = console_server
    h = c.http
    case = h.post("/v1/cases", headers=c.admin, json={
        "reference": "WORK-1", "proximity": None, "victim": {"display_name": "V", "language": "nl"},
        "offender": {"display_name": "O"},
    }).raise_for_status().json()
    cid = case["id"]
    member = h.post("/v1/staff", headers=c.admin, json={
        "sub": "cp-work", "display_name": "Sanne de Vries", "agency": "police", "role_title": "wijkagent",
    }).raise_for_status().json()
    h.put(f"/v1/cases/{cid}/assignments", headers=c.admin, json={
        "agency": "police", "function": "contact_person", "staff_id": member["id"],
    }).raise_for_status()
    due = datetime.now(timezone.utc) - timedelta(days=2, hours=1)
    police = h.post(f"/v1/cases/{cid}/contact-agreements", headers=c.admin, json={
        "agency": "police", "every_days": 7, "channel": "phone", "first_due_at": due.isoformat(),
    }).raise_for_status().json()
    h.post(f"/v1/cases/{cid}/contact-agreements", headers=c.admin, json={
        "agency": "victim_support", "every_days": 14, "channel": "phone", "first_due_at": due.isoformat(),
    }).raise_for_status()

    context, page, seen = open_page(chromium, c)
    try:
        # The case director sees both follow-ups, and that victim support has nobody on the case.
        h.put(f"/v1/cases/{cid}/access", headers=c.admin,
              json={"staff_sub": "cd-work", "relation": "case_director"}).raise_for_status()
        sign_in(page, mint_staff_token(c.server.key, "case_director", "cd-work"))
        page.click("#views [data-view='worklists']")
        page.wait_for_selector("#orphan-body tr[data-case-reference='WORK-1']", timeout=5_000)
        assert page.locator("#overdue-body tr[data-case-reference='WORK-1']").count() == 2
        page.click("#sign-out")

        # The contact person sees her own, overdue by two days, and records the call.
        sign_in(page, mint_staff_token(c.server.key, "contact_person", "cp-work"))
        assert page.is_hidden("#views [data-view='setup']")
        page.click("#views [data-view='worklists']")
        row = f"#overdue-body tr[data-agreement-id='{police['id']}']"
        page.wait_for_selector(row, timeout=5_000)
        assert "2 day(s) overdue" in page.inner_text(row)
        assert page.locator("#overdue-body tr[data-agreement-id]").count() == 1
        page.screenshot(path=str(artifacts / "console-worklists.png"), full_page=True)
        page.click(f"{row} button.tool")
        page.wait_for_selector(row, state="detached", timeout=5_000)
        assert "WORK-1" in page.inner_text("#worklist-status")
        assert not seen["errors"], seen["errors"]
        assert not seen["external"], seen["external"]
    finally:
        context.close()
    agreements = h.get(f"/v1/cases/{cid}/contact-agreements", headers=c.admin).raise_for_status().json()["items"]
    mine = next(a for a in agreements if a["id"] == police["id"])
    assert mine["last_contact_at"] is not None
    assert datetime.fromisoformat(mine["next_due_at"]) > datetime.now(timezone.utc) + timedelta(days=6)
    assert_screenshot(artifacts / "console-worklists.png")


def test_contact_person_decides_on_ending_orders_from_the_work_lists_by_keyboard(chromium: Any, console_server: Console,
                                                                              artifacts: Path) -> None:
    c = console_server
    h = c.http
    now = datetime.now(timezone.utc)
    case = h.post("/v1/cases", headers=c.admin, json={
        "reference": "WORK-2", "proximity": None, "victim": {"display_name": "V", "language": "en"},
        "offender": {"display_name": "O"},
    }).raise_for_status().json()
    cid = case["id"]
    member = h.post("/v1/staff", headers=c.admin, json={
        "sub": "cp-orders", "display_name": "Fatima El Idrissi", "agency": "prosecutor", "role_title": "slachtoffercoördinator",
    }).raise_for_status().json()
    h.put(f"/v1/cases/{cid}/assignments", headers=c.admin, json={
        "agency": "prosecutor", "function": "contact_person", "staff_id": member["id"],
    }).raise_for_status()
    agreement = h.post(f"/v1/cases/{cid}/contact-agreements", headers=c.admin, json={
        "agency": "prosecutor", "every_days": 14, "channel": "phone",
        "first_due_at": (now - timedelta(days=3)).isoformat(),
    }).raise_for_status().json()
    orders = {}
    for ref, days in (("OM-BAN", 7), ("OM-GA", 10)):
        orders[ref] = h.post(f"/v1/cases/{cid}/orders", headers=c.admin, json={
            "kind": "contact_ban" if ref == "OM-BAN" else "behavioural_order", "reference": ref,
            "valid_from": (now - timedelta(days=30)).isoformat(), "valid_until": (now + timedelta(days=days)).isoformat(),
        }).raise_for_status().json()
    # The tag was paired but never reported: it is on the devices list.
    h.post(f"/v1/cases/{cid}/devices", headers=c.admin, json={
        "role": "offender_tag", "supplier_key_id": c.supplier["key_id"], "serial": "WORK-2-TAG",
    }).raise_for_status()
    # The victim's app, to read her timeline afterwards.
    code = h.post(f"/v1/cases/{cid}/enrollments", headers=c.admin).raise_for_status().json()["code"]
    app = h.post("/v1/me/enroll", json={"code": code, "installation_id": "work-2-phone", "platform": "android"})
    victim = {"Authorization": "Bearer " + app.raise_for_status().json()["access_token"]}

    context, page, seen = open_page(chromium, c)
    try:
        sign_in(page, mint_staff_token(c.server.key, "contact_person", "cp-orders"))
        page.click("#views [data-view='worklists']")
        ban_row = f"#ending-body tr[data-order-id='{orders['OM-BAN']['id']}']"
        page.wait_for_selector(ban_row, timeout=5_000)
        page.wait_for_selector(f"#overdue-body tr[data-agreement-id='{agreement['id']}']")
        page.wait_for_selector("#attention-body tr[data-case-reference='WORK-2']")
        assert "in 7 day(s)" in page.inner_text(ban_row) and "nothing decided" in page.inner_text(ban_row)
        assert "never" in page.inner_text("#attention-body tr[data-case-reference='WORK-2']")
        assert_labelled(page, "#worklists")
        assert_contrast(page, "#worklists")
        page.screenshot(path=str(artifacts / "console-worklists-orders.png"), full_page=True)

        # Keyboard only: the row's button, the choice (arrow keys move between the radio buttons), the reason, Enter.
        page.focus(f"{ban_row} button.tool")
        page.keyboard.press("Enter")
        page.wait_for_selector("#decision-form:not([hidden])")
        assert page.evaluate("document.activeElement.id") == "decision-extend"
        page.keyboard.press("ArrowDown")
        assert page.is_checked("#decision-let-go") and page.is_visible("#decision-reason")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "decision-reason"
        page.keyboard.type("Victim moved abroad; the OM ends the ban")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"{ban_row}.decision-let_go", timeout=5_000)
        assert "Victim moved abroad" in page.inner_text(ban_row)
        assert page.evaluate("document.activeElement.closest('tr') && document.activeElement.closest('tr').dataset.orderId") \
            == orders["OM-BAN"]["id"]  # back on the row it was about

        # The behavioural order is extended by 60 days (the most a term may run is 90).
        ga_row = f"#ending-body tr[data-order-id='{orders['OM-GA']['id']}']"
        page.click(f"{ga_row} button.tool")
        new_until = (now + timedelta(days=70)).date().isoformat()
        page.fill("#decision-until", new_until)
        page.fill("#decision-reference", "OM-GA-EXT-1")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"{ga_row}.decision-extended", timeout=5_000)
        assert "OM-GA-EXT-1" in page.inner_text(ga_row)

        # The overdue call, by keyboard too.
        page.focus(f"#overdue-body tr[data-agreement-id='{agreement['id']}'] button.tool")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#overdue-body tr[data-agreement-id='{agreement['id']}']", state="detached", timeout=5_000)
        page.screenshot(path=str(artifacts / "console-worklists-decided.png"), full_page=True)

        # One click from the case: read only for a contact person.
        page.click(f"{ga_row} button.link")
        page.wait_for_selector(f"#case-editor[data-case-id='{cid}']", timeout=5_000)
        assert "WORK-2" in page.inner_text("#editor-title")
        assert page.is_hidden("#order-form") and page.is_hidden("#zone-form")
        assert page.is_visible(f"#editor-orders tr[data-order-id='{orders['OM-GA']['id']}']")
        assert not seen["errors"], seen["errors"]
        assert not seen["external"], seen["external"]
    finally:
        context.close()

    order = {o["id"]: o for o in h.get(f"/v1/cases/{cid}/orders", headers=c.admin).json()["items"]}
    assert order[orders["OM-BAN"]["id"]]["let_go_reason"] == "Victim moved abroad; the OM ends the ban"
    assert order[orders["OM-GA"]["id"]]["extension_count"] == 1
    # Her timeline: both decisions, in her words, and never the staff's reason.
    events = h.get("/v1/me/timeline", headers=victim).raise_for_status().json()["items"]
    kinds = [e["kind"] for e in events]
    assert "order_let_go" in kinds and "order_extended" in kinds, kinds
    assert not any("abroad" in (e["title"] + (e["note"] or "")) for e in events)
    for name in ("console-worklists-orders.png", "console-worklists-decided.png"):
        assert_screenshot(artifacts / name)
