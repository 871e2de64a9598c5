"""Serving copies: the HTTP service's indexed copies of published versions.

Publishing is a plain copy of ``work.duckdb`` (``Warehouse.publish``): neither the writer's
database nor the published versions carry indexes, so no writer (import, apply, edit) pays for
them, and analysts and ``propsync get`` read the lean files. Only the HTTP service needs point
lookups; it reads from a serving copy, a copy of a published version with the four ART read
indexes of ``sql/serving/`` built in it::

    serving/v000042.duckdb          published version 42 + the read indexes (immutable)
    serving/.v000043.duckdb.tmp     a copy being built; no reader ever opens it
    serving/build.lock              flock(2): one build at a time, across processes and workers
    serving/tmp/                    DuckDB's spill space of the index build

``ServingCopies.ensure_newest`` returns the serving copy of the newest published version and
builds it when no process has yet. Builds take turns on ``build.lock``: a process that finds the
lock taken does not build, it waits (polling) until the holder is done and then looks again, so
``propsync serve --workers N`` builds each version once. Under the lock the newest published
version is looked up again: versions published meanwhile are skipped, only the newest is built,
and if another process built it already nothing is done. A build copies the published file
(opened first: a publish that prunes it meanwhile does not matter), creates the indexes under the
writer's memory limit (``Settings.duckdb_memory_limit``; DuckDB spills to ``serving/tmp``),
``CHECKPOINT``s, fsyncs, renames the file to ``vNNNNNN.duckdb`` and fsyncs the directory: a reader
only ever finds complete, indexed files under that name. A build that fails or is killed leaves
at most a ``.tmp`` file (and its WAL), which the next build removes (under the lock, so never one
in progress). The newest ``KEEP_SERVING_COPIES`` (2) copies are kept; older ones are unlinked (a
reader that has one open keeps reading it until it closes it).

The cost is the HTTP service's: a copy plus the index build, about 8 s on 1M customers x 10
properties on a quiet host (docs/benchmarks.md), single-threaded, doubling the file. The service
builds in a background thread and keeps serving its current copy meanwhile
(``propsync.api.reader.PublishedReader``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb

from propsync import sql
from propsync.config import duckdb_memory_limit
from propsync.errors import NotPublished, WarehouseLocked
from propsync.files import READ_ONLY_MODE, fsync_directory, fsync_file
from propsync.locks import exclusive_lock
from propsync.store.warehouse import VERSION_FILE, Warehouse, connect_duckdb

KEEP_SERVING_COPIES = 2
# A copy being built and DuckDB's WAL next to it while its indexes are created.
_PARTIAL_FILE = re.compile(r"^\.v\d{6,}\.duckdb\.tmp")

log = logging.getLogger("propsync.serving")


class BuildCancelled(Exception):
    """The build was cancelled (the service is stopping); its partial copy is removed."""


def build_read_indexes(
    path: str | os.PathLike[str],
    temp_directory: Path | None = None,
    memory_limit: str | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Create the read indexes (``sql/serving/``) in the DuckDB file ``path`` and checkpoint it.

    Only for a private copy: DuckDB lets nobody else open the file meanwhile. Under a
    ``memory_limit`` DuckDB evicts index buffers to ``temp_directory`` (measured on 1M x 10: peak
    RSS 1.26 GB without a limit, 0.58 GB under 512MB, at the same speed). Setting ``cancel``
    interrupts the running statement and raises ``BuildCancelled``.
    """
    config: dict[str, str | bool | int | float | list[str]] = {}
    if temp_directory is not None:
        config["temp_directory"] = str(temp_directory)
    if limit := duckdb_memory_limit(memory_limit):
        config["memory_limit"] = limit
    con = connect_duckdb(path, read_only=False, config=config)
    done = threading.Event()
    watcher: threading.Thread | None = None
    if cancel is not None:
        stop = cancel

        def watch() -> None:
            while not done.is_set():
                if stop.wait(0.1):
                    con.interrupt()
                    return

        watcher = threading.Thread(target=watch, name="serving-build-cancel", daemon=True)
        watcher.start()
    try:
        con.execute("SET enable_progress_bar = false")  # no progress bars in logs
        for statement in sql.serving_statements():
            if cancel is not None and cancel.is_set():
                raise BuildCancelled(f"index build of {str(path)!r} cancelled")
            con.execute(statement)
        con.execute("CHECKPOINT")  # the indexes into the file itself: no WAL is left behind
    except duckdb.InterruptException:
        raise BuildCancelled(f"index build of {str(path)!r} cancelled") from None
    finally:
        done.set()
        if watcher is not None:
            watcher.join()
        con.close()


@dataclass(frozen=True)
class ServingCopy:
    version: int
    path: Path
    # Whether this call built it (False: it existed already, e.g. another process built it).
    built: bool = False
    seconds: float = 0.0


