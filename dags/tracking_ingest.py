"""
### tracking_ingest

Applies the tracking-API commands that the API service journaled since the last run, then
publishes, so an accepted command reaches the warehouse readers within one interval
(`PROPSYNC_TRACKING_INTERVAL` seconds, default 60).

* `apply` calls `propsync.journal.apply_journal(..., publish=False)` in the one-slot warehouse
  pool: the commands are committed to the working database only. It is idempotent (the journal
  remembers what was applied).
* `publish` publishes (and emits the Asset `propsync_published_warehouse`) when commands were
  applied, or when the working database is still ahead of the published version because an
  earlier run's publish failed; otherwise it is skipped (no Asset event).

Runs never overlap (`max_active_runs=1`) and never catch up: each run takes everything pending.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import dag, get_current_context, task

from propsync.orchestration.assets import PUBLISHED_WAREHOUSE
from propsync.orchestration.settings import ScheduleSettings

CONFIG = ScheduleSettings.from_env()


@dag(
    dag_id="tracking_ingest",
    schedule=CONFIG.tracking_interval,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=max(CONFIG.tracking_interval * 10, dt.timedelta(minutes=10)),
    doc_md=__doc__,
    tags=["propsync"],
    default_args={"retries": 1, "retry_delay": CONFIG.retry_delay},
)
def tracking_ingest() -> None:
    @task(pool=CONFIG.pool)
    def apply() -> int:
        from propsync.orchestration import tasks

        with tasks.failing_fast():
            return tasks.ingest_tracking()

    @task(pool=CONFIG.pool, outlets=[PUBLISHED_WAREHOUSE])
    def publish(applied: int) -> dict[str, Any]:
        from propsync.orchestration import tasks

        with tasks.failing_fast():
            return tasks.publish_tracking(get_current_context(), applied).to_xcom()

    publish(apply())


tracking_ingest()
