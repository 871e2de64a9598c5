"""The merge audit's metrics (propsync.orchestration.audit) inside the merge's transaction."""

from __future__ import annotations

import duckdb

from propsync.orchestration import tasks
from propsync.orchestration.audit import merge_metrics
from propsync.store.apply import BatchResult
from propsync.store.warehouse import Warehouse
from tests.dags.conftest import Env, us, utc
from tests.orchestration.conftest import stage_day


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
