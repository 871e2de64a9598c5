"""Tracking-API batches: ``{"commands": [...]}`` to per-command results and an UpdateBatch.

Commands follow the specification: ``customers`` (``customer_ids``, ``properties``, optional
``update_timestamp`` for all its properties, else the receive time), ``system/time`` and
``system/cookie``. A bad command gets ``{"success": false, "errors": [...]}``; the others apply.
That includes text JSON can carry but Unicode cannot (a lone surrogate escape, ``"\\ud800"``)
anywhere in a command: the CLI and the HTTP API share this parsing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import polars as pl

from propsync.batch import CELLS_SCHEMA, IDS_SCHEMA, UpdateBatch, empty
from propsync.timestamps import format_timestamp, parse_timestamp_value, parse_timestamps
from propsync.values import canonical_json

MAX_COMMANDS = 50

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
class TrackingBatch:
    batch: UpdateBatch
    results: list[dict[str, Any]]  # one per command; customers results are final after apply
    receive_us: int


def _update_timestamps(commands: list[Any]) -> dict[int, int | None]:
    """Every ``customers`` command's ``update_timestamp`` (by 1-based position), parsed with one
    vectorised ``parse_timestamps`` call per value type instead of one call per command."""
    groups: dict[Any, list[tuple[int, Any]]] = {}
    parsed: dict[int, int | None] = {}
    for i, cmd in enumerate(commands, start=1):
        data = cmd.get("data") if isinstance(cmd, dict) and cmd.get("name") == "customers" else None
        value = data.get("update_timestamp") if isinstance(data, dict) else None
        if value is None:
            continue
        if isinstance(value, str) and not _is_unicode(value):
            parsed[i] = None  # not a timestamp (Polars cannot even hold the text)
            continue
        if isinstance(value, bool) or (isinstance(value, int) and not -(2**63) < value < 2**63):
            dtype = None  # parse_timestamp_value's own rules (not a timestamp)
        else:
            dtype = {int: pl.Int64, float: pl.Float64, str: pl.String}.get(type(value))
        groups.setdefault(dtype, []).append((i, value))
    for dtype, items in groups.items():
        if dtype is None:
            parsed.update((i, parse_timestamp_value(v)) for i, v in items)
        else:
            series = parse_timestamps(pl.Series(values=[v for _, v in items], dtype=dtype))
            parsed.update(zip((i for i, _ in items), series.to_list(), strict=True))
    return parsed


def _customers(
    data: Any, receive_us: int, max_future_skew_us: int, parsed: int | None = None
) -> tuple[dict[str, str], dict[str, str], int] | list[str]:
    if not isinstance(data, dict):
        return ["data must be an object"]
    errors: list[str] = []
    ids = data.get("customer_ids")
    if not isinstance(ids, dict) or not ids:
        errors.append("customer_ids must be a non-empty object of id type to id value")
        ids = {}
    clean_ids: dict[str, str] = {}
    for k, v in ids.items():
        if isinstance(k, str) and not _is_unicode(k):
            errors.append(f"customer id type {k!r} {_NOT_UNICODE}")
        elif not k or ":" in k:
            errors.append(f"customer id type {k!r} must be non-empty and contain no ':'")
        elif isinstance(v, bool) or not isinstance(v, (str, int)) or v == "":
            errors.append(f"customer_ids.{k} must be a non-empty string")
        elif isinstance(v, str) and not _is_unicode(v):
            errors.append(f"customer_ids.{k} value {v!r} {_NOT_UNICODE}")
        else:
            clean_ids[k] = str(v)
    props = data.get("properties", {})
    clean_props: dict[str, str] = {}
    if not isinstance(props, dict):
        errors.append("properties must be an object")
    else:
        for name, value in props.items():
            if not name:
                errors.append("property names must be non-empty")
                continue
            if not _is_unicode(name):
                errors.append(f"property name {name!r} {_NOT_UNICODE}")
                continue
            try:
                clean_props[name] = canonical_json(value)
            except ValueError as exc:
                errors.append(f"properties.{name}: {exc}")
    ts = receive_us
    if data.get("update_timestamp") is not None:
        if parsed is None:
            errors.append(f"update_timestamp {data['update_timestamp']!r} is not a timestamp")
        elif parsed < 0:
            errors.append("update_timestamp must not be negative")
        elif parsed > receive_us + max_future_skew_us:
            errors.append(
                f"update_timestamp {format_timestamp(parsed)} is beyond the server time "
                f"{format_timestamp(receive_us)} + {max_future_skew_us / 1e6:g} s"
            )
        else:
            ts = parsed
    unknown = set(data) - {"customer_ids", "properties", "update_timestamp"}
    if unknown:
        errors.append(f"unknown keys in data: {', '.join(sorted(_shown(str(k)) for k in unknown))}")
    return errors if errors else (clean_ids, clean_props, ts)


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


def parse_commands(
    body: Any,
    *,
    receive_us: int,
    max_future_skew_us: int = 600_000_000,
    batch_id: str | None = None,
    source: str = "tracking",
) -> TrackingBatch:
    """Validate every command. Raises ValueError when the body itself is not a batch."""
    if not isinstance(body, dict) or not isinstance(body.get("commands"), list):
        raise ValueError('body must be an object with a "commands" list')
    commands: list[Any] = body["commands"]
    results: list[dict[str, Any]] = []
    id_rows: list[tuple[int, str, str]] = []
    cell_rows: list[tuple[int, str, str, int]] = []
    timestamps = _update_timestamps(commands)
    for i, cmd in enumerate(commands, start=1):
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
            parsed = _customers(cmd.get("data"), receive_us, max_future_skew_us, timestamps.get(i))
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
    return TrackingBatch(batch, results, receive_us)


def finish_results(tb: TrackingBatch, rejections: pl.DataFrame) -> list[dict[str, Any]]:
    """Turn apply-time rejections (hard-id conflicts) into failed results of their commands."""
    for row in rejections.filter(pl.col("scope") == "row").iter_rows(named=True):
        result = tb.results[row["row_nr"] - 1]
        result["success"] = False
        result.setdefault("errors", []).append(row["reason"])
    return tb.results


def response(tb: TrackingBatch, end_us: int) -> dict[str, Any]:
    return {
        "start_time": tb.receive_us / 1_000_000,
        "end_time": end_us / 1_000_000,
        "success": True,
        "results": tb.results,
    }
