"""Reading segments (propsync.journal.reader): a torn last line of a dead writer is ignored, a
corrupt record skipped."""

from __future__ import annotations

import logging

import pytest

from propsync.config import Settings
from propsync.journal import JournalWriter, apply_journal
from propsync.store.warehouse import Warehouse
from tests.journal.conftest import rec, segments, stored


def test_torn_last_line_of_a_dead_writer_is_ignored(
    warehouse: Warehouse, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    w = JournalWriter(warehouse.root).start()
    for i in range(5):
        w.append_sync(rec(f"t{i}", "ok").encode())
    w.close()
    (segment,) = segments(warehouse)
    with segment.open("ab") as f:
        f.write(rec("t-torn", "never acknowledged").encode()[:37])
    with caplog.at_level(logging.WARNING):
        assert apply_journal(warehouse, settings) == 5
    assert "torn last record" in caplog.text
    assert set(stored(warehouse)) == {f"t{i}" for i in range(5)}
    assert segments(warehouse) == []


def test_corrupt_record_in_a_dead_segment_is_skipped(
    warehouse: Warehouse, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    w = JournalWriter(warehouse.root).start()
    for i in range(3):
        w.append_sync(rec(f"c{i}", "ok").encode())
    w.close()
    (segment,) = segments(warehouse)
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"c1"', b'"cX"')  # checksum no longer matches
    assert lines[1] != segment.read_bytes().splitlines(keepends=True)[1]
    segment.write_bytes(b"".join(lines))
    with caplog.at_level(logging.ERROR):
        assert apply_journal(warehouse, settings) == 2
    assert "corrupt record" in caplog.text
    assert set(stored(warehouse)) == {"c0", "c2"}
