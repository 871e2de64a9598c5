"""Tracking-API batches: ``{"commands": [...]}`` to per-command results and an UpdateBatch.

Commands follow the specification: ``customers`` (``customer_ids``, ``properties``, optional
``update_timestamp`` for all its properties, else the receive time), ``system/time`` and
``system/cookie``. A bad command gets ``{"success": false, "errors": [...]}``; the others apply.
That includes text JSON can carry but Unicode cannot (a lone surrogate escape, ``"\\ud800"``)
anywhere in a command: the CLI and the HTTP API share this parsing.
"""

from __future__ import annotations

import itertools
import math
import os
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import polars as pl

from propsync.batch import CELLS_SCHEMA, IDS_SCHEMA, UpdateBatch, empty
from propsync.timestamps import format_timestamp, parse_timestamp_value, parse_timestamps
from propsync.values import canonical_json

MAX_COMMANDS = 50
# The sizes a command may have (docs/api.md#limits); past them the command fails with a message
# naming the limit. The platform caps a property value at 16 KB.
MAX_IDS = 32  # ids per command
MAX_ID_CHARS = 1024  # characters of an id type or an id value
MAX_PROPERTIES = 1024  # properties per command
MAX_NAME_CHARS = 256  # characters of a property name
MAX_VALUE_BYTES = 16 * 1024  # bytes of a property value's canonical JSON (UTF-8)

# JSON can carry a lone surrogate as an escape ("\ud800"); such text is not Unicode and cannot be
# stored, journaled or echoed. It fails its command, with an error that shows it escaped (repr).
_NOT_UNICODE = "is not valid Unicode text: it contains a lone surrogate"


