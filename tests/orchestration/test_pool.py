"""The one-slot Airflow pool (propsync.orchestration.pool), created by the plugin's listener when a
job starts, left alone when it exists; the plugin is installed as an entry point."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from propsync.orchestration import pool as pool_module
from propsync.orchestration.settings import POOL_DESCRIPTION, POOL_NAME


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


def test_ensure_pool_creates_a_missing_pool_once(airflow_db: Path) -> None:
    from airflow.models.pool import Pool

    try:
        assert pool_module.ensure_pool("propsync_test_pool", slots=3) is True
        created = Pool.get_pool("propsync_test_pool")
        assert created is not None
        assert (created.slots, created.description) == (3, POOL_DESCRIPTION)
        assert pool_module.ensure_pool("propsync_test_pool", slots=1) is False
        assert Pool.get_pool("propsync_test_pool").slots == 3  # type: ignore[union-attr]
    finally:
        Pool.delete_pool("propsync_test_pool")


def test_the_listener_ignores_components_that_are_not_jobs(airflow_db: Path) -> None:
    """Task processes call the hook too, without the metadata database: nothing is done."""
    from airflow.models.pool import Pool

    if Pool.get_pool(POOL_NAME):
        Pool.delete_pool(POOL_NAME)
    try:
        pool_module.on_starting(object())
        assert Pool.get_pool(POOL_NAME) is None
    finally:
        pool_module.ensure_pool()  # as the other tests found it


def test_the_pool_is_named_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROPSYNC_AIRFLOW_POOL", raising=False)
    assert pool_module.pool_name() == POOL_NAME
    monkeypatch.setenv("PROPSYNC_AIRFLOW_POOL", " writers ")
    assert pool_module.pool_name() == "writers"
    monkeypatch.setenv("PROPSYNC_AIRFLOW_POOL", "  ")
    assert pool_module.pool_name() == POOL_NAME


def test_the_plugin_is_installed_as_an_entry_point_with_the_listener() -> None:
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "propsync"]
    plugin = entry.load()
    assert plugin is pool_module.PropsyncAirflowPlugin
    assert plugin.listeners == [pool_module]
