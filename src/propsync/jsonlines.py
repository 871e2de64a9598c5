"""Which keys each line of a JSON Lines file has, and the last value of a key given twice.

Polars' NDJSON reader gives null both for a missing key and for an explicit ``null``, and keeps the
first of two equal keys; propsync's rules are that a missing key updates nothing, ``null`` sets
null, and the last of equal keys wins (as in Python's ``json`` and JavaScript's ``JSON.parse``, so
what the SDKs mean). Telling them apart without parsing every line in Python, per chunk:

0. Count each raw line's key tokens (a ``"`` then ``:``). When that equals the number of non-null
   values Polars read for the row, no key is repeated or null and there is no nested object, so
   every null Polars gives is a missing key. Most rows end here.
1. For the other rows, count each mapped key's tokens: none = missing; one with a value = present;
   one with null, in a line without nested objects and with the text ``"key": null`` = null.
2. The rest (a mapped key given twice, escaped key names, nested objects, values of mapped columns
   holding arrays or objects) is parsed with Python's ``json``.

Arrays and objects (Polars' List and Struct columns) are read as text, because Polars' own text of
them is not JSON and its types for them lose data (``[1, "x"]`` becomes ``["1", "x"]``); mapped
ones get the exact JSON text from step 2 and are converted by ``coltypes``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from propsync import jsonlimits
from propsync.prefetch import RowFeed

LINE_BATCH = 50_000  # lines are kept whole: a few batches ahead stay small
_BLANK = r"^[ \t\r]*$"  # lines Polars' NDJSON reader skips
_KEY_END = r'"\s*:'
# A backslash escape in a key (or a rare look-alike in a value): key counts cannot be trusted.
_ESCAPED_KEY = r'\\.[^"]*"\s*:'
_REGEX_META = set("\\.+*?()|[]{}^$#&-~")
# A "key": null pair, counted in a line (vectorised) and its keys read (Python's re, few lines).
_NULL_PAIR = r'"\s*:\s*null'
_NULL_KEY = re.compile(r'"([^"\\]*)"\s*:\s*null')
# Rows of a chunk that step 2 parses without trying step 1 first.
_PARSE_AT_MOST = 5_000


def is_nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.List, pl.Array, pl.Struct))


@dataclass(frozen=True)
class Schema:
    dtypes: dict[str, pl.DataType]  # what to read each key as
    nested: frozenset[str]  # keys holding arrays or objects, read as text


def read_schema(path: Path) -> Schema:
    """Polars' types for the keys of all lines (one pass, remembered while the file is unchanged),
    arrays and objects as text."""
    st = path.stat()
    return _read_schema(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _read_schema(path: str, _mtime_ns: int, _size: int) -> Schema:
    try:
        inferred = pl.scan_ndjson(path, infer_schema_length=None).collect_schema()
    except pl.exceptions.PolarsError:
        # Polars cannot type some key (an array in one line, an integer in another): all text.
        return Schema({key: pl.String() for key in _keys(Path(path))}, frozenset())
    nested = frozenset(name for name, dtype in inferred.items() if is_nested(dtype))
    dtypes = {name: pl.String() if name in nested else dtype for name, dtype in inferred.items()}
    return Schema(dtypes, nested)


def _keys(path: Path) -> list[str]:
    """The keys of all lines, in order of appearance (Python's json: slow, a fallback only)."""
    keys: dict[str, None] = {}
    with path.open(encoding="utf-8") as f:
        for text in f:
            if text.strip():
                obj = json.loads(text)
                if not isinstance(obj, dict):
                    raise ValueError("a line is not a JSON object")
                keys.update(dict.fromkeys(obj))
    return list(keys)


def _lines(path: Path, line_batch: int) -> Iterator[pl.DataFrame]:
    line = pl.col("line")
    lf = (
        pl.scan_lines(path)
        .filter(~line.str.contains(_BLANK))
        .select(
            text=line,
            keys=line.str.count_matches(_KEY_END).cast(pl.Int32),
            # More than the line's own "{": an array or object may be among its values.
            brackets=line.str.count_matches(r"[\[{]") > 1,
        )
    )
    return iter(lf.collect_batches(chunk_size=line_batch, lazy=True))


def line_feed(path: Path, line_batch: int = LINE_BATCH) -> RowFeed:
    """The file's non-blank lines (``text``, ``keys``, ``brackets``), one per row Polars reads."""
    return RowFeed(_lines(path, line_batch), name="jsonl-lines")


@dataclass(frozen=True)
class Keyed:
    frame: pl.DataFrame  # the values, the last of equal keys winning
    absent: dict[str, pl.Series]  # mapped column -> True where the line has no such key
    json_cells: dict[str, pl.Series]  # column -> True where the cell is an array's or object's JSON
    row_errors: pl.Series | None = None  # why a row cannot be used (String; null = usable)


def resolve(
    frame: pl.DataFrame, lines: pl.DataFrame, columns: Sequence[str], nested: Collection[str]
) -> Keyed:
    """Absent keys and last-wins values of ``columns`` (mapped, in the schema) for one chunk.

    ``nested``: those of ``columns`` that hold arrays or objects (read as text).
    """
    non_null = frame.select(pl.sum_horizontal(pl.all().is_not_null())).to_series()
    parse = _arrays_or_objects(frame, lines["brackets"], columns, nested)
    absent = {c: frame[c].is_null() for c in columns}
    slow = (lines["keys"] != non_null) & ~parse
    if slow.any():
        slow = slow & ~_explicit_nulls(frame, lines, slow, non_null, columns, absent)
    counted = slow.arg_true()
    if counted.len() <= _PARSE_AT_MOST:  # a few rows: Python's json is cheaper than step 1
        parse = parse | slow
    else:
        values = frame.select(pl.col(list(columns)).gather(counted))
        sub_absent, todo = _count_keys(lines["text"].gather(counted), values)
        for c in columns:
            absent[c] = absent[c].scatter(counted, sub_absent[c])
        parse = parse.scatter(counted.filter(todo), True)
    errors = None
    json_cells: dict[str, pl.Series] = {}
    if parse.any():
        idx = parse.arg_true()
        parsed = _parse_rows(frame, lines["text"].gather(idx), idx, columns, nested, absent)
        frame, errors, json_cells = parsed
    json_cells.update((c, frame[c].is_not_null()) for c in nested)
    return Keyed(frame, absent, json_cells, errors)


def _explicit_nulls(
    frame: pl.DataFrame,
    lines: pl.DataFrame,
    rows: pl.Series,
    non_null: pl.Series,
    columns: Sequence[str],
    absent: dict[str, pl.Series],
) -> pl.Series:
    """Step 0 for lines with ``null`` values (the most common reason to be in ``rows``): when a
    flat line's key tokens are its non-null values plus its ``"key": null`` pairs, and no key
    given a value also has a null pair, the keys of its null pairs are the explicit nulls and
    every other null is a missing key. Updates ``absent``; returns the rows so settled."""
    idx = rows.arg_true()
    text = lines["text"].gather(idx)
    nulls = text.str.count_matches(_NULL_PAIR)
    maybe = (nulls > 0) & (lines["keys"].gather(idx) == non_null.gather(idx) + nulls)
    maybe = maybe & ~lines["brackets"].gather(idx) & ~text.str.contains(_ESCAPED_KEY)
    done = pl.Series([False] * frame.height, dtype=pl.Boolean)
    if not maybe.any():
        return done
    sub = idx.filter(maybe)
    found = [_NULL_KEY.findall(t) for t in text.filter(maybe)]
    null_keys = [set(keys) for keys in found]
    # Every null pair counted is a key's (not text inside a value), else step 1 or 2 decides.
    ok = [len(keys) == n for keys, n in zip(found, nulls.filter(maybe).to_list(), strict=True)]
    is_null = frame.select(pl.col(list(columns)).gather(sub).is_null()).to_dict(as_series=False)
    mapped = set(columns)
    explicit: dict[str, list[int]] = {c: [] for c in columns}
    positions = sub.to_list()
    for i, keys in enumerate(null_keys):
        keys &= mapped
        # A value Polars read for a key that also has a null pair: the later pair may win.
        if not ok[i] or not all(is_null[k][i] for k in keys):
            ok[i] = False
            continue
        for k in keys:
            explicit[k].append(positions[i])
    for c, at in explicit.items():
        if at:  # Polars' null there is this null pair, not a missing key
            absent[c] = absent[c].scatter(at, False)
    settled = sub.filter(pl.Series(ok, dtype=pl.Boolean))
    return done.scatter(settled, True) if settled.len() else done


def _arrays_or_objects(
    frame: pl.DataFrame, brackets: pl.Series, columns: Sequence[str], nested: Collection[str]
) -> pl.Series:
    """Rows that step 2 must parse: a mapped value is (or, as Polars' text, may be) an array or
    an object, whose exact JSON only Python's json gives. ``brackets``: lines that may hold one."""
    rows = pl.Series([False] * frame.height, dtype=pl.Boolean)
    if not brackets.any():
        return rows
    for c in columns:
        s = frame[c]
        if c in nested:
            rows = rows | s.is_not_null()
        elif s.dtype == pl.String:  # a key with strings and arrays or objects: Polars' text
            rows = rows | s.str.contains(r"^[\[{]").fill_null(False)
    return rows & brackets


def _regex_literal(text: str) -> str:
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in text)


