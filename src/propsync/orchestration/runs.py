"""What a task needs to know about its DAG run, taken from the Airflow context.

Everything is keyed on the run's data interval (scheduled and backfilled snapshot runs) or on
the run itself (manual imports), never on the wall clock, so a retry or a re-run computes the
same staging paths, the same default update time and therefore the same batch id.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _utc(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise ValueError(f"the DAG run has no {what}")
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _us(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def safe_key(text: str) -> str:
    """A file-name-safe rendering of a run key (run ids contain ':' and '+')."""
    return _UNSAFE.sub("_", text).strip("_") or "run"


@dataclass(frozen=True)
class SnapshotRun:
    """A scheduled, backfilled or manually triggered run of ``customer_snapshots``.

    The snapshot of a run is the state at the end of its data interval: the run for the interval
    ending 2024-01-03T00:00Z reads ``{landing}/customers/2024-01-03.*`` and stamps every row
    without its own update timestamp with 2024-01-03T00:00Z.
    """

    dag_id: str
    interval_start: dt.datetime
    interval_end: dt.datetime

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> SnapshotRun:
        dag_run = context["dag_run"]
        end = context.get("data_interval_end") or getattr(dag_run, "data_interval_end", None)
        start = context.get("data_interval_start") or getattr(dag_run, "data_interval_start", None)
        end_utc = _utc(end, "data interval")
        return cls(
            dag_id=str(dag_run.dag_id),
            interval_start=_utc(start, "data interval") if start is not None else end_utc,
            interval_end=end_utc,
        )

    @property
    def snapshot_date(self) -> str:
        return self.interval_end.strftime("%Y-%m-%d")

    @property
    def started_at_us(self) -> int:
        return _us(self.interval_end)

    @property
    def key(self) -> str:
        fmt = "%Y%m%dT%H%M%SZ"
        return f"{self.interval_start.strftime(fmt)}--{self.interval_end.strftime(fmt)}"

    def placeholders(self) -> dict[str, str]:
        return {
            "date": self.snapshot_date,
            "date_nodash": self.interval_end.strftime("%Y%m%d"),
            "ts_nodash": self.interval_end.strftime("%Y%m%dT%H%M%S"),
            "start_date": self.interval_start.strftime("%Y-%m-%d"),
        }


@dataclass(frozen=True)
class ManualRun:
    """A run of ``customer_import``: keyed on its run id; its default time is when it was queued."""

    dag_id: str
    run_id: str
    run_after: dt.datetime

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> ManualRun:
        dag_run = context["dag_run"]
        moment = getattr(dag_run, "run_after", None) or context.get("logical_date")
        return cls(
            dag_id=str(dag_run.dag_id),
            run_id=str(dag_run.run_id),
            run_after=_utc(moment, "run_after"),
        )

    @property
    def started_at_us(self) -> int:
        return _us(self.run_after)

    @property
    def key(self) -> str:
        return safe_key(self.run_id)
