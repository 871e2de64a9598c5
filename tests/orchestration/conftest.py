"""The task functions' tests share the DAG tests' Airflow environment (``tests/dags/conftest.py``:
a temporary AIRFLOW_HOME, the sample landing data) and build a snapshot run's context here."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from propsync.orchestration import tasks
from propsync.orchestration.payloads import Normalised
from tests.dags.conftest import (  # noqa: F401 (fixtures for the tests below this folder)
    airflow_db,
    env,
    utc,
)


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
