"""The task functions without a scheduler: staging, the in-transaction audit and its rollback."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from propsync.errors import AuditFailed, SourceError, UsageError
from propsync.orchestration import tasks
from propsync.orchestration.audit import merge_metrics
from propsync.orchestration.payloads import Merged, MergeSummary, Normalised
from propsync.orchestration.runs import SnapshotRun
from propsync.orchestration.sources import find_snapshot
from propsync.orchestration.staging import quote_table, stage_source, verified
from propsync.store.apply import BatchResult
from propsync.store.warehouse import Warehouse
from tests.dags.conftest import PROPERTIES, Env, published_rows, us, utc, work_rows


def context(end: dt.datetime, run_type: str = "backfill") -> dict[str, Any]:
    """What Airflow passes a task of a snapshot run (a plain object for the DagRun)."""
    run = SimpleNamespace(dag_id="customer_snapshots", run_id=f"{run_type}__{end.isoformat()}")
    return {
        "dag_run": run,
        "data_interval_start": end - dt.timedelta(days=1),
        "data_interval_end": end,
    }


def stage_day(day: int) -> Normalised:
    ctx = context(utc(2024, 1, day))
    location = tasks.snapshot_location(ctx)
    assert location is not None
    return tasks.normalise(tasks.extract_snapshot(ctx, location))


def test_a_run_is_keyed_on_its_data_interval_not_its_type_or_the_clock() -> None:
    end = utc(2024, 1, 3)
    scheduled, backfill = (
        SnapshotRun.from_context(context(end, t)) for t in ("scheduled", "backfill")
    )
    assert scheduled == backfill
    assert scheduled.key == "20240102T000000Z--20240103T000000Z"
    assert scheduled.started_at_us == us(end)
    assert scheduled.placeholders()["date"] == "2024-01-03"


def test_staging_is_content_addressed_read_only_and_verified(tmp_path: Path) -> None:
    src = tmp_path / "day.csv"
    src.write_text("customer_id,plan\nc1,free\nc2,pro\n", encoding="utf-8")
    first = stage_source(str(src), tmp_path / "run")
    again = stage_source(f"file://{src}", tmp_path / "run")
    assert first.path == again.path
    assert (first.rows, first.bytes, first.format) == (2, 32, "csv")
    staged = first.path
    assert not staged.stat().st_mode & stat.S_IWUSR
    assert verified(first) == staged

    os.chmod(staged, 0o644)
    staged.write_text("customer_id,plan\nc1,HACKED\n", encoding="utf-8")
    with pytest.raises(SourceError, match="changed after staging"):
        verified(first)


def test_snapshot_lookup_names_what_it_tried_and_refuses_ambiguity(tmp_path: Path) -> None:
    (tmp_path / "customers").mkdir()
    placeholders = {"date": "2024-01-05"}
    missing = find_snapshot(
        "{landing}/customers/{date}", "{landing}/m.json", str(tmp_path), placeholders
    )
    assert missing.source is None
    assert missing.describe_missing().endswith(
        "2024-01-05.csv or "
        + f"{tmp_path}/customers/2024-01-05.parquet or {tmp_path}/customers/2024-01-05.jsonl"
    )
    (tmp_path / "customers" / "2024-01-05.jsonl").write_text("{}\n")
    found = find_snapshot(
        "{landing}/customers/{date}", "{landing}/m.json", f"file://{tmp_path}", placeholders
    )
    assert found.source == f"file://{tmp_path}/customers/2024-01-05.jsonl"
    (tmp_path / "customers" / "2024-01-05.csv").write_text("a\n")
    with pytest.raises(SourceError, match="ambiguous snapshot"):
        find_snapshot("{landing}/customers/{date}", "{landing}/m.json", str(tmp_path), placeholders)


def test_table_names_are_quoted_and_anything_else_refused() -> None:
    assert quote_table("crm.customers") == '"crm"."customers"'
    with pytest.raises(UsageError):
        quote_table('customers"; DROP TABLE x; --')


def test_the_audit_sees_a_timestamp_that_went_backwards(env: Env) -> None:
    for day in (1,):
        payload = tasks.validate(stage_day(day))
        tasks.publish(None, tasks.audit(tasks.merge(payload)))
    warehouse = Warehouse(env.warehouse)
    con = duckdb.connect(str(warehouse.work_path))
    try:
        con.execute("BEGIN TRANSACTION")
        # What a buggy merge might do: an older value replaces a newer one.
        con.execute(
            "UPDATE property_values SET update_ts = update_ts - 1, batch_id = 'bug' "
            "WHERE property_id = (SELECT property_id FROM property_names WHERE property = 'plan')"
        )
        metrics, examples = merge_metrics(
            con,
            BatchResult(
                "bug",
                "applied",
                rows_read=3,
                properties_applied=3,
                audit_counts={"duplicate_keys": 0, "customers_without_id": 0},
            ),
            published=warehouse.published_file(),
            source_rows=3,
            n_properties=1,
        )
        con.execute("ROLLBACK")
    finally:
        con.close()
    assert metrics.timestamps_went_backwards == 3
    assert metrics.properties_stored == 3
    assert (metrics.duplicate_keys, metrics.customers_without_id) == (0, 0)
    assert examples[0].endswith(
        f"published update_ts {us(utc(2024, 1, 1))} -> {us(utc(2024, 1, 1)) - 1}"
    )


def test_an_audit_failure_rolls_the_batch_back_and_publishes_nothing(env: Env) -> None:
    tasks.publish(None, tasks.audit(tasks.merge(tasks.validate(stage_day(1)))))
    warehouse = Warehouse(env.warehouse)
    published_before = warehouse.published_file()
    rows_before = published_rows(env.warehouse, PROPERTIES)

    payload = tasks.validate(stage_day(2))
    # The merge no longer reconciles with the source.
    payload = payload.model_copy(update={"source": payload.source.model_copy(update={"rows": 4})})
    with pytest.raises(
        AuditFailed, match="counts reconcile: applied \\+ stale \\+ rejected = incoming"
    ):
        tasks.merge(payload)

    assert warehouse.published_file() == published_before
    assert published_rows(env.warehouse, PROPERTIES) == rows_before
    assert work_rows(env.warehouse, "SELECT value FROM meta WHERE key = 'version'") == [("1",)]
    assert work_rows(env.warehouse, PROPERTIES) == rows_before  # rolled back, not just unpublished
    ((status, message),) = work_rows(
        env.warehouse,
        f"SELECT status, message FROM batches WHERE batch_id = '{payload.batch_id}'",
    )
    assert status == "failed"
    assert message.startswith("audit failed, batch rolled back")
    failed = work_rows(
        env.warehouse,
        f"SELECT check_name FROM quality_results WHERE batch_id = '{payload.batch_id}' "
        "AND stage = 'merged' AND NOT success ORDER BY 1",
    )
    assert failed == [
        ("counts reconcile: applied + stale + rejected = incoming",),
        ("rows merged reconcile with the source",),
    ]
    # The audit believes the warehouse, not a payload that claims the batch was applied.
    claimed = MergeSummary(
        batch_id=payload.batch_id,
        status="applied",
        message="",
        rows_read=3,
        properties_applied=15,
        properties_stale=0,
        rows_rejected=0,
        cells_rejected=0,
        already_applied=False,
        metrics=None,
    )
    with pytest.raises(AuditFailed, match="not applied"):
        tasks.audit(Merged(**payload.fields(), merge=claimed))
    # Nothing to publish: the version stays.
    assert tasks.publish(None, payload).version == 1


def test_retried_steps_reuse_what_the_first_try_staged(env: Env) -> None:
    first = stage_day(3)
    again = stage_day(3)
    assert again.batch_id == first.batch_id
    assert again.source.path == first.source.path
    assert again.normalised.normalised_at_us == first.normalised.normalised_at_us
    assert first.started_at_us == us(utc(2024, 1, 3))
