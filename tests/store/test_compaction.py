"""Compaction (propsync.store.compaction): the fold plan, folds across files and merges, the
background thread and process, and publishes meanwhile. The oracle is the writer's database, as
in ``test_catalog.py``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from propsync import journal
from propsync.config import Settings
from propsync.store import catalog, compaction
from propsync.store.warehouse import Warehouse
from tests.helpers import apply
from tests.journal.test_applier_pacing import TS, applied
from tests.store.test_catalog import published, settings_for, working


def test_a_merge_across_files_is_folded_into_the_base(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh)
    apply(wh, s, "a", [({"cookie": "k1"}, "name", "A", 1.0), ({"cookie": "k1"}, "age", 30, 1.0)])
    apply(wh, s, "b", [({"cookie": "k2"}, "name", "B", 2.0)])
    apply(wh, s, "m1", [({"cookie": "k1", "registered": "r"}, "city", "X", 3.0)])
    apply(wh, s, "m2", [({"cookie": "k2", "registered": "r"}, "plan", "pro", 4.0)])
    apply(wh, s, "m3", [({"cookie": "k3"}, "z", 1, 5.0)])
    apply(wh, s, "m4", [({"cookie": "k3", "registered": "r"}, "z", 2, 6.0)])
    expected = working(wh)
    assert len(expected["customer_aliases"]) == 2  # two customers merged away, in two runs
    assert published(wh) == expected
    compaction.compact(wh, s, full=True)
    manifest = wh.current_manifest()
    assert manifest is not None and len(manifest.segments) == 1
    assert published(wh) == expected
    with wh.connect_published() as con:
        kinds = con.execute("SELECT kind, count(*) FROM internal.rows GROUP BY ALL").fetchall()
    # The base holds the aliases flattened and no merged-away customer's properties.
    assert dict(kinds)["merge"] == 2
    assert dict(kinds)["property"] == len(expected["properties"])


def seg(rows: int, first: int) -> catalog.Segment:
    return catalog.Segment(first, first, f"runs/r{first}", f"runs/h{first}", rows)


def test_plan_folds_same_sized_changes_and_rewrites_the_base_only_after_a_tenth_changed() -> None:
    base = catalog.Segment(1, 1, "b", "bh", 1_000_000)
    small = [seg(1, v) for v in range(2, 2 + compaction.FANOUT - 1)]
    assert compaction.plan([base, *small]) is None  # fewer than FANOUT of one size
    fold = compaction.plan([base, *small, seg(1, 99)])
    assert fold == compaction.Fold(1, compaction.FANOUT + 1)  # all of them, not the base
    big_changes = [seg(60_000, 2), seg(50_000, 3)]  # 11% of the base
    assert compaction.plan([base, *big_changes]) == compaction.Fold(0, 3)
    assert compaction.plan([base]) is None
    assert compaction.plan([base, seg(1, 2)], full=True) == compaction.Fold(0, 2)


def test_plan_folds_the_newest_files_without_refolding_a_larger_one() -> None:
    """Tracking runs of ~40k rows after folds of 200-450k: the fold takes the runs and the files
    of their size class back to the first larger file, never the larger ones between them."""
    base = catalog.Segment(1, 1, "b", "bh", 30_000_000)  # the changes stay under a tenth of it
    rows = [193_002, 443_205, 435_006, 277_503, 258_904, 218_002, 242_003, 25_701]
    rows += [43_400, 41_201, 39_800, 39_001, 40_500, 62_701, 63_201, 58_100]
    changes = [seg(n, v) for v, n in enumerate(rows, start=2)]
    fold = compaction.plan([base, *changes])
    assert fold == compaction.Fold(1 + rows.index(258_904), 1 + len(rows))
    assert all(compaction.size_class(n) <= 5 for n in rows[rows.index(258_904) :])
    # Seven runs after the larger files: nothing yet; the eighth makes a fold of those eight.
    runs_ = [seg(40_000, 100 + i) for i in range(compaction.FANOUT)]
    bigger = [seg(400_000, 90 + i) for i in range(3)]
    assert compaction.plan([base, *bigger, *runs_[:-1]]) is None
    assert compaction.plan([base, *bigger, *runs_]) == compaction.Fold(4, 12)


def test_plan_waits_for_a_new_base_while_writers_are_busy() -> None:
    base = catalog.Segment(1, 1, "b", "bh", 1_000_000)
    tenth = [seg(60_000, 2), seg(50_000, 3)]  # 11% of the base: due when idle only
    assert compaction.plan([base, *tenth]) == compaction.Fold(0, 3)
    assert compaction.plan([base, *tenth], busy=True) is None
    whole = [seg(600_000, 2), seg(500_000, 3)]  # 110%: due either way
    assert compaction.plan([base, *whole], busy=True) == compaction.Fold(0, 3)
    # Same-sized changes are folded too, by BUSY_FANOUT: their cost is theirs, not the warehouse's.
    small = [seg(1, v) for v in range(2, 2 + compaction.BUSY_FANOUT)]
    assert compaction.plan([base, *small], busy=True) == compaction.Fold(1, len(small) + 1)
    assert compaction.plan([base, *tenth], full=True, busy=True) == compaction.Fold(0, 3)


def test_busy_writers_fold_the_changes_together_before_a_new_base() -> None:
    """Tracking's hot keys: the changes past the ratio are folded into one file while the newer
    ones hold at least as many rows as the oldest; the base only when that fold left too many."""
    base = catalog.Segment(1, 1, "b", "bh", 12_000_000)
    folded = seg(2_000_000, 2)  # a fold's result: 2M keys
    newer = [seg(2_000_000, 3), seg(2_000_000, 4), seg(2_000_000, 5), seg(2_000_000, 6)]
    newer += [seg(2_100_000, 7)]
    assert sum(s.rows for s in [folded, *newer]) > 12_000_000
    assert compaction.plan([base, folded, *newer], busy=True) == compaction.Fold(1, 7)
    # The same changes when idle: a new base (BASE_RATIO), as before.
    assert compaction.plan([base, folded, *newer]) == compaction.Fold(0, 7)
    # Under the ratio: nothing, whatever the split.
    assert compaction.plan([base, folded, *newer[:4]], busy=True) is None
    # The fold kept too many (uniform updates): its file outweighs the newer ones, so the base.
    kept = seg(11_000_000, 2)
    assert compaction.plan([base, kept, seg(1_500_000, 3)], busy=True) == compaction.Fold(0, 3)
    # One file of changes past the ratio (a whole-warehouse import): the base.
    assert compaction.plan([base, seg(13_000_000, 2)], busy=True) == compaction.Fold(0, 2)


def test_busy_writers_fold_changes_by_the_larger_fanout_and_idle_ones_catch_up() -> None:
    """Tracking runs of ~40k rows under sustained load: folded after BUSY_FANOUT of them while
    the applier is busy, after FANOUT once it is idle; never past a larger file."""
    base = catalog.Segment(1, 1, "b", "bh", 30_000_000)
    bigger = [seg(2_000_000, 90)]
    runs_ = [seg(40_000, 100 + i) for i in range(compaction.BUSY_FANOUT)]
    assert compaction.FANOUT < compaction.BUSY_FANOUT
    assert compaction.plan([base, *bigger, *runs_[: compaction.FANOUT]]) == compaction.Fold(
        2, 2 + compaction.FANOUT
    )
    assert compaction.plan([base, *bigger, *runs_[:-1]], busy=True) is None
    assert compaction.plan([base, *bigger, *runs_], busy=True) == compaction.Fold(2, 2 + len(runs_))
    assert compaction.size_class(40_000, compaction.BUSY_FANOUT) < compaction.size_class(
        2_000_000, compaction.BUSY_FANOUT
    )


def test_the_applier_writes_a_new_base_when_idle_not_after_each_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's applier under sustained tracking publishes every cycle; a new base (a rewrite
    of the whole warehouse) waits until it finds the journal empty."""
    wh = Warehouse(tmp_path / "wh")
    s = Settings(warehouse=wh.root, auto_compact=True)
    apply(wh, s, "base", [({"cookie": f"c{i}"}, "n", i, float(i)) for i in range(20)])
    manifest = wh.current_manifest()
    assert manifest is not None and [seg.rows for seg in manifest.segments] == [40]  # ids + props
    monkeypatch.setattr(compaction, "MIN_BASE_ROWS", 1)
    monkeypatch.setattr(journal.applier, "IDLE_COMPACTION_CHECK_SECONDS", 3600.0)
    writer = journal.JournalWriter(wh.root).start()

    def run_applier(until: Callable[[], bool]) -> None:
        stop, errors = threading.Event(), []
        thread = threading.Thread(
            target=journal.apply_forever,
            args=(wh, s, 0.02, stop),
            kwargs={"on_error": errors.append, "publish_interval": 0},
        )
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while not until():
                assert time.monotonic() < deadline, "timed out"
                time.sleep(0.02)
            for started in threading.enumerate():  # a fold it began runs to its commit
                if started.name == "propsync-compaction":
                    started.join(60)
        finally:
            stop.set()
            thread.join(60)
        assert not errors, errors

    try:
        # The idle applier looks only once an hour: every apply below is followed by a publish.
        for i in range(6):  # 6 property rows: 15% of the base, more than BASE_RATIO
            writer.append_sync(
                journal.Record(
                    f"t{i}", TS, [(1, "cookie", f"c{i}")], [(1, "m", '"x"', TS)]
                ).encode()
            )
        run_applier(lambda: wh.published_version() >= 2 and applied(wh))
        manifest = wh.current_manifest()
        assert manifest is not None and len(manifest.segments) >= 2, "a new base while busy"
        assert compaction.due(wh) and not compaction.due(wh, busy=True)
        # Idle at once: the applier's first look writes the new base.
        monkeypatch.setattr(journal.applier, "IDLE_COMPACTION_CHECK_SECONDS", 0.0)
        run_applier(lambda: not compaction.due(wh))
        manifest = wh.current_manifest()
        assert manifest is not None and len(manifest.segments) == 1
    finally:
        writer.close()
        compaction.stop_threads()
    assert published(wh) == working(wh)


