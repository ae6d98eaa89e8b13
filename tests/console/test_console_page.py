"""The console page as files: served from the package, nothing from elsewhere, no inline script, both languages
complete. Fast: the app is built without its lifespan (no database); the browser test is test_console_browser.py."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.console import MESSAGES, PDOK_BRT, STATIC, vendor
from api.alerts.lifecycle import OUTCOMES
from api.platform.settings import Settings

SVG_NS = "http://www.w3.org/2000/svg"  # a namespace name, never fetched


@pytest.fixture(scope="module")
def page_client() -> TestClient:
    return TestClient(create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/none"), run_engine=False))


def test_console_page_is_served_under_the_csp(page_client: TestClient) -> None:
    r = page_client.get("/console")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    html = r.text
    # Every script is a file: no inline code, no inline handlers, no style attributes or blocks (CSP forbids them).
    for tag in re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S):
        assert tag.strip() == ""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert " style=" not in html and "<style" not in html
    assert page_client.get("/console/").status_code in (200, 308)


def _references(html: str) -> set[str]:
    return set(re.findall(r'(?:src|href)="([^"]+)"', html))


def test_every_asset_is_local_and_served(page_client: TestClient) -> None:
    html = (STATIC / "index.html").read_text()
    refs = {r for r in _references(html) if r != "data:,"}
    imports = set()
    for js in STATIC.glob("*.js"):
        imports |= {"/console/static/" + m.lstrip("./") for m in re.findall(r'from\s+"(\./[^"]+)"', js.read_text())}
    assert refs and imports
    for ref in refs | imports:
        assert ref.startswith("/console/"), ref
        r = page_client.get(ref)
        assert r.status_code == 200, ref
        expected = {"js": "text/javascript", "mjs": "text/javascript", "css": "text/css"}[ref.rsplit(".", 1)[1]]
        assert r.headers["content-type"].startswith(expected), ref
    # No address outside the project anywhere in the page's own code (the tile source comes from config.json; the
    # vendored libraries only name their authors' sites in comments and attributions, test_vendored_files_*).
    for f in [p for p in STATIC.iterdir() if p.is_file()]:
        text = f.read_text().replace(SVG_NS, "")
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I), f.name


def test_static_route_serves_only_the_package_files(page_client: TestClient) -> None:
    assert page_client.get("/console/static/nope.js").status_code == 404
    assert page_client.get("/console/static/..%2F__init__.py").status_code == 404
    assert page_client.get("/console/static/__init__.py").status_code == 404
    assert page_client.get("/console/messages/xx.json").json()["queue.title"] == "Alert queue"


def test_catalogues_are_complete_in_both_languages() -> None:
    en = json.loads((MESSAGES / "en.json").read_text())
    nl = json.loads((MESSAGES / "nl.json").read_text())
    assert set(en) == set(nl)
    assert all(v.strip() for v in list(en.values()) + list(nl.values()))
    for key in en:  # placeholders agree
        assert set(re.findall(r"\{(\w+)\}", en[key])) == set(re.findall(r"\{(\w+)\}", nl[key])), key
    html = (STATIC / "index.html").read_text()
    used = set(re.findall(r'data-i18n(?:-placeholder|-title|-aria)?="([^"]+)"', html))
    for js in STATIC.glob("*.js"):
        used |= set(re.findall(r'\bt\("([a-z_]+\.[a-z_.]+)"\s*[,)]', js.read_text()))  # literal keys only
    missing = sorted(k for k in used if k not in en)
    assert not missing, missing
    for outcome in OUTCOMES:  # every outcome the resolve button offers has words in both languages
        assert f"outcome.{outcome}" in en


def test_config_names_tiles_and_the_optional_endpoints(page_client: TestClient,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = page_client.get("/console/config.json").json()
    assert config["tile_url"] == PDOK_BRT and config["ack_deadline_s"] == 60
    assert config["outcomes"] == list(OUTCOMES)
    assert config["features"]["notes"] is True  # part of the alerts router itself
    assert set(config["features"]) == {"track", "escalate", "message_victim", "notes", "assignments"}
    monkeypatch.setenv("AFSTAND_CONSOLE_TILE_URL", "")
    monkeypatch.setenv("AFSTAND_CONSOLE_ACK_DEADLINE_S", "90")
    config = page_client.get("/console/config.json").json()
    assert config["tile_url"] is None and config["ack_deadline_s"] == 90


def test_package_data_ships_the_page() -> None:
    """pyproject's package-data must carry every file of the page, the vendored ones included, into a non-editable
    install (setuptools' patterns do not descend into folders by themselves)."""
    config = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["api.console"]
    package = STATIC.parent
    files = [p.relative_to(package).as_posix() for p in list(STATIC.rglob("*")) + list(MESSAGES.iterdir()) if p.is_file()]
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, pat) and f.count("/") == pat.count("/") for pat in patterns)]
    assert files and not unshipped, unshipped
    assert {p.suffix for p in STATIC.iterdir() if p.is_file()} <= {".html", ".js", ".css"}


def test_vendored_files_match_the_lock() -> None:
    """Offline: every file in static/vendor/ is the one its locked package holds (api/console/vendor.py)."""
    assert vendor.check() == []
    pins = json.loads(vendor.PACKAGE_JSON.read_text())["dependencies"]
    assert pins["leaflet"] == "1.9.4" and "@geoman-io/leaflet-geoman-free" in pins


def test_vendor_check_notices_a_changed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "vendor"
    shutil.copytree(vendor.VENDOR, copy)
    monkeypatch.setattr(vendor, "VENDOR", copy)
    monkeypatch.setattr(vendor, "MANIFEST", copy / "MANIFEST.json")
    assert vendor.check() == []
    (copy / "leaflet.js").write_text((copy / "leaflet.js").read_text() + "\n// edited by hand\n")
    (copy / "extra.js").write_text("alert(1)")
    problems = vendor.check()
    assert any("leaflet.js differs from leaflet@1.9.4" in p for p in problems), problems
    assert any("extra.js" in p for p in problems), problems