def _count_keys(text: pl.Series, values: pl.DataFrame) -> tuple[dict[str, pl.Series], pl.Series]:
    """Step 1 on the rows of ``text``: absent per column, and the rows still to be parsed."""
    todo = text.str.contains(_ESCAPED_KEY)
    flat = text.str.count_matches("[{]") == 1
    absent: dict[str, pl.Series] = {}
    for c in values.columns:
        key = '"' + _regex_literal(c) + '"'
        # A key that JSON must escape only occurs in lines already marked by _ESCAPED_KEY.
        if json.dumps(c, ensure_ascii=False) == f'"{c}"':
            n = text.str.count_matches(key + r"\s*:")
        else:
            n = pl.repeat(0, len(text), dtype=pl.UInt32, eager=True)
        null = values[c].is_null()
        explicit_null = null & (n == 1) & flat & text.str.contains(key + r"\s*:\s*null")
        absent[c] = null & (n == 0)
        todo = todo | ~((n == 0) | ((n == 1) & ~null) | explicit_null)
    return absent, todo


def _parse_rows(
    frame: pl.DataFrame,
    text: pl.Series,
    idx: pl.Series,
    columns: Sequence[str],
    nested: Collection[str],
    absent: dict[str, pl.Series],
) -> tuple[pl.DataFrame, pl.Series | None, dict[str, pl.Series]]:
    """Step 2: rows ``idx`` parsed with Python's json (last of equal keys wins). Also returns
    why rows cannot be used, and which cells of the other columns became JSON text."""
    parsed = [_parse(line, columns) for line in text]
    objects = [o if isinstance(o, dict) else {} for o in parsed]
    replaced = []
    json_cells: dict[str, pl.Series] = {}
    for c in columns:
        values = [o.get(c) for o in objects]
        missing = [c not in o for o in objects]
        if missing != absent[c].gather(idx).to_list():
            absent[c] = absent[c].scatter(idx, missing)
        # Most rows come here for a null or a key Polars read right: replace only what differs.
        if c in nested or not _same(frame[c].gather(idx).to_list(), values):
            replaced.append(_replace(frame[c], idx, values, as_json=c in nested))
        if c not in nested and any(isinstance(v, (list, dict)) for v in values):
            is_json = [isinstance(v, (list, dict)) for v in values]
            json_cells[c] = pl.Series([False] * frame.height).scatter(idx, is_json)
    errors = [o if isinstance(o, str) else None for o in parsed]
    return frame.with_columns(replaced), _errors(frame.height, idx, errors), json_cells


