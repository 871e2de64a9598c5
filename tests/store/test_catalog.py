"""Published versions as catalogs over Parquet files (store/catalog.py, store/compaction.py).

The oracle is the writer's own database: after every batch, compaction or crash, the published
views show exactly what ``work.duckdb`` holds, and nothing is ever copied.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings as hyp_settings, strategies as st

from propsync import journal
from propsync.batch import REJECTIONS_SCHEMA
from propsync.config import Settings
from propsync.store import catalog, compaction, runs
from propsync.store.apply import apply_batch
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, followed_tables, make_batch, published_state
from tests.journal.test_applier_pacing import TS, applied
from tests.store.test_order_independence import reference, update_st

Tables = dict[str, set[tuple[Any, ...]]]

# What readers see beyond the followed tables: the batch records and the quarantine.
HISTORY = {
    "batches": "SELECT * EXCLUDE (applied_at_us) FROM batches",
    "rejections": "SELECT * FROM rejections",
    "quality_results": "SELECT * FROM quality_results",
}


def tables(con: duckdb.DuckDBPyConnection) -> Tables:
    got = followed_tables(con)
    got.update({name: set(con.execute(q).fetchall()) for name, q in HISTORY.items()})
    return got


def published(wh: Warehouse) -> Tables:
    with wh.connect_published() as con:
        return tables(con)


def working(wh: Warehouse) -> Tables:
    with duckdb.connect(str(wh.work_path), read_only=True) as con:
        return tables(con)


def settings_for(wh: Warehouse, **kw: Any) -> Settings:
    return Settings(warehouse=wh.root, auto_compact=False, **kw)


step_st = st.one_of(
    st.tuples(st.just("batch"), st.lists(update_st, min_size=1, max_size=6)),
    st.tuples(st.sampled_from(["compact", "busy", "full"]), st.none()),
)


# A fold of changes that must keep the newest of two changes of one property (found missing: a
# fold keeping the oldest passed 40 random examples).
_NEWEST_IN_A_FOLD = [
    *(
        ("batch", [({"registered": "r0"}, "name", v, ts)])
        for v, ts in (("x", 1.0), ("y", 2.0), ("z", 3.0))
    ),
    ("compact", None),
    ("busy", None),
]


@hyp_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step_st, min_size=1, max_size=12), fanout=st.sampled_from([2, 3, 8]))
@example(steps=_NEWEST_IN_A_FOLD, fanout=2)
def test_every_step_reads_the_reference_state_through_compactions_and_merges(
    steps: list[tuple[str, Any]], fanout: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(compaction, "FANOUT", fanout)  # small fanouts fold changes into changes often
        wh = Warehouse(Path(tmp) / "wh")
        s = settings_for(wh, keep_published_versions=1, file_retention_seconds=0, keep_runs=1)
        batches = 0
        so_far: list[Any] = []
        for kind, updates in steps:
            if kind == "batch":
                batches += 1
                assert apply(wh, s, f"b{batches}", updates).published_version == batches
                so_far += updates
            elif batches:
                before = wh.current_manifest()
                compaction.compact(wh, s, full=kind == "full", busy=kind == "busy")
                after = wh.current_manifest()
                assert before is not None and after is not None
                assert after.version == before.version
                if kind == "full":
                    assert len(after.segments) == 1 and after.segments[0].first == 1
            if batches:
                assert published(wh) == working(wh)
                # What a reader sees after every step: the brute-force newer-wins state of every
                # update so far (customers merged as their ids met).
                assert published_state(wh) == reference(so_far)
                manifest = wh.current_manifest()
                assert manifest is not None and manifest.version == batches
                # Contiguous, from version 1: every committed change is in exactly one file.
                covered = [(seg.first, seg.last) for seg in manifest.segments]
                assert covered[0][0] == 1 and covered[-1][1] == batches
                assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(covered))
                # Nothing on disk that no catalog lists (retention 0, one catalog kept).
                assert on_disk(wh) <= manifest.files() | run_files(wh)


def on_disk(wh: Warehouse) -> set[str]:
    found = set()
    for d in ("segments", "runs"):
        if (wh.root / d).is_dir():
            found |= {f"{d}/{n}" for n in os.listdir(wh.root / d) if not n.startswith(".")}
    return found


def run_files(wh: Warehouse) -> set[str]:
    """Runs kept for followers (keep_runs behind the published version)."""
    newest = wh.published_version()
    return {
        f"runs/{p.name}"
        for v in (newest,)
        for p in (runs.run_path(wh.root, v), runs.history_path(wh.root, v))
    }


def test_a_publish_copies_nothing_and_lists_the_runs(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh)
    for i in range(4):
        apply(wh, s, f"b{i}", [({"cookie": f"c{i}"}, "name", f"v{i}", 10.0 + i)])
    manifest = wh.current_manifest()
    assert manifest is not None and manifest.version == 4
    # A new warehouse's first run is its base; then each batch adds its run.
    assert [(seg.first, seg.last) for seg in manifest.segments] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert [seg.changes for seg in manifest.segments] == [
        f"runs/r00000{v}.parquet" for v in (1, 2, 3, 4)
    ]
    catalog_file = wh.published_file()
    assert catalog_file.name == "v000004.duckdb"
    assert catalog_file.stat().st_size < 2_000_000  # views and a file list, not the data
    assert catalog_file.stat().st_mode & 0o777 == 0o444
    assert published(wh) == working(wh)


def test_an_open_analyst_session_keeps_its_version_through_writes_and_compactions(
    tmp_path: Path,
) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh, keep_published_versions=1)
    for i in range(5):
        apply(wh, s, f"b{i}", [({"cookie": "c"}, "n", i, float(i))])
    analyst = wh.connect_published()
    try:
        query = "SELECT value FROM customer_properties WHERE property = 'n'"
        assert analyst.execute(query).fetchall() == [("4",)]
        for i in range(5, 30):
            apply(wh, s, f"b{i}", [({"cookie": "c"}, "n", i, float(i))])
            if i % 7 == 0:
                compaction.compact(wh, s, full=i % 2 == 0)
        assert wh.published_version() == 30
        # Its catalog was pruned and the files it lists were replaced: they stay for the
        # retention, so the session reads its own version, whole.
        assert analyst.execute(query).fetchall() == [("4",)]
        assert analyst.execute("SELECT count(*) FROM batches").fetchall() == [(5,)]
    finally:
        analyst.close()
    with wh.connect_published() as con:
        assert con.execute(query).fetchall() == [("29",)]


def test_files_no_catalog_lists_go_after_the_retention(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh, keep_published_versions=1, file_retention_seconds=3600)
    for i in range(6):
        apply(wh, s, f"b{i}", [({"cookie": "c"}, "n", i, float(i))])
    compaction.compact(wh, s, full=True)
    manifest = wh.current_manifest()
    assert manifest is not None
    retired = {p for p, _ in manifest.retired}
    assert retired and all((wh.root / p).exists() for p in retired)  # kept for older readers
    s0 = settings_for(wh, keep_published_versions=1, file_retention_seconds=0)
    apply(wh, s0, "after", [({"cookie": "c"}, "n", 99, 99.0)])
    assert not any((wh.root / p).exists() for p in retired if p.startswith("segments/"))
    newest = wh.current_manifest()
    assert newest is not None and not newest.retired
    assert sorted(os.listdir(wh.published_dir)) == ["v000007.duckdb", "v000007.manifest.json"]


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


def test_a_failed_batch_is_published_with_the_next_run(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh)
    apply(wh, s, "ok1", [({"cookie": "c"}, "n", 1, 1.0)])
    bad = make_batch("bad", [({"cookie": "c"}, "n", 5, 5.0)])
    bad.rejections = pl.DataFrame(
        {"row_nr": [0], "scope": ["cell"], "column": ["n"], "raw_value": ["?"], "reason": ["bad"]},
        schema=REJECTIONS_SCHEMA,
    )
    result = apply_batch(wh, bad, s, max_reject_ratio=0.0)
    assert result.status == "failed"
    with wh.connect_published() as con:  # not yet published: the version did not change
        assert con.execute("SELECT count(*) FROM batches").fetchall() == [(1,)]
    apply(wh, s, "ok2", [({"cookie": "c"}, "n", 2, 2.0)])
    assert published(wh) == working(wh)
    with wh.connect_published() as con:
        statuses = dict(con.execute("SELECT batch_id, status FROM batches").fetchall())
    assert statuses == {"ok1": "applied", "bad": "failed", "ok2": "applied"}
    with wh.connect_published() as con:
        assert con.execute("SELECT batch_id, reason FROM rejections").fetchall() == [("bad", "bad")]


def test_a_layout2_copy_is_replaced_by_a_catalog_on_the_next_publish(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh)
    apply(wh, s, "a", [({"cookie": "k1"}, "name", "A", 1.0)])
    # A published version of the old form: a full copy of the working database.
    copy = wh.published_dir / "v000001.duckdb"
    copy.unlink()
    catalog.manifest_path(copy).unlink()
    import shutil

    shutil.copyfile(wh.work_path, copy)
    assert wh.current_manifest() is None and wh.needs_publish(1)
    apply(wh, s, "b", [({"cookie": "k2"}, "name", "B", 2.0)])
    manifest = wh.current_manifest()
    assert manifest is not None and [(x.first, x.last) for x in manifest.segments] == [(1, 2)]
    assert published(wh) == working(wh)


# -- kill -9 -----------------------------------------------------------------------------------

# Each snippet runs in a child process that SIGKILLs itself at one point of a publish or a
# compaction: the published version must be the old one or the new one, whole, and the next
# writer or compaction must carry on and clean up.
KILL_POINTS = {
    "compaction: folded files written, nothing committed": (
        "compact",
        "Warehouse.commit_manifest",
        "before",
    ),
    "compaction: catalog renamed into place, readers not pointed at it": (
        "compact",
        "catalog.write_catalog",
        "after",
    ),
    "publish: catalog renamed into place, readers not pointed at it": (
        "apply",
        "catalog.write_catalog",
        "after",
    ),
    "publish: run written, nothing committed": ("apply", "runs.write_file", "after"),
}

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from propsync.config import Settings
    from propsync.store import catalog, compaction, runs, warehouse as warehouse_module
    from propsync.store.warehouse import Warehouse
    from tests.helpers import apply

    action, target, when, root = sys.argv[1:5]
    owner_name, func_name = target.split(".")
    owner = {"Warehouse": Warehouse, "catalog": catalog, "runs": runs}[owner_name]
    original = getattr(owner, func_name)

    def killing(*args, **kwargs):
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        out = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return out

    setattr(owner, func_name, killing)
    if owner is catalog:  # imported by name elsewhere too
        warehouse_module.catalog.write_catalog = killing
    wh = Warehouse(Path(root))
    s = Settings(warehouse=wh.root, auto_compact=False)
    if action == "compact":
        compaction.compact(wh, s, full=True)
    else:
        apply(wh, s, "killed", [({"cookie": "c1"}, "name", "killed", 99.0)])
    """
)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_in_a_publish_or_a_compaction_leaves_a_whole_version(
    tmp_path: Path, point: str
) -> None:
    action, target, when = KILL_POINTS[point]
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh, keep_published_versions=1, file_retention_seconds=0, keep_runs=1)
    for i in range(6):
        apply(wh, s, f"b{i}", [({"cookie": f"c{i % 3}"}, "name", f"v{i}", float(i))])
    before, version = published(wh), wh.published_version()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, action, target, when, str(wh.root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    assert wh.published_version() == version
    assert published(wh) == before

    # The next compaction and the next batch carry on; no stray file stays.
    compaction.compact(wh, s, full=True)
    apply(wh, s, "next", [({"cookie": "c0"}, "name", "next", 100.0)])
    assert published(wh) == working(wh)
    compaction.compact(wh, s, full=True)
    manifest = wh.current_manifest()
    assert manifest is not None
    assert on_disk(wh) <= manifest.files() | run_files(wh)
    assert not [n for n in os.listdir(wh.published_dir) if n.startswith(".")]
    assert not [n for n in os.listdir(wh.segments_dir) if n.startswith(".") and n != ".tmp"]


# -- compaction policy -------------------------------------------------------------------------


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
    base = catalog.Segment(1, 1, "b", "bh", 11_000_000)
    rows = [193_002, 443_205, 435_006, 277_503, 258_904, 218_002, 242_003, 25_701]
    rows += [43_400, 41_201, 39_800, 39_001, 40_500, 62_701, 63_201, 58_100]
    changes = [seg(n, v) for v, n in enumerate(rows, start=2)]
    fold = compaction.plan([base, *changes], busy=True)
    assert fold == compaction.Fold(1 + rows.index(258_904), 1 + len(rows))
    assert all(compaction.size_class(n) <= 5 for n in rows[rows.index(258_904) :])
    # Seven runs after the larger files: nothing yet; the eighth makes a fold of those eight.
    runs_ = [seg(40_000, 100 + i) for i in range(compaction.FANOUT)]
    bigger = [seg(400_000, 90 + i) for i in range(3)]
    assert compaction.plan([base, *bigger, *runs_[:-1]], busy=True) is None
    assert compaction.plan([base, *bigger, *runs_], busy=True) == compaction.Fold(4, 12)


def test_plan_waits_for_a_new_base_while_writers_are_busy() -> None:
    base = catalog.Segment(1, 1, "b", "bh", 1_000_000)
    tenth = [seg(60_000, 2), seg(50_000, 3)]  # 11% of the base: due when idle only
    assert compaction.plan([base, *tenth]) == compaction.Fold(0, 3)
    assert compaction.plan([base, *tenth], busy=True) is None
    whole = [seg(600_000, 2), seg(500_000, 3)]  # 110%: due either way
    assert compaction.plan([base, *whole], busy=True) == compaction.Fold(0, 3)
    # Same-sized changes are folded as before: their cost is theirs, not the warehouse's.
    small = [seg(1, v) for v in range(2, 2 + compaction.FANOUT)]
    assert compaction.plan([base, *small], busy=True) == compaction.Fold(1, compaction.FANOUT + 1)
    assert compaction.plan([base, *tenth], full=True, busy=True) == compaction.Fold(0, 3)


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


def test_a_copied_warehouse_reads_its_own_files_and_the_next_publish_relinks_it(
    tmp_path: Path,
) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh)
    for i in range(3):
        apply(wh, s, f"b{i}", [({"cookie": f"c{i}"}, "name", f"v{i}", 10.0 + i)])
    expected = published(wh)
    import shutil

    moved = Warehouse(tmp_path / "moved")
    shutil.copytree(wh.root, moved.root, symlinks=True)
    shutil.rmtree(wh.root)  # the files the copied catalog names are gone
    assert published(moved) == expected  # views over the copy's own files, in memory
    assert moved.needs_publish(3)
    from propsync.store.apply import publish_pending

    assert publish_pending(moved, settings_for(moved)) == 3
    manifest = moved.current_manifest()
    assert manifest is not None and manifest.root == str(moved.root.resolve())
    assert moved.published_file().name == "v000003.c1.duckdb"  # the same files, relinked
    with duckdb.connect(str(moved.current_path), read_only=True) as con:  # as an analyst opens it
        assert tables(con) == expected


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


