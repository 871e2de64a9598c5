"""What each mapping type makes of each source column type (propsync.coltypes): no column type
makes an import fail; what cannot be stored is rejected per cell (ids: per row) with a reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from propsync.coltypes import convert_column, id_text, raw_text, timestamp_input, type_name


def converted(s: pl.Series, type_: str, json_cells: pl.Series | None = None) -> list[Any]:
    """(value, reason) per cell: the canonical JSON text, or None and why it was rejected."""
    c = convert_column(s, type_, "UTC", json_cells)
    assert c.values.name == s.name and len(c.values) == len(s)
    reasons = c.reasons_of(c.rejected)
    rejected = iter([reasons] * int(c.rejected.sum()) if isinstance(reasons, str) else reasons)
    return [
        (None, next(rejected)) if bad else (value, None)
        for value, bad in zip(c.values.to_list(), c.rejected.to_list(), strict=True)
    ]


def test_categorical_and_enum_are_their_text() -> None:
    cat = pl.Series("c", ["x", "y", None]).cast(pl.Categorical)
    assert converted(cat, "string") == [('"x"', None), ('"y"', None), ("null", None)]
    enum = pl.Series("e", ["y", None], dtype=pl.Enum(["x", "y"]))
    assert converted(enum, "string") == [('"y"', None), ("null", None)]


def test_binary_is_its_text_when_utf8_else_the_cell_is_rejected() -> None:
    s = pl.Series("b", [b"ok", b"\xff", None])
    assert converted(s, "string") == [
        ('"ok"', None),
        (None, "binary value that is not UTF-8 text"),
        ("null", None),
    ]


def test_lists_and_structs_are_canonical_json_for_text_and_lists_for_list() -> None:
    lists = pl.Series("l", [[2, 1], None, []])
    assert converted(lists, "list") == [("[2,1]", None), ("null", None), ("[]", None)]
    # The text types store the JSON text as a string.
    assert converted(lists, "string")[0] == ('"[2,1]"', None)
    structs = pl.Series("s", [{"k": 1, "a": "é"}])
    assert converted(structs, "longtext") == [('"{\\"a\\":\\"é\\",\\"k\\":1}"', None)]
    assert converted(structs, "list") == [(None, "not a JSON array")]


def test_a_value_without_a_json_form_inside_a_list_rejects_its_cell() -> None:
    s = pl.Series("l", [[dt.date(2020, 1, 1)], [], None])
    assert converted(s, "list") == [
        (None, "has no JSON form (date is not a JSON value)"),
        ("[]", None),
        ("null", None),
    ]


@pytest.mark.parametrize("type_", ["number", "boolean", "date", "datetime"])
def test_nested_values_cannot_be_scalars(type_: str) -> None:
    s = pl.Series("l", [[1], None])
    assert converted(s, type_) == [(None, f"list values cannot be a {type_}"), ("null", None)]


def test_durations_are_rejected_per_cell_whatever_the_type() -> None:
    s = pl.Series("d", [dt.timedelta(seconds=1), None])
    assert converted(s, "string") == [(None, "duration values cannot be a string"), ("null", None)]


def test_json_lines_arrays_and_objects_mixed_with_scalars() -> None:
    s = pl.Series("j", ["[1,2]", '{"a":1}', "x"])
    json_cells = pl.Series([True, True, False])
    assert converted(s, "list", json_cells) == [
        ("[1,2]", None),
        (None, "not a JSON array"),
        (None, "not a JSON array"),
    ]
    assert converted(s, "string", json_cells) == [
        ('"[1,2]"', None),
        ('"{\\"a\\":1}"', None),
        ('"x"', None),
    ]


def test_ids_are_text_or_integers_and_other_types_reject_their_rows() -> None:
    text, bad, reason = id_text(pl.Series("i", [1, 22, None]))
    assert (text.to_list(), bad, reason) == (["1", "22", None], None, "")
    text, bad, reason = id_text(pl.Series("i", [1.5, None]))
    assert text.to_list() == [None, None] and bad is not None
    assert bad.to_list() == [True, False]  # a missing id is not a bad one
    assert reason == "float values cannot be customer ids (ids are text or integers)"
    text, bad, reason = id_text(pl.Series("i", [b"ab", b"\xff"]))
    assert text.to_list() == ["ab", None] and bad is not None and bad.to_list() == [False, True]
    assert reason == "binary value that is not UTF-8 text cannot be a customer id"
    text, bad, reason = id_text(pl.Series("i", ["[1]", "x"]), pl.Series([True, False]))
    assert text.to_list() == [None, "x"] and bad is not None and bad.to_list() == [True, False]
    assert reason.startswith("JSON arrays and objects cannot be customer ids")


def test_the_quarantine_gets_every_value_as_text() -> None:
    assert raw_text(pl.Series([b"ab", b"\xff", None])).to_list() == ["ab", "0xff", None]
    assert raw_text(pl.Series([[1, 2], None])).to_list() == ["[1,2]", None]
    assert raw_text(pl.Series([{"k": dt.date(2020, 1, 2)}])).to_list() == ['{"k":"2020-01-02"}']
    assert raw_text(pl.Series([dt.timedelta(seconds=1)])).to_list() == ["0:00:01"]
    assert raw_text(pl.Series([1.5, None])).to_list() == ["1.5", None]


def test_type_names_and_timestamp_input() -> None:
    assert [type_name(t) for t in (pl.Int8(), pl.UInt64(), pl.Float32())] == [
        "integer",
        "integer",
        "float",
    ]
    assert type_name(pl.Array(pl.Int64, 2)) == "list"
    assert type_name(pl.Duration()) == "duration"
    stamps = timestamp_input(pl.Series(["2020-01-01"]).cast(pl.Categorical))
    assert stamps.dtype == pl.String and stamps.to_list() == ["2020-01-01"]
