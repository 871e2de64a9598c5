"""Large batches: spooled to Parquet and applied from there, merged by writing the kept rows into a
new table; either way with the result of the same batch applied from memory, deleting in place.

``normalize_file`` spools once the chunks it holds pass ``spool_after_bytes``; here 0 spools from
the first chunk, and chunks of a few rows spread every case over several files. Each case is
imported twice into fresh warehouses, spooled and in memory: the published state, the counts and
the quarantine must be the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from propsync import sql
from propsync.config import Settings
from propsync.mapping import load_mapping
from propsync.normalize import normalize_file
from propsync.store import apply
from propsync.store.apply import BatchResult, apply_batch
from propsync.store.warehouse import Warehouse
from tests import helpers
from tests.conftest import write_csv, write_json
from tests.helpers import published_state

T0 = 1_700_000_000_000_000

ONE_ID = {
    "ids": [{"from_column": "id", "to_id": "crm"}],
    "update_timestamp": {"from_column": "ts"},
    "properties": [
        {"from_column": "name", "to_property": "name", "type": "string"},
        {"from_column": "score", "to_property": "score", "type": "number"},
    ],
}
TWO_IDS = {
    **ONE_ID,
    "ids": [
        {"from_column": "id", "to_id": "crm"},
        {"from_column": "email", "to_id": "email"},
    ],
}


def _import(root: Path, source: Path, mapping: Path, *, spool: bool = False) -> BatchResult:
    warehouse = Warehouse(root)
    settings = Settings(
        warehouse=root, lock_timeout_seconds=5, max_reject_ratio=1.0, hard_id_types=("crm",)
    )
    with warehouse.spool_directory() as directory:
        batch = normalize_file(
            source,
            load_mapping(mapping),
            chunk_rows=3,
            spool_dir=directory if spool else None,
            spool_after_bytes=0,
            batch_id="b-" + source.stem,
            source=str(source),
            started_at_us=T0,
            now_us=T0,
            max_future_skew_us=10**15,
        )
        if spool:
            assert batch.spool is not None and batch.spool.parts > 1
            assert (batch.ids.height, batch.cells.height) == (0, 0)
            assert sorted(p.name for p in directory.iterdir())[:2] == [
                "cells-000000.parquet",
                "cells-000001.parquet",
            ]
        else:
            assert batch.spool is None
        return apply_batch(warehouse, batch, settings, consume=True)


def _outcome(root: Path, result: BatchResult) -> dict[str, Any]:
    return {
        "state": published_state(Warehouse(root)),
        "summary": result.summary() | {"batch_id": None},
        "created": result.customers_created,
        "merged": result.customers_merged,
        "rejections": result.rejections.sort("row_nr", "scope").rows(),
    }


CASES = {
    # A customer in three chunks with the newest row in the middle one, a tie in time settled by
    # the value, a blank score, a row without id (rejected) and a bad number (cell rejected).
    "one_id": (
        ONE_ID,
        ["id", "ts", "name", "score"],
        [
            ["a", "2024-01-01T00:00:00Z", "a-old", "1"],
            ["b", "2024-01-01T00:00:00Z", "b", "2"],
            ["c", "2024-01-01T00:00:00Z", "c", ""],
            ["a", "2024-03-01T00:00:00Z", "a-newest", "3"],
            ["", "2024-03-01T00:00:00Z", "nobody", "4"],
            ["d", "2024-01-01T00:00:00Z", "d", "not a number"],
            ["a", "2024-02-01T00:00:00Z", "a-middle", "5"],
            ["b", "2024-01-01T00:00:00Z", "b-tie", "2"],
        ],
    ),
    # Rows with two ids: customers joined across chunks and a hard-id conflict the union-find
    # rejects (row 5 would put crm ids b and c in one customer).
    "two_ids": (
        TWO_IDS,
        ["id", "email", "ts", "name", "score"],
        [
            ["a", "", "2024-01-01T00:00:00Z", "a", "1"],
            ["", "x@example.com", "2024-02-01T00:00:00Z", "x", "2"],
            ["b", "y@example.com", "2024-01-01T00:00:00Z", "b", "3"],
            ["a", "x@example.com", "2024-03-01T00:00:00Z", "a+x", "4"],
            ["c", "y@example.com", "2024-04-01T00:00:00Z", "conflict", "5"],
            ["c", "", "2024-04-01T00:00:00Z", "c", "6"],
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_spooled_batch_applies_as_the_same_batch_in_memory(tmp_path: Path, case: str) -> None:
    mapping, header, rows = CASES[case]
    source = write_csv(tmp_path / f"{case}.csv", header, rows)
    mapping_file = write_json(tmp_path / "mapping.json", mapping)
    outcomes = []
    for spool in (True, False):
        root = tmp_path / f"warehouse-{spool}"
        result = _import(root, source, mapping_file, spool=spool)
        assert result.status == "applied", result.message
        outcomes.append(_outcome(root, result))
    spooled, in_memory = outcomes
    assert spooled == in_memory
    assert in_memory["state"], "the case applied nothing"
    if case == "two_ids":
        assert frozenset({("crm", "a"), ("email", "x@example.com")}) in in_memory["state"]
        assert [r[0] for r in in_memory["rejections"] if "hard ids" in r[-1]] == [5]


def test_the_spool_is_removed_after_the_import(tmp_path: Path) -> None:
    mapping, header, rows = CASES["one_id"]
    source = write_csv(tmp_path / "one_id.csv", header, rows)
    root = tmp_path / "warehouse"
    _import(root, source, write_json(tmp_path / "mapping.json", mapping), spool=True)
    assert [p.name for p in (root / "tmp").iterdir() if p.name.startswith("spool-")] == []


def test_a_batch_that_rewrites_the_table_applies_as_one_that_deletes_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update of every customer (some newer, some older, some new) into a warehouse holding
    them, once retiring the rows it beats in place and once writing the kept rows anew."""
    base = [[f"c{i:02d}", "2024-02-01T00:00:00Z", f"base {i}", str(i)] for i in range(40)]
    update = [
        [f"c{i:02d}", f"2024-0{1 + 2 * (i % 2)}-01T00:00:00Z", f"update {i}", str(100 + i)]
        for i in range(0, 50, 1)
    ]
    header = ["id", "ts", "name", "score"]
    mapping = write_json(tmp_path / "mapping.json", ONE_ID)
    outcomes = []
    for rewrite in (True, False):
        root = tmp_path / f"warehouse-{rewrite}"
        _import(root, write_csv(tmp_path / "base.csv", header, base), mapping)
        calls: list[bool] = []

        def decide(
            con: duckdb.DuckDBPyConnection,
            winners: int,
            *,
            small: bool = False,
            pinned: int = 0,
            rewrite: bool = rewrite,
            calls: list[bool] = calls,
        ) -> bool:
            calls.append(rewrite)
            return rewrite

        with monkeypatch.context() as m:
            m.setattr(apply, "rewrites_properties", decide)
            result = _import(root, write_csv(tmp_path / "update.csv", header, update), mapping)
        assert calls == [rewrite]
        outcomes.append(_outcome(root, result))
        work = duckdb.connect(str(root / "work.duckdb"), read_only=True)
        columns = "SELECT column_name, data_type, is_nullable FROM duckdb_columns() WHERE table_name = $t ORDER BY column_index"
        fresh = duckdb.connect()
        fresh.execute(sql.load("schema/07_property_values"))
        assert (
            work.execute(columns, {"t": "property_values"}).fetchall()
            == fresh.execute(columns, {"t": "property_values"}).fetchall()
        )
        assert work.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'property_values_next'"
        ).fetchall() == [(0,)]
        work.close()
    rewritten, in_place = outcomes
    assert rewritten == in_place
    # 20 odd customers of the base are updated with newer values, 10 customers are new.
    assert in_place["summary"]["properties_applied"] == (20 + 10) * 2
    assert in_place["summary"]["properties_stale"] == 20 * 2


