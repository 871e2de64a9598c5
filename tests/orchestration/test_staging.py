"""Staging a source (propsync.orchestration.staging): content-addressed, read-only, verified;
table names quoted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from propsync.errors import SourceError, UsageError
from propsync.orchestration.staging import quote_table, stage_source, verified


def test_staging_is_content_addressed_read_only_and_verified(tmp_path: Path) -> None:
    src = tmp_path / "day.csv"
    src.write_text("customer_id,plan\nc1,free\nc2,pro\n", encoding="utf-8")
    first = stage_source(str(src), tmp_path / "run")
    again = stage_source(f"file://{src}", tmp_path / "run")
    assert first.path == again.path
    assert (first.rows, first.bytes, first.format) == (2, 32, "csv")
    staged = first.path
    assert not staged.stat().st_mode & stat.S_IWUSR
    assert verified(first) == staged

    os.chmod(staged, 0o644)
    staged.write_text("customer_id,plan\nc1,HACKED\n", encoding="utf-8")
    with pytest.raises(SourceError, match="changed after staging"):
        verified(first)


def test_table_names_are_quoted_and_anything_else_refused() -> None:
    assert quote_table("crm.customers") == '"crm"."customers"'
    with pytest.raises(UsageError):
        quote_table('customers"; DROP TABLE x; --')
