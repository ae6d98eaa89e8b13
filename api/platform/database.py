"""The PostgreSQL adapter: an embedded server when no ``DATABASE_URL`` is set, and an asyncpg pool."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)


def embedded_url(data_dir: Path) -> str:
    """Start (or join) the pip-installed PostgreSQL that lives in ``data_dir/pg`` and return its URL.

    pgserver keeps the server running while any process that asked for it is alive, so ``afstand serve`` and
    ``afstand supplier create`` on the same data dir share one server.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    server.psql(QUIET_SERVER_LOG)
    log.info("embedded postgresql ready", extra={"pgdata": str(pgdata)})
    return server.get_uri()


# The server's own log (pgdata/log) must never hold coordinates: no statement texts (a zone's geometry, a fix's
# literals), no bind parameters, and no DETAIL lines (a constraint violation's DETAIL repeats the failing row).
# Errors are still logged, by their message. psql runs each line in its own transaction, as ALTER SYSTEM needs;
# SECURITY.md gives the same settings for an external server.
QUIET_SERVER_LOG = """
ALTER SYSTEM SET log_statement = 'none';
ALTER SYSTEM SET log_min_error_statement = 'panic';
ALTER SYSTEM SET log_min_duration_statement = -1;
ALTER SYSTEM SET log_duration = off;
ALTER SYSTEM SET log_error_verbosity = 'terse';
ALTER SYSTEM SET log_parameter_max_length = 0;
ALTER SYSTEM SET log_parameter_max_length_on_error = 0;
SELECT pg_reload_conf();
"""


def resolve_url(database_url: str | None, data_dir: Path) -> str:
    return database_url or embedded_url(data_dir)


def _json_text(value: object) -> str:
    # Not ASCII-escaped: a client's unpaired surrogate then fails as it does in a text column (UnicodeEncodeError,
    # a 422 in api/platform/problems.py) instead of as a "\ud800" escape that PostgreSQL refuses mid-transaction.
    return json.dumps(value, ensure_ascii=False)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=_json_text, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection)


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    return conn
