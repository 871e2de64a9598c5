"""Tests for propsync.timestamps: parsing to exact microseconds and formatting back."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from propsync.timestamps import (
    format_timestamp,
    format_timestamp_expr,
    now_us,
    parse_timestamp_value,
    parse_timestamps,
)

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
DST_ZONES = ["Europe/Prague", "America/New_York", "Australia/Lord_Howe"]


def us_of(instant: dt.datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime (integer arithmetic)."""
    delta = instant - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> int:
    return us_of(dt.datetime(year, month, day, hour, minute, second, us, tzinfo=UTC))


def wall_reference(naive: dt.datetime, timezone: str) -> int:
    """Reference rule via zoneinfo: fold=0 picks the earlier instant of an ambiguous time and,
    for a time in a spring-forward gap, the offset in force before the gap (PEP 495)."""
    return us_of(naive.replace(tzinfo=ZoneInfo(timezone), fold=0))


def parse_text(values: Sequence[str | None], timezone: str = "UTC") -> list[int | None]:
    return parse_timestamps(pl.Series("ts", values, dtype=pl.String), timezone).to_list()


def parse_one(value: str, timezone: str = "UTC") -> int | None:
    return parse_text([value], timezone)[0]


def decimal_reference(text: str) -> int:
    with localcontext(prec=100):
        return int((Decimal(text) * 1_000_000).to_integral_value(rounding=ROUND_HALF_UP))


# --- numeric text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1570001049", 1_570_001_049_000_000),
        ("1570001049.25", 1_570_001_049_250_000),
        ("1570001049.000001", 1_570_001_049_000_001),
        ("1570001049.1234567", 1_570_001_049_123_457),
        ("1570001049.1234565", 1_570_001_049_123_457),  # exact half rounds up
        ("1570001049.12345649999", 1_570_001_049_123_456),  # just below half
        ("1570001049.9999995", 1_570_001_050_000_000),  # carries into the seconds
        ("+1570001049", 1_570_001_049_000_000),
        ("-1.5", -1_500_000),
        ("-1.0000005", -1_000_001),  # magnitude rounds half up
        ("-0", 0),
        ("0", 0),
        ("007", 7_000_000),
        ("0000000000000000000000001570001049", 1_570_001_049_000_000),
        (".5", 500_000),
        ("5.", 5_000_000),
        ("9223372036853.999999", 9_223_372_036_853_999_999),
        ("9223372036854.775807", I64_MAX),
        ("-9223372036854.775807", -I64_MAX),
        ("1.570001049e9", 1_570_001_049_000_000),
        ("1570001049E0", 1_570_001_049_000_000),
        ("-1.5e0", -1_500_000),
        ("2.5e-1", 250_000),
        ("+15.7e8", 1_570_000_000_000_000),
        ("1.e5", 100_000_000_000),
        ("1E+05", 100_000_000_000),
        ("  1570001049 ", 1_570_001_049_000_000),
        ("\t1570001049.5\n", 1_570_001_049_500_000),
    ],
)
def test_numeric_text(text: str, expected: int) -> None:
    assert parse_one(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\t\n",
        "abc",
        "1570001049abc",
        "1,5",
        "1 5",
        "--1",
        "+-1",
        "+",
        ".",
        "1..5",
        "1e",
        "e5",
        "1e400",
        "nan",
        "inf",
        "0x10",
        "١٥٧٠٠٠١٠٤٩",  # non-ASCII digits
        "9223372036855",  # microseconds would overflow Int64
        "9223372036854.775808",
        "9223372036854.7758075",
        "99999999999999999999999",
    ],
)
def test_unparseable_text_is_null(text: str) -> None:
    assert parse_one(text) is None


@given(
    sign=st.sampled_from(["", "+", "-"]),
    seconds=st.integers(0, 9_223_372_036_853),
    fraction=st.none() | st.text("0123456789", max_size=15),
)
def test_numeric_text_matches_decimal_half_up(
    sign: str, seconds: int, fraction: str | None
) -> None:
    text = f"{sign}{seconds}" if fraction is None else f"{sign}{seconds}.{fraction}"
    assert parse_one(text) == decimal_reference(text)


