"""Timestamps as integer microseconds since the UNIX epoch, without Polars: the clock and the
text form. ``propsync.timestamps`` (Polars) re-exports them; a read imports only this module."""

from __future__ import annotations

import time
from typing import Final

US_PER_SECOND: Final = 1_000_000


def now_us() -> int:
    """Return the current time in microseconds since the UNIX epoch."""
    return time.time_ns() // 1000


def format_timestamp(us: int) -> str:
    """Format microseconds as decimal UNIX seconds without trailing zeros."""
    sign = "-" if us < 0 else ""
    seconds, fraction = divmod(abs(us), US_PER_SECOND)
    if fraction == 0:
        return f"{sign}{seconds}"
    return f"{sign}{seconds}.{fraction:06d}".rstrip("0")
