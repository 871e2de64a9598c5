"""Warehouse schema versions and the in-place upgrades between them.

``meta.schema_version`` in ``work.duckdb`` records the layout a warehouse was written in. Release
0.1.0 recorded none: its warehouses are layout 0. Every writer runs the pending upgrades when it
opens the working database (under the write lock), announced by one log line;
``propsync migrate`` runs them on demand. Each upgrade is crash-safe: its file changes are
idempotent and come first, and the new version is recorded last, in one transaction, so a crash
leaves the old version recorded and the next writer redoes the upgrade. An upgrade's database
changes run in the transaction that records the new version, so they land with it or not at all.

Layouts: 0 (release 0.1.0) and 1 have text-keyed tables ``customer_ids``, ``customer_aliases``
and ``properties``. Layout 2 keys the writer's tables by integers (``customer_keys``, ``id_keys``,
``alias_keys``, ``property_names``, ``property_values``); the three old names are views with the
old columns, so readers and analysts see no difference. Layout 3 publishes catalogs over
Parquet files instead of copies (``store/catalog.py``). Layout 4 adds ``id_hashes``, the lookup of
ids by a sorted 64-bit hash. Layout 5 gives the published files' rows their customer's integer key
as well (``catalog.LAYOUT``): the first publish after the upgrade writes them anew.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from propsync import identity, sql
from propsync.errors import UsageError
from propsync.store import meta, views

if TYPE_CHECKING:
    from propsync.config import Settings
    from propsync.store.warehouse import Warehouse

log = logging.getLogger("propsync.migrations")

# The layout this release writes.
SCHEMA_VERSION = 5

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


# The tables of layout 2, and layout 1's data moved into them (sql/migrate/).
_V2_TABLES = (
    "01_customer_key_seq",
    "02_customer_keys",
    "03_id_keys",
    "04_alias_keys",
    "05_property_id_seq",
    "06_property_names",
    "07_property_values",
)


def _integer_keys(root: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Key customers (BIGINT) and property names (INTEGER); the old tables become views."""
    for name in _V2_TABLES:
        con.execute(sql.load(f"schema/{name}"))
    for statement in sql.folder_statements("migrate", prefix="v2_"):
        con.execute(statement)
    for seq, table, column in (
        ("customer_key_seq", "customer_keys", "customer_key"),
        ("property_id_seq", "property_names", "property_id"),
    ):
        # A sequence's start is DDL, not a parameter; the value is an integer read just now.
        start = int(
            con.execute(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}").fetchall()[0][0]
        )
        con.execute(f"DROP SEQUENCE {seq}")
        con.execute(f"CREATE SEQUENCE {seq} START {start}")
    for statement in sql.schema_statements():
        con.execute(statement)
    views.refresh_wide_view(con)


def _published_catalogs(root: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Publish catalogs of views over Parquet files instead of copies (store/catalog.py). The
    working database gains the table of batch records still to publish; the next publish writes
    the whole state once as the first base (``Warehouse.publish``), ``propsync migrate`` at once."""
    con.execute(sql.load("schema/12_history_pending"))


def _id_hashes(root: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Look ids up by a 64-bit hash kept in sorted order (``id_hashes``) instead of joining
    every batch against all of ``id_keys`` on text."""
    for name in ("13_id_hash", "14_id_hashes"):
        con.execute(sql.load(f"schema/{name}"))
    for statement in sql.folder_statements("migrate", prefix="v4_"):
        con.execute(statement)
    identity.sort_id_hashes(con, force=True)


def _keyed_files(root: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Published files carry each row's customer key (``catalog.LAYOUT`` 5): the working database
    gains the keyed views a new base is written from; the next publish writes the whole state
    once as that base (``Warehouse.publish``), ``propsync migrate`` at once."""
    for name in (
        "23_internal_schema",
        "24_internal_customer_aliases",
        "25_internal_customer_ids",
        "26_internal_current_properties",
    ):
        con.execute(sql.load(f"schema/{name}"))


MIGRATIONS: dict[int, Migration] = {
    0: Migration(0, "published versions read-only; schema version recorded", _published_read_only),
    1: Migration(1, "integer keys for customers and property names", _integer_keys),
    2: Migration(
        2, "published versions are catalogs over Parquet files, not copies", _published_catalogs
    ),
    3: Migration(3, "customer ids looked up by a sorted hash", _id_hashes),
    4: Migration(4, "published files carry customer keys", _keyed_files),
}


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    return int(meta.get(con, "schema_version") or 0)


def _write_schema_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
    meta.put(con, "schema_version", str(version))


def _set_schema_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
    con.execute("BEGIN TRANSACTION")
    _write_schema_version(con, version)
    con.execute("COMMIT")


def schema_digest(con: duckdb.DuckDBPyConnection) -> str:
    """The digest of the schema statements last run on this database (``sql.schema_digest``)."""
    return meta.get(con, "schema_digest") or ""


def set_schema_digest(con: duckdb.DuckDBPyConnection, digest: str) -> None:
    con.execute("BEGIN TRANSACTION")
    meta.put(con, "schema_digest", digest)
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


def migrate(warehouse: Warehouse, settings: Settings) -> MigrationResult:
    """``propsync migrate``: take the write lock and run the pending upgrades, if any."""
    missing = warehouse.missing()
    if missing is not None:
        raise UsageError(missing)
    if not warehouse.work_path.is_file():
        raise UsageError(
            f"warehouse {str(warehouse.root)!r} has no working database "
            f"({warehouse.work_path.name}): nothing to migrate",
            warehouse=str(warehouse.root),
        )
    with warehouse.write_lock(settings.lock_timeout_seconds):
        con = warehouse.connect_work(settings.duckdb_memory_limit)
        try:
            version = warehouse.work_version(con)
            if version and warehouse.needs_publish(version):  # a copy of an older layout
                warehouse.publish(con, version)
        finally:
            con.close()
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
    if start < SCHEMA_VERSION:  # one line for the whole upgrade
        log.warning(
            "propsync: upgrading warehouse %s from schema version %d to %d: %s",
            root,
            start,
            SCHEMA_VERSION,
            "; ".join(MIGRATIONS[v].description for v in range(start, SCHEMA_VERSION)),
        )
    for version in range(start, SCHEMA_VERSION):
        step = MIGRATIONS[version]
        con.execute("BEGIN TRANSACTION")
        try:
            step.apply(root, con)
            _write_schema_version(con, version + 1)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        applied.append(step.description)
    return MigrationResult(start, SCHEMA_VERSION, tuple(applied))
