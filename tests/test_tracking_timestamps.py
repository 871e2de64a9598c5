"""The tracking intake parses a batch's update_timestamps in one vectorised call per type; the
result must equal parsing each value alone with ``parse_timestamp_value``."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings, strategies as st

from propsync.timestamps import parse_timestamp_value
from propsync.tracking import parse_commands

RECEIVE = 1_700_000_000_000_000
SKEW = 600_000_000

values = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=0, max_value=1_800_000_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1.8e9),
    st.booleans(),
    st.sampled_from(
        [
            "1570001049",
            "1570001049.5",
            "2019-10-02T07:24:09Z",
            "2019-10-02 07:24",
            "1.57e9",
            " 12 ",
            "",
            "x",
            "2019-02-30",
        ]
    ),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
)


def expected(value: Any) -> tuple[bool, int | None]:
    parsed = parse_timestamp_value(value)
    if parsed is None or parsed < 0 or parsed > RECEIVE + SKEW:
        return False, None
    return True, parsed


@settings(max_examples=60, deadline=None)
@given(st.lists(values, min_size=1, max_size=12))
def test_batch_parsing_equals_one_by_one(stamps: list[Any]) -> None:
    commands = [
        {
            "name": "customers",
            "data": {
                "customer_ids": {"registered": f"u{i}"},
                "properties": {"p": i},
                "update_timestamp": v,
            },
        }
        for i, v in enumerate(stamps)
    ]
    tb = parse_commands({"commands": commands}, receive_us=RECEIVE, max_future_skew_us=SKEW)
    ts_by_row = dict(
        zip(tb.batch.cells["row_nr"].to_list(), tb.batch.cells["update_ts"].to_list(), strict=True)
    )
    for i, v in enumerate(stamps, start=1):
        ok, ts = expected(v)
        assert tb.results[i - 1]["success"] is ok, (v, tb.results[i - 1])
        assert ts_by_row.get(i) == ts, v
