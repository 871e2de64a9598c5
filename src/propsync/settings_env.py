"""The parts of the settings that need no pydantic: the ``PROPSYNC_*`` variables' names, DuckDB's
memory-limit option, and the warehouse of a command that only reads.

``propsync get`` must start fast (issue #13): importing pydantic and building ``config.Settings``
cost about a third of its start-up, and a read uses no setting but the warehouse.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CORE_ENV = {
    "warehouse": "PROPSYNC_WAREHOUSE",
    "hard_id_types": "PROPSYNC_HARD_ID_TYPES",
    "max_future_skew_seconds": "PROPSYNC_MAX_FUTURE_SKEW",
    "max_reject_ratio": "PROPSYNC_MAX_REJECT_RATIO",
    "lock_timeout_seconds": "PROPSYNC_LOCK_TIMEOUT",
    "duckdb_memory_limit": "PROPSYNC_DUCKDB_MEMORY_LIMIT",
    "audit_full_max_updates": "PROPSYNC_AUDIT_FULL_MAX_UPDATES",
    "keep_runs": "PROPSYNC_KEEP_RUNS",
    "keep_published_versions": "PROPSYNC_KEEP_VERSIONS",
    "file_retention_seconds": "PROPSYNC_FILE_RETENTION",
    "auto_compact": "PROPSYNC_AUTO_COMPACT",
}
DEFAULT_WAREHOUSE = Path("warehouse")


def duckdb_memory_limit(limit: str | None) -> str | None:
    """The DuckDB ``memory_limit`` option for a setting: None (DuckDB's own) for unset/none/default."""
    if not limit or limit.strip().lower() in ("none", "default"):
        return None
    return limit


def plain_warehouse(option: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The warehouse ``Settings.from_env(warehouse=option)`` would give, when no other
    ``PROPSYNC_*`` setting is set and the path is not a file: the only settings that validation
    could then refuse. None otherwise: the caller resolves them all with ``Settings``, which
    names what is wrong exactly as every other command does."""
    env = os.environ if env is None else env
    if any(env.get(var, "").strip() for key, var in CORE_ENV.items() if key != "warehouse"):
        return None
    if option is not None:
        path = Path(option) if option else None  # an empty option: as Settings has it
    else:
        raw = env.get(CORE_ENV["warehouse"], "").strip()
        path = Path(raw) if raw else DEFAULT_WAREHOUSE
    if path is None or (path.exists() and not path.is_dir()):
        return None
    return path