# --- ISO 8601 text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-10-02T07:24:09Z", utc(2019, 10, 2, 7, 24, 9)),
        ("2019-10-02t07:24:09z", utc(2019, 10, 2, 7, 24, 9)),
        ("2019-10-02 07:24:09Z", utc(2019, 10, 2, 7, 24, 9)),
        ("2019-10-02   07:24:09", utc(2019, 10, 2, 7, 24, 9)),
        ("2019-10-02 07:24:09 UTC", utc(2019, 10, 2, 7, 24, 9)),
        ("2019-10-02T07:24:09+02:00", utc(2019, 10, 2, 5, 24, 9)),
        ("2019-10-02T07:24:09+0200", utc(2019, 10, 2, 5, 24, 9)),
        ("2019-10-02T07:24:09+02", utc(2019, 10, 2, 5, 24, 9)),
        ("2019-10-02T07:24:09-05:30", utc(2019, 10, 2, 12, 54, 9)),
        ("2019-10-02T07:24:09-0530", utc(2019, 10, 2, 12, 54, 9)),
        ("2019-10-02T07:24:09-05", utc(2019, 10, 2, 12, 24, 9)),
        ("2019-10-02 07:24:09 +01:00", utc(2019, 10, 2, 6, 24, 9)),
        ("2019-10-02T07:24:09.5Z", utc(2019, 10, 2, 7, 24, 9, 500_000)),
        ("2019-10-02T07:24:09,5Z", utc(2019, 10, 2, 7, 24, 9, 500_000)),
        ("2019-10-02T07:24:09.123456+02:00", utc(2019, 10, 2, 5, 24, 9, 123_456)),
        ("2019-10-02T07:24:09.123456789Z", utc(2019, 10, 2, 7, 24, 9, 123_457)),
        ("2019-10-02T07:24:09.1234565", utc(2019, 10, 2, 7, 24, 9, 123_457)),
        ("2019-10-02T07:24:09.1234564", utc(2019, 10, 2, 7, 24, 9, 123_456)),
        ("2019-12-31T23:59:59.9999995Z", utc(2020, 1, 1)),
        ("1969-12-31T23:59:59.9999995Z", 0),
        ("1969-12-31T23:59:59Z", -1_000_000),
        ("2019-10-02T07:24", utc(2019, 10, 2, 7, 24)),
        ("2019-10-02T7:24", utc(2019, 10, 2, 7, 24)),
        ("2019-10-02T07:24Z", utc(2019, 10, 2, 7, 24)),
        ("2018-8-5 12:20:25", utc(2018, 8, 5, 12, 20, 25)),
        ("2018-8-5 2:20:25.25+01:00", utc(2018, 8, 5, 1, 20, 25, 250_000)),
        ("2018-08-05", utc(2018, 8, 5)),
        ("2018-8-5", utc(2018, 8, 5)),
        ("2020-02-29T00:00:00Z", utc(2020, 2, 29)),
        ("2000-02-29", utc(2000, 2, 29)),
        ("0001-01-01", utc(1, 1, 1)),
        ("0000-12-31T00:00:00Z", utc(1, 1, 1) - 86_400_000_000),
        ("9999-12-31T23:59:59.999999Z", utc(9999, 12, 31, 23, 59, 59, 999_999)),
        ("2019-10-02T00:00:00+23:59", utc(2019, 10, 1, 0, 1)),
        ("  2019-10-02T07:24:09Z\t", utc(2019, 10, 2, 7, 24, 9)),
    ],
)
def test_iso_text(text: str, expected: int) -> None:
    assert parse_one(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2019-13-01",
        "2019-00-10",
        "2019-10-00",
        "2019-10-32",
        "2019-02-29",
        "1900-02-29",
        "2019-04-31",
        "2019-02-30T00:00:00Z",
        "2019-10-02T25:00:00",
        "2019-10-02T24:00:00",
        "2019-10-02T07:60:00",
        "2019-10-02T07:24:60",
        "2019-10-02T07",
        "2019-10-02T07:24:09+24:00",
        "2019-10-02T07:24:09+02:60",
        "2019-10-02T07:24:09+2",
        "2019-10-02T07:24:09.Z",
        "2019-10-02T07:24:09.1234567890Z",
        "2019-10-02X07:24:09",
        "2019-10-02T07:24:09Z junk",
        "19-10-02",
        "2019/10/02",
        "02.10.2019",
    ],
)
def test_invalid_iso_is_null(text: str) -> None:
    assert parse_one(text) is None
    assert parse_one(text, "Europe/Prague") is None


