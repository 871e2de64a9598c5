"""Canonical JSON values and the per-type conversions of the mapping model.

Every stored value is canonical JSON text, so equal values compare equal on every path (import,
tracking, edits) and the tie-break on equal timestamps (the greater text wins) is deterministic.
Canonical means: compact separators, sorted object keys, UTF-8 (no ASCII escaping), and numbers
that are integral and within +-2**53 written as integers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from propsync.jsonlimits import MAX_DEPTH, JsonTooDeep
from propsync.timestamps import format_timestamp_expr, parse_timestamps

_EXACT_INT_LIMIT = 2**53
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def _normalise(value: Any, depth: int = 1) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        if value.is_integer() and abs(value) < _EXACT_INT_LIMIT:
            return int(value)
        return value
    if isinstance(value, (dict, list, tuple)) and depth > MAX_DEPTH:
        # Also for values that did not come through jsonlimits.loads: recursion must not crash.
        raise JsonTooDeep()
    if isinstance(value, dict):
        return {str(k): _normalise(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v, depth + 1) for v in value]
    raise ValueError(f"{type(value).__name__} is not a JSON value")


# json.dumps with these options would build a new encoder per call (tracking calls this per value).
_encode_string = json.encoder.encode_basestring  # the C one when present, as json.dumps uses
_CANONICAL = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """The canonical JSON text of a Python JSON value. Raises ValueError for NaN, inf, non-JSON,
    and ``JsonTooDeep`` (a ValueError) for a value nested more than ``MAX_DEPTH`` levels."""
    kind = type(value)
    # The scalars tracking sends, without the encoder's generic walk (a third of the cost of
    # validating a command); the same text as the general path below (tests hold them equal).
    if kind is str and value.isascii():
        return _encode_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    text = _CANONICAL.encode(_normalise(value))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. "\ud800" from JSON input
        raise ValueError(f"not valid Unicode text: {exc.reason}") from None
    return text


@dataclass(frozen=True)
class Converted:
    """Result of converting one source column: canonical JSON text, null where the cell is rejected."""

    values: pl.Series
    rejected: pl.Series  # Boolean: the cell had a value that cannot be converted
    reason: str


def _json_string(expr: pl.Expr) -> pl.Expr:
    # Polars' JSON encoder escapes exactly like json.dumps(ensure_ascii=False); tests hold it to that.
    return (
        pl.struct(expr.alias("v"))
        .struct.json_encode()
        .str.strip_prefix('{"v":')
        .str.strip_suffix("}")
    )


BLANK_CHARS = " \t\r\n"


def is_blank(s: pl.Series) -> pl.Series:
    """Null, empty or whitespace-only cells: the platform's "empty cell" (sets null)."""
    if s.dtype == pl.String:
        return s.is_null() | (s.str.strip_chars(BLANK_CHARS) == "")
    return s.is_null()


def _number_text(f: pl.Series) -> pl.Series:
    """Canonical JSON text of a Float64 series (finite values only)."""
    integral = (f == f.floor()) & (f.abs() < _EXACT_INT_LIMIT)
    as_int = f.cast(pl.Int64, strict=False).cast(pl.String)
    text = pl.select(pl.when(integral).then(as_int).otherwise(f.cast(pl.String))).to_series()
    # Python writes exponents for |x| < 1e-4 where Polars writes positional digits; match Python.
    tiny = (~integral & (f.abs() < 1e-4)).fill_null(False)
    if tiny.any():
        fixed = f.filter(tiny).map_elements(repr, return_dtype=pl.String)
        text = text.scatter(tiny.arg_true(), fixed)
    return text


