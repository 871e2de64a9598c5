"""Vectorised timestamp parsing and formatting.

propsync stores every property update time as an ``Int64`` count of
microseconds since the UNIX epoch ("us"). This module turns whatever arrives
in snapshot files or tracking calls into that representation, entirely with
Polars expressions (no per-row Python), and formats it back.

Accepted inputs (anything else, and empty or whitespace-only text, -> null):

* integers: UNIX seconds; floats: UNIX seconds rounded to the nearest
  microsecond (half away from zero); NaN/inf/out of range -> null.
* ``Datetime`` (any unit): tz-aware values are exact instants; naive values
  are wall-clock times in ``timezone``. ``Date``: midnight in ``timezone``.
* text (surrounding whitespace ignored):

  - numeric UNIX seconds, ``[+-]digits[.digits]``, any number of fraction
    digits, or scientific notation such as ``1.570001049e9`` (parsed as a
    float and rounded to the microsecond);
  - ISO 8601-like ``YYYY-M[M]-D[D]`` optionally followed by ``T`` or spaces
    and ``H[H]:MM[:SS[.f]]`` (1-9 fraction digits, ``.`` or ``,``) and an
    optional offset ``Z``, ``UTC``, ``+HH:MM``, ``+HHMM`` or ``+HH`` (also
    ``-``). Invalid calendar/clock values (month 13, Feb 30, 24:00) -> null.
    Without an offset the time is a wall-clock time in ``timezone``.

Rounding: digits beyond the microsecond are rounded half-up, exactly (integer
arithmetic on the digits, never floats). For numeric text the magnitude is
rounded, i.e. ``-1.0000005`` -> ``-1000001`` us (like ``decimal.ROUND_HALF_UP``);
ISO fractions and nanosecond datetimes round towards the later instant.

Wall-clock times in a zone with DST transitions:

* ambiguous (fall back, the hour occurs twice): the earlier instant, i.e. the
  first occurrence, still on summer time (like ``fold=0`` in zoneinfo).
* non-existent (spring forward gap): the wall time is read with the UTC offset
  in force just before the transition, i.e. shifted forward by the gap:
  Europe/Prague 2021-03-28 02:30 -> 01:30 UTC (= 03:30 CEST).
"""

from __future__ import annotations

import datetime as dt
import time
from functools import lru_cache
from typing import Final

import polars as pl

US_PER_SECOND: Final = 1_000_000
_US_PER_DAY: Final = 86_400 * US_PER_SECOND
_I64_MAX: Final = 2**63 - 1
# Leaves room for the fraction and for rounding up without Int64 overflow.
_MAX_SECONDS: Final = _I64_MAX // US_PER_SECOND - 1
# Wall-clock values further out than this cannot take a UTC offset safely.
_MAX_WALL_US: Final = _I64_MAX - 2 * _US_PER_DAY

# [0-9], not \d: Rust regex \d also matches non-ASCII digits.
_NUMERIC_RE: Final = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$"
_SCIENTIFIC_RE: Final = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+$"
_ISO_RE: Final = (
    r"^(?<y>[0-9]{4})-(?<mo>[0-9]{1,2})-(?<d>[0-9]{1,2})"
    r"(?:(?:[Tt]| +)(?<h>[0-9]{1,2}):(?<mi>[0-9]{2})"
    r"(?::(?<s>[0-9]{2})(?:[.,](?<f>[0-9]{1,9}))?)?"
    r"(?: *(?:(?<z>[Zz]|UTC)|(?<osign>[+-])(?<oh>[0-9]{2})(?::?(?<om>[0-9]{2}))?))?)?$"
)
# The common zero-padded subset of _ISO_RE, split by position instead of by
# regex captures (several times faster).
_ISO_FAST_RE: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:[.,][0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?$"
)


def now_us() -> int:
    """Return the current time in microseconds since the UNIX epoch."""
    return time.time_ns() // 1000


