"""The HTTP service's read model: a SQLite file that follows the published versions' run files.

::

    serving/read_model.sqlite       the model (WAL mode: every worker reads while one follows)
    serving/read_model.sqlite-wal   SQLite's write-ahead log and shared memory of the above
    serving/read_model.lock         flock(2): one follower (or builder) at a time, across processes
    serving/read_model.follower     flock(2), shared: a dedicated follower process is running
    serving/.read_model.sqlite.tmp  a build in progress; nobody reads it
    serving/tmp/                    DuckDB's spill space while a build sorts the published tables

Tables (``sql/read_model/schema/``): ``customer_ids`` (primary key (id_type, id_value), index on
customer_id), ``customer_aliases`` (primary key old_customer_id, index on customer_id),
``customers`` and ``property_names`` (the keys, below), ``properties`` (``WITHOUT ROWID``,
primary key (customer_key, property_key): a customer's properties are one short range of the
B-tree), ``recent_properties`` and ``recent_segments`` (below) and ``meta``. A point read is one
statement of a few primary-key probes (``read_customer``), the same answer as
``propsync.store.read.get_customer`` on the published DuckDB file.

**Keys**: ``properties`` and ``recent_properties`` name a customer by its integer key and a
property by its name's key (``property_names``), not by text: the 32-character id on each of 10M
rows was half of a 1M x 10 model, and a fold rewrites most of ``properties``' pages (a fold's CPU
a row 2.1-2.3 against 3.9-4.1 us, docs/benchmarks.md). The customer keys are the warehouse's own
(``customers``: customer_key <-> customer_id), which every row of the published files and runs
carries beside the id: a build streams the properties in key order, so its rows go in by
appending, and a follow writes its rows by key as they come; a new customer comes with its first
id, under a key above all the model holds. The name keys are the model's (a handful, mapped in
Python). A customer merged away keeps its key, with no rows under it.

**Build** (first start, or a rebuild): the published version is read through a read-only DuckDB
connection (``sql/read_model/published_*.sql``, in key order so SQLite appends), streamed in
Arrow record batches into ``executemany`` on a temporary SQLite file (no journal while it is
private), indexed, stamped with its version, fsync'd and renamed into place. A build that fails
or is killed leaves only the temporary file, which the next build removes. A *re*build (the model
exists and may be open in other processes) copies the new file into the live one with SQLite's
backup API, one write transaction: readers keep their snapshot until it commits, and no WAL file
is ever paired with a file it does not belong to (which renaming over an open WAL database
would do).

**Follow**: the model at version m reaches the published version p by applying the run files of
m+1..p (``store/runs.py``: merges, then ids, then properties, as
``tests/store/test_runs.py::fold`` does), each in one SQLite transaction that also sets
``meta.version`` (a follower behind takes consecutive runs together, ``GROUP_ROWS``): a crash at
any point leaves the model at some whole version. Its cost is the runs', never the warehouse's.
Runs above the published version are never read (they may be uncommitted or unpublished).

**Segments**: a follow does not update ``properties`` in place. Its property rows become a new
*segment* of ``recent_properties``, keyed (seg, customer_key, property_key) and written in key
order: an append at the B-tree's end, a row written once, where an upsert into
``properties`` dirtied (and wrote twice, to the WAL and back) a 4 KB page per row of a random
customer. A read takes, per property, the newest segment's row, else ``properties``' row
(``customer.sql``: one primary-key probe per live segment; ``current_properties.sql`` for
the whole model). The follower keeps the segments few (``maintenance_step``, one short
transaction per step, between follows):

- *merge*: once the newest ``FANOUT`` segments of a level (0: a follow's) are there, they become
  one segment of the next level, each key's newest row, in key order; up to ``MERGE_MAX_ROWS``.
- *fold*: once the recent rows would fill 1/``FOLD_SHARE`` of the model (or ``MAX_SEGMENTS``
  are live), every segment is folded into ``properties`` in slices of the customer keys
  (``FOLD_SLICE_ROWS`` rows each; ``meta.fold_through``/``fold_next`` record the progress), the
  newest recent row of each key replacing the older one there. Rows that many touch most pages
  of ``properties`` once, in key order, however large the model: the fold's cost per row stays.

A customer merged away loses its rows in ``properties`` and in every segment (the run lists the
survivor's winners), so no segment ever shadows the merge.

**Rebuild** when the model cannot follow: a run it needs was pruned (``RunMissing``), the model's
version is above the published one, or the run file of the model's version is not the one the
model applied (``meta.run_stamp``: inode, size and modification time), which tells a recreated
warehouse apart from the one the model was built from even at a higher version.

Only the holder of ``read_model.lock`` builds or follows; ``follow`` with a short lock timeout
returns ``None`` when another process holds it (that one is following; the WAL shows its
commits to every reader).

**Who follows.** The background applier of ``propsync serve`` has a follower process of its own
that follows every version (``follower_presence`` while it runs). While it is there, the server
workers leave the runs to it (``follow(apply_runs=False)``: they only build, when a build is
due) and apply runs themselves only for their own edits' read-your-writes. A worker that took
a large run also took its share of the cores from the requests it serves: at 1M customers under
50,000 tracked commands/s, workers that won the lock followed 13 runs (2.2M rows) in 36 s.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from propsync import sql
from propsync.config import duckdb_memory_limit
from propsync.errors import NotPublished, PropsyncError, UnknownCustomer, WarehouseLocked
from propsync.files import fsync_directory, fsync_file
from propsync.locks import exclusive_lock, held, presence
from propsync.store import runs
from propsync.store.read import Customer, CustomerRef, Property
from propsync.store.warehouse import VERSION_FILE, Warehouse, connect_duckdb

FORMAT = "5"  # the layout of the tables below; another value in a model's meta: rebuild
# Format 2 dropped properties.batch_id (no read used it; 26% of the file at 1M x 10); format 3
# added recent_properties (the follows' segments) and recent_segments; format 4 keyed both by
# integers (customers, property_names); format 5 takes the warehouse's customer keys.
FILE_NAME = "read_model.sqlite"
_PARTIAL = re.compile(r"^\.read_model\.sqlite\.tmp")
BATCH_ROWS = 100_000
# At most this many rows of runs applied in one transaction by a follower that is behind. Into a
# 1M x 10 model, upserts of 2M sorted rows cost 3.7 us a row plus 0.8 us of checkpoint CPU, where
# 400k cost 5.5 + 2.4-3.3 us and 50k 6.1 + 4.2-5.6 us: docs/benchmarks.md.
GROUP_ROWS = 2_000_000
PROGRESS_SECONDS = 10.0

# The recent segments (see the module docstring, "Segments"). Measured on the 1M x 10 model
# (docs/benchmarks.md): appending a follow's 25k sorted rows cost 2.0 us a row plus 0.3 us of
# checkpoint, where upserting them into properties cost 6.1 + 4.2-5.6 us; folding 1.6M rows
# into properties in slices cost 4.2 + 1.0 us a row.
FANOUT = 8  # this many segments of one level are merged into one of the next level
MERGE_MAX_ROWS = 250_000  # a larger merge is left to the fold: one transaction must stay short
FOLD_SLICE_ROWS = 100_000  # about this many recent rows folded per transaction
FOLD_MIN_ROWS = 100_000  # never fold fewer recent rows than this, unless MAX_SEGMENTS says so
# An eighth, not a third: at 20,000 commands/s into 1M x 10 a third let 48 segments pile up
# before each fold (lag p99 2.3-4.2 s in 3 rounds, against 1.6-1.8 s in 4), though at 50,000 the
# follower took 40% of a core against 54% (docs/benchmarks.md).
FOLD_SHARE = 8  # fold once the recent rows would fill 1/FOLD_SHARE of the model's file...
RECENT_ROW_BYTES = 100  # ... at about this many bytes each
MAX_SEGMENTS = 48  # a GET probes each live segment: fold once there are this many
_MAX_KEY = 2**63 - 1  # the last fold slice ends here: it takes every key drawn since the start

log = logging.getLogger("propsync.read_model")


class BuildCancelled(PropsyncError):
    """A build was cancelled (the service is stopping); its temporary file is removed."""


@dataclass(frozen=True)
class ModelState:
    version: int
    run_stamp: str
    format: str


@dataclass(frozen=True)
class FollowResult:
    version: int  # the model's version afterwards (0: nothing published)
    runs: int = 0  # run files applied
    rows: int = 0  # their rows
    rebuilt: bool = False  # built from the published version (first build or rebuild)
    reason: str = ""  # why it was (re)built
    seconds: float = 0.0
    maintenance: str = ""  # the maintenance step taken (maintain=True), "" when none


@dataclass(frozen=True)
class SegmentsState:
    segments: int  # live segments (a GET probes each)
    rows: int  # the rows they were written with
    fold: tuple[int, int] | None  # (slices done, slices) of a fold under way


def segments_state(con: sqlite3.Connection) -> SegmentsState:
    # One read transaction: the segments and the fold's progress of one snapshot.
    with _read_transaction(con):
        segments = con.execute(sql.load("read_model/list_segments")).fetchall()
        fold = _fold_under_way(con)
    progress = None if fold is None else (fold.next_slice, fold.slices)
    return SegmentsState(len(segments), sum(rows for _, _, rows in segments), progress)


@dataclass(frozen=True)
class _Fold:
    through: int  # the newest segment it folds
    next_slice: int
    slices: int
    top: int  # the largest customer key when it started: its slices cut [1, top]
    started: float  # time.time() of its first slice


def _fold_under_way(con: sqlite3.Connection) -> _Fold | None:
    """The fold under way, from its progress in ``meta`` (``_fold_slice`` writes it); None when
    there is none."""
    meta = dict(con.execute(sql.load("read_model/get_meta")).fetchall())
    through = int(meta.get("fold_through") or 0)
    if not through:
        return None
    return _Fold(
        through,
        int(meta["fold_next"]),
        int(meta["fold_slices"]),
        int(meta["fold_top"]),
        float(meta["fold_started"]),
    )


def run_stamp(root: Path, version: int) -> str:
    """What identifies the run file of ``version`` in this warehouse ("none": it has none)."""
    try:
        st = os.stat(runs.run_path(root, version))
    except FileNotFoundError:
        return "none"
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


# -- reading ---------------------------------------------------------------------------------------


def connect_reader(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection (the file must exist; it is never created here)."""
    con = sqlite3.connect(
        f"file:{os.fspath(path)}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    con.execute("PRAGMA busy_timeout = 5000")
    return con


def model_version(con: sqlite3.Connection) -> int:
    rows = con.execute(sql.load("read_model/get_version")).fetchall()
    return int(rows[0][0]) if rows else 0


def read_customer(con: sqlite3.Connection, ref: CustomerRef) -> tuple[Customer | None, int]:
    """``ref`` (None: unknown) and the model's version, read by one statement (one snapshot):
    ``customer.sql``, by id or by internal id. One statement instead of a transaction of five:
    the GET path's cost was mostly per statement, not per row."""
    rows = con.execute(sql.load("read_model/customer"), {"id_type": ref.id_type, "ref": ref.value})
    version = 0
    customer_id: str | None = None
    ids: dict[str, list[str]] = {}
    props: list[Property] = []
    for part, a, b, ts in rows:
        if part == 3:
            props.append(Property(a, b, ts))
        elif part == 2:
            ids.setdefault(a, []).append(b)
        elif part == 1:
            customer_id = str(a)
        else:
            version = int(a)
    if customer_id is None:
        return None, version
    return Customer(customer_id, ids, props), version


def get_customer(con: sqlite3.Connection, ref: CustomerRef) -> tuple[Customer, int]:
    """``propsync.store.read.get_customer`` on the read model, and the model's version."""
    customer, version = read_customer(con, ref)
    if customer is None:
        raise UnknownCustomer(f"no customer {str(ref)!r}", customer=str(ref))
    return customer, version


# -- the follower ----------------------------------------------------------------------------------


class _Checkpointer:
    """Checkpoints read models' WALs in a thread, off the follow's path (one per process, started
    on first use, gone after a minute without work).

    A follow's commit makes its rows visible; its autocheckpoint then copied every page it had
    touched back into the database file before the follow returned: at 1M customers x 10 a run
    of 60k rows took 0.35 s to write and 0.4 s to checkpoint. The follower's connection does not
    checkpoint (``wal_autocheckpoint = 0``); this thread does, meanwhile (``PASSIVE``: never waits
    for readers or the next follow). A crash before it runs leaves a longer WAL, which the next
    checkpoint takes."""

    IDLE_SECONDS = 60.0

    def __init__(self) -> None:
        self._pending: set[Path] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self, path: Path) -> None:
        with self._cond:
            self._pending.add(path)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="read-model-checkpoint", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._cond.wait(self.IDLE_SECONDS)
                if not self._pending:
                    self._thread = None
                    return
                path = self._pending.pop()
            try:
                # mode=rw: a model removed meanwhile is not created again, empty, by a checkpoint.
                con = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
                try:
                    con.execute("PRAGMA busy_timeout = 5000")
                    con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                finally:
                    con.close()
            except sqlite3.Error as exc:  # the next follow asks again
                log.warning("checkpointing the read model %s failed: %s", path, exc)


