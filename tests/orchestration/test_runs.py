"""A snapshot run (propsync.orchestration.runs) is keyed on its data interval."""

from __future__ import annotations

from propsync.orchestration.runs import SnapshotRun
from tests.dags.conftest import us, utc
from tests.orchestration.conftest import context


def test_a_run_is_keyed_on_its_data_interval_not_its_type_or_the_clock() -> None:
    end = utc(2024, 1, 3)
    scheduled, backfill = (
        SnapshotRun.from_context(context(end, t)) for t in ("scheduled", "backfill")
    )
    assert scheduled == backfill
    assert scheduled.key == "20240102T000000Z--20240103T000000Z"
    assert scheduled.started_at_us == us(end)
    assert scheduled.placeholders()["date"] == "2024-01-03"
