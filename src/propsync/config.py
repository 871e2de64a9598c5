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
    # DuckDB's own default (80% of RAM) unless set. Measured: a 10M-cell MERGE under a 1GB limit
    # spills so much it did not finish in 15 minutes (docs/benchmarks.md), so no low default.
    duckdb_memory_limit: str | None = None

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
        }
        for key, var in mapping.items():
            if env.get(var):
                values[key] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
