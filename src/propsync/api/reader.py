"""Reads for the HTTP service: the SQLite read model that follows the published versions.

The read model (``propsync.store.read_model``, ``serving/read_model.sqlite``) is built once from
the published version and then follows each newly published version by applying its run file,
so keeping up costs the batch, not the warehouse. Every worker process reads it (WAL mode: readers
never wait for the follower); each request thread has its own read-only SQLite connection, and a
GET reads the customer and the model's version in one transaction.

Following never blocks a request. Every read compares the ``propsync.duckdb`` symlink with the
last target it saw (one ``readlink``) and, when a new version was published, wakes the reader's
follower thread; that thread also looks every ``poll_seconds``. Only one process follows at a
time (the model's flock); the others find the lock taken and read what it commits. While the
background applier's follower process runs, the follower thread leaves the runs to it and only
builds (``ReadModel.follower_present``).

Bootstrap: when the service starts without a usable model (the first start on a warehouse, or
one that must be rebuilt: its runs were pruned, the warehouse was recreated), the follower thread
builds it in the background (about a minute on 1M customers x 10 properties), and reads come from
the plain published DuckDB file meanwhile, following the symlink as it moves: correct answers, but
each read scans the tables (about half a second at 1M, docs/benchmarks.md). A read never fails for
want of a read model.

``wait_for(version)`` gives a writer in this process (PATCH) read-your-writes: it applies the run
of the version the edit published right away, synchronously (one small file), instead of waiting
for the follower thread's next turn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from propsync.errors import DatabaseInUse, NotPublished, UnknownCustomer
from propsync.store import read_model
from propsync.store.read import Customer, CustomerRef, Property, resolve
from propsync.store.read_model import BuildCancelled, FollowResult, ReadModel
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
    """``get_customer`` on a DuckDB file with two statements instead of three (the fallback)."""
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


def _version_of(target: str | None) -> int:
    m = None if target is None else _VERSION.search(target)
    return int(m.group(1)) if m else 0


@dataclass(eq=False)
class _Fallback:
    """The plain published file, read while there is no usable read model."""

    path: str  # the symlink target it was opened through
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

    def retire(self) -> None:
        with self.lock:
            self.retired = True
            close = self.users == 0
        if close:
            self.con.close()


class _Local(threading.local):
    con: sqlite3.Connection | None = None
    generation: int = -1


class PublishedReader:
    """Reads of the latest published version; see the module docstring."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        duckdb_threads: int = 1,
        memory_limit: str | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.warehouse = warehouse
        self.duckdb_threads = duckdb_threads  # of the fallback's DuckDB connections
        # Builds read the published version under the writer's memory limit.
        self.model = ReadModel(warehouse, memory_limit=memory_limit, duckdb_threads=duckdb_threads)
        self.poll_seconds = poll_seconds
        self.builds = 0  # read model (re)builds this reader did itself
        self.runs_applied = 0  # run files this reader applied itself
        self._usable = False  # the model exists and belongs to this warehouse
        self._checked = False  # whether ``_usable`` was looked at yet
        self._model_ino: int | None = None
        self._generation = 0  # bumped when the model file is another file: reopen connections
        self._local = _Local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._fallback: _Fallback | None = None
        self._open_lock = threading.Lock()
        self._changed = threading.Condition(self._open_lock)  # notified when the model changes
        self._follow_mutex = threading.Lock()  # one follow at a time in this process
        self._seen_target: str | None = None
        self._seen_version = 0  # the version of ``_seen_target``
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self._follower_lock = threading.Lock()

    # -- the request path

    def _target(self) -> str | None:
        try:
            return os.readlink(self.warehouse.current_path)
        except (FileNotFoundError, OSError):
            return None

    def _notice(self) -> str | None:
        """The symlink's target; a new one wakes the follower."""
        target = self._target()
        if target != self._seen_target:
            self._seen_version = _version_of(target)
            self._seen_target = target
            self._kick()
        if not self._checked:
            self._refresh()
        return target

    def _model_con(self) -> sqlite3.Connection:
        local = self._local
        if local.con is None or local.generation != self._generation:
            if local.con is not None:
                self._forget(local.con)
            con = read_model.connect_reader(self.model.path)
            with self._connections_lock:
                self._connections.append(con)
            local.con, local.generation = con, self._generation
        return local.con

    def _forget(self, con: sqlite3.Connection) -> None:
        with self._connections_lock, contextlib.suppress(ValueError):
            self._connections.remove(con)
        con.close()

    def _from_model(self, ref: CustomerRef) -> tuple[Customer | None, int] | None:
        """``ref`` from the read model, or None when the model cannot answer (use the fallback)."""
        try:
            customer, version = read_model.read_customer(self._model_con(), ref)
        except sqlite3.Error as exc:
            log.warning("the read model cannot be read (%s): reading the published file", exc)
            self._set_usable(False)
            self._kick()
            return None
        if version > self._seen_version and version > self.warehouse.published_version():
            # Ahead of what is published: a model of a warehouse that was recreated since.
            self._set_usable(False)
            self._kick()
            return None
        return customer, version

    def _published_target(self) -> str:
        target = self._notice()
        if target is None:
            raise NotPublished(
                f"warehouse {str(self.warehouse.root)!r} has no published version yet",
                warehouse=str(self.warehouse.root),
            )
        return target

    def model_customer(self, ref: CustomerRef) -> tuple[Customer, int] | None:
        """``ref`` from the read model, and its version; None when the model cannot answer now
        (not built yet, unreadable): then only ``customer`` can, from the published file. Never
        scans a DuckDB file, so it is cheap enough for the event loop (``api/fastpath.py``)."""
        self._published_target()
        if not self._usable or (found := self._from_model(ref)) is None:
            return None
        customer, version = found
        fallback = self._fallback
        if fallback is not None and version < fallback.version:
            # The model was built from an older version than the published file already served
            # (publishes went on during its build): never answer from an older version.
            return None
        if customer is None:
            raise UnknownCustomer(f"no customer {str(ref)!r}", customer=str(ref))
        return customer, version

    def customer(self, ref: CustomerRef) -> tuple[Customer, int]:
        """``ref`` as of the newest version served, and that version."""
        if (found := self.model_customer(ref)) is not None:
            return found
        target = self._published_target()
        with self._fallback_cursor(target) as (cur, version):
            return fetch_customer(cur, ref), version

    def read_published(self, ref: CustomerRef) -> Customer:
        """Read ``ref`` from the current published file itself (no indexes: scans), bypassing
        the read model; for an edit whose version the model has not reached in time."""
        con = self._connect(self.warehouse.published_file())
        try:
            return fetch_customer(con, ref)
        finally:
            con.close()

    def segments(self) -> read_model.SegmentsState | None:
        """The read model's segments and a fold's progress; None while reads come from the
        published file (no model yet) or the model cannot be read."""
        if not self._usable:
            return None
        try:
            return read_model.segments_state(self._model_con())
        except sqlite3.Error:
            return None

    @property
    def version(self) -> int:
        """The version served now (0: none yet)."""
        if self._usable:
            with contextlib.suppress(sqlite3.Error):
                return read_model.model_version(self._model_con())
        fallback = self._fallback
        return 0 if fallback is None else fallback.version

    @property
    def indexed(self) -> bool:
        """Whether reads come from the read model (False: the plain published file)."""
        return self._usable

    def wait_for(self, version: int, timeout: float, *, indexed: bool = False) -> bool:
        """Wait up to ``timeout`` seconds until the served version is at least ``version`` (and,
        with ``indexed``, served from the read model rather than the plain published file).

        With a usable model this follows the published runs synchronously (the version an edit
        in this process just published is one small run), unless another process is following:
        then it waits for that one's commit. Never (re)builds: that is the follower thread's."""
        deadline = time.monotonic() + timeout
        target = self._notice()
        while True:
            if self._usable:
                if self.version >= version:
                    return True
                remaining = deadline - time.monotonic()
                if self._follow_mutex.acquire(timeout=max(0.0, remaining)):
                    try:
                        self._follow(
                            lock_timeout=max(0.0, deadline - time.monotonic()), build=False
                        )
                    except Exception:
                        log.exception("following the read model for an edit failed")
                    finally:
                        self._follow_mutex.release()
                    if self._usable and self.version >= version:
                        return True
            else:
                if not indexed and target is not None:
                    with self._fallback_cursor(target) as (_, served):
                        if served >= version:
                            return True
                self._refresh()  # built by another process meanwhile?
                if self._usable:
                    continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(0.05, remaining))
            target = self._target()

    # -- the fallback: the plain published file

    def _connect(self, path: Path) -> duckdb.DuckDBPyConnection:
        # The build's configuration: DuckDB refuses a second one for a file open in the process.
        con = connect_duckdb(
            path, read_only=True, config=self.model.duckdb_config(), root=self.warehouse.root
        )
        con.execute("SET enable_progress_bar = false")  # no progress bars in logs
        return con

    @contextlib.contextmanager
    def _fallback_cursor(self, target: str) -> Iterator[tuple[duckdb.DuckDBPyConnection, int]]:
        fallback = self._acquire_fallback(target)
        try:
            cur = fallback.con.cursor()
            try:
                yield cur, fallback.version
            finally:
                cur.close()
        finally:
            fallback.release()

    def _acquire_fallback(self, target: str) -> _Fallback:
        while True:
            current = self._fallback
            if current is None or (
                current.path != target and current.version < _version_of(target)
            ):
                current = self._open_fallback(target)
            with current.lock:
                if not current.retired:
                    current.users += 1
                    return current
            # Retired between the lookup and the lock: a newer one is open; take that.
            target = self._target() or target

    def _open_fallback(self, target: str) -> _Fallback:
        with self._open_lock:
            current = self._fallback
            version = _version_of(target)
            if current is not None and (current.path == target or current.version >= version):
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
                    target, version = newer, _version_of(newer)
            else:
                raise NotPublished(
                    f"warehouse {str(self.warehouse.root)!r}: its published versions changed "
                    "faster than they could be opened",
                    warehouse=str(self.warehouse.root),
                )
            new = _Fallback(target, version, con)
            self._fallback = new
            if current is not None:
                current.retire()
            return new

    # -- the follower

    def start(self) -> None:
        """Start the follower thread now (else with the first read), e.g. when a service starts:
        it builds the read model if there is none, else catches up on the runs."""
        self._kick()

    def _kick(self) -> None:
        if self._stop.is_set():
            return
        if self._follower is None:
            with self._follower_lock:
                if self._follower is None and not self._stop.is_set():
                    self._follower = threading.Thread(
                        target=self._follow_loop, name="read-model-follower", daemon=True
                    )
                    self._follower.start()
        self._wake.set()

    def _set_usable(self, usable: bool) -> None:
        with self._open_lock:
            changed = usable != self._usable
            self._usable = usable
            self._checked = True
            fallback = None
            if usable:
                fallback, self._fallback = self._fallback, None
            self._changed.notify_all()
        if fallback is not None:
            fallback.retire()  # its connection closes once its last reader is done
        if changed and usable:
            log.info("reading from the read model %s", self.model.path)
        elif changed:
            log.info("reading from the published file until the read model is rebuilt")

    def _check_file(self) -> None:
        """A model file that is another file than the one open (removed and rebuilt by hand):
        connections are reopened."""
        try:
            ino: int | None = os.stat(self.model.path).st_ino
        except FileNotFoundError:
            ino = None
        if ino != self._model_ino:
            if self._model_ino is not None:
                self._generation += 1
            self._model_ino = ino

    def _refresh(self) -> None:
        """Whether the model (built or followed by this or another process) can be read."""
        state = self.model.state()
        published = self.warehouse.published_version()  # after the state: it only grows
        self._check_file()
        self._set_usable(state is not None and not self.model.rebuild_reason(state, published))

    def _follow(
        self, *, lock_timeout: float, build: bool, apply_runs: bool = True, maintain: bool = False
    ) -> FollowResult | None:
        """One follow (call holding ``_follow_mutex``)."""
        result = self.model.follow(
            lock_timeout=lock_timeout,
            cancel=self._stop,
            build=build,
            apply_runs=apply_runs,
            maintain=maintain,
        )
        if result is None or (result.reason and not result.rebuilt):
            self._refresh()  # another process follows (or builds), or a build is due
            if result is not None:
                self.runs_applied += result.runs
                self._wake.set()  # the follower thread builds
            return result
        self.builds += result.rebuilt
        self.runs_applied += result.runs
        self._check_file()
        self._set_usable(result.version > 0)
        return result

    def _follow_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                with self._follow_mutex:
                    # The applier's follower process, where there is one, applies the runs: a
                    # worker that did took the cores of the requests it serves.
                    dedicated = self.model.follower_present()
                    result = self._follow(
                        lock_timeout=0.0,
                        build=True,
                        apply_runs=not dedicated,
                        maintain=not dedicated,
                    )
                if result is not None and result.maintenance:
                    self._wake.set()  # the next step at once
                failures = 0
            except BuildCancelled:
                break
            except NotPublished:
                continue
            except Exception as exc:
                failures += 1
                pause = min(60.0, 2.0**failures)
                text = "following the read model failed; reads keep version %d; "
                args = (self.version, pause)
                if isinstance(exc, DatabaseInUse):  # a clear cause: no traceback
                    log.warning(text + "retrying in %g s: %s", *args, exc.message)
                else:
                    log.exception(text + "retrying in %g s", *args)
                self._stop.wait(pause)
                self._wake.set()

    def close(self) -> None:
        """Stop the follower (a build in progress is cancelled) and close every connection."""
        self._stop.set()
        self._wake.set()
        with self._follower_lock:
            follower = self._follower
        if follower is not None:
            follower.join(60)
            if follower.is_alive():
                log.warning("the read model follower did not stop within 60 s")
        with self._open_lock:
            fallback, self._fallback = self._fallback, None
            self._usable = False
            self._changed.notify_all()
        if fallback is not None:
            fallback.retire()
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for con in connections:
            con.close()
