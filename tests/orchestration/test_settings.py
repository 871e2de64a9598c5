"""The orchestration's settings (propsync.orchestration.settings) from a given environment: the
defaults the DAGs document, overrides, and bad values refused like every other setting, naming the
variable as it was set."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from propsync.errors import UsageError
from propsync.orchestration.settings import POOL_NAME, DataSettings, ScheduleSettings


def test_the_defaults_are_the_documented_ones() -> None:
    s = ScheduleSettings.from_env({})
    assert (s.snapshot_schedule, s.snapshot_interval) == ("@daily", dt.timedelta(days=1))
    assert s.snapshot_start_date == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert (s.snapshot_catchup, s.snapshot_max_active_runs, s.pool) == (False, 1, POOL_NAME)
    assert (s.snapshot_wait_timeout, s.snapshot_poke_interval) == (21600, 300)
    assert (s.tracking_interval, s.retry_delay) == (dt.timedelta(minutes=1),) * 2
    d = DataSettings.from_env(Path("/wh"), {})
    assert (d.landing, d.staging, d.gx_chunk_rows) == ("landing", Path("/wh/staging"), 250_000)


def test_variables_override_the_defaults() -> None:
    s = ScheduleSettings.from_env(
        {
            "PROPSYNC_SNAPSHOT_SCHEDULE": "@hourly",
            "PROPSYNC_SNAPSHOT_START_DATE": "2024-03-01",
            "PROPSYNC_SNAPSHOT_CATCHUP": "yes",
            "PROPSYNC_SNAPSHOT_MAX_ACTIVE_RUNS": "3",
            "PROPSYNC_TRACKING_INTERVAL": "15",
            "PROPSYNC_RETRY_DELAY": " 1 ",
        }
    )
    assert s.snapshot_interval == dt.timedelta(hours=1)  # from the preset
    assert s.snapshot_start_date == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)  # naive: UTC
    assert (s.snapshot_catchup, s.snapshot_max_active_runs) == (True, 3)
    assert (s.tracking_interval, s.retry_delay) == (
        dt.timedelta(seconds=15),
        dt.timedelta(1 / 86400),
    )
    hours = ScheduleSettings.from_env({"PROPSYNC_SNAPSHOT_INTERVAL_HOURS": "6"})
    assert hours.snapshot_interval == dt.timedelta(hours=6)
    d = DataSettings.from_env(
        Path("/wh"),
        {
            "PROPSYNC_LANDING": "s3://bucket/landing/",
            "PROPSYNC_STAGING": "/tmp/st",
            "PROPSYNC_GX_CHUNK_ROWS": "1000",
        },
    )
    assert (d.landing, d.staging, d.gx_chunk_rows) == ("s3://bucket/landing", Path("/tmp/st"), 1000)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PROPSYNC_SNAPSHOT_MAX_ACTIVE_RUNS", "0", "must be a whole number >= 1"),
        ("PROPSYNC_TRACKING_INTERVAL", "0", "must be a number > 0 (seconds)"),
        ("PROPSYNC_SNAPSHOT_POKE_INTERVAL", "soon", "must be a number >= 0 (seconds)"),
        ("PROPSYNC_SNAPSHOT_CATCHUP", "maybe", "bool"),
        ("PROPSYNC_SNAPSHOT_START_DATE", "yesterday", "must be an ISO date"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(UsageError) as exc:
        ScheduleSettings.from_env({variable: value})
    assert f"{variable}={value}: " in exc.value.message and says in exc.value.message


def test_a_bad_task_setting_names_its_variable() -> None:
    with pytest.raises(UsageError) as exc:
        DataSettings.from_env(Path("/wh"), {"PROPSYNC_GX_CHUNK_ROWS": "-5"})
    assert "PROPSYNC_GX_CHUNK_ROWS=-5: must be a whole number >= 1" in exc.value.message
