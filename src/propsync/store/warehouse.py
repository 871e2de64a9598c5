"""Warehouse files, the single-writer lock, and publishing.

Layout of a warehouse directory::

    work.duckdb                 the writer's database; only the lock holder opens it
    tmp/                        DuckDB's spill space for merges larger than its memory limit
    write.lock                  flock(2) lock file; holds the writer's pid
    published/v000042.duckdb    immutable published versions (the newest few are kept)
    propsync.duckdb             symlink to the current published version: what readers open
    runs/r000042.parquet        each committed batch's changes (``propsync.store.runs``)
    serving/read_model.sqlite   the HTTP service's read model, following the runs
                                (``propsync.store.read_model``; not written here)

DuckDB lets no reader open a file that a writer has open, so readers never touch ``work.duckdb``.
A version is copied out only after its batch committed and passed its audit; the symlink is
swapped atomically, so a reader sees the old version or the new one, never a mix.

Publishing is a plain copy (plus fsync, rename and the symlink swap): neither ``work.duckdb`` nor
the published versions carry indexes. Only the HTTP service needs point lookups; it builds a
SQLite read model once, outside the write lock, and keeps it current by applying each published
version's run file (``propsync.store.read_model``), so no writer pays for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
from pathlib import Path

import duckdb

from propsync import sql
from propsync.config import duckdb_memory_limit
from propsync.errors import DatabaseInUse, NotPublished, UsageError
from propsync.files import READ_ONLY_MODE, fsync_directory, fsync_file
from propsync.locks import exclusive_lock
from propsync.store import migrations, runs

VERSION_FILE = re.compile(r"^v(\d{6,})\.duckdb$")
# A copy being published (and a WAL next to it, should DuckDB ever have opened one).
_PARTIAL_FILE = re.compile(r"^\.v\d{6,}\.duckdb\.tmp")

log = logging.getLogger("propsync.warehouse")


# DuckDB's message when another process holds the file's lock; it names that process.
_LOCK_HELD = "Could not set lock on file"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def connect_duckdb(
    path: str | os.PathLike[str],
    *,
    read_only: bool,
    config: dict[str, str | bool | int | float | list[str]] | None = None,
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` for warehouse files; a lock held by another process is a clear,
    retryable ``DatabaseInUse`` (naming that process and the fix) instead of DuckDB's IOException."""
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config or {})
    except duckdb.IOException as exc:
        if _LOCK_HELD not in str(exc):
            raise
        m = _LOCK_HOLDER.search(str(exc))
        holder = f"{m.group(1)} (pid {m.group(2)})" if m else "another process"
        pid = int(m.group(2)) if m else None
        raise DatabaseInUse(
            _in_use(str(path), holder, read_only), path=str(path), pid=pid
        ) from None


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


