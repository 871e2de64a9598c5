"""Applying the tracking journal (propsync.journal.apply): live and dead segments, crash redo,
concurrent appliers, killed writers, bounded batches, receive order, kinds."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from propsync.config import Settings
from propsync.errors import NotPublished
from propsync.journal import JournalWriter, apply_journal, journal_dir, journal_status
from propsync.store.warehouse import Warehouse
from tests.journal.conftest import TS, rec, segments, stored


def journal_batches(warehouse: Warehouse) -> list[tuple[str, int, str]]:
    with warehouse.connect_published() as con:
        return [
            (str(b), int(n), str(s))
            for b, n, s in con.execute(
                "SELECT batch_id, rows_read, status FROM batches WHERE batch_id LIKE 'jrn-%' ORDER BY applied_at_us"
            ).fetchall()
        ]


def test_apply_live_segment_incrementally_then_remove_it(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    for i in range(3):
        writer.append_sync(rec(f"a{i}", f"v{i}").encode())
    assert apply_journal(warehouse, settings) == 3
    assert stored(warehouse) == {"a0": "v0", "a1": "v1", "a2": "v2"}
    assert len(segments(warehouse)) == 1  # still being written: kept
    assert journal_status(warehouse.root).live_segments == 1
    assert apply_journal(warehouse, settings) == 0
    writer.append_sync(rec("a0", "newer", receive=TS + 1).encode())
    assert apply_journal(warehouse, settings) == 1
    assert stored(warehouse)["a0"] == "newer"
    writer.close()  # a closed segment is complete: removed once applied
    assert journal_status(warehouse.root).live_segments == 0
    assert apply_journal(warehouse, settings) == 0
    assert segments(warehouse) == []
    assert [n for _, n, _ in journal_batches(warehouse)] == [3, 1]


def _state(warehouse: Warehouse) -> dict[str, object]:
    return dict(json.loads((journal_dir(warehouse.root) / "state.json").read_text()))


def test_crash_after_commit_before_cursor_update_is_not_applied_twice(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    for i in range(4):
        writer.append_sync(rec(f"r{i}", "x").encode())
    assert apply_journal(warehouse, settings) == 4
    ((batch_id, _, _),) = journal_batches(warehouse)
    state = _state(warehouse)
    cursors: dict[str, int] = state["cursors"]  # type: ignore[assignment]
    ((name, end),) = cursors.items()
    # Rewind to the moment after apply_batch committed but before the cursor moved.
    (journal_dir(warehouse.root) / "state.json").write_text(
        json.dumps({"cursors": {}, "pending": {"batch_id": batch_id, "ranges": {name: [0, end]}}})
    )
    assert apply_journal(warehouse, settings) == 0  # redone under the same id: already applied
    assert journal_batches(warehouse) == [(batch_id, 4, "applied")]
    assert _state(warehouse) == {"cursors": {name: end}, "pending": None}


def test_crash_before_commit_redoes_the_recorded_batch(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    for i in range(2):
        writer.append_sync(rec(f"p{i}", "x").encode())
    (segment,) = segments(warehouse)
    end = segment.stat().st_size
    journal_dir(warehouse.root).joinpath("state.json").write_text(
        json.dumps(
            {
                "cursors": {},
                "pending": {"batch_id": "jrn-intent", "ranges": {segment.name: [0, end]}},
            }
        )
    )
    writer.append_sync(rec("p2", "x").encode())  # arrived after the intent was recorded
    assert apply_journal(warehouse, settings) == 3
    batches = journal_batches(warehouse)
    assert batches[0] == ("jrn-intent", 2, "applied") and batches[1][1] == 1
    assert set(stored(warehouse)) == {"p0", "p1", "p2"}


def _apply_in_process(root: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(apply_journal(Warehouse(root), Settings(warehouse=Path(root), lock_timeout_seconds=60)))


def test_concurrent_appliers_apply_each_command_once(
    warehouse: Warehouse, settings: Settings
) -> None:
    writers = [JournalWriter(warehouse.root).start() for _ in range(2)]
    for i in range(60):
        writers[i % 2].append_sync(rec(f"m{i}", f"v{i}", receive=TS + i).encode())
    writers[0].close()  # one complete segment, one live
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_apply_in_process, args=(str(warehouse.root), out)) for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    counts = sorted(out.get(timeout=5) for _ in procs)
    assert sum(counts) == 60 and counts[:2] == [0, 0]
    assert len(stored(warehouse)) == 60
    assert sum(n for _, n, _ in journal_batches(warehouse)) == 60
    writers[1].close()
    assert apply_journal(warehouse, settings) == 0
    assert segments(warehouse) == []


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from propsync.journal import JournalWriter, Record
    w = JournalWriter(sys.argv[1]).start()
    for i in range(int(sys.argv[2])):
        w.append_sync(Record(f"k{i}", 1_600_000_000_000_000, [(1, "registered", f"k{i}")],
                             [(1, "p", '"durable"', 1_600_000_000_000_000)]).encode())
    print("acknowledged", flush=True)
    time.sleep(600)
    """
)


def test_segment_of_a_killed_writer_is_recovered(warehouse: Warehouse, settings: Settings) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(warehouse.root), "25"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "acknowledged"
        assert journal_status(warehouse.root).live_segments == 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert journal_status(warehouse.root).live_segments == 0
    assert apply_journal(warehouse, settings) == 25
    assert set(stored(warehouse)) == {f"k{i}" for i in range(25)}
    assert segments(warehouse) == []


