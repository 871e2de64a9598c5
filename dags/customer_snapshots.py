"""
### customer_snapshots

Imports the customer snapshot of each data interval from the landing location, checks it, merges
it newer-wins into the warehouse and publishes the result.

* **Schedule**: `PROPSYNC_SNAPSHOT_SCHEDULE` (default `@daily`, UTC). A run's snapshot is the
  state at the **end** of its data interval: the run for the interval ending 2024-01-03T00:00Z
  (logical date 2024-01-03) reads `$PROPSYNC_LANDING/customers/2024-01-03.{csv,parquet,jsonl}`
  with the mapping `$PROPSYNC_LANDING/customers/mapping.json` (paths or ObjectStoragePath URIs;
  templates `PROPSYNC_SNAPSHOT_SOURCE` / `PROPSYNC_SNAPSHOT_MAPPING`).
* **Default update time** of every row without its own `update_timestamp` is the end of the data
  interval, never the wall clock: a backfill of old days cannot overwrite newer data.
* **Catch-up / backfill**: `PROPSYNC_SNAPSHOT_CATCHUP=true` catches up from
  `PROPSYNC_SNAPSHOT_START_DATE`; backfills can be started from the UI (Trigger -> Backfill).
* **Missing snapshot**: `wait_for_snapshot` checks every `PROPSYNC_SNAPSHOT_POKE_INTERVAL` seconds
  (default 300) and **fails** the run after `PROPSYNC_SNAPSHOT_WAIT_TIMEOUT` seconds (default 6 h).
* **Checks**: `validate` runs the Great Expectations suites `staged_batch_cells` and
  `staged_batch_summary`; `merge` runs `merged_audit` inside the merge transaction. A failed check
  fails the run, keeps the bad rows in the warehouse table `rejections` and the check results in
  `quality_results` (Data Docs HTML beside the staged batch), and publishes nothing.
* **Publish** emits the Asset `propsync_published_warehouse`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronTriggerTimetable, PokeReturnValue, dag, get_current_context, task

from propsync.orchestration.chain import import_chain
from propsync.orchestration.payloads import SnapshotLocation
from propsync.orchestration.settings import ScheduleSettings

CONFIG = ScheduleSettings.from_env()


@dag(
    dag_id="customer_snapshots",
    schedule=CronTriggerTimetable(
        CONFIG.snapshot_schedule, timezone="UTC", interval=CONFIG.snapshot_interval
    ),
    start_date=CONFIG.snapshot_start_date,
    catchup=CONFIG.snapshot_catchup,
    max_active_runs=CONFIG.snapshot_max_active_runs,
    doc_md=__doc__,
    tags=["propsync"],
    default_args={"retries": 2, "retry_delay": CONFIG.retry_delay},
)
def customer_snapshots() -> None:
    @task.sensor(
        poke_interval=CONFIG.snapshot_poke_interval,
        timeout=CONFIG.snapshot_wait_timeout,
        mode="reschedule",
        retries=0,
    )
    def wait_for_snapshot() -> PokeReturnValue:
        from propsync.orchestration import tasks

        found = tasks.snapshot_location(get_current_context())
        if found is None:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=found.to_xcom())

    @task
    def extract(location: dict[str, str]) -> dict[str, Any]:
        from propsync.orchestration import tasks

        with tasks.failing_fast():
            landed = SnapshotLocation.from_xcom(location)
            return tasks.extract_snapshot(get_current_context(), landed).to_xcom()

    import_chain(extract(wait_for_snapshot()), pool=CONFIG.pool)


customer_snapshots()
