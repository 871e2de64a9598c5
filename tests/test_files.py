"""Durable file helpers (propsync.files) on a real directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from propsync.files import READ_ONLY_MODE, atomic_write_text, replace_durably, temporary_name


def test_atomic_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new", mode=READ_ONLY_MODE)
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == READ_ONLY_MODE
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_crashed_attempts_read_only_temporary_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    stale = temporary_name(path)
    stale.write_text("half")
    stale.chmod(READ_ONLY_MODE)
    atomic_write_text(path, "whole")
    assert path.read_text() == "whole" and not stale.exists()


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_text(path, "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "\ud800")  # not encodable: the write fails half-way
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_replace_durably_names_a_finished_file(tmp_path: Path) -> None:
    tmp, final = tmp_path / ".run.parquet.tmp", tmp_path / "run.parquet"
    tmp.write_bytes(b"PAR1")
    replace_durably(tmp, final, mode=READ_ONLY_MODE, sync_directory=False)
    assert final.read_bytes() == b"PAR1" and not tmp.exists()
    assert stat.S_IMODE(final.stat().st_mode) == READ_ONLY_MODE
