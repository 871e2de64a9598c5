"""customer_snapshots end to end: real ``dag.test()`` runs on sample landing data."""

from __future__ import annotations

import json
import os

import pytest

from propsync.orchestration.payloads import Normalised, Published
from propsync.store.warehouse import Warehouse
from tests.dags.conftest import (
    IDS,
    PROPERTIES,
    Env,
    load_dag,
    published_rows,
    run_dag,
    us,
    utc,
    work_rows,
    xcom,
)

ALL_TASKS = {"wait_for_snapshot", "extract", "normalise", "validate", "merge", "audit", "publish"}


def test_a_day_is_published_with_the_snapshot_time(env: Env) -> None:
    run = run_dag(load_dag("customer_snapshots"), logical_date=utc(2024, 1, 2))

    assert run.state == "success"
    assert run.tasks == dict.fromkeys(ALL_TASKS, "success")
    rows = published_rows(
        env.warehouse,
        "SELECT property, value, update_ts FROM properties JOIN customer_ids USING (customer_id) "
        "WHERE id_value = 'c004' ORDER BY property",
    )
    # The run for the interval ending 2024-01-02T00:00Z reads 2024-01-02.csv and stamps it then.
    stamp = us(utc(2024, 1, 2))
    assert rows == [
        ("age", "29", stamp),
        ("email", '"eva@example.com"', stamp),
        ("first_name", '"Eva"', stamp),
        ("plan", '"free"', stamp),
        ("vip", "false", stamp),
    ]
    published = Published.from_xcom(xcom("customer_snapshots", run.run_id, "publish"))
    assert published.version == 1
    assert published.path == Warehouse(env.warehouse).published_file()
    quality = work_rows(
        env.warehouse,
        "SELECT stage, suite, count(*), bool_and(success) FROM quality_results GROUP BY ALL ORDER BY 1, 2",
    )
    assert quality == [
        ("merged", "merged_audit", 6, True),
        ("staged", "staged_batch_cells", 10, True),
        ("staged", "staged_batch_summary", 5, True),
    ]
    # The reports (merged checks, GX's results, Data Docs pages) are kept with the staged batch.
    batch_dir = Normalised.from_xcom(xcom("customer_snapshots", run.run_id, "normalise")).batch_dir
    quality_dir = batch_dir / "quality"
    assert "merged_audit" in (quality_dir / "merged_audit.html").read_text()
    cells = json.loads((quality_dir / "staged_batch_cells.json").read_text())
    assert (cells["success"], cells["chunks"], len(cells["checks"])) == (True, 1, 10)
    assert [r["chunk"] for r in cells["gx_results"]] == [1]


def test_publish_emits_the_asset_event(env: Env) -> None:
    from airflow import settings
    from airflow.models.asset import AssetEvent, AssetModel
    from sqlalchemy import select

    run = run_dag(load_dag("customer_snapshots"), logical_date=utc(2024, 1, 1))
    assert run.state == "success"
    with settings.Session() as session:
        events = session.execute(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(
                AssetModel.name == "propsync_published_warehouse",
                AssetEvent.source_run_id == run.run_id,
            )
        ).all()
    assert len(events) == 1
    extra = events[0][0]
    assert extra["version"] == 1
    assert extra["path"] == str(Warehouse(env.warehouse).published_file())
    assert extra["batch_id"].startswith("imp-")


