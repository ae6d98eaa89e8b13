"""The embedded PostgreSQL's own log carries no coordinates: failing statements with coordinates in their text,
in their parameters and in the failing row are logged by their error message only (api/platform/database.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from api.platform.database import embedded_url

LAT, LON = "52.987654", "4.123457"  # distinctive: found nowhere else in the suite


async def _provoke(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE fixes_under_test (lat float8 CHECK (lat < 0), lon float8)")
        # Bound parameters, and a DETAIL ("Failing row contains (…)") that would repeat them.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO fixes_under_test VALUES ($1, $2)", float(LAT), float(LON))
        # Coordinates in the statement text (a zone's geometry), which a STATEMENT line would repeat.
        with pytest.raises(asyncpg.DivisionByZeroError):
            await conn.execute(f"SELECT ('{{\"type\": \"Circle\", \"center\": [{LON}, {LAT}]}}'::jsonb"
                               f" -> 'center' ->> 0)::float8 / 0")
        with pytest.raises(asyncpg.PostgresSyntaxError):
            await conn.execute(f"SELECT {LON}, {LAT} FROM WHERE")
    finally:
        await conn.close()


def test_the_embedded_servers_log_has_errors_but_no_coordinates(embedded_dir: Path) -> None:
    url = embedded_url(embedded_dir)
    log_file = embedded_dir / "pg" / "log"
    asyncio.run(_provoke(url))
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline:  # the logger process writes asynchronously
        text = log_file.read_text(errors="replace")
        if "division by zero" in text and "fixes_under_test" in text and "syntax error" in text:
            break
        time.sleep(0.1)
    # The errors themselves are there: this is the log, and it is being written.
    assert "division by zero" in text and 'violates check constraint "fixes_under_test_lat_check"' in text
    for value in (LAT, LON, LAT[:7], LON[:6]):
        assert value not in text, f"{value} found in the server log"
