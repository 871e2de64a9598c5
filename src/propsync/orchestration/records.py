"""What a run leaves in the warehouse besides the batch: its check results and, on failure, the
failed batch with its quarantine (the ``rejections`` table), so a failed run is understood there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import polars as pl

from propsync import frames, sql
from propsync.batch import UpdateBatch, rejected_row_count
from propsync.config import Settings
from propsync.quality.runner import Check, Outcome
from propsync.store import apply as core_apply
from propsync.store.warehouse import Warehouse
from propsync.timestamps import now_us

# The columns of quality_results (sql/schema/11_quality_results.sql), as insert_quality builds them.
QUALITY_ROW_SCHEMA = {
    "batch_id": pl.String,
    "stage": pl.String,
    "suite": pl.String,
    "check_name": pl.String,
    "expectation": pl.String,
    "column_name": pl.String,
    "success": pl.Boolean,
    "element_count": pl.Int64,
    "unexpected_count": pl.Int64,
    "observed": pl.String,
    "report": pl.String,
    "recorded_at_us": pl.Int64,
}


@dataclass(frozen=True)
class SuiteRun:
    """The checks of one suite run, as kept in ``quality_results``."""

    stage: str
    suite: str
    checks: list[Check]
    report: str | None = None

    @classmethod
    def of(cls, stage: str, outcome: Outcome, report: str | None = None) -> SuiteRun:
        return cls(stage, outcome.suite, outcome.checks, report)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "suite": self.suite,
            "report": self.report,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SuiteRun:
        checks = [Check(**c) for c in data["checks"]]
        return cls(data["stage"], data["suite"], checks, data.get("report"))


def insert_quality(con: duckdb.DuckDBPyConnection, batch_id: str, runs: Iterable[SuiteRun]) -> None:
    """Replace the batch's results for each stage given (call inside a transaction)."""
    stamp = now_us()
    rows: list[dict[str, Any]] = []
    # The next run's history file carries the batch's record again, with these results.
    con.execute(sql.load("record/pend_history"), {"batch_id": batch_id})
    for run in runs:
        con.execute(
            sql.load("record/delete_quality_results"),
            {"batch_id": batch_id, "stage": run.stage, "suite": run.suite},
        )
        rows.extend(
            {
                "batch_id": batch_id,
                "stage": run.stage,
                "suite": run.suite,
                "check_name": c.check,
                "expectation": c.expectation,
                "column_name": c.column,
                "success": c.success,
                "element_count": c.element_count,
                "unexpected_count": c.unexpected_count,
                "observed": json.dumps(_observed(c), default=str),
                "report": run.report,
                "recorded_at_us": stamp,
            }
            for c in run.checks
        )
    if rows:
        frames.register(con, "quality_rows", pl.DataFrame(rows, schema=QUALITY_ROW_SCHEMA))
        try:
            con.execute(sql.load("record/insert_quality_results"))
        finally:
            con.unregister("quality_rows")


def _observed(c: Check) -> dict[str, Any]:
    observed = {"observed_value": c.observed_value, "examples": c.examples}
    return {**observed, "errors": c.errors} if c.errors else observed


def record_failure(
    warehouse: Warehouse,
    settings: Settings,
    batch: UpdateBatch,
    message: str,
    runs: Iterable[SuiteRun] = (),
    *,
    rejections: pl.DataFrame | None = None,
) -> None:
    """Record ``batch`` as failed, with its quarantine and check results; publish nothing.

    The version does not change, so readers keep the published version; the failure is visible
    in the working database now and in the next published version.
    """
    rejected = batch.rejections if rejections is None else rejections
    result = core_apply.BatchResult(
        batch.batch_id,
        "failed",
        rows_read=batch.rows_read,
        rows_rejected=rejected_row_count(rejected),
        cells_rejected=batch.cells_incoming - batch.cells.height,
        default_timestamp_rows=batch.default_timestamp_rows,
        message=message,
        rejections=rejected,
    )
    with warehouse.write_lock(settings.lock_timeout_seconds):
        con = warehouse.connect_work(settings.duckdb_memory_limit)
        try:
            key = {"batch_id": batch.batch_id}
            if con.execute(sql.load("record/applied_version"), key).fetchall():
                return  # never overwrite the record of a batch that is in the warehouse
            con.execute("BEGIN TRANSACTION")
            core_apply.record_batch(con, batch, result, version=None, in_transaction=True)
            insert_quality(con, batch.batch_id, runs)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        finally:
            con.close()


def record_quality(
    warehouse: Warehouse, settings: Settings, batch_id: str, runs: Iterable[SuiteRun]
) -> None:
    with warehouse.write_lock(settings.lock_timeout_seconds):
        con = warehouse.connect_work(settings.duckdb_memory_limit)
        try:
            con.execute("BEGIN TRANSACTION")
            insert_quality(con, batch_id, runs)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        finally:
            con.close()