def _is_unicode(text: str) -> bool:
    """True unless ``text`` holds a lone surrogate (``isascii`` is O(1): the common case is free)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_unicode_json(value: Any) -> bool:
    """True unless some string or object key inside the JSON value ``value`` is not Unicode."""
    if isinstance(value, str):
        return _is_unicode(value)
    if isinstance(value, dict):
        return all(_is_unicode(str(k)) and _is_unicode_json(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_is_unicode_json(v) for v in value)
    return True


def _shown(text: str) -> str:
    """``text`` for an error message: as is when it is Unicode, else escaped (repr)."""
    return text if _is_unicode(text) else repr(text)


@dataclass
class Receipt:
    """What a tracking request's response reports: one result per command (``customers``
    results are final after apply) and when it was received."""

    results: list[dict[str, Any]]
    receive_us: int


@dataclass
class TrackingBatch(Receipt):
    batch: UpdateBatch


_batch_ids: tuple[int, str, itertools.count[int]] | None = None


def new_batch_id(kind: str) -> str:
    """A unique batch id, ``KIND-`` and 32 hex digits: a random prefix per process and a counter
    (one ``uuid4`` per request read the kernel's random source each time: 48 us under load)."""
    global _batch_ids
    if _batch_ids is None or _batch_ids[0] != os.getpid():  # a forked child draws its own
        _batch_ids = (os.getpid(), uuid.uuid4().hex[:16], itertools.count())
    return f"{kind}-{_batch_ids[1]}{next(_batch_ids[2]):016x}"


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_SECONDS_LIMIT = _I64_MAX // 1_000_000


def number_timestamp(value: int | float) -> int | None:
    """``parse_timestamps``' rule for a number, in plain Python (SDKs send numbers, and one Polars
    call per request cost more than the rest of its validation): integers are UNIX seconds,
    floats UNIX seconds rounded to the microsecond, half away from zero; None out of range."""
    if isinstance(value, int):
        return value * 1_000_000 if -_SECONDS_LIMIT <= value <= _SECONDS_LIMIT else None
    scaled = value * 1_000_000.0  # the same IEEE product as Polars' expression
    if not math.isfinite(scaled):
        return None
    whole = math.trunc(scaled)
    if abs(scaled - whole) >= 0.5:  # exact: below 2**52 the difference has no rounding error
        whole += 1 if scaled > 0 else -1
    return whole if _I64_MIN <= whole <= _I64_MAX else None


def _text_timestamps(commands: list[Any]) -> dict[int, int | None]:
    """The text ``update_timestamp`` of every ``customers`` command (by 1-based position),
    parsed with one vectorised ``parse_timestamps`` call for all of them."""
    texts: list[tuple[int, str]] = []
    for i, cmd in enumerate(commands, start=1):
        data = cmd.get("data") if isinstance(cmd, dict) and cmd.get("name") == "customers" else None
        value = data.get("update_timestamp") if isinstance(data, dict) else None
        if isinstance(value, str) and _is_unicode(value):
            texts.append((i, value))
    series = parse_timestamps(pl.Series(values=[v for _, v in texts], dtype=pl.String))
    return dict(zip((i for i, _ in texts), series.to_list(), strict=True))


class _Timestamps:
    """Each command's ``update_timestamp`` parsed by ``parse_timestamps``' rules: numbers in plain
    Python, text (rare from SDKs) in one Polars call for the whole request, made the first time
    a command has text."""

    def __init__(self, commands: list[Any]) -> None:
        self.commands = commands
        self.texts: dict[int, int | None] | None = None

    def parse(self, index: int, value: Any) -> int | None:
        kind = type(value)
        if kind is int or kind is float:
            return number_timestamp(value)
        if kind is str:
            if not _is_unicode(value):
                return None  # not a timestamp (Polars cannot even hold the text)
            if self.texts is None:
                self.texts = _text_timestamps(self.commands)
            return self.texts[index]
        if kind is bool:
            return None
        return parse_timestamp_value(value)


_DATA_KEYS = frozenset({"customer_ids", "properties", "update_timestamp"})


def _customers(
    data: Any, receive_us: int, max_future_skew_us: int, index: int, timestamps: _Timestamps
) -> tuple[dict[str, str], dict[str, str], int] | list[str]:
    # The general path, with a message for every problem (plainly valid commands take
    # _plain_customers instead).
    if not isinstance(data, dict):
        return ["data must be an object"]
    errors: list[str] = []
    ids = _checked_ids(data.get("customer_ids"), errors)
    props = _checked_properties(data.get("properties", {}), errors)
    ts = receive_us
    value = data.get("update_timestamp")
    if value is not None:
        parsed = timestamps.parse(index, value)
        if parsed is None:
            errors.append(f"update_timestamp {value!r} is not a timestamp")
        elif parsed < 0:
            errors.append("update_timestamp must not be negative")
        elif parsed > receive_us + max_future_skew_us:
            errors.append(
                f"update_timestamp {format_timestamp(parsed)} is beyond the server time "
                f"{format_timestamp(receive_us)} + {max_future_skew_us / 1e6:g} s"
            )
        else:
            ts = parsed
    if not _DATA_KEYS.issuperset(data):
        unknown = set(data) - _DATA_KEYS
        errors.append(f"unknown keys in data: {', '.join(sorted(_shown(str(k)) for k in unknown))}")
    return errors if errors else (ids, props, ts)


def _checked_ids(ids: Any, errors: list[str]) -> dict[str, str]:
    """``customer_ids`` with every value as text; a message in ``errors`` for each problem."""
    if not isinstance(ids, dict) or not ids:
        errors.append("customer_ids must be a non-empty object of id type to id value")
        return {}
    if len(ids) > MAX_IDS:
        errors.append(f"customer_ids has {len(ids)} ids; at most {MAX_IDS} per command")
        return {}
    clean: dict[str, str] = {}
    for k, v in ids.items():
        if len(k) > MAX_ID_CHARS or (type(v) is str and len(v) > MAX_ID_CHARS):
            what = (
                f"customer id type {k[:40]!r}..." if len(k) > MAX_ID_CHARS else f"customer_ids.{k}"
            )
            errors.append(f"{what} is longer than {MAX_ID_CHARS} characters")
        elif isinstance(k, str) and not _is_unicode(k):
            errors.append(f"customer id type {k!r} {_NOT_UNICODE}")
        elif not k or ":" in k:
            errors.append(f"customer id type {k!r} must be non-empty and contain no ':'")
        elif isinstance(v, bool) or not isinstance(v, (str, int)) or v == "":
            errors.append(f"customer_ids.{k} must be a non-empty string")
        elif isinstance(v, str) and not _is_unicode(v):
            errors.append(f"customer_ids.{k} value {v!r} {_NOT_UNICODE}")
        else:
            clean[k] = str(v)
    return clean


def _checked_properties(props: Any, errors: list[str]) -> dict[str, str]:
    """``properties`` as canonical JSON text by name; a message in ``errors`` for each problem."""
    if not isinstance(props, dict):
        errors.append("properties must be an object")
        return {}
    if len(props) > MAX_PROPERTIES:
        errors.append(f"properties has {len(props)} entries; at most {MAX_PROPERTIES} per command")
        return {}
    clean: dict[str, str] = {}
    for name, value in props.items():
        if len(name) > MAX_NAME_CHARS:
            errors.append(
                f"property name {name[:40]!r}... is longer than {MAX_NAME_CHARS} characters"
            )
            continue
        if not name:
            errors.append("property names must be non-empty")
            continue
        if not _is_unicode(name):
            errors.append(f"property name {name!r} {_NOT_UNICODE}")
            continue
        try:
            text = canonical_json(value)
        except ValueError as exc:
            errors.append(f"properties.{name}: {exc}")
            continue
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            errors.append(
                f"properties.{name}: the value is {size:,} bytes of JSON; at most "
                f"{MAX_VALUE_BYTES:,} (16 KB) per property"
            )
        else:
            clean[name] = text
    return clean


class BatchShapeError(ValueError):
    """The body is not a batch of at most ``max_commands`` commands; ``name`` is the API's error."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def check_batch(body: Any, max_commands: int = MAX_COMMANDS) -> list[Any]:
    """The commands of a batch body; raises ``BatchShapeError`` when it is not ``{"commands":
    [...]}`` or holds more than ``max_commands``. The one check for HTTP and ``propsync track``."""
    if not isinstance(body, dict) or not isinstance(body.get("commands"), list):
        raise BatchShapeError("InvalidBatch", 'the body must be an object with a "commands" list')
    commands: list[Any] = body["commands"]
    if len(commands) > max_commands:
        raise BatchShapeError(
            "TooManyCommands", f"{len(commands)} commands; at most {max_commands} per batch"
        )
    return commands


@dataclass
class Validated:
    """A request's commands, validated: one result per command, and the rows of its valid
    ``customers`` commands, ``(command index, id type, id value)`` and ``(command index,
    property, canonical JSON value, update time in us)`` (indexes 1-based)."""

    results: list[dict[str, Any]]
    ids: list[tuple[int, str, str]]
    cells: list[tuple[int, str, str, int]]


_PLAIN_VALUES = frozenset({str, int, float, bool, type(None)})


def _plain_customers(
    cmd: Any,
    index: int,
    latest_us: int,
    receive_us: int,
    id_rows: list[tuple[int, str, str]],
    cell_rows: list[tuple[int, str, str, int]],
) -> dict[str, Any] | None:
    """The result of a ``customers`` command that is plainly valid (what SDKs send: ASCII ids and
    names, scalar values, a number or no timestamp), its rows appended; None, with nothing
    appended, for anything else, which the general path (``_customers``) checks and words. At
    about a third of the general path's cost; a Hypothesis test holds the two to one result."""
    if type(cmd) is not dict or cmd.get("name") != "customers":
        return None
    if "command_id" in cmd:
        cid = cmd["command_id"]
        if not (type(cid) is int or (type(cid) is str and cid.isascii())):
            return None
    data = cmd.get("data")
    if type(data) is not dict:
        return None
    ids = data.get("customer_ids")
    props = data.get("properties")
    ts = data.get("update_timestamp")
    if (
        type(ids) is not dict
        or len(data) != 1 + ("properties" in data) + ("update_timestamp" in data)
        or (props is None and "properties" in data)  # "properties": null
        or (ts is not None and type(ts) is not int and type(ts) is not float)
    ):
        return None
    rows = _plain_rows(ids, props, ts, index, latest_us, receive_us)
    if rows is None:
        return None
    id_rows += rows[0]
    cell_rows += rows[1]
    if "command_id" in cmd:
        return {"success": True, "command_id": cmd["command_id"]}
    return {"success": True}


def _plain_rows(
    ids: dict[Any, Any],
    props: Any,
    ts: int | float | None,
    index: int,
    latest_us: int,
    receive_us: int,
) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str, int]]] | None:
    """The rows of a plainly valid command's ids, ``props`` (None: none) and number timestamp
    ``ts`` (None: the receive time), or None when they are not plainly valid; both plain paths
    (``_plain_customers`` on dicts, ``plain_request`` on decoded structs) check them here."""
    if not ids or len(ids) > MAX_IDS or not _plain_ids(ids):
        return None
    if ts is None:
        when = receive_us
    else:
        parsed = number_timestamp(ts)
        if parsed is None or parsed < 0 or parsed > latest_us:
            return None
        when = parsed
    cells = [] if props is None else _plain_cells(props, index, when)
    if cells is None:
        return None
    return [(index, k, v) for k, v in ids.items()], cells


