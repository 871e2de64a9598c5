"""The post-merge audit, run inside the batch's transaction before COMMIT (``apply_batch(audit=)``).

The metrics are SQL over the merged, not yet committed state and the previously published
version (attached read-only, ``sql/merge_audit/``), beside the counts of ``apply_batch``'s own
audit of the same transaction (``BatchResult.audit_counts``, not computed twice). They cover the
customers the batch touched: a batch changes no other customer, and the state before it already
passed its own audit. A failed check rolls the batch back, so the working database never holds a
batch that failed its audit and nothing can publish it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from propsync import sql
from propsync.batch import UpdateBatch
from propsync.orchestration.payloads import MergeMetrics
from propsync.quality import frames, runner
from propsync.store.apply import BatchResult


def merge_metrics(
    con: duckdb.DuckDBPyConnection,
    result: BatchResult,
    *,
    published: Path | None,
    source_rows: int,
    n_properties: int,
    batch: UpdateBatch | None = None,
) -> tuple[MergeMetrics, list[str]]:
    """One row of post-merge metrics, and examples of timestamps that went backwards.

    ``batch``: the merged batch, for its blank lines and absent cells (``frames.source_cells``).
    """
    params = {"batch_id": result.batch_id}
    con.execute(sql.load("merge_audit/touched"), params)
    backwards: list[tuple[Any, ...]] = []
    if published is not None:
        con.execute(f"ATTACH {sql.literal(str(published))} AS audit_published (READ_ONLY)")
        try:
            backwards = con.execute(sql.load("merge_audit/went_backwards")).fetchall()
        finally:
            con.execute("DETACH audit_published")
    absent = None if batch is None else batch.absent_cells
    rejected = frames.rejected_cells(result.rejections, n_properties, absent)
    data_rows, source_cells = source_rows, source_rows * n_properties
    if batch is not None:
        data_rows, source_cells = frames.source_cells(batch, source_rows, n_properties)
    stored = int(con.execute(sql.load("merge_audit/properties_stored"), params).fetchall()[0][0])
    metrics = MergeMetrics(
        # Counted by apply_batch's own audit of the same transaction (store.apply.audit_merged),
        # over the customers it audited; reported here beside the checks only this audit makes.
        duplicate_keys=result.audit_counts["duplicate_keys"],
        timestamps_went_backwards=len(backwards),
        customers_without_id=result.audit_counts["customers_without_id"],
        cells_incoming=source_cells,
        properties_applied=result.properties_applied,
        properties_stored=stored,
        properties_stale=result.properties_stale,
        cells_rejected=rejected,
        cells_accounted=stored + result.properties_stale + rejected,
        rows_read=result.rows_read,
        source_rows=data_rows,
        published_compared=str(published) if published is not None else None,
    )
    examples = [
        f"customer {c} property {p!r}: published update_ts {old} -> {'missing' if new is None else new}"
        for c, p, old, new in backwards[:5]
    ]
    con.execute("DROP TABLE IF EXISTS audit_touched")
    return metrics, examples


@dataclass
class MergeAudit:
    """The ``audit`` hook for ``apply_batch``; keeps what it found for the caller to report."""

    suite: dict[str, Any]
    warehouse_root: Path
    source_rows: int
    n_properties: int
    on_pass: Callable[[duckdb.DuckDBPyConnection, runner.Outcome], None] | None = None
    batch: UpdateBatch | None = None
    metrics: MergeMetrics | None = None  # None until the hook ran (not for a batch applied before)
    examples: list[str] = field(default_factory=list)
    outcome: runner.Outcome | None = None

    def __call__(self, con: duckdb.DuckDBPyConnection, result: BatchResult) -> list[str]:
        # Resolved under the write lock, so no publish can prune it while it is attached.
        self.metrics, self.examples = merge_metrics(
            con,
            result,
            published=published_file(self.warehouse_root),
            source_rows=self.source_rows,
            n_properties=self.n_properties,
            batch=self.batch,
        )
        self.outcome = runner.validate(self.suite, [frames.one_row(self.metrics.checked())])
        if not self.outcome.success:
            problems = self.outcome.failures()
            if self.examples:
                problems.append("examples: " + "; ".join(self.examples))
            return problems
        if self.on_pass is not None:
            self.on_pass(con, self.outcome)
        return []


def published_file(root: Path) -> Path | None:
    """The immutable file of the current published version, or None before the first publish."""
    from propsync.errors import NotPublished
    from propsync.store.warehouse import Warehouse

    with contextlib.suppress(NotPublished):
        return Warehouse(root).published_file()
    return None