def test_iso_without_offset_uses_timezone_and_offset_wins() -> None:
    values = ["2019-10-02 07:24:09", "2019-10-02T07:24:09Z", "2019-1-2 07:24", "2019-01-02"]
    assert parse_text(values, "Europe/Prague") == [
        utc(2019, 10, 2, 5, 24, 9),  # CEST
        utc(2019, 10, 2, 7, 24, 9),
        utc(2019, 1, 2, 6, 24),  # CET
        utc(2019, 1, 1, 23),
    ]
    assert parse_text(values[:1], "America/New_York") == [utc(2019, 10, 2, 11, 24, 9)]


def test_mixed_column_keeps_order_name_and_length() -> None:
    values = [
        "1570001049.5",
        None,
        "2019-10-02T07:24:09Z",
        " ",
        "1.5e1",
        "garbage",
        "2019-10-2 07:24:09+01:00",
        "2019-10-02 07:24:09",
    ]
    result = parse_timestamps(pl.Series("update_timestamp", values), "Europe/Prague")
    assert result.name == "update_timestamp"
    assert result.dtype == pl.Int64
    assert result.to_list() == [
        1_570_001_049_500_000,
        None,
        utc(2019, 10, 2, 7, 24, 9),
        None,
        15_000_000,
        None,
        utc(2019, 10, 2, 6, 24, 9),
        utc(2019, 10, 2, 5, 24, 9),
    ]


def test_empty_and_all_null_series() -> None:
    assert parse_timestamps(pl.Series("x", [], dtype=pl.String)).to_list() == []
    assert parse_timestamps(pl.Series("x", [None, None], dtype=pl.String)).to_list() == [None, None]


# --- DST rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "wall", "expected"),
    [
        # spring-forward gaps: read with the offset before the transition
        ("Europe/Prague", "2021-03-28 02:30", utc(2021, 3, 28, 1, 30)),
        ("Europe/Prague", "2021-03-28 02:00", utc(2021, 3, 28, 1)),
        ("America/New_York", "2021-03-14 02:30", utc(2021, 3, 14, 7, 30)),
        ("Australia/Lord_Howe", "2021-10-03 02:15", utc(2021, 10, 2, 15, 45)),  # +10:30 before
        # fall-back ambiguity: the earlier instant (still summer time)
        ("Europe/Prague", "2021-10-31 02:30", utc(2021, 10, 31, 0, 30)),
        ("America/New_York", "2021-11-07 01:30", utc(2021, 11, 7, 5, 30)),
        ("Australia/Lord_Howe", "2021-04-04 01:45", utc(2021, 4, 3, 14, 45)),  # +11 first
        # just outside the transitions
        ("Europe/Prague", "2021-03-28 03:00", utc(2021, 3, 28, 1)),
        ("Europe/Prague", "2021-03-28 01:59:59.999", utc(2021, 3, 28, 0, 59, 59, 999_000)),
        ("Europe/Prague", "2021-10-31 03:00", utc(2021, 10, 31, 2)),
        ("Australia/Lord_Howe", "2021-10-03 02:30", utc(2021, 10, 2, 15, 30)),
    ],
)
def test_dst_rules(timezone: str, wall: str, expected: int) -> None:
    naive = dt.datetime.fromisoformat(wall)
    assert wall_reference(naive, timezone) == expected  # the reference agrees with the constant
    assert parse_one(wall, timezone) == expected
    for unit in ("ns", "us", "ms"):
        series = pl.Series([naive], dtype=pl.Datetime(unit))
        assert parse_timestamps(series, timezone).to_list() == [expected]
    assert parse_timestamp_value(naive, timezone) == expected


@lru_cache
def transition_walls(timezone: str) -> list[dt.datetime]:
    """Wall-clock times right after each UTC offset change in 1990-2036."""
    zone = ZoneInfo(timezone)
    step = dt.timedelta(minutes=15)
    walls = []
    day = dt.datetime(1990, 1, 1, tzinfo=UTC)
    while day.year < 2037:
        nxt = day + dt.timedelta(days=1)
        if day.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            instant = day
            while instant.astimezone(zone).utcoffset() == day.astimezone(zone).utcoffset():
                instant += step
            walls.append(instant.astimezone(zone).replace(tzinfo=None))
        day = nxt
    return walls


