"""The PostgreSQL adapter: an embedded server when no ``DATABASE_URL`` is set, and an asyncpg pool."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import asyncpg

log = logging.getLogger(__name__)


def embedded_url(data_dir: Path) -> str:
    """Start (or join) the pip-installed PostgreSQL that lives in ``data_dir/pg`` and return its URL.

    ``afstand serve`` and ``afstand supplier create`` on the same data dir share one server; it stops when the
    last command of this service using it ends (api/platform/embedded_pg.py).
    """
    from api.platform.embedded_pg import embedded_server

    server = embedded_server(data_dir)
    log.info("embedded postgresql ready", extra={"pgdata": str(server.pgdata), "started": server.started_here})
    assert server.url is not None
    return server.url


@contextmanager
def embedded_database(data_dir: Path) -> Iterator[str]:
    """The embedded server's URL for the length of a block, left (and stopped, when this process started it)
    at its end: before a temporary ``data_dir`` is removed, which would leave the exit handler nothing to stop."""
    from api.platform.embedded_pg import embedded_server

    url = embedded_url(data_dir)
    try:
        yield url
    finally:
        embedded_server(data_dir).close()


def resolve_url(database_url: str | None, data_dir: Path) -> str:
    return database_url or embedded_url(data_dir)


def _json_text(value: object) -> str:
    # Not ASCII-escaped: a client's unpaired surrogate then fails as it does in a text column (UnicodeEncodeError,
    # a 422 in api/platform/problems.py) instead of as a "\ud800" escape that PostgreSQL refuses mid-transaction.
    return json.dumps(value, ensure_ascii=False)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=_json_text, decoder=json.loads, schema="pg_catalog")


class DatabaseUnreachable(Exception):
    """No new connection could be opened (refused, no socket, timed out): the database, not the request, failed."""


async def create_pool(url: str, min_size: int = 2, max_size: int = 10, timeout: float = 60.0) -> asyncpg.Pool:
    """The service's pool. ``timeout`` bounds each new connection, so an unreachable database fails a request
    fast, as :class:`DatabaseUnreachable`, instead of holding it."""

    async def connect_or_fail(*args: object, **kwargs: object) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(*args, **kwargs)  # type: ignore[arg-type]
        except (OSError, asyncio.TimeoutError) as e:
            raise DatabaseUnreachable(f"cannot connect to the database: {type(e).__name__}") from e

    return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection,
                                     timeout=timeout, connect=connect_or_fail)


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    return conn