def _copy_file(src: BinaryIO, dst: BinaryIO) -> None:
    """Copy all of ``src`` to ``dst`` in the kernel where it can (copy_file_range)."""
    size = os.fstat(src.fileno()).st_size
    offset = 0
    try:
        while offset < size:
            n = os.copy_file_range(src.fileno(), dst.fileno(), size - offset, offset, offset)
            if n == 0:
                break
            offset += n
    except OSError:
        if offset:
            raise
    if offset < size:  # no copy_file_range here (or a short copy): read and write
        src.seek(offset)
        dst.seek(offset)
        shutil.copyfileobj(src, dst, 16 << 20)


class ServingCopies:
    """The ``serving/`` directory of a warehouse (see the module docstring)."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        memory_limit: str | None = None,
        keep: int = KEEP_SERVING_COPIES,
    ) -> None:
        self.warehouse = warehouse
        self.memory_limit = memory_limit
        self.keep = max(1, keep)

    @property
    def dir(self) -> Path:
        return self.warehouse.serving_dir

    @property
    def lock_path(self) -> Path:
        return self.dir / "build.lock"

    @property
    def temp_directory(self) -> Path:
        return self.dir / "tmp"

    def path(self, version: int) -> Path:
        return self.dir / f"v{version:06d}.duckdb"

    def versions(self) -> list[int]:
        """The versions that have a complete serving copy, oldest first."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for n in names if (m := VERSION_FILE.match(n)))

    def newest(self) -> ServingCopy | None:
        versions = self.versions()
        return ServingCopy(versions[-1], self.path(versions[-1])) if versions else None

    def ensure_newest(
        self, cancel: threading.Event | None = None, lock_poll_seconds: float = 0.2
    ) -> ServingCopy:
        """The serving copy of the newest published version, built if no process has built it.

        Waits (without building) while another process holds the build lock, then looks again.
        Raises ``NotPublished`` when nothing is published, ``BuildCancelled`` when ``cancel`` is
        set while waiting or building.
        """
        while True:
            if cancel is not None and cancel.is_set():
                raise BuildCancelled("serving copy build cancelled")
            version = self.warehouse.published_version()
            if version == 0:
                raise NotPublished(
                    f"warehouse {str(self.warehouse.root)!r} has no published version yet",
                    warehouse=str(self.warehouse.root),
                )
            if self.path(version).exists():
                return ServingCopy(version, self.path(version))
            self.dir.mkdir(parents=True, exist_ok=True)
            try:
                lock = exclusive_lock(
                    self.lock_path,
                    lock_poll_seconds,
                    lambda holder: f"pid {holder} is building a serving copy",
                )
                with lock:
                    return self._build_newest(cancel)
            except WarehouseLocked:
                continue  # another process builds: perhaps the very copy wanted; look again

    def _open_newest_published(self) -> tuple[int, BinaryIO]:
        for _ in range(100):
            try:
                target = os.readlink(self.warehouse.current_path)
            except FileNotFoundError:
                break
            m = VERSION_FILE.match(Path(target).name)
            if m is None:
                break
            try:
                return int(m.group(1)), open(self.warehouse.root / target, "rb")
            except FileNotFoundError:
                continue  # pruned between readlink and open: a newer version is current now
        raise NotPublished(
            f"warehouse {str(self.warehouse.root)!r} has no published version yet",
            warehouse=str(self.warehouse.root),
        )

    def _build_newest(self, cancel: threading.Event | None) -> ServingCopy:
        """Build the newest published version's copy (call only while holding the build lock)."""
        self._remove_partial_copies()  # of a build that failed or was killed
        version, source = self._open_newest_published()
        with source:
            final = self.path(version)
            if final.exists():  # built by another process while we waited for the lock
                return ServingCopy(version, final)
            tmp = self.dir / f".v{version:06d}.duckdb.tmp"
            started = time.monotonic()
            try:
                with open(tmp, "wb") as out:
                    _copy_file(source, out)
                copied = time.monotonic()
                build_read_indexes(tmp, self.temp_directory, self.memory_limit, cancel)
                indexed = time.monotonic()
                os.chmod(tmp, READ_ONLY_MODE)  # complete: never written again (as published)
                fsync_file(tmp)
            except BaseException:
                self._remove_partial_copies()
                raise
            os.replace(tmp, final)
            fsync_directory(self.dir)
        self._prune(version)
        seconds = time.monotonic() - started
        log.info(
            "built serving copy v%06d (%.0f MB) in %.2f s: copy %.2f s, read indexes %.2f s",
            version,
            final.stat().st_size / 1e6,
            seconds,
            copied - started,
            indexed - copied,
        )
        return ServingCopy(version, final, built=True, seconds=seconds)

    def _remove_partial_copies(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.dir):
                if not _PARTIAL_FILE.match(name):
                    continue
                p = self.dir / name
                if p.is_dir():  # DuckDB's default spill directory of the copy, should it exist
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()

    def _prune(self, built: int) -> None:
        """Keep the newest ``keep`` copies up to ``built``; copies of versions above it are left
        over from before the warehouse was recreated (published versions only grow) and go too."""
        versions = self.versions()
        stale = [v for v in versions if v <= built][: -self.keep] + [
            v for v in versions if v > built
        ]
        for version in stale:
            # A reader that still has it open keeps reading it: unlink frees it later.
            with contextlib.suppress(FileNotFoundError):
                self.path(version).unlink()
