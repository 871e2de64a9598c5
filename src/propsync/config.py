"""Typed settings, resolved from one ordered list of sources by one function.

Every entry point (the command line, the HTTP service, the Airflow DAG files and tasks) reads its
settings through :meth:`SettingsModel.resolve`: options given on the command line (or by the
caller), then ``PROPSYNC_*`` environment variables, then a TOML config file, then defaults. A value
outside its range is a usage error naming the setting as the user wrote it (the option, the
variable or the config file key) and what is allowed; never a validation traceback.

pydantic-settings reads the same sources, but merges them before it validates, so its errors name
a field and not the variable, option or file line that set it; this module keeps that link.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from propsync.errors import UsageError
from propsync.settings_env import CORE_ENV, duckdb_memory_limit as duckdb_memory_limit

DEFAULT_HARD_ID_TYPES = ("registered",)
M = TypeVar("M", bound=BaseModel)

# The names of the variables, and the memory-limit option, live in settings_env: readers use them
# without pydantic.

_MEMORY = re.compile(
    r"^\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*(?:[kmgt]i?b|[kmgt]|b)|(\d+(?:\.\d*)?)\s*%)\s*$", re.I
)


class SettingsModel(BaseModel):
    """Settings of one consumer. ``ENV`` names each field's variable, ``OPTIONS`` the command-line
    option of the fields the CLI takes, ``SECRET`` the fields whose values an error never shows."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    ENV: ClassVar[Mapping[str, str]] = {}
    OPTIONS: ClassVar[Mapping[str, str]] = {}
    SECRET: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def resolve(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        file: Mapping[str, object] | None = None,
        file_name: str = "the config file",
        options: Mapping[str, object] | None = None,
        labels: Mapping[str, str] | None = None,
        defaults: Mapping[str, object] | None = None,
    ) -> Self:
        """The settings from, strongest first: ``options`` (None values are not given; ``labels``
        says how the user wrote one, default its command-line option), the ``PROPSYNC_*``
        variables of ``env`` (the process's), ``file`` (a config file's keys, by field name),
        ``defaults`` (computed ones), the model's defaults. Raises ``UsageError`` naming the
        source of each invalid value."""
        env = os.environ if env is None else env
        values: dict[str, object] = dict(defaults or {})
        sources: dict[str, str] = {}
        for key, value in (file or {}).items():
            values[key] = value
            sources[key] = (
                f"{key} in {file_name}"
                if key in cls.SECRET
                else (f"{key} = {value!r} in {file_name}")
            )
        for key, var in cls.ENV.items():
            raw = env.get(var, "").strip()
            if raw:
                values[key] = raw
                sources[key] = var if key in cls.SECRET else f"{var}={raw}"
        for key, value in (options or {}).items():
            if value is not None:
                values[key] = value
                given = (labels or {}).get(key)
                sources[key] = given or f"{cls.OPTIONS.get(key, key)} {shown(value)}"
        return validated(cls, values, sources)