def parse_timestamps(s: pl.Series, timezone: str = "UTC") -> pl.Series:
    """Parse ``s`` into an Int64 Series of microseconds since the epoch.

    The result has the same length and name as ``s``; null marks input that
    is null, blank or unparseable. ``timezone`` applies to wall-clock inputs
    (naive datetimes, dates, ISO text without offset). Raises ``ValueError``
    for an unknown time zone.
    """
    _check_timezone(timezone)
    dtype = s.dtype
    if dtype == pl.String:
        out = _parse_strings(s, timezone)
    elif isinstance(dtype, pl.Datetime):
        us = _to_us(s.to_physical(), dtype.time_unit)
        out = us if dtype.time_zone is not None else _wall_to_utc(us, timezone)
    elif dtype == pl.Date:
        days = s.to_physical().cast(pl.Int64)
        out = _wall_to_utc(days * _US_PER_DAY, timezone)
    elif dtype.is_integer():
        seconds = s.cast(pl.Int64, strict=False)
        out = _eval(_seconds_to_us(pl.col("x")), seconds)
    elif dtype.is_float():
        out = _eval(_float_seconds_to_us(pl.col("x")), s.cast(pl.Float64))
    else:
        out = pl.Series(values=[None] * len(s), dtype=pl.Int64)
    return out.cast(pl.Int64).rename(s.name)


def parse_timestamp_value(value: object, timezone: str = "UTC") -> int | None:
    """Parse one value with exactly the rules of :func:`parse_timestamps`."""
    series: pl.Series
    if value is None or isinstance(value, bool):
        _check_timezone(timezone)
        return None
    if isinstance(value, int):
        if not -_I64_MAX <= value <= _I64_MAX:
            _check_timezone(timezone)
            return None
        series = pl.Series(values=[value], dtype=pl.Int64)
    elif isinstance(value, float):
        series = pl.Series(values=[value], dtype=pl.Float64)
    elif isinstance(value, str):
        series = pl.Series(values=[value], dtype=pl.String)
    elif isinstance(value, dt.datetime):
        if value.utcoffset() is None:
            series = pl.Series(values=[value], dtype=pl.Datetime("us"))
        else:
            utc = value.astimezone(dt.UTC).replace(tzinfo=None)
            series = pl.Series(values=[utc], dtype=pl.Datetime("us"))
            series = series.dt.replace_time_zone("UTC")
    elif isinstance(value, dt.date):
        series = pl.Series(values=[value], dtype=pl.Date)
    else:
        series = pl.Series(values=[None], dtype=pl.Null)
    result = parse_timestamps(series, timezone)[0]
    return None if result is None else int(result)


def format_timestamp(us: int) -> str:
    """Format microseconds as decimal UNIX seconds without trailing zeros."""
    sign = "-" if us < 0 else ""
    seconds, fraction = divmod(abs(us), US_PER_SECOND)
    if fraction == 0:
        return f"{sign}{seconds}"
    return f"{sign}{seconds}.{fraction:06d}".rstrip("0")


