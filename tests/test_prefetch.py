"""Running an iterator ahead of its consumer (propsync.prefetch): order, errors where they happen,
a bounded lead, a thread that stops when the consumer leaves; rows handed out across frames."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import polars as pl
import pytest

from propsync.prefetch import Prefetched, RowFeed
from tests.helpers import wait_for


def test_items_arrive_in_order_and_the_end_stays_the_end() -> None:
    with Prefetched(iter(range(100)), depth=3) as items:
        assert list(items) == list(range(100))
        assert next(items, "end") == "end"  # a second look at the end ends too
        assert next(items, "end") == "end"


def test_an_error_of_the_source_is_raised_where_the_consumer_reaches_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("row 3 is broken")

    got: list[int] = []
    with Prefetched(source()) as items, pytest.raises(ValueError, match="row 3 is broken"):
        for item in items:
            got.append(item)
    assert got == [1, 2]


def test_the_source_runs_at_most_depth_items_ahead() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    with Prefetched(source(), depth=4) as items:
        # The queue holds 4; the thread holds a fifth while it waits for room.
        wait_for(lambda: len(produced) == 5)
        time.sleep(0.2)
        assert len(produced) == 5
        assert next(items) == 0
        wait_for(lambda: len(produced) == 6)


def test_leaving_early_stops_the_thread() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    before = set(threading.enumerate())
    with Prefetched(endless(), name="endless-prefetch") as items:
        assert next(items) == 0
        (thread,) = set(threading.enumerate()) - before
        assert thread.name == "endless-prefetch" and thread.is_alive()
    assert not thread.is_alive()


def test_a_row_feed_hands_out_rows_across_frame_boundaries() -> None:
    frames = [pl.DataFrame({"n": list(range(a, b))}) for a, b in ((0, 3), (3, 5), (5, 9))]
    feed = RowFeed(iter(frames), name="feed")
    try:
        first = feed.take(4)
        assert first is not None and first["n"].to_list() == [0, 1, 2, 3]
        assert not feed.exhausted()
        second = feed.take(5)
        assert second is not None and second["n"].to_list() == [4, 5, 6, 7, 8]
        assert feed.exhausted()
        assert feed.take(1) is None
    finally:
        feed.close()


def test_a_row_feed_gives_nothing_when_fewer_rows_are_left_than_asked() -> None:
    feed = RowFeed(iter([pl.DataFrame({"n": [1, 2]})]), name="feed")
    try:
        assert feed.take(3) is None
        assert not feed.exhausted()  # the two rows are still there
        rest = feed.take(2)
        assert rest is not None and rest["n"].to_list() == [1, 2]
        assert feed.exhausted()
    finally:
        feed.close()
