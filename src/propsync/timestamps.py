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
  ``Decimal``: exact UNIX seconds. Other dtypes (Boolean, Categorical, ...) -> null.
* text (surrounding whitespace ignored):

  - numeric UNIX seconds, ``[+-]digits[.digits]``, any number of fraction
    digits, or scientific notation such as ``1.570001049e9`` (parsed as a
    float and rounded to the microsecond);
  - ISO 8601-like ``YYYY-M[M]-D[D]`` optionally followed by ``T`` or spaces
    and ``H[H]:MM[:SS[.f]]`` (1-9 fraction digits, ``.`` or ``,``) and then
    an optional offset, possibly after spaces: ``Z``, ``UTC``, ``+HH:MM``,
    ``+HHMM`` or ``+HH`` (also ``-``). Invalid calendar/clock values (month
    13, Feb 30, 24:00, second 60) -> null. Without an offset the time is a
    wall-clock time in ``timezone``.

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
from collections.abc import Callable
from functools import lru_cache
from typing import Final

import polars as pl

# Re-exported: the Polars-free helpers live in propsync.instants, so that a read need not load
# Polars; code that imports them from here keeps working.
from propsync.instants import (
    US_PER_SECOND as US_PER_SECOND,
    format_timestamp as format_timestamp,
    now_us as now_us,
)

_US_PER_DAY: Final = 86_400 * US_PER_SECOND
_I64_MAX: Final = 2**63 - 1
_MAX_SECONDS, _MAX_SECONDS_FRACTION = divmod(_I64_MAX, US_PER_SECOND)
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

# The commonest shape of all, zero-padded UTC to the second ("2024-05-01T08:30:00Z"), with field
# ranges that leave only the day of the month to check: Polars' own strptime reads these rows
# several times faster than the component paths, and yields null exactly where they do (a day
# the month does not have).
_ISO_UTC_SECONDS_RE: Final = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"
)
_ISO_UTC_SECONDS_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


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
        us = _datetime_to_us(s.to_physical(), dtype.time_unit)
        out = us if dtype.time_zone is not None else _wall_to_utc(us, timezone)
    elif dtype == pl.Date:
        days = s.to_physical().cast(pl.Int64)
        out = _wall_to_utc(_eval(_scaled(pl.col("x"), _US_PER_DAY), days), timezone)
    elif dtype.is_integer():
        seconds = s.cast(pl.Int64, strict=False)  # out-of-range UInt64 -> null
        out = _eval(_scaled(pl.col("x"), US_PER_SECOND), seconds)
    elif dtype.is_float():
        out = _eval(_float_seconds_to_us(pl.col("x")), s.cast(pl.Float64))
    elif isinstance(dtype, pl.Decimal):
        # Exact decimal seconds (Parquet DECIMAL): through the exact numeric-text path.
        out = _parse_strings(s.cast(pl.String), timezone)
    else:
        out = pl.Series(values=[None] * len(s), dtype=pl.Int64)
    return out.cast(pl.Int64).rename(s.name)


def parse_timestamp_value(value: object, timezone: str = "UTC") -> int | None:
    """Parse one value with exactly the rules of :func:`parse_timestamps`."""
    _check_timezone(timezone)
    series: pl.Series
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not -_I64_MAX <= value <= _I64_MAX:
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