def _plain_ids(ids: dict[Any, Any]) -> bool:
    for k, v in ids.items():
        if not (
            type(v) is str
            and v
            and k
            and len(v) <= MAX_ID_CHARS
            and len(k) <= MAX_ID_CHARS
            and v.isascii()
            and k.isascii()
            and ":" not in k
        ):
            return False
    return True


def _plain_cells(props: Any, index: int, when: int) -> list[tuple[int, str, str, int]] | None:
    if type(props) is not dict or len(props) > MAX_PROPERTIES:
        return None
    cells: list[tuple[int, str, str, int]] = []
    for name, value in props.items():
        if not name or len(name) > MAX_NAME_CHARS or not name.isascii():
            return None
        kind = type(value)
        if kind not in _PLAIN_VALUES or (kind is str and not value.isascii()):
            return None
        try:
            text = canonical_json(value)  # ASCII: its length is its size in bytes
        except ValueError:  # NaN, infinity
            return None
        if len(text) > MAX_VALUE_BYTES:
            return None
        cells.append((index, name, text, when))
    return cells


# Off only in the test that holds the fast path to the general one.
PLAIN_FAST_PATH = True


def validate_commands(
    commands: list[Any], *, receive_us: int, max_future_skew_us: int = 600_000_000
) -> Validated:
    """Validate every command in plain Python: the tracking intake's hot path, which journals
    the rows as they are; ``parse_commands`` makes them a batch."""
    results: list[dict[str, Any]] = []
    id_rows: list[tuple[int, str, str]] = []
    cell_rows: list[tuple[int, str, str, int]] = []
    timestamps = _Timestamps(commands)
    latest_us = receive_us + max_future_skew_us
    fast = PLAIN_FAST_PATH
    for i, cmd in enumerate(commands, start=1):
        if fast:
            plain = _plain_customers(cmd, i, latest_us, receive_us, id_rows, cell_rows)
            if plain is not None:
                results.append(plain)
                continue
        result: dict[str, Any]
        name = cmd.get("name") if isinstance(cmd, dict) else None
        has_id = isinstance(cmd, dict) and "command_id" in cmd
        if has_id and not _is_unicode_json(cmd["command_id"]):
            # Cannot be echoed (nor journaled): the command fails, its position identifies it.
            has_id = False
            result = {"success": False, "errors": [f"command_id {_NOT_UNICODE}"]}
        elif name == "system/time":
            result = {"success": True, "time": receive_us / 1_000_000}
        elif name == "system/cookie":
            result = {"success": True, "cookie": str(uuid.uuid4())}
        elif name == "customers":
            parsed = _customers(cmd.get("data"), receive_us, max_future_skew_us, i, timestamps)
            if isinstance(parsed, list):
                result = {"success": False, "errors": parsed}
            else:
                ids, props, ts = parsed
                id_rows += [(i, t, v) for t, v in ids.items()]
                cell_rows += [(i, p, v, ts) for p, v in props.items()]
                result = {"success": True}
        else:
            result = {"success": False, "errors": [f"unknown command {name!r}"]}
        if has_id:
            result["command_id"] = cmd["command_id"]
        results.append(result)
    return Validated(results, id_rows, cell_rows)


