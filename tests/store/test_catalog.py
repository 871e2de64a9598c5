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
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings as hyp_settings, strategies as st

from propsync.batch import REJECTIONS_SCHEMA
from propsync.config import Settings
from propsync.store import catalog, compaction, runs
from propsync.store.apply import apply_batch
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, followed_tables, make_batch, published_state
from tests.store.test_order_independence import reference, update_st

Tables = dict[str, set[tuple[Any, ...]]]

# What readers see beyond the followed tables: the batch records and the quarantine.
HISTORY = {
    # The view's counts of rows with rejections are derived from its rejections (compared below).
    "batches": "SELECT COLUMNS(lambda c: c NOT IN "
    "('applied_at_us', 'rows_with_rejections', 'rows_with_cells_rejected')) FROM batches",
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
