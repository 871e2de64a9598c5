"""Bad input on the import path (#8), case by case, through the real CLI and a real warehouse.

Every case is a source file (bytes, or a frame written as Parquet) and a mapping, imported with
``propsync import`` into a copy of a warehouse seeded with two customers. Each states its exact
outcome: the exit code and the one line on stderr, or the stored state of every customer, the
summary and every row of the quarantine.

The seed: ``u1`` (name Ann, age 30) and ``u2`` (name Bob, age 40), both stamped at T0.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from propsync.cli import main
from propsync.store.warehouse import Warehouse
from tests.corpus.shapes import State, stored

T0 = 1570001049  # the seed's time
T1 = T0 + 100  # the times in the cases' files
T2 = T0 + 200  # --started-at: the default stamp

MAPPING: dict[str, Any] = {
    "properties": [
        {"from_column": "name", "to_property": "name", "type": "string"},
        {"from_column": "age", "to_property": "age", "type": "number"},
    ],
    "ids": [{"from_column": "id", "to_id": "registered"}],
    "update_timestamp": {"from_column": "ts"},
}
SEED = {
    "u1": {"name": ("Ann", T0), "age": (30, T0)},
    "u2": {"name": ("Bob", T0), "age": (40, T0)},
}
ROW_SHORT = "row has {} fields, the header has {}: fields are missing"
ROW_LONG = "row has {} fields, the header has {}: too many fields"
Source = bytes | Callable[[Path], None]
Rejection = tuple[int, str, str | None, str | None, str]  # row_nr, scope, column, raw, reason


@dataclass(frozen=True)
class Case:
    """One import. ``state`` lists the customers that differ from the seed (plus new ones)."""

    name: str
    source: Source
    suffix: str = ".csv"
    mapping: dict[str, Any] = field(default_factory=lambda: MAPPING)
    args: tuple[str, ...] = ("--max-reject-ratio", "1")
    exit: int = 0
    error: str | None = None  # a fragment of the single stderr line (exit 2)
    state: State = field(default_factory=dict)
    rejections: tuple[Rejection, ...] = ()
    rows_read: int | None = None
    default_rows: int = 0
    mapping_file: Source | None = None  # the mapping file (bytes or a writer), not ``mapping``


def csv(*lines: str, end: str = "\n") -> bytes:
    return "".join(line + end for line in lines).encode()


def jsonl(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def parquet(frame: pl.DataFrame) -> Callable[[Path], None]:
    return lambda path: frame.write_parquet(path)


def seeded(**changes: dict[str, tuple[Any, int]]) -> State:
    """The seed with some customers' properties replaced (a customer given as {} is new)."""
    state = {k: dict(v) for k, v in SEED.items()}
    for customer, props in changes.items():
        state.setdefault(customer, {}).update(props)
    return state


# -- running a case --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seed")
    src = root / "seed.csv"
    src.write_bytes(csv("id,name,age,ts", f"u1,Ann,30,{T0}", f"u2,Bob,40,{T0}"))
    mapping = root / "m.json"
    mapping.write_text(json.dumps(MAPPING), encoding="utf-8")
    code = main(["import", str(src), "--mapping", str(mapping), "--warehouse", str(root / "wh")])
    assert code == 0
    return root / "wh"


@dataclass
class Ran:
    code: int
    out: str
    err: str
    warehouse: Warehouse


def run_case(case: Case, tmp: Path, seed: Path, capsys: pytest.CaptureFixture[str]) -> Ran:
    wh = tmp / "wh"
    shutil.copytree(seed, wh, symlinks=True)
    src = tmp / f"source{case.suffix}"
    if isinstance(case.source, bytes):
        src.write_bytes(case.source)
    else:
        case.source(src)
    mapping = tmp / "mapping.json"
    if callable(case.mapping_file):
        case.mapping_file(mapping)
    else:
        mapping.write_bytes(case.mapping_file or json.dumps(case.mapping).encode())
    capsys.readouterr()
    args = ["import", str(src), "--mapping", str(mapping), "--warehouse", str(wh)]
    code = main([*args, "--started-at", str(T2), "--json", *case.args])
    out, err = capsys.readouterr()
    return Ran(code, out, err, Warehouse(wh))


def batch_rows(warehouse: Warehouse, batch_id: str) -> tuple[list[Rejection], dict[str, int]]:
    """The batch's quarantine and counts, from the working database (also for failed batches)."""
    with duckdb.connect(str(warehouse.work_path), read_only=True) as con:
        rejections = con.execute(
            "SELECT row_nr, scope, column_name, raw_value, reason FROM rejections "
            "WHERE batch_id = $b ORDER BY row_nr, scope, column_name",
            {"b": batch_id},
        ).fetchall()
        names = ("rows_read", "cells_incoming", "properties_applied", "properties_stale")
        names += ("cells_rejected", "default_timestamp_rows")
        row = con.execute(
            f"SELECT {', '.join(names)} FROM batches WHERE batch_id = $b", {"b": batch_id}
        ).fetchone()
    assert row is not None
    return [tuple(r) for r in rejections], dict(zip(names, row, strict=True))  # type: ignore[misc]


