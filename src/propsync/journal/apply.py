"""Applying: the journal's records as batches through the one apply path, exactly once."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from propsync.batch import CELLS_SCHEMA, IDS_SCHEMA, UpdateBatch
from propsync.config import Settings
from propsync.journal.layout import TMP_PREFIX, journal_dir, writer_alive
from propsync.journal.reader import Chunk, SegmentReader, open_readers, take_chunk
from propsync.journal.records import Record
from propsync.journal.state import ApplyState, apply_lock
from propsync.operations.track import apply_commands
from propsync.store.apply import publish_pending
from propsync.store.warehouse import Warehouse

log = logging.getLogger("propsync.journal")


DEFAULT_MAX_BATCH_COMMANDS = 250_000


# -- applying -------------------------------------------------------------------------------------


def build_batch(
    batch_id: str, records: Sequence[Record], source: str
) -> tuple[UpdateBatch, list[tuple[str, int, Any]]]:
    """One UpdateBatch of ``records`` (rows numbered in order) and, per row, where it came from:
    ``(request batch id, command index, command_id)``."""
    row_nr: list[int] = []
    id_types: list[str] = []
    id_values: list[str] = []
    c_row: list[int] = []
    c_prop: list[str] = []
    c_value: list[str] = []
    c_ts: list[int] = []
    origin: list[tuple[str, int, Any]] = []
    row = 0
    for rec in records:
        local: dict[int, int] = {}
        for idx, id_type, id_value in rec.ids:
            r = local.get(idx)
            if r is None:
                row += 1
                r = local[idx] = row
                origin.append((rec.batch_id, idx, rec.command_ids.get(idx)))
            row_nr.append(r)
            id_types.append(id_type)
            id_values.append(id_value)
        for idx, prop, value, ts in rec.cells:
            c_row.append(local[idx])
            c_prop.append(prop)
            c_value.append(value)
            c_ts.append(ts)
    ids = pl.DataFrame(
        {"row_nr": row_nr, "id_type": id_types, "id_value": id_values}, schema=IDS_SCHEMA
    )
    cells = pl.DataFrame(
        {"row_nr": c_row, "property": c_prop, "value": c_value, "update_ts": c_ts},
        schema=CELLS_SCHEMA,
    )
    kinds = {rec.kind for rec in records}
    batch = UpdateBatch(
        batch_id=batch_id,
        kind=kinds.pop() if len(kinds) == 1 else "track",
        source=source,
        ids=ids,
        cells=cells,
        rows_read=row,
        cells_incoming=cells.height,
        started_at_us=min((r.receive_us for r in records), default=None),
    )
    return batch, origin


def _apply_chunk(
    warehouse: Warehouse,
    settings: Settings,
    state: ApplyState,
    chunk: Chunk,
    batch_id: str,
    *,
    publish: bool,
) -> int:
    applied = 0
    if chunk.records:
        source = "journal " + " ".join(f"{k}@{s}-{e}" for k, (s, e) in sorted(chunk.ranges.items()))
        batch, origin = build_batch(batch_id, chunk.records, source)
        result = apply_commands(warehouse, batch, settings, publish=publish)
        if result.status == "applied":
            applied = batch.rows_read
            for rej in result.rejections.filter(pl.col("scope") == "row").iter_rows(named=True):
                request, index, command_id = origin[rej["row_nr"] - 1]
                log.warning(
                    "rejected at apply time: request %s command %d (command_id %r): %s "
                    "(warehouse table rejections, batch_id %r, row_nr %d)",
                    request,
                    index,
                    command_id,
                    rej["reason"],
                    batch_id,
                    rej["row_nr"],
                )
        log.info(
            "journal batch %s: %s, %d commands, %d properties applied, %d stale, %d rejected",
            batch_id,
            result.status,
            batch.rows_read,
            result.properties_applied,
            result.properties_stale,
            result.rows_rejected,
        )
    for name, (_, end) in chunk.ranges.items():
        state.cursors[name] = end
    state.pending = None
    state.save()
    return applied


def cleanup_segments(jdir: Path, state: ApplyState, readers: list[SegmentReader]) -> None:
    changed = False
    for r in readers:
        fully = r.head is None and state.cursors.get(r.name, 0) == r.exhausted_at
        if r.complete and fully and r.exhausted_at == r.limit:
            with contextlib.suppress(FileNotFoundError):
                (jdir / r.name).unlink()
            log.debug("removed applied journal segment %s", r.name)
    present = set(os.listdir(jdir))
    for name in list(state.cursors):
        if name not in present:
            del state.cursors[name]
            changed = True
    for name in present:
        if name.startswith(TMP_PREFIX) and name.endswith(".jsonl"):
            path = jdir / name
            # A writer killed between creating and naming its segment; it holds no records. (A
            # live writer locks it right after creating it: leave young ones alone.)
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > 60 and writer_alive(path) is False:
                    path.unlink()
    if changed:
        state.save()


def apply_journal(
    warehouse: Warehouse,
    settings: Settings,
    *,
    publish: bool = True,
    max_batch_commands: int = DEFAULT_MAX_BATCH_COMMANDS,
    max_commands: int | None = None,
    lock_timeout: float | None = None,
    held: bool = False,
) -> int:
    """Apply everything journaled so far through ``apply_batch``; return the commands applied.

    ``max_commands``: take no new batch once that many commands were taken (the rest waits for
    the next call), so what is applied can be published before a long backlog is through.

    Safe to call concurrently from several processes (they take turns on ``journal/apply.lock``)
    and after any crash (an interrupted batch is redone under its batch id). With ``publish`` the
    result is published once at the end; without, a later ``publish_pending`` makes it visible.
    Commands rejected at apply time (hard-id conflicts) count as applied: they are recorded in the
    warehouse's ``rejections`` table. ``held``: the caller holds ``journal/apply.lock``
    (``ApplierHold``).
    """
    jdir = journal_dir(warehouse.root)
    if not jdir.is_dir():
        return 0
    timeout = settings.lock_timeout_seconds if lock_timeout is None else lock_timeout
    with contextlib.nullcontext() if held else apply_lock(jdir, timeout):
        state = ApplyState.load(jdir)
        redone = _redo_interrupted(warehouse, settings, jdir, state)
        applied, unpublished = _apply_new(
            warehouse,
            settings,
            jdir,
            state,
            publish,
            max_batch_commands,
            max_commands,
            redone is not None,
        )
        if publish and unpublished:
            publish_pending(warehouse, settings)
    return (redone or 0) + applied


def _redo_interrupted(
    warehouse: Warehouse, settings: Settings, jdir: Path, state: ApplyState
) -> int | None:
    """The batch a crash interrupted, applied again under its batch id, unpublished: the commands
    applied; None if there was none to redo."""
    if state.pending is None:
        return None
    pending = state.pending
    ranges = {str(k): (int(v[0]), int(v[1])) for k, v in pending["ranges"].items()}
    readers = open_readers(jdir, ranges, state)
    try:
        chunk = take_chunk(readers, max_commands=2**62, one_kind=False)
    finally:
        for r in readers:
            r.close()
    if chunk is None:
        state.pending = None
        state.save()
        return None
    log.info("redoing interrupted journal batch %s", pending["batch_id"])
    chunk = Chunk(ranges, chunk.records)
    return _apply_chunk(warehouse, settings, state, chunk, str(pending["batch_id"]), publish=False)


def _apply_new(
    warehouse: Warehouse,
    settings: Settings,
    jdir: Path,
    state: ApplyState,
    publish: bool,
    max_batch_commands: int,
    max_commands: int | None,
    unpublished: bool,
) -> tuple[int, bool]:
    """The journal from the cursors on (until ``max_commands`` were taken), chunk by chunk, each
    under its intent record, the last published with ``publish``; the commands applied, and
    whether some are left unpublished (``unpublished``: some were before)."""
    applied = 0
    readers = open_readers(jdir, None, state)
    try:
        taken = 0
        while True:
            chunk = take_chunk(readers, max_batch_commands)
            if chunk is None:
                break
            for r in readers:
                if r.name in chunk.ranges:
                    r.cursor = chunk.ranges[r.name][1]
            batch_id = chunk.batch_id()
            taken += sum(r.customer_commands() for r in chunk.records)
            enough = max_commands is not None and taken >= max_commands
            last = enough or all(r.head is None for r in readers)
            state.pending = {
                "batch_id": batch_id,
                "ranges": {k: list(v) for k, v in chunk.ranges.items()},
            }
            state.save()
            applied += _apply_chunk(
                warehouse, settings, state, chunk, batch_id, publish=publish and last
            )
            if chunk.records:
                # Publishing a version publishes every batch committed before it, too.
                unpublished = not (publish and last)
            if enough:
                break
    finally:
        for r in readers:
            r.close()
    cleanup_segments(jdir, state, readers)
    return applied, unpublished
