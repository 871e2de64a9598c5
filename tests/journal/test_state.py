"""The applier's state (propsync.journal.state): cursors and the intent of the batch under way,
saved atomically and read back; one applier at a time, the other told who holds the lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from propsync.errors import PropsyncError, WarehouseLocked
from propsync.journal.state import ApplyState, apply_lock


def test_a_missing_state_is_an_empty_one(tmp_path: Path) -> None:
    state = ApplyState.load(tmp_path)
    assert (state.path, state.cursors, state.pending) == (tmp_path / "state.json", {}, None)


def test_the_state_is_saved_whole_and_read_back(tmp_path: Path) -> None:
    pending = {"batch_id": "jrn-1", "ranges": {"seg.jsonl": [0, 120]}}
    ApplyState(tmp_path / "state.json", {"seg.jsonl": 120, "old.jsonl": 7}, pending).save()
    state = ApplyState.load(tmp_path)
    assert state.cursors == {"seg.jsonl": 120, "old.jsonl": 7}
    assert state.pending == pending
    assert sorted(os.listdir(tmp_path)) == ["state.json"]  # no temporary file left
    state.pending = None
    state.save()
    assert ApplyState.load(tmp_path).pending is None


def test_an_unreadable_state_names_its_file(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"cursors": ')
    with pytest.raises(PropsyncError) as info:
        ApplyState.load(tmp_path)
    assert f"journal state {str(tmp_path / 'state.json')!r} is unreadable" in info.value.message


def test_a_second_applier_waits_then_gives_up_naming_the_first(tmp_path: Path) -> None:
    jdir = tmp_path / "warehouse" / "journal"
    jdir.mkdir(parents=True)
    with apply_lock(jdir, 1), pytest.raises(WarehouseLocked) as info, apply_lock(jdir, 0.1):
        pytest.fail("two appliers at once")
    message = info.value.message
    assert f"the journal of {str(tmp_path / 'warehouse')!r} is being applied" in message
    assert f"(pid {os.getpid()}); gave up after 0.1 s" in message
    with apply_lock(jdir, 0):  # free again
        pass