def _same(read: list[Any], values: list[Any]) -> bool:
    """Whether Polars read exactly the values Python's json gives (type included: 1 is not True)."""
    return all(type(a) is type(b) and a == b for a, b in zip(read, values, strict=True))


def _errors(n: int, idx: pl.Series, errors: list[str | None]) -> pl.Series | None:
    if all(e is None for e in errors):
        return None
    out = pl.Series([None] * n, dtype=pl.String)
    return out.scatter(idx, pl.Series(errors, dtype=pl.String))


def _parse(line: str, columns: Sequence[str]) -> dict[str, Any] | str:
    """The line as Python's json reads it (the last of equal keys wins), or why it cannot be
    used: a mapped value nested deeper than ``jsonlimits`` allows."""
    try:
        # Fewer brackets than the limit cannot nest deeper: skip jsonlimits' depth scan.
        shallow = line.count("[") + line.count("{") <= jsonlimits.MAX_DEPTH
        obj = json.loads(line) if shallow else jsonlimits.loads(line)
    except jsonlimits.JsonTooDeep:
        try:  # the deep part may be a key the mapping does not read
            obj = json.loads(line)
            jsonlimits.check_depth({c: obj[c] for c in columns if c in obj})
        except jsonlimits.JsonTooDeep as exc:
            return str(exc)
        except RecursionError:
            return str(jsonlimits.JsonTooDeep())
    if not isinstance(obj, dict):  # Polars read it as an object: not expected
        raise ValueError("a line is not a JSON object")
    return obj


def _fits(value: Any, dtype: pl.DataType) -> bool:
    if value is None:
        return True
    if dtype == pl.Boolean:
        return isinstance(value, bool)
    if dtype.is_integer():
        return isinstance(value, int) and not isinstance(value, bool)
    if dtype.is_float():
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return False


def _text(value: Any, as_json: bool) -> str | None:
    """A JSON value as a text column holds it: strings as they are (unless ``as_json``), the
    rest as JSON text (arrays and objects exact, unlike Polars' text of them)."""
    if value is None:
        return None
    if isinstance(value, str) and not as_json:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _replace(column: pl.Series, idx: pl.Series, values: list[Any], as_json: bool) -> pl.Series:
    """``column`` with ``values`` at ``idx``; as text when they do not fit its type."""
    if column.dtype != pl.String and all(_fits(v, column.dtype) for v in values):
        try:
            return column.scatter(idx, pl.Series(values, dtype=column.dtype, strict=True))
        except (OverflowError, TypeError, ValueError, pl.exceptions.PolarsError):
            pass  # e.g. an integer beyond the column's range: as text
    if column.dtype != pl.String:
        column = column.cast(pl.String)
    return column.scatter(idx, pl.Series([_text(v, as_json) for v in values], dtype=pl.String))
