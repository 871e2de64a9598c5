"""The runner merges chunk results into propsync's own checks, with real GX, and leaves GX's alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from propsync.orchestration.records import SuiteRun
from propsync.quality import runner

SUITE: dict[str, Any] = {
    "name": "toy",
    "expectations": [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "x", "min_value": 0},
            "meta": {"check": "x non-negative"},
        },
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "y"},
            "meta": {"check": "y present"},
        },
    ],
}


def chunk(first_row: int, xs: list[int | None]) -> pl.DataFrame:
    rows = range(first_row, first_row + len(xs))
    return pl.DataFrame({"row_nr": list(rows), "x": xs, "y": [1] * len(xs)})


# Chunk 2 alone breaks the rule: 25 negatives among 30 values; chunk 1 has one missing x.
CHUNKS = [
    chunk(0, [*range(9), None]),
    chunk(10, [-(k + 1) for k in range(25)] + [1] * 5),
    chunk(40, list(range(10))),
]


def validate(frames: list[pl.DataFrame]) -> runner.Outcome:
    return runner.validate(SUITE, frames, index_column="row_nr")


def by_check(outcome: runner.Outcome) -> dict[str, runner.Check]:
    return {c.check: c for c in outcome.checks}


def test_three_chunks_failing_in_the_second_merge_to_the_right_counts() -> None:
    outcome = validate(CHUNKS)
    x = by_check(outcome)["x non-negative"]
    assert (x.element_count, x.missing_count, x.unexpected_count) == (50, 1, 25)
    assert x.unexpected_percent == pytest.approx(100 * 25 / 49)
    assert x.unexpected_percent_total == pytest.approx(50.0)
    assert x.examples == [-(k + 1) for k in range(runner.MAX_EXAMPLES)]
    assert [r["row_nr"] for r in x.example_rows] == list(range(10, 10 + runner.MAX_EXAMPLES))
    assert not x.success and not x.errors
    assert by_check(outcome)["y present"].success
    assert (outcome.success, outcome.chunks, outcome.failed_chunks) == (False, 3, [2])
    assert [r.chunk for r in outcome.gx_results] == [1, 2]


def test_examples_are_capped_in_chunk_order() -> None:
    outcome = validate([chunk(0, [-1] * 15), chunk(15, [-2] * 15), chunk(30, [-3])])
    x = by_check(outcome)["x non-negative"]
    assert x.unexpected_count == 31
    assert x.examples == [-1] * 15 + [-2] * 5
    assert [r["row_nr"] for r in x.example_rows] == list(range(runner.MAX_EXAMPLES))
    assert x.unexpected_percent == pytest.approx(100.0)


def test_an_expectation_that_raised_in_one_chunk_is_reported() -> None:
    # GX puts a result that raised first; the other expectation must not take its place.
    outcome = validate([CHUNKS[0], CHUNKS[2].drop("y"), CHUNKS[2]])
    x, y = outcome.checks
    assert (x.check, x.success) == ("x non-negative", True)
    assert (x.unexpected_count, x.element_count) == (0, 30)  # chunk 2 counts here too
    assert (y.check, y.success, y.element_count) == ("y present", False, 20)
    assert y.errors == ['chunk 2: Error: The column "y" in BatchData does not exist.']
    assert "raised: chunk 2" in outcome.summary()
    assert outcome.failed_chunks == [2]
    run = SuiteRun.of("staged", outcome)
    assert SuiteRun.from_json(json.loads(json.dumps(run.to_json()))) == run


def test_gx_chunk_results_are_left_as_gx_returned_them(tmp_path: Path) -> None:
    results = list(runner.gx_results(SUITE, CHUNKS, index_column="row_nr"))
    before = [r.to_json_dict() for r in results]
    outcome = runner.merge_results("toy", results)
    outcome.write(tmp_path, "toy")
    assert [r.to_json_dict() for r in results] == before
    assert [r.result for r in outcome.gx_results] == results[:2]  # kept, not copied
    assert by_check(outcome)["x non-negative"].unexpected_count == 25


def test_the_report_files_carry_the_merged_counts(tmp_path: Path) -> None:
    files = validate(CHUNKS).write(tmp_path, "toy")
    data = json.loads(Path(files["json"]).read_text())
    assert (data["suite"], data["success"]) == ("toy", False)
    assert (data["chunks"], data["failed_chunks"]) == (3, [2])
    assert data["statistics"]["unsuccessful_expectations"] == 1
    x = data["checks"][0]
    assert (x["element_count"], x["unexpected_count"], x["missing_count"]) == (50, 25, 1)
    assert x["unexpected_percent"] == pytest.approx(100 * 25 / 49)
    assert [g["chunk"] for g in data["gx_results"]] == [1, 2]
    chunk2 = data["gx_results"][1]["result"]["results"]
    assert {r["result"].get("element_count") for r in chunk2} == {30}  # GX's own, per chunk
    html = Path(files["html"]).read_text()
    assert "merged over 3 chunk(s)" in html and "chunk 2 of 3 (the first failing chunk)" in html
    assert "<td>50</td><td>25</td><td>51.02</td>" in html
    assert "Data documentation compiled by Great Expectations" in html


def test_gx_results_kept_are_the_first_chunk_and_the_first_failing_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "MAX_GX_RESULTS", 2)
    outcome = validate([chunk(0, [1]), chunk(1, [-1]), chunk(2, [-1]), chunk(3, [-1])])
    assert outcome.failed_chunks == [2, 3, 4]
    assert [r.chunk for r in outcome.gx_results] == [1, 2]
    assert outcome.page_result().chunk == 2
    assert validate([chunk(0, [1])]).page_result().chunk == 1