# -- whole requests of what SDKs send, decoded by type --------------------------------------------

# A body of this shape decodes straight into these objects: msgspec parses the JSON and checks its
# types in C, where orjson built dicts for validate_commands to check in Python. Only the checks a
# type cannot state run in Python afterwards (ASCII, lengths, no ":" in an id type, the time's
# range, the values' canonical JSON: the plain path's own functions). Any other body (another
# command, a null, a nested value, a key these types lack, non-ASCII text, JSON that is not UTF-8)
# does not decode, and goes the general way (``jsonlimits.loads``, ``check_batch``,
# ``validate_commands``), which words its errors. Unknown keys are refused, not skipped, so no
# value this path accepts can nest deeper than these types: the general path's depth limit holds.
# A Hypothesis test holds the two paths to one outcome (tests/test_tracking.py).


class _SdkData(msgspec.Struct, forbid_unknown_fields=True):
    customer_ids: dict[str, str]
    properties: dict[str, str | int | float | bool | None] | msgspec.UnsetType = msgspec.UNSET
    update_timestamp: int | float | msgspec.UnsetType = msgspec.UNSET


class _SdkCommand(msgspec.Struct, forbid_unknown_fields=True):
    name: Literal["customers"]
    data: _SdkData
    command_id: int | str | msgspec.UnsetType = msgspec.UNSET