_checkpointer = _Checkpointer()


class ReadModel:
    """The ``serving/read_model.sqlite`` of a warehouse (see the module docstring)."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        memory_limit: str | None = None,
        duckdb_threads: int | None = None,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.warehouse = warehouse
        self.memory_limit = memory_limit  # the build's DuckDB memory_limit (the writer's)
        self.duckdb_threads = duckdb_threads
        self.batch_rows = batch_rows
        # The follower's connection, open while it holds the lock.
        self._writer: sqlite3.Connection | None = None

    @property
    def dir(self) -> Path:
        return self.warehouse.serving_dir

    @property
    def path(self) -> Path:
        return self.dir / FILE_NAME

    @property
    def lock_path(self) -> Path:
        return self.dir / "read_model.lock"

    @property
    def temp_path(self) -> Path:
        return self.dir / f".{FILE_NAME}.tmp"

    @property
    def presence_path(self) -> Path:
        return self.dir / "read_model.follower"

    def follower_presence(self) -> contextlib.AbstractContextManager[None]:
        """Held by a dedicated follower process while it runs (see the module docstring)."""
        return presence(self.presence_path)

    def follower_present(self) -> bool:
        """Whether a dedicated follower process is running (a few microseconds)."""
        return held(self.presence_path)

    def exists(self) -> bool:
        return self.path.exists()

    def state(self) -> ModelState | None:
        """The model's meta, or None when there is no usable model (missing, unreadable)."""
        if not self.path.exists():
            return None
        try:
            con = connect_reader(self.path)
        except sqlite3.Error:
            return None
        try:
            return _state(con)
        finally:
            con.close()

    def rebuild_reason(self, state: ModelState | None, published: int) -> str:
        """Why the model cannot follow to ``published`` ("" when it can)."""
        if state is None:
            return "no read model yet"
        if state.format != FORMAT:
            return f"its layout is {state.format!r}, this release's is {FORMAT!r}"
        if state.version > published:
            return (
                f"it is at version {state.version}, above the published version {published} "
                "(the warehouse was recreated)"
            )
        if run_stamp(self.warehouse.root, state.version) != state.run_stamp:
            return (
                f"the run file of its version {state.version} is not the one it applied "
                "(the warehouse was recreated, or its runs were pruned)"
            )
        return ""

    @contextlib.contextmanager
    def _lock(self, timeout: float) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(
            self.lock_path,
            timeout,
            lambda holder: f"pid {holder} is building or following the read model",
        ):
            yield

    def follow(
        self,
        *,
        lock_timeout: float = 0.0,
        cancel: threading.Event | None = None,
        rebuild: bool = False,
        build: bool = True,
        apply_runs: bool = True,
        maintain: bool = False,
    ) -> FollowResult | None:
        """Bring the model to the published version: apply its runs, or (re)build it.

        Returns None when another process holds the lock for longer than ``lock_timeout``
        seconds. ``rebuild`` builds from the published version even when the runs would do;
        without ``build`` a model that needs a (re)build is left as it is (``reason`` says why);
        without ``apply_runs`` one that can follow is left as it is (a dedicated follower
        applies the runs). ``maintain`` then takes one step of the segments' maintenance, a
        merge or a fold slice (``maintenance`` says which; "" when none was due).
        Raises ``BuildCancelled`` when ``cancel`` is set during a build.
        """
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self._lock(lock_timeout))
            except WarehouseLocked:
                return None
            stack.callback(self._close_writer)
            return self._follow_locked(cancel, rebuild, build, apply_runs, maintain)
        raise AssertionError("unreachable")  # mypy: ExitStack may swallow exceptions

    def _follow_locked(
        self,
        cancel: threading.Event | None,
        rebuild: bool,
        build: bool,
        apply_runs: bool,
        maintain: bool,
    ) -> FollowResult:
        started = time.monotonic()
        published = self.warehouse.published_version()
        if published == 0:
            state = self.state()
            return FollowResult(0 if state is None else state.version)
        state = self.state()
        reason = "asked to rebuild" if rebuild else self.rebuild_reason(state, published)
        if not reason and not apply_runs:
            reason = self._next_run_missing(state, published)
        if reason and not build:
            return FollowResult(0 if state is None else state.version, reason=reason)
        if reason:
            return self._build(reason, cancel, live=state is not None)
        assert state is not None
        if not apply_runs:
            return FollowResult(state.version)
        con = self._open_writer()
        version, rows = state.version, 0
        group: list[pl.DataFrame] = []  # runs applied together: see apply_run

        def apply_group() -> None:
            nonlocal version, rows
            if group:
                last = version + len(group)
                rows += apply_run(con, group, last, run_stamp(self.warehouse.root, last))
                version = last
                group.clear()

        for v in range(state.version + 1, published + 1):
            try:
                run = runs.read_run(self.warehouse.root, v)
            except runs.RunMissing as exc:
                apply_group()
                if not build:
                    return FollowResult(version, version - state.version, rows, reason=exc.message)
                return self._build(exc.message, cancel, live=True)
            if group and (
                _has_merges(run) or sum(r.height for r in group) + run.height > GROUP_ROWS
            ):
                apply_group()
            group.append(run)
        apply_group()
        seconds = time.monotonic() - started
        done = maintenance_step(con) if maintain else ""
        if version > state.version or done:
            _checkpointer.request(self.path)
        if version > state.version:
            log.info(
                "read model at version %d: applied %d run(s), %d rows, in %.3f s (%s)",
                version,
                version - state.version,
                rows,
                seconds,
                multiprocessing.current_process().name,
            )
        return FollowResult(
            version, version - state.version, rows, seconds=seconds, maintenance=done
        )

    def _next_run_missing(self, state: ModelState | None, published: int) -> str:
        """Why a follower cannot take the model's next step ("" when it can): what ``follow``
        finds on the way when it applies the runs, found here without applying them."""
        if state is None or state.version >= published:
            return ""
        if runs.run_path(self.warehouse.root, state.version + 1).exists():
            return ""
        return runs.run_missing(self.warehouse.root, state.version + 1).message

    def _open_writer(self) -> sqlite3.Connection:
        if self._writer is None:
            con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA busy_timeout = 5000")
            con.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a power loss may drop the last follows, never leave a partial one
            # (meta.version is in the same transaction), and the next follow redoes them.
            con.execute("PRAGMA synchronous = NORMAL")
            # A large follow grows the WAL by every page it touched; once checkpointed, the file
            # is cut back to this size instead of staying at its largest (readers search it).
            con.execute("PRAGMA journal_size_limit = 67108864")
            con.execute("PRAGMA wal_autocheckpoint = 0")  # _Checkpointer does, off the path
            self._writer = con
        return self._writer

    def _close_writer(self) -> None:
        con, self._writer = self._writer, None
        if con is not None:
            con.close()

    # -- building

    def _remove_partial(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.dir):
                if _PARTIAL.match(name):
                    with contextlib.suppress(FileNotFoundError):
                        (self.dir / name).unlink()

    def _build(self, reason: str, cancel: threading.Event | None, *, live: bool) -> FollowResult:
        """Build the model of the published version (call holding the lock). ``live``: the
        model file exists and is readable, so other processes may be reading it."""
        started = time.monotonic()
        self._close_writer()
        self._remove_partial()  # of a build that failed or was killed
        log.info("building the read model from the published version: %s", reason)
        try:
            version, rows = self._build_file(self.temp_path, cancel)
            fsync_file(self.temp_path)
            if live and self.path.exists():
                # Readers may have the live file (and its WAL) open: copy into it, atomically.
                self._copy_into_live(self.temp_path)
                self._remove_partial()
            else:
                for suffix in ("-wal", "-shm"):  # of a model file unreadable or removed by hand
                    with contextlib.suppress(FileNotFoundError):
                        self.path.with_name(self.path.name + suffix).unlink()
                os.replace(self.temp_path, self.path)
                fsync_directory(self.dir)
        except BaseException:
            self._remove_partial()
            raise
        seconds = time.monotonic() - started
        log.info(
            "built the read model of version %d: %d rows in %.1f s (%.0f rows/s)",
            version,
            rows,
            seconds,
            rows / seconds if seconds > 0 else 0.0,
        )
        return FollowResult(version, rows=rows, rebuilt=True, reason=reason, seconds=seconds)

    def _copy_into_live(self, source: Path) -> None:
        src = sqlite3.connect(source, isolation_level=None)
        try:
            live = self._open_writer()
            src.backup(live)  # one step: one write transaction on the live file
            live.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            src.close()
            self._close_writer()

    def duckdb_config(self) -> dict[str, str | bool | int | float | list[str]]:
        """The configuration of read-only DuckDB connections to published versions. Every
        connection of a process to one file must use the same one (DuckDB shares the instance),
        so the service's other reads of published files use it too."""
        config: dict[str, str | bool | int | float | list[str]] = {
            "temp_directory": str(self.dir / "tmp"),
        }
        if limit := duckdb_memory_limit(self.memory_limit):
            config["memory_limit"] = limit
        if self.duckdb_threads is not None:
            config["threads"] = str(self.duckdb_threads)
        return config

    def _open_published(self) -> tuple[int, duckdb.DuckDBPyConnection]:
        """A read-only DuckDB connection to the current published version, and its number."""
        config = self.duckdb_config()
        for _ in range(100):
            path = self.warehouse.published_file()  # NotPublished when there is none
            m = VERSION_FILE.match(path.name)
            if m is None:
                break
            try:
                con = connect_duckdb(path, read_only=True, config=config, root=self.warehouse.root)
            except (FileNotFoundError, duckdb.IOException):
                if path.exists():
                    raise
                continue  # pruned between the readlink and the open: a newer one is current
            con.execute("SET enable_progress_bar = false")
            return int(m.group(1)), con
        raise NotPublished(
            f"warehouse {str(self.warehouse.root)!r}: no published version could be opened",
            warehouse=str(self.warehouse.root),
        )

    def _build_file(self, path: Path, cancel: threading.Event | None) -> tuple[int, int]:
        """Write the model of the published version to ``path``; its version and row count."""
        version, duck = self._open_published()
        stamp = run_stamp(self.warehouse.root, version)
        con = sqlite3.connect(path, isolation_level=None)
        progress = _BuildProgress(version)
        try:
            # Private until renamed: no journal, no syncs (fsync'd once at the end).
            con.execute("PRAGMA journal_mode = OFF")
            con.execute("PRAGMA synchronous = OFF")
            con.execute("PRAGMA cache_size = -65536")  # 64 MB
            for statement in sql.folder_statements("read_model/schema"):
                con.execute(statement)
            con.execute("BEGIN")

            def batches(select: str) -> Iterator[pa.RecordBatch]:
                reader = duck.sql(sql.load(f"read_model/{select}")).to_arrow_reader(self.batch_rows)
                assert reader is not None  # a SELECT always has a result
                for batch in reader:
                    if cancel is not None and cancel.is_set():
                        raise BuildCancelled("read model build cancelled")
                    yield batch

            names = duck.sql(sql.load("read_model/published_property_names")).fetchall()
            con.executemany(sql.load("read_model/insert_property_name"), names)
            property_keys = {name: key for key, name in names}
            for batch in batches("published_properties"):
                props = pl.from_arrow(batch).with_columns(  # type: ignore[union-attr]
                    pl.col("property").replace_strict(property_keys, return_dtype=pl.Int64)
                )
                con.executemany(sql.load("read_model/insert_property"), props.iter_rows())
                progress.add("properties", batch.num_rows)
            for table, select, insert in (
                ("customers", "published_customers", "insert_customer"),
                ("customer_ids", "published_customer_ids", "insert_customer_id"),
                ("customer_aliases", "published_customer_aliases", "insert_alias"),
            ):
                for batch in batches(select):
                    con.executemany(
                        sql.load(f"read_model/{insert}"),
                        zip(*(c.to_pylist() for c in batch.columns), strict=True),
                    )
                    progress.add(table, batch.num_rows)
            for statement in sql.folder_statements("read_model/indexes"):
                con.execute(statement)
            set_meta = sql.load("read_model/set_meta")
            con.executemany(
                set_meta,
                [
                    ("format", FORMAT),
                    ("version", str(version)),
                    ("run_stamp", stamp),
                    ("built_from_version", str(version)),
                    ("fold_through", "0"),
                    ("built_at", str(int(time.time()))),
                ],
            )
            con.execute("COMMIT")
            con.execute("PRAGMA journal_mode = WAL")  # stored in the file: every opener uses WAL
        finally:
            con.close()
            duck.close()
        return version, progress.rows


