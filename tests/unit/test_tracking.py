"""Parsing tracking commands: text that is not Unicode fails its command, never the batch."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given, settings, strategies as st

from propsync.timestamps import parse_timestamps
from propsync.tracking import number_timestamp, parse_commands, validate_commands
from propsync.values import _CANONICAL, _normalise, canonical_json

RECEIVE = 1_700_000_000_000_000


def test_lone_surrogates_fail_only_their_command_and_stay_out_of_the_batch() -> None:
    # As json.loads gives them from the escapes "\ud800" / "\udc00".
    body = json.loads(
        '{"commands": ['
        '{"name": "customers", "data": {"customer_ids": {"registered": "\\ud800"}, "properties": {"p": 1}}},'
        '{"name": "customers", "data": {"customer_ids": {"\\udc00": "a"}, "properties": {"p": 1}}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "properties": {"\\ud800": 1}}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "properties": {"p": {"\\ud800": 1}}}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "properties": {"p": 1}, "update_timestamp": "\\ud800"}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "\\ud800": 1}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}}, "command_id": ["\\ud800"]},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "ok", "cookie": 7}, "properties": {"\\u017e": "\\ud83d\\ude00"}}},'
        '{"name": "system/time"}'
        "]}"
    )
    tb = parse_commands(body, receive_us=RECEIVE)
    assert [r["success"] for r in tb.results] == [False] * 7 + [True, True]
    errors = [r["errors"] for r in tb.results[:7]]
    assert errors == [
        [
            "customer_ids.registered value '\\ud800' is not valid Unicode text: it contains a lone surrogate"
        ],
        ["customer id type '\\udc00' is not valid Unicode text: it contains a lone surrogate"],
        ["property name '\\ud800' is not valid Unicode text: it contains a lone surrogate"],
        ["properties.p: not valid Unicode text: surrogates not allowed"],
        ["update_timestamp '\\ud800' is not a timestamp"],
        ["unknown keys in data: '\\ud800'"],
        ["command_id is not valid Unicode text: it contains a lone surrogate"],
    ]
    # Every error message is itself Unicode (the API writes responses as UTF-8).
    json.dumps(tb.results, ensure_ascii=False).encode("utf-8")
    # Only the valid command reaches the batch; a valid pair (an emoji) is fine.
    assert tb.batch.ids.rows() == [(8, "registered", "ok"), (8, "cookie", "7")]
    assert tb.batch.cells.rows() == [(8, "ž", '"😀"', RECEIVE)]


_EDGES = [
    0.0,
    -0.0,
    5e-7,
    -5e-7,
    4.999999999999999e-7,
    0.49999999999999994,
    2.5e-7,
    9223372036854.775,
    -9223372036854.775808,
    9223372036854.776,
    1e300,
    -1e300,
    float("nan"),
    float("inf"),
    float("-inf"),
]


@settings(max_examples=2000, deadline=None)
@given(
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=-1e13, max_value=1e13)
    | st.sampled_from(_EDGES)
)
def test_a_number_update_timestamp_parses_as_parse_timestamps_parses_it(value: float) -> None:
    """The intake parses numbers in plain Python; Polars' vectorised rule is the reference."""
    dtype = pl.Int64 if isinstance(value, int) else pl.Float64
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        expected = None  # not an Int64: parse_timestamp_value's rule
    else:
        expected = parse_timestamps(pl.Series([value], dtype=dtype))[0]
    assert number_timestamp(value) == expected


@settings(max_examples=1000, deadline=None)
@given(
    st.text() | st.integers() | st.booleans() | st.text(alphabet=st.characters(max_codepoint=127))
)
def test_the_fast_paths_of_canonical_json_give_the_general_text(value: object) -> None:
    assert canonical_json(value) == _CANONICAL.encode(_normalise(value))


def test_a_command_with_text_and_number_timestamps_parses_both() -> None:
    commands = [
        {
            "name": "customers",
            "data": {"customer_ids": {"r": "a"}, "properties": {"p": 1}, "update_timestamp": ts},
        }
        for ts in ("2024-01-01T00:00:00Z", 1704067200, 1704067200.5, "1704067200.25", True)
    ]
    checked = validate_commands(commands, receive_us=1_800_000_000_000_000)
    assert [c[3] for c in checked.cells] == [
        1704067200000000,
        1704067200000000,
        1704067200500000,
        1704067200250000,
    ]
    assert checked.results[-1]["errors"] == ["update_timestamp True is not a timestamp"]


def _one(data: dict[str, object]) -> dict[str, object]:
    checked = validate_commands([{"name": "customers", "data": data}], receive_us=RECEIVE)
    return checked.results[0]


def test_every_size_of_a_command_is_capped_with_a_message_naming_the_limit() -> None:
    ok = {"customer_ids": {"registered": "a"}}
    assert _one({**ok, "properties": {"p": "x" * (16 * 1024 - 2)}})["success"] is True
    assert _one({**ok, "properties": {"p": "é" * 8191}})["success"] is True  # 16,384 bytes
    cases = [
        (
            {**ok, "properties": {"p": "x" * (16 * 1024 - 1)}},
            "properties.p: the value is 16,385 bytes of JSON; at most 16,384 (16 KB) per property",
        ),
        (
            {**ok, "properties": {"p": "é" * 8192}},
            "properties.p: the value is 16,386 bytes of JSON; at most 16,384 (16 KB) per property",
        ),
        (
            {**ok, "properties": {"p": "\x01" * 3000}},  # 18,002 bytes once escaped
            "properties.p: the value is 18,002 bytes of JSON; at most 16,384 (16 KB) per property",
        ),
        (
            {**ok, "properties": {"p": {"nested": ["y" * 17000]}}},
            "properties.p: the value is 17,015 bytes of JSON; at most 16,384 (16 KB) per property",
        ),
        (
            {**ok, "properties": {"n" * 257: 1}},
            f"property name {'n' * 40!r}... is longer than 256 characters",
        ),
        (
            {**ok, "properties": {f"p{i}": i for i in range(1025)}},
            "properties has 1025 entries; at most 1024 per command",
        ),
        (
            {"customer_ids": {f"t{i}": "v" for i in range(33)}},
            "customer_ids has 33 ids; at most 32 per command",
        ),
        (
            {"customer_ids": {"registered": "v" * 1025}},
            "customer_ids.registered is longer than 1024 characters",
        ),
        (
            {"customer_ids": {"t" * 1025: "v"}},
            f"customer id type {'t' * 40!r}... is longer than 1024 characters",
        ),
    ]
    for data, message in cases:
        result = _one(data)
        assert result["success"] is False, message
        assert message in result["errors"], result["errors"]
    assert _one({"customer_ids": {f"t{i}": "v" for i in range(32)}})["success"] is True
    assert _one({**ok, "properties": {"n" * 256: 1}})["success"] is True
