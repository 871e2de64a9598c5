"""The Great Expectations suites catch what they promise, on concrete bad batches."""

from __future__ import annotations

import polars as pl
import pytest

from propsync.batch import CELLS_SCHEMA, IDS_SCHEMA, REJECTIONS_SCHEMA, UpdateBatch
from propsync.quality import frames, runner, suites

TYPES = {"name": "string", "age": "number", "vip": "boolean", "tags": "list", "born": "date"}
NOW = 1_700_000_000_000_000
SKEW = 600_000_000


def batch(
    cells: list[tuple[int, str, str, int | None]], ids: list[tuple[int, str, str]], rows: int
) -> UpdateBatch:
    return UpdateBatch(
        batch_id="b",
        kind="import",
        source="test",
        ids=pl.DataFrame(ids, schema=IDS_SCHEMA, orient="row"),
        cells=pl.DataFrame(cells, schema=CELLS_SCHEMA, orient="row"),
        rows_read=rows,
        cells_incoming=rows * len(TYPES),
    )


def check(b: UpdateBatch, *, legacy: bool = False, chunk: int = 1000) -> runner.Outcome:
    return runner.validate(
        suites.load_suite(suites.STAGED_CELLS, flags={"legacy"} if legacy else set()),
        frames.chunks(frames.staged_cells(b, TYPES), chunk),
        {"max_update_ts": NOW + SKEW, "mapped_properties": sorted(TYPES)},
        index_column="row_nr",
    )


def failed(outcome: runner.Outcome) -> dict[str, tuple[int | None, list[object]]]:
    return {c.check: (c.unexpected_count, c.examples) for c in outcome.checks if not c.success}


def test_a_clean_batch_passes() -> None:
    good = batch(
        [
            (1, "name", '"Ann"', NOW),
            (1, "age", "41", NOW),
            (1, "vip", "true", NOW),
            (1, "tags", '["a"]', NOW),
            (1, "born", "-86400", NOW),
            (2, "age", "null", NOW + SKEW),
        ],
        [(1, "registered", "ann"), (2, "registered", "bob")],
        rows=2,
    )
    outcome = check(good)
    assert outcome.success, outcome.summary()
    assert [c.element_count for c in outcome.checks][:5] == [6, 6, 6, 6, 6]


def test_each_broken_rule_is_reported_with_its_rows() -> None:
    bad = batch(
        [
            (1, "name", '"Ann"', NOW),
            (2, "name", '"no id"', NOW),  # row 2 has no customer id
            (3, "age", "forty", NOW),  # not a JSON number
            (4, "vip", '"yes"', NOW),  # not a JSON boolean
            (5, "age", "1", NOW + SKEW + 1),  # beyond the allowed future skew
            (6, "age", "2", -1),  # negative
            (7, "age", "3", None),  # no update time
            (8, "shoe", '"42"', NOW),  # not in the mapping
            (9, "tags", "[1", NOW),  # not a JSON array
        ],
        [(r, "registered", f"c{r}") for r in (1, 3, 4, 5, 6, 7, 8, 9)],
        rows=9,
    )
    problems = failed(check(bad, chunk=4))  # 3 chunks: counts and examples are merged
    assert problems == {
        "update timestamp present": (1, [None]),  # a missing value is None, not NaN
        "customer id present on every row": (1, [0]),
        "update timestamp non-negative and not beyond the allowed future skew": (
            2,
            [NOW + SKEW + 1, -1],
        ),
        "every property is one the mapping defines": (1, ["shoe"]),
        "number values are JSON numbers": (1, ["forty"]),
        "boolean values are JSON booleans": (1, ['"yes"']),
        "list values are JSON arrays": (1, ["[1"]),
    }
    outcome = check(bad, chunk=4)
    assert outcome.chunks == 3
    assert not outcome.success
    ids = next(c for c in outcome.checks if c.check == "customer id present on every row")
    assert ids.element_count == 9
    assert "customer id present on every row" in outcome.summary()