class _SdkBatch(msgspec.Struct, forbid_unknown_fields=True):
    commands: list[_SdkCommand]


_SDK_BATCH = msgspec.json.Decoder(_SdkBatch)


@dataclass
class PlainRequest:
    """A request of plainly valid ``customers`` commands (``plain_request``): what
    ``validate_commands`` gives for it, and what its journal record needs besides."""

    checked: Validated
    command_ids: dict[int, Any]  # by 1-based command index, for the commands that have one
    commands: int


def plain_request(
    body: bytes,
    *,
    receive_us: int,
    max_future_skew_us: int = 600_000_000,
    max_commands: int = MAX_COMMANDS,
) -> PlainRequest | None:
    """The request ``body`` (JSON text) validated, when it holds at most ``max_commands`` plainly
    valid ``customers`` commands and nothing else; None for any other body, which the general
    path then parses and checks (see above)."""
    try:
        commands = _SDK_BATCH.decode(body).commands
    except msgspec.DecodeError:
        return None
    if len(commands) > max_commands:
        return None
    latest_us = receive_us + max_future_skew_us
    results: list[dict[str, Any]] = []
    id_rows: list[tuple[int, str, str]] = []
    cell_rows: list[tuple[int, str, str, int]] = []
    command_ids: dict[int, Any] = {}
    unset = msgspec.UNSET
    for i, cmd in enumerate(commands, start=1):
        data = cmd.data
        ts = None if data.update_timestamp is unset else data.update_timestamp
        props = None if data.properties is unset else data.properties
        rows = _plain_rows(data.customer_ids, props, ts, i, latest_us, receive_us)
        if rows is None:
            return None
        id_rows += rows[0]
        cell_rows += rows[1]
        cid = cmd.command_id
        if cid is unset:
            results.append({"success": True})
        else:  # text msgspec decodes is Unicode (a lone surrogate does not decode)
            command_ids[i] = cid
            results.append({"success": True, "command_id": cid})
    return PlainRequest(Validated(results, id_rows, cell_rows), command_ids, len(commands))


def parse_commands(
    body: Any,
    *,
    receive_us: int,
    max_future_skew_us: int = 600_000_000,
    batch_id: str | None = None,
    source: str = "tracking",
) -> TrackingBatch:
    """Validate every command into a batch. Raises ValueError when the body is not a batch."""
    if not isinstance(body, dict) or not isinstance(body.get("commands"), list):
        raise ValueError('body must be an object with a "commands" list')
    commands: list[Any] = body["commands"]
    checked = validate_commands(
        commands, receive_us=receive_us, max_future_skew_us=max_future_skew_us
    )
    results, id_rows, cell_rows = checked.results, checked.ids, checked.cells
    batch = UpdateBatch(
        batch_id=batch_id or f"trk-{uuid.uuid4().hex}",
        kind="track",
        source=source,
        ids=pl.DataFrame(id_rows, schema=IDS_SCHEMA, orient="row")
        if id_rows
        else empty(IDS_SCHEMA),
        cells=pl.DataFrame(cell_rows, schema=CELLS_SCHEMA, orient="row")
        if cell_rows
        else empty(CELLS_SCHEMA),
        rows_read=len(commands),
        cells_incoming=len(cell_rows),
        started_at_us=receive_us,
    )
    return TrackingBatch(results=results, receive_us=receive_us, batch=batch)


def finish_results(tb: TrackingBatch, rejections: pl.DataFrame) -> list[dict[str, Any]]:
    """Turn apply-time rejections (hard-id conflicts) into failed results of their commands."""
    for row in rejections.filter(pl.col("scope") == "row").iter_rows(named=True):
        result = tb.results[row["row_nr"] - 1]
        result["success"] = False
        result.setdefault("errors", []).append(row["reason"])
    return tb.results


def response(tb: Receipt, end_us: int) -> dict[str, Any]:
    return {
        "start_time": tb.receive_us / 1_000_000,
        "end_time": end_us / 1_000_000,
        "success": True,
        "results": tb.results,
    }
