"""Where the journal lives and how its segments are named (propsync.journal.layout); whether a
segment's writer is alive, from its flock."""

from __future__ import annotations

from pathlib import Path

from propsync.journal import JournalWriter
from propsync.journal.layout import (
    APPLY_LOCK,
    JOURNAL_DIR,
    SEGMENT_RE,
    STATE_FILE,
    TMP_PREFIX,
    JournalUnavailable,
    journal_dir,
    writer_alive,
)
from propsync.store.warehouse import Warehouse
from tests.journal.conftest import rec


def test_the_journal_is_a_folder_of_the_warehouse(tmp_path: Path) -> None:
    assert journal_dir(tmp_path) == tmp_path / JOURNAL_DIR == journal_dir(str(tmp_path))
    assert (JOURNAL_DIR, STATE_FILE, APPLY_LOCK) == ("journal", "state.json", "apply.lock")


def test_a_writers_segment_has_a_segment_name_and_its_writer_is_alive_until_closed(
    warehouse: Warehouse,
) -> None:
    writer = JournalWriter(warehouse.root).start()
    try:
        writer.append_sync(rec("b", "v").encode())
        segment = writer.segment
        assert segment is not None and segment.parent == journal_dir(warehouse.root)
        assert SEGMENT_RE.match(segment.name) and not segment.name.startswith(TMP_PREFIX)
        assert writer_alive(segment) is True
    finally:
        writer.close()
    assert writer_alive(segment) is False  # closed: complete, appliable as a whole
    segment.unlink()
    assert writer_alive(segment) is None  # gone (applied and removed)


def test_only_segment_names_match() -> None:
    assert SEGMENT_RE.match("00000001700000000000-4242-0123abcd.jsonl")
    for name in (
        STATE_FILE,
        APPLY_LOCK,
        f"{TMP_PREFIX}00000001700000000000-4242-0123abcd.jsonl",
        "00000001700000000000-4242-0123abcd.jsonl.bak",
        "1700000000000-4242-0123abcd.jsonl",
    ):
        assert not SEGMENT_RE.match(name), name


def test_an_unavailable_journal_is_worth_retrying() -> None:
    assert JournalUnavailable("closed").retryable