def format_timestamp_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`format_timestamp` over an Int64 microseconds expression.

    Null stays null; the result keeps the name of ``expr``.
    """
    # Floor division/modulo instead of abs(), which overflows for Int64 min.
    quotient, remainder = expr // US_PER_SECOND, expr % US_PER_SECOND
    negative_fraction = (expr < 0) & (remainder > 0)
    truncated = pl.when(negative_fraction).then(quotient + 1).otherwise(quotient)
    fraction = pl.when(negative_fraction).then(US_PER_SECOND - remainder).otherwise(remainder)
    # Between -1 and 0 the truncated seconds are 0, which has no sign of its own.
    seconds_text = (
        pl.when(~negative_fraction | (truncated != 0))
        .then(truncated.cast(pl.String))
        .when(expr.is_not_null())
        .then(pl.lit("-0"))
    )
    fraction_text = (
        pl.when(fraction > 0)
        .then(pl.lit(".") + fraction.cast(pl.String).str.zfill(6).str.strip_chars_end("0"))
        .otherwise(pl.lit(""))
    )
    return seconds_text + fraction_text


def supported_timezone(timezone: str) -> bool:
    """Whether the parser (Polars) knows ``timezone``: not every name zoneinfo accepts
    (``localtime``, ``posixrules``, ``right/UTC``, ``Factory``) is in Polars' database."""
    try:
        _check_timezone(timezone)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=64)
def _check_timezone(timezone: str) -> None:
    probe = pl.Series(values=[0], dtype=pl.Datetime("us"))
    try:
        probe.dt.replace_time_zone(timezone)
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"unknown time zone: {timezone!r}") from exc


def _eval(expr: pl.Expr, x: pl.Series) -> pl.Series:
    return pl.DataFrame({"x": x}).select(expr).to_series()


def _float_seconds_to_us(seconds: pl.Expr) -> pl.Expr:
    rounded = (seconds * US_PER_SECOND).round(0, mode="half_away_from_zero")
    # Non-strict cast: NaN, inf and out-of-range values become null.
    return rounded.cast(pl.Int64, strict=False)


def _scaled(x: pl.Expr, factor: int) -> pl.Expr:
    """``x * factor``, null where that would overflow Int64."""
    limit = _I64_MAX // factor
    return pl.when(x.is_between(-limit, limit)).then(x * factor)


