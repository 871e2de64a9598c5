"""Canonical JSON and per-type conversion: one text per value, whichever path it came by."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from propsync.values import _CANONICAL, _normalise, canonical_json, convert


def test_canonical_json_is_compact_sorted_and_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1.0, "é", None]}) == '{"a":[1,"é",null],"b":1}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, object()])
def test_canonical_json_rejects_non_json(bad: object) -> None:
    with pytest.raises(ValueError):
        canonical_json(bad)


@given(st.lists(st.text(), min_size=1, max_size=20))
def test_polars_string_encoding_equals_canonical_json(texts: list[str]) -> None:
    out = convert(pl.Series("c", texts), "string").values.to_list()
    assert out == [canonical_json(t) if t.strip(" \t\r\n") else "null" for t in texts]


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_polars_number_text_equals_canonical_json(values: list[float]) -> None:
    out = convert(pl.Series("c", values, dtype=pl.Float64), "number").values.to_list()
    assert out == [canonical_json(v) for v in values]
    assert [json.loads(o) == v for o, v in zip(out, values, strict=True)] == [True] * len(values)


def test_number_from_text() -> None:
    c = convert(pl.Series(["42", " 3.50 ", "-1e3", "", None, "abc", "1,5", "NaN", "007"]), "number")
    assert c.values.to_list() == ["42", "3.5", "-1000", "null", "null", None, None, None, "7"]
    assert c.rejected.to_list() == [False, False, False, False, False, True, True, True, False]


def test_number_from_native_types() -> None:
    assert convert(pl.Series([1, None, -5]), "number").values.to_list() == ["1", "null", "-5"]
    assert convert(pl.Series([1.0, 2.5, None]), "number").values.to_list() == ["1", "2.5", "null"]


def test_boolean_accepts_the_documented_spellings_in_any_case() -> None:
    c = convert(pl.Series(["true", "FALSE", "1", "0", "Yes", "no", "", "maybe"]), "boolean")
    assert c.values.to_list() == ["true", "false", "true", "false", "true", "false", "null", None]
    assert c.rejected.to_list() == [False] * 7 + [True]
    assert convert(pl.Series([True, False, None]), "boolean").values.to_list() == [
        "true",
        "false",
        "null",
    ]


def test_datetime_and_date_store_unix_seconds() -> None:
    c = convert(
        pl.Series(["2019-10-02T07:24:09Z", "2019-10-02 09:24:09.5+02:00", "1570001049", "nope"]),
        "datetime",
    )
    assert c.values.to_list() == ["1570001049", "1570001049.5", "1570001049", None]
    d = convert(pl.Series(["2019-10-02", "2019-10-02 23:30:00"]), "date", timezone="Europe/Prague")
    # A date is midnight in the mapping's timezone (Prague is UTC+2 in October).
    assert d.values.to_list() == ["1569967200", "1569967200"]


def test_list_accepts_json_arrays_only() -> None:
    c = convert(pl.Series(['["a", 1]', "[]", '{"a": 1}', "a,b", None]), "list")
    assert c.values.to_list() == ['["a",1]', "[]", None, None, "null"]
    assert c.rejected.to_list() == [False, False, True, True, False]


def test_text_types_keep_text_of_native_columns() -> None:
    assert convert(pl.Series([12, None]), "url").values.to_list() == ['"12"', "null"]


def test_lone_surrogates_are_rejected_not_crashing() -> None:
    with pytest.raises(ValueError, match="Unicode"):
        canonical_json({"name": "\ud800"})


@settings(max_examples=1000, deadline=None)
@given(
    st.text() | st.integers() | st.booleans() | st.text(alphabet=st.characters(max_codepoint=127))
)
def test_the_fast_paths_of_canonical_json_give_the_general_text(value: object) -> None:
    assert canonical_json(value) == _CANONICAL.encode(_normalise(value))
