"""Warehouse files, the single-writer lock, and publishing.

Layout of a warehouse directory::

    work.duckdb                 the writer's database; only the lock holder opens it
    tmp/                        DuckDB's spill space for merges larger than its memory limit
    write.lock                  flock(2) lock file; holds the writer's pid
    write.lock.wait             held shared by writers waiting for it (``locks.others_waiting``)
    runs/r000042.parquet        each committed batch's changes, and its batch records
      r000042.history.parquet   (``propsync.store.runs``)
    segments/s...parquet        runs folded by compaction: the base and folded changes
                                (``propsync.store.compaction``)
    published/v000042.duckdb    catalogs: views over a version's files (``propsync.store.catalog``);
                                the newest few are kept
    propsync.duckdb             symlink to the current catalog: what readers open
    compact.lock, compact.log   one compaction at a time; the detached compactions' output
    serving/read_model.sqlite   the HTTP service's read model, following the runs
                                (``propsync.store.read_model``; not written here)

DuckDB lets no reader open a file that a writer has open, so readers never touch ``work.duckdb``:
they open a catalog, whose views read immutable Parquet files. A version is published only after
its batch committed and passed its audit, by writing a catalog that lists the previous version's
files and the new runs (nothing is copied) and swapping the symlink atomically, so a reader sees
the old version or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from propsync import sql
from propsync.errors import DatabaseInUse, NotPublished, UsageError
from propsync.files import fsync_directory
from propsync.instants import now_us
from propsync.locks import exclusive_lock, others_waiting
from propsync.settings_env import duckdb_memory_limit
from propsync.store import catalog, meta

if TYPE_CHECKING:
    from propsync.store import migrations

# store.migrations and store.runs load Polars: writers import them where they use them, so that a
# reader (`propsync get`) starts without Polars (issue #13).

VERSION_FILE = catalog.CATALOG_FILE

log = logging.getLogger("propsync.warehouse")


# DuckDB's message when another process holds the file's lock; it names that process.
_LOCK_HELD = "Could not set lock on file"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def connect_duckdb(
    path: str | os.PathLike[str],
    *,
    read_only: bool,
    config: dict[str, str | bool | int | float | list[str]] | None = None,
    root: Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` for warehouse files; a lock held by another process is a clear,
    retryable ``DatabaseInUse`` (naming that process and the fix) instead of DuckDB's IOException.
    With ``root``, ``path`` is a published catalog of that warehouse (``catalog.connect``)."""
    try:
        if root is not None:
            return catalog.connect(root, Path(path), config)
        return duckdb.connect(str(path), read_only=read_only, config=config or {})
    except duckdb.IOException as exc:
        raise _in_use_error(exc, str(path), read_only) from None


def _in_use_error(exc: duckdb.IOException, path: str, read_only: bool) -> Exception:
    """``DatabaseInUse`` for DuckDB's error when another process holds the file, else ``exc``."""
    if _LOCK_HELD not in str(exc):
        return exc
    m = _LOCK_HOLDER.search(str(exc))
    holder = f"{m.group(1)} (pid {m.group(2)})" if m else "another process"
    pid = int(m.group(2)) if m else None
    return DatabaseInUse(_in_use(path, holder, read_only), path=path, pid=pid)


def _in_use(path: str, holder: str, read_only: bool) -> str:
    if read_only:  # only a read-write opener blocks readers
        cause = f"{path!r} is locked by {holder}, which has it open read-write"
    else:
        cause = f"{path!r} is open in {holder}, and a writer needs it to itself"
    return (
        f"{cause} (for example a duckdb shell opened without -readonly): close it, and open "
        "the warehouse read-only (duckdb -readonly propsync.duckdb, or duckdb.connect(FILE, "
        "read_only=True)); then retry"
    )


