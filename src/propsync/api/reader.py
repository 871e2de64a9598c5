"""Reads for the HTTP service: read-only DuckDB connections to indexed serving copies.

Published versions carry no indexes (``Warehouse.publish`` is a plain copy); the service reads
from serving copies, published versions with the read indexes built in them
(``propsync.store.serving``). ``PublishedReader`` keeps one read-only connection to the version it
serves, shared by all requests; each request reads through its own cursor (DuckDB connections must
not be used by two threads at once; cursors are cheap).

Following new versions never blocks a request on an index build. Every read compares the
``propsync.duckdb`` symlink with the last target it saw (one ``readlink``) and, when a new version
was published, wakes the reader's builder thread; that thread also looks every ``poll_seconds``.
The builder makes (or, when another worker or process built it already, finds) the serving copy
of the newest published version, intermediate versions are skipped, and switches to it once it is
complete. Until then requests keep reading the version they have. A version is never replaced by
an older one; connections to superseded versions close once their last reader is done.

Bootstrap: when the service starts and a serving copy exists, it serves the newest one (and
builds the current version's in the background if that one is newer). When none exists yet (the
first start on a warehouse, or nothing published when the service started), reads come from the
plain published file, following the symlink as it moves, until the first serving copy is ready:
correct answers, but without indexes each read scans the tables (about half a second on 1M
customers x 10 properties, docs/benchmarks.md). A read therefore never fails for want of a
serving copy.

``wait_for(version)`` lets a writer in this process (PATCH) wait until the reader serves a version
at least as new as the one it published: read-your-writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from propsync.errors import DatabaseInUse, NotPublished, UnknownCustomer
from propsync.store.read import Customer, CustomerRef, Property, resolve
from propsync.store.serving import BuildCancelled, ServingCopies, ServingCopy
from propsync.store.warehouse import Warehouse, connect_duckdb

log = logging.getLogger("propsync.api")

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
    path: str  # for a plain published version: the symlink target it was opened through
    version: int
    con: duckdb.DuckDBPyConnection
    indexed: bool  # a serving copy (True) or the plain published file (bootstrap)
    users: int = 0
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            close = self.retired and self.users == 0
        if close:
            self.con.close()

    def retire(self) -> None:
        with self.lock:
            self.retired = True
            close = self.users == 0
        if close:
            self.con.close()


class PublishedReader:
    """Reads of the latest served version; see the module docstring."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        duckdb_threads: int = 1,
        memory_limit: str | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.warehouse = warehouse
        self.duckdb_threads = duckdb_threads
        # Builds run under the writer's memory limit (Settings.duckdb_memory_limit).
        self.copies = ServingCopies(warehouse, memory_limit=memory_limit)
        self.poll_seconds = poll_seconds
        # Serving copies this reader built itself (others it found built by another process).
        self.builds = 0
        self._current: _Version | None = None
        self._open_lock = threading.Lock()
        self._changed = threading.Condition(self._open_lock)  # notified on every switch
        self._seen_target: str | None = None
        self._seen_version = 0  # the version of ``_seen_target``
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._builder: threading.Thread | None = None
        self._builder_lock = threading.Lock()

    # -- the request path

    def _target(self) -> str | None:
        try:
            return os.readlink(self.warehouse.current_path)
        except (FileNotFoundError, OSError):
            return None

    def _acquire(self) -> _Version:
        target = self._target()
        if target != self._seen_target:  # a new publish: let the builder know now
            m = None if target is None else _VERSION.search(target)
            self._seen_version = int(m.group(1)) if m else 0
            self._seen_target = target
            self._kick()
        while True:
            current = self._current
            if current is None or (
                not current.indexed and target is not None and current.path != target
            ):
                current = self._open_fallback(target)
            elif current.indexed and current.version < self._seen_version:
                # Behind the published version: if another worker or process has built its
                # serving copy already, switch now (one stat; an open, never a build), so that
                # every worker serves an edit's version once the worker that made it does.
                path = self.copies.path(self._seen_version)
                if path.exists():
                    self._switch(ServingCopy(self._seen_version, path))
                    current = self._current or current
            with current.lock:
                if not current.retired:
                    current.users += 1
                    return current
            # Retired between the lookup and the lock: a newer version is open now; take that.
            target = self._target()

    def _connect(self, path: Path) -> duckdb.DuckDBPyConnection:
        con = connect_duckdb(path, read_only=True, config={"threads": str(self.duckdb_threads)})
        con.execute("SET enable_progress_bar = false")  # no progress bars in logs
        return con

    def _install(self, new: _Version) -> None:
        """Make ``new`` the served version (call holding ``_open_lock``)."""
        old, self._current = self._current, new
        self._changed.notify_all()
        if old is not None:
            old.retire()

    def _open_fallback(self, target: str | None) -> _Version:
        """Without a serving copy open: the newest serving copy if there is one, else the plain
        published file (cheap opens, no index build)."""
        with self._open_lock:
            current = self._current
            if current is not None and (
                current.indexed or target is None or current.path == target
            ):
                return current
            m = None if target is None else _VERSION.search(target)
            version = int(m.group(1)) if m else 0
            if current is None:
                for _ in range(10):
                    copy = self.copies.newest()
                    if copy is None or (version and copy.version > version):
                        break  # none, or left over from before the warehouse was recreated
                    try:
                        con = self._connect(copy.path)
                    except (FileNotFoundError, duckdb.IOException):
                        continue  # pruned by a newer build meanwhile: look again
                    new = _Version(str(copy.path), copy.version, con, indexed=True)
                    self._install(new)
                    return new
            if target is None:
                raise NotPublished(
                    f"warehouse {str(self.warehouse.root)!r} has no published version yet",
                    warehouse=str(self.warehouse.root),
                )
            if current is not None and current.version >= version:
                return current  # never back to an older version
            for _ in range(10):
                try:
                    con = self._connect((self.warehouse.root / target).resolve())
                    break
                except (FileNotFoundError, duckdb.IOException):
                    # Pruned by newer publishes between the readlink and the open: take the newest.
                    newer = self._target()
                    if newer is None or newer == target:
                        raise
                    target = newer
                    m = _VERSION.search(target)
                    version = int(m.group(1)) if m else 0
            else:
                raise NotPublished(
                    f"warehouse {str(self.warehouse.root)!r}: its published versions changed "
                    "faster than they could be opened",
                    warehouse=str(self.warehouse.root),
                )
            new = _Version(target, version, con, indexed=False)
            self._install(new)
            return new

    @contextlib.contextmanager
    def cursor(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, int]]:
        """A cursor on the served version, and that version's number."""
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

    def read_published(self, ref: CustomerRef) -> Customer:
        """Read ``ref`` from the current published file itself (no indexes: scans), bypassing
        the served version; for an edit whose serving copy is late."""
        con = self._connect(self.warehouse.published_file())
        try:
            return fetch_customer(con, ref)
        finally:
            con.close()

    @property
    def version(self) -> int:
        """The version served now (0: none opened yet)."""
        current = self._current
        return 0 if current is None else current.version

    @property
    def indexed(self) -> bool:
        """Whether the version served now is a serving copy (False: the plain published file)."""
        current = self._current
        return current is not None and current.indexed

    def wait_for(self, version: int, timeout: float, *, indexed: bool = False) -> bool:
        """Wait up to ``timeout`` seconds until the served version is at least ``version`` (and,
        with ``indexed``, a serving copy rather than the plain published file)."""
        self._acquire().release()  # notices the publish; follows it at once while bootstrapping

        def served() -> bool:
            current = self._current
            return (
                current is not None
                and current.version >= version
                and (current.indexed or not indexed)
            )

        with self._changed:
            return self._changed.wait_for(served, timeout)

    # -- the builder

    def start(self) -> None:
        """Start the builder thread now (else with the first read), e.g. when a service starts."""
        self._kick()

    def _kick(self) -> None:
        if self._stop.is_set():
            return
        if self._builder is None:
            with self._builder_lock:
                if self._builder is None and not self._stop.is_set():
                    self._builder = threading.Thread(
                        target=self._build_loop, name="serving-copy-builder", daemon=True
                    )
                    self._builder.start()
        self._wake.set()

    def _needs_build(self) -> bool:
        published = self.warehouse.published_version()
        current = self._current
        return published > 0 and (
            current is None or not current.indexed or current.version < published
        )

    def _build_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if not self._needs_build():
                    continue
                copy = self.copies.ensure_newest(self._stop)
                if copy.built:
                    self.builds += 1
                self._switch(copy)
                failures = 0
                if copy.version < self.warehouse.published_version():
                    self._wake.set()  # published again meanwhile: build the newest at once
            except BuildCancelled:
                break
            except NotPublished:
                continue
            except Exception as exc:
                failures += 1
                pause = min(60.0, 2.0**failures)
                text = "building the serving copy failed; reads keep the version they have (%d); "
                args = (self.version, pause)
                if isinstance(exc, DatabaseInUse):  # a clear cause: no traceback
                    log.warning(text + "retrying in %g s: %s", *args, exc.message)
                else:
                    log.exception(text + "retrying in %g s", *args)
                self._stop.wait(pause)
                self._wake.set()

    def _switch(self, copy: ServingCopy) -> None:
        with self._open_lock:
            current = self._current
            if current is not None and (
                copy.version < current.version
                or (copy.version == current.version and current.indexed)
            ):
                return  # never back to an older version
            started = time.monotonic()
            try:
                con = self._connect(copy.path)
            except (FileNotFoundError, duckdb.IOException):
                self._wake.set()  # pruned by a newer build meanwhile: look again
                return
            self._install(_Version(str(copy.path), copy.version, con, indexed=True))
        log.info(
            "serving version %d from %s (opened in %.3f s)",
            copy.version,
            copy.path,
            time.monotonic() - started,
        )

    def close(self) -> None:
        """Stop the builder (a build in progress is interrupted) and close the connection."""
        self._stop.set()
        self._wake.set()
        with self._builder_lock:
            builder = self._builder
        if builder is not None:
            builder.join(60)
            if builder.is_alive():
                log.warning("the serving copy builder did not stop within 60 s")
        with self._open_lock:
            current, self._current = self._current, None
            self._changed.notify_all()
        if current is not None:
            current.retire()
