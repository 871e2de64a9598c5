"""Typed settings. Values come from arguments, then ``PROPSYNC_*`` environment variables, then defaults."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_HARD_ID_TYPES = ("registered",)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    warehouse: Path = Field(default=Path("warehouse"))
    hard_id_types: tuple[str, ...] = DEFAULT_HARD_ID_TYPES
    # A far-future timestamp would freeze a property forever, so it is rejected.
    max_future_skew_seconds: float = Field(default=600.0, ge=0)
    max_reject_ratio: float = Field(default=0.05, ge=0, le=1)
    lock_timeout_seconds: float = Field(default=600.0, ge=0)
    keep_published_versions: int = Field(default=3, ge=1)
    # The writer's DuckDB memory_limit (DuckDB's own default is 80% of RAM). 768MB keeps a 1M-row x
    # 10-property import under 2 GB of RSS in all; DuckDB spills the rest to <warehouse>/tmp.
    # "none" lifts the cap; on 1M x 10 that was no faster here (docs/benchmarks.md).
    duckdb_memory_limit: str | None = "768MB"
    # Batches staging more updates than this are audited on a deterministic sample of customers
    # of about this many updates (see store.apply._audit_modulus); smaller ones in full.
    audit_full_max_updates: int = Field(default=1_000_000, ge=1)

    @field_validator("hard_id_types", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(part.strip() for part in v.split(",") if part.strip())
        return v

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        mapping = {
            "warehouse": "PROPSYNC_WAREHOUSE",
            "hard_id_types": "PROPSYNC_HARD_ID_TYPES",
            "max_future_skew_seconds": "PROPSYNC_MAX_FUTURE_SKEW",
            "max_reject_ratio": "PROPSYNC_MAX_REJECT_RATIO",
            "lock_timeout_seconds": "PROPSYNC_LOCK_TIMEOUT",
            "duckdb_memory_limit": "PROPSYNC_DUCKDB_MEMORY_LIMIT",
            "audit_full_max_updates": "PROPSYNC_AUDIT_FULL_MAX_UPDATES",
        }
        for key, var in mapping.items():
            if env.get(var):
                values[key] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


def duckdb_memory_limit(limit: str | None) -> str | None:
    """The DuckDB ``memory_limit`` option for a setting: None (DuckDB's own) for unset/none/default."""
    if not limit or limit.strip().lower() in ("none", "default"):
        return None
    return limit
