"""What a run leaves in the warehouse besides its batch (propsync.orchestration.records): its
check results, and on failure the failed batch with its quarantine, without a new version."""

from __future__ import annotations

import json

import duckdb
import polars as pl

from propsync.batch import REJECTIONS_SCHEMA
from propsync.config import Settings
from propsync.orchestration.records import SuiteRun, record_failure, record_quality
from propsync.quality.runner import Check
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, make_batch

FAILED = Check("expect_column_values_to_not_be_null", "value", "values present", False, 4, 1)
PASSED = Check("expect_column_values_to_be_unique", "row_nr", "unique rows", True, 4, 0, None, [])


def work_rows(warehouse: Warehouse, query: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(warehouse.work_path), read_only=True) as con:
        return con.execute(query).fetchall()


def test_a_suite_run_round_trips_through_json() -> None:
    run = SuiteRun("staged", "staged_batch_cells", [FAILED, PASSED], "quality/cells.html")
    assert SuiteRun.from_json(json.loads(json.dumps(run.to_json()))) == run


def test_a_failed_batch_is_recorded_with_its_quarantine_and_checks_but_not_published(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "ok", [({"registered": "a"}, "p", 1, 1.0)])
    bad = make_batch("bad", [({"registered": "b"}, "p", 2, 2.0)], kind="import")
    bad.rejections = pl.DataFrame(
        [(2, "row", "id", "", "no customer id")], schema=REJECTIONS_SCHEMA, orient="row"
    )
    bad.rows_read = 2
    run = SuiteRun("staged", "staged_batch_cells", [FAILED, PASSED])
    record_failure(warehouse, settings, bad, "the staged batch failed its checks", [run])

    assert work_rows(
        warehouse,
        "SELECT status, message, rows_read, rows_rejected FROM batches WHERE batch_id = 'bad'",
    ) == [("failed", "the staged batch failed its checks", 2, 1)]
    assert work_rows(warehouse, "SELECT row_nr, reason FROM rejections WHERE batch_id = 'bad'") == [
        (2, "no customer id")
    ]
    assert work_rows(
        warehouse,
        "SELECT stage, suite, check_name, success, element_count, unexpected_count"
        " FROM quality_results WHERE batch_id = 'bad' ORDER BY check_name",
    ) == [
        ("staged", "staged_batch_cells", "unique rows", True, 4, 0),
        ("staged", "staged_batch_cells", "values present", False, 4, 1),
    ]
    assert warehouse.published_version() == 1  # readers keep the published version
    assert work_rows(warehouse, "SELECT count(*) FROM properties") == [(1,)]  # nothing applied


def test_an_applied_batch_is_never_recorded_as_failed(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "ok", [({"registered": "a"}, "p", 1, 1.0)])
    record_failure(warehouse, settings, make_batch("ok", []), "too late")
    assert work_rows(warehouse, "SELECT status, message FROM batches") == [("applied", None)]


def test_recording_a_stage_again_replaces_its_results(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1.0)])
    record_quality(warehouse, settings, "b1", [SuiteRun("merged", "merged_audit", [FAILED])])
    record_quality(warehouse, settings, "b1", [SuiteRun("merged", "merged_audit", [PASSED])])
    rows = work_rows(warehouse, "SELECT stage, check_name, success, observed FROM quality_results")
    assert rows == [
        ("merged", "unique rows", True, json.dumps({"observed_value": None, "examples": []}))
    ]