def _datetime_to_us(physical: pl.Series, time_unit: str) -> pl.Series:
    x = pl.col("x")
    if time_unit == "ms":
        return _eval(_scaled(x, 1000), physical)
    if time_unit == "ns":
        # Half-up towards the later instant, like ISO fractions; cannot overflow.
        return _eval(x // 1000 + (x % 1000 >= 500).cast(pl.Int64), physical)
    return physical


def _wall_to_utc(wall_us: pl.Series, timezone: str) -> pl.Series:
    """Interpret wall-clock microseconds in ``timezone`` (DST rules in module doc)."""
    if timezone == "UTC":
        return wall_us
    wall_us = _eval(
        pl.when(pl.col("x").is_between(-_MAX_WALL_US, _MAX_WALL_US)).then(pl.col("x")), wall_us
    )
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
    utc_seconds = s.str.contains(_ISO_UTC_SECONDS_RE).fill_null(False)
    if not utc_seconds.any():
        return _parse_general_strings(s, timezone)
    fast = (
        s.str.strptime(pl.Datetime("us"), _ISO_UTC_SECONDS_FORMAT, strict=False)
        .to_physical()
        .cast(pl.Int64)
    )
    if utc_seconds.all():
        return fast
    rest = _parse_general_strings(s.set(utc_seconds, None), timezone)
    return pl.select(
        pl.when(pl.lit(utc_seconds)).then(pl.lit(fast)).otherwise(pl.lit(rest))
    ).to_series()


def _parse_general_strings(s: pl.Series, timezone: str) -> pl.Series:
    t = pl.col("t")
    rest = pl.col("rest")
    frame = (
        pl.LazyFrame({"t": s})
        .select(t.str.strip_chars())
        .with_columns(numeric=t.str.contains(_NUMERIC_RE))
        # Masking classified rows to null spares them the remaining regexes.
        .with_columns(rest=pl.when(~pl.col("numeric")).then(t))
        .with_columns(
            iso_fast=rest.str.contains(_ISO_FAST_RE),
            scientific=rest.str.contains(_SCIENTIFIC_RE),
        )
        .with_columns(iso=rest.is_not_null() & ~pl.col("iso_fast") & ~pl.col("scientific"))
        .collect()
    )
    paths: dict[str, Callable[[pl.LazyFrame], pl.LazyFrame]] = {
        "numeric": _numeric_text_path,
        "scientific": _scientific_text_path,
        "iso_fast": lambda lf: _iso_path(_iso_fast_components(lf)),
        "iso": lambda lf: _iso_path(_iso_regex_components(lf)),
    }
    # Each path sees only its own rows (the rest masked to null) and is skipped
    # when no row needs it, so homogeneous columns pay for one path only.
    parsed = pl.collect_all(
        path(frame.lazy().select(t=pl.when(pl.col(name)).then(t)))
        for name, path in paths.items()
        if frame[name].any()
    )
    if not parsed:
        return pl.Series(values=[None] * len(s), dtype=pl.Int64)
    # Columns "wall" (us) and "offset" (us; null: a wall-clock time in timezone).
    parts = parsed[0]
    if len(parsed) > 1:
        parts = pl.DataFrame(
            {
                column: pl.select(pl.coalesce([pl.lit(p[column]) for p in parsed])).to_series()
                for column in ("wall", "offset")
            }
        )
    wall, offset = pl.col("wall"), pl.col("offset")
    if timezone == "UTC":
        return parts.select(wall - offset.fill_null(0)).to_series()
    local = parts.select(pl.when(offset.is_null()).then(wall)).to_series()
    if local.null_count() == len(local):
        return parts.select(wall - offset).to_series()
    local = _wall_to_utc(local, timezone)
    return parts.select(pl.coalesce(wall - offset, pl.lit(local))).to_series()


def _numeric_text_path(lf: pl.LazyFrame) -> pl.LazyFrame:
    t, body, dot = pl.col("t"), pl.col("body"), pl.col("dot")
    seconds, micros = pl.col("seconds"), (pl.col("seven") + 5) // 10
    fits = (seconds < _MAX_SECONDS) | (
        (seconds == _MAX_SECONDS) & (micros <= _MAX_SECONDS_FRACTION)
    )
    magnitude = pl.when(fits).then(seconds * US_PER_SECOND + micros)
    return (
        lf.select(negative=t.str.starts_with("-"), body=t.str.strip_chars_start("+-"))
        .with_columns(dot=body.str.find(".", literal=True))
        .select(
            "negative",
            # A null slice length means "to the end", i.e. there is no dot.
            int_text=body.str.slice(0, dot).str.strip_chars_start("0"),
            # 7 digits: the 7th decides half-up rounding, later ones cannot matter.
            seven=body.str.slice(dot + 1, 7).fill_null("").str.pad_end(7, "0").cast(pl.Int64),
        )
        .with_columns(
            seconds=pl.when(pl.col("int_text") == "")
            .then(0)
            .otherwise(pl.col("int_text").str.to_integer(strict=False))
        )
        .select(
            wall=pl.when(pl.col("negative")).then(-magnitude).otherwise(magnitude),
            offset=pl.when(pl.col("negative").is_not_null()).then(pl.lit(0, pl.Int64)),
        )
    )


def _scientific_text_path(lf: pl.LazyFrame) -> pl.LazyFrame:
    t = pl.col("t")
    return lf.select(
        wall=_float_seconds_to_us(t.cast(pl.Float64, strict=False)),
        offset=pl.when(t.is_not_null()).then(pl.lit(0, pl.Int64)),
    )


# Both ISO component extractors produce the same Int64 columns: year, month,
# day, hour, minute, second, nanosecond, offset_sign (+1/-1, null without an
# offset), offset_hours, offset_minutes.


def _iso_fast_components(lf: pl.LazyFrame) -> pl.LazyFrame:
    t, tail, offset_at, offset = pl.col("t"), pl.col("tail"), pl.col("offset_at"), pl.col("offset")
    is_utc = offset.is_in(["Z", "z"])
    fields = [
        ("year", 0, 4),
        ("month", 5, 2),
        ("day", 8, 2),
        ("hour", 11, 2),
        ("minute", 14, 2),
        ("second", 17, 2),
    ]
    return (
        lf.select(
            *[
                t.str.slice(start, length).cast(pl.Int64).alias(name)
                for name, start, length in fields
            ],
            tail=t.str.slice(19),
        )
        # tail is "[.fraction][offset]"; the offset starts with its sign or Z.
        .with_columns(offset_at=tail.str.find(r"[Zz+-]").cast(pl.Int64))
        .with_columns(
            fraction=tail.str.slice(1, (offset_at.fill_null(tail.str.len_bytes()) - 1).clip(0)),
            offset=tail.str.slice(offset_at),
        )
        .select(
            *[name for name, _, _ in fields],
            nanosecond=pl.col("fraction").str.pad_end(9, "0").cast(pl.Int64),
            offset_sign=pl.when(is_utc)
            .then(1)
            .when(offset.str.starts_with("-"))
            .then(-1)
            .when(offset.is_not_null())
            .then(1),
            offset_hours=pl.when(is_utc).then(0).otherwise(offset.str.slice(1, 2).cast(pl.Int64)),
            offset_minutes=pl.when(offset.str.len_bytes() >= 5)
            .then(offset.str.slice(-2).cast(pl.Int64))
            .otherwise(0),
        )
    )


def _iso_regex_components(lf: pl.LazyFrame) -> pl.LazyFrame:
    def number(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.Int64)

    is_utc, sign = pl.col("z").is_not_null(), pl.col("osign")
    return (
        lf.select(pl.col("t").str.extract_groups(_ISO_RE))
        .unnest("t")
        .select(
            year=number("y"),
            month=number("mo"),
            day=number("d"),
            hour=number("h").fill_null(0),
            minute=number("mi").fill_null(0),
            second=number("s").fill_null(0),
            nanosecond=pl.col("f").fill_null("").str.pad_end(9, "0").cast(pl.Int64),
            offset_sign=pl.when(is_utc)
            .then(1)
            .when(sign == "-")
            .then(-1)
            .when(sign == "+")
            .then(1),
            offset_hours=pl.when(is_utc).then(0).otherwise(number("oh")),
            offset_minutes=number("om").fill_null(0),
        )
    )


def _iso_path(components: pl.LazyFrame) -> pl.LazyFrame:
    """Validate ISO components; wall-clock microseconds plus offset."""
    year, month, day = pl.col("year"), pl.col("month"), pl.col("day")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_month = (
        pl.when(month == 2)
        .then(28 + leap.cast(pl.Int64))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    offset_hours, offset_minutes = pl.col("offset_hours"), pl.col("offset_minutes")
    valid = (
        month.is_between(1, 12)
        & day.is_between(1, days_in_month)
        & (pl.col("hour") <= 23)
        & (pl.col("minute") <= 59)
        & (pl.col("second") <= 59)
        & (offset_hours.is_null() | (offset_hours <= 23))
        & (offset_minutes <= 59)
    )
    # days_from_civil (H. Hinnant); relies on // flooring (year 0000 goes negative).
    y = year - (month <= 2).cast(pl.Int64)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * (month + pl.when(month > 2).then(-3).otherwise(9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146_097 + day_of_era - 719_468
    seconds_of_day = pl.col("hour") * 3600 + pl.col("minute") * 60 + pl.col("second")
    # Half-up on the 7th fraction digit (always towards the later instant).
    micros = (pl.col("nanosecond") + 500) // 1000
    wall = days * _US_PER_DAY + seconds_of_day * US_PER_SECOND + micros
    offset = pl.col("offset_sign") * (offset_hours * 3600 + offset_minutes * 60) * US_PER_SECOND
    return components.select(wall=pl.when(valid).then(wall), offset=offset)
