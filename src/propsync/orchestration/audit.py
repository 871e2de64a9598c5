"""The post-merge audit, run inside the batch's transaction before COMMIT (``apply_batch(audit=)``).

The metrics are SQL over the merged, not yet committed state and the previously published
version (attached read-only). They cover the customers the batch touched: a batch changes no other
customer, and the state before it already passed its own audit. A failed check rolls the batch
back, so the working database never holds a batch that failed its audit and nothing can publish it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from propsync.batch import UpdateBatch
from propsync.quality import frames, runner
from propsync.store.apply import BatchResult

TOUCHED = """
CREATE OR REPLACE TEMP TABLE audit_touched AS
SELECT customer_id FROM properties WHERE batch_id = $batch_id
UNION
SELECT customer_id FROM customer_aliases WHERE batch_id = $batch_id
UNION
SELECT customer_id FROM customer_ids WHERE batch_id = $batch_id
"""

DUPLICATE_KEYS = """
SELECT count(*) FROM (
    SELECT customer_id, property
    FROM properties
    WHERE customer_id IN (SELECT customer_id FROM audit_touched)
    GROUP BY ALL
    HAVING count(*) > 1
)
"""

CUSTOMERS_WITHOUT_ID = """
SELECT count(*) FROM (
    SELECT DISTINCT customer_id
    FROM properties
    WHERE customer_id IN (SELECT customer_id FROM audit_touched)
) AS touched
ANTI JOIN customer_ids USING (customer_id)
"""

PROPERTIES_STORED = "SELECT count(*) FROM properties WHERE batch_id = $batch_id"

# Published properties of touched customers (followed through merges) whose stored successor is
# missing or older in the newer-wins order (sql/schema/17_newer_wins.sql).
WENT_BACKWARDS = """
WITH previous AS (
    SELECT coalesce(alias.customer_id, p.customer_id) AS customer_id, p.property, p.value, p.update_ts
    FROM audit_published.properties AS p
    LEFT JOIN customer_aliases AS alias ON alias.old_customer_id = p.customer_id
)
SELECT previous.customer_id, previous.property, previous.update_ts, current.update_ts
FROM previous
LEFT JOIN properties AS current USING (customer_id, property)
WHERE previous.customer_id IN (SELECT customer_id FROM audit_touched)
  AND (
      current.customer_id IS NULL
      OR newer_wins(previous.update_ts, previous.value, current.update_ts, current.value)
  )
ORDER BY 1, 2
"""


def _scalar(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None
) -> int:
    row = con.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def merge_metrics(
    con: duckdb.DuckDBPyConnection,
    result: BatchResult,
    *,
    published: Path | None,
    source_rows: int,
    n_properties: int,
    batch: UpdateBatch | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """One row of post-merge metrics, and examples of timestamps that went backwards.

    ``batch``: the merged batch, for its blank lines and absent cells (``frames.source_cells``).
    """
    params = {"batch_id": result.batch_id}
    con.execute(TOUCHED, params)
    backwards: list[tuple[Any, ...]] = []
    if published is not None:
        con.execute(f"ATTACH '{_literal(str(published))}' AS audit_published (READ_ONLY)")
        try:
            backwards = con.execute(WENT_BACKWARDS).fetchall()
        finally:
            con.execute("DETACH audit_published")
    absent = None if batch is None else batch.absent_cells
    rejected = frames.rejected_cells(result.rejections, n_properties, absent)
    data_rows, source_cells = source_rows, source_rows * n_properties
    if batch is not None:
        data_rows, source_cells = frames.source_cells(batch, source_rows, n_properties)
    stored = _scalar(con, PROPERTIES_STORED, params)
    metrics: dict[str, Any] = {
        "duplicate_keys": _scalar(con, DUPLICATE_KEYS),
        "timestamps_went_backwards": len(backwards),
        "customers_without_id": _scalar(con, CUSTOMERS_WITHOUT_ID),
        "cells_incoming": source_cells,
        "properties_applied": result.properties_applied,
        "properties_stored": stored,
        "properties_stale": result.properties_stale,
        "cells_rejected": rejected,
        "cells_accounted": stored + result.properties_stale + rejected,
        "rows_read": result.rows_read,
        "source_rows": data_rows,
        "published_compared": str(published) if published is not None else None,
    }
    examples = [
        f"customer {c} property {p!r}: published update_ts {old} -> {'missing' if new is None else new}"
        for c, p, old, new in backwards[:5]
    ]
    con.execute("DROP TABLE IF EXISTS audit_touched")
    return metrics, examples


def _literal(text: str) -> str:
    return text.replace("'", "''")


@dataclass
class MergeAudit:
    """The ``audit`` hook for ``apply_batch``; keeps what it found for the caller to report."""

    suite: dict[str, Any]
    warehouse_root: Path
    source_rows: int
    n_properties: int
    on_pass: Callable[[duckdb.DuckDBPyConnection, runner.Outcome], None] | None = None
    batch: UpdateBatch | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
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
        values = {k: v for k, v in self.metrics.items() if k != "published_compared"}
        self.outcome = runner.validate(self.suite, [frames.one_row(values)])
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
