"""The one JSON parser for untrusted input: depth found exactly, NaN refused, last key wins."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from propsync import jsonlimits
from propsync.jsonlimits import MAX_DEPTH, JsonTooDeep, check_depth, loads, text_depth


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


# Strings full of what could fool a scan: quotes, backslashes, brackets, non-ASCII.
tricky = st.text(alphabet=st.sampled_from(list('ab"\\[]{}é\n\u2028😀')), max_size=6)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(values, st.booleans())
def test_the_text_depth_is_the_depth_of_the_value(value: Any, ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii)
    expected = min(depth_of(value), MAX_DEPTH + 1)
    assert text_depth(text) == expected
    assert text_depth(text.encode()) == expected
    assert text_depth(text.encode("utf-16")) == expected
    assert text_depth(text, limit=2) == min(depth_of(value), 3)
    if depth_of(value) > 2:
        with pytest.raises(JsonTooDeep):
            check_depth(value, 2)
    else:
        check_depth(value, 2)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ('"[[[["', 0),
        (r'"\"[["', 0),
        (r'["\\", [1]]', 2),
        (r'["\\\"[", [1]]', 2),
        ('{"a": [], "b": {"c": [{}]}}', 4),
        ("[" * 64 + "]" * 64, 64),
        ("[" * 65 + "]" * 65, 65),
        ("[" * 100_000, 65),  # unbalanced (not JSON): still known to be too deep
        ("]]]][[", 2),  # unbalanced: a bound (the unclosed openers)
        ("[[]" + "[" * 70, 65),
    ],
)
def test_text_depth_cases(text: str, depth: int) -> None:
    assert text_depth(text) == depth


def test_loads_refuses_deep_text_before_parsing_and_never_recursion_error() -> None:
    assert loads("[" * 64 + "]" * 64) is not None
    for n in (65, 900, 100_000, 1_000_000):
        with pytest.raises(JsonTooDeep, match="more than 64 levels deep"):
            loads("[" * n + "]" * n)
        with pytest.raises(JsonTooDeep):
            loads(b'{"a": ' * n + b"1" + b"}" * n)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)  # beyond 64 bits: exact, as json's
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(tricky | st.text(), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=1000, deadline=None)
@given(json_values, st.booleans(), st.booleans())
def test_loads_gives_what_json_loads_gives(value: Any, ascii: bool, as_bytes: bool) -> None:
    """orjson parses most texts, the standard library the rest: the values are json.loads' own,
    to the type (an integer stays an integer however long) and the float bit."""
    text = json.dumps(value, ensure_ascii=ascii)
    got = loads(text.encode("utf-8", "surrogatepass") if as_bytes else text)
    expected = json.loads(text)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # types and float digits too


def test_loads_is_json_loads_otherwise() -> None:
    assert loads(b'{"a": 1, "a": 2}') == {"a": 2}  # the last duplicate key wins
    assert loads('{"a": {"b": 1}, "a": {"c": 2}}') == {"a": {"c": 2}}
    assert loads('"\\ud800"') == "\ud800"  # a lone surrogate escape parses (callers refuse it)
    assert loads(b'"\xed\xa0\x80"') == "\ud800"  # as json.loads: surrogatepass
    assert loads("[1]".encode("utf-16")) == [1]
    assert loads(b"\xef\xbb\xbf[1]") == [1]
    for bad, message in [
        ("NaN", "NaN is not valid JSON"),
        ("[Infinity]", "Infinity is not valid JSON"),
        ("[-Infinity]", "-Infinity is not valid JSON"),
        ("{", "Expecting property name"),
        ("[1] [2]", "Extra data"),
    ]:
        with pytest.raises(ValueError, match=message):
            loads(bad)
    with pytest.raises(UnicodeDecodeError):
        loads(b"[\xff]")


def test_the_message_names_the_input() -> None:
    assert JsonTooDeep().describe("the body") == (
        "the body nests arrays/objects more than 64 levels deep (the limit is 64)"
    )
    assert jsonlimits.MAX_DEPTH == 64
