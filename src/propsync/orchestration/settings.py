"""Orchestration settings from ``PROPSYNC_*`` environment variables (parse-time safe: pydantic,
which Airflow has loaded already, and the settings' shared error messages).

DAG files read the scheduling settings when they are parsed; task functions read the data
settings (landing, staging) when they run, so a worker sees its own environment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from propsync.config import SettingsModel

POOL_NAME = "propsync_warehouse"
POOL_DESCRIPTION = "propsync: one writer at a time on the warehouse (merge, tracking ingest)"
SNAPSHOT_EXTENSIONS = (".csv", ".parquet", ".jsonl")


_PRESET_INTERVALS = {
    "@hourly": dt.timedelta(hours=1),
    "@daily": dt.timedelta(days=1),
    "@midnight": dt.timedelta(days=1),
    "@weekly": dt.timedelta(days=7),
}


class ScheduleSettings(SettingsModel):
    """What the DAG files need at parse time (``PROPSYNC_*`` variables, docs/orchestration.md);
    a bad value is a ``UsageError`` naming the variable, as for every other setting."""

    snapshot_schedule: str = "@daily"
    # 0: the interval of the schedule's preset (@hourly, @daily, @weekly), else a day.
    snapshot_interval_hours: float = Field(default=0.0, ge=0, description="hours")
    snapshot_start_date: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    snapshot_catchup: bool = False
    snapshot_wait_timeout: float = Field(default=6 * 3600.0, ge=0, description="seconds")
    snapshot_poke_interval: float = Field(default=300.0, ge=0, description="seconds")
    snapshot_max_active_runs: int = Field(default=1, ge=1)
    tracking_interval_seconds: float = Field(default=60.0, gt=0, description="seconds")
    retry_delay_seconds: float = Field(default=60.0, ge=0, description="seconds")
    pool: str = Field(default=POOL_NAME, min_length=1)

    ENV: ClassVar[Mapping[str, str]] = {
        "snapshot_schedule": "PROPSYNC_SNAPSHOT_SCHEDULE",
        "snapshot_interval_hours": "PROPSYNC_SNAPSHOT_INTERVAL_HOURS",
        "snapshot_start_date": "PROPSYNC_SNAPSHOT_START_DATE",
        "snapshot_catchup": "PROPSYNC_SNAPSHOT_CATCHUP",
        "snapshot_wait_timeout": "PROPSYNC_SNAPSHOT_WAIT_TIMEOUT",
        "snapshot_poke_interval": "PROPSYNC_SNAPSHOT_POKE_INTERVAL",
        "snapshot_max_active_runs": "PROPSYNC_SNAPSHOT_MAX_ACTIVE_RUNS",
        "tracking_interval_seconds": "PROPSYNC_TRACKING_INTERVAL",
        "retry_delay_seconds": "PROPSYNC_RETRY_DELAY",
        "pool": "PROPSYNC_AIRFLOW_POOL",
    }

    @field_validator("snapshot_start_date", mode="before")
    @classmethod
    def _iso_date(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                v = dt.datetime.fromisoformat(v)
            except ValueError:
                raise ValueError("must be an ISO date or date-time, e.g. 2024-01-01") from None
        if isinstance(v, dt.datetime) and v.tzinfo is None:
            return v.replace(tzinfo=dt.UTC)
        return v

    @property
    def snapshot_interval(self) -> dt.timedelta:
        if self.snapshot_interval_hours:
            return dt.timedelta(hours=self.snapshot_interval_hours)
        return _PRESET_INTERVALS.get(self.snapshot_schedule, dt.timedelta(days=1))

    @property
    def tracking_interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.tracking_interval_seconds)

    @property
    def retry_delay(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.retry_delay_seconds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ScheduleSettings:
        return cls.resolve(env=env)


class DataSettings(SettingsModel):
    """What tasks read when they run: where snapshots land, where runs stage their files."""

    landing: str = "landing"
    snapshot_source: str = "{landing}/customers/{date}"
    snapshot_mapping: str = "{landing}/customers/mapping.json"
    staging: Path
    # Rows of staged cells per Great Expectations validation chunk (memory against overhead).
    gx_chunk_rows: int = Field(default=250_000, ge=1)

    ENV: ClassVar[Mapping[str, str]] = {
        "landing": "PROPSYNC_LANDING",
        "snapshot_source": "PROPSYNC_SNAPSHOT_SOURCE",
        "snapshot_mapping": "PROPSYNC_SNAPSHOT_MAPPING",
        "staging": "PROPSYNC_STAGING",
        "gx_chunk_rows": "PROPSYNC_GX_CHUNK_ROWS",
    }

    @field_validator("landing")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @classmethod
    def from_env(cls, warehouse: Path, env: Mapping[str, str] | None = None) -> DataSettings:
        return cls.resolve(env=env, defaults={"staging": warehouse / "staging"})
