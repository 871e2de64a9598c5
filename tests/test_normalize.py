"""Snapshot rows to an UpdateBatch: timestamps, defaults, guards, ids, cells and rejections."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from propsync.errors import SourceError, UsageError
from propsync.mapping import parse_mapping
from propsync.normalize import (
    estimate_rows,
    iter_source,
    normalize,
    normalize_file,
    read_source,
    source_columns,
)

NOW = 1_800_000_000_000000
START = 1_700_000_000_000000
SKEW = 600_000000

MAPPING = parse_mapping(
    {
        "properties": [
            {"from_column": "name", "to_property": "first_name", "type": "string"},
            {"from_column": "age", "to_property": "age", "type": "number"},
        ],
        "update_timestamp": {"from_column": "ts"},
        "ids": [
            {"from_column": "id", "to_id": "registered"},
            {"from_column": "cookie", "to_id": "cookie"},
        ],
    }
)


def run(df: pl.DataFrame, mapping=MAPPING, **kw):  # type: ignore[no-untyped-def]
    mapping.check_columns(df.columns)
    return normalize(
        df,
        mapping,
        batch_id="b",
        source="t",
        started_at_us=START,
        now_us=NOW,
        max_future_skew_us=SKEW,
        **kw,
    )


def frame(**cols: list[object]) -> pl.DataFrame:
    return pl.DataFrame({k: pl.Series(v, dtype=pl.String) for k, v in cols.items()})


def test_rows_become_ids_and_cells_with_their_timestamps() -> None:
    b = run(
        frame(
            id=["a", "b"],
            cookie=["c1", None],
            name=["Ann", "Bob"],
            age=["30", "x"],
            ts=["1570001049", "2019-10-02T07:24:09.5Z"],
        )
    )
    assert b.ids.rows() == [(1, "registered", "a"), (1, "cookie", "c1"), (2, "registered", "b")]
    assert sorted(b.cells.rows()) == [
        (1, "age", "30", 1570001049_000000),
        (1, "first_name", '"Ann"', 1570001049_000000),
        (2, "first_name", '"Bob"', 1570001049_500000),
    ]
    assert b.rejections.rows() == [(2, "cell", "age", "x", "age: not a number")]
    assert (b.rows_read, b.cells_incoming, b.rejected_rows()) == (2, 4, 0)


def test_empty_update_timestamp_falls_back_to_the_start_time_and_is_counted() -> None:
    b = run(
        frame(id=["a", "b"], cookie=[None, None], name=["A", "B"], age=["1", "2"], ts=["", None])
    )
    assert set(b.cells["update_ts"].to_list()) == {START}
    assert b.default_timestamp_rows == 2


def test_mapping_without_update_timestamp_uses_the_start_time() -> None:
    mapping = parse_mapping({**MAPPING.model_dump(), "update_timestamp": None})
    b = run(frame(id=["a"], cookie=[None], name=["A"], age=["1"], ts=["1"]), mapping=mapping)
    assert set(b.cells["update_ts"].to_list()) == {START}


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("yesterday", "unparseable update_timestamp"),
        ("-5", "negative update_timestamp"),
        ("1969-12-31T23:59:59Z", "negative update_timestamp"),
        (str(NOW // 1_000_000 + 601), "update_timestamp beyond now + 600 s"),
    ],
)
def test_bad_update_timestamps_reject_their_row(ts: str, reason: str) -> None:
    b = run(
        frame(id=["a", "b"], cookie=[None, None], name=["A", "B"], age=["1", "2"], ts=[ts, "100"])
    )
    assert b.rejections.rows() == [(1, "row", "ts", ts, reason)]
    assert set(b.cells["row_nr"].to_list()) == {2}
    assert b.ids["row_nr"].to_list() == [2]


def test_timestamp_within_the_future_skew_is_accepted() -> None:
    b = run(frame(id=["a"], cookie=[None], name=["A"], age=["1"], ts=[str(NOW // 1_000_000 + 599)]))
    assert b.rejections.height == 0


def test_empty_cells_set_null_and_rows_without_ids_are_rejected() -> None:
    b = run(
        frame(
            id=["a", "", None],
            cookie=[None, None, None],
            name=["", "B", "C"],
            age=[None, "1", "2"],
            ts=["1", "1", "1"],
        )
    )
    assert sorted(b.cells.filter(pl.col("row_nr") == 1).rows()) == [
        (1, "age", "null", 1_000000),
        (1, "first_name", "null", 1_000000),
    ]
    assert b.rejections.select("row_nr", "scope", "reason").rows() == [
        (2, "row", "no customer id"),
        (3, "row", "no customer id"),
    ]


def test_constant_columns_work_anywhere_a_column_does() -> None:
    mapping = parse_mapping(
        {
            "properties": [{"from_column": "src", "to_property": "source", "type": "string"}],
            "update_timestamp": {"from_column": "snap"},
            "ids": [{"from_column": "id", "to_id": "registered"}],
            "constant_columns": [
                {"name": "src", "value": "crm"},
                {"name": "snap", "value": 1570001049},
            ],
        }
    )
    b = run(frame(id=["a"]), mapping=mapping)
    assert b.cells.rows() == [(1, "source", '"crm"', 1570001049_000000)]


def test_naive_timestamps_use_the_mapping_timezone() -> None:
    mapping = parse_mapping({**MAPPING.model_dump(), "timezone": "Europe/Prague"})
    b = run(
        frame(id=["a"], cookie=[None], name=["A"], age=["1"], ts=["2019-10-02 09:24:09"]),
        mapping=mapping,
    )
    assert b.cells["update_ts"].unique().to_list() == [1570001049_000000]


def test_legacy_rows_carry_no_timestamp() -> None:
    mapping = parse_mapping({**MAPPING.model_dump(), "update_timestamp": None})
    b = run(frame(id=["a"], cookie=[None], name=["A"], age=["1"]), mapping=mapping, legacy=True)
    assert b.cells["update_ts"].to_list() == [None, None]
    with pytest.raises(UsageError, match="--legacy"):
        run(frame(id=["a"], cookie=[None], name=["A"], age=["1"], ts=["1"]), legacy=True)


def test_read_source_reads_csv_as_text_parquet_and_jsonl_natively(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,n\n007,1\n", encoding="utf-8")
    assert read_source(tmp_path / "a.csv").rows() == [("007", "1")]
    pl.DataFrame({"id": ["x"], "n": [1.5]}).write_parquet(tmp_path / "a.parquet")
    assert read_source(tmp_path / "a.parquet").rows() == [("x", 1.5)]
    (tmp_path / "a.jsonl").write_text('{"id": "x", "n": true}\n', encoding="utf-8")
    assert source_columns(tmp_path / "a.jsonl") == ["id", "n"]
    assert read_source(tmp_path / "a.jsonl").rows() == [("x", True)]
    with pytest.raises(SourceError, match="format"):
        source_columns(tmp_path / "a.xlsx")
    with pytest.raises(SourceError, match="does not exist"):
        source_columns(tmp_path / "missing.csv")


def test_native_parquet_timestamps(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    df = pl.DataFrame(
        {
            "id": ["a"],
            "cookie": [None],
            "name": ["A"],
            "age": [3],
            "ts": [datetime(2019, 10, 2, 7, 24, 9, tzinfo=UTC)],
        },
        schema_overrides={"cookie": pl.String},
    )
    b = run(df)
    assert b.cells["update_ts"].unique().to_list() == [1570001049_000000]
    assert sorted(b.cells["value"].to_list()) == ['"A"', "3"]


def _as_rows(b):  # type: ignore[no-untyped-def]
    return (
        b.ids.sort("row_nr", "id_type").rows(),
        b.cells.sort("row_nr", "property").rows(),
        b.rejections.sort("row_nr", "column").rows(),
        (b.rows_read, b.cells_incoming, b.default_timestamp_rows),
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 100])
def test_normalize_file_in_chunks_equals_normalising_the_whole_file(
    tmp_path: Path, suffix: str, chunk_rows: int
) -> None:
    df = frame(
        id=["a", None, "c", "d", "e", "f", "a"],
        cookie=["k1", None, None, "k4", None, None, None],
        name=["Ann", "Nobody", "", "Dan", "Eve", "Fay", "Ann2"],
        age=["30", "1", "x", "", "41", "7.5", "31"],
        ts=["1570001049", "5", "", "garbage", "-3", "2019-10-02 07:24:09", "1570001050"],
    )
    path = tmp_path / f"snapshot{suffix}"
    {".csv": df.write_csv, ".parquet": df.write_parquet, ".jsonl": df.write_ndjson}[suffix](path)
    options = {
        "batch_id": "b",
        "source": "t",
        "started_at_us": START,
        "now_us": NOW,
        "max_future_skew_us": SKEW,
    }
    seen: list[int] = []
    chunked = normalize_file(path, MAPPING, chunk_rows=chunk_rows, progress=seen.append, **options)
    whole = normalize(read_source(path), MAPPING, **options)
    assert _as_rows(chunked) == _as_rows(whole)
    assert chunked.rejections.height > 0 and chunked.default_timestamp_rows == 1
    assert seen[-1] == 7 and seen == sorted(seen)
    assert estimate_rows(path) == 7


def test_normalize_file_of_a_header_only_csv_is_an_empty_batch(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("id,cookie,name,age,ts\n")
    b = normalize_file(
        path,
        MAPPING,
        batch_id="b",
        source="t",
        started_at_us=START,
        now_us=NOW,
        max_future_skew_us=SKEW,
    )
    assert (b.rows_read, b.cells.height, b.ids.height) == (0, 0, 0)
    assert estimate_rows(path) == 0


def test_a_broken_file_fails_as_a_source_error_while_reading_chunks(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceError, match="cannot read"):
        list(iter_source(path))