def test_a_catalog_starts_from_the_previous_one_only_when_its_views_are_this_releases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = settings_for(wh)
    apply(wh, s, "b0", [({"cookie": "c"}, "a", 1, 1.0)])
    copies: list[str] = []
    copyfile = catalog.shutil.copyfile
    monkeypatch.setattr(
        catalog.shutil,
        "copyfile",
        lambda src, dst: copies.append(Path(src).name) or copyfile(src, dst),
    )
    apply(wh, s, "b1", [({"cookie": "c"}, "b", 2, 2.0)])  # a new property: a new wide column
    assert copies == ["v000001.duckdb"]
    with wh.connect_published() as con:
        assert con.execute("SELECT a, b FROM customers_wide").fetchall() == [("1", "2")]
    assert published(wh) == working(wh)
    # A catalog written with other view definitions (an older release) is not continued.
    manifest = wh.current_manifest()
    assert manifest is not None and manifest.views == catalog.views_digest()
    monkeypatch.setattr(catalog, "views_digest", lambda: "another release")
    apply(wh, s, "b2", [({"cookie": "c"}, "a", 3, 3.0)])
    assert copies == ["v000001.duckdb"]
    monkeypatch.undo()
    for i in range(30):  # the copied catalog does not grow with the versions it went through
        apply(wh, s, f"more{i}", [({"cookie": "c"}, "a", 10 + i, 10.0 + i)])
    assert wh.published_file().stat().st_size < 2_000_000
    assert published(wh) == working(wh)
