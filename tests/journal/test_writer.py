"""The journal's writer (propsync.journal.writer): group commit, and a closed journal refuses."""

from __future__ import annotations

import threading

import pytest

from propsync.journal import JournalUnavailable, JournalWriter
from propsync.store.warehouse import Warehouse
from tests.journal.conftest import rec, segments


def test_group_commit_one_fsync_covers_many_records(
    warehouse: Warehouse, writer: JournalWriter
) -> None:
    lines = [rec(f"b{i}", f"v{i}").encode() for i in range(400)]

    def send(chunk: list[bytes]) -> None:
        for line in chunk:
            writer.append_sync(line)

    threads = [threading.Thread(target=send, args=(lines[i::16],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.stats.records == 400
    assert writer.stats.syncs < 400  # several records per fdatasync
    (segment,) = segments(warehouse)
    assert sorted(segment.read_bytes().splitlines(keepends=True)) == sorted(lines)


def test_closed_journal_refuses(warehouse: Warehouse) -> None:
    w = JournalWriter(warehouse.root).start()
    w.close()
    with pytest.raises(JournalUnavailable):
        w.append_sync(rec("x", "y").encode())
