"""The Airflow Asset every publish emits (propsync.orchestration.assets): a fixed identity that
downstream DAGs schedule on."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset

from propsync.orchestration.assets import PUBLISHED_WAREHOUSE


def test_the_asset_has_a_fixed_logical_identity() -> None:
    assert (
        Asset(
            name="propsync_published_warehouse",
            uri="propsync://warehouse/published",
            group="propsync",
        )
        == PUBLISHED_WAREHOUSE
    )


def test_a_downstream_dag_is_triggered_by_the_asset() -> None:
    with DAG(
        "refresh_reports", schedule=[PUBLISHED_WAREHOUSE], start_date=dt.datetime(2024, 1, 1)
    ) as dag:
        pass
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert list(dag.timetable.asset_condition.objects) == [PUBLISHED_WAREHOUSE]
