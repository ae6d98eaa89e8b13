"""One writer per table: each of these tables is written (INSERT, UPDATE, DELETE) by its owner only.

The SQL is read from the string literals of every module under ``api/`` and ``notifications/`` (adjacent
literals joined as Python joins them; docstrings left out), so a write hidden in a route handler or a helper of
another domain fails here, whatever the layers above it look like.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "notifications")

# table -> the modules (paths relative to the repository, glob patterns) allowed to write it.
OWNERS: dict[str, tuple[str, ...]] = {
    "alerts": ("api/alerts/repository.py", "api/alerts/store.py"),
    "alert_changes": ("api/alerts/repository.py", "api/alerts/store.py"),
    "positions": ("api/intake/**/*.py",),
    "encounters": ("api/intake/repository.py",),
    "outbox": ("notifications/outbox.py",),
    "audit_log": ("api/privacy/audit.py", "api/privacy/audit/repository.py"),
    # Written by the trigger of migrations/0006_config_changes.sql; the engine's runner prunes what it has read.
    "config_version": ("api/monitoring/*.py",),
    "config_changes": ("api/monitoring/*.py",),
}

_WRITE = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:ONLY\s+)?(?:public\.)?(" + "|".join(OWNERS) + r")\b",
    re.IGNORECASE,
)


def _not_sql(tree: ast.AST) -> set[int]:
    """Docstrings, and the literal parts of f-strings (read with their f-string)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            ids.update(id(v) for v in node.values)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def sql_writes(source: str) -> list[tuple[int, str]]:
    """(line, table) of every INSERT/UPDATE/DELETE of an owned table in the module's string literals."""
    tree = ast.parse(source)
    skip = _not_sql(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # an f-string: its literal parts, with a space for each value
            text = " ".join(v.value if isinstance(v, ast.Constant) else " " for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        else:
            continue
        found += [(node.lineno, m.group(1).lower()) for m in _WRITE.finditer(text)]
    return found


def _matches(path: str, pattern: str) -> bool:
    """``*`` stays inside one folder; ``**/`` spans any number of folders (including none)."""
    regex = re.escape(pattern).replace(r"\*\*/", "(?:[^/]+/)*").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, path) is not None


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for package in PACKAGES:
        for module in sorted((root / package).rglob("*.py")):
            path = module.relative_to(root).as_posix()
            for line, table in sql_writes(module.read_text(encoding="utf-8")):
                if not any(_matches(path, p) for p in OWNERS[table]):
                    out.append(f"{path}:{line} writes {table} (owner: {' or '.join(OWNERS[table])})")
    return out


def test_every_owned_table_is_written_by_its_owner_only() -> None:
    found = violations()
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("statement, table", [
    ('"INSERT INTO alerts (id) VALUES ($1)"', "alerts"),
    ('"UPDATE  alert_changes SET note = $2"', "alert_changes"),
    ('"DELETE FROM positions WHERE seq < $1"', "positions"),
    ('("WITH x AS (INSERT INTO "\n "outbox (id) SELECT 1)")', "outbox"),
    ('f"UPDATE outbox SET {cols} WHERE id = $1"', "outbox"),
    ('"insert into audit_log (actor) values ($1)"', "audit_log"),
])
def test_a_write_is_found_however_it_is_spelled(statement: str, table: str) -> None:
    assert sql_writes(f"async def f(conn):\n    await conn.execute({statement})\n") == [(2, table)]


@pytest.mark.parametrize("statement", [
    '"SELECT * FROM alerts WHERE id = $1 FOR UPDATE"',
    '"SELECT id FROM outbox FOR UPDATE OF o SKIP LOCKED"',
    '"INSERT INTO alerts_archive (id) VALUES ($1)"',
    '"INSERT INTO delivery_attempts (outbox_id) VALUES ($1)"',
])
def test_reads_and_other_tables_are_not_writes(statement: str) -> None:
    assert sql_writes(f"async def f(conn):\n    await conn.fetch({statement})\n") == []


def test_a_write_outside_its_owner_fails(tmp_path: Path) -> None:
    """The check itself can fail: a planted write of alerts in another domain is reported, its owner's is not."""
    (tmp_path / "api" / "cases").mkdir(parents=True)
    (tmp_path / "api" / "alerts").mkdir(parents=True)
    (tmp_path / "notifications").mkdir()
    write = 'async def f(conn):\n    """Not an UPDATE alerts in a docstring."""\n' \
            '    await conn.execute("UPDATE alerts SET status = $2 WHERE id = $1")\n'
    (tmp_path / "api" / "cases" / "service.py").write_text(write)
    (tmp_path / "api" / "alerts" / "repository.py").write_text(write)
    assert violations(tmp_path) == [
        "api/cases/service.py:3 writes alerts (owner: api/alerts/repository.py or api/alerts/store.py)"]


def test_the_engines_log_is_written_where_this_check_sees_it() -> None:
    """Both tables of the engine's log, appended to and purged (the retention purge's deletes go through the
    intake) in the one module that owns them: a write with the table's name formatted in would be invisible."""
    writes = sql_writes((ROOT / "api" / "intake" / "repository.py").read_text(encoding="utf-8"))
    assert {"positions", "encounters"} <= {table for _, table in writes}
    assert sum(table == "encounters" for _, table in writes) == 2  # the append and the purge


def test_owner_patterns() -> None:
    assert _matches("api/intake/service.py", "api/intake/**/*.py")
    assert _matches("api/intake/protocols/json_v1.py", "api/intake/**/*.py")
    assert not _matches("api/intake/protocols/json_v1.py", "api/monitoring/*.py")
    assert not _matches("api/intake_extra/service.py", "api/intake/**/*.py")
    assert not _matches("api/privacy/retention.py", "api/intake/**/*.py")
