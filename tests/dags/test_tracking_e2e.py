"""tracking_ingest end to end: commands journaled by the API reach the published warehouse."""

from __future__ import annotations

from propsync.journal import JournalWriter, record_from_tracking
from propsync.orchestration.payloads import Published
from propsync.store.warehouse import Warehouse
from propsync.tracking import parse_commands
from tests.dags.conftest import Env, load_dag, published_rows, run_dag, work_rows, xcom


def journal(env: Env, body: dict[str, object], receive_us: int) -> None:
    tb = parse_commands(body, receive_us=receive_us)
    record = record_from_tracking(tb, body["commands"])  # type: ignore[arg-type]
    assert record is not None
    writer = JournalWriter(env.warehouse).start()
    try:
        writer.append_sync(record.encode())
    finally:
        writer.close()


def test_journaled_commands_are_applied_and_published(env: Env) -> None:
    dag = load_dag("tracking_ingest")
    journal(
        env,
        {
            "commands": [
                {
                    "name": "customers",
                    "data": {
                        "customer_ids": {"registered": "mgalik"},
                        "properties": {"first_name": "Marian"},
                        "update_timestamp": 1570001049,
                    },
                },
                {
                    "name": "customers",
                    "data": {"customer_ids": {"registered": "jnovak"}, "properties": {"vip": True}},
                },
            ]
        },
        receive_us=1_570_001_100_000_000,
    )

    run = run_dag(dag)

    assert run.state == "success"
    assert run.tasks == {"apply": "success", "publish": "success"}
    assert xcom("tracking_ingest", run.run_id, "apply") == 2
    published = Published.from_xcom(xcom("tracking_ingest", run.run_id, "publish"))
    assert published.version >= 1
    assert published.batch_id is None  # not an import
    rows = published_rows(
        env.warehouse,
        "SELECT id_value, property, value, update_ts FROM properties JOIN customer_ids USING (customer_id) ORDER BY 1",
    )
    assert rows == [
        ("jnovak", "vip", "true", 1_570_001_100_000_000),
        ("mgalik", "first_name", '"Marian"', 1_570_001_049_000_000),
    ]

    # Nothing new: nothing applied, the publish is skipped and the published file stays.
    before = Warehouse(env.warehouse).published_file()
    quiet = run_dag(dag)
    assert quiet.state == "success"
    assert quiet.tasks == {"apply": "success", "publish": "skipped"}
    assert xcom("tracking_ingest", quiet.run_id, "apply") == 0
    assert Warehouse(env.warehouse).published_file() == before


ROWS = (
    "SELECT id_value, property, value, update_ts "
    "FROM properties JOIN customer_ids USING (customer_id) ORDER BY 1, 2"
)


def test_apply_only_commits_and_the_publish_task_publishes(env: Env) -> None:
    dag = load_dag("tracking_ingest")
    warehouse = Warehouse(env.warehouse)

    def track(user: str, value: str, ts: int) -> None:
        command = {
            "name": "customers",
            "data": {
                "customer_ids": {"registered": user},
                "properties": {"plan": value},
                "update_timestamp": ts,
            },
        }
        journal(env, {"commands": [command]}, receive_us=1_700_000_100_000_000)

    track("ann", "gold", 1_700_000_000)
    first = run_dag(dag)
    assert first.tasks == {"apply": "success", "publish": "success"}
    version = Published.from_xcom(xcom("tracking_ingest", first.run_id, "publish")).version
    assert warehouse.published_version() == version >= 1

    # A run whose publish task does not run (marked success instead, as if it had died after the
    # apply): the apply committed to the working database and published nothing.
    track("bob", "silver", 1_700_000_050)
    second = run_dag(dag, mark_success_pattern="publish")
    assert second.tasks == {"apply": "success", "publish": "success"}
    assert xcom("tracking_ingest", second.run_id, "apply") == 1
    assert warehouse.published_version() == version
    assert published_rows(env.warehouse, ROWS) == [("ann", "plan", '"gold"', 1_700_000_000_000_000)]
    assert work_rows(env.warehouse, ROWS) == [
        ("ann", "plan", '"gold"', 1_700_000_000_000_000),
        ("bob", "plan", '"silver"', 1_700_000_050_000_000),
    ]

    # The next run has nothing new to apply, but the working database is ahead: it publishes.
    third = run_dag(dag)
    assert third.state == "success"
    assert third.tasks == {"apply": "success", "publish": "success"}
    assert xcom("tracking_ingest", third.run_id, "apply") == 0
    published = Published.from_xcom(xcom("tracking_ingest", third.run_id, "publish"))
    assert published.version > version
    assert warehouse.published_version() == published.version
    assert published_rows(env.warehouse, ROWS) == [
        ("ann", "plan", '"gold"', 1_700_000_000_000_000),
        ("bob", "plan", '"silver"', 1_700_000_050_000_000),
    ]
