"""The migration runner: applies once, records checksums, refuses edited files, survives concurrent starts."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from api.platform.migrate import Migration, MigrationError, apply_migrations, discover, pending


def test_all_migrations_applied_on_fresh_database(database_url: str) -> None:
    async def run() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            assert await apply_migrations(conn) == []  # the template already has them
            return await pending(conn)
        finally:
            await conn.close()

    assert asyncio.run(run()) == []


def test_new_migration_applied_once_and_edit_refused(database_url: str) -> None:
    extra = Migration("9999_test_extra", "CREATE TABLE test_extra (id int)")

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            assert await apply_migrations(conn, discover() + [extra]) == ["9999_test_extra"]
            assert await apply_migrations(conn, discover() + [extra]) == []
            edited = Migration("9999_test_extra", "CREATE TABLE test_extra (id bigint)")
            with pytest.raises(MigrationError, match="changed after it was applied"):
                await apply_migrations(conn, discover() + [edited])
        finally:
            await conn.close()

    asyncio.run(run())


def test_failed_migration_rolls_back_whole_file(database_url: str) -> None:
    bad = Migration("9998_bad", "CREATE TABLE half_done (id int); SELECT no_such_function();")

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            with pytest.raises(asyncpg.PostgresError):
                await apply_migrations(conn, discover() + [bad])
            assert await conn.fetchval("SELECT to_regclass('half_done')") is None
            assert "9998_bad" in await pending(conn, discover() + [bad])
        finally:
            await conn.close()

    asyncio.run(run())


def test_concurrent_starts_apply_each_file_once(database_url: str) -> None:
    extra = [Migration(f"999{i}_race", f"CREATE TABLE race_{i} (id int)") for i in range(3)]

    async def one() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            return await apply_migrations(conn, discover() + extra)
        finally:
            await conn.close()

    async def run() -> list[list[str]]:
        return await asyncio.gather(one(), one(), one())

    results = asyncio.run(run())
    applied = sorted(v for r in results for v in r)
    assert applied == sorted(m.version for m in extra)
