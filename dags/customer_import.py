"""
### customer_import

The one-off and backfill tool for engineers: trigger it with the **Trigger** form and import one
snapshot through the same checks as the scheduled `customer_snapshots`.

Parameters (validated by their JSON schema before the run starts):

* `source`: the snapshot, a path or any URI that ObjectStoragePath reads (`.csv`, `.parquet`,
  `.jsonl`); leave empty when the source is a database table or query.
* `conn_id` with `table` or `query`: a database source through an Airflow connection
  (common.sql), e.g. `conn_id=crm_db`, `table=customers`.
* `mapping`: the mapping model (JSON), a path or URI.
* `started_at` (optional): the default update time of rows without their own `update_timestamp`,
  UNIX seconds or ISO 8601 (e.g. `2019-10-02T08:00:00+02:00`). Without it: when the run was
  triggered (the run's `run_after`), never the time a retry happens to run.
* `legacy`: load without timestamps (migration of data that never tracked update times).
* `max_reject_ratio` (optional): overrides `PROPSYNC_MAX_REJECT_RATIO` for this run.

Importing the same bytes with the same mapping and options again is a no-op (same batch id).
A failed check fails the run, keeps the quarantine in the warehouse and publishes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from propsync.orchestration.chain import import_chain
from propsync.orchestration.settings import ScheduleSettings

CONFIG = ScheduleSettings.from_env()


@dag(
    dag_id="customer_import",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["propsync"],
    default_args={"retries": 1, "retry_delay": CONFIG.retry_delay},
    params={
        "source": Param(
            "",
            type="string",
            title="Source file or URI",
            description="Path or URI of a .csv, .parquet or .jsonl snapshot (empty with conn_id).",
        ),
        "mapping": Param(
            type="string",
            minLength=1,
            title="Mapping",
            description="Path or URI of the mapping model (JSON).",
        ),
        "started_at": Param(
            None,
            type=["null", "string"],
            title="Default update time",
            description="UNIX seconds or ISO 8601; empty: when the run was triggered.",
        ),
        "legacy": Param(
            False, type="boolean", title="Legacy", description="Load without timestamps."
        ),
        "conn_id": Param(
            None,
            type=["null", "string"],
            title="Connection id",
            description="Airflow connection of a database source (instead of source).",
        ),
        "table": Param(
            None,
            type=["null", "string"],
            pattern=r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$",
            title="Table",
            description="[schema.]table to import whole (with conn_id).",
        ),
        "query": Param(
            None,
            type=["null", "string"],
            title="Query",
            description="SELECT statement to import (with conn_id, instead of table).",
        ),
        "max_reject_ratio": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=1,
            title="Max reject ratio",
            description="Share of rows with rejections above which the run fails.",
        ),
    },
)
def customer_import() -> None:
    @task
    def extract() -> dict[str, Any]:
        from propsync.orchestration import tasks

        context = get_current_context()
        with tasks.failing_fast():
            return tasks.extract_import(context, dict(context["params"])).to_xcom()

    import_chain(extract(), pool=CONFIG.pool)


customer_import()
