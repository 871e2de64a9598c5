"""The journal's line format (propsync.journal.records): a record round-trips; a torn or corrupt
line is refused."""

from __future__ import annotations

import pytest

from propsync.journal import Record


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
