"""Parsing tracking commands: text that is not Unicode fails its command, never the batch."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given, settings, strategies as st

from propsync import jsonlimits
from propsync.journal import Record, record_of
from propsync.timestamps import parse_timestamps
from propsync.tracking import (
    BatchShapeError,
    Validated,
    check_batch,
    number_timestamp,
    parse_commands,
    plain_request,
    validate_commands,
)

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
def _sdk_commands(draw: st.DrawFn, odd_chance: int = 4) -> object:
    """What SDKs send, one time in ``odd_chance`` with one of the small deviations the fast path
    must hand on to the general one (never with 0)."""
    odd = odd_chance > 0 and draw(st.integers(1, odd_chance)) == 1
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


def _general(body: bytes) -> tuple[Validated, dict[int, object], int] | str:
    """What the general path makes of a request body: the validated commands, the command ids
    its journal record keeps and the command count, or the error it answers with."""
    try:
        parsed = jsonlimits.loads(body)
        commands = check_batch(parsed)
    except (ValueError, BatchShapeError) as exc:
        return type(exc).__name__
    checked = validate_commands(commands, receive_us=RECEIVE)
    record = record_of("b", RECEIVE, checked, commands)
    return checked, ({} if record is None else record.command_ids), len(commands)


_extra_keys = st.dictionaries(_names, _values, max_size=1)


@st.composite
def _mostly_sdk_batches(draw: st.DrawFn) -> list[object]:
    """Commands as SDKs send them, with at most one that may deviate: a body is decoded by type
    only when all of its commands are plain, so one deviation at a time is what tests the path."""
    commands: list[object] = draw(
        st.lists(_sdk_commands(odd_chance=0), max_size=6)
        | st.lists(_sdk_commands(odd_chance=0), min_size=48, max_size=52)
    )
    if draw(st.booleans()):
        odd = draw(_edge_commands() | _sdk_commands(1) | _commands())
        commands.insert(draw(st.integers(0, len(commands))), odd)
    return commands


_LATEST_S = RECEIVE // 1_000_000 + 600  # the default skew allowed into the future
_edges = {
    "update_timestamp": st.sampled_from(
        [
            -1,
            -0.4,
            -0.5,
            -0.6,
            0,
            0.0000004,
            0.0000005,
            _LATEST_S,
            _LATEST_S + 1,
            2**63,
            1e300,
            _LATEST_S + 0.0000004,
            True,
            None,
            "1",
            float("inf"),
        ]
    ),
    "command_id": st.sampled_from(
        [2**63, 2**64, 2**70, -(2**63) - 1, "", "ž", "\u2028", 1.0, True, None, [1], {}]
    ),
    "value": st.sampled_from(
        [
            "x" * 16_382,
            "x" * 16_383,
            '"' * 8_190,
            "\\" * 8_191,
            "\x00\x1f\x7f",
            "",
            -0.0,
            1e16,
            1e-7,
            2**53 + 1,
            2**64,
            -(2**70),
            0.1 + 0.2,
            5e-324,
            float("nan"),
        ]
    ),
    "name": st.sampled_from(["", " ", "x" * 256, "x" * 257, "a:b", "a.b", "ž", "\x00"]),
    "id": st.sampled_from(["", " ", "v" * 1024, "v" * 1025, "ž", "\x00"]),
    "id_type": st.sampled_from(["", "t" * 1024, "t" * 1025, "a:b", ":", "ž"]),
}


@st.composite
def _edge_commands(draw: st.DrawFn) -> object:
    """An SDK's command with one edge value where the typed path and the general one could part
    ways: the time's range and rounding, big and odd command ids, values at the size limit and
    odd numbers, names and ids at their limits."""
    data: dict[str, object] = {"customer_ids": {"registered": "u1"}, "properties": {"p": 1}}
    command: dict[str, object] = {"name": "customers", "data": data}
    field = draw(st.sampled_from(sorted(_edges)))
    edge = draw(_edges[field])
    if field == "update_timestamp":
        data[field] = edge
    elif field == "command_id":
        command[field] = edge
    elif field == "value":
        data["properties"] = {"p": edge}
    elif field == "name":
        data["properties"] = {edge: 1}
    elif field == "id":
        data["customer_ids"] = {"registered": edge}
    else:
        data["customer_ids"] = {edge: "v"}
    return command


def _assert_same_outcome(body: bytes) -> bool:
    """Whether ``body`` was decoded by type; if so, with the general path's outcome."""
    plain = plain_request(body, receive_us=RECEIVE)
    if plain is None:  # the general path's to answer
        return False
    general = _general(body)
    assert not isinstance(general, str), general
    checked, command_ids, count = general
    assert plain.checked.results == checked.results
    assert plain.checked.ids == checked.ids
    assert plain.checked.cells == checked.cells
    assert plain.command_ids == command_ids
    assert plain.commands == count
    return True


