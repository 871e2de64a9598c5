"""customer_import end to end: the Params form, file and database sources, real DAG runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from propsync.orchestration.payloads import Extracted, Merged, Published
from tests.dags.conftest import Env, load_dag, published_rows, run_dag, us, utc, work_rows, xcom

SAMPLE_CRM = Path(__file__).resolve().parents[2] / "src" / "propsync" / "samples"

BY_ID = (
    "SELECT id_value, property, value, update_ts FROM properties "
    "JOIN customer_ids USING (customer_id) ORDER BY 1, 2"
)


def test_import_a_file_with_an_explicit_started_at(env: Env) -> None:
    run = run_dag(
        load_dag("customer_import"),
        run_conf={
            "source": str(SAMPLE_CRM / "crm_snapshot_0800.csv"),
            "mapping": str(SAMPLE_CRM / "mapping.json"),
            "started_at": "2019-10-02T08:00:00+02:00",
            "max_reject_ratio": 0.5,
        },
    )

    assert run.state == "success", run.tasks
    rows = published_rows(env.warehouse, BY_ID)
    stamp = us(utc(2019, 10, 2, 6))
    assert ("mgalik", "email", '"marian@old.example"', stamp) in rows
    assert ("ebartos", "vip", "true", stamp) in rows
    # pkral's age "abc" is quarantined; the empty-id row is refused whole.
    assert not [r for r in rows if r[0] == "pkral" and r[1] == "age"]
    merged = Merged.from_xcom(xcom("customer_import", run.run_id, "merge")).merge
    assert (merged.rows_read, merged.rows_rejected, merged.cells_rejected) == (5, 1, 7)
    assert merged.metrics is not None
    assert merged.metrics.cells_accounted == merged.metrics.cells_incoming == 30


def test_default_update_time_is_when_the_run_was_triggered(env: Env) -> None:
    triggered = utc(2024, 2, 1, 12, 30)
    run = run_dag(
        load_dag("customer_import"),
        logical_date=None,
        run_after=triggered,
        run_conf={
            "source": str(env.landing / "customers" / "2024-01-01.csv"),
            "mapping": str(env.landing / "customers" / "mapping.json"),
        },
    )

    assert run.state == "success", run.tasks
    stamps = {ts for *_, ts in published_rows(env.warehouse, BY_ID)}
    assert stamps == {us(triggered)}


def test_import_a_table_of_a_sqlite_connection(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    db = env.root / "crm.sqlite"
    with sqlite3.connect(db) as con:
        con.execute(
            "CREATE TABLE customers (customer_id TEXT, first_name TEXT, email TEXT, plan TEXT, age INTEGER, vip TEXT)"
        )
        con.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("007", "James", "james@example.com", "pro", 45, "yes"),
                ("c100", "Ada", None, "free", None, "no"),
            ],
        )
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))

    run = run_dag(
        load_dag("customer_import"),
        run_conf={
            "conn_id": "crm_db",
            "table": "customers",
            "mapping": str(env.landing / "customers" / "mapping.json"),
            "started_at": "1700000000",
        },
    )

    assert run.state == "success", run.tasks
    stamp = 1_700_000_000_000_000
    assert published_rows(env.warehouse, BY_ID) == [
        ("007", "age", "45", stamp),
        ("007", "email", '"james@example.com"', stamp),
        ("007", "first_name", '"James"', stamp),
        ("007", "plan", '"pro"', stamp),
        ("007", "vip", "true", stamp),
        ("c100", "age", "null", stamp),
        ("c100", "email", "null", stamp),
        ("c100", "first_name", '"Ada"', stamp),
        ("c100", "plan", '"free"', stamp),
        ("c100", "vip", "false", stamp),
    ]
    staged = Extracted.from_xcom(xcom("customer_import", run.run_id, "extract")).source
    assert (staged.origin, staged.sql) == ("crm_db:customers", 'SELECT * FROM "customers"')
    assert staged.rows == 2
    assert staged.path.suffix == ".parquet"

    # The same connection with a query: only the rows it selects.
    second = run_dag(
        load_dag("customer_import"),
        run_conf={
            "conn_id": "crm_db",
            "query": "SELECT customer_id, 'Jim' AS first_name, email, plan, age, vip FROM customers WHERE customer_id = '007'",
            "mapping": str(env.landing / "customers" / "mapping.json"),
            "started_at": "1700000100",
        },
    )
    assert second.state == "success", second.tasks
    names = {
        (i, v, ts) for i, p, v, ts in published_rows(env.warehouse, BY_ID) if p == "first_name"
    }
    assert names == {("007", '"Jim"', 1_700_000_100_000_000), ("c100", '"Ada"', stamp)}


def test_the_same_import_twice_is_a_no_op(env: Env) -> None:
    conf = {
        "source": str(env.landing / "customers" / "2024-01-03.csv"),
        "mapping": str(env.landing / "customers" / "mapping.json"),
        "started_at": "2024-01-03T00:00:00Z",
    }
    dag = load_dag("customer_import")
    first, second = run_dag(dag, run_conf=conf), run_dag(dag, run_conf=conf)

    assert first.state == second.state == "success"
    merged = Merged.from_xcom(xcom("customer_import", second.run_id, "merge")).merge
    assert (merged.status, merged.metrics) == ("already_applied", None)
    assert work_rows(env.warehouse, "SELECT count(*) FROM batches") == [(1,)]
    assert Published.from_xcom(xcom("customer_import", second.run_id, "publish")).version == 1


def test_a_legacy_import_stores_no_timestamps(env: Env) -> None:
    run = run_dag(
        load_dag("customer_import"),
        run_conf={
            "source": str(SAMPLE_CRM / "legacy_customers.csv"),
            "mapping": str(SAMPLE_CRM / "legacy_mapping.json"),
            "legacy": True,
        },
    )

    assert run.state == "success", run.tasks
    rows = published_rows(env.warehouse, BY_ID)
    assert len(rows) == 6
    assert {ts for *_, ts in rows} == {None}


def test_a_source_and_a_connection_together_fail_before_reading(env: Env) -> None:
    run = run_dag(
        load_dag("customer_import"),
        run_conf={
            "source": str(env.landing / "customers" / "2024-01-01.csv"),
            "conn_id": "crm_db",
            "table": "customers",
            "mapping": str(env.landing / "customers" / "mapping.json"),
        },
    )

    assert run.state == "failed"
    assert run.tasks["extract"] == "failed"
    assert not (env.warehouse / "work.duckdb").exists()


@pytest.mark.parametrize(
    ("conf", "complaint"),
    [
        ({}, "mapping"),
        ({"mapping": ""}, "mapping"),
        ({"mapping": "m.json", "max_reject_ratio": 2}, "max_reject_ratio"),
        ({"mapping": "m.json", "table": "customers; DROP TABLE x"}, "table"),
        ({"mapping": "m.json", "legacy": "yes"}, "legacy"),
    ],
)
def test_the_params_form_rejects_invalid_input(
    airflow_db: Path, conf: dict[str, object], complaint: str
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = load_dag("customer_import").params
    rejected = []
    for key in params:
        param = params.get_param(key)
        try:
            param.resolve(conf[key]) if key in conf else param.resolve()
        except ParamValidationError:
            rejected.append(key)
    assert rejected == [complaint]


def test_the_params_form_accepts_a_full_request(airflow_db: Path) -> None:
    params = load_dag("customer_import").params
    conf = {
        "source": "s3://bucket/x.csv",
        "mapping": "m.json",
        "started_at": "1570001049",
        "legacy": False,
        "conn_id": None,
        "table": None,
        "query": None,
        "max_reject_ratio": 0.1,
    }
    assert {k: params.get_param(k).resolve(v) for k, v in conf.items()} == conf


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_blank_lines_short_rows_and_missing_keys_pass_the_checks(
    env: Env, tmp_path: Path, suffix: str
) -> None:
    # The staged row count and the GX reconciliations allow for the source rules (docs/sources.md):
    # blank lines are not rows, a short CSV row is a row rejection, a missing key is no cell.
    mapping = {
        "properties": [
            {"from_column": "name", "to_property": "name"},
            {"from_column": "age", "to_property": "age", "type": "number"},
        ],
        "ids": [{"from_column": "id", "to_id": "registered"}],
    }
    source = tmp_path / f"s{suffix}"
    if suffix == ".csv":
        source.write_text("id,name,age\nu1,Ann,30\n\nu2,Bob\n  \nu3,Cy,3\n\n", encoding="utf-8")
    else:
        source.write_text(
            '{"id": "u1", "name": "Ann", "age": 30}\n\n{"id": "u2", "age": 4, "age": 40}\n'
            '{"id": "u3", "name": null}\n  \n',
            encoding="utf-8",
        )
    (tmp_path / "m.json").write_text(json.dumps(mapping), encoding="utf-8")
    run = run_dag(
        load_dag("customer_import"),
        run_conf={
            "source": str(source),
            "mapping": str(tmp_path / "m.json"),
            "started_at": "2024-01-03T00:00:00Z",
            "max_reject_ratio": 0.5,
        },
    )

    assert run.state == "success", run.tasks
    merged = Merged.from_xcom(xcom("customer_import", run.run_id, "merge")).merge
    metrics = merged.metrics
    assert metrics is not None
    assert metrics.cells_accounted == metrics.cells_incoming
    stamp = us(utc(2024, 1, 3))
    counts = (merged.rows_read, merged.rows_rejected, metrics.cells_incoming)
    if suffix == ".csv":
        assert counts == (3, 1, 6)
        expected = [("u1", "age", "30"), ("u1", "name", '"Ann"'), ("u3", "age", "3")]
        expected.append(("u3", "name", '"Cy"'))
    else:
        assert counts == (3, 0, 4)
        expected = [("u1", "age", "30"), ("u1", "name", '"Ann"'), ("u2", "age", "40")]
        expected.append(("u3", "name", "null"))
    assert published_rows(env.warehouse, BY_ID) == [(*row, stamp) for row in expected]
