"""The journal's line format (propsync.journal.records): a record round-trips; a torn or corrupt
line is refused; a request becomes the record of its valid commands."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from propsync.journal import Record, record_from_tracking, records
from propsync.tracking import parse_commands


def test_record_round_trip_and_corruption() -> None:
    r = Record(
        "trk-1",
        123,
        [(1, "registered", "ž/ü"), (2, "cookie", "c")],
        [(1, "p", '{"a":[1,2.5]}', 9)],
        {1: {"x": [None]}},
        3,
    )
    line = r.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert Record.decode(line[:-1]) == r
    assert r.customer_commands() == 2
    assert Record.decode(line[:-2]) is None  # torn
    flipped = bytearray(line[:-1])
    flipped[20] ^= 0x01
    assert Record.decode(bytes(flipped)) is None  # checksum
    assert Record.decode(b"\x00" * 40) is None
    with pytest.raises(UnicodeEncodeError):
        Record("x", 1, [(1, "registered", "\ud800")], []).encode()


RECEIVE = 1_700_000_000_000_000


def command(ids: dict[str, str], props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    update = (
        {"update_timestamp": extra.pop("update_timestamp")} if "update_timestamp" in extra else {}
    )
    return {
        "name": "customers",
        "data": {"customer_ids": ids, "properties": props, **update},
        **extra,
    }


def test_a_parsed_request_becomes_one_record_of_its_valid_commands() -> None:
    commands = [
        command({"registered": "a"}, {"x": 1}, command_id="c1", update_timestamp=1_600_000_000),
        command({}, {"x": 1}, command_id="c2"),  # invalid: no ids
        {"name": "customers/events", "data": {}},  # unknown
        command({"registered": "b", "cookie": "k"}, {"y": "z"}),
    ]
    tb = parse_commands({"commands": commands}, receive_us=RECEIVE, batch_id="trk-x")
    record = record_from_tracking(tb, commands)
    assert record == Record(
        batch_id="trk-x",
        receive_us=RECEIVE,
        ids=[(1, "registered", "a"), (4, "registered", "b"), (4, "cookie", "k")],
        # A command without update_timestamp is stamped with the receive time now, so applying
        # it later gives what applying it on receipt would have.
        cells=[(1, "x", "1", 1_600_000_000_000_000), (4, "y", '"z"', RECEIVE)],
        command_ids={1: "c1"},  # of valid commands only
        commands=4,
    )
    assert record.customer_commands() == 2
    assert Record.decode(record.encode()[:-1]) == record


def test_a_request_without_a_valid_customers_command_has_no_record() -> None:
    commands = [command({}, {"x": 1})]
    tb = parse_commands({"commands": commands}, receive_us=RECEIVE)
    assert record_from_tracking(tb, commands) is None


def test_an_edit_with_a_command_id_beyond_64_bits_round_trips() -> None:
    record = Record(
        "edt-1", RECEIVE, [(1, "registered", "a")], [(1, "p", "1", RECEIVE)], {1: 2**70}, 1, "edit"
    )
    assert Record.decode(record.encode()[:-1]) == record


def line_of(body: bytes) -> bytes:
    return b"%08x %s" % (zlib.crc32(body), body)


def test_a_record_of_a_release_without_kinds_is_tracking() -> None:
    body = (
        b'{"v":1,"b":"trk-old","r":5,"n":1,"i":[[1,"registered","a"]],"c":[[1,"p","1",5]],"k":[]}'
    )
    record = Record.decode(line_of(body))
    assert record == Record("trk-old", 5, [(1, "registered", "a")], [(1, "p", "1", 5)], {}, 1)
    assert record is not None and record.kind == "track"


def test_a_checksummed_line_that_is_not_a_record_is_refused() -> None:
    assert Record.decode(line_of(b'{"v":1,"b":"x"}')) is None  # fields missing
    assert Record.decode(line_of(b'{"v":1,"b":"x","r":"soon","n":1,"i":[],"c":[],"k":[]}')) is None
    assert Record.decode(line_of(b"[[[" * 100)) is None  # not JSON
    assert Record.decode(b"zzzzzzzz " + b"{}") is None  # no checksum


_text = st.text(max_size=6).filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF for c in t))
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=5,
)
_index = st.integers(1, 50)
_ts = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_index, _text, _text), max_size=4),
    st.lists(st.tuples(_index, _text, _text, _ts), max_size=4),
    st.dictionaries(_index, _json, max_size=3),
    st.integers(0, 50),
    st.sampled_from(["track", "edit"]),
    _ts,
)
def test_a_record_decodes_by_type_as_parsed_into_dicts(
    ids: list[tuple[int, str, str]],
    cells: list[tuple[int, str, str, int]],
    command_ids: dict[int, Any],
    commands: int,
    kind: str,
    receive_us: int,
) -> None:
    record = Record("trk-h", receive_us, ids, cells, command_ids, commands, kind)
    line = record.encode()[:-1]
    assert Record.decode(line) == record
    assert Record._decode_parsed(line[9:]) == record
    records._LINE.decode(line[9:])  # every line this program writes decodes by type
