"""Large batches: spooled to Parquet and applied from there, merged in ranges of customer keys;
either way with the result of the same batch applied at once from memory.

``normalize_file`` spools once the chunks it holds pass ``spool_after_bytes``; here 0 spools from
the first chunk, and chunks of a few rows spread every case over several files. Each case is
imported twice into fresh warehouses, spooled and in memory: the published state, the counts and
the quarantine must be the same.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from propsync.config import Settings
from propsync.mapping import load_mapping
from propsync.normalize import normalize_file
from propsync.store import apply
from propsync.store.apply import BatchResult, apply_batch, key_ranges
from propsync.store.warehouse import Warehouse
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


def test_a_spooled_batch_saves_and_loads_its_rows(tmp_path: Path) -> None:
    mapping, header, rows = CASES["one_id"]
    source = write_csv(tmp_path / "one_id.csv", header, rows)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    options: dict[str, Any] = {
        "batch_id": "b",
        "source": str(source),
        "started_at_us": T0,
        "now_us": T0,
        "max_future_skew_us": 10**15,
    }
    model = load_mapping(write_json(tmp_path / "mapping.json", mapping))
    spooled = normalize_file(
        source, model, chunk_rows=3, spool_dir=spool_dir, spool_after_bytes=0, **options
    )
    in_memory = normalize_file(source, model, chunk_rows=3, **options)
    loaded = type(spooled).load(spooled.save(tmp_path / "saved"))
    assert loaded.spool is None
    assert loaded.cells_staged == in_memory.cells_staged == spooled.cells_staged > 0
    for name in ("ids", "cells"):
        assert getattr(loaded, name).equals(getattr(in_memory, name)), name
    assert json.loads((tmp_path / "saved" / "batch.json").read_text())["rows_read"] == len(rows)
    assert isinstance(loaded.cells, pl.DataFrame)


def test_a_batch_merged_in_key_ranges_applies_as_one_merged_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update of every customer (some newer, some older, some new) into a warehouse holding
    them, merged in ranges of 7 winners instead of all at once."""
    base = [[f"c{i:02d}", "2024-02-01T00:00:00Z", f"base {i}", str(i)] for i in range(40)]
    update = [
        [f"c{i:02d}", f"2024-0{1 + 2 * (i % 2)}-01T00:00:00Z", f"update {i}", str(100 + i)]
        for i in range(0, 50, 1)
    ]
    header = ["id", "ts", "name", "score"]
    mapping = write_json(tmp_path / "mapping.json", ONE_ID)
    outcomes = []
    for ranged in (True, False):
        root = tmp_path / f"warehouse-{ranged}"
        _import(root, write_csv(tmp_path / "base.csv", header, base), mapping)
        with monkeypatch.context() as m:
            if ranged:
                m.setattr(apply, "MERGE_RANGE_ROWS", 7)
            result = _import(root, write_csv(tmp_path / "update.csv", header, update), mapping)
        outcomes.append(_outcome(root, result))
    ranged_outcome, at_once = outcomes
    assert ranged_outcome == at_once
    # 20 odd customers of the base are updated with newer values, 10 customers are new.
    assert at_once["summary"]["properties_applied"] == (20 + 10) * 2
    assert at_once["summary"]["properties_stale"] == 20 * 2


def test_key_ranges_cover_every_key_once_in_parts_of_about_the_size_asked() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE winning_properties AS "
        "SELECT (i // 3) * 5 AS customer_key FROM range(30000) t(i)"
    )
    assert key_ranges(con, 30000) == [(-(2**63), 2**63 - 1)]
    ranges = key_ranges(con, 3000)
    assert ranges[0][0] == -(2**63) and ranges[-1][1] == 2**63 - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [
        con.execute(
            "SELECT count(*) FROM winning_properties WHERE customer_key BETWEEN $a AND $b",
            {"a": a, "b": b},
        ).fetchall()[0][0]
        for a, b in ranges
    ]
    assert sum(sizes) == 30000 and len(sizes) == 10
    assert max(sizes) < 2 * 3000, sizes
