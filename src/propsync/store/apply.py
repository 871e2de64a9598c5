"""The one write path: resolve identities, merge newer-wins, audit, commit, publish.

Every writer (imports, tracking, edits) calls ``apply_batch``. It holds the warehouse write lock
for the whole batch, does all changes in one DuckDB transaction, and publishes a new version only
after the batch passed its checks. A crash at any point leaves the last published version as it
was; a batch id already applied is a no-op, so re-running is always safe.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from propsync import frames, identity, sql
from propsync.batch import (
    CELLS_SCHEMA,
    IDS_SCHEMA,
    REJECTIONS_SCHEMA,
    UpdateBatch,
    empty,
    rejected_row_count,
    rows_with_rejections_count,
)
from propsync.config import Settings
from propsync.errors import AuditFailed
from propsync.store import runs, views
from propsync.store.warehouse import Warehouse, WriterInstance
from propsync.timestamps import now_us

log = logging.getLogger("propsync.apply")

Progress = Callable[[str, float], None]
# Extra post-merge checks run inside the batch's transaction, before COMMIT: they see the merged
# state and return problems (empty when all hold); any problem rolls the batch back (AuditFailed).
AuditHook = Callable[[duckdb.DuckDBPyConnection, "BatchResult"], list[str]]


@dataclass
class BatchResult:
    """What a batch did. Its rejection counts, as every summary, the ``batches`` view and the
    docs define them (docs/warehouse.md): ``rows_rejected``, rows quarantined whole;
    ``rows_with_cells_rejected``, rows kept but for single cells quarantined;
    ``rows_with_rejections``, rows with either (what ``max_reject_ratio`` compares);
    ``cells_rejected``, the cells not applied for a rejection: every cell of a row rejected and
    each cell rejected alone, so that applied + stale + rejected = the cells incoming."""

    batch_id: str
    status: str  # applied | already_applied | failed
    rows_read: int = 0
    properties_applied: int = 0
    properties_stale: int = 0
    rows_rejected: int = 0
    cells_rejected: int = 0
    published_version: int | None = None
    default_timestamp_rows: int = 0
    customers_created: int = 0
    customers_merged: int = 0
    # The audits covered customers with hash(customer_id) % audit_modulus = 0 (1: all of them),
    # and found these counts (audit_merged: all 0 in a batch that was not rolled back).
    audit_modulus: int = 1
    audit_counts: dict[str, int] = field(default_factory=dict)
    message: str = ""
    # Stored rows the batch deleted in place (not rewritten): each may pin its vector's delete
    # info until the next checkpoint (_PIN_SHARE_SMALL).
    rows_deleted_in_place: int = 0
    rejections: pl.DataFrame = field(default_factory=lambda: empty(REJECTIONS_SCHEMA))

    SUMMARY_KEYS = (
        "batch_id",
        "rows_read",
        "properties_applied",
        "properties_stale",
        "rows_rejected",
        "rows_with_cells_rejected",
        "rows_with_rejections",
        "cells_rejected",
        "published_version",
        "already_applied",
    )

    @property
    def already_applied(self) -> bool:
        return self.status == "already_applied"

    @property
    def rows_with_rejections(self) -> int:
        return rows_with_rejections_count(self.rejections)

    @property
    def rows_with_cells_rejected(self) -> int:
        return self.rows_with_rejections - self.rows_rejected

    def summary(self) -> dict[str, Any]:
        """The ``--json`` contract of ``propsync import``: the counts of what this run did (all 0
        but ``rows_read`` when the batch was applied before: ``already_applied``)."""
        return {k: getattr(self, k) for k in self.SUMMARY_KEYS}


def _noop(stage: str, fraction: float) -> None:
    pass


def apply_batch(
    warehouse: Warehouse,
    batch: UpdateBatch,
    settings: Settings,
    *,
    max_reject_ratio: float | None = None,
    progress: Progress = _noop,
    publish: bool = True,
    audit: AuditHook | None = None,
    consume: bool = False,
) -> BatchResult:
    """Apply ``batch`` and publish. Returns status ``failed`` (nothing published) when checks fail.

    With ``publish=False`` the batch is committed to the working database only; a later
    ``publish_pending`` (an orchestrator's publish step) makes it visible to readers.
    ``audit`` adds checks to the in-transaction audit (see ``AuditHook``). With ``consume`` the
    batch's cells frame is emptied once DuckDB has staged it, so its memory (300 MB for 10M cells)
    is free for the merge; for callers that do not use the batch afterwards. (Only a batch of more
    than ``SMALL_BATCH_ROWS`` staged rows: a smaller one is kept, so that a batch whose delete in
    place runs out of memory is retried with ``property_values`` rewritten.)
    """
    ratio = settings.max_reject_ratio if max_reject_ratio is None else max_reject_ratio
    with warehouse.write_lock(settings.lock_timeout_seconds):
        con = warehouse.connect_work(settings.duckdb_memory_limit)
        writer = warehouse.writer
        try:
            pinned = 0 if writer is None else writer.rows_deleted_in_place
            args = (con, warehouse.root, batch, settings, ratio, progress, audit, consume, pinned)
            try:
                result = _apply_locked(*args)
            except duckdb.OutOfMemoryException as exc:
                if consume and batch.spool is None and batch.cells.is_empty():
                    raise  # a large batch whose cells were dropped once staged: nothing to retry
                # The delete in place pins memory per vector it touches (see _PIN_SHARE_SMALL);
                # the rewrite's memory is bounded. Same batch, same transaction boundaries.
                log.warning(
                    "batch %s ran out of memory (%s): retrying it, rewriting "
                    "property_values instead of deleting in place",
                    batch.batch_id,
                    exc,
                )
                result = _apply_locked(*args, rewrite=True)
            if writer is not None and warehouse.holds_write_lock:  # else the detach checkpoints
                _checkpoint_pins(con, writer, result.rows_deleted_in_place)
            version = Warehouse.work_version(con)
            # Also publishes what a crash between commit and publish left behind.
            if publish and warehouse.needs_publish(version):
                progress("publishing", 0.95)
                _publish(warehouse, con, version, settings)
        finally:
            con.close()
        if result.status != "failed" and publish:
            result.published_version = version
        progress("done", 1.0)
        return result


def publish_pending(warehouse: Warehouse, settings: Settings) -> int:
    """Publish the working database if it is ahead of the published version; return the version."""
    with warehouse.write_lock(settings.lock_timeout_seconds):
        con = warehouse.connect_work(settings.duckdb_memory_limit)
        try:
            version = Warehouse.work_version(con)
            if warehouse.needs_publish(version):
                _publish(warehouse, con, version, settings)
        finally:
            con.close()
        return version


def _publish(
    warehouse: Warehouse, con: duckdb.DuckDBPyConnection, version: int, settings: Settings
) -> None:
    warehouse.publish(
        con,
        version,
        keep=settings.keep_published_versions,
        keep_runs=settings.keep_runs,
        retention_seconds=settings.file_retention_seconds,
    )


# DuckDB keeps a 16 KiB vector of transaction ids for every 2,048-row vector of a table in which
# the open transaction deleted a row, pinned in memory until the next checkpoint. Retiring winners
# scattered over a 100M-row property_values (10M customers x 10) pinned 800 MB and failed under
# the 768MB limit, in key ranges or not. Past a share of the memory limit, the batch writes the
# rows it keeps into a new table instead (memory bounded, spills; about the same time as the
# delete for a batch touching most of the table, which is when the delete costs that much). A
# large batch keeps three quarters of the limit for its joins and sorts; a small one
# (SMALL_BATCH_ROWS) needs little besides the pins, so it may pin three quarters: at 5M customers
# x 10 (50M rows, 24,414 vectors) a 20k-command tracking apply pins up to 390 MB, and took 1.1 s
# in place (peak RSS 805 MiB under the 768MB limit) against 10.6 s rewriting all 50M rows.
_PIN_SHARE_LARGE = 0.25
_PIN_SHARE_SMALL = 0.75
_DELETE_INFO_BYTES_PER_VECTOR = 16 * 1024
_VECTOR_ROWS = 2048
_ALL_VECTORS = 2**62  # as many deleted rows as there are: one in every vector
_MEMORY_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


# A batch of at most this many staged rows copies the stored rows of its keys once (row id, keys
# and time: 28 bytes a row, so 28 MB at this size), and its winners, delete and audit read the
# copy instead of scanning property_values three times (sql/apply/stored_of_batch.sql). At 1M
# customers x 10 a 20k-command apply went from three scans of 60-100 ms each to one. A larger
# batch joins the whole table, as before, without the copy.
SMALL_BATCH_ROWS = 1_000_000


def _merge_staged(
    con: duckdb.DuckDBPyConnection,
    batch_id: str | None = None,
    *,
    small: bool = False,
    rewrite: bool = False,
    pinned: int = 0,
    few_customers: bool = False,
) -> tuple[int, bool, int]:
    """Newer-wins merge of ``staged_properties`` into ``properties``; returns the updates applied,
    whether the stored rows stayed in place (not when ``property_values`` was rewritten:
    then the row ids of a small batch's copy name other rows) and how many rows beaten by the
    winners a small batch's delete left in place (0 unless it is broken: the batch's audit takes
    what is stored from its copy, ``audit/02_stored_rows_of_batch.sql``). The winners stay in
    ``winning_properties`` for the batch's run file. With ``batch_id`` the staged rows are the
    batch's own (no batch_id column); without, the merge step's (each row keeps the batch id it
    was stored with). ``small``: the batch's stored rows are copied once
    (``SMALL_BATCH_ROWS``). ``rewrite``: rewrite ``property_values`` whatever the batch's size
    (the retry of a batch whose delete in place ran out of memory). ``pinned``: see
    ``rewrites_properties``; ``few_customers``: see ``batch_winners``."""
    if batch_id is None:
        con.execute(sql.load("apply/winning_properties"))
    else:
        batch_winners(con, small=small, few_customers=few_customers)
    winners = int(con.execute(sql.load("apply/count_winners")).fetchall()[0][0])
    if not winners:
        return 0, True, 0
    in_place = not (rewrite or rewrites_properties(con, winners, small=small, pinned=pinned))
    unretired = 0
    if not in_place:
        rewrite_kept_properties(con)
    elif small:
        retired = int(con.execute(sql.load("apply/retire_beaten_rows")).fetchall()[0][0])
        unretired = int(con.execute(sql.load("apply/count_beaten")).fetchall()[0][0]) - retired
    else:
        con.execute(sql.load("apply/retire_outdated_properties")).fetchall()
    if batch_id is None:
        con.execute(sql.load("apply/insert_newer_properties")).fetchall()
    else:
        con.execute(sql.load("apply/insert_newer_batch_properties"), {"batch_id": batch_id})
    return winners, in_place, unretired


def rewrites_properties(
    con: duckdb.DuckDBPyConnection, winners: int, *, small: bool = False, pinned: int = 0
) -> bool:
    """Whether retiring ``winners`` rows in place would pin more than a share of the memory
    limit (each winner in its own vector of the stored rows, at most every vector): a quarter,
    three quarters for a ``small`` batch. ``pinned``: rows deleted in place since the last
    checkpoint (by earlier batches of a writer that holds the write lock), still pinning theirs."""
    return _pins_exceed(con, winners + pinned, _PIN_SHARE_SMALL if small else _PIN_SHARE_LARGE)


def _pins_exceed(con: duckdb.DuckDBPyConnection, rows: int, share: float) -> bool:
    """Whether the delete info of ``rows`` scattered deletes from property_values may pin more than
    ``share`` of the memory limit."""
    budget = int(memory_limit_bytes(con) * share)
    if rows * _DELETE_INFO_BYTES_PER_VECTOR <= budget:  # a small batch: no need to count
        return False
    # The table's rows as stored, deleted ones included (they keep their vectors until a
    # checkpoint).
    stored = stored_rows(con, "property_values")
    return min(rows, -(-stored // _VECTOR_ROWS)) * _DELETE_INFO_BYTES_PER_VECTOR > budget


def stored_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """The rows ``table`` stores, deleted ones included, from the catalog
    (``sql/apply/stored_row_estimate.sql``)."""
    return int(
        con.execute(sql.load("apply/stored_row_estimate"), {"table": table}).fetchall()[0][0]
    )


# A small batch finds its stored rows through its customers first (stored_of_few_customers.sql)
# when they are at most one in this many of the stored ones: at 1M, 200k staged rows of 180k
# customers read faster the old way.
_FEW_CUSTOMERS = 8


def few_batch_customers(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the batch's customers (``batch_customers``) are few among those stored."""
    batch = int(con.execute("SELECT count(*) FROM batch_customers").fetchall()[0][0])
    return batch * _FEW_CUSTOMERS <= stored_rows(con, "customer_keys")


def _checkpoint_pins(con: duckdb.DuckDBPyConnection, writer: WriterInstance, deleted: int) -> None:
    """Count a committed batch's deletes in place against the writer's attachment of work.duckdb;
    once they may pin more than a quarter of the memory limit, checkpoint (which frees their
    delete info), unless every vector of the table pinned fits in a small batch's share: the
    next batch's deletes then pin vectors already pinned (at 5M x 10, 24,414 vectors: 390 MB
    under 768 MB), and DuckDB checkpoints when its WAL passes 16 MB. A writer that detaches
    after the batch checkpoints anyway; one that holds the write lock
    (``Warehouse.hold_write_lock``) keeps the next batch's share of the limit this way."""
    writer.rows_deleted_in_place += deleted
    if _pins_exceed(con, writer.rows_deleted_in_place, _PIN_SHARE_LARGE) and _pins_exceed(
        con, _ALL_VECTORS, _PIN_SHARE_SMALL
    ):
        con.execute("CHECKPOINT")
        writer.rows_deleted_in_place = 0


def rewrite_kept_properties(con: duckdb.DuckDBPyConnection) -> None:
    """``property_values`` becomes a new table of the stored rows no winner beats, in their order
    (``sql/apply/keep_unbeaten_properties.sql``): dropping a table pins nothing per row."""
    con.execute(sql.load("apply/create_next_property_values"))
    con.execute(sql.load("apply/keep_unbeaten_properties")).fetchall()
    con.execute("DROP TABLE property_values")
    con.execute("ALTER TABLE property_values_next RENAME TO property_values")


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """The connection's ``memory_limit`` in bytes (DuckDB reports it as text, e.g. ``732.4 MiB``)."""
    text = str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
    number, unit = text.split()
    return int(float(number) * _MEMORY_UNITS[unit])


def batch_winners(
    con: duckdb.DuckDBPyConnection, *, small: bool = False, few_customers: bool = False
) -> None:
    """``winning_properties`` of the batch's own ``staged_properties``: the winners sorted by
    customer, without a batch_id column (``sql/apply/winning_batch_properties.sql``; the rows tied
    in time with the stored ones are settled by their values only when there are any). ``small``:
    against a copy of the batch's stored rows, with the row id each winner beats
    (``SMALL_BATCH_ROWS``), found through the batch's customers first when they are
    ``few_customers`` (``sql/apply/stored_of_few_customers.sql``)."""
    if not small:
        con.execute(sql.load("apply/stored_of_large_batch"))
    elif few_customers:
        con.execute(sql.load("apply/stored_of_few_customers"))
    else:
        con.execute(sql.load("apply/stored_of_batch"))
    con.execute(sql.load("apply/winning_batch_properties"))
    if con.execute(sql.load("apply/count_tied_winners")).fetchall()[0][0]:
        con.execute(sql.load("apply/drop_tied_losers"))


# The built-in post-merge checks (sql/audit/): the count each reports, and what it counts.
AUDIT_CHECKS = {
    "duplicate_keys": "duplicate (customer, property) keys",
    "incoming_not_dominated": "incoming updates not reflected by newer-wins",
    "customers_without_id": "customers without any id",
}


def audit_merged(
    con: duckdb.DuckDBPyConnection,
    modulus: int,
    small_batch_id: str | None = None,
    first_new_row: int = 0,
) -> dict[str, int]:
    """The built-in post-merge checks over ``staged_properties`` (sampled by ``modulus``, see
    ``_audit_modulus``): the count of each of ``AUDIT_CHECKS`` (all 0: every check holds). The
    orchestration's merge audit reports them too, beside its own. ``small_batch_id``: the
    batch was merged through its copy of the stored rows (``SMALL_BATCH_ROWS``), so what is
    stored now is that copy less the rows its winners retired (``_merge_staged`` checks the
    delete's count), plus its inserts, read back by row id and batch id instead of by a scan;
    they have row ids from ``first_new_row`` on."""
    con.execute(sql.load("audit/01_sample_incoming"), {"modulus": modulus})
    if small_batch_id is None:
        con.execute(sql.load("audit/02_sample_stored"))
    else:
        con.execute(
            sql.load("audit/02_stored_rows_of_batch"),
            {"batch_id": small_batch_id, "first_row": first_new_row},
        )
    try:
        return {
            name: int(con.execute(sql.load(f"audit/{name}")).fetchall()[0][0])
            for name in AUDIT_CHECKS
        }
    finally:
        con.execute("DROP TABLE IF EXISTS audit_incoming")
        con.execute("DROP TABLE IF EXISTS audit_stored")


def audit_problems(counts: dict[str, int]) -> list[str]:
    """The checks of ``audit_merged`` that failed, in words (empty: all hold)."""
    return [f"{n} {AUDIT_CHECKS[name]}" for name, n in counts.items() if n]


def _audit_modulus(staged: int, full_max_updates: int) -> int:
    """1 audits every staged update; k audits the customers with hash(customer_id) % k = 0.

    The audits join the batch against the whole table; past ``full_max_updates`` they would cost
    as much as the merge itself, so a large batch is audited on a deterministic sample of about
    that many updates: a systematic error shows in any sample, and the sample is the same on a
    re-run.
    """
    return max(1, -(-staged // max(full_max_updates, 1)))


def _apply_locked(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    batch: UpdateBatch,
    settings: Settings,
    max_reject_ratio: float,
    progress: Progress,
    audit: AuditHook | None = None,
    consume: bool = False,
    pinned: int = 0,
    rewrite: bool = False,
) -> BatchResult:
    previous = con.execute(
        sql.load("record/applied_version"), {"batch_id": batch.batch_id}
    ).fetchall()
    if previous:
        # What this run did: read the rows, changed nothing (the first run's counts are in the
        # batches table; repeating them here read as if they had been applied again).
        return BatchResult(
            batch.batch_id,
            "already_applied",
            rows_read=batch.rows_read,
            message=f"batch already applied (as version {previous[0][-1]}): nothing changed",
        )

    con.execute("BEGIN TRANSACTION")
    try:
        progress("resolving customer ids", 0.5)
        result, res, valid_cells, used_names = _resolve(con, batch, settings)
        if _too_many_rejections(con, batch, result, max_reject_ratio):
            return result
        progress("merging customers", 0.6)
        pinned = _store_customers(con, batch, res, result, rewrite=rewrite, pinned=pinned)
        progress("merging properties", 0.7)
        merge = _merge_properties(
            con, batch, result, used_names, consume=consume, rewrite=rewrite, pinned=pinned
        )
        result.properties_stale = valid_cells - result.properties_applied
        progress("auditing", 0.85)
        _audit(con, batch, result, merge, settings, audit)
        progress("writing the run", 0.9)
        _commit(con, root, batch, result, names_added=merge.names_added)
        return result
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # already rolled back or committed
            con.execute("ROLLBACK")
        raise
    finally:
        _drop_batch_tables(con)


def _resolve(
    con: duckdb.DuckDBPyConnection, batch: UpdateBatch, settings: Settings
) -> tuple[BatchResult, identity.Resolution, int, list[str]]:
    """The batch's rows to customers (``identity.resolve``), its rejections so far, and its valid
    cells and the property names they use."""
    _register_inputs(con, batch)
    res = identity.resolve(con, batch.one_id_per_row(), settings.hard_id_types)
    rejections = pl.concat([batch.rejections, res.rejections])
    valid_cells, used_names = _valid_cells(con, batch, res.rejections)
    result = BatchResult(
        batch.batch_id,
        "applied",
        rows_read=batch.rows_read,
        rows_rejected=rejected_row_count(rejections),
        cells_rejected=batch.cells_incoming - valid_cells,
        default_timestamp_rows=batch.default_timestamp_rows,
        customers_created=res.customers_created,
        customers_merged=res.customers_merged,
        rejections=rejections,
    )
    return result, res, valid_cells, used_names


def _too_many_rejections(
    con: duckdb.DuckDBPyConnection,
    batch: UpdateBatch,
    result: BatchResult,
    max_reject_ratio: float,
) -> bool:
    """Roll back and record the batch as failed when more of its rows have rejections than
    ``max_reject_ratio`` allows."""
    share = result.rows_with_rejections / batch.rows_read if batch.rows_read else 0.0
    if share <= max_reject_ratio:
        return False
    con.execute("ROLLBACK")
    result.status = "failed"
    result.customers_created = result.customers_merged = 0
    result.message = (
        f"rows with rejections: {result.rows_with_rejections} of {batch.rows_read} rows read "
        f"({share:.1%}; rows rejected {result.rows_rejected}, rows with cells rejected "
        f"{result.rows_with_cells_rejected}), more than max_reject_ratio {max_reject_ratio:.1%}: "
        "nothing was applied"
    )
    record_batch(con, batch, result, version=None)
    return True


def _store_customers(
    con: duckdb.DuckDBPyConnection,
    batch: UpdateBatch,
    res: identity.Resolution,
    result: BatchResult,
    *,
    rewrite: bool,
    pinned: int,
) -> int:
    """Store the new customers and ids, and merge customers (their properties through the
    newer-wins merge); returns ``pinned`` plus the rows the merges deleted in place."""
    params = {"batch_id": batch.batch_id}
    con.execute(sql.load("apply/batch_customers"))
    con.execute(sql.load("apply/insert_new_customers"))
    con.execute(sql.load("apply/insert_new_ids"), params)
    con.execute(sql.load("apply/insert_new_id_hashes"))
    if res.ids_added:
        identity.sort_id_hashes(con)
    if not res.customers_merged:
        con.execute(sql.load("apply/no_merged_winners"))
        return pinned
    con.execute(sql.load("apply/merge_keys"))
    for name in ("repoint_merged_ids", "repoint_merged_id_hashes", "repoint_aliases"):
        con.execute(sql.load(f"apply/{name}"))
    con.execute(sql.load("apply/insert_aliases"), params)
    con.execute(sql.load("apply/stage_merged_properties"))
    merged, merged_in_place, _ = _merge_staged(con, rewrite=rewrite, pinned=pinned)
    if merged_in_place:
        result.rows_deleted_in_place += merged
        pinned += merged
    con.execute(sql.load("apply/keep_merged_winners"))
    con.execute(sql.load("apply/delete_merged_properties"))
    return pinned


@dataclass(frozen=True)
class _PropertyMerge:
    """What the audit and the commit need to know about the batch's property merge."""

    staged: int  # staged updates (after in-batch duplicates collapsed)
    small: bool  # merged through its copy of the stored rows (SMALL_BATCH_ROWS)
    in_place: bool  # the beaten rows were deleted in place (not rewritten)
    first_new_row: int  # the row id its inserts begin at (small batches)
    names_added: int  # property names new to the warehouse
    unretired: int  # beaten rows a small batch's delete left in place (0 unless it is broken)


def _merge_properties(
    con: duckdb.DuckDBPyConnection,
    batch: UpdateBatch,
    result: BatchResult,
    used_names: list[str],
    *,
    consume: bool,
    rewrite: bool,
    pinned: int,
) -> _PropertyMerge:
    """Stage the batch's cells by key and merge them newer-wins (``_merge_staged``)."""
    inserted = con.execute(sql.load("apply/insert_property_names"), {"names": used_names})
    names_added = int(inserted.fetchall()[0][0])
    con.execute(sql.load("apply/stage_batch_properties"))
    staged = int(con.execute("SELECT count(*) FROM staged_properties").fetchall()[0][0])
    small = staged <= SMALL_BATCH_ROWS
    if consume and batch.spool is None and not small:  # a small one stays retryable
        con.unregister("batch_cells")
        batch.cells = batch.cells.clear()
    # Rows inserted from here on have row ids past those stored (sql/audit/02_...).
    first_new_row = stored_rows(con, "property_values") if small else 0
    result.properties_applied, in_place, unretired = _merge_staged(
        con,
        batch.batch_id,
        small=small,
        rewrite=rewrite,
        pinned=pinned,
        few_customers=small and few_batch_customers(con),
    )
    if in_place:
        result.rows_deleted_in_place += result.properties_applied
    return _PropertyMerge(staged, small, in_place, first_new_row, names_added, unretired)


def _audit(
    con: duckdb.DuckDBPyConnection,
    batch: UpdateBatch,
    result: BatchResult,
    merge: _PropertyMerge,
    settings: Settings,
    audit: AuditHook | None,
) -> None:
    """The built-in audit, then ``audit``'s; any problem rolls the batch back (``AuditFailed``)."""
    result.audit_modulus = _audit_modulus(merge.staged, settings.audit_full_max_updates)
    read_back = batch.batch_id if merge.small and merge.in_place else None
    result.audit_counts = audit_merged(con, result.audit_modulus, read_back, merge.first_new_row)
    problems = audit_problems(result.audit_counts)
    if merge.unretired:
        problems.append(f"{merge.unretired} stored rows beaten by the batch not deleted")
    if not problems and audit is not None:
        problems = audit(con, result)
    if problems:
        con.execute("ROLLBACK")
        result.status = "failed"
        result.message = "audit failed, batch rolled back: " + "; ".join(problems)
        record_batch(con, batch, result, version=None)
        raise AuditFailed(result.message, batch_id=batch.batch_id)


def _commit(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    batch: UpdateBatch,
    result: BatchResult,
    *,
    names_added: int,
) -> None:
    """The next version: the batch's record, the wide view, its run file, then COMMIT."""
    version = Warehouse.work_version(con) + 1
    Warehouse.set_work_version(con, version)
    record_batch(con, batch, result, version=version, in_transaction=True)
    if names_added:  # its columns are the property names; its text changes only with them
        views.refresh_wide_view(con)
    runs.write_run(con, root, version, batch.batch_id)
    con.execute("COMMIT")


def _drop_batch_tables(con: duckdb.DuckDBPyConnection) -> None:
    _drop_inputs(con)
    for name in (
        *identity.RESOLVED_TABLES,
        "staged_properties",
        "batch_stored",
        "winning_properties",
        "merged_winners",
        "batch_customers",
        "merge_keys",
    ):
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP TABLE IF EXISTS {name}")
    with contextlib.suppress(duckdb.Error):
        con.execute("DROP VIEW IF EXISTS batch_stored")  # stored_of_large_batch.sql


def _register_inputs(con: duckdb.DuckDBPyConnection, batch: UpdateBatch) -> None:
    """The batch's ids and cells as the relations ``batch_ids`` and ``batch_cells``: its frames
    without a copy, or views over its spool's files."""
    if batch.spool is None:
        frames.register(con, "batch_ids", batch.ids)
        frames.register(con, "batch_cells", batch.cells)
        return
    for name, schema, files in (
        ("batch_ids", IDS_SCHEMA, batch.spool.files("ids")),
        ("batch_cells", CELLS_SCHEMA, batch.spool.files("cells")),
    ):
        if files:
            con.read_parquet(files).create_view(name)
        else:
            frames.register(con, name, empty(schema))


def _drop_inputs(con: duckdb.DuckDBPyConnection) -> None:
    for name in ("batch_ids", "batch_cells"):
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP VIEW IF EXISTS {name}")


def _valid_cells(
    con: duckdb.DuckDBPyConnection, batch: UpdateBatch, identity_rejections: pl.DataFrame
) -> tuple[int, list[str]]:
    """The cells whose row resolved to a customer, and the names they use (sorted).

    Every row a batch has cells for has ids (normalize.py drops the cells of rows it rejects), so
    only the rows identity resolution rejected lose their cells here. In Polars for a batch in
    memory: a tenth of what the same semi join cost in DuckDB (0.7 s for 10M cells).
    """
    rejected = identity_rejections["row_nr"]
    if batch.spool is not None:
        if rejected.is_empty():
            return batch.spool.cells, sorted(batch.spool.properties)
        count, names = con.execute(sql.load("apply/valid_cells")).fetchall()[0]
        return int(count), list(names)
    cells = batch.cells
    if rejected.is_empty():
        return cells.height, cells["property"].unique().sort().to_list()
    valid = cells.filter(~pl.col("row_nr").is_in(rejected.implode()))
    return valid.height, valid["property"].unique().sort().to_list()


def record_batch(
    con: duckdb.DuckDBPyConnection,
    batch: UpdateBatch,
    result: BatchResult,
    *,
    version: int | None,
    in_transaction: bool = False,
) -> None:
    """Keep the batch's counts and its quarantine (failed batches: after the rollback, on their own)."""
    if not in_transaction:
        con.execute("BEGIN TRANSACTION")
    key = {"batch_id": batch.batch_id}
    for statement in ("delete_batch", "pend_history", "delete_rejections"):
        con.execute(sql.load(f"record/{statement}"), key)
    con.execute(
        sql.load("record/insert_batch"),
        {
            **key,
            "kind": batch.kind,
            "source": batch.source,
            "status": result.status,
            "message": result.message or None,
            "started_at_us": batch.started_at_us,
            "applied_at_us": now_us(),
            "rows_read": batch.rows_read,
            "cells_incoming": batch.cells_incoming,
            "properties_applied": result.properties_applied,
            "properties_stale": result.properties_stale,
            "rows_rejected": result.rows_rejected,
            "cells_rejected": result.cells_rejected,
            "default_timestamp_rows": result.default_timestamp_rows,
            "customers_created": result.customers_created,
            "customers_merged": result.customers_merged,
            "version": version,
        },
    )
    if result.rejections.height:
        frames.register(con, "batch_rejections", result.rejections)
        con.execute(sql.load("record/insert_rejections"), key)
        con.unregister("batch_rejections")
    if not in_transaction:
        con.execute("COMMIT")
