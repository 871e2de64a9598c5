"""Reads for the HTTP service: a read-only DuckDB connection to the latest published version.

The connection is opened once per published version and shared; each request reads through its
own cursor (DuckDB connections must not be used by two threads at once; cursors are cheap). Every
read compares the ``propsync.duckdb`` symlink target with the open version (one ``readlink``) and
reopens when a newer version was published, so a read never waits for a running import and never
sees a half-applied batch. Connections to superseded versions close once their last reader is done.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb

from propsync.errors import NotPublished, UnknownCustomer
from propsync.store.read import Customer, CustomerRef, Property, resolve
from propsync.store.warehouse import Warehouse

_VERSION = re.compile(r"v(\d+)\.duckdb$")

# The rows of propsync/sql/read/customer_ids.sql and customer_properties.sql in one statement (one
# parse, plan and execution instead of two); sorted here as those statements sort them. Equivalence
# with ``propsync.store.read.get_customer`` is tested (tests/api/test_reader.py).
_IDS_AND_PROPERTIES = """
SELECT 0 AS part, id_type AS name, id_value AS value, NULL::BIGINT AS update_ts
FROM customer_ids WHERE customer_id = $customer_id
UNION ALL
SELECT 1, property, value, update_ts
FROM properties WHERE customer_id = $customer_id
"""


def fetch_customer(con: duckdb.DuckDBPyConnection, ref: CustomerRef) -> Customer:
    """``get_customer`` with two statements instead of three (the GET hot path)."""
    customer_id = resolve(con, ref)
    if customer_id is None:
        raise UnknownCustomer(f"no customer {str(ref)!r}", customer=str(ref))
    ids: dict[str, list[str]] = {}
    props: list[Property] = []
    rows = con.execute(_IDS_AND_PROPERTIES, {"customer_id": customer_id}).fetchall()
    rows.sort(key=lambda r: (r[0], r[1], r[2]))  # (part, id type or property, value)
    for part, name, value, update_ts in rows:
        if part == 0:
            ids.setdefault(name, []).append(value)
        else:
            props.append(Property(name, value, update_ts))
    return Customer(customer_id, ids, props)


@dataclass(eq=False)
class _Version:
    target: str
    version: int
    con: duckdb.DuckDBPyConnection
    users: int = 0
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            close = self.retired and self.users == 0
        if close:
            self.con.close()


class PublishedReader:
    def __init__(self, warehouse: Warehouse, *, duckdb_threads: int = 1) -> None:
        self.warehouse = warehouse
        self.duckdb_threads = duckdb_threads
        self._current: _Version | None = None
        self._open_lock = threading.Lock()

    def _target(self) -> str | None:
        try:
            return os.readlink(self.warehouse.current_path)
        except (FileNotFoundError, OSError):
            return None

    def _acquire(self) -> _Version:
        target = self._target()
        while True:
            current = self._current
            if current is None or current.target != target:
                current = self._reopen(target)
            with current.lock:
                if not current.retired:
                    current.users += 1
                    return current
            # Retired between the lookup and the lock: a newer version is open now; take that.
            target = self._target()

    def _reopen(self, target: str | None) -> _Version:
        with self._open_lock:
            current = self._current
            if current is not None and current.target == target:
                return current
            if target is None:
                raise NotPublished(
                    f"warehouse {str(self.warehouse.root)!r} has no published version yet",
                    warehouse=str(self.warehouse.root),
                )
            path = (self.warehouse.root / target).resolve()
            con = duckdb.connect(
                str(path), read_only=True, config={"threads": str(self.duckdb_threads)}
            )
            con.execute("SET enable_progress_bar = false")  # no progress bars in logs
            m = _VERSION.search(target)
            new = _Version(target, int(m.group(1)) if m else 0, con)
            self._current = new
            if current is not None:
                with current.lock:
                    current.retired = True
                    close = current.users == 0
                if close:
                    current.con.close()
            return new

    @contextlib.contextmanager
    def cursor(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, int]]:
        """A cursor on the latest published version, and that version's number."""
        version = self._acquire()
        try:
            cur = version.con.cursor()
            try:
                yield cur, version.version
            finally:
                cur.close()
        finally:
            version.release()

    def customer(self, ref: CustomerRef) -> tuple[Customer, int]:
        with self.cursor() as (cur, version):
            return fetch_customer(cur, ref), version

    def refresh(self) -> int:
        """Open the latest published version now (after a synchronous write); return its number."""
        target = self._target()
        current = self._current
        if current is None or current.target != target:
            current = self._reopen(target)
        return current.version

    @property
    def version(self) -> int:
        current = self._current
        return 0 if current is None else current.version

    def close(self) -> None:
        with self._open_lock:
            current, self._current = self._current, None
        if current is not None:
            with current.lock:
                current.retired = True
                close = current.users == 0
            if close:
                current.con.close()
