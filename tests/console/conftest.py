"""A real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against a real ``afstand serve``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from api.auth.principals import mint_staff_token
from api.cli import create_supplier
from api.platform.settings import Settings
from tests.e2e.server import ServerProcess

CHROMIUM = os.environ.get("AFSTAND_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def run_async(coro: Any) -> Any:
    """Run a coroutine to its end from a test: in a thread, since Playwright's sync API keeps an event loop
    running in the main thread while the browser is open."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def chromium(console_server: "Console") -> Iterator[Any]:
    """The browser, started after the server (and its database) and closed before them: Playwright's sync API
    holds the main thread's event loop while it runs. Missing locally: skipped; missing in CI (CI=true): a
    failure, since .ci/run installs it."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run should have installed Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class Console:
    """The server, its staff tokens and an HTTP client, for a browser test."""

    def __init__(self, server: ServerProcess, supplier: dict[str, str]) -> None:
        self.server = server
        self.base = server.base
        self.supplier = supplier
        self.operator_token = mint_staff_token(server.key, "operator", "console-operator")
        self.admin = {"Authorization": "Bearer " + mint_staff_token(server.key, "admin", "console-admin")}
        self.operator = {"Authorization": "Bearer " + self.operator_token}
        self.http = httpx.Client(base_url=server.base, timeout=15)


@pytest.fixture
def console_server(database_url: str, tmp_path: Path) -> Iterator[Console]:
    # No tile source: the test makes no request outside 127.0.0.1, and the map draws on its plain background.
    server = ServerProcess(database_url, tmp_path / "data", AFSTAND_CONSOLE_TILE_URL="",
                           AFSTAND_ENGINE_POLL_S="0.2", AFSTAND_ENGINE_TICK_S="0.5",
                           AFSTAND_OFFENDER_SILENT_S="3600", AFSTAND_VICTIM_SILENT_S="3600",
                           AFSTAND_AUTO_ESCALATE_AFTER_S="3600", AFSTAND_ORDER_CHECK_S="0")
    server.start()
    try:
        server.wait_ready()
        settings = Settings(database_url=database_url, data_dir=tmp_path / "data", secret_key=server.secret_key)
        supplier = asyncio.run(create_supplier(settings, "console-supplier"))
        console = Console(server, supplier)
        try:
            yield console
        finally:
            console.http.close()
    finally:
        server.stop()
