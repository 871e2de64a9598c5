"""A cheap look at the journal's backlog (propsync.journal.status): segments, live ones, bytes
not applied yet and a pending intent, on a real journal."""

from __future__ import annotations

import json

from propsync.config import Settings
from propsync.journal import (
    JournalStatus,
    JournalWriter,
    apply_journal,
    journal_dir,
    journal_status,
)
from propsync.store.warehouse import Warehouse
from tests.journal.conftest import rec, segments


def test_no_journal_is_an_empty_one(warehouse: Warehouse) -> None:
    assert journal_status(warehouse.root) == JournalStatus(0, 0, 0, False)


def test_the_backlog_is_what_the_applier_has_not_applied(
    warehouse: Warehouse, settings: Settings
) -> None:
    writer = JournalWriter(warehouse.root).start()
    try:
        for i in range(3):
            writer.append_sync(rec(f"s{i}", "v").encode())
        (segment,) = segments(warehouse)
        size = segment.stat().st_size
        assert journal_status(warehouse.root) == JournalStatus(1, 1, size, False)
        assert apply_journal(warehouse, settings) == 3
        assert journal_status(warehouse.root) == JournalStatus(1, 1, 0, False)
        writer.append_sync(rec("s3", "v").encode())
        assert journal_status(warehouse.root).unapplied_bytes == segment.stat().st_size - size
    finally:
        writer.close()
    assert journal_status(warehouse.root).live_segments == 0
    assert apply_journal(warehouse, settings) == 1
    assert journal_status(warehouse.root) == JournalStatus(0, 0, 0, False)  # removed once applied


def test_a_pending_intent_and_an_unreadable_state_are_reported_not_raised(
    warehouse: Warehouse,
) -> None:
    writer = JournalWriter(warehouse.root).start()
    writer.append_sync(rec("p", "v").encode())
    writer.close()
    (segment,) = segments(warehouse)
    state = journal_dir(warehouse.root) / "state.json"
    state.write_text(json.dumps({"cursors": {}, "pending": {"batch_id": "jrn-x", "ranges": {}}}))
    assert journal_status(warehouse.root) == JournalStatus(1, 0, segment.stat().st_size, True)
    state.write_text("{not json")
    # The backlog as if nothing were applied: the applier, not this look, reports the damage.
    assert journal_status(warehouse.root) == JournalStatus(1, 0, segment.stat().st_size, False)
    (journal_dir(warehouse.root) / ".tmp-leftover.jsonl").write_text("x" * 100)
    assert journal_status(warehouse.root).segments == 1  # only segments count
