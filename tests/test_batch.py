"""Update batches (propsync.batch): saved and loaded whole, in memory or spooled to Parquet; the
counts every summary reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from propsync.batch import (
    ABSENT_SCHEMA,
    CELLS_SCHEMA,
    IDS_SCHEMA,
    REJECTIONS_SCHEMA,
    Spool,
    UpdateBatch,
    empty,
    one_id_per_row,
    rejected_row_count,
)
from propsync.mapping import load_mapping
from propsync.normalize import normalize_file
from tests.conftest import write_csv, write_json
from tests.store.test_apply_large_batches import CASES, T0


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


def frame(schema: dict[str, Any], *rows: tuple[Any, ...]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=schema, orient="row")


def sample_batch() -> UpdateBatch:
    return UpdateBatch(
        batch_id="imp-1",
        kind="import",
        source="crm.csv",
        ids=frame(
            IDS_SCHEMA, (1, "registered", "ann"), (1, "cookie", "c1"), (3, "registered", "bo")
        ),
        cells=frame(CELLS_SCHEMA, (1, "name", '"Ann"', 10), (3, "name", '"Bo"', None)),
        rejections=frame(
            REJECTIONS_SCHEMA,
            (2, "row", "id", None, "no id"),
            (2, "row", "ts", "x", "bad timestamp"),
            (3, "cell", "age", "old", "not a number"),
        ),
        rows_read=3,
        cells_incoming=6,
        default_timestamp_rows=1,
        started_at_us=T0,
        blank_lines=2,
        absent_cells=frame(ABSENT_SCHEMA, (3, 1)),
    )


def test_a_batch_saves_and_loads_every_field(tmp_path: Path) -> None:
    batch = sample_batch()
    loaded = UpdateBatch.load(batch.save(tmp_path / "saved"))
    for name in ("ids", "cells", "rejections", "absent_cells"):
        assert getattr(loaded, name).equals(getattr(batch, name)), name
    for name in UpdateBatch._META:
        assert getattr(loaded, name) == getattr(batch, name), name
    assert loaded.spool is None


def test_a_batch_saved_before_absent_cells_existed_loads_with_none(tmp_path: Path) -> None:
    saved = sample_batch().save(tmp_path / "saved")
    (saved / "absent_cells.parquet").unlink()
    loaded = UpdateBatch.load(saved)
    assert loaded.absent_cells.is_empty()
    assert loaded.absent_cells.schema == pl.Schema(ABSENT_SCHEMA)


def test_rows_refused_whole_are_counted_once_and_refused_cells_not_at_all() -> None:
    batch = sample_batch()
    assert batch.rejected_rows() == 1  # row 2 twice (two reasons); row 3 lost a cell only
    assert rejected_row_count(empty(REJECTIONS_SCHEMA)) == 0


def test_one_id_per_row_is_false_once_a_row_has_two() -> None:
    batch = sample_batch()
    assert not batch.one_id_per_row()  # row 1: registered and cookie
    assert one_id_per_row(batch.ids.filter(pl.col("id_type") == "registered"))


def test_a_spool_keeps_its_chunks_as_files_and_saves_them_as_one_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.directory.mkdir()
    spool.add(frame(IDS_SCHEMA, (1, "r", "a")), frame(CELLS_SCHEMA, (1, "x", "1", 5)))
    assert spool.one_id_per_row
    spool.add(
        frame(IDS_SCHEMA, (2, "r", "b"), (2, "c", "b2")),
        frame(CELLS_SCHEMA, (2, "x", "2", 6), (2, "y", "3", None)),
    )
    assert (spool.parts, spool.cells, spool.properties) == (2, 3, {"x", "y"})
    assert not spool.one_id_per_row
    assert [Path(f).name for f in spool.files("cells")] == [
        "cells-000000.parquet",
        "cells-000001.parquet",
    ]
    assert all(Path(f).is_file() for f in spool.files("ids") + spool.files("cells"))

    batch = UpdateBatch(
        "imp-2", "import", "big.csv", empty(IDS_SCHEMA), empty(CELLS_SCHEMA), spool=spool
    )
    assert batch.cells_staged == 3 and not batch.one_id_per_row()
    loaded = UpdateBatch.load(batch.save(tmp_path / "saved"))
    assert loaded.ids.rows() == [(1, "r", "a"), (2, "r", "b"), (2, "c", "b2")]
    assert loaded.cells.rows() == [(1, "x", "1", 5), (2, "x", "2", 6), (2, "y", "3", None)]