def journal_35_commands(warehouse: Warehouse) -> None:
    """A backlog: 35 one-command records, journaled by a writer that then stopped."""
    w = JournalWriter(warehouse.root).start()
    for i in range(35):
        w.append_sync(rec(f"b{i}", "x", receive=TS + i).encode())
    w.close()


def test_large_backlog_is_applied_in_bounded_batches_and_published_once(
    warehouse: Warehouse, settings: Settings
) -> None:
    journal_35_commands(warehouse)
    assert apply_journal(warehouse, settings, max_batch_commands=10) == 35
    assert [n for _, n, _ in journal_batches(warehouse)] == [10, 10, 10, 5]
    with warehouse.connect_published() as con:
        versions = [
            v
            for (v,) in con.execute(
                "SELECT version FROM batches WHERE batch_id LIKE 'jrn-%' ORDER BY version"
            ).fetchall()
        ]
    assert warehouse.published_version() == versions[-1]
    assert len(list(warehouse.published_dir.glob("v*.duckdb"))) == 1  # one publish for four batches


def test_max_commands_applies_and_publishes_part_of_a_backlog(
    warehouse: Warehouse, settings: Settings
) -> None:
    journal_35_commands(warehouse)
    assert apply_journal(warehouse, settings, max_batch_commands=10, max_commands=15) == 20
    assert [n for _, n, _ in journal_batches(warehouse)] == [10, 10]  # published, the rest waits
    assert journal_status(warehouse.root).unapplied_bytes > 0
    assert apply_journal(warehouse, settings, max_batch_commands=10, max_commands=15) == 15
    assert [n for _, n, _ in journal_batches(warehouse)] == [10, 10, 10, 5]
    assert apply_journal(warehouse, settings, max_batch_commands=10, max_commands=15) == 0
    assert journal_status(warehouse.root).unapplied_bytes == 0


def test_records_are_applied_in_receive_order_across_segments(
    warehouse: Warehouse, settings: Settings
) -> None:
    first_writer, second_writer = (
        JournalWriter(warehouse.root).start(),
        JournalWriter(warehouse.root).start(),
    )
    # Written first but received later: the earlier request must be resolved first.
    first_writer.append_sync(
        rec("late", "a", ids={"registered": "a", "cookie": "shared"}, receive=TS + 5).encode()
    )
    second_writer.append_sync(
        rec("early", "b", ids={"registered": "b", "cookie": "shared"}, receive=TS).encode()
    )
    first_writer.close()
    second_writer.close()
    assert apply_journal(warehouse, settings) == 2
    assert stored(warehouse) == {"b": "b"}  # "late" would merge two hard ids: rejected
    with warehouse.connect_published() as con:
        (reason,) = con.execute("SELECT reason FROM rejections").fetchone()  # type: ignore[misc]
    assert "hard ids" in reason


def test_empty_or_missing_journal(warehouse: Warehouse, settings: Settings) -> None:
    assert apply_journal(warehouse, settings) == 0
    assert journal_status(warehouse.root).segments == 0
    journal_dir(warehouse.root).mkdir(parents=True)
    assert apply_journal(warehouse, settings) == 0
    assert not warehouse.work_path.exists()  # nothing to do: the warehouse was not even opened
    with pytest.raises(NotPublished):
        warehouse.connect_published().close()


def test_journaled_edits_are_applied_as_edits_and_tracking_as_tracking(
    warehouse: Warehouse, settings: Settings
) -> None:
    """A chunk holds one kind of record, so each batch is recorded as what it is, in receive
    order: an edit journaled while an import held the lock stays an edit."""
    w = JournalWriter(warehouse.root).start()
    kinds = ["track", "track", "edit", "track", "edit", "edit"]
    for i, kind in enumerate(kinds):
        w.append_sync(rec(f"b{i}", f"v{i}", user="u", receive=TS + i, kind=kind).encode())
    w.close()
    assert apply_journal(warehouse, settings) == len(kinds)
    with warehouse.connect_published() as con:
        batches = con.execute(
            "SELECT kind, rows_read FROM batches WHERE batch_id LIKE 'jrn-%' ORDER BY version"
        ).fetchall()
    assert batches == [("track", 2), ("edit", 1), ("track", 1), ("edit", 2)]
    assert stored(warehouse) == {"u": "v5"}


def test_a_recorded_chunk_of_mixed_kinds_is_redone_whole(
    warehouse: Warehouse, settings: Settings
) -> None:
    """A chunk recorded (state.json's pending) by a release that mixed kinds is redone with all
    its records, not cut at the first change of kind (the cursors move past all of them)."""
    w = JournalWriter(warehouse.root).start()
    for i, kind in enumerate(["track", "edit", "track"]):
        w.append_sync(rec(f"b{i}", f"v{i}", user=f"u{i}", receive=TS + i, kind=kind).encode())
    w.close()
    (segment,) = segments(warehouse)
    state_file = journal_dir(warehouse.root) / "state.json"
    state_file.write_text(
        json.dumps(
            {
                "cursors": {},
                "pending": {
                    "batch_id": "jrn-mixed",
                    "ranges": {segment.name: [0, segment.stat().st_size]},
                },
            }
        )
    )
    assert apply_journal(warehouse, settings) == 3
    assert stored(warehouse) == {"u0": "v0", "u1": "v1", "u2": "v2"}
    with warehouse.connect_published() as con:
        assert con.execute(
            "SELECT kind, rows_read FROM batches WHERE batch_id = 'jrn-mixed'"
        ).fetchall() == [("track", 3)]
