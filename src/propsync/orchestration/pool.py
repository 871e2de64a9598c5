"""The one-slot pool that keeps warehouse writes from overlapping, created without manual set-up.

``ensure_pool`` creates ``propsync_warehouse`` (1 slot) when it does not exist and leaves an
existing pool (perhaps resized on purpose) alone. It needs the metadata database, which Airflow 3
gives the scheduler but not task code, so it runs from a listener: ``PropsyncAirflowPlugin``
(entry point ``airflow.plugins``) registers ``on_starting``, which Airflow calls when the
scheduler (or any other job) starts. ``airflow dags test`` and ``dag.test()`` run tasks without the
scheduler's pool accounting, so they need no pool. Whatever the pool, the warehouse write lock
still serialises writers: the pool only keeps waiting writers from occupying worker slots.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

from propsync.orchestration.settings import POOL_DESCRIPTION, POOL_NAME

log = logging.getLogger("propsync.orchestration")


def pool_name() -> str:
    return os.environ.get("PROPSYNC_AIRFLOW_POOL", "").strip() or POOL_NAME


def ensure_pool(name: str | None = None, slots: int = 1) -> bool:
    """Create the pool if missing; return True when it was created. Needs the metadata DB."""
    from airflow.models.pool import Pool

    name = name or pool_name()
    if Pool.get_pool(name) is not None:
        return False
    Pool.create_or_update_pool(name, slots, POOL_DESCRIPTION, False)
    log.info("created Airflow pool %r with %d slot(s)", name, slots)
    return True


@hookimpl
def on_starting(component: Any) -> None:
    """Airflow lifecycle hook: when a job (scheduler, triggerer...) starts, ensure the pool.

    Jobs run in components that have the metadata database; task processes (which call this
    hook too) do not, and are skipped. ``job_type`` is not yet set when the hook runs.
    """
    from airflow.jobs.job import Job

    if not isinstance(component, Job):
        return
    try:
        ensure_pool()
    except Exception:  # never stop the scheduler over this; DAG warnings show the missing pool
        log.exception("could not create the propsync Airflow pool")


class PropsyncAirflowPlugin(AirflowPlugin):
    name = "propsync"
    listeners = [sys.modules[__name__]]  # noqa: RUF012 (AirflowPlugin's attribute)