def _to_number(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    if s.dtype.is_integer():
        return s.cast(pl.String), pl.Series([False] * len(s))
    if s.dtype.is_float():
        finite = s.is_finite().fill_null(True)
        return _number_text(s.cast(pl.Float64)), ~finite
    if s.dtype == pl.Boolean:
        return pl.Series([None] * len(s), dtype=pl.String), s.is_not_null()
    text = s.cast(pl.String).str.strip_chars()
    as_int = text.str.replace(r"^\+", "").cast(pl.Int64, strict=False)
    is_int_text = text.str.contains(r"^[+-]?\d+$").fill_null(False)
    looks_numeric = text.str.contains(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$").fill_null(False)
    as_float = text.cast(pl.Float64, strict=False)
    good_float = looks_numeric & as_float.is_finite().fill_null(False)
    float_text = _number_text(as_float.fill_null(0.0).fill_nan(0.0))
    out = pl.select(
        pl.when(is_int_text & as_int.is_not_null())
        .then(as_int.cast(pl.String))
        .when(good_float)
        .then(float_text)
        .otherwise(None)
    ).to_series()
    # Integer text beyond Int64 keeps its exact digits only when a double can hold it exactly.
    return out, out.is_null() & ~is_blank(s)


def _to_boolean(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    if s.dtype == pl.Boolean:
        out = pl.select(pl.when(s).then(pl.lit("true")).otherwise(pl.lit("false"))).to_series()
        return out.set(s.is_null(), None) if s.null_count() else out, pl.Series([False] * len(s))
    text = s.cast(pl.String).str.strip_chars().str.to_lowercase()
    out = pl.select(
        pl.when(text.is_in(_TRUE))
        .then(pl.lit("true"))
        .when(text.is_in(_FALSE))
        .then(pl.lit("false"))
        .otherwise(None)
    ).to_series()
    return out, out.is_null() & ~is_blank(s)


def _to_timestamp(s: pl.Series, timezone: str, date_only: bool) -> tuple[pl.Series, pl.Series]:
    us = parse_timestamps(s, timezone)
    if date_only:
        local = (
            us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").dt.convert_time_zone(timezone)
        )
        midnight = local.dt.truncate("1d").dt.replace_time_zone(
            timezone, ambiguous="earliest", non_existent="null"
        )
        us = midnight.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(pl.Int64)
    out = pl.select(format_timestamp_expr(pl.lit(us))).to_series()
    return out, out.is_null() & ~is_blank(s)


def _list_cell(v: Any) -> str | None:
    try:
        parsed = json.loads(v) if isinstance(v, str) else v
        if not isinstance(parsed, list):
            return None
        return canonical_json(parsed)
    except (ValueError, TypeError):
        return None


def _to_list(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    # Lists are rare and arbitrary JSON; a per-cell parser is acceptable here.
    values = s.to_list()
    out = pl.Series(
        [
            None if v is None or (isinstance(v, str) and not v.strip()) else _list_cell(v)
            for v in values
        ],
        dtype=pl.String,
    )
    return out, out.is_null() & ~is_blank(s)


_REASONS = {
    "number": "not a number",
    "boolean": "not a boolean (true/false/1/0/yes/no)",
    "date": "not a recognised date",
    "datetime": "not a recognised timestamp",
    "list": "not a JSON array",
}


def convert(s: pl.Series, type_: str, timezone: str = "UTC") -> Converted:
    """Convert a source column to canonical JSON text for ``type_``; blank cells become ``null``."""
    if type_ in ("string", "longtext", "url"):
        text = s if s.dtype == pl.String else s.cast(pl.String)
        blank = is_blank(s)
        encoded = pl.select(_json_string(pl.lit(text))).to_series()
        values = pl.select(
            pl.when(pl.lit(blank)).then(pl.lit("null")).otherwise(pl.lit(encoded))
        ).to_series()
        return Converted(values.alias(s.name), pl.Series([False] * len(s)), "")
    if type_ == "number":
        out, bad = _to_number(s)
    elif type_ == "boolean":
        out, bad = _to_boolean(s)
    elif type_ in ("date", "datetime"):
        out, bad = _to_timestamp(s, timezone, date_only=type_ == "date")
    elif type_ == "list":
        out, bad = _to_list(s)
    else:  # pragma: no cover - the mapping model admits no other type
        raise ValueError(f"unknown type {type_!r}")
    blank = is_blank(s)
    values = pl.select(
        pl.when(pl.lit(blank)).then(pl.lit("null")).otherwise(pl.lit(out))
    ).to_series()
    return Converted(values.alias(s.name), bad.fill_null(False), _REASONS[type_])
