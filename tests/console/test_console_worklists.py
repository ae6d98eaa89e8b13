"""A contact person finds an overdue follow-up in the console's work lists and records the contact; a case director
sees the same case listed where an agency has no contact person. Real server, real Chromium."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from api.auth.principals import mint_staff_token
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
        page.click(f"{row} button")
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
