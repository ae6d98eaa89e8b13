"""Shared fixtures: real PostgreSQL servers (embedded pgserver, plus TEST_DATABASE_URL when set) and apps."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from api.platform.database import embedded_url
from api.platform.migrate import apply_migrations

BACKENDS = ["embedded"] + (["service"] if os.environ.get("TEST_DATABASE_URL") else [])


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class DatabaseServer:
    """A real PostgreSQL server on which each test gets its own database, cloned from a migrated template."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.template = "afstand_tpl_" + uuid.uuid4().hex[:8]
        asyncio.run(self._make_template())

    async def _make_template(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(self.admin_url, self.template))
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    def fresh(self) -> str:
        name = "afstand_t_" + uuid.uuid4().hex[:12]

        async def create() -> None:
            admin = await asyncpg.connect(self.admin_url)
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            finally:
                await admin.close()

        asyncio.run(create())
        return with_database(self.admin_url, name)

    def drop_all(self) -> None:
        async def drop() -> None:
            admin = await asyncpg.connect(self.admin_url)
            try:
                names = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'afstand_t%'")
                for r in names:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{r["datname"]}" WITH (FORCE)')
            finally:
                await admin.close()

        asyncio.run(drop())


_servers: dict[str, DatabaseServer] = {}


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pg")


def _server(backend: str, embedded_dir: Path) -> DatabaseServer:
    if backend not in _servers:
        url = os.environ["TEST_DATABASE_URL"] if backend == "service" else embedded_url(embedded_dir)
        _servers[backend] = DatabaseServer(url)
    return _servers[backend]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, embedded_dir: Path) -> str:
    """A fresh, migrated database on each backend in turn."""
    return _server(request.param, embedded_dir).fresh()


@pytest.fixture(scope="session", autouse=True)
def _cleanup_databases() -> Iterator[None]:
    yield
    for server in _servers.values():
        server.drop_all()


@pytest.fixture
def make_client(database_url: str, tmp_path: Path) -> Iterator:
    """Start the real app (lifespan included) on a fresh database; ``make_client(run_engine=False)``."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.platform.settings import Settings

    clients = []

    def make(run_engine: bool = True, **overrides: object) -> TestClient:
        settings = Settings(
            database_url=database_url,
            data_dir=tmp_path / "data",
            engine_poll_s=0.2,
            engine_tick_s=0.5,
            **overrides,  # type: ignore[arg-type]
        )
        client = TestClient(create_app(settings, run_engine=run_engine))
        client.__enter__()
        clients.append(client)
        return client

    def stop(client: TestClient) -> None:
        """Shut one app down cleanly (its leases are released at once), as a process restart would."""
        clients.remove(client)
        client.__exit__(None, None, None)

    make.stop = stop  # type: ignore[attr-defined]
    yield make
    for c in reversed(clients):
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> object:  # type: ignore[no-untyped-def]
    return make_client()
