"""The frames the suites validate, built with Polars from a staged batch or merge metrics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import polars as pl

from propsync.batch import UpdateBatch

CELLS_COLUMNS = {
    "row_nr": pl.Int64,
    "property": pl.String,
    "type": pl.String,
    "value": pl.String,
    "update_ts": pl.Int64,
    "id_count": pl.Int64,
}


def staged_cells(batch: UpdateBatch, types: Mapping[str, str]) -> pl.DataFrame:
    """One row per staged cell: its source row, property, mapped type, value, time and id count."""
    per_row = batch.ids.group_by("row_nr").agg(pl.len().cast(pl.Int64).alias("id_count"))
    return (
        batch.cells.join(per_row, on="row_nr", how="left")
        .with_columns(
            pl.col("id_count").fill_null(0),
            pl.col("property")
            .replace_strict(dict(types), default=None, return_dtype=pl.String)
            .alias("type"),
        )
        .select(list(CELLS_COLUMNS))
        .cast(CELLS_COLUMNS)  # type: ignore[arg-type]
    )


def chunks(frame: pl.DataFrame, rows: int) -> Iterator[pl.DataFrame]:
    """``frame`` in slices of at most ``rows`` rows; an empty frame yields itself once."""
    if frame.height == 0:
        yield frame
        return
    for offset in range(0, frame.height, rows):
        yield frame.slice(offset, rows)


def rejected_cells(
    rejections: pl.DataFrame, n_properties: int, absent: pl.DataFrame | None = None
) -> int:
    """Cells a batch refused: every cell of a rejected row (but those the source lacks, see
    ``UpdateBatch.absent_cells``), plus single cells of the other rows."""
    rows = set(rejections.filter(pl.col("scope") == "row")["row_nr"].to_list())
    cells = rejections.filter((pl.col("scope") == "cell") & ~pl.col("row_nr").is_in(list(rows)))
    lacking = 0
    if absent is not None and absent.height:
        lacking = int(absent.filter(pl.col("row_nr").is_in(list(rows)))["cells"].sum())
    return len(rows) * n_properties - lacking + cells.height


def source_cells(batch: UpdateBatch, source_rows: int, n_properties: int) -> tuple[int, int]:
    """(data rows, cells) of a source whose rows a reader counted on its own: its blank lines are
    not rows, and keys a JSON Lines row lacks are not cells."""
    rows = source_rows - batch.blank_lines
    return rows, rows * n_properties - int(batch.absent_cells["cells"].sum())


def staged_summary(batch: UpdateBatch, *, source_rows: int, n_properties: int) -> pl.DataFrame:
    """One row of counts that must reconcile: rows and cells are either staged or quarantined."""
    rejected_rows = batch.rejected_rows()
    accepted_rows = batch.ids["row_nr"].n_unique()
    with_rejections = batch.rejections["row_nr"].n_unique()
    rows_read = batch.rows_read
    data_rows, source_cells_ = source_cells(batch, source_rows, n_properties)
    values: dict[str, Any] = {
        "source_rows": data_rows,
        "blank_lines": batch.blank_lines,
        "rows_read": rows_read,
        "rows_accepted": accepted_rows,
        "rows_rejected": rejected_rows,
        "rows_accounted": accepted_rows + rejected_rows,
        "rows_with_rejections": with_rejections,
        "reject_ratio": with_rejections / rows_read if rows_read else 0.0,
        "cells_incoming": batch.cells_incoming,
        "cells_expected": source_cells_,
        "cells_staged": batch.cells.height,
        "cells_rejected": rejected_cells(batch.rejections, n_properties, batch.absent_cells),
    }
    values["cells_accounted"] = values["cells_staged"] + values["cells_rejected"]
    return pl.DataFrame([values])


def one_row(values: Mapping[str, Any]) -> pl.DataFrame:
    return pl.DataFrame([dict(values)])