def test_the_merge_rewrites_the_table_once_deleting_in_place_would_pin_its_share_of_memory() -> (
    None
):
    # 2,048 vectors of 2,048 rows: deleting a row in each pins 2,048 x 16 KiB = 32 MiB.
    for limit, rewrites_all in (("64MiB", True), (None, False)):  # None: DuckDB's 80% of RAM
        con = duckdb.connect(config={"memory_limit": limit} if limit else {})
        con.execute(sql.load("schema/07_property_values"))
        con.execute(
            "INSERT INTO property_values SELECT i, 1, '1', 1, 'b' FROM range(2048 * 2048) t(i)"
        )
        assert apply.rewrites_properties(con, 10**9) is rewrites_all
        if limit:
            assert apply.memory_limit_bytes(con) == 64 * 2**20
            assert not apply.rewrites_properties(con, 1024)
            assert apply.rewrites_properties(con, 1025)
            # A small batch may pin three quarters of the limit: 3,072 vectors of 16 KiB, but
            # there are only 2,048 here, so no small batch rewrites this table.
            assert not apply.rewrites_properties(con, 10**9, small=True)
        con.close()
    con = duckdb.connect(config={"memory_limit": "16MiB"})  # 1,024 vectors: 768 may be pinned
    con.execute(sql.load("schema/07_property_values"))
    con.execute("INSERT INTO property_values SELECT i, 1, '1', 1, 'b' FROM range(2048 * 2048) t(i)")
    assert not apply.rewrites_properties(con, 768, small=True)
    assert apply.rewrites_properties(con, 769, small=True)
    assert apply.rewrites_properties(con, 257)
    # Rows deleted in place by earlier batches of a writer that holds the lock still pin theirs.
    assert not apply.rewrites_properties(con, 500, small=True, pinned=268)
    assert apply.rewrites_properties(con, 500, small=True, pinned=269)


