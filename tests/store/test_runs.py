"""Run files: folding the runs of versions 1..N in order gives exactly the tables of version N.

A follower (the HTTP service's read model) relies on that: it never re-reads the warehouse.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from propsync.config import Settings
from propsync.errors import AuditFailed
from propsync.store import runs
from propsync.store.apply import apply_batch, publish_pending
from propsync.store.compaction import compact
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, followed_tables, make_batch
from tests.store.test_order_independence import update_st

Tables = dict[str, set[tuple[Any, ...]]]


def fold(root: Path, upto: int) -> Tables:
    """A follower written from sql/runs/write_run.sql's description alone."""
    ids: dict[tuple[str, str], str] = {}
    aliases: dict[str, str] = {}
    props: dict[tuple[str, str], tuple[str, int | None, str]] = {}
    keys: dict[str, int] = {}  # every customer's key, one each and never another

    def key_of(customer: str, key: int) -> None:
        assert keys.setdefault(customer, key) == key, f"{customer} has keys {keys[customer]}, {key}"

    for version in range(1, upto + 1):
        run = runs.read_run(root, version)
        assert set(run["kind"].unique()) <= set(runs.KINDS)
        for r in run.filter(pl.col("kind") == "merge").iter_rows(named=True):
            old, new = r["value"], r["customer_id"]
            key_of(old, r["merged_key"])
            key_of(new, r["customer_key"])
            ids = {k: new if c == old else c for k, c in ids.items()}
            aliases = {k: new if c == old else c for k, c in aliases.items()}
            aliases[old] = new
            props = {k: v for k, v in props.items() if k[0] != old}
        for r in run.filter(pl.col("kind") == "id").iter_rows(named=True):
            key_of(r["customer_id"], r["customer_key"])
            ids[(r["name"], r["value"])] = r["customer_id"]
        listed = set()
        for r in run.filter(pl.col("kind") == "property").iter_rows(named=True):
            key = (r["customer_id"], r["name"])
            assert key not in listed, f"version {version} lists {key} twice"
            listed.add(key)
            key_of(r["customer_id"], r["customer_key"])
            props[key] = (r["value"], r["update_ts"], r["batch_id"])
    assert len(set(keys.values())) == len(keys), "two customers share a key"
    return {
        "customer_ids": {(t, v, c) for (t, v), c in ids.items()},
        "customer_aliases": {(o, c) for o, c in aliases.items()},
        "properties": {(c, p, *v) for (c, p), v in props.items()},
    }


def stored(wh: Warehouse) -> Tables:
    with wh.connect_published() as con:
        return followed_tables(con)


@hyp_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(update_st, min_size=1, max_size=5), min_size=1, max_size=5))
def test_folding_the_runs_gives_every_published_version(batches: list[list[Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "wh")
        s = Settings(warehouse=wh.root)
        for i, updates in enumerate(batches):
            result = apply(wh, s, f"b{i}", updates)
            assert result.published_version == i + 1
            assert stored(wh) == fold(wh.root, i + 1)


def test_a_run_lists_what_won_and_nothing_that_lost(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = Settings(warehouse=wh.root)
    apply(wh, s, "b1", [({"cookie": "c1"}, "name", "new", 10.0)])
    apply(
        wh, s, "b2", [({"cookie": "c1"}, "name", "stale", 5.0), ({"cookie": "c1"}, "age", 3, 6.0)]
    )
    run = runs.read_run(wh.root, 2)
    assert dict(run.schema) == runs.RUN_SCHEMA
    assert run.filter(pl.col("kind") == "property")["name"].to_list() == ["age"]
    assert run.filter(pl.col("kind") == "id").height == 0  # c1 was known
    assert runs.read_run(wh.root, 1).filter(pl.col("kind") == "id")["value"].to_list() == ["c1"]


def test_a_rolled_back_batch_leaves_no_run_and_its_version_is_reused(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = Settings(warehouse=wh.root)
    apply(wh, s, "b1", [({"cookie": "c1"}, "name", "a", 1.0)])

    def refuse(con: Any, result: Any) -> list[str]:
        return ["refused by the test"]

    with pytest.raises(AuditFailed):
        apply(wh, s, "b2", [({"cookie": "c2"}, "name", "b", 1.0)], audit=refuse)
    assert runs.versions(wh.root) == [1]
    apply(wh, s, "b3", [({"cookie": "c3"}, "name", "c", 1.0)])
    assert runs.versions(wh.root) == [1, 2]
    assert runs.read_run(wh.root, 2)["batch_id"].unique().to_list() == ["b3"]
    assert stored(wh) == fold(wh.root, 2)


def test_unpublished_batches_have_runs_that_publish_catches_up_on(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = Settings(warehouse=wh.root)
    for i in range(3):
        apply(wh, s, f"b{i}", [({"cookie": f"c{i}"}, "n", i, 1.0)], publish=False)
    assert wh.published_version() == 0 and runs.versions(wh.root) == [1, 2, 3]
    publish_pending(wh, s)
    assert stored(wh) == fold(wh.root, 3)


def test_runs_are_pruned_behind_the_published_version_once_no_catalog_lists_them(
    tmp_path: Path,
) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = Settings(
        warehouse=wh.root, keep_runs=2, keep_published_versions=1, file_retention_seconds=0
    )
    for i in range(5):
        apply(wh, s, f"b{i}", [({"cookie": "c"}, "n", i, float(i))])
    assert runs.versions(wh.root) == [1, 2, 3, 4, 5]  # the published version reads them all
    compact(wh, s, full=True)
    assert runs.versions(wh.root) == [4, 5]
    with pytest.raises(runs.RunMissing) as err:
        runs.read_run(wh.root, 3)
    assert err.value.version == 3 and "rebuild" in str(err.value)


def test_a_recreated_work_database_clears_the_old_runs(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    s = Settings(warehouse=wh.root)
    for i in range(3):
        apply(wh, s, f"b{i}", [({"cookie": "c"}, "n", i, float(i))])
    wh.work_path.unlink()
    apply_batch(wh, make_batch("again", [({"cookie": "d"}, "n", 1, 1.0)]), s, publish=False)
    assert runs.versions(wh.root) == [1]
    assert runs.read_run(wh.root, 1)["batch_id"].unique().to_list() == ["again"]


def test_run_files_are_read_only(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    apply(wh, Settings(warehouse=wh.root), "b1", [({"cookie": "c"}, "n", 1, 1.0)])
    assert runs.run_path(wh.root, 1).stat().st_mode & 0o777 == 0o444
