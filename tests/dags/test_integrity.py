"""DAG integrity: every file parses, defines its DAG, does no work at parse time."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dags.conftest import DAGS, load_dag

DAG_IDS = {"customer_snapshots", "customer_import", "tracking_ingest"}
PIPELINE = ["extract", "normalise", "validate", "merge", "audit", "publish"]

PARSE_PROBE = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag in bag.dags.values():
    dags.setdefault(Path(dag.fileloc).name, []).append(dag.dag_id)
heavy = sorted(
    m for m in ("polars", "duckdb", "great_expectations", "propsync.store", "airflow.providers.common.sql.hooks.sql")
    if m in sys.modules
)
print(json.dumps({"dags": dags, "errors": bag.import_errors, "heavy": heavy}))
"""


def test_every_dag_file_parses_without_database_or_heavy_imports(tmp_path: Path) -> None:
    """Parse in a fresh interpreter whose metadata DB cannot be opened: any DB call would fail."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PROPSYNC_"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path}/missing-dir/airflow.db",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    done = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(DAGS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert {name: set(ids) for name, ids in report["dags"].items()} == {
        "customer_import.py": {"customer_import"},
        "customer_snapshots.py": {"customer_snapshots"},
        "tracking_ingest.py": {"tracking_ingest"},
    }
    assert report["heavy"] == []
    assert not (tmp_path / "missing-dir").exists()


def test_the_dagbag_has_exactly_the_contract_dags(airflow_db: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == DAG_IDS
    for dag_id in DAG_IDS:
        dag = bag.dags[dag_id]
        assert dag.doc_md and dag.doc_md.strip().startswith(f"### {dag_id}")
        assert "propsync" in dag.tags


@pytest.mark.parametrize("dag_id", ["customer_snapshots", "customer_import"])
def test_import_pipelines_have_the_contract_shape(airflow_db: Path, dag_id: str) -> None:
    dag = load_dag(dag_id)
    chain = (["wait_for_snapshot"] if dag_id == "customer_snapshots" else []) + PIPELINE
    assert sorted(dag.task_ids) == sorted(chain)
    for upstream, downstream in itertools.pairwise(chain):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.get_task("merge").pool == "propsync_warehouse"
    assert dag.get_task("publish").pool == "propsync_warehouse"
    assert [o.name for o in dag.get_task("publish").outlets] == ["propsync_published_warehouse"]
    assert dag.get_task("validate").pool == "default_pool"
    # Both import DAGs run one shared chain after their own extract (orchestration/chain.py).
    shared = {t for t in PIPELINE if t != "extract"}
    assert {t for t in dag.task_ids if dag.get_task(t).task_group.group_id == "import_chain"} == (
        shared
    )


def test_snapshot_schedule_is_daily_with_a_timed_wait(airflow_db: Path) -> None:
    dag = load_dag("customer_snapshots")
    assert (dag.timetable.expression, dag.timetable.timezone) == ("0 0 * * *", "UTC")
    assert dag.timetable.interval.total_seconds() == 86400
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    sensor = dag.get_task("wait_for_snapshot")
    assert (sensor.mode, sensor.poke_interval, sensor.timeout, sensor.retries) == (
        "reschedule",
        300,
        6 * 3600,
        0,
    )


def test_snapshot_schedule_is_configurable(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROPSYNC_SNAPSHOT_SCHEDULE", "0 6 * * *")
    monkeypatch.setenv("PROPSYNC_SNAPSHOT_CATCHUP", "true")
    monkeypatch.setenv("PROPSYNC_SNAPSHOT_START_DATE", "2024-03-01")
    dag = load_dag("customer_snapshots")
    assert dag.timetable.expression == "0 6 * * *"
    assert dag.catchup is True
    assert dag.start_date.isoformat() == "2024-03-01T00:00:00+00:00"


def test_tracking_runs_every_minute_without_overlap(airflow_db: Path) -> None:
    dag = load_dag("tracking_ingest")
    assert dag.timetable.delta.total_seconds() == 60
    assert (dag.catchup, dag.max_active_runs) == (False, 1)
    assert dag.get_task("apply").pool == dag.get_task("publish").pool == "propsync_warehouse"
    assert [o.name for o in dag.get_task("publish").outlets] == ["propsync_published_warehouse"]