def test_transition_walls_found() -> None:
    # two changes a year for 47 years; guards the Hypothesis strategy below
    for timezone in DST_ZONES:
        assert len(transition_walls(timezone)) == 94


@st.composite
def zone_and_walls(draw: st.DrawFn) -> tuple[str, list[dt.datetime]]:
    timezone = draw(st.sampled_from(DST_ZONES))
    near_transition = st.builds(
        lambda wall, shift: wall + dt.timedelta(microseconds=shift),
        st.sampled_from(transition_walls(timezone)),
        st.integers(-3 * 3_600_000_000, 3 * 3_600_000_000),
    )
    anywhere = st.datetimes(dt.datetime(1990, 1, 2), dt.datetime(2036, 12, 30))
    walls = draw(st.lists(near_transition | anywhere, min_size=1, max_size=40))
    return timezone, walls


@settings(deadline=None)
@given(zone_and_walls())
def test_naive_wall_times_match_zoneinfo_reference(case: tuple[str, list[dt.datetime]]) -> None:
    timezone, walls = case
    expected = [wall_reference(wall, timezone) for wall in walls]
    as_text = [f"{wall:%Y-%m-%d %H:%M:%S.%f}" for wall in walls]
    assert parse_text(as_text, timezone) == expected
    as_datetimes = pl.Series(walls, dtype=pl.Datetime("us"))
    assert parse_timestamps(as_datetimes, timezone).to_list() == expected


# --- aware ISO round trip ------------------------------------------------------------------


@st.composite
def iso_texts(draw: st.DrawFn) -> tuple[str, int]:
    minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    zone = dt.timezone(dt.timedelta(minutes=minutes))
    naive = draw(st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2100, 12, 31)))
    instant = naive.replace(tzinfo=zone)
    offset_styles = ["+HH:MM", "+HHMM", "Z"] + (["+HH"] if minutes % 60 == 0 else [])
    offset_style = draw(st.sampled_from(offset_styles))
    if offset_style == "Z":
        instant = instant.astimezone(UTC)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    offset = {
        "+HH:MM": f"{sign}{hours:02d}:{mins:02d}",
        "+HHMM": f"{sign}{hours:02d}{mins:02d}",
        "+HH": f"{sign}{hours:02d}",
        "Z": "Z",
    }[offset_style]
    separator = draw(st.sampled_from(["T", " "]))
    fraction = f"{instant.microsecond:06d}"
    fraction = draw(st.sampled_from([f".{fraction}", f".{fraction.rstrip('0') or '0'}"]))
    if instant.microsecond == 0:
        fraction = draw(st.sampled_from(["", fraction]))
    if draw(st.booleans()):  # non-padded variant, parsed by the general (regex) path
        date = f"{instant.year}-{instant.month}-{instant.day}"
        clock = f"{instant.hour}:{instant.minute:02d}:{instant.second:02d}"
    else:
        date, clock = f"{instant:%Y-%m-%d}", f"{instant:%H:%M:%S}"
    return f"{date}{separator}{clock}{fraction}{offset}", us_of(instant)


@settings(deadline=None)
@given(st.lists(iso_texts(), min_size=1, max_size=30))
def test_aware_iso_texts_parse_to_exact_instant(cases: list[tuple[str, int]]) -> None:
    texts = [text for text, _ in cases]
    # the time zone must not matter when an offset is given
    assert parse_text(texts, "America/New_York") == [expected for _, expected in cases]


# --- other dtypes --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt64])
def test_integer_seconds(dtype: pl.DataType) -> None:
    series = pl.Series("t", [0, 100, None], dtype=dtype)
    assert parse_timestamps(series).to_list() == [0, 100_000_000, None]


def test_integer_seconds_range() -> None:
    series = pl.Series([1_570_001_049, -1, 9_223_372_036_854, 9_223_372_036_855, I64_MIN])
    assert parse_timestamps(series).to_list() == [
        1_570_001_049_000_000,
        -1_000_000,
        9_223_372_036_854_000_000,
        None,
        None,
    ]
    assert parse_timestamps(pl.Series([2**64 - 1], dtype=pl.UInt64)).to_list() == [None]


