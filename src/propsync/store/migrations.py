"""Warehouse schema versions and the in-place upgrades between them.

``meta.schema_version`` in ``work.duckdb`` records the layout a warehouse was written in. Release
0.1.0 recorded none: its warehouses are layout 0. Every writer runs the pending upgrades when it
opens the working database (under the write lock), with one log line per upgrade;
``propsync migrate`` runs them on demand. Each upgrade is crash-safe: its file changes are
idempotent and come first, and the new version is recorded last, in one transaction, so a crash
leaves the old version recorded and the next writer redoes the upgrade.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from propsync.errors import UsageError

if TYPE_CHECKING:
    from propsync.store.warehouse import Warehouse

log = logging.getLogger("propsync.migrations")

# The layout this release writes.
SCHEMA_VERSION = 1

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


class WarehouseTooNew(UsageError):
    """The warehouse was written by a newer propsync; this one must not touch it."""


@dataclass(frozen=True)
class Migration:
    from_version: int
    description: str
    apply: Callable[[Path, duckdb.DuckDBPyConnection], None]


@dataclass(frozen=True)
class MigrationResult:
    from_version: int
    to_version: int
    applied: tuple[str, ...]


def _published_read_only(root: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Release 0.1.0 left published versions writable: an analyst's read-write session could
    change what readers see. Make every published version read-only on disk (0444)."""
    published = root / "published"
    if not published.is_dir():
        return
    for path in published.glob("v*.duckdb"):
        os.chmod(path, _READ_ONLY)


MIGRATIONS: dict[int, Migration] = {
    0: Migration(0, "published versions read-only; schema version recorded", _published_read_only),
}


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


def _set_schema_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM meta WHERE key = 'schema_version'")
    con.execute("INSERT INTO meta VALUES ('schema_version', $v)", {"v": str(version)})
    con.execute("COMMIT")


def is_fresh(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the database has no tables yet: a warehouse being created."""
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return int(rows[0][0]) == 0


def stamp_current(con: duckdb.DuckDBPyConnection) -> None:
    """Record that a warehouse created by this release is at the current layout."""
    _set_schema_version(con, SCHEMA_VERSION)


def migrate(warehouse: Warehouse, lock_timeout: float) -> MigrationResult:
    """``propsync migrate``: take the write lock and run the pending upgrades, if any."""
    if not warehouse.work_path.is_file():
        raise UsageError(
            f"warehouse {str(warehouse.root)!r} has no working database "
            f"({warehouse.work_path.name}): nothing to migrate",
            warehouse=str(warehouse.root),
        )
    with warehouse.write_lock(lock_timeout):
        warehouse.connect_work().close()
    return warehouse.last_migration or MigrationResult(SCHEMA_VERSION, SCHEMA_VERSION, ())


def refuse_newer(root: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Raise WarehouseTooNew before anything is written when a newer release wrote the warehouse."""
    start = schema_version(con)
    if start > SCHEMA_VERSION:
        raise WarehouseTooNew(
            f"warehouse {str(root)!r} has schema version {start}; this propsync writes "
            f"version {SCHEMA_VERSION}: upgrade propsync to use it",
            warehouse=str(root),
            schema_version=start,
        )


def upgrade(root: Path, con: duckdb.DuckDBPyConnection) -> MigrationResult:
    """Run every pending upgrade of the warehouse at ``root`` (call under the write lock)."""
    refuse_newer(root, con)
    start = schema_version(con)
    applied = []
    for version in range(start, SCHEMA_VERSION):
        step = MIGRATIONS[version]
        log.warning(
            "propsync: upgrading warehouse %s from schema version %d to %d: %s",
            root,
            version,
            version + 1,
            step.description,
        )
        step.apply(root, con)
        _set_schema_version(con, version + 1)
        applied.append(step.description)
    return MigrationResult(start, SCHEMA_VERSION, tuple(applied))