class Settings(SettingsModel):
    """The core settings every writer and reader of a warehouse shares."""

    ENV: ClassVar[Mapping[str, str]] = CORE_ENV
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "warehouse": "--warehouse",
        "max_reject_ratio": "--max-reject-ratio",
    }

    warehouse: Path = Field(default=Path("warehouse"))
    hard_id_types: tuple[str, ...] = DEFAULT_HARD_ID_TYPES
    # A far-future timestamp would freeze a property forever, so it is rejected.
    max_future_skew_seconds: float = Field(default=600.0, ge=0, description="seconds")
    max_reject_ratio: float = Field(default=0.05, ge=0, le=1)
    lock_timeout_seconds: float = Field(default=600.0, ge=0, description="seconds")
    keep_published_versions: int = Field(default=3, ge=1)
    # Run files (each batch's changes, store/runs.py) kept behind the published version: a reader
    # further behind (an HTTP service that was stopped) rebuilds its read model instead.
    keep_runs: int = Field(default=1000, ge=1)
    # Published files a compaction replaced stay this long, so an analyst's session opened on an
    # older version keeps working (store/catalog.py).
    file_retention_seconds: float = Field(default=3600.0, ge=0, description="seconds")
    # Writers fold the published files when due (store/compaction.py): the command line in a
    # detached process, the HTTP service in its applier thread, the DAGs in their publish task.
    auto_compact: bool = True
    # The writer's DuckDB memory_limit (DuckDB's own default is 80% of RAM). 768MB keeps a 1M-row x
    # 10-property import under 2 GB of RSS in all; DuckDB spills the rest to <warehouse>/tmp.
    # "none" lifts the cap; on 1M x 10 that was no faster here (docs/benchmarks.md).
    duckdb_memory_limit: str | None = "768MB"
    # Batches staging more updates than this are audited on a deterministic sample of customers
    # of about this many updates (see store.apply._audit_modulus); smaller ones in full.
    audit_full_max_updates: int = Field(default=1_000_000, ge=1)

    @field_validator("warehouse")
    @classmethod
    def _directory(cls, v: Path) -> Path:
        if v.exists() and not v.is_dir():  # a missing one is created by the first write
            raise ValueError(f"{str(v)!r} exists and is not a directory")
        return v

    @field_validator("hard_id_types", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(part.strip() for part in v.split(",") if part.strip())
        return v

    @field_validator("hard_id_types")
    @classmethod
    def _id_types(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not t or ":" in t for t in v):
            raise ValueError("id types must be non-empty and contain no ':'")
        return v

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if duckdb_memory_limit(v) is None:
            return v
        m = _MEMORY.match(v or "")
        if m is None or float(m.group(1) or m.group(2)) <= 0 or float(m.group(2) or 0) > 100:
            raise ValueError(
                "must be a size with its unit (e.g. 768MB, 2GiB), a share of RAM (50%) or none"
            )
        return v

    @property
    def max_future_skew_us(self) -> int:
        """``max_future_skew_seconds`` in microseconds, as timestamps are compared."""
        return round(self.max_future_skew_seconds * 1_000_000)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        **overrides: object,
    ) -> Settings:
        """Settings from ``PROPSYNC_*`` variables of ``env`` (the process's), overridden by
        ``overrides`` (see :meth:`SettingsModel.resolve`)."""
        return cls.resolve(env=env, options=overrides, labels=labels)


ENV_VARS = CORE_ENV


def shown(value: object) -> str:
    """A value as the user wrote it, near enough (2.0 from ``--x 2`` shows as 2)."""
    return format(value, "g") if isinstance(value, float) else str(value)


def _bounds(info: FieldInfo) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for m in info.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(m, attr, None) is not None:
                found[attr] = getattr(m, attr)
    return found


def allowed(info: FieldInfo) -> str | None:
    """What a numeric field accepts, in words: "a number from 0 to 1", "a whole number >= 1"."""
    kinds = (info.annotation, *get_args(info.annotation))
    kind = "a whole number" if int in kinds else "a number" if float in kinds else None
    if kind is None:
        return None
    b = _bounds(info)
    if "ge" in b and "le" in b:
        text = f"{kind} from {b['ge']:g} to {b['le']:g}"
    else:
        ops = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
        text = " ".join([kind] + [f"{ops[k]} {v:g}" for k, v in b.items()])
    if type(None) in kinds:
        text += " or auto"
    return f"{text} ({info.description})" if info.description else text


def _problem(model: type[BaseModel], error: Any, sources: Mapping[str, str]) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    where = sources.get(field, field or "settings")
    info = model.model_fields.get(field)
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown setting"
    rule = allowed(info) if info is not None else None
    if rule is not None:
        return f"{where}: must be {rule}"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


def validated(model: type[M], values: Mapping[str, object], sources: Mapping[str, str]) -> M:
    """``model`` from ``values``; a ``UsageError`` naming each bad value by its source."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(_problem(model, e, sources) for e in exc.errors())
        raise UsageError(f"invalid setting: {problems}") from None


def read_config_file(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """A TOML config file's keys; none for no file."""
    if path is None:
        return {}
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file {str(p)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