def check(case: Case, ran: Ran) -> None:
    assert "Traceback" not in ran.err
    assert ran.code == case.exit, ran.err
    if case.exit == 2:
        (line,) = ran.err.strip().splitlines()
        assert line.startswith("propsync: error: ")
        assert case.error is not None and case.error in line
        assert stored(ran.warehouse) == SEED  # nothing written
        return
    summary = json.loads(ran.out.strip().splitlines()[-1])
    rejections, counts = batch_rows(ran.warehouse, summary["batch_id"])
    assert sorted(rejections, key=repr) == sorted(case.rejections, key=repr)
    expected = SEED if case.exit == 1 else seeded(**case.state)
    assert stored(ran.warehouse) == expected
    if case.exit == 0:
        reconciled = counts["properties_applied"] + counts["properties_stale"]
        assert reconciled + counts["cells_rejected"] == counts["cells_incoming"]
    assert counts["default_timestamp_rows"] == case.default_rows
    if case.rows_read is not None:
        assert counts["rows_read"] == case.rows_read


def run_cases(cases: list[Case]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[c.name for c in cases])


# -- class 1: CSV rows with too few or too many fields -------------------------------------

HEADER = "id,name,age,ts"
TWENTY = [f"u{i},N{i},{i},{T1}" for i in range(3, 22)]  # 19 good rows of new customers
TWENTY_STATE = {f"u{i}": {"name": (f"N{i}", T1), "age": (i, T1)} for i in range(3, 22)}

CSV_SHAPE_CASES = [
    Case(  # the example: the row must not erase age
        "short_row_is_rejected_not_erased",
        csv(HEADER, "u1,Alice"),
        rejections=((1, "row", None, None, ROW_SHORT.format(2, 4)),),
        rows_read=1,
    ),
    Case(
        "short_row_counts_towards_max_reject_ratio",
        csv(HEADER, "u1,Alice"),
        args=(),
        exit=1,
        rejections=((1, "row", None, None, ROW_SHORT.format(2, 4)),),
    ),
    Case(
        "blank_cells_set_null",
        csv(HEADER, f"u1,,,{T1}"),
        state={"u1": {"name": (None, T1), "age": (None, T1)}},
    ),
    Case(
        "long_row_is_a_row_rejection_not_a_file_failure",
        csv(HEADER, f"u1,Alice,31,{T1},extra", f"u2,Bobby,41,{T1}"),
        state={"u2": {"name": ("Bobby", T1), "age": (41, T1)}},
        rejections=((1, "row", None, None, ROW_LONG.format(5, 4)),),
    ),
    Case(
        "trailing_separator_is_one_field_too_many",
        csv(HEADER, f"u1,Alice,31,{T1},"),
        rejections=((1, "row", None, None, ROW_LONG.format(5, 4)),),
    ),
    Case(
        "row_of_only_an_id",
        csv(HEADER, "u1"),
        rejections=((1, "row", None, None, ROW_SHORT.format(1, 4)),),
    ),
    Case(
        "short_row_with_quoted_separator_and_newline",
        csv(HEADER, '"u1","Al,', 'ice"', f"u2,Bobby,41,{T1}"),
        state={"u2": {"name": ("Bobby", T1), "age": (41, T1)}},
        rejections=((1, "row", None, None, ROW_SHORT.format(2, 4)),),
    ),
    Case(
        "quoted_separator_and_newline_in_a_full_row",
        csv(HEADER, '"u1","Al,', f'ice",31,{T1}'),
        state={"u1": {"name": ("Al,\nice", T1), "age": (31, T1)}},
    ),
    Case(
        "escaped_quotes",
        csv(HEADER, f'u1,"say ""hi"", ok",31,{T1}'),
        state={"u1": {"name": ('say "hi", ok', T1), "age": (31, T1)}},
    ),
    Case(  # the first row's count is vouched for by Polars, the others are counted exactly
        "quoted_separators_in_full_short_and_trailing_empty_rows",
        csv(HEADER, f'u1,"A,a",31,{T1}', 'u2,"B,b"', 'u3,"C,c",33,'),
        state={
            "u1": {"name": ("A,a", T1), "age": (31, T1)},
            "u3": {"name": ("C,c", T2), "age": (33, T2)},
        },
        rejections=((2, "row", None, None, ROW_SHORT.format(2, 4)),),
        default_rows=1,
    ),
    Case(
        "quote_after_a_space_is_text_so_its_separator_counts",
        csv(HEADER, f'u1, "A,B",31,{T1}'),
        rejections=((1, "row", None, None, ROW_LONG.format(5, 4)),),
    ),
    Case(
        "crlf_line_ends",
        csv(HEADER, "u1,Alice", f"u2,Bobby,41,{T1}", end="\r\n"),
        state={"u2": {"name": ("Bobby", T1), "age": (41, T1)}},
        rejections=((1, "row", None, None, ROW_SHORT.format(2, 4)),),
    ),
    Case(
        "every_field_quoted",
        csv('"id","name","age","ts"', '"u1","Alice"', f'"u2","Bob,by","41","{T1}"'),
        state={"u2": {"name": ("Bob,by", T1), "age": (41, T1)}},
        rejections=((1, "row", None, None, ROW_SHORT.format(2, 4)),),
    ),
    Case(
        "short_and_long_rows_after_many_good_ones",
        csv(HEADER, *TWENTY, "u1,Alice", f"u2,Bobby,41,{T1},x,y"),
        state=TWENTY_STATE,
        rejections=(
            (20, "row", None, None, ROW_SHORT.format(2, 4)),
            (21, "row", None, None, ROW_LONG.format(6, 4)),
        ),
        rows_read=21,
    ),
    Case(  # 1 of 20 rows is 5 %: not more than the default max_reject_ratio
        "one_short_row_in_twenty_is_within_the_default_ratio",
        csv(HEADER, *TWENTY, "u1,Alice"),
        args=(),
        state=TWENTY_STATE,
        rejections=((20, "row", None, None, ROW_SHORT.format(2, 4)),),
    ),
    Case(
        "two_short_rows_in_twenty_fail_the_batch",
        csv(HEADER, *TWENTY[:-1], "u1,Alice", "u2"),
        args=(),
        exit=1,
        rejections=(
            (19, "row", None, None, ROW_SHORT.format(2, 4)),
            (20, "row", None, None, ROW_SHORT.format(1, 4)),
        ),
    ),
]