@settings(max_examples=600, deadline=None)
@given(
    _mostly_sdk_batches() | st.lists(_commands() | _sdk_commands(), max_size=6),
    st.sampled_from([{}] * 9) | _extra_keys,
    st.booleans(),
)
def test_a_body_decoded_by_type_gives_the_general_paths_outcome(
    commands: list[object], extra: dict[str, object], ascii_only: bool
) -> None:
    _assert_same_outcome(
        json.dumps({"commands": commands, **extra}, ensure_ascii=ascii_only).encode()
    )


@settings(max_examples=600, deadline=None)
@given(st.lists(_sdk_commands(odd_chance=0), max_size=3), _edge_commands(), st.integers(0, 3))
def test_a_body_decoded_by_type_gives_the_general_paths_outcome_at_the_edges(
    commands: list[object], edge: object, position: int
) -> None:
    commands.insert(min(position, len(commands)), edge)
    _assert_same_outcome(json.dumps({"commands": commands}).encode())


def _sdk_body(commands: int = 50, **data: object) -> dict[str, object]:
    return {
        "commands": [
            {
                "name": "customers",
                "command_id": i,
                "data": {
                    "customer_ids": {"registered": f"user{i}", "cookie": f"c-{i}"},
                    "properties": {"plan": "pro", "visits": i, "score": 1.5, "vip": False},
                    "update_timestamp": 1_699_999_000.25,
                    **data,
                },
            }
            for i in range(commands)
        ]
    }


def test_a_body_decoded_by_type_takes_what_sdks_send_and_journals_the_same_record() -> None:
    body = _sdk_body()
    body["commands"][3]["command_id"] = "ascii-id"  # type: ignore[index]
    del body["commands"][4]["command_id"]  # type: ignore[index]
    del body["commands"][5]["data"]["update_timestamp"]  # type: ignore[index]
    del body["commands"][6]["data"]["properties"]  # type: ignore[index]
    raw = json.dumps(body).encode()
    plain = plain_request(raw, receive_us=RECEIVE)
    assert plain is not None
    assert plain.commands == 50 and len(plain.checked.results) == 50
    assert plain.checked.results[3] == {"success": True, "command_id": "ascii-id"}
    assert plain.checked.results[4] == {"success": True}
    assert 5 not in plain.command_ids and plain.command_ids[4] == "ascii-id"
    assert (6, "plan", '"pro"', RECEIVE) in plain.checked.cells  # no timestamp: received at
    assert not [c for c in plain.checked.cells if c[0] == 7]
    general = _general(raw)
    assert not isinstance(general, str)
    checked, command_ids, count = general
    line = Record("b", RECEIVE, checked.ids, checked.cells, command_ids, count).encode()
    assert (
        line
        == Record(
            "b", RECEIVE, plain.checked.ids, plain.checked.cells, plain.command_ids, plain.commands
        ).encode()
    )


def test_a_body_not_plainly_valid_goes_the_general_way() -> None:
    def body(**changes: object) -> bytes:
        doc = _sdk_body(2)
        command = doc["commands"][1]  # type: ignore[index]
        for path, value in changes.items():
            *parents, key = path.split("__")
            target = command
            for parent in parents:
                target = target[parent]
            target[key] = value
        return json.dumps(doc).encode()

    deep: object = 1
    for _ in range(100):
        deep = [deep]
    refused = {
        "another command": body(name="system/time"),
        "a null time": body(data__update_timestamp=None),
        "a text time": body(data__update_timestamp="2024-01-01T00:00:00Z"),
        "a time out of range": body(data__update_timestamp=-1),
        "null properties": body(data__properties=None),
        "a nested value": body(data__properties={"p": {"a": 1}}),
        "a number id": body(data__customer_ids={"registered": 7}),
        "no ids": body(data__customer_ids={}),
        "an id type with a colon": body(data__customer_ids={"a:b": "x"}),
        "non-ASCII text": body(data__properties={"p": "ž"}),
        "a float command_id": body(command_id=1.5),
        "an unknown key in data": body(data__extra=1),
        "an unknown key in the command": body(extra=1),
        "a deeply nested unknown key": body(extra=deep),
        "a value over 16 KB": body(data__properties={"p": "x" * 16_400}),
        "NaN": body(data__properties={"p": float("nan")}),
        "51 commands": json.dumps(_sdk_body(51)).encode(),
        "a deeply nested top-level key": json.dumps({**_sdk_body(1), "x": deep}).encode(),
        "a byte order mark": b"\xef\xbb\xbf" + json.dumps(_sdk_body(1)).encode(),
        "UTF-16": json.dumps(_sdk_body(1)).encode("utf-16"),
        "bytes that are not UTF-8": body(data__properties={"p": "\udcff"}).replace(
            b"\\udcff", b"\xff"
        ),
        "a lone surrogate": body(data__customer_ids={"registered": "\ud800"}),
        "not JSON": b'{"commands": [',
    }
    for case, raw in refused.items():
        assert plain_request(raw, receive_us=RECEIVE) is None, case
    assert plain_request(body(), receive_us=RECEIVE) is not None
    # The general path answers each as before, e.g. the deep key with its depth error.
    assert _general(refused["a deeply nested top-level key"]) == "JsonTooDeep"
    assert _general(refused["51 commands"]) == "BatchShapeError"
