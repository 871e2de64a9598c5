"""Update batches (propsync.batch): a spooled batch saves and loads its rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

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