class _BuildProgress:
    """Counts a build's rows and logs them every ``PROGRESS_SECONDS``."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.rows = 0
        self.started = self.logged = time.monotonic()

    def add(self, table: str, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if now - self.logged >= PROGRESS_SECONDS:
            self.logged = now
            log.info(
                "building the read model of version %d: %s, %d rows so far (%.0f rows/s)",
                self.version,
                table,
                self.rows,
                self.rows / (now - self.started),
            )


def _state(con: sqlite3.Connection) -> ModelState | None:
    try:
        meta = dict(con.execute(sql.load("read_model/get_meta")).fetchall())
    except sqlite3.Error:
        return None
    try:
        return ModelState(int(meta["version"]), str(meta["run_stamp"]), str(meta["format"]))
    except (KeyError, ValueError):
        return None


def _has_merges(run: pl.DataFrame) -> bool:
    return bool((run["kind"] == "merge").any())


def apply_run(
    con: sqlite3.Connection, run_frames: list[pl.DataFrame], version: int, stamp: str
) -> int:
    """Apply consecutive run files' rows in one transaction that also sets ``meta.version`` (the
    last run's) and return their rows. Only the first may hold merges: its merges go first, then
    every run's ids and properties, the later run's row where two name the same key (it won
    later). A follower behind takes several runs at once this way (``GROUP_ROWS``): one sorted
    pass touches each B-tree page once, where a pass per run touched most pages each time."""
    assert not any(_has_merges(r) for r in run_frames[1:]), "a merge must start a group of runs"
    run = pl.concat(run_frames) if len(run_frames) > 1 else run_frames[0]
    merges = (
        run.filter(pl.col("kind") == "merge").select("customer_id", "value", "merged_key").rows()
    )
    id_rows = run.filter(pl.col("kind") == "id")
    ids = id_rows.select("name", "value", "customer_id")
    props = run.filter(pl.col("kind") == "property").select(
        "customer_key", "name", "value", "update_ts"
    )
    if len(run_frames) > 1:  # one run lists each key once
        ids = ids.unique(["name", "value"], keep="last", maintain_order=True)
        props = props.unique(["customer_key", "name"], keep="last", maintain_order=True)
    # In primary-key order, SQLite walks its B-trees forward instead of at random (1.45x for a
    # run of 209k properties into 10M).
    ids = ids.sort("name", "value")
    with _write_transaction(con):
        # A new customer comes with its first id, under a key above every key drawn before.
        top = int(con.execute(sql.load("read_model/max_customer_key")).fetchall()[0][0])
        new = id_rows.filter(pl.col("customer_key") > top).select("customer_key", "customer_id")
        con.executemany(
            sql.load("read_model/add_customer"), new.unique().sort("customer_key").rows()
        )
        # One merge after the other, as listed: a later merge may move what an earlier one did.
        for survivor, merged, merged_key in merges:
            con.execute(sql.load("read_model/repoint_ids"), (survivor, merged))
            con.execute(sql.load("read_model/repoint_aliases"), (survivor, merged))
            con.execute(sql.load("read_model/insert_alias"), (merged, survivor))
            con.execute(sql.load("read_model/delete_merged_properties"), (merged_key,))
            con.execute(sql.load("read_model/delete_merged_recent"), (merged_key,))
        for chunk in ids.iter_slices(BATCH_ROWS):
            con.executemany(sql.load("read_model/insert_customer_id"), chunk.iter_rows())
        if props.height:
            keyed = key_properties(con, props)
            if _in_place(con, keyed.height):
                upsert_properties(con, keyed)
            else:
                append_segment(con, keyed)
        con.executemany(
            sql.load("read_model/set_meta"), [("version", str(version)), ("run_stamp", stamp)]
        )
    return run.height


def key_properties(con: sqlite3.Connection, props: pl.DataFrame) -> pl.DataFrame:
    """Property rows (customer_key, name, value, update_ts) by key (customer_key, property_key,
    value, update_ts), in key order; names new to the model get the next keys."""
    known = dict(con.execute(sql.load("read_model/property_keys")).fetchall())
    new = sorted(set(props["name"].unique().to_list()) - known.keys())
    if new:
        first = max(known.values(), default=0) + 1
        added = {name: first + i for i, name in enumerate(new)}
        con.executemany(
            sql.load("read_model/insert_property_name"), [(k, n) for n, k in added.items()]
        )
        known.update(added)
    return props.select(
        "customer_key",
        pl.col("name").replace_strict(known, return_dtype=pl.Int64).alias("property_key"),
        "value",
        "update_ts",
    ).sort("customer_key", "property_key")


def upsert_properties(con: sqlite3.Connection, props: pl.DataFrame) -> None:
    """Write property rows (customer_key, property_key, value, update_ts; in key order) straight
    into ``properties``, inside the caller's transaction."""
    statement = sql.load("read_model/upsert_property")
    for chunk in props.iter_slices(BATCH_ROWS):
        con.executemany(statement, chunk.iter_rows())


