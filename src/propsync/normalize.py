"""Snapshot files to an UpdateBatch: read with Polars, map columns, convert types, stamp times.

All work is vectorised. Rows and cells that cannot be used are not dropped silently: they become
rejections with row number, raw value and reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from propsync.batch import CELLS_SCHEMA, IDS_SCHEMA, REJECTIONS_SCHEMA, UpdateBatch, empty
from propsync.errors import SourceError, UsageError
from propsync.mapping import Mapping
from propsync.timestamps import parse_timestamps
from propsync.values import convert, is_blank

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def source_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"cannot tell the format of {str(path)!r}: use one of {', '.join(sorted(FORMATS))}",
            path=str(path),
        )
    return fmt


def source_columns(path: Path) -> list[str]:
    """Column names of a source file, read without reading its rows."""
    fmt = source_format(path)
    if not path.is_file():
        raise SourceError(f"source file {str(path)!r} does not exist", path=str(path))
    try:
        if fmt == "csv":
            return pl.read_csv(path, n_rows=0, infer_schema=False).columns
        if fmt == "parquet":
            return list(pl.read_parquet_schema(path))
        return list(pl.scan_ndjson(path, infer_schema_length=100).collect_schema())
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"cannot read {str(path)!r}: {exc}", path=str(path)) from None


# Rows normalised at a time by ``normalize_file``. Whole-file normalisation of 1M x 10 peaked at
# 1.19 GB of RSS; chunks of 100k rows at 0.74 GB, in the same time (docs/benchmarks.md).
CHUNK_ROWS = 100_000


def _scan(path: Path) -> pl.LazyFrame:
    fmt = source_format(path)
    if fmt == "csv":
        # Raw text: ids such as "007" must keep their leading zeros.
        return pl.scan_csv(path, infer_schema=False)
    if fmt == "parquet":
        return pl.scan_parquet(path)
    return pl.scan_ndjson(path, infer_schema_length=None)


def read_source(path: Path) -> pl.DataFrame:
    try:
        return _scan(path).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"cannot read {str(path)!r}: {exc}", path=str(path)) from None


def iter_source(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pl.DataFrame]:
    """The source's rows in order, ``chunk_rows`` at a time (the last chunk may be shorter)."""
    try:
        for chunk in _scan(path).collect_batches(chunk_size=chunk_rows):
            if chunk.height:
                yield chunk
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"cannot read {str(path)!r}: {exc}", path=str(path)) from None


@dataclass(frozen=True)
class FileScan:
    """What one read of a source file's bytes gives: its digest and its line count."""

    sha256: str
    newlines: int


def scan_file(path: Path) -> FileScan:
    h = hashlib.sha256()
    newlines = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            newlines += block.count(b"\n")
    return FileScan(h.hexdigest(), newlines)


def file_digest(path: Path) -> str:
    return scan_file(path).sha256


def estimate_rows(path: Path, scan: FileScan | None = None) -> int:
    """Rows in the source, for progress only: Parquet's count, else the number of lines (from
    ``scan`` when the caller has read the file already)."""
    if source_format(path) == "parquet":
        return int(pl.scan_parquet(path).select(pl.len()).collect().item())
    lines = (scan or scan_file(path)).newlines
    return max(lines - (source_format(path) == "csv"), 0)


def import_batch_id(digest: str, mapping: Mapping, legacy: bool, started_at_us: int | None) -> str:
    """Same file, mapping and options give the same id, so re-running an import is a no-op."""
    key = json.dumps(
        [digest, mapping.model_dump(mode="json"), legacy, started_at_us], sort_keys=True
    )
    return "imp-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _raw_text(s: pl.Series) -> pl.Series:
    return s if s.dtype == pl.String else s.cast(pl.String, strict=False)


def _row_rejections(
    row_nr: pl.Series, mask: pl.Series, column: str, raw: pl.Series, reason: str
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row_nr": row_nr.filter(mask),
            "scope": "row",
            "column": column,
            "raw_value": _raw_text(raw).filter(mask),
            "reason": reason,
        },
        schema=REJECTIONS_SCHEMA,
    )


