"""Orchestration settings from ``PROPSYNC_*`` environment variables (parse-time safe: stdlib only).

DAG files read the scheduling settings when they are parsed; task functions read the data
settings (landing, staging) when they run, so a worker sees its own environment.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

POOL_NAME = "propsync_warehouse"
POOL_DESCRIPTION = "propsync: one writer at a time on the warehouse (merge, tracking ingest)"
SNAPSHOT_EXTENSIONS = (".csv", ".parquet", ".jsonl")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative")
    return value


def _bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (true/false)")


_PRESET_INTERVALS = {
    "@hourly": dt.timedelta(hours=1),
    "@daily": dt.timedelta(days=1),
    "@midnight": dt.timedelta(days=1),
    "@weekly": dt.timedelta(days=7),
}


@dataclass(frozen=True)
class ScheduleSettings:
    """What the DAG files need at parse time."""

    snapshot_schedule: str
    snapshot_interval: dt.timedelta
    snapshot_start_date: dt.datetime
    snapshot_catchup: bool
    snapshot_wait_timeout: float
    snapshot_poke_interval: float
    snapshot_max_active_runs: int
    tracking_interval: dt.timedelta
    retry_delay: dt.timedelta
    pool: str

    @classmethod
    def from_env(cls) -> ScheduleSettings:
        start = _env("PROPSYNC_SNAPSHOT_START_DATE", "2024-01-01")
        try:
            start_date = dt.datetime.fromisoformat(start)
        except ValueError:
            raise ValueError(f"PROPSYNC_SNAPSHOT_START_DATE={start!r} is not an ISO date") from None
        if start_date.tzinfo is None:
            start_date = start_date.replace(tzinfo=dt.UTC)
        schedule = _env("PROPSYNC_SNAPSHOT_SCHEDULE", "@daily")
        hours = _float_env("PROPSYNC_SNAPSHOT_INTERVAL_HOURS", 0.0)
        interval = (
            dt.timedelta(hours=hours)
            if hours
            else _PRESET_INTERVALS.get(schedule, dt.timedelta(days=1))
        )
        return cls(
            snapshot_schedule=schedule,
            snapshot_interval=interval,
            snapshot_start_date=start_date,
            snapshot_catchup=_bool_env("PROPSYNC_SNAPSHOT_CATCHUP", False),
            snapshot_wait_timeout=_float_env("PROPSYNC_SNAPSHOT_WAIT_TIMEOUT", 6 * 3600.0),
            snapshot_poke_interval=_float_env("PROPSYNC_SNAPSHOT_POKE_INTERVAL", 300.0),
            snapshot_max_active_runs=int(_float_env("PROPSYNC_SNAPSHOT_MAX_ACTIVE_RUNS", 1)) or 1,
            tracking_interval=dt.timedelta(
                seconds=_float_env("PROPSYNC_TRACKING_INTERVAL", 60.0) or 60.0
            ),
            retry_delay=dt.timedelta(seconds=_float_env("PROPSYNC_RETRY_DELAY", 60.0)),
            pool=_env("PROPSYNC_AIRFLOW_POOL", POOL_NAME),
        )


@dataclass(frozen=True)
class DataSettings:
    """Where snapshots land and where runs stage their files (read when a task runs)."""

    landing: str
    snapshot_source: str
    snapshot_mapping: str
    staging: Path

    @classmethod
    def from_env(cls, warehouse: Path) -> DataSettings:
        landing = _env("PROPSYNC_LANDING", "landing").rstrip("/")
        return cls(
            landing=landing,
            snapshot_source=_env("PROPSYNC_SNAPSHOT_SOURCE", "{landing}/customers/{date}"),
            snapshot_mapping=_env("PROPSYNC_SNAPSHOT_MAPPING", "{landing}/customers/mapping.json"),
            staging=Path(_env("PROPSYNC_STAGING", str(warehouse / "staging"))),
        )