def test_backfill_in_any_order_equals_applying_in_order(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = load_dag("customer_snapshots")
    days = {n: utc(2024, 1, n) for n in (1, 2, 3)}

    in_order = env.use_warehouse("in-order", monkeypatch)
    for n in (1, 2, 3):
        assert run_dag(dag, logical_date=days[n]).state == "success"

    backfilled = env.use_warehouse("backfilled", monkeypatch)
    assert run_dag(dag, logical_date=days[3]).state == "success"
    for n in (1, 2):  # the backfill of the two earlier days, after day 3 is live
        assert run_dag(dag, logical_date=days[n]).state == "success"

    expected = published_rows(in_order, PROPERTIES)
    assert published_rows(backfilled, PROPERTIES) == expected
    assert published_rows(backfilled, IDS) == published_rows(in_order, IDS)
    by_key = {(c, p): (v, ts) for c, p, v, ts, _ in expected}
    names = dict(published_rows(in_order, "SELECT id_value, customer_id FROM customer_ids"))
    # Day 3's values win where day 3 has them; older days fill in the rest.
    assert by_key[(names["c001"], "first_name")] == ('"Marián"', us(days[3]))
    assert by_key[(names["c002"], "age")] == ("42", us(days[2]))
    assert by_key[(names["c004"], "email")] == ('"eva@example.com"', us(days[2]))
    assert by_key[(names["c005"], "age")] == ("null", us(days[3]))
    # The backfilled days did apply (older values are stale, not lost): 3 batches, 3 versions.
    assert work_rows(
        backfilled, "SELECT count(*), max(version) FROM batches WHERE status = 'applied'"
    ) == [(3, 3)]


def test_a_snapshot_that_fails_its_checks_changes_nothing_published(env: Env) -> None:
    dag = load_dag("customer_snapshots")
    assert run_dag(dag, logical_date=utc(2024, 1, 1)).state == "success"
    warehouse = Warehouse(env.warehouse)
    before_file = warehouse.published_file()
    before = published_rows(env.warehouse, PROPERTIES)

    # Day 2 arrives broken: two of four rows have no customer id, one age is not a number.
    (env.landing / "customers" / "2024-01-02.csv").write_text(
        "customer_id,first_name,email,plan,age,vip\n"
        "c001,Marian,HACKED,pro,33,no\n"
        ",Nobody,x@example.com,free,1,no\n"
        ",Ghost,y@example.com,free,2,no\n"
        "c002,Jana,jana@example.com,pro,forty,yes\n",
        encoding="utf-8",
    )
    run = run_dag(dag, logical_date=utc(2024, 1, 2))

    assert run.state == "failed"
    assert run.tasks["validate"] == "failed"
    assert run.tasks["merge"] == run.tasks["audit"] == run.tasks["publish"] == "upstream_failed"
    assert warehouse.published_file() == before_file
    assert published_rows(env.warehouse, PROPERTIES) == before
    # The failure and its bad rows stay in the warehouse: batches, rejections, quality_results.
    ((batch_id, message),) = work_rows(
        env.warehouse, "SELECT batch_id, message FROM batches WHERE status = 'failed'"
    )
    assert "rejected-row ratio under the threshold" in message
    assert work_rows(
        env.warehouse,
        f"SELECT row_nr, scope, reason FROM rejections WHERE batch_id = '{batch_id}' ORDER BY row_nr",
    ) == [
        (2, "row", "no customer id"),
        (3, "row", "no customer id"),
        (4, "cell", "age: not a number"),
    ]
    failed_checks = work_rows(
        env.warehouse,
        f"SELECT suite, check_name FROM quality_results WHERE batch_id = '{batch_id}' AND NOT success",
    )
    assert failed_checks == [("staged_batch_summary", "rejected-row ratio under the threshold")]
    assert work_rows(env.warehouse, "SELECT value FROM meta WHERE key = 'version'") == [("1",)]


def test_a_missing_snapshot_waits_then_fails(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROPSYNC_SNAPSHOT_WAIT_TIMEOUT", "2")
    monkeypatch.setenv("PROPSYNC_SNAPSHOT_POKE_INTERVAL", "1")
    dag = load_dag("customer_snapshots")
    assert dag.get_task("wait_for_snapshot").timeout == 2

    run = run_dag(dag, logical_date=utc(2024, 1, 9))

    assert run.state == "failed"
    assert run.tasks["wait_for_snapshot"] == "failed"
    assert {run.tasks[t] for t in ALL_TASKS - {"wait_for_snapshot"}} == {"upstream_failed"}
    assert not Warehouse(env.warehouse).current_path.exists()
    assert not os.path.exists(env.warehouse / "work.duckdb")