def test_legacy_batches_carry_no_times_and_skip_the_time_rules() -> None:
    legacy = batch([(1, "name", '"Ann"', None)], [(1, "registered", "ann")], rows=1)
    assert not check(legacy).success
    outcome = check(legacy, legacy=True)
    assert outcome.success
    assert "update timestamp present" not in {c.check for c in outcome.checks}


def summary_outcome(b: UpdateBatch, source_rows: int, ratio: float = 0.05) -> runner.Outcome:
    return runner.validate(
        suites.load_suite(suites.STAGED_SUMMARY),
        [frames.staged_summary(b, source_rows=source_rows, n_properties=len(TYPES))],
        {"max_reject_ratio": ratio},
    )


def test_row_counts_must_reconcile_with_the_source_and_the_ratio_hold() -> None:
    cells = [(r, p, "null", NOW) for r in (1, 2, 3) for p in TYPES]
    b = batch(cells, [(r, "registered", f"c{r}") for r in (1, 2, 3)], rows=4)
    b.rejections = pl.DataFrame(
        [(4, "row", "id", None, "no customer id")], schema=REJECTIONS_SCHEMA, orient="row"
    )
    assert summary_outcome(b, source_rows=4, ratio=0.25).success
    assert failed(summary_outcome(b, source_rows=4, ratio=0.2)) == {
        "rejected-row ratio under the threshold": (1, [0.25])
    }
    mismatch = failed(summary_outcome(b, source_rows=5, ratio=0.5))
    assert set(mismatch) == {
        "row count reconciles with the source",
        "incoming cells = source rows x mapped properties",
    }


def test_a_missing_suite_file_is_a_clear_error(tmp_path: object) -> None:
    from propsync.errors import UsageError

    with pytest.raises(UsageError, match="cannot read expectation suite"):
        suites.load_suite("nope", directory=str(tmp_path))


def test_results_render_to_json_and_data_docs(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    outcome = check(batch([(1, "age", "x", NOW)], [(1, "registered", "a")], rows=1))
    files = outcome.write(Path(str(tmp_path)), "cells")
    html = Path(files["html"]).read_text()
    assert "expect_column_values_to_match_regex" in html or "match" in html
    import json

    data = json.loads(Path(files["json"]).read_text())
    assert data["success"] is False
    assert data["statistics"]["unsuccessful_expectations"] == 1


def test_blank_lines_and_keys_a_line_lacks_reconcile() -> None:
    # 3 data rows (the source counted 5: two blank CSV lines), row 2 lacks 3 keys, row 3 is
    # rejected whole and lacks 1: 3 x 5 - 4 = 11 cells came in, 6 staged + 5 rejected.
    from propsync.batch import ABSENT_SCHEMA

    cells = [(1, p, "null", NOW) for p in TYPES] + [(2, "name", '"B"', NOW), (2, "age", "2", NOW)]
    b = batch(cells[:4] + cells[5:], [(1, "registered", "a"), (2, "registered", "b")], rows=3)
    b.blank_lines = 2
    b.absent_cells = pl.DataFrame([(2, 3), (3, 1)], schema=ABSENT_SCHEMA, orient="row")
    b.cells_incoming = 3 * len(TYPES) - 4
    b.rejections = pl.DataFrame(
        [(1, "cell", "born", "x", "born: not a recognised date"), (3, "row", "id", None, "no id")],
        schema=REJECTIONS_SCHEMA,
        orient="row",
    )
    assert frames.rejected_cells(b.rejections, len(TYPES), b.absent_cells) == 4 + 1
    summary = frames.staged_summary(b, source_rows=5, n_properties=len(TYPES))
    assert summary.select("source_rows", "blank_lines", "cells_expected").row(0) == (3, 2, 11)
    assert summary_outcome(b, source_rows=5, ratio=1).success
    assert "row count reconciles with the source" in failed(summary_outcome(b, 6, ratio=1))
