"""The normalised form every write path produces and the apply path consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

IDS_SCHEMA = {"row_nr": pl.Int64, "id_type": pl.String, "id_value": pl.String}
CELLS_SCHEMA = {"row_nr": pl.Int64, "property": pl.String, "value": pl.String, "update_ts": pl.Int64}
REJECTIONS_SCHEMA = {
    "row_nr": pl.Int64,
    "scope": pl.String,  # 'row': the whole row was dropped; 'cell': only this property
    "column": pl.String,
    "raw_value": pl.String,
    "reason": pl.String,
}


def empty(schema: dict[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


@dataclass
class UpdateBatch:
    """Property updates keyed by source row.

    ``ids`` lists every customer id of each row; ``cells`` one property update per row and property
    (``value`` canonical JSON, ``update_ts`` microseconds since the epoch, null for legacy data);
    ``rejections`` what normalisation refused. Row numbers are 1-based positions in the source.
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

    def rejected_rows(self) -> int:
        rows = self.rejections.filter(pl.col("scope") == "row")
        return int(rows["row_nr"].n_unique()) if len(rows) else 0