def normalize(
    df: pl.DataFrame,
    mapping: Mapping,
    *,
    batch_id: str,
    source: str,
    started_at_us: int,
    now_us: int,
    max_future_skew_us: int,
    legacy: bool = False,
    first_row: int = 1,
) -> UpdateBatch:
    """Map a source frame to an UpdateBatch. ``mapping.check_columns`` must have passed.

    ``first_row`` is the source row number of ``df``'s first row, for normalising in chunks.
    """
    if legacy and mapping.update_timestamp is not None:
        raise UsageError(
            "--legacy imports carry no timestamps: remove update_timestamp from the mapping"
        )
    n = df.height
    if mapping.constant_columns:
        df = df.with_columns(pl.lit(c.value).alias(c.name) for c in mapping.constant_columns)
    row_nr = pl.Series("row_nr", range(first_row, first_row + n), dtype=pl.Int64)
    rejections: list[pl.DataFrame] = []
    row_ok = pl.Series([True] * n, dtype=pl.Boolean)

    # Update time of each row.
    default_rows = 0
    if legacy:
        ts = pl.Series("update_ts", [None] * n, dtype=pl.Int64)
    elif mapping.update_timestamp is None:
        ts = pl.Series("update_ts", [started_at_us] * n, dtype=pl.Int64)
    else:
        col = mapping.update_timestamp.from_column
        raw = df[col]
        parsed = parse_timestamps(raw, mapping.timezone)
        blank = is_blank(raw)
        default_rows = int(blank.sum())
        unparseable = parsed.is_null() & ~blank
        negative = (parsed < 0).fill_null(False)
        future = (parsed > now_us + max_future_skew_us).fill_null(False)
        for mask, reason in (
            (unparseable, "unparseable update_timestamp"),
            (negative, "negative update_timestamp"),
            (future, f"update_timestamp beyond now + {max_future_skew_us / 1e6:g} s"),
        ):
            if mask.any():
                rejections.append(_row_rejections(row_nr, mask, col, raw, reason))
                row_ok = row_ok & ~mask
        ts = parsed.fill_null(started_at_us).alias("update_ts")

    # Customer ids of each row; a row without any id cannot be applied.
    id_frames = []
    has_id = pl.Series([False] * n, dtype=pl.Boolean)
    for m in mapping.ids:
        value = _raw_text(df[m.from_column])
        present = value.is_not_null() & (value != "")
        has_id = has_id | present
        id_frames.append(
            pl.DataFrame(
                {"row_nr": row_nr, "id_type": m.to_id, "id_value": value}, schema=IDS_SCHEMA
            ).filter(present)
        )
    no_id = ~has_id & row_ok
    if no_id.any():
        names = "/".join(m.from_column for m in mapping.ids)
        rejections.append(
            _row_rejections(
                row_nr, no_id, names, pl.Series([None] * n, dtype=pl.String), "no customer id"
            )
        )
        row_ok = row_ok & has_id

    # Properties, converted per type; a bad cell rejects only itself.
    converted: dict[str, pl.Series] = {}
    for p in mapping.properties:
        raw = df[p.from_column]
        c = convert(raw, p.type, mapping.timezone)
        rejected = c.rejected.cast(pl.Boolean)  # an empty chunk's is untyped
        bad = rejected & row_ok
        if bad.any():
            rejections.append(
                pl.DataFrame(
                    {
                        "row_nr": row_nr.filter(bad),
                        "scope": "cell",
                        "column": p.from_column,
                        "raw_value": _raw_text(raw).filter(bad),
                        "reason": f"{p.to_property}: {c.reason}",
                    },
                    schema=REJECTIONS_SCHEMA,
                )
            )
        converted[p.to_property] = c.values.set(rejected, None) if rejected.any() else c.values

    wide = pl.DataFrame({"row_nr": row_nr, "update_ts": ts, **converted}).filter(row_ok)
    if mapping.properties:
        cells = (
            wide.unpivot(
                index=["row_nr", "update_ts"],
                on=list(converted),
                variable_name="property",
                value_name="value",
            )
            .filter(pl.col("value").is_not_null())
            .select(list(CELLS_SCHEMA))
            .cast(CELLS_SCHEMA)  # type: ignore[arg-type]
        )
    else:
        cells = empty(CELLS_SCHEMA)
    ok_rows = row_nr.filter(row_ok)
    ids = (
        pl.concat(id_frames)
        .filter(pl.col("row_nr").is_in(ok_rows.implode()))
        .sort("row_nr", maintain_order=True)
    )
    return UpdateBatch(
        batch_id=batch_id,
        kind="import",
        source=source,
        ids=ids,
        cells=cells,
        rejections=pl.concat(rejections) if rejections else empty(REJECTIONS_SCHEMA),
        rows_read=n,
        cells_incoming=n * len(mapping.properties),
        default_timestamp_rows=default_rows,
        started_at_us=started_at_us,
    )


def normalize_file(
    path: Path,
    mapping: Mapping,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> UpdateBatch:
    """``normalize`` over the source file read in chunks, so the raw rows are never all in memory.

    ``options`` are ``normalize``'s keyword arguments; ``progress`` gets the rows done so far.
    """
    parts: list[UpdateBatch] = []
    first_row = 1
    for chunk in iter_source(path, chunk_rows):
        parts.append(normalize(chunk, mapping, first_row=first_row, **options))
        first_row += chunk.height
        if progress is not None:
            progress(first_row - 1)
        del chunk
    if not parts:  # a header-only file
        parts.append(normalize(read_source(path), mapping, **options))
    return UpdateBatch(
        batch_id=parts[0].batch_id,
        kind=parts[0].kind,
        source=parts[0].source,
        ids=pl.concat([p.ids for p in parts], rechunk=False),
        cells=pl.concat([p.cells for p in parts], rechunk=False),
        rejections=pl.concat([p.rejections for p in parts], rechunk=False),
        rows_read=sum(p.rows_read for p in parts),
        cells_incoming=sum(p.cells_incoming for p in parts),
        default_timestamp_rows=sum(p.default_timestamp_rows for p in parts),
        started_at_us=parts[0].started_at_us,
    )