@pytest.mark.parametrize("consume", [False, True])
def test_a_batch_whose_delete_in_place_runs_out_of_memory_is_retried_rewriting_the_table(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    consume: bool,
) -> None:
    """DuckDB pins memory for every vector a transaction deletes from. Should the delete in place
    run out of memory anyway, the batch is applied again from the start, rewriting
    ``property_values`` (bounded memory): the same state as a run without the fault. A small
    imported batch (``consume``) keeps its cells for that."""
    base = [({"crm": f"c{i}"}, "score", i, float(i)) for i in range(40)]
    update = [({"crm": f"c{i}"}, "score", -i, 100.0 + i) for i in range(0, 40, 2)]
    update += [({"crm": "new"}, "score", 7, 5.0)]
    states = []
    for fault in (False, True):
        wh = Warehouse(tmp_path / f"wh-{fault}")
        s = Settings(warehouse=wh.root, auto_compact=False)
        helpers.apply(wh, s, "base", base)
        calls: list[int] = []

        def out_of_memory(
            con: duckdb.DuckDBPyConnection,
            winners: int,
            *,
            small: bool = False,
            pinned: int = 0,
            calls: list[int] = calls,
        ) -> bool:
            calls.append(winners)
            raise duckdb.OutOfMemoryException("failed to pin block of size 256.0 KiB")

        with monkeypatch.context() as m, caplog.at_level("WARNING", logger="propsync.apply"):
            if fault:
                m.setattr(apply, "rewrites_properties", out_of_memory)
            result = helpers.apply(wh, s, "update", update, consume=consume)
        assert result.status == "applied"
        assert result.properties_applied == 21 and result.properties_stale == 0
        if fault:
            assert calls == [21]  # the retry rewrote without asking
            assert "ran out of memory" in caplog.text and "retrying it" in caplog.text
        states.append(published_state(wh))
        work = duckdb.connect(str(wh.work_path), read_only=True)
        assert work.execute(
            "SELECT count(*), count(DISTINCT (customer_key, property_id)) FROM property_values"
        ).fetchall() == [(41, 41)]
        work.close()
    assert states[0] == states[1]
