"""The orchestration's tests share the DAG tests' Airflow environment (``tests/dags/conftest.py``:
a temporary AIRFLOW_HOME, the sample landing data)."""

from __future__ import annotations

from tests.dags.conftest import (  # noqa: F401 (fixtures for the tests below this folder)
    airflow_db,
    env,
)
