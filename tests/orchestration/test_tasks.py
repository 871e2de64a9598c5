"""The task functions without a scheduler: the in-transaction audit and its rollback, retries."""

from __future__ import annotations

import pytest

from propsync.errors import AuditFailed
from propsync.orchestration import tasks
from propsync.orchestration.payloads import Merged, MergeSummary
from propsync.store.warehouse import Warehouse
from tests.dags.conftest import PROPERTIES, Env, published_rows, us, utc, work_rows
from tests.orchestration.conftest import stage_day


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