def test_float_seconds() -> None:
    series = pl.Series(
        "t", [1_570_001_049.25, 1.5, -1.5, 1e-6, 4e-7, float("nan"), float("inf"), -1e30, None]
    )
    assert parse_timestamps(series).to_list() == [
        1_570_001_049_250_000,
        1_500_000,
        -1_500_000,
        1,
        0,
        None,
        None,
        None,
        None,
    ]
    assert parse_timestamps(pl.Series([0.25], dtype=pl.Float32)).to_list() == [250_000]


@pytest.mark.parametrize(
    "series",
    [
        pl.Series([True, False, None]),
        pl.Series([None, None, None], dtype=pl.Null),
        pl.Series([dt.time(1), dt.time(2), None]),
        pl.Series([[1], [2], None]),
        pl.Series(["1", "2", None], dtype=pl.Categorical),
    ],
)
def test_other_dtypes_are_null(series: pl.Series) -> None:
    assert parse_timestamps(series).to_list() == [None, None, None]


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
def test_aware_datetimes_are_exact_instants(unit: Literal["ns", "us", "ms"]) -> None:
    instant = dt.datetime(2021, 3, 28, 2, 30, 0, 123_000, tzinfo=UTC)
    series = pl.Series([instant, None], dtype=pl.Datetime(unit, "UTC"))
    expected = [utc(2021, 3, 28, 2, 30, 0, 123_000), None]
    for zone in ("UTC", "America/New_York"):
        converted = series.dt.convert_time_zone(zone)
        assert parse_timestamps(converted, "Europe/Prague").to_list() == expected


def test_nanoseconds_round_half_up() -> None:
    nanos = pl.Series([1_499, 1_500, 2_500, -1_500, -1_501, None], dtype=pl.Int64)
    series = nanos.cast(pl.Datetime("ns", "UTC"))
    assert parse_timestamps(series).to_list() == [1, 2, 3, -1, -2, None]


def test_naive_datetimes_use_timezone() -> None:
    series = pl.Series([dt.datetime(2019, 10, 2, 7, 24, 9, 5), None], dtype=pl.Datetime("ms"))
    assert parse_timestamps(series).to_list() == [utc(2019, 10, 2, 7, 24, 9), None]
    series = pl.Series([dt.datetime(2019, 10, 2, 7, 24, 9, 5)], dtype=pl.Datetime("us"))
    assert parse_timestamps(series, "Europe/Prague").to_list() == [utc(2019, 10, 2, 5, 24, 9, 5)]


def test_dates_are_midnight_in_timezone() -> None:
    series = pl.Series("d", [dt.date(2021, 3, 28), dt.date(1969, 12, 31), None])
    assert parse_timestamps(series).to_list() == [utc(2021, 3, 28), -86_400_000_000, None]
    prague = parse_timestamps(series, "Europe/Prague")
    assert prague.name == "d"
    assert prague.to_list() == [utc(2021, 3, 27, 23), utc(1969, 12, 30, 23), None]


# --- single values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, None),
        (False, None),
        (1_570_001_049, 1_570_001_049_000_000),
        (9_223_372_036_853, 9_223_372_036_853_000_000),  # exact: no float round trip
        (9_223_372_036_855, None),
        (-5, -5_000_000),
        (10**20, None),
        (1_570_001_049.25, 1_570_001_049_250_000),
        (float("nan"), None),
        ("1570001049.1234565", 1_570_001_049_123_457),
        ("2019-10-02T07:24:09+02:00", utc(2019, 10, 2, 5, 24, 9)),
        ("  ", None),
        ("nope", None),
        (dt.datetime(2019, 10, 2, 7, 24, 9, 1, tzinfo=UTC), utc(2019, 10, 2, 7, 24, 9, 1)),
        (
            dt.datetime(2019, 10, 2, 7, 24, 9, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
            utc(2019, 10, 2, 10, 24, 9),
        ),
        (
            dt.datetime(2021, 10, 31, 2, 30, tzinfo=ZoneInfo("Europe/Prague"), fold=1),
            utc(2021, 10, 31, 1, 30),
        ),
        (dt.datetime(2019, 10, 2, 7, 24, 9), utc(2019, 10, 2, 7, 24, 9)),
        (dt.date(2019, 10, 2), utc(2019, 10, 2)),
        (Decimal("1.5"), None),
        ([1], None),
    ],
)
def test_parse_timestamp_value(value: object, expected: int | None) -> None:
    assert parse_timestamp_value(value) == expected


