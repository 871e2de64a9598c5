"""What each mapping type makes of each source column type (Parquet and JSON Lines are typed).

``values.convert`` converts text, numbers, booleans, dates and datetimes. Here the rest is decided
before it is called, so that no column type can make an import fail:

- Categorical and Enum are their text; Binary is its text when it is UTF-8, else the cell (or row,
  for ids) is rejected.
- Lists and structs (and JSON Lines arrays and objects) become canonical JSON for the text types
  and, lists only, for ``list``; a value inside them without a JSON form (a date, bytes) rejects
  the cell. For ``number``, ``boolean``, ``date`` and ``datetime`` they are rejected per cell.
- Durations (and any type not named here) are rejected per cell.
- Ids must be text or integers; a value of another type rejects its row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from propsync.values import canonical_json, convert

TEXT_TYPES = ("string", "longtext", "url")
# values.convert handles these natively (with its own reasons for values it cannot use).
_NATIVE = (
    pl.String,
    pl.Boolean,
    pl.Date,
    pl.Datetime,
    pl.Time,
    pl.Decimal,
    pl.Null,
)


@dataclass(frozen=True)
class Conversion:
    """Canonical JSON text per cell (null where rejected), and why rejected cells were rejected."""

    values: pl.Series
    rejected: pl.Series  # Boolean
    reasons: pl.Series | str  # one for all rejected cells, or per cell (String, null if kept)

    def reasons_of(self, mask: pl.Series) -> pl.Series | str:
        return self.reasons.filter(mask) if isinstance(self.reasons, pl.Series) else self.reasons


def type_name(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Array):
        return "list"
    return type(dtype).__name__.lower()


def _nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.List, pl.Array, pl.Struct))


def textual(s: pl.Series) -> tuple[pl.Series, pl.Series | None]:
    """Categorical, Enum and Binary as String; the second item marks Binary that is not UTF-8."""
    if isinstance(s.dtype, (pl.Categorical, pl.Enum)):
        return s.cast(pl.String), None
    if s.dtype == pl.Binary:
        # Polars' cast raises on the first invalid byte (even non-strict): decode per value.
        text = pl.Series(s.name, [_utf8(v) for v in s.to_list()], dtype=pl.String)
        bad = text.is_null() & s.is_not_null()
        return text, bad if bad.any() else None
    return s, None


def _utf8(v: bytes | None) -> str | None:
    try:
        return None if v is None else v.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _reasons(mask: pl.Series, reason: str) -> pl.Series:
    return pl.select(pl.when(pl.lit(mask)).then(pl.lit(reason))).to_series().cast(pl.String)


def _rejected_all(s: pl.Series, reason: str) -> Conversion:
    bad = s.is_not_null()
    values = pl.select(pl.when(pl.lit(bad)).then(None).otherwise(pl.lit("null"))).to_series()
    return Conversion(values.cast(pl.String).alias(s.name), bad, reason)


def _from_python(values: list[Any], type_: str, kind: Callable[[Any], str]) -> Conversion:
    """Nested values (Python objects) to canonical JSON for the text types and ``list``."""
    out: list[str | None] = []
    reasons: list[str | None] = []
    for v in values:
        text, reason = _nested_cell(v, type_, kind)
        out.append(text)
        reasons.append(reason)
    reasons_s = pl.Series(reasons, dtype=pl.String)
    return Conversion(pl.Series(out, dtype=pl.String), reasons_s.is_not_null(), reasons_s)


def _nested_cell(v: Any, type_: str, kind: Callable[[Any], str]) -> tuple[str | None, str | None]:
    if v is None:
        return "null", None
    if type_ == "list" and not isinstance(v, list):
        return None, "not a JSON array"
    if type_ not in TEXT_TYPES and type_ != "list":
        return None, f"{kind(v)} cannot be a {type_}"
    try:
        text = canonical_json(v)
    except ValueError as exc:
        return None, f"has no JSON form ({exc})"
    if type_ == "list" or isinstance(v, str):  # a JSON string (JSON Lines) is the text itself
        return text, None
    return canonical_json(text), None  # the text types store the JSON text as a string


def _kind(dtype: pl.DataType) -> Callable[[Any], str]:
    name = f"a {type_name(dtype)}"
    return lambda _v: name


def _json_kind(v: Any) -> str:
    if isinstance(v, list):
        return "a JSON array"
    return "a JSON object" if isinstance(v, dict) else "a JSON value"


def convert_json_text(s: pl.Series, type_: str) -> Conversion:
    """A column of JSON texts (JSON Lines arrays and objects, see ``jsonlines``)."""
    values = [None if t is None else json.loads(t) for t in s.to_list()]
    return _renamed(_from_python(values, type_, _json_kind), s.name)


def _renamed(c: Conversion, name: str) -> Conversion:
    return Conversion(c.values.alias(name), c.rejected, c.reasons)


def convert_column(
    s: pl.Series, type_: str, timezone: str, json_cells: pl.Series | None = None
) -> Conversion:
    """Canonical JSON text of a source column for ``type_``; never raises for a column type.

    ``json_cells``: True where the cell is the JSON text of an array or object (JSON Lines).
    """
    if json_cells is not None and json_cells.any():
        return _with_json_cells(s, type_, timezone, json_cells)
    if _nested(s.dtype):
        if type_ in TEXT_TYPES or type_ == "list":
            return _renamed(_from_python(s.to_list(), type_, _kind(s.dtype)), s.name)
        return _rejected_all(s, f"{type_name(s.dtype)} values cannot be a {type_}")
    text, not_utf8 = textual(s)
    if not (isinstance(text.dtype, _NATIVE) or text.dtype.is_numeric()):
        return _rejected_all(s, f"{type_name(s.dtype)} values cannot be a {type_}")
    c = convert(text, type_, timezone)
    rejected = c.rejected.cast(pl.Boolean)  # an empty chunk's is untyped
    if not_utf8 is None:
        return Conversion(c.values.alias(s.name), rejected, c.reason)
    reasons = _reasons(not_utf8, "binary value that is not UTF-8 text")
    reasons = reasons.fill_null(_reasons(rejected, c.reason))
    return Conversion(c.values.alias(s.name), rejected | not_utf8, reasons)


def _with_json_cells(s: pl.Series, type_: str, timezone: str, json_cells: pl.Series) -> Conversion:
    if (json_cells == s.is_not_null()).all():
        return convert_json_text(s, type_)
    rest = convert_column(s.set(json_cells, None), type_, timezone)
    idx = json_cells.arg_true()
    sub = convert_json_text(s.filter(json_cells), type_)
    reasons = rest.reasons
    if isinstance(reasons, str):
        reasons = _reasons(rest.rejected, reasons)
    sub_reasons = (
        sub.reasons if isinstance(sub.reasons, pl.Series) else _reasons(sub.rejected, sub.reasons)
    )
    return Conversion(
        rest.values.scatter(idx, sub.values),
        rest.rejected.scatter(idx, sub.rejected),
        reasons.scatter(idx, sub_reasons),
    )


def id_text(
    s: pl.Series, json_cells: pl.Series | None = None
) -> tuple[pl.Series, pl.Series | None, str]:
    """Ids as text, the cells whose type cannot be an id (they reject their rows), and why.

    ``json_cells``: True where the cell is the JSON text of an array or object (JSON Lines).
    """
    if json_cells is not None and json_cells.any():
        return (
            s.cast(pl.String).set(json_cells, None),
            json_cells,
            "JSON arrays and objects cannot be customer ids (ids are text or integers)",
        )
    text, not_utf8 = textual(s)
    if not (text.dtype in (pl.String, pl.Null) or text.dtype.is_integer()):
        return (
            pl.Series(s.name, [None] * len(s), dtype=pl.String),
            s.is_not_null(),
            f"{type_name(s.dtype)} values cannot be customer ids (ids are text or integers)",
        )
    if not_utf8 is not None:
        return text, not_utf8, "binary value that is not UTF-8 text cannot be a customer id"
    return text.cast(pl.String), None, ""


def timestamp_input(s: pl.Series) -> pl.Series:
    """The column ``parse_timestamps`` is given: Categorical, Enum and Binary as text."""
    return textual(s)[0]


def _raw_json(v: Any) -> str:
    return json.dumps(v, default=str, ensure_ascii=False, separators=(",", ":"))


def raw_text(s: pl.Series) -> pl.Series:
    """The source values as text for the quarantine (never raises; nested values as JSON)."""
    if s.dtype == pl.String:
        return s
    if _nested(s.dtype) or s.dtype == pl.Object:
        return pl.Series(
            [None if v is None else _raw_json(v) for v in s.to_list()],
            dtype=pl.String,
        )
    if s.dtype == pl.Binary:
        hex_text = pl.select(pl.lit("0x") + pl.lit(s.bin.encode("hex"))).to_series()
        return textual(s)[0].fill_null(hex_text)
    try:
        return s.cast(pl.String, strict=False)
    except pl.exceptions.PolarsError:  # e.g. Duration
        return pl.Series([None if v is None else str(v) for v in s], dtype=pl.String)