def writer_config(
    temp_directory: Path, memory_limit: str | None
) -> dict[str, str | bool | int | float | list[str]]:
    """DuckDB's configuration for the processes that write warehouse files (the writer, a
    compaction): the memory limit, spilling to ``temp_directory``."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "temp_directory": str(temp_directory),
        # Row order of inserts is irrelevant here, and keeping it costs memory.
        "preserve_insertion_order": False,
    }
    if limit := duckdb_memory_limit(memory_limit):
        config["memory_limit"] = limit
    return config


class WriterInstance:
    """One DuckDB instance for all of a long-lived process's writes (the HTTP service's edits):
    ``work.duckdb`` is ATTACHed when a write-lock holder connects and DETACHed before the lock
    is released, so no other process ever finds it open, while DuckDB's start-up (a new instance
    per batch: buffer manager, catalog, extensions) is paid once per process instead of per edit.

    Connections are cursors of the instance with ``work`` as their default database: the same
    catalog name as a direct connection to ``work.duckdb``, so every statement reads the same.
    """

    ALIAS = "work"
    FILE_ALIAS = "writing"  # a catalog being written (``attach_file``)

    def __init__(self, temp_directory: Path, memory_limit: str | None) -> None:
        self.temp_directory = temp_directory
        self.memory_limit = memory_limit
        self._db: duckdb.DuckDBPyConnection | None = None
        self.attached: Path | None = None
        self.attaches = 0  # how often work.duckdb was attached (a detach follows each)
        # Rows of property_values deleted in place since work.duckdb was attached or last
        # checkpointed by store/apply.py (each may pin its vector's delete info until then).
        self.rows_deleted_in_place = 0
        # The connections handed out since the attach: closed (an open transaction rolled back)
        # before the detach, as closing a direct connection would. One left open keeps the file.
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._mutex = threading.Lock()

    def _instance(self, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
        # The warm-up (no write lock) and a writer may both come first: one instance only.
        with self._mutex:
            if self._db is None:
                self._db = duckdb.connect(
                    ":memory:", config=writer_config(self.temp_directory, memory_limit)
                )
                self.memory_limit = memory_limit
            elif memory_limit != self.memory_limit:
                limit = duckdb_memory_limit(memory_limit)
                self._db.execute(
                    "RESET memory_limit" if limit is None else f"SET memory_limit = '{limit}'"
                )
                self.memory_limit = memory_limit
            return self._db

    def connect(self, path: Path, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
        """A connection to ``path`` (call only while holding the write lock)."""
        db = self._instance(memory_limit)
        if self.attached is None:
            try:
                db.execute(f"ATTACH {sql.literal(str(path))} AS {self.ALIAS}")
            except duckdb.IOException as exc:
                raise _in_use_error(exc, str(path), read_only=False) from None
            self.attached = path
            self.attaches += 1
            self.rows_deleted_in_place = 0
        con = db.cursor()
        self._cursors.append(con)
        con.execute(f"USE {self.ALIAS}")
        con.execute("SET enable_progress_bar = false")  # no progress bars in logs
        return con

    def scratch(self) -> duckdb.DuckDBPyConnection:
        """A connection to the instance's own in-memory database (nothing of the warehouse is
        attached by it): for warming up the code paths a write takes."""
        return self._instance(self.memory_limit).cursor()

    @contextlib.contextmanager
    def attach_file(self, path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to another DuckDB file of the warehouse (a new catalog) for the duration
        of the ``with``, then detached (checkpointed, closed); call holding the write lock."""
        db = self._instance(self.memory_limit)
        db.execute(f"ATTACH {sql.literal(str(path))} AS {self.FILE_ALIAS}")
        try:
            con = db.cursor()
            try:
                con.execute(f"USE {self.FILE_ALIAS}")
                yield con
            finally:
                con.close()
        finally:
            db.execute(f"DETACH {self.FILE_ALIAS}")

    def detach(self) -> None:
        """Close ``work.duckdb`` (checkpointing it): before the write lock is released. Should
        DuckDB refuse (a connection still in a transaction), the whole instance is closed."""
        cursors, self._cursors = self._cursors, []
        for con in cursors:
            with contextlib.suppress(duckdb.Error):
                con.close()
        if self.attached is None or self._db is None:
            return
        try:
            self._db.execute(f"DETACH {self.ALIAS}")
        except duckdb.Error:
            log.warning("detaching work.duckdb failed: closing the writer's DuckDB instance")
            self.close()
        self.attached = None
        self.rows_deleted_in_place = 0

    def close(self) -> None:
        with self._mutex:
            db, self._db, self.attached = self._db, None, None
        cursors, self._cursors = self._cursors, []
        for con in [*cursors, *([db] if db is not None else [])]:
            with contextlib.suppress(duckdb.Error):
                con.close()