def test_parse_timestamp_value_timezone() -> None:
    assert parse_timestamp_value("2021-03-28 02:30", "Europe/Prague") == utc(2021, 3, 28, 1, 30)
    assert parse_timestamp_value(dt.date(2021, 7, 1), "America/New_York") == utc(2021, 7, 1, 4)
    assert parse_timestamp_value(1, "America/New_York") == 1_000_000


def test_invalid_timezone_raises_value_error() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        parse_timestamps(pl.Series(["2019-10-02"]), "Mars/Olympus")
    with pytest.raises(ValueError, match="Europe/Pragu"):
        parse_timestamp_value("1", "Europe/Pragu")


# --- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "0"),
        (1_570_001_049_000_000, "1570001049"),
        (1_570_001_049_250_000, "1570001049.25"),
        (1_570_001_049_000_001, "1570001049.000001"),
        (1, "0.000001"),
        (-1, "-0.000001"),
        (-500_000, "-0.5"),
        (-1_000_000, "-1"),
        (-1_500_000, "-1.5"),
        (I64_MAX, "9223372036854.775807"),
        (I64_MIN, "-9223372036854.775808"),
    ],
)
def test_format_timestamp(us: int, text: str) -> None:
    assert format_timestamp(us) == text
    frame = pl.DataFrame({"ts": pl.Series([us, None], dtype=pl.Int64)})
    formatted = frame.select(format_timestamp_expr(pl.col("ts")))
    assert formatted.columns == ["ts"]
    assert formatted["ts"].to_list() == [text, None]


@given(st.lists(st.integers(I64_MIN, I64_MAX) | st.integers(-(10**13), 10**13), max_size=50))
def test_format_expr_matches_format_timestamp(values: list[int]) -> None:
    series = pl.Series(values, dtype=pl.Int64)
    expected = [format_timestamp(v) for v in values]
    assert pl.select(format_timestamp_expr(pl.lit(series))).to_series().to_list() == expected
    # independent check: the exact decimal value in seconds, without trailing zeros
    for value, text in zip(values, expected, strict=True):
        assert Decimal(text) * 1_000_000 == value
        assert "." not in text or not text.endswith(("0", "."))


@given(st.integers(-I64_MAX, I64_MAX))
def test_format_then_parse_round_trips(us: int) -> None:
    assert parse_one(format_timestamp(us)) == us


def test_now_us() -> None:
    before = time.time_ns() // 1000
    now = now_us()
    after = time.time_ns() // 1000
    assert isinstance(now, int)
    assert before <= now <= after


def test_parquet_decimal_seconds_parse_exactly() -> None:
    s = pl.Series([Decimal("1570001049.250001"), Decimal("-1.5"), None], dtype=pl.Decimal(20, 6))
    assert parse_timestamps(s).to_list() == [1570001049_250001, -1_500000, None]


# Zero-padded UTC seconds ("2024-05-01T08:30:00Z"), valid or not (day 29-31 of short months).
utc_second_texts = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format,
    st.integers(0, 9999),
    st.integers(1, 12),
    st.integers(1, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)


@settings(deadline=None)
@given(
    st.lists(utc_second_texts, min_size=1, max_size=40),
    st.lists(st.sampled_from([None, "", " 2024-01-01T10:00:00Z", "2024-1-01T10:00:00Z", "12.5"])),
)
def test_utc_seconds_fast_path_agrees_with_the_component_paths(
    texts: list[str], others: list[str | None]
) -> None:
    from propsync.timestamps import _parse_general_strings

    for cells in (texts, texts + others):
        s = pl.Series("t", cells, dtype=pl.String)
        expected = _parse_general_strings(s, "Europe/Prague").cast(pl.Int64)
        assert parse_timestamps(s, "Europe/Prague").to_list() == expected.to_list()