def format_timestamp_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`format_timestamp` over an Int64 microseconds expression."""
    # Floor division/modulo avoid abs(), which overflows for Int64 min.
    quotient = expr // US_PER_SECOND
    remainder = expr % US_PER_SECOND
    negative = expr < 0
    seconds = (
        pl.when(negative & (remainder > 0))
        .then(-quotient - 1)
        .when(negative)
        .then(-quotient)
        .otherwise(quotient)
    )
    fraction = pl.when(negative).then((US_PER_SECOND - remainder) % US_PER_SECOND).otherwise(remainder)
    fraction_text = pl.when(fraction > 0).then(
        pl.lit(".") + fraction.cast(pl.String).str.zfill(6).str.strip_chars_end("0")
    )
    return pl.concat_str(
        pl.when(negative).then(pl.lit("-")).otherwise(pl.lit("")),
        seconds.cast(pl.String),
        fraction_text.fill_null(""),
    )


@lru_cache(maxsize=64)
def _check_timezone(timezone: str) -> None:
    probe = pl.Series(values=[0], dtype=pl.Datetime("us"))
    try:
        probe.dt.replace_time_zone(timezone)
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"unknown time zone: {timezone!r}") from exc


def _eval(expr: pl.Expr, x: pl.Series) -> pl.Series:
    return pl.DataFrame({"x": x}).select(expr).to_series()


def _seconds_to_us(seconds: pl.Expr) -> pl.Expr:
    in_range = seconds.is_between(-_MAX_SECONDS, _MAX_SECONDS)
    return pl.when(in_range).then(seconds * US_PER_SECOND)


def _float_seconds_to_us(seconds: pl.Expr) -> pl.Expr:
    rounded = (seconds * US_PER_SECOND).round(0, mode="half_away_from_zero")
    # Non-strict cast: NaN, inf and out-of-range values become null.
    return rounded.cast(pl.Int64, strict=False)


def _to_us(physical: pl.Series, time_unit: str) -> pl.Series:
    x = pl.col("x")
    if time_unit == "ms":
        factor = 1000
        expr = pl.when(x.is_between(-_I64_MAX // factor, _I64_MAX // factor)).then(x * factor)
    elif time_unit == "ns":
        # Half-up towards the later instant, written so it cannot overflow.
        expr = x // 1000 + (x % 1000 >= 500).cast(pl.Int64)
    else:
        expr = x
    return _eval(expr, physical)


def _wall_to_utc(wall_us: pl.Series, timezone: str) -> pl.Series:
    """Interpret wall-clock microseconds in ``timezone`` (DST rules in module doc)."""
    if timezone == "UTC":
        return wall_us
    wall_us = _eval(pl.when(pl.col("x").is_between(-_MAX_WALL_US, _MAX_WALL_US)).then(pl.col("x")), wall_us)
    wall = wall_us.cast(pl.Datetime("us"))
    utc = wall.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    utc_us = utc.to_physical()
    gap = utc_us.is_null() & wall_us.is_not_null()
    if gap.any():
        # Offset in force a few hours before the gap; transitions are further apart.
        idx = gap.arg_true()
        before = (wall.gather(idx) - dt.timedelta(hours=6)).dt.replace_time_zone(
            timezone, ambiguous="earliest", non_existent="null"
        )
        offset = (before.dt.base_utc_offset() + before.dt.dst_offset()).dt.total_microseconds()
        utc_us = utc_us.scatter(idx, wall_us.gather(idx) - offset)
    return utc_us


def _parse_strings(s: pl.Series, timezone: str) -> pl.Series:
    text = pl.col("t")
    frame = pl.DataFrame({"t": s.str.strip_chars()}).with_columns(
        numeric=text.str.contains(_NUMERIC_RE),
        scientific=text.str.contains(_SCIENTIFIC_RE),
        iso_fast=text.str.contains(_ISO_FAST_RE),
    )
    frame = frame.with_columns(
        iso=text.is_not_null() & ~(pl.col("numeric") | pl.col("scientific") | pl.col("iso_fast"))
    )
    paths = {
        "numeric": _numeric_text_to_us,
        "scientific": lambda t: _eval(_float_seconds_to_us(pl.col("x").cast(pl.Float64)), t),
        "iso_fast": lambda t: _iso_to_us(_iso_fast_components(t), timezone),
        "iso": lambda t: _iso_to_us(_iso_regex_components(t), timezone),
    }
    # Each path only sees its own rows (others masked to null) and is skipped
    # entirely when no row needs it, which keeps homogeneous columns cheap.
    results = [
        parse(frame.select(pl.when(pl.col(name)).then(text)).to_series())
        for name, parse in paths.items()
        if frame[name].any()
    ]
    if not results:
        return pl.Series(values=[None] * len(s), dtype=pl.Int64)
    return pl.select(pl.coalesce([pl.lit(r) for r in results])).to_series()


def _numeric_text_to_us(text: pl.Series) -> pl.Series:
    body, dot = pl.col("body"), pl.col("dot")
    frame = (
        pl.DataFrame({"t": text})
        .select(negative=pl.col("t").str.starts_with("-"), body=pl.col("t").str.strip_chars_start("+-"))
        .with_columns(dot=body.str.find(".", literal=True))
        .select(
            "negative",
            # A null slice length means "to the end", i.e. no dot.
            int_text=body.str.slice(0, dot).str.strip_chars_start("0"),
            # 7 digits: the 7th decides half-up rounding, later ones cannot matter.
            seven=body.str.slice(dot + 1, 7).fill_null("").str.pad_end(7, "0").cast(pl.Int64),
        )
        .with_columns(
            seconds=pl.when(pl.col("int_text") == "")
            .then(0)
            .otherwise(pl.col("int_text").str.to_integer(strict=False))
        )
    )
    seconds = pl.col("seconds")
    magnitude = pl.when(seconds <= _MAX_SECONDS).then(seconds * US_PER_SECOND + (pl.col("seven") + 5) // 10)
    return frame.select(pl.when(pl.col("negative")).then(-magnitude).otherwise(magnitude)).to_series()


def _iso_fast_components(text: pl.Series) -> pl.DataFrame:
    t = pl.col("t")
    frame = pl.DataFrame({"t": text}).select(
        *[
            t.str.slice(start, length).cast(pl.Int64).alias(name)
            for name, start, length in [
                ("year", 0, 4),
                ("month", 5, 2),
                ("day", 8, 2),
                ("hour", 11, 2),
                ("minute", 14, 2),
                ("second", 17, 2),
            ]
        ],
        tail=t.str.slice(19),
    )
    # tail is "[.fraction][offset]"; the offset starts at the first non-digit.
    frame = frame.with_columns(offset=pl.col("tail").str.strip_chars_start(".,0123456789"))
    offset = pl.col("offset")
    is_utc = offset.is_in(["Z", "z"])
    return frame.select(
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        fraction=pl.col("tail").str.head(pl.col("tail").str.len_bytes() - offset.str.len_bytes()).str.slice(1),
        offset_sign=pl.when(is_utc).then(1).when(offset.str.starts_with("-")).then(-1).when(offset != "").then(1),
        offset_hours=pl.when(is_utc).then(0).otherwise(offset.str.slice(1, 2).cast(pl.Int64, strict=False)),
        offset_minutes=pl.when(offset.str.len_bytes() >= 5).then(offset.str.slice(-2).cast(pl.Int64)).otherwise(0),
    )


def _iso_regex_components(text: pl.Series) -> pl.DataFrame:
    groups = pl.DataFrame({"t": text}).select(pl.col("t").str.extract_groups(_ISO_RE)).unnest("t")

    def number(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.Int64)

    has_utc = pl.col("z").is_not_null()
    return groups.select(
        year=number("y"),
        month=number("mo"),
        day=number("d"),
        hour=number("h").fill_null(0),
        minute=number("mi").fill_null(0),
        second=number("s").fill_null(0),
        fraction=pl.col("f").fill_null(""),
        offset_sign=pl.when(has_utc).then(1).when(pl.col("osign") == "-").then(-1).when(pl.col("osign") == "+").then(1),
        offset_hours=pl.when(has_utc).then(0).otherwise(number("oh")),
        offset_minutes=number("om").fill_null(0),
    )


def _iso_to_us(components: pl.DataFrame, timezone: str) -> pl.Series:
    """Validate ISO components and combine them into UTC microseconds."""
    year, month, day = pl.col("year"), pl.col("month"), pl.col("day")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_month = (
        pl.when(month == 2)
        .then(28 + leap.cast(pl.Int64))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    valid = (
        month.is_between(1, 12)
        & day.is_between(1, days_in_month)
        & (pl.col("hour") <= 23)
        & (pl.col("minute") <= 59)
        & (pl.col("second") <= 59)
        & (pl.col("offset_hours").is_null() | (pl.col("offset_hours") <= 23))
        & (pl.col("offset_minutes") <= 59)
    )
    # days_from_civil (H. Hinnant); the year is >= 0 so // is plain division.
    y = year - (month <= 2).cast(pl.Int64)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * (month + pl.when(month > 2).then(-3).otherwise(9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146_097 + day_of_era - 719_468
    seconds_of_day = pl.col("hour") * 3600 + pl.col("minute") * 60 + pl.col("second")
    nanos = pl.col("fraction").str.pad_end(9, "0").cast(pl.Int64)
    wall = days * _US_PER_DAY + seconds_of_day * US_PER_SECOND + (nanos + 500) // 1000
    offset = pl.col("offset_sign") * (pl.col("offset_hours") * 3600 + pl.col("offset_minutes") * 60) * US_PER_SECOND
    parts = components.select(wall=pl.when(valid).then(wall), offset=offset)
    fixed = parts.select(pl.col("wall") - pl.col("offset")).to_series()
    local = parts.select(pl.when(pl.col("offset").is_null()).then(pl.col("wall"))).to_series()
    if local.null_count() == len(local):
        return fixed
    return fixed.fill_null(_wall_to_utc(local, timezone))
