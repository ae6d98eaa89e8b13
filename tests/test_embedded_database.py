"""The embedded PostgreSQL refuses, with a plain message, a data directory made by another major version."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.platform.database import _refuse_other_major


def test_a_data_dir_of_another_major_version_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "PG_VERSION").write_text("16\n")
    with pytest.raises(RuntimeError, match="PostgreSQL 16 cluster; the embedded server is PostgreSQL 18"):
        _refuse_other_major(tmp_path, "PostgreSQL 18.1")


def test_a_data_dir_of_the_same_major_version_or_a_new_one_is_accepted(tmp_path: Path) -> None:
    _refuse_other_major(tmp_path, "PostgreSQL 18.1")  # no PG_VERSION yet: initdb makes one
    (tmp_path / "PG_VERSION").write_text("18\n")
    _refuse_other_major(tmp_path, "PostgreSQL 18.1")