# -- class 4: blank lines ------------------------------------------------------------------

CSV_BLANK_CASES = [
    Case(  # the example: exit 1 before, as if the blank lines were rows without ids
        "trailing_blank_lines_are_not_rows",
        csv(HEADER, f"u1,Alice,31,{T1}", "", ""),
        args=(),
        state={"u1": {"name": ("Alice", T1), "age": (31, T1)}},
        rows_read=1,
    ),
    Case(  # row numbers count data rows: the header and blank lines are not counted
        "blank_lines_anywhere_and_row_numbers",
        csv(" ", "", HEADER, "", f"u1,Alice,31,{T1}", "  ", "\t\r", "u2,Bobby", ""),
        state={"u1": {"name": ("Alice", T1), "age": (31, T1)}},
        rejections=((2, "row", None, None, ROW_SHORT.format(2, 4)),),
        rows_read=2,
    ),
    Case(
        "header_and_blank_lines_only",
        csv(HEADER, "", "", " "),
        args=(),
        rows_read=0,
    ),
    Case(
        "crlf_blank_lines",
        csv(HEADER, f"u1,Alice,31,{T1}", "", "", end="\r\n"),
        args=(),
        state={"u1": {"name": ("Alice", T1), "age": (31, T1)}},
        rows_read=1,
    ),
    Case(
        "one_column_file_with_blank_lines",
        csv("id", "u3", "", "u4", ""),
        mapping={"ids": [{"from_column": "id", "to_id": "registered"}]},
        args=(),
        state={"u3": {}, "u4": {}},
        rows_read=2,
    ),
    Case(
        "blank_line_inside_quotes_is_data",
        csv(HEADER, '"u1","Al', "", f'ice",31,{T1}'),
        state={"u1": {"name": ("Al\n\nice", T1), "age": (31, T1)}},
    ),
    Case(
        "blank_update_timestamp_stamps_the_default",
        csv(HEADER, "u1,Alice,31,"),
        state={"u1": {"name": ("Alice", T2), "age": (31, T2)}},
        default_rows=1,
    ),
]


