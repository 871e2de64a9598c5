"""Airflow for the DAG tests: a temporary AIRFLOW_HOME with a SQLite metadata DB migrated once.

The environment is set when this module is imported, before anything imports Airflow (which
reads its configuration at import time).
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
SAMPLES = REPO / "samples" / "landing"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="propsync-airflow-"))
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
os.environ["GX_ANALYTICS_ENABLED"] = "False"
for name in list(os.environ):
    if name.startswith(("PROPSYNC_", "AIRFLOW_CONN_")):
        del os.environ[name]
os.environ["PROPSYNC_RETRY_DELAY"] = "1"  # a failing test should not sit out Airflow's retry delay


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def us(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """``airflow db migrate`` once per session, as a user would run it."""
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    yield AIRFLOW_HOME


@dataclass
class Env:
    root: Path
    warehouse: Path
    landing: Path

    def use_warehouse(self, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
        path = self.root / name
        monkeypatch.setenv("PROPSYNC_WAREHOUSE", str(path))
        self.warehouse = path
        return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: Path) -> Env:
    """A fresh warehouse and a copy of the sample landing data, named by PROPSYNC_* variables."""
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLES, landing)
    warehouse = tmp_path / "warehouse"
    monkeypatch.setenv("PROPSYNC_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("PROPSYNC_LANDING", str(landing))
    monkeypatch.setenv("PROPSYNC_LOCK_TIMEOUT", "30")
    return Env(tmp_path, warehouse, landing)


def load_dag(dag_id: str) -> Any:
    """Parse the DAG file now (so parse-time settings from the environment apply)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


@dataclass
class Run:
    state: str
    tasks: dict[str, str]
    run_id: str
    conf: dict[str, Any]


def run_dag(dag: Any, **kwargs: Any) -> Run:
    """``dag.test()``: a real DAG run, tasks executed in this process against the test DB."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    dr = dag.test(**kwargs)
    run_id = dr.run_id
    with settings.Session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.run_id == run_id, DagRun.dag_id == dag.dag_id)
        ).one()
        tis = session.scalars(
            select(TaskInstance).where(
                TaskInstance.run_id == run_id, TaskInstance.dag_id == dag.dag_id
            )
        ).all()
        return Run(
            str(run.state),
            {ti.task_id: str(ti.state) for ti in tis},
            run_id,
            dict(run.conf or {}),
        )


def xcom(dag_id: str, run_id: str, task_id: str) -> Any:
    from airflow import settings
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    with settings.Session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
        ).one()
        value = row.value
    import json

    return json.loads(value) if isinstance(value, str) else value


def published_rows(warehouse: Path, query: str) -> list[tuple[Any, ...]]:
    import duckdb

    from propsync.store.warehouse import Warehouse

    with duckdb.connect(str(Warehouse(warehouse).published_file()), read_only=True) as con:
        return con.execute(query).fetchall()


def work_rows(warehouse: Path, query: str) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(warehouse / "work.duckdb"), read_only=True) as con:
        return con.execute(query).fetchall()


PROPERTIES = (
    "SELECT customer_id, property, value, update_ts, batch_id FROM properties ORDER BY 1, 2"
)
IDS = "SELECT id_type, id_value, customer_id FROM customer_ids ORDER BY 1, 2"
