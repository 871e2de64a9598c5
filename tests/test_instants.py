"""propsync.instants: the clock and the text form of timestamps, without Polars (what a read
imports), the same functions propsync.timestamps re-exports."""

from __future__ import annotations

import time
from decimal import Decimal

from hypothesis import given, strategies as st

from propsync import instants, timestamps


def test_timestamps_re_exports_these_functions() -> None:
    assert timestamps.format_timestamp is instants.format_timestamp
    assert timestamps.now_us is instants.now_us


@given(st.integers(min_value=-(10**17), max_value=10**17))
def test_the_text_is_the_exact_decimal_in_seconds_without_trailing_zeros(us: int) -> None:
    text = instants.format_timestamp(us)
    assert Decimal(text) * 1_000_000 == us
    assert not ("." in text and text.endswith(("0", ".")))


def test_whole_seconds_print_as_integers() -> None:
    assert instants.format_timestamp(1570001049_000000) == "1570001049"
    assert instants.format_timestamp(1570001049_250000) == "1570001049.25"
    assert instants.format_timestamp(-1) == "-0.000001"


def test_now_is_the_wall_clock_in_microseconds() -> None:
    before = time.time_ns() // 1000
    now = instants.now_us()
    assert before <= now <= time.time_ns() // 1000
