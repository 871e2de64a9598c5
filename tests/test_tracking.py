"""Parsing tracking commands: text that is not Unicode fails its command, never the batch."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given, settings, strategies as st

from propsync.timestamps import parse_timestamps
from propsync.tracking import number_timestamp, parse_commands, validate_commands

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


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.text(alphabet=st.characters(max_codepoint=127), max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
_ascii = st.text(alphabet=st.characters(max_codepoint=127), max_size=6)
_names = _ascii | st.text(max_size=4) | st.just("") | st.just("x" * 257) | st.just("a:b")
_timestamps = (
    st.none()
    | st.integers(min_value=-10, max_value=2 * 10**9)
    | st.floats(min_value=-10, max_value=2e9)
    | st.sampled_from([True, "2024-01-01T00:00:00Z", "nope", 1e300, float("nan"), [1]])
)


@st.composite
def _commands(draw: st.DrawFn) -> object:
    data: dict[str, object] = {}
    if draw(st.integers(0, 9)):
        data["customer_ids"] = draw(
            st.dictionaries(_names, _ascii | st.integers(0, 99) | _values, max_size=3)
            | st.just({"t": "v" * 1025})
            | _values
        )
    if draw(st.booleans()):
        data["properties"] = draw(st.dictionaries(_names, _values, max_size=4) | _values)
    if draw(st.booleans()):
        data["update_timestamp"] = draw(_timestamps)
    if not draw(st.integers(0, 9)):
        data[draw(_names)] = 1
    command: dict[str, object] = {
        "name": draw(st.sampled_from(["customers"] * 8 + ["system/time", "nope", 3])),
        "data": data if draw(st.integers(0, 9)) else draw(_values),
    }
    if draw(st.booleans()):
        command["command_id"] = draw(_values)
    return command if draw(st.integers(0, 19)) else draw(_values)


_word = st.text(alphabet="abcxyz019_.-", min_size=1, max_size=6)
_sdk_scalars = (
    st.text(alphabet=st.characters(max_codepoint=127), max_size=8)
    | st.integers(min_value=-(2**54), max_value=2**54)
    | st.floats(min_value=-1e20, max_value=1e20)
    | st.booleans()
    | st.none()
)


@st.composite
def _sdk_commands(draw: st.DrawFn) -> object:
    """What SDKs send, now and then with one of the small deviations the fast path must hand on
    to the general one."""
    odd = draw(st.integers(0, 3)) == 0
    ids = draw(
        st.dictionaries(
            _word | st.sampled_from(["a:b", "", "é", "t" * 1025]) if odd else _word,
            _word | st.sampled_from(["", "é", "v" * 1025]) | st.integers(0, 9) if odd else _word,
            min_size=1,
            max_size=3,
        )
    )
    props = draw(
        st.dictionaries(
            _word | st.sampled_from(["x" * 257, "ž", ""]) if odd else _word,
            _scalars | _values if odd else _sdk_scalars,
            max_size=4,
        )
    )
    data: dict[str, object] = {"customer_ids": ids, "properties": props}
    if draw(st.booleans()):
        data["update_timestamp"] = draw(
            _timestamps if odd else st.floats(min_value=0, max_value=1_700_000_600) | st.none()
        )
    command: dict[str, object] = {"name": "customers", "data": data}
    if draw(st.booleans()):
        command["command_id"] = draw(
            st.integers() | _ascii | st.text(max_size=3) | st.floats()
            if odd
            else st.integers() | _word
        )
    return command


@settings(max_examples=3000, deadline=None)
@given(st.lists(_commands() | _sdk_commands(), max_size=6))
def test_the_plain_fast_path_gives_the_general_paths_results_and_rows(
    commands: list[object],
) -> None:
    import propsync.tracking as tracking

    receive = 1_700_000_000_000_000
    fast = validate_commands(commands, receive_us=receive)
    tracking.PLAIN_FAST_PATH = False
    try:
        general = validate_commands(commands, receive_us=receive)
    finally:
        tracking.PLAIN_FAST_PATH = True
    assert fast.results == general.results
    assert fast.ids == general.ids
    assert fast.cells == general.cells


def test_the_plain_fast_path_takes_what_sdks_send() -> None:
    import propsync.tracking as tracking

    cmd = {
        "name": "customers",
        "command_id": 7,
        "data": {
            "customer_ids": {"registered": "a", "cookie": "c"},
            "properties": {"s": "x", "i": 3, "f": 1.5, "g": 2.0, "b": True, "n": None},
            "update_timestamp": 1_600_000_000.5,
        },
    }
    rows: list[tuple[int, str, str]] = []
    cells: list[tuple[int, str, str, int]] = []
    result = tracking._plain_customers(cmd, 1, 2 * 10**15, 10**15, rows, cells)
    assert result == {"success": True, "command_id": 7}
    assert rows == [(1, "registered", "a"), (1, "cookie", "c")]
    ts = 1_600_000_000_500_000
    assert cells == [
        (1, "s", '"x"', ts),
        (1, "i", "3", ts),
        (1, "f", "1.5", ts),
        (1, "g", "2", ts),
        (1, "b", "true", ts),
        (1, "n", "null", ts),
    ]
