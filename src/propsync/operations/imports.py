"""Snapshot imports: a file and a mapping model through normalisation to the apply path.

``propsync import`` runs ``import_snapshot`` in one process; the import DAGs run the same steps
as tasks (``orchestration/tasks.py``): ``read_snapshot`` and ``normalise_snapshot`` here, then
their checks, then ``apply_batch``. Both derive the batch id with ``normalize.import_batch_id``, so importing the same
bytes with the same mapping and options is a no-op on either path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from propsync.batch import UpdateBatch
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


def read_snapshot(source: str | Path, mapping: Mapping | str | Path) -> tuple[Path, Mapping]:
    """The source's path and its mapping model, checked against the source's columns: mapping
    and column errors raise (``MappingError``, ``SourceError``) before any row is read."""
    path = Path(source)
    model = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    model.check_columns(source_columns(path))
    return path, model


def normalise_snapshot(
    path: Path,
    model: Mapping,
    settings: Settings,
    *,
    batch_id: str,
    source: str,
    started_at_us: int,
    now: int,
    legacy: bool = False,
    progress: Callable[[int], None] | None = None,
    spool_dir: Path | None = None,
) -> UpdateBatch:
    """The snapshot as the ``UpdateBatch`` ``batch_id`` (``normalize.import_batch_id``).
    ``started_at_us``: the default update time of rows without their own; ``now``: the time
    far-future timestamps are judged by."""
    return normalize_file(
        path,
        model,
        progress=progress,
        spool_dir=spool_dir,
        batch_id=batch_id,
        source=source,
        started_at_us=started_at_us,
        now_us=now,
        max_future_skew_us=settings.max_future_skew_us,
        legacy=legacy,
    )


def import_snapshot(
    source: str | Path,
    mapping: Mapping | str | Path,
    settings: Settings,
    *,
    started_at_us: int | None = None,
    legacy: bool = False,
    batch_id: str | None = None,
    progress: Progress = _noop,
) -> BatchResult:
    """Import one snapshot (``propsync import``). Mapping and column errors raise before anything
    is read or written.

    ``started_at_us`` is the default update time of every row (the snapshot time); without it the
    import's own start time is used. The batch id is derived from the file's bytes, the mapping and
    the options, so importing the same snapshot twice is a no-op.
    """
    path, model = read_snapshot(source, mapping)
    start = now_us()
    progress("reading", 0.05)
    scan = scan_file(path)  # one read of the bytes: the batch id's digest and the row estimate
    expected = max(estimate_rows(path, scan), 1)

    def normalised(rows: int) -> None:
        progress(f"normalising {rows:,} rows", 0.05 + 0.4 * min(rows / expected, 1.0))

    warehouse = Warehouse(settings.warehouse)
    with warehouse.spool_directory() as spool:
        batch = normalise_snapshot(
            path,
            model,
            settings,
            batch_id=batch_id or import_batch_id(scan.sha256, model, legacy, started_at_us),
            source=str(path),
            started_at_us=start if started_at_us is None else started_at_us,
            now=start,
            legacy=legacy,
            progress=normalised,
            spool_dir=spool,
        )
        return apply_batch(warehouse, batch, settings, progress=progress, consume=True)