def append_segment(con: sqlite3.Connection, props: pl.DataFrame) -> None:
    """Write property rows (customer_key, property_key, value, update_ts; in key order) as a new
    segment of ``recent_properties``, appended in key order (see "Segments"), inside the
    caller's transaction."""
    seg = con.execute(sql.load("read_model/next_segment")).fetchall()[0][0]
    statement = sql.load("read_model/append_segment")
    for chunk in props.iter_slices(BATCH_ROWS):
        con.executemany(statement, ((seg, *row) for row in chunk.iter_rows()))
    con.execute(sql.load("read_model/add_segment"), (seg, 0, props.height))


def _in_place(con: sqlite3.Connection, rows: int) -> bool:
    """Whether a run's ``rows`` property rows go straight into ``properties``: only when no
    segment is live (one could hold an older row of the same key, which would then shadow the
    new one) and the run alone would start a fold. For a whole-warehouse import into 1M x 10
    (10M rows) the upserts took 29.7 s, where the segment took 22.5 s and its fold 32.3 s more."""
    if rows < FOLD_MIN_ROWS:
        return False
    if con.execute(sql.load("read_model/list_segments")).fetchall():
        return False
    return rows >= fold_rows(con)


# -- the segments' maintenance ---------------------------------------------------------------------


def maintenance_step(con: sqlite3.Connection) -> str:
    """Take one step of the recent segments' maintenance, in one transaction, and say what it
    did ("" when nothing was due): the next slice of a fold under way; else the start of a fold
    once the recent rows are many enough (``fold_rows``) or the segments ``MAX_SEGMENTS``; else
    a merge of the newest ``FANOUT`` segments of a level into one of the next. Each step keeps
    what a read returns: a merge keeps each key's newest row, a fold moves the newest recent
    row of each key of a slice into ``properties``, which only holds older ones."""
    fold = _fold_under_way(con)
    if fold is not None:
        return _fold_slice(con, fold)
    segments = con.execute(sql.load("read_model/list_segments")).fetchall()
    if not segments:
        return ""
    recent = sum(rows for _, _, rows in segments)
    if recent >= fold_rows(con) or len(segments) >= MAX_SEGMENTS:
        slices = max(1, -(-recent // FOLD_SLICE_ROWS))
        log.info(
            "folding %d recent rows of %d segments into properties, in %d slice(s)",
            recent,
            len(segments),
            slices,
        )
        top = int(con.execute(sql.load("read_model/max_customer_key")).fetchall()[0][0])
        return _fold_slice(con, _Fold(segments[-1][0], 0, slices, top, time.time()))
    group = merge_group(segments)
    if group is None:
        return ""
    first, last, level = group
    with _write_transaction(con):
        bounds = {"first": first, "last": last}
        con.execute(sql.load("read_model/merge_segments"), {**bounds, "seg": last + 1})
        rows = _changes(con)
        con.execute(sql.load("read_model/delete_segment_rows"), bounds)
        con.execute(sql.load("read_model/delete_segment_entries"), bounds)
        con.execute(sql.load("read_model/add_segment"), (last + 1, level, rows))
    done = f"merged segments {first}-{last} into segment {last + 1} (level {level}, {rows} rows)"
    log.debug("read model: %s", done)
    return done


def fold_rows(con: sqlite3.Connection) -> int:
    """How many recent rows start a fold: a share of the model's size, so that a fold's cost
    per row, the pages of ``properties`` it rewrites over the rows it moves, stays the same as
    the model grows."""
    pages = int(con.execute("PRAGMA page_count").fetchall()[0][0])
    page_size = int(con.execute("PRAGMA page_size").fetchall()[0][0])
    return max(FOLD_MIN_ROWS, pages * page_size // (FOLD_SHARE * RECENT_ROW_BYTES))


def merge_group(segments: list[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    """The newest segments to merge, as (first, last, level of the result), or None. They are
    the newest run of segments of the newest one's level or below, when it counts ``FANOUT``
    or more and holds at most ``MERGE_MAX_ROWS`` rows: as a counter carries, a level fills and
    then merges into the next. Only the newest segments merge, so the merged one can take the
    next number and keep the segments' order, which is their age."""
    level = segments[-1][1]
    count, rows = 0, 0
    for _, seg_level, seg_rows in reversed(segments):
        if seg_level > level:
            break
        count, rows = count + 1, rows + seg_rows
    if count < FANOUT or rows > MERGE_MAX_ROWS:
        return None
    return segments[-count][0], segments[-1][0], level + 1


def slice_bounds(index: int, slices: int, top: int) -> tuple[int, int]:
    """The customer keys [lo, hi] of a fold's slice ``index`` of ``slices`` of keys 1..``top``
    (the keys of random customers are evenly spread). The last slice has no upper bound: it
    also takes the keys drawn for new customers while the fold was under way."""
    lo = 1 + index * top // slices
    hi = _MAX_KEY if index == slices - 1 else (index + 1) * top // slices
    return lo, hi


def _fold_slice(con: sqlite3.Connection, fold: _Fold) -> str:
    """Fold the next slice of ``fold`` (its ``next_slice``), in one transaction that also
    records the fold's progress (a crash resumes at the next slice)."""
    index, slices, through = fold.next_slice, fold.slices, fold.through
    lo, hi = slice_bounds(index, slices, fold.top)
    bounds = {"through": through, "lo": lo, "hi": hi}
    last = index == slices - 1
    if last:
        progress = [("fold_through", "0")]
    else:
        progress = [
            ("fold_through", str(through)),
            ("fold_next", str(index + 1)),
            ("fold_slices", str(slices)),
            ("fold_top", str(fold.top)),
            ("fold_started", repr(fold.started)),
        ]
    with _write_transaction(con):
        con.execute(sql.load("read_model/fold_slice"), bounds)
        rows = _changes(con)
        con.execute(sql.load("read_model/delete_folded"), bounds)
        if last:
            span = {"first": 0, "last": through}
            con.execute(sql.load("read_model/delete_segment_rows"), span)
            con.execute(sql.load("read_model/delete_segment_entries"), span)
        con.executemany(sql.load("read_model/set_meta"), progress)
    done = f"folded slice {index + 1}/{slices} of segments up to {through} ({rows} rows)"
    log.debug("read model: %s", done)
    if last:
        log.info(
            "folded the segments up to %d into properties in %.1f s",
            through,
            time.time() - fold.started,
        )
    return done


@contextlib.contextmanager
def _read_transaction(con: sqlite3.Connection) -> Iterator[None]:
    """One read snapshot across several statements (a reader's connection is in autocommit)."""
    con.execute("BEGIN")
    try:
        yield
    finally:
        con.execute("COMMIT")


@contextlib.contextmanager
def _write_transaction(con: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (BEGIN IMMEDIATE: the write lock at once, not at the first write),
    rolled back on any exception, a cancellation included."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _changes(con: sqlite3.Connection) -> int:
    """Rows the last statement wrote (``Cursor.rowcount`` is -1 for a statement that starts
    with WITH)."""
    return int(con.execute("SELECT changes()").fetchall()[0][0])
