"""The one-slot Airflow pool (propsync.orchestration.pool), created by the plugin's listener."""

from __future__ import annotations

from pathlib import Path


def test_the_scheduler_creates_the_pool_through_the_plugin(airflow_db: Path) -> None:
    """Starting any Airflow job (as the scheduler does) runs the plugin's listener."""
    from airflow.jobs.job import Job
    from airflow.models.pool import Pool

    from propsync.orchestration.pool import ensure_pool

    Pool.delete_pool("propsync_warehouse") if Pool.get_pool("propsync_warehouse") else None
    Job()
    pool = Pool.get_pool("propsync_warehouse")
    assert pool is not None
    assert pool.slots == 1
    assert ensure_pool() is False  # an existing pool (perhaps resized on purpose) is left alone