class Warehouse:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        # Seconds the last ``publish`` through this object took (the background applier paces
        # its publishes by it); None before the first.
        self.last_publish_seconds: float | None = None
        # What opening the working database last upgraded (None: it was created by this release).
        self.last_migration: migrations.MigrationResult | None = None

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

    def write_lock(self, timeout: float = 600.0) -> contextlib.AbstractContextManager[None]:
        """Exclusive across processes; waits up to ``timeout`` seconds for the current holder."""
        self._make_root()
        return exclusive_lock(
            self.root / "write.lock",
            timeout,
            lambda holder: (
                f"warehouse {str(self.root)!r} is locked by another writer (pid {holder}); "
                f"gave up after {timeout:g} s"
            ),
        )

    def connect_work(self, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
        """Open the working database (call only while holding the write lock)."""
        self._make_root()
        config: dict[str, str | bool | int | float | list[str]] = {
            "temp_directory": str(self.root / "tmp"),
            # Row order of inserts is irrelevant here, and keeping it costs memory.
            "preserve_insertion_order": False,
        }
        if limit := duckdb_memory_limit(memory_limit):
            config["memory_limit"] = limit
        con = connect_duckdb(self.work_path, read_only=False, config=config)
        con.execute("SET enable_progress_bar = false")  # no progress bars in logs
        try:
            fresh = migrations.is_fresh(con)
            if not fresh:  # upgrades first: the schema below is the current layout's
                self.last_migration = migrations.upgrade(self.root, con)
            for statement in sql.schema_statements():
                con.execute(statement)
            if fresh:
                migrations.stamp_current(con)
                runs.remove_runs_after(self.root, 0)  # of a work.duckdb that was removed
        except BaseException:
            con.close()
            raise
        return con

    @staticmethod
    def work_version(con: duckdb.DuckDBPyConnection) -> int:
        rows = con.execute("SELECT value FROM meta WHERE key = 'version'").fetchall()
        return int(rows[0][0]) if rows else 0

    @staticmethod
    def set_work_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
        con.execute("DELETE FROM meta WHERE key = 'version'")
        con.execute("INSERT INTO meta VALUES ('version', $v)", {"v": str(version)})

    # -- publishing -----------------------------------------------------------------------------

    def published_version(self) -> int:
        try:
            target = os.readlink(self.current_path)
        except (FileNotFoundError, OSError):
            return 0
        m = VERSION_FILE.match(Path(target).name)
        return int(m.group(1)) if m else 0

    def published_at(self) -> float | None:
        """When the current version was published (UNIX time of the symlink swap), if any."""
        try:
            return os.lstat(self.current_path).st_mtime
        except FileNotFoundError:
            return None

    def publish(self, version: int, keep: int = 3, keep_runs: int = 1000) -> Path:
        """Copy the closed, checkpointed work database out as ``version`` and point readers at it
        (call only while holding the write lock).

        Copy to a temporary name, fsync, rename to ``published/vNNNNNN.duckdb``, swap the
        ``propsync.duckdb`` symlink atomically and fsync the directory. A publish that fails or is
        killed leaves the previous version current; its partial copy is removed by the next one.
        """
        started = time.monotonic()
        self.published_dir.mkdir(parents=True, exist_ok=True)
        final = self.published_dir / f"v{version:06d}.duckdb"
        tmp = self.published_dir / f".v{version:06d}.duckdb.tmp"
        self._remove_partial_copies()  # of a publish that crashed
        try:
            shutil.copyfile(self.work_path, tmp)
            # Before the rename, so no reader ever finds a writable version (removing one when
            # pruning needs write permission on the directory only); fsync'd with the data.
            os.chmod(tmp, READ_ONLY_MODE)
            fsync_file(tmp)
        except BaseException:
            self._remove_partial_copies()
            raise
        os.replace(tmp, final)
        fsync_directory(self.published_dir)
        link_tmp = self.root / ".propsync.duckdb.tmp"
        with contextlib.suppress(FileNotFoundError):
            link_tmp.unlink()
        os.symlink(Path("published") / final.name, link_tmp)
        os.replace(link_tmp, self.current_path)
        fsync_directory(self.root)
        self._prune(keep)
        runs.prune(self.root, version, keep_runs)
        self.last_publish_seconds = time.monotonic() - started
        log.info(
            "published version %d (%.0f MB) in %.2f s",
            version,
            final.stat().st_size / 1e6,
            self.last_publish_seconds,
        )
        return final

    def _remove_partial_copies(self) -> None:
        for p in self.published_dir.iterdir():
            if not _PARTIAL_FILE.match(p.name):
                continue
            if p.is_dir():  # DuckDB's default spill directory of the copy, should it exist
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

    def _prune(self, keep: int) -> None:
        versions = sorted(
            (int(m.group(1)), p)
            for p in self.published_dir.iterdir()
            if (m := VERSION_FILE.match(p.name))
        )
        for _, path in versions[:-keep]:
            # Readers that still have an old version open keep reading it: unlink frees it later.
            path.unlink()

    # -- readers --------------------------------------------------------------------------------

    def published_file(self) -> Path:
        if not self.current_path.is_symlink() or not self.current_path.exists():
            raise NotPublished(
                f"warehouse {str(self.root)!r} has no published version yet: import something first",
                warehouse=str(self.root),
            )
        return self.current_path.resolve()

    def connect_published(self) -> duckdb.DuckDBPyConnection:
        con = connect_duckdb(self.published_file(), read_only=True)
        con.execute("SET enable_progress_bar = false")
        return con