def test_compact_is_skipped_while_another_runs(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh)
    for i in range(3):
        apply(wh, s, f"b{i}", [({"cookie": "c"}, "n", i, float(i))])
    from propsync.locks import exclusive_lock

    with exclusive_lock(wh.root / "compact.lock", 0, str):
        result = compaction.compact(wh, s, full=True)
    assert result.folds == 0 and "another compaction is running" in result.skipped
    assert compaction.compact(wh, s, full=True).folds == 1


def test_a_compaction_thread_runs_below_its_process_and_duckdbs_threads_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP service compacts in a thread: it and the threads of the compaction's DuckDB
    instance run at a lower priority than the edits and applies of the process."""
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh)
    for i in range(compaction.FANOUT + 1):
        apply(wh, s, f"b{i}", [({"cookie": "c"}, "n", i, float(i))])
    assert compaction.due(wh)
    process_nice = os.getpriority(os.PRIO_PROCESS, 0)
    seen: dict[str, Any] = {}
    real_compact = compaction.compact

    def observed(*args: Any, **kwargs: Any) -> compaction.CompactionResult:
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        con = duckdb.connect(config={"threads": 3})  # threads start as the compaction's do
        con.execute("SELECT sum(i) FROM range(10000000) t(i)").fetchall()
        seen["duckdb"] = {
            int(Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[16])
            for tid in os.listdir("/proc/self/task")
            if int(tid) != threading.get_native_id() and int(tid) not in before
        }
        con.close()
        return real_compact(*args, **kwargs)

    before = {int(tid) for tid in os.listdir("/proc/self/task")}
    monkeypatch.setattr(compaction, "compact", observed)
    thread = compaction.start_thread(wh, s)
    assert thread is not None
    thread.join(120)
    assert seen["thread"] == min(19, process_nice + compaction.COMPACTION_NICENESS_STEP)
    assert seen["duckdb"] == {seen["thread"]}
    assert os.getpriority(os.PRIO_PROCESS, 0) == process_nice  # the rest of the process
    assert not compaction.due(wh)


def test_the_command_line_compacts_in_a_detached_process_when_due(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh)
    for i in range(compaction.FANOUT + 1):
        apply(wh, s, f"b{i}", [({"cookie": "c"}, "n", i, float(i))])
    assert compaction.due(wh)
    child = compaction.start_in_background(wh)
    assert child is not None
    assert child.wait(timeout=120) == 0, (wh.root / "compact.log").read_text()
    manifest = wh.current_manifest()
    assert manifest is not None and len(manifest.segments) < compaction.FANOUT
    assert not compaction.due(wh) and compaction.start_in_background(wh) is None
    assert "compacted" in (wh.root / "compact.log").read_text()


def test_a_publish_while_a_fold_is_written_keeps_the_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish removes published files that no catalog lists; a fold written but not yet
    committed must survive it (it is committed next, and the catalog lists it)."""
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh, file_retention_seconds=0)
    for i in range(12):
        apply(wh, s, f"b{i}", [({"cookie": f"c{i}"}, "n", i, float(i))])
    write_fold = compaction._write_fold
    published_meanwhile = []

    def write_then_publish(*args: Any, **kwargs: Any) -> catalog.Segment:
        folded = write_fold(*args, **kwargs)
        n = len(published_meanwhile)
        apply(wh, s, f"meanwhile{n}", [({"cookie": f"m{n}"}, "n", 100 + n, 100.0 + n)])
        published_meanwhile.append(wh.published_version())
        return folded

    monkeypatch.setattr(compaction, "_write_fold", write_then_publish)
    result = compaction.compact(wh, s, full=True)
    assert result.folds >= 1 and published_meanwhile
    manifest = wh.current_manifest()
    assert manifest is not None and manifest.segments[0].changes.startswith("segments/")
    assert all((wh.root / p).is_file() for p in manifest.files())
    assert published(wh) == working(wh)
