"""The mapping model of an import: which source columns become ids, properties and the update time.

The JSON shape is the specification's (``properties``, ``ids``, optional ``update_timestamp``,
``constant_columns``, ``timezone``). Every error names the offending field and value, and is raised
before any data is read or written.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from propsync import jsonlimits
from propsync.errors import MappingError, SourceError
from propsync.timestamps import supported_timezone

PropertyType = Literal["string", "longtext", "url", "number", "boolean", "date", "datetime", "list"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PropertyMapping(_Model):
    from_column: str = Field(min_length=1)
    to_property: str = Field(min_length=1)
    type: PropertyType = "string"


class IdMapping(_Model):
    from_column: str = Field(min_length=1)
    to_id: str = Field(min_length=1)


class TimestampMapping(_Model):
    from_column: str = Field(min_length=1)


class ConstantColumn(_Model):
    name: str = Field(min_length=1)
    value: str | int | float | bool | None


class Mapping(_Model):
    properties: list[PropertyMapping] = Field(default_factory=list)
    ids: list[IdMapping] = Field(min_length=1)
    update_timestamp: TimestampMapping | None = None
    constant_columns: list[ConstantColumn] = Field(default_factory=list)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        # An IANA name that the timestamp parser (Polars) knows too: zoneinfo alone also takes
        # local files such as "localtime" or "right/UTC", which then fail mid-import.
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            known = False
        else:
            known = supported_timezone(v)
        if not known:
            raise ValueError(f"unknown IANA timezone {v!r}")
        return v

    @field_validator("properties")
    @classmethod
    def _unique_properties(cls, v: list[PropertyMapping]) -> list[PropertyMapping]:
        _reject_duplicates((p.to_property for p in v), "to_property")
        return v

    @field_validator("ids")
    @classmethod
    def _unique_ids(cls, v: list[IdMapping]) -> list[IdMapping]:
        for i in v:
            if ":" in i.to_id:
                raise ValueError(f"to_id {i.to_id!r} must not contain ':'")
        _reject_duplicates((i.to_id for i in v), "to_id")
        return v

    @field_validator("constant_columns")
    @classmethod
    def _unique_constants(cls, v: list[ConstantColumn]) -> list[ConstantColumn]:
        _reject_duplicates((c.name for c in v), "name")
        return v

    def referenced_columns(self) -> list[tuple[str, str]]:
        """(field path, column name) for every column the mapping reads."""
        refs = [
            (f"properties[{i}].from_column", p.from_column) for i, p in enumerate(self.properties)
        ]
        refs += [(f"ids[{i}].from_column", m.from_column) for i, m in enumerate(self.ids)]
        if self.update_timestamp is not None:
            refs.append(("update_timestamp.from_column", self.update_timestamp.from_column))
        return refs

    def check_columns(self, source_columns: Iterable[str]) -> None:
        """Raise MappingError for a referenced column that is neither in the source nor a constant."""
        available = set(source_columns)
        constants = {c.name for c in self.constant_columns}
        for i, c in enumerate(self.constant_columns):
            if c.name in available:
                raise MappingError(
                    f"constant_columns[{i}].name {c.name!r} shadows a column of the source",
                    field=f"constant_columns[{i}].name",
                    value=c.name,
                )
        for field, column in self.referenced_columns():
            if column not in available and column not in constants:
                raise MappingError(
                    f"{field}: column {column!r} is not in the source "
                    f"(columns: {', '.join(sorted(available)) or 'none'}) nor a constant column",
                    field=field,
                    value=column,
                )


def _reject_duplicates(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"duplicate {what} {v!r}")
        seen.add(v)


def parse_mapping(data: Any) -> Mapping:
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(
            f"[{part}]" if isinstance(part, int) else str(part) for part in err["loc"]
        ).replace(".[", "[")
        value = err.get("input")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        try:
            shown = json.dumps(value, default=str)
        except RecursionError:  # a value nested deeper than json.dumps goes
            shown = f"a deeply nested {type(value).__name__}"
        if len(shown) > 200:
            shown = shown[:200] + "..."
        raise MappingError(
            f"invalid mapping at {field or '<root>'}: {msg} (got {shown})",
            field=field or "<root>",
            value=value,
        ) from None


def load_mapping(path: str | Path) -> Mapping:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SourceError(
            f"cannot read mapping file {str(p)!r}: {exc.strerror}", path=str(p)
        ) from None
    return parse_mapping(_mapping_json(raw, str(p)))


def _file_error(path: str, problem: str) -> MappingError:
    return MappingError(f"mapping file {path!r} {problem}", field="<file>", value=path)


def _mapping_json(raw: bytes, path: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_error(path, f"is not UTF-8 text (byte {exc.start + 1})") from None
    try:
        return jsonlimits.loads(text)
    except jsonlimits.JsonTooDeep as exc:
        raise _file_error(path, f"is not a mapping: {exc}") from None
    except json.JSONDecodeError as exc:
        raise _file_error(path, f"is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except ValueError as exc:  # NaN or Infinity
        raise _file_error(path, f"is not valid JSON: {exc}") from None
