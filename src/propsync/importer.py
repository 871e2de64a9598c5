"""``import_file``: a snapshot file and a mapping model, end to end through the apply path."""

from __future__ import annotations

from pathlib import Path

from propsync.config import Settings
from propsync.mapping import Mapping, load_mapping
from propsync.normalize import (
    estimate_rows,
    import_batch_id,
    normalize_file,
    scan_file,
    source_columns,
)
from propsync.store.apply import BatchResult, Progress, _noop, apply_batch
from propsync.store.warehouse import Warehouse
from propsync.timestamps import now_us


def import_file(
    source: str | Path,
    mapping: Mapping | str | Path,
    settings: Settings,
    *,
    started_at_us: int | None = None,
    legacy: bool = False,
    batch_id: str | None = None,
    progress: Progress = _noop,
) -> BatchResult:
    """Import one snapshot. Mapping and column errors raise before anything is read or written.

    ``started_at_us`` is the default update time of every row (the snapshot time); without it the
    import's own start time is used. The batch id is derived from the file's bytes, the mapping and
    the options, so importing the same snapshot twice is a no-op.
    """
    path = Path(source)
    model = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    model.check_columns(source_columns(path))
    start = now_us()
    progress("reading", 0.05)
    scan = scan_file(path)  # one read of the bytes: the batch id's digest and the row estimate
    bid = batch_id or import_batch_id(scan.sha256, model, legacy, started_at_us)
    expected = max(estimate_rows(path, scan), 1)

    def normalised(rows: int) -> None:
        progress(f"normalising {rows:,} rows", 0.05 + 0.4 * min(rows / expected, 1.0))

    warehouse = Warehouse(settings.warehouse)
    with warehouse.spool_directory() as spool:
        batch = normalize_file(
            path,
            model,
            progress=normalised,
            spool_dir=spool,
            batch_id=bid,
            source=str(path),
            started_at_us=start if started_at_us is None else started_at_us,
            now_us=start,
            max_future_skew_us=round(settings.max_future_skew_seconds * 1_000_000),
            legacy=legacy,
        )
        return apply_batch(warehouse, batch, settings, progress=progress, consume=True)