@run_cases(CSV_SHAPE_CASES + CSV_BLANK_CASES)
def test_csv(
    case: Case, tmp_path: Path, seed_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(case, run_case(case, tmp_path, seed_warehouse, capsys))


# -- class 1 and 4: JSON Lines keys --------------------------------------------------------

NESTED_MAPPING: dict[str, Any] = {
    **MAPPING,
    "properties": [
        *MAPPING["properties"],
        {"from_column": "meta", "to_property": "meta", "type": "string"},
        {"from_column": "tags", "to_property": "tags", "type": "list"},
    ],
}
DEEP = "[" * 70 + "]" * 70
TOO_DEEP = "JSON nested more than 64 levels deep (the limit is 64)"


def line(**values: Any) -> str:
    return json.dumps(values, separators=(",", ":"))


def filler(mapping: dict[str, Any]) -> tuple[str, dict[str, tuple[Any, int]]]:
    """A line with every mapped key (a key that no line has is a mapping error), for u9."""
    values = {"name": "Z", "age": 9, "meta": None, "tags": None}
    props = {p["to_property"]: (values[p["from_column"]], T1) for p in mapping["properties"]}
    return line(id="u9", **{k: values[k] for k in props}, ts=T1), props


def jl(
    name: str, source: bytes, mapping: dict[str, Any] = MAPPING, fill: bool = True, **kw: Any
) -> Case:
    """A JSON Lines case; with ``fill``, a line for u9 with every mapped key is appended."""
    if not fill or kw.get("exit") == 2:
        return Case(name, source, suffix=".jsonl", mapping=mapping, **kw)
    text, props = filler(mapping)
    state = {**kw.pop("state", {}), "u9": props}
    if kw.get("rows_read") is not None:
        kw["rows_read"] += 1
    return Case(name, source + jsonl(text), ".jsonl", mapping, state=state, **kw)


JSONL_CASES = [
    jl(
        "missing_key_updates_nothing",
        jsonl(line(id="u1", name="Alice", ts=T1)),
        state={"u1": {"name": ("Alice", T1)}},
    ),
    jl(
        "explicit_null_sets_null",
        jsonl(line(id="u1", age=None, ts=T1)),
        state={"u1": {"age": (None, T1)}},
    ),
    jl(
        "missing_and_null_in_the_same_file",
        jsonl(line(id="u1", name=None, ts=T1), line(id="u2", age=None, ts=T1)),
        state={"u1": {"name": (None, T1)}, "u2": {"age": (None, T1)}},
    ),
    jl(
        "missing_update_timestamp_key_stamps_the_default",
        jsonl(line(id="u1", age=31), line(id="u2", age=41, ts=None)),
        state={"u1": {"age": (31, T2)}, "u2": {"age": (41, T2)}},
        default_rows=2,
    ),
    jl(
        "missing_id_key_is_no_customer_id",
        jsonl(line(name="X", ts=T1), line(id="u1", age=31, ts=T1)),
        state={"u1": {"age": (31, T1)}},
        rejections=((1, "row", "id", None, "no customer id"),),
    ),
    jl(  # row numbers count the non-blank lines
        "blank_lines_are_not_rows",
        b"\n" + jsonl(line(id="u1", age=31, ts=T1), "   ", "\r", line(id="u2", age="x", ts=T1), ""),
        state={"u1": {"age": (31, T1)}},
        rejections=((2, "cell", "age", "x", "age: not a number"),),
        rows_read=2,
    ),
    jl(
        "duplicate_key_the_last_wins",
        jsonl(f'{{"id":"u1","age":31,"age":32,"ts":{T1}}}'),
        state={"u1": {"age": (32, T1)}},
    ),
    jl(
        "duplicate_key_the_last_null_wins",
        jsonl(f'{{"id":"u1","age":31,"age":null,"ts":{T1}}}'),
        state={"u1": {"age": (None, T1)}},
    ),
    jl(
        "duplicate_key_null_then_value",
        jsonl(f'{{"id":"u1","age":null,"age":33,"ts":{T1}}}'),
        state={"u1": {"age": (33, T1)}},
    ),
    jl(
        "duplicate_keys_of_different_types",
        jsonl(f'{{"id":"u1","age":"x","age":34,"ts":{T1}}}', line(id="u2", age=41, ts=T1)),
        state={"u1": {"age": (34, T1)}, "u2": {"age": (41, T1)}},
    ),
    jl(
        "duplicate_id_key",
        jsonl(f'{{"id":"u1","id":"u2","age":35,"ts":{T1}}}'),
        state={"u2": {"age": (35, T1)}},
    ),
    jl(
        "duplicate_update_timestamp_key",
        jsonl(f'{{"id":"u1","age":36,"ts":{T0 + 500},"ts":{T1}}}'),
        state={"u1": {"age": (36, T1)}},
    ),
    jl(
        "duplicate_key_with_spaces_around_the_colon",
        jsonl(f'{{"id" : "u1", "age" : 31 , "age"\t:\t37, "ts" : {T1}}}'),
        state={"u1": {"age": (37, T1)}},
    ),
    jl(
        "escaped_key_name",
        jsonl(f'{{"id":"u1","\\u0061ge":38,"ts":{T1}}}'),
        state={"u1": {"age": (38, T1)}},
    ),
    jl(
        "escaped_duplicate_of_a_key",
        jsonl(f'{{"id":"u1","age":1,"\\u0061ge":39,"ts":{T1}}}'),
        state={"u1": {"age": (39, T1)}},
    ),
    jl(
        "nested_object_with_a_mapped_key_name",
        jsonl(line(id="u1", extra={"age": 99, "name": None}, name="A2", ts=T1)),
        state={"u1": {"name": ("A2", T1)}},
    ),
    jl(
        "nested_null_with_a_mapped_key_name",
        jsonl(line(id="u1", extra={"age": None}, ts=T1)),
        rows_read=1,
    ),
    jl(
        "mapped_key_text_inside_a_string",
        jsonl(line(id="u1", name='"age": null, "x":', ts=T1)),
        state={"u1": {"name": ('"age": null, "x":', T1)}},
    ),
    jl(
        "true_in_a_column_of_numbers",
        jsonl(line(id="u1", age=True, ts=T1), line(id="u2", age=42, ts=T1)),
        state={"u2": {"age": (42, T1)}},
        rejections=((1, "cell", "age", "true", "age: not a number"),),
    ),
    jl(
        "key_in_no_line_is_a_mapping_error",
        jsonl(line(id="u1", name="Alice", ts=T1)),
        exit=2,
        error="properties[1].from_column: column 'age' is not in the source",
    ),
    jl(
        "key_only_after_the_first_hundred_lines_is_in_the_source",
        jsonl(*[line(id="u1", ts=T1)] * 150, line(id="u2", age=43, ts=T1)),
        state={"u2": {"age": (43, T1)}},
        rows_read=151,
    ),
    jl(
        "object_as_id_rejects_the_row",
        jsonl(line(id={"x": 1}, age=1, ts=T1), line(id="u1", age=31, ts=T1)),
        state={"u1": {"age": (31, T1)}},
        rejections=(
            (
                1,
                "row",
                "id",
                '{"x":1}',
                "JSON arrays and objects cannot be customer ids (ids are text or integers)",
            ),
        ),
    ),
    jl(  # ids of one key that holds strings too are text: "1.5"
        "float_id_rejects_the_row",
        jsonl(line(id=1.5, name="a", age=1, ts=T1), line(id=2.0, name="b", age=1, ts=T1)),
        fill=False,
        rejections=(
            (
                1,
                "row",
                "id",
                "1.5",
                "float values cannot be customer ids (ids are text or integers)",
            ),
            (
                2,
                "row",
                "id",
                "2.0",
                "float values cannot be customer ids (ids are text or integers)",
            ),
        ),
    ),
    jl(
        "integer_id_is_its_digits",
        jsonl(line(id=7, age=1, ts=T1)),
        state={"7": {"age": (1, T1)}},
    ),
    jl(
        "struct_to_a_string_and_mixed_list_exactly",
        jsonl(line(id="u1", meta={"b": 1, "a": "é"}, tags=[1, "x", 2.0, {"k": None}], ts=T1)),
        mapping=NESTED_MAPPING,
        state={"u1": {"meta": ('{"a":"é","b":1}', T1), "tags": ([1, "x", 2, {"k": None}], T1)}},
    ),
    jl(
        "object_for_a_list_and_array_for_a_number_are_cell_rejections",
        jsonl(line(id="u1", tags={"a": 1}, age=[1], ts=T1)),
        mapping=NESTED_MAPPING,
        rejections=(
            (1, "cell", "age", "[1]", "age: a JSON array cannot be a number"),
            (1, "cell", "tags", '{"a":1}', "tags: not a JSON array"),
        ),
    ),
    jl(
        "nested_nulls_and_empty_containers",
        jsonl(line(id="u1", meta={}, tags=[], ts=T1), line(id="u2", meta=None, tags=None, ts=T1)),
        mapping=NESTED_MAPPING,
        state={
            "u1": {"meta": ("{}", T1), "tags": ([], T1)},
            "u2": {"meta": (None, T1), "tags": (None, T1)},
        },
    ),
    jl(
        "duplicate_key_inside_a_nested_value_the_last_wins",
        jsonl(f'{{"id":"u1","meta":{{"a":1,"a":2}},"ts":{T1}}}'),
        mapping=NESTED_MAPPING,
        state={"u1": {"meta": ('{"a":2}', T1)}},
    ),
    jl(
        "mapped_value_nested_too_deeply_rejects_the_row",
        jsonl(f'{{"id":"u1","tags":{DEEP},"ts":{T1}}}', line(id="u2", age=44, ts=T1)),
        mapping=NESTED_MAPPING,
        state={"u2": {"age": (44, T1)}},
        rejections=((1, "row", None, None, TOO_DEEP),),
    ),
    jl(
        "unmapped_value_nested_deeply_is_ignored",
        jsonl(f'{{"id":"u1","other":{DEEP},"age":45,"age":46,"ts":{T1}}}'),
        state={"u1": {"age": (46, T1)}},
    ),
    jl(
        "key_with_objects_and_strings",
        jsonl(line(id="u1", meta={"b": [1], "a": None}, ts=T1), line(id="u2", meta="[x", ts=T1)),
        mapping=NESTED_MAPPING,
        state={"u1": {"meta": ('{"a":null,"b":[1]}', T1)}, "u2": {"meta": ("[x", T1)}},
    ),
    jl(
        "key_with_arrays_and_integers",
        jsonl(line(id="u1", tags=[1, [2]], ts=T1), line(id="u2", tags=5, ts=T1)),
        mapping=NESTED_MAPPING,
        state={"u1": {"tags": ([1, [2]], T1)}},
        rejections=((2, "cell", "tags", "5", "tags: not a JSON array"),),
    ),
    jl(
        "a_line_that_is_not_an_object_fails_the_file",
        jsonl(line(id="u1", age=1, ts=T1), "[1, 2]"),
        exit=2,
        error="cannot read",
    ),
]


@run_cases(JSONL_CASES)
def test_jsonl(
    case: Case, tmp_path: Path, seed_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(case, run_case(case, tmp_path, seed_warehouse, capsys))


# -- class 3: every column type against every property type ------------------------------

TYPES = ("string", "number", "boolean", "date", "datetime", "list", "longtext", "url")
TEXT = ("string", "longtext", "url")
NOT_NUMBER, NOT_BOOLEAN = "not a number", "not a boolean (true/false/1/0/yes/no)"
NOT_DATE, NOT_TIMESTAMP, NOT_ARRAY = (
    "not a recognised date",
    "not a recognised timestamp",
    "not a JSON array",
)
MIDNIGHT = 1569974400  # 2019-10-02 00:00 UTC; T0 is 07:24:09 that day


@dataclass(frozen=True)
class Rej:
    reason: str


def outcomes(
    text: Any, number: Any, boolean: Any, date: Any, datetime: Any, list_: Any
) -> dict[str, Any]:
    """What each property type makes of the value: the stored JSON value, or a rejection."""
    return {
        "number": number,
        "boolean": boolean,
        "date": date,
        "datetime": datetime,
        "list": list_,
    } | {t: text for t in TEXT}


def all_rejected(reason: str) -> dict[str, Any]:
    """``reason`` may hold {} for the property type."""
    return {t: Rej(reason.format(t)) for t in TYPES}


MATRIX_MAPPING: dict[str, Any] = {
    "ids": [{"from_column": "id", "to_id": "registered"}],
    "properties": [{"from_column": "v", "to_property": t, "type": t} for t in TYPES],
}


def matrix_case(
    name: str, source: Source, suffix: str, raw: str | None, expect: dict[str, Any]
) -> Case:
    stored_ = {t: (v, T2) for t, v in expect.items() if not isinstance(v, Rej)}
    rejections = tuple(
        (1, "cell", "v", raw, f"{t}: {v.reason}") for t, v in expect.items() if isinstance(v, Rej)
    )
    return Case(name, source, suffix, MATRIX_MAPPING, state={"u1": stored_}, rejections=rejections)


def pq_value(series: pl.Series) -> Callable[[Path], None]:
    return parquet(pl.DataFrame({"id": ["u1"], "v": series}))


DATETIME = dt.datetime(2019, 10, 2, 7, 24, 9)
PARQUET_MATRIX = [
    ("int", pl.Series([1]), "1", outcomes("1", 1, True, 0, 1, Rej(NOT_ARRAY))),
    ("uint8", pl.Series([1], dtype=pl.UInt8), "1", outcomes("1", 1, True, 0, 1, Rej(NOT_ARRAY))),
    (
        "float",
        pl.Series([2.5]),
        "2.5",
        outcomes("2.5", 2.5, Rej(NOT_BOOLEAN), 0, 2.5, Rej(NOT_ARRAY)),
    ),
    (
        "bool",
        pl.Series([True]),
        "true",
        outcomes("true", Rej(NOT_NUMBER), True, Rej(NOT_DATE), Rej(NOT_TIMESTAMP), Rej(NOT_ARRAY)),
    ),
    (
        "string",
        pl.Series(["2019-10-02"]),
        "2019-10-02",
        outcomes(
            "2019-10-02", Rej(NOT_NUMBER), Rej(NOT_BOOLEAN), MIDNIGHT, MIDNIGHT, Rej(NOT_ARRAY)
        ),
    ),
    (
        "date",
        pl.Series([DATETIME.date()]),
        "2019-10-02",
        outcomes(
            "2019-10-02", Rej(NOT_NUMBER), Rej(NOT_BOOLEAN), MIDNIGHT, MIDNIGHT, Rej(NOT_ARRAY)
        ),
    ),
    (
        "datetime_naive",
        pl.Series([DATETIME]),
        "2019-10-02 07:24:09.000000",
        outcomes(
            "2019-10-02 07:24:09.000000",
            Rej(NOT_NUMBER),
            Rej(NOT_BOOLEAN),
            MIDNIGHT,
            T0,
            Rej(NOT_ARRAY),
        ),
    ),
    (
        "datetime_tz",
        pl.Series([DATETIME]).dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Prague"),
        "2019-10-02 09:24:09.000000+02:00",
        outcomes(
            "2019-10-02 09:24:09.000000+02:00",
            Rej(NOT_NUMBER),
            Rej(NOT_BOOLEAN),
            MIDNIGHT,
            T0,
            Rej(NOT_ARRAY),
        ),
    ),
    (
        "duration",
        pl.Series([dt.timedelta(seconds=5)]),
        "0:00:05",
        all_rejected("duration values cannot be a {}"),
    ),
    (
        "time",
        pl.Series([dt.time(3, 4, 5)]),
        "03:04:05",
        outcomes(
            "03:04:05",
            Rej(NOT_NUMBER),
            Rej(NOT_BOOLEAN),
            Rej(NOT_DATE),
            Rej(NOT_TIMESTAMP),
            Rej(NOT_ARRAY),
        ),
    ),
    (
        "binary_utf8",
        pl.Series([b"yes"]),
        "yes",
        outcomes("yes", Rej(NOT_NUMBER), True, Rej(NOT_DATE), Rej(NOT_TIMESTAMP), Rej(NOT_ARRAY)),
    ),
    (
        "binary_not_utf8",
        pl.Series([b"\xff"]),
        "0xff",
        all_rejected("binary value that is not UTF-8 text"),
    ),
    (
        "list",
        pl.Series([[1, 2]]),
        "[1,2]",
        {
            **all_rejected("list values cannot be a {}"),
            **{t: "[1,2]" for t in TEXT},
            "list": [1, 2],
        },
    ),
    (
        "list_of_dates",
        pl.Series([[DATETIME.date()]]),
        '["2019-10-02"]',
        {
            **all_rejected("list values cannot be a {}"),
            **{t: Rej("has no JSON form (date is not a JSON value)") for t in (*TEXT, "list")},
        },
    ),
    (
        "array",
        pl.Series([[1, 2]], dtype=pl.Array(pl.Int64, 2)),
        "[1,2]",
        {
            **all_rejected("list values cannot be a {}"),
            **{t: "[1,2]" for t in TEXT},
            "list": [1, 2],
        },
    ),
    (
        "struct",
        pl.Series([{"b": "x", "a": 1.0}]),
        '{"b":"x","a":1.0}',
        {
            **all_rejected("struct values cannot be a {}"),
            **{t: '{"a":1,"b":"x"}' for t in TEXT},
            "list": Rej(NOT_ARRAY),
        },
    ),
    (
        "decimal",
        pl.Series([decimal.Decimal("1.50")], dtype=pl.Decimal(10, 2)),
        "1.50",
        outcomes("1.50", 1.5, Rej(NOT_BOOLEAN), 0, 1.5, Rej(NOT_ARRAY)),
    ),
    ("null", pl.Series([None]), None, {t: None for t in TYPES}),
    (
        "categorical",
        pl.Series(["yes"], dtype=pl.Categorical),
        "yes",
        outcomes("yes", Rej(NOT_NUMBER), True, Rej(NOT_DATE), Rej(NOT_TIMESTAMP), Rej(NOT_ARRAY)),
    ),
    (
        "enum",
        pl.Series(["yes"], dtype=pl.Enum(["no", "yes"])),
        "yes",
        outcomes("yes", Rej(NOT_NUMBER), True, Rej(NOT_DATE), Rej(NOT_TIMESTAMP), Rej(NOT_ARRAY)),
    ),
]
JSON_MATRIX = [
    (
        "string",
        '"yes"',
        "yes",
        outcomes("yes", Rej(NOT_NUMBER), True, Rej(NOT_DATE), Rej(NOT_TIMESTAMP), Rej(NOT_ARRAY)),
    ),
    (
        "iso_string",
        '"2019-10-02T07:24:09Z"',
        "2019-10-02T07:24:09Z",
        outcomes(
            "2019-10-02T07:24:09Z", Rej(NOT_NUMBER), Rej(NOT_BOOLEAN), MIDNIGHT, T0, Rej(NOT_ARRAY)
        ),
    ),
    ("integer", "1", "1", outcomes("1", 1, True, 0, 1, Rej(NOT_ARRAY))),
    ("float", "2.5", "2.5", outcomes("2.5", 2.5, Rej(NOT_BOOLEAN), 0, 2.5, Rej(NOT_ARRAY))),
    (
        "true",
        "true",
        "true",
        outcomes("true", Rej(NOT_NUMBER), True, Rej(NOT_DATE), Rej(NOT_TIMESTAMP), Rej(NOT_ARRAY)),
    ),
    ("null", "null", None, {t: None for t in TYPES}),
    (
        "array",
        '[1, "x", 2.0]',
        '[1,"x",2.0]',
        {
            **all_rejected("a JSON array cannot be a {}"),
            **{t: '[1,"x",2]' for t in TEXT},
            "list": [1, "x", 2],
        },
    ),
    (
        "object",
        '{"b": 1, "a": [true]}',
        '{"b":1,"a":[true]}',
        {
            **all_rejected("a JSON object cannot be a {}"),
            **{t: '{"a":[true],"b":1}' for t in TEXT},
            "list": Rej(NOT_ARRAY),
        },
    ),
]
MATRIX_CASES = [
    matrix_case(f"parquet_{n}", pq_value(v), ".parquet", raw, e) for n, v, raw, e in PARQUET_MATRIX
] + [
    matrix_case(f"jsonl_{n}", f'{{"id": "u1", "v": {v}}}\n'.encode(), ".jsonl", raw, e)
    for n, v, raw, e in JSON_MATRIX
]


@run_cases(MATRIX_CASES)
def test_column_type_matrix(
    case: Case, tmp_path: Path, seed_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(case, run_case(case, tmp_path, seed_warehouse, capsys))


ID_MAPPING: dict[str, Any] = {
    "ids": [{"from_column": "id", "to_id": "registered"}],
    "properties": [{"from_column": "name", "to_property": "name"}],
}
NOT_AN_ID = "{} values cannot be customer ids (ids are text or integers)"


def id_case(name: str, ids: pl.Series, raw: str | None, outcome: str | Rej) -> Case:
    source = parquet(pl.DataFrame({"id": ids, "name": ["N"]}))
    if isinstance(outcome, Rej):
        rejection = (1, "row", "id", raw, outcome.reason)
        return Case(f"id_{name}", source, ".parquet", ID_MAPPING, rejections=(rejection,))
    return Case(f"id_{name}", source, ".parquet", ID_MAPPING, state={outcome: {"name": ("N", T2)}})


ID_CASES = [
    id_case("string", pl.Series(["007"]), None, "007"),
    id_case("int", pl.Series([7]), None, "7"),
    id_case("uint64", pl.Series([2**64 - 1], dtype=pl.UInt64), None, str(2**64 - 1)),
    id_case("categorical", pl.Series(["c1"], dtype=pl.Categorical), None, "c1"),
    id_case("enum", pl.Series(["c1"], dtype=pl.Enum(["c1"])), None, "c1"),
    id_case("binary_utf8", pl.Series([b"b1"]), None, "b1"),
    id_case(
        "binary_not_utf8",
        pl.Series([b"\xfe"]),
        "0xfe",
        Rej("binary value that is not UTF-8 text cannot be a customer id"),
    ),
    id_case("float", pl.Series([7.0]), "7.0", Rej(NOT_AN_ID.format("float"))),
    id_case("decimal", pl.Series([decimal.Decimal("7")]), "7", Rej(NOT_AN_ID.format("decimal"))),
    id_case("bool", pl.Series([True]), "true", Rej(NOT_AN_ID.format("boolean"))),
    id_case("date", pl.Series([DATETIME.date()]), "2019-10-02", Rej(NOT_AN_ID.format("date"))),
    id_case(
        "datetime",
        pl.Series([DATETIME]),
        "2019-10-02 07:24:09.000000",
        Rej(NOT_AN_ID.format("datetime")),
    ),
    id_case("time", pl.Series([dt.time(1, 2)]), "01:02:00", Rej(NOT_AN_ID.format("time"))),
    id_case(
        "duration",
        pl.Series([dt.timedelta(days=1)]),
        "1 day, 0:00:00",
        Rej(NOT_AN_ID.format("duration")),
    ),
    id_case("list", pl.Series([["a"]]), '["a"]', Rej(NOT_AN_ID.format("list"))),
    id_case("struct", pl.Series([{"a": 1}]), '{"a":1}', Rej(NOT_AN_ID.format("struct"))),
    Case(
        "id_null",
        parquet(pl.DataFrame({"id": pl.Series([None]), "name": ["N"]})),
        ".parquet",
        ID_MAPPING,
        rejections=((1, "row", "id", None, "no customer id"),),
    ),
]

TS_MAPPING: dict[str, Any] = {**ID_MAPPING, "update_timestamp": {"from_column": "ts"}}


def ts_case(name: str, ts: pl.Series, raw: str | None, outcome: int | None) -> Case:
    source = parquet(pl.DataFrame({"id": ["u1"], "name": ["N"], "ts": ts}))
    if outcome is None:
        rejection = (1, "row", "ts", raw, "unparseable update_timestamp")
        return Case(f"ts_{name}", source, ".parquet", TS_MAPPING, rejections=(rejection,))
    return Case(
        f"ts_{name}", source, ".parquet", TS_MAPPING, state={"u1": {"name": ("N", outcome)}}
    )


TS_CASES = [
    ts_case("categorical", pl.Series(["2019-10-02T07:24:09Z"], dtype=pl.Categorical), None, T0),
    ts_case(
        "enum",
        pl.Series(["2019-10-02T07:24:09Z"], dtype=pl.Enum(["2019-10-02T07:24:09Z"])),
        None,
        T0,
    ),
    ts_case("binary", pl.Series([str(T1).encode()]), None, T1),
    ts_case("decimal", pl.Series([decimal.Decimal(T1)], dtype=pl.Decimal(12, 0)), None, T1),
    ts_case("bool", pl.Series([True]), "true", None),
    ts_case("duration", pl.Series([dt.timedelta(seconds=T1)]), str(dt.timedelta(seconds=T1)), None),
    ts_case("time", pl.Series([dt.time(1, 2)]), "01:02:00", None),
    ts_case("list", pl.Series([[T1]]), f"[{T1}]", None),
    ts_case("struct", pl.Series([{"s": T1}]), f'{{"s":{T1}}}', None),
]


@run_cases(ID_CASES + TS_CASES)
def test_id_and_timestamp_column_types(
    case: Case, tmp_path: Path, seed_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(case, run_case(case, tmp_path, seed_warehouse, capsys))


# -- class 2 and 3: usage errors (exit 2, one line, nothing written) -----------------------

GOOD_CSV = csv(HEADER, f"u1,Alice,31,{T1}")


def mapping_text(**changes: Any) -> bytes:
    return json.dumps({**MAPPING, **changes}).encode()


def usage_error(name: str, error: str, source: Source = GOOD_CSV, **kw: Any) -> Case:
    return Case(name, source, exit=2, error=error, **kw)


USAGE_CASES = [
    usage_error("source_is_a_directory", "is a directory, not a file", lambda p: p.mkdir()),
    usage_error(
        "source_is_a_fifo",
        "is not a regular file: it is a named pipe (FIFO)",
        lambda p: os.mkfifo(p),
    ),
    usage_error(
        "source_is_a_device",
        "is not a regular file: it is a character device",
        lambda p: p.symlink_to("/dev/null"),
    ),
    usage_error("source_does_not_exist", "does not exist", lambda p: None),
    usage_error(
        "source_is_a_dangling_symlink", "does not exist", lambda p: p.symlink_to(p.parent / "x")
    ),
    usage_error(
        "mapping_not_utf8",
        "is not UTF-8 text (byte 42)",
        mapping_file=b'{"ids": [{"from_column": "id", "to_id": "\xff"}]}',
    ),
    usage_error(
        "mapping_nested_10000_levels",
        "is not a mapping: JSON nested more than 64 levels deep (the limit is 64)",
        mapping_file=b'{"properties": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    ),
    usage_error(
        "mapping_nested_100_levels",
        "is not a mapping: JSON nested more than 64 levels deep (the limit is 64)",
        mapping_file=b'{"constant_columns": ' + b"[" * 100 + b"]" * 100 + b"}",
    ),
    usage_error(
        "mapping_with_nan",
        "is not valid JSON: NaN is not valid JSON",
        mapping_file=b'{"ids": [], "x": NaN}',
    ),
    usage_error(
        "mapping_not_json", "is not valid JSON: Expecting value at line 1", mapping_file=b"ids"
    ),
    usage_error(
        "mapping_is_a_directory",
        "cannot read mapping file",
        mapping_file=lambda p: p.mkdir(),
    ),
    *[
        usage_error(
            f"timezone_{tz.replace('/', '_')}",
            f"invalid mapping at timezone: unknown IANA timezone {tz!r}",
            mapping_file=mapping_text(timezone=tz),
        )
        for tz in ("localtime", "posixrules", "right/UTC", "Factory", "+01:00", "Mars/Olympus")
    ],
]


@run_cases(USAGE_CASES)
def test_usage_errors(
    case: Case, tmp_path: Path, seed_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(case, run_case(case, tmp_path, seed_warehouse, capsys))
