"""The normalised form every write path produces and the apply path consumes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

IDS_SCHEMA = {"row_nr": pl.Int64, "id_type": pl.String, "id_value": pl.String}
CELLS_SCHEMA = {
    "row_nr": pl.Int64,
    "property": pl.String,
    "value": pl.String,
    "update_ts": pl.Int64,
}
# Rows that lack some mapped keys (JSON Lines): how many of their cells are therefore absent.
ABSENT_SCHEMA = {"row_nr": pl.Int64, "cells": pl.Int32}
REJECTIONS_SCHEMA = {
    "row_nr": pl.Int64,
    "scope": pl.String,  # 'row': the whole row was dropped; 'cell': only this property
    "column": pl.String,
    "raw_value": pl.String,
    "reason": pl.String,
}


def empty(schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def one_id_per_row(ids: pl.DataFrame) -> bool:
    """Whether every row of an ids frame (row_nr, id_type, id_value) has exactly one id."""
    return ids.height == ids["row_nr"].n_unique()


def rejected_row_count(rejections: pl.DataFrame) -> int:
    """Rows refused whole (scope ``row``) in a rejections frame: the ``rows_rejected`` of every
    summary (a row may be refused for several reasons; rows with only cells refused are not)."""
    return int(rejections.filter(pl.col("scope") == "row")["row_nr"].n_unique())


def rows_with_rejections_count(rejections: pl.DataFrame) -> int:
    """Rows with any rejection, of the whole row or of single cells: the ``rows_with_rejections``
    of every summary, which ``max_reject_ratio`` compares with the rows read."""
    return int(rejections["row_nr"].n_unique())


@dataclass
class Spool:
    """The ids and cells of a batch too large to hold in memory, as Parquet files in
    ``directory`` (one pair per normalised chunk, ``normalize_file``); the apply path reads them
    with DuckDB, which spills what does not fit its memory limit."""

    directory: Path
    parts: int = 0
    cells: int = 0  # rows in the cells files
    properties: set[str] = field(default_factory=set)  # the names the cells use
    one_id_per_row: bool = True

    def add(self, ids: pl.DataFrame, cells: pl.DataFrame) -> None:
        # Uncompressed: a third of zstd's write time and DuckDB reads it as fast; the files live
        # only until the batch is applied.
        for kind, frame in (("ids", ids), ("cells", cells)):
            frame.write_parquet(
                self.directory / f"{kind}-{self.parts:06d}.parquet", compression="uncompressed"
            )
        self.parts += 1
        self.cells += cells.height
        self.properties.update(cells["property"].unique().to_list())
        self.one_id_per_row = self.one_id_per_row and one_id_per_row(ids)

    def files(self, kind: str) -> list[str]:
        return [str(self.directory / f"{kind}-{n:06d}.parquet") for n in range(self.parts)]


@dataclass
class UpdateBatch:
    """Property updates keyed by source row.

    ``ids`` lists every customer id of each row; ``cells`` one property update per row and property
    (``value`` canonical JSON, ``update_ts`` microseconds since the epoch, null for legacy data);
    ``rejections`` what normalisation refused. Row numbers are 1-based positions in the source.
    ``cells_incoming`` counts the cells the source has: rows x mapped properties, less the
    ``absent_cells`` (keys a JSON Lines row lacks: no update); ``blank_lines`` are CSV lines that
    are not rows (a reader counting the file's rows with Polars counts them).
    """

    batch_id: str
    kind: str  # import | track | edit
    source: str
    ids: pl.DataFrame
    cells: pl.DataFrame
    rejections: pl.DataFrame = field(default_factory=lambda: empty(REJECTIONS_SCHEMA))
    rows_read: int = 0
    cells_incoming: int = 0
    default_timestamp_rows: int = 0
    started_at_us: int | None = None
    blank_lines: int = 0
    absent_cells: pl.DataFrame = field(default_factory=lambda: empty(ABSENT_SCHEMA))
    # Set for a batch too large for memory: ``ids`` and ``cells`` are then empty and their rows
    # are in the spool's files.
    spool: Spool | None = None

    @property
    def cells_staged(self) -> int:
        """The cells the batch carries (in ``cells`` or in its spool)."""
        return self.cells.height if self.spool is None else self.spool.cells

    def one_id_per_row(self) -> bool:
        if self.spool is not None:
            return self.spool.one_id_per_row
        return one_id_per_row(self.ids)

    def rejected_rows(self) -> int:
        return rejected_row_count(self.rejections)

    _META = (
        "batch_id",
        "kind",
        "source",
        "rows_read",
        "cells_incoming",
        "default_timestamp_rows",
        "started_at_us",
        "blank_lines",
    )

    def save(self, directory: str | Path) -> Path:
        """Write the batch as Parquet files plus ``batch.json``; a later task can ``load`` it."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for name in ("rejections", "absent_cells"):
            getattr(self, name).write_parquet(d / f"{name}.parquet")
        for name in ("ids", "cells"):
            if self.spool is None:
                getattr(self, name).write_parquet(d / f"{name}.parquet")
            else:  # streamed: the spooled rows are never all in memory
                schema = IDS_SCHEMA if name == "ids" else CELLS_SCHEMA
                parts = self.spool.files(name)
                frame = pl.scan_parquet(parts) if parts else empty(schema).lazy()
                frame.sink_parquet(d / f"{name}.parquet")
        meta = {k: getattr(self, k) for k in self._META}
        (d / "batch.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> UpdateBatch:
        d = Path(directory)
        meta = json.loads((d / "batch.json").read_text(encoding="utf-8"))
        return cls(
            **meta,
            ids=pl.read_parquet(d / "ids.parquet"),
            cells=pl.read_parquet(d / "cells.parquet"),
            rejections=pl.read_parquet(d / "rejections.parquet"),
            absent_cells=(
                pl.read_parquet(d / "absent_cells.parquet")
                if (d / "absent_cells.parquet").exists()  # saved before there were any
                else empty(ABSENT_SCHEMA)
            ),
        )