def segment_paths(directory: Path, first: int, last: int) -> tuple[Path, Path]:
    """New, unique names for the files of a segment covering ``first``..``last``: a published file
    is never replaced, even by one with the same versions (a recreated warehouse's)."""
    stem = f"s{first:06d}-{last:06d}-{uuid.uuid4().hex[:8]}"
    return directory / f"{stem}.parquet", directory / f"{stem}{catalog.HISTORY_SUFFIX}"


class Warehouse:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        # Seconds the last ``publish`` through this object took (the background applier paces
        # its publishes by it); None before the first.
        self.last_publish_seconds: float | None = None
        # What opening the working database last upgraded (None: it was created by this release).
        self.last_migration: migrations.MigrationResult | None = None
        # Set by ``keep_writer_instance``: connections attach work.duckdb to one DuckDB instance.
        self.writer: WriterInstance | None = None
        # The write lock taken by ``hold_write_lock`` and the thread that holds it.
        self._hold: contextlib.ExitStack | None = None
        self._hold_thread: int | None = None

    def keep_writer_instance(self, memory_limit: str | None = None) -> WriterInstance:
        """Write through one DuckDB instance from now on (``WriterInstance``), for a process that
        writes many small batches (the HTTP service); close it with ``close_writer_instance``."""
        if self.writer is None:
            self.writer = WriterInstance(self.root / "tmp", memory_limit)
        return self.writer

    def close_writer_instance(self) -> None:
        """Close the writer instance (when no write of this process has it attached: one that
        has is left to finish; its process is exiting)."""
        writer = self.writer
        if writer is not None and writer.attached is None:
            writer.close()

    def _make_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # not a directory, no permission: nothing was written
            raise UsageError(
                f"cannot use {str(self.root)!r} as the warehouse directory: {exc.strerror}"
            ) from None

    @property
    def work_path(self) -> Path:
        return self.root / "work.duckdb"

    @property
    def published_dir(self) -> Path:
        return self.root / "published"

    @property
    def serving_dir(self) -> Path:
        """The HTTP service's read model (``propsync.store.read_model``)."""
        return self.root / "serving"

    @property
    def current_path(self) -> Path:
        """The stable path analysts open: always the latest published version."""
        return self.root / "propsync.duckdb"

    # -- the writer -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def write_lock(self, timeout: float = 600.0) -> Iterator[None]:
        """Exclusive across processes (and threads); waits up to ``timeout`` seconds for the
        current holder. With a writer instance, ``work.duckdb`` is detached before the lock is
        released. Inside the thread that holds it by ``hold_write_lock``: nothing to take."""
        if self._hold is not None and self._hold_thread == threading.get_ident():
            yield
            return
        with self._write_lock(timeout):
            try:
                yield
            finally:
                if self.writer is not None:
                    self.writer.detach()

    def _write_lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        self._make_root()
        return exclusive_lock(
            self.write_lock_path,
            timeout,
            lambda holder: (
                f"warehouse {str(self.root)!r} is locked by another writer (pid {holder}); "
                f"gave up after {timeout:g} s"
            ),
        )

    @property
    def write_lock_path(self) -> Path:
        return self.root / "write.lock"

    def hold_write_lock(self, timeout: float) -> None:
        """Take the write lock and keep it, with ``work.duckdb`` attached to the writer instance,
        across this thread's ``write_lock`` blocks until ``release_write_lock``: for the applier
        between applies that follow each other at once. Each detach checkpoints work.duckdb, and
        at 1M customers x 10 that was a fifth of a 20k-command apply (more in larger warehouses:
        the checkpoint writes the delete info of every row group a batch touched); held, DuckDB
        checkpoints when its WAL passes ``checkpoint_threshold`` (or ``store/apply.py`` does, for
        the memory its deletes pin). The holder lets go when ``write_lock_wanted``."""
        if self._hold is not None:
            return
        hold = contextlib.ExitStack()
        hold.enter_context(self._write_lock(timeout))
        self._hold, self._hold_thread = hold, threading.get_ident()

    def release_write_lock(self) -> None:
        """Detach ``work.duckdb`` and release a lock taken by ``hold_write_lock`` (if any)."""
        hold, self._hold, self._hold_thread = self._hold, None, None
        if hold is None:
            return
        try:
            if self.writer is not None:
                self.writer.detach()
        finally:
            hold.close()

    @property
    def holds_write_lock(self) -> bool:
        return self._hold is not None

    def write_lock_wanted(self) -> bool:
        """Whether another writer (process or thread) waits for the write lock."""
        return others_waiting(self.write_lock_path)

    @contextlib.contextmanager
    def spool_directory(self) -> Iterator[Path]:
        """A fresh directory under ``tmp/`` for a batch too large for memory (``batch.Spool``),
        removed afterwards; on the warehouse's disk, beside DuckDB's own spill files."""
        self._make_root()
        (self.root / "tmp").mkdir(exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="spool-", dir=self.root / "tmp"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def connect_work(self, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
        """Open the working database (call only while holding the write lock) under DuckDB's
        ``memory_limit`` (``Settings.duckdb_memory_limit``; None: DuckDB's default). No default
        here: every writer passes the one it was configured with."""
        self._make_root()
        if self.writer is not None:
            con = self.writer.connect(self.work_path, memory_limit)
        else:
            config = writer_config(self.root / "tmp", memory_limit)
            con = connect_duckdb(self.work_path, read_only=False, config=config)
            con.execute("SET enable_progress_bar = false")  # no progress bars in logs
        from propsync.store import migrations

        try:
            fresh = migrations.is_fresh(con)
            if not fresh:  # upgrades first: the schema below is the current layout's
                self.last_migration = migrations.upgrade(self.root, con)
            # The statements are idempotent but cost tens of milliseconds and a checkpoint on
            # close: run them only when this release's differ from those that made the schema.
            if fresh or migrations.schema_digest(con) != sql.schema_digest():
                for statement in sql.schema_statements():
                    con.execute(statement)
                migrations.set_schema_digest(con, sql.schema_digest())
            if fresh:
                migrations.stamp_current(con)
                self.clear_published()  # of a work.duckdb that was removed
        except BaseException:
            con.close()
            raise
        return con

    @staticmethod
    def work_version(con: duckdb.DuckDBPyConnection) -> int:
        return int(meta.get(con, "version") or 0)

    @staticmethod
    def set_work_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
        meta.put(con, "version", str(version))

    # -- publishing -----------------------------------------------------------------------------

    def published_version(self) -> int:
        try:
            target = os.readlink(self.current_path)
        except (FileNotFoundError, OSError):
            return 0
        parsed = catalog.parse_catalog_name(Path(target).name)
        return parsed[0] if parsed else 0

    def published_at(self) -> float | None:
        """When the current version was published (UNIX time of the symlink swap), if any."""
        try:
            return os.lstat(self.current_path).st_mtime
        except FileNotFoundError:
            return None

    def current_manifest(self) -> catalog.Manifest | None:
        """The current published version's file list; None before the first publish and for a
        version published as a full copy (schema versions 1 and 2)."""
        found = self._current_catalog()
        return None if found is None else found[1]

    def published_outdated(self) -> bool:
        """Whether readers see a version written in a shape older than this release's published
        files (a full copy, or files of another ``catalog.LAYOUT``): its views still answer, but
        the read model builds from the keyed files, so the next publish must come first
        (``propsync migrate``)."""
        try:
            self.published_file()
        except NotPublished:
            return False
        manifest = self.current_manifest()
        return manifest is None or manifest.layout != catalog.LAYOUT

    def needs_publish(self, version: int) -> bool:
        """Whether the working database at ``version`` is ahead of what readers see, or readers
        see a full copy of an older layout, or a catalog written before the warehouse was copied
        or moved here (its views name the old place)."""
        if version > self.published_version():
            return True
        manifest = self.current_manifest()
        return (
            manifest is None
            or manifest.root != str(self.root.resolve())
            or manifest.layout != catalog.LAYOUT
        )

    def publish(
        self,
        con: duckdb.DuckDBPyConnection,
        version: int,
        *,
        keep: int = 3,
        keep_runs: int = 1000,
        retention_seconds: float = 3600.0,
    ) -> Path:
        """Publish the committed ``version`` of the working database open on ``con``: a catalog
        of the previous version's files and the runs committed since (call only while holding the
        write lock). Nothing is copied; the cost follows the runs and the number of files.

        When the previous version's files cannot be continued (the first publish of a warehouse
        upgraded from a layout that published copies or files of another shape, or of a
        recreated one, or a run is missing)
        the working database's whole state is written as a new base instead, once.

        The catalog is written under a temporary name, fsync'd and renamed; the ``propsync.duckdb``
        symlink is swapped atomically and the directory fsync'd. A publish that fails or is killed
        leaves the previous version current.
        """
        started = time.monotonic()
        current = self.current_manifest()
        names = [n for (n,) in con.execute(sql.load("publish/property_names")).fetchall()]
        manifest = None
        if current is not None and current.layout != catalog.LAYOUT:
            pass  # files of an older shape: never continued (a new base below)
        elif current is not None and current.version == version:  # moved here: relink its files
            manifest = replace(current, generation=current.generation + 1)
        elif current is not None and current.version < version:
            committed = self._run_segments(con, current.version + 1, version)
            if committed is not None:
                manifest = catalog.with_runs(current, committed, names)
        elif current is None and not self._published_copies():  # a new warehouse: its runs
            committed = self._run_segments(con, 1, version)
            if committed is not None:
                manifest = catalog.Manifest(version, 0, tuple(committed), tuple(names))
        if manifest is None:
            manifest = self._base_from_work(con, version, names, current)
        self.commit_manifest(
            manifest, keep=keep, keep_runs=keep_runs, retention_seconds=retention_seconds
        )
        self.last_publish_seconds = time.monotonic() - started
        log.info(
            "published version %d (%d files) in %.3f s",
            version,
            len(manifest.segments),
            self.last_publish_seconds,
        )
        return self.current_path.resolve()

    def commit_manifest(
        self,
        manifest: catalog.Manifest,
        *,
        keep: int,
        keep_runs: int,
        retention_seconds: float,
    ) -> Path:
        """Write ``manifest``'s catalog, point readers at it and prune what no kept catalog needs
        (call only while holding the write lock)."""
        cutoff = now_us() - int(retention_seconds * 1e6)
        manifest = replace(
            manifest,
            retired=tuple(r for r in manifest.retired if r[1] > cutoff),
            root=str(self.root.resolve()),
        )
        final = catalog.write_catalog(
            self.root,
            manifest,
            self._current_catalog(),
            None if self.writer is None else self.writer.attach_file,
        )
        link_tmp = self.root / ".propsync.duckdb.tmp"
        with contextlib.suppress(FileNotFoundError):
            link_tmp.unlink()
        os.symlink(Path("published") / final.name, link_tmp)
        os.replace(link_tmp, self.current_path)
        fsync_directory(self.root)
        self._prune(manifest, final.name, keep, keep_runs)
        return final

    def _current_catalog(self) -> tuple[Path, catalog.Manifest] | None:
        """The current catalog and its manifest, when it is a catalog (not a copy)."""
        try:
            path = self.published_file()
        except NotPublished:
            return None
        manifest = catalog.read_manifest(path)
        return None if manifest is None else (path, manifest)

    def _run_segments(
        self, con: duckdb.DuckDBPyConnection, first: int, last: int
    ) -> list[catalog.Segment] | None:
        from propsync.store import runs

        segments = []
        for v in range(first, last + 1):
            changes, history = runs.run_path(self.root, v), runs.history_path(self.root, v)
            if not (changes.is_file() and history.is_file()):
                return None
            rows = con.execute(sql.load("publish/row_count"), {"path": str(changes)}).fetchall()
            segments.append(
                catalog.Segment(
                    v, v, self._relative(changes), self._relative(history), int(rows[0][0])
                )
            )
        return segments

    def _base_from_work(
        self,
        con: duckdb.DuckDBPyConnection,
        version: int,
        names: list[str],
        current: catalog.Manifest | None,
    ) -> catalog.Manifest:
        from propsync.store import runs

        log.info("writing the whole state of version %d as a new base", version)
        directory = self.segments_dir
        directory.mkdir(parents=True, exist_ok=True)
        changes, history = segment_paths(directory, 1, version)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql.load("publish/pend_all_history"))
            # The working database's views have the published views' columns: the base is
            # written by the same statement as a compaction's.
            rows = runs.write_sorted(
                con, changes, sql.load("compaction/fold_base"), {"version": version}
            )
            runs.write_file(con, history, sql.load("runs/write_history"), {"version": version})
            con.execute(sql.load("publish/clear_history_pending"))
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        fsync_directory(directory)
        base = catalog.Segment(1, version, self._relative(changes), self._relative(history), rows)
        retired = current.retired if current is not None else ()
        return catalog.Manifest(version, 0, (base,), tuple(names), retired)

    def _published_copies(self) -> bool:
        """Whether versions were published as copies (schema versions 1 and 2): their runs may
        be pruned or lack batch records, so the first catalog is written from the working
        database."""
        with contextlib.suppress(FileNotFoundError):
            return any(catalog.parse_catalog_name(n) for n in os.listdir(self.published_dir))
        return False

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    @property
    def segments_dir(self) -> Path:
        """Files written by compaction (and bases written from the working database)."""
        return self.root / "segments"

    def _prune(
        self, current: catalog.Manifest, current_name: str, keep: int, keep_runs: int
    ) -> None:
        """Remove catalogs beyond the newest ``keep`` and files no remaining catalog lists."""
        from propsync.store import runs

        catalog.remove_partial(self.published_dir)
        found = sorted(
            (parsed, name)
            for name in os.listdir(self.published_dir)
            if (parsed := catalog.parse_catalog_name(name))
        )
        kept = {name for _, name in found[-keep:]} | {current_name}
        for _, name in found:
            if name not in kept:
                # Readers that still have an old catalog open keep it: unlink frees it later.
                path = self.published_dir / name
                for p in (catalog.manifest_path(path), path):
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
        for name in os.listdir(self.published_dir):  # of a publish killed before its catalog
            if name.endswith(catalog.MANIFEST_SUFFIX):
                owner = name.removesuffix(catalog.MANIFEST_SUFFIX) + ".duckdb"
                if not (self.published_dir / owner).exists():
                    with contextlib.suppress(FileNotFoundError):
                        (self.published_dir / name).unlink()
        protected = current.files() | {path for path, _ in current.retired}
        for name in kept - {current_name}:
            if (older := catalog.read_manifest(self.published_dir / name)) is not None:
                protected |= older.files()
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.segments_dir):
                # A name with a leading dot is a compaction's file in progress: it cleans up.
                if not name.startswith(".") and f"segments/{name}" not in protected:
                    with contextlib.suppress(FileNotFoundError):
                        (self.segments_dir / name).unlink()
        runs.prune(self.root, current.version, keep_runs, frozenset(protected))

    def clear_published(self) -> None:
        """Remove every published file (catalogs, segments, runs): the working database was
        created anew, so they describe a warehouse that no longer exists (call under the lock)."""
        from propsync.store import runs

        runs.remove_runs_after(self.root, 0)
        for directory in (self.published_dir, self.segments_dir):
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(directory):
                    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                        (directory / name).unlink()
        with contextlib.suppress(FileNotFoundError):
            self.current_path.unlink()

    # -- readers --------------------------------------------------------------------------------

    def published_file(self) -> Path:
        if not self.current_path.is_symlink() or not self.current_path.exists():
            raise NotPublished(
                self.missing()
                or f"warehouse {str(self.root)!r} has no published version yet: "
                "import something first",
                warehouse=str(self.root),
            )
        return self.current_path.resolve()

    def missing(self) -> str | None:
        """Why a reader finds nothing when the directory itself is absent (a wrong --warehouse is
        likelier than an empty warehouse); None when it exists. Writers create it."""
        if self.root.is_dir():
            return None
        return (
            f"warehouse directory {str(self.root)!r} does not exist (--warehouse or "
            "PROPSYNC_WAREHOUSE; the first write, e.g. propsync import, creates it)"
        )

    def connect_published(self) -> duckdb.DuckDBPyConnection:
        con = connect_duckdb(self.published_file(), read_only=True, root=self.root)
        con.execute("SET enable_progress_bar = false")
        return con
