"""Compaction: fold a published version's files into fewer, without changing what they show.

Every publish adds one run (``store/runs.py``) to the version's file list (``store/catalog.py``).
Left alone, the list grows by one file per batch and every analyst query reads all of them, so
compaction folds them, size-tiered, as log-structured stores do:

* **changes** — a fold takes the newest files back to the first one of a larger size class
  than c (``size_class``: rows in powers of ``FANOUT``) once ``FANOUT`` of them are of class c,
  for the smallest such c (each property's newest change; ids and merges kept). Folds are
  contiguous (a newer file overrides an older one), and no file of a larger class is ever
  rewritten to fold smaller ones. So a file's rows are rewritten about log_FANOUT(rows) times
  before they reach the base, and the list holds at most about ``FANOUT`` files per size class.
  (The span used to run from the oldest file of the class to the newest file, so the tracking
  runs of 40k rows refolded, every few seconds, the 200-400k-row files between them.)
* **base** — when the changes hold more than ``BASE_RATIO`` of the base's rows, everything is
  folded into a new base (merges applied, merged-away customers dropped). That rewrite costs the
  warehouse, so it comes only after that many rows have changed: per changed row its cost is
  constant. While writers keep publishing (``busy``: the service's applier under sustained
  tracking) the new base waits until the changes reach ``BUSY_BASE_RATIO`` of it, and is written
  at ``BASE_RATIO`` once the writer is idle: at 20,000 commands/s into 1M customers x 10 a new base
  every tenth took about 20 s of CPU every 25 s, on a machine whose cores the applier and the
  read model's follower needed (docs/benchmarks.md).
* **busy** writers fold the changes together before they write a new base: once the changes
  exceed ``BUSY_BASE_RATIO``, all of them are folded into one file as long as the newer ones
  hold at least as many rows as the oldest (a fold's result), and the base is rewritten only
  when that no longer holds. Tracking updates a hot set of keys over and over, so its changes
  fold into far fewer rows than they were written with, and the base is rarely rewritten
  while the applier is busy.
* **busy** writers also fold changes less often: ``BUSY_FANOUT`` files of a size class (in powers
  of it) instead of ``FANOUT``, so each row is rewritten about half as many times while the cores
  are wanted, at the price of a longer file list (the HTTP service reads its read model, not the
  list); the idle writer folds to ``FANOUT`` again. Tracked -> visible at 1M under 20,000
  commands/s, three alternating rounds each: p50 1.37/1.99/1.27 s -> 1.12/1.17/0.90 s, p99
  2.28/6.92/3.69 s -> 2.37/2.47/1.71 s (docs/benchmarks.md).

It reads only published, immutable files, so it runs **outside the write lock**: writers keep
committing while it works. One compaction at a time (``compact.lock``); it takes the write lock
only to commit, that is to write the same version's catalog again with the folded file in
place of the files it replaces (a new generation, ``v000042.c1.duckdb``). Runs committed in the
meantime stay after it. The replaced files stay for ``Settings.file_retention_seconds`` so that a
reader of an older catalog keeps working, then the next publish removes them.

A fold's files keep a pending name (a leading dot) until the commit renames them under the write
lock, because a publish removes every published file no catalog lists. A compaction killed at
any point leaves only files nobody lists (removed by the next one) and the current catalog as it
was.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from propsync import sql
from propsync.config import Settings
from propsync.errors import WarehouseLocked
from propsync.files import fsync_directory
from propsync.locks import exclusive_lock
from propsync.store import catalog, runs
from propsync.store.warehouse import Warehouse, segment_paths, writer_config
from propsync.timestamps import now_us

FANOUT = 8
BUSY_FANOUT = 32
BASE_RATIO = 0.1
BUSY_BASE_RATIO = 1.0
# A base smaller than this is folded as soon as the changes reach BASE_RATIO of this: a young
# warehouse's base is rewritten cheaply instead of piling up small files.
MIN_BASE_ROWS = 10_000

log = logging.getLogger("propsync.compaction")


@dataclass(frozen=True)
class Fold:
    """Fold ``segments[start:stop]`` of a manifest into one file; ``start`` 0 makes a new base."""

    start: int
    stop: int

    @property
    def base(self) -> bool:
        return self.start == 0


@dataclass(frozen=True)
class CompactionResult:
    folds: int  # folds committed
    files_before: int
    files_after: int
    seconds: float
    skipped: str = ""  # why nothing ran ("another compaction is running", ...)


def size_class(rows: int, fanout: int = FANOUT) -> int:
    return int(math.log(max(rows, 1), fanout))


def plan(
    segments: Sequence[catalog.Segment], *, full: bool = False, busy: bool = False
) -> Fold | None:
    """The next fold the file list needs, if any (``full``: fold everything into a new base;
    ``busy``: writers keep publishing, so a new base waits for ``BUSY_BASE_RATIO`` and changes
    are folded by ``BUSY_FANOUT``)."""
    if len(segments) < 2:
        return None
    base, changes = segments[0], segments[1:]
    ratio = BUSY_BASE_RATIO if busy else BASE_RATIO
    if full:
        return Fold(0, len(segments))
    if sum(s.rows for s in changes) > ratio * max(base.rows, MIN_BASE_ROWS):
        # Busy: the changes are folded together first while the newer files hold at least as
        # many rows as the oldest (so a fold reads at least twice what the last one left); the
        # base is rewritten once a fold keeps too many rows for that to hold.
        # Tracking updates a hot set of keys again and again: at 50,000 commands/s into
        # 1M x 10, 20.8M rows of changes held 2.0M keys, and their fold took 26 s of CPU where
        # a new base took 58 s and left no smaller changes behind (docs/benchmarks.md).
        if busy and sum(s.rows for s in changes[1:]) >= changes[0].rows:
            return Fold(1, len(segments))
        return Fold(0, len(segments))
    fanout = BUSY_FANOUT if busy else FANOUT
    classes = [size_class(s.rows, fanout) for s in changes]
    for cls in sorted(set(classes)):
        start = len(changes)
        while start > 0 and classes[start - 1] <= cls:
            start -= 1
        if classes[start:].count(cls) >= fanout:
            return Fold(1 + start, len(segments))
    return None


def compact(
    warehouse: Warehouse,
    settings: Settings,
    *,
    full: bool = False,
    wait: bool = False,
    busy: bool = False,
) -> CompactionResult:
    """Fold the current version's files until ``plan`` finds nothing to do (``full``: into one
    base; ``busy``: see ``plan``). Returns at once, skipped, when another compaction is running,
    unless ``wait``."""
    started = time.monotonic()
    before = warehouse.current_manifest()
    if before is None:
        why = warehouse.missing() or "nothing published in this layout yet"
        return CompactionResult(0, 0, 0, 0.0, why)
    try:
        with exclusive_lock(
            warehouse.root / "compact.lock",
            settings.lock_timeout_seconds if wait else 0.0,
            lambda pid: f"another compaction is running (pid {pid})",
        ):
            folds = _compact_locked(warehouse, settings, full, busy)
    except WarehouseLocked as exc:
        return CompactionResult(0, len(before.segments), len(before.segments), 0.0, str(exc))
    after = warehouse.current_manifest()
    return CompactionResult(
        folds,
        len(before.segments),
        len(after.segments) if after else 0,
        time.monotonic() - started,
    )


def _compact_locked(warehouse: Warehouse, settings: Settings, full: bool, busy: bool) -> int:
    directory = warehouse.segments_dir
    directory.mkdir(parents=True, exist_ok=True)
    _remove_partial(directory)
    folds = 0
    while (manifest := _foldable(warehouse)) is not None:
        fold = plan(manifest.segments, full=full and folds == 0, busy=busy)
        if fold is None:
            break
        folded = _write_fold(warehouse, settings, manifest, fold)
        with warehouse.write_lock(settings.lock_timeout_seconds):
            current = warehouse.current_manifest()
            if current is None or current.segments[: fold.stop] != manifest.segments[: fold.stop]:
                # Publishes only append runs and this is the only compaction: a prefix that
                # changed under it was rewritten whole (a recreated warehouse, or a publish that
                # wrote a new base). Drop the fold.
                for path in folded.paths:
                    with contextlib.suppress(FileNotFoundError):
                        pending_path(warehouse.root / path).unlink()
                break
            # Named as published only now, under the lock: a publish prunes every segment file
            # that no catalog lists, and until this commit none lists the fold.
            for path in folded.paths:
                os.replace(pending_path(warehouse.root / path), warehouse.root / path)
            fsync_directory(warehouse.segments_dir)
            replaced = current.segments[fold.start : fold.stop]
            stamp = now_us()
            new = replace(
                current,
                generation=current.generation + 1,
                segments=(
                    (*current.segments[: fold.start], folded, *current.segments[fold.stop :])
                ),
                retired=current.retired + tuple((p, stamp) for s in replaced for p in s.paths),
            )
            warehouse.commit_manifest(
                new,
                keep=settings.keep_published_versions,
                keep_runs=settings.keep_runs,
                retention_seconds=settings.file_retention_seconds,
            )
        folds += 1
        log.info(
            "compacted %d files of versions %d..%d into one (%d rows)%s",
            fold.stop - fold.start,
            folded.first,
            folded.last,
            folded.rows,
            " as the new base" if fold.base else "",
        )
    return folds


def _write_fold(
    warehouse: Warehouse, settings: Settings, manifest: catalog.Manifest, fold: Fold
) -> catalog.Segment:
    segments = manifest.segments[fold.start : fold.stop]
    first, last = segments[0].first, segments[-1].last
    changes, history = segment_paths(warehouse.segments_dir, first, last)
    tmp_dir = warehouse.segments_dir / ".tmp"
    con = duckdb.connect(config=writer_config(tmp_dir, settings.duckdb_memory_limit))
    _connections[threading.current_thread()] = con
    try:
        if _stopping.is_set():
            raise CompactionStopped("the process is stopping")
        con.execute("SET enable_progress_bar = false")
        catalog.create_views(con, warehouse.root, segments, manifest.property_names, base=fold.base)
        statement = "compaction/fold_base" if fold.base else "compaction/fold_changes"
        params: dict[str, object] = {"version": last} if fold.base else {}
        rows = runs.write_sorted(con, pending_path(changes), sql.load(statement), params)
        runs.write_file(con, pending_path(history), sql.load("compaction/fold_history"), {})
    finally:
        _connections.pop(threading.current_thread(), None)
        con.close()
    fsync_directory(warehouse.segments_dir)
    return catalog.Segment(
        first,
        last,
        changes.relative_to(warehouse.root).as_posix(),
        history.relative_to(warehouse.root).as_posix(),
        rows,
    )


def pending_path(path: Path) -> Path:
    """Where a fold's file waits for its commit: a leading dot, which publishes leave alone."""
    return path.with_name(f".{path.name}.pending")


def _remove_partial(directory: Path) -> None:
    """Files of a compaction that was killed (only one runs at a time: this one)."""
    for name in os.listdir(directory):
        path = directory / name
        if name == ".tmp":
            for spill in path.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    spill.unlink()
        elif name.startswith("."):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def due(warehouse: Warehouse, *, busy: bool = False) -> bool:
    """Whether the current version's files need a fold (cheap: reads the catalog's file list)."""
    manifest = _foldable(warehouse)
    return manifest is not None and plan(manifest.segments, busy=busy) is not None


def _foldable(warehouse: Warehouse) -> catalog.Manifest | None:
    """The current version's manifest, unless its files are of an older shape: the next publish
    replaces them with a new base (``Warehouse.publish``)."""
    manifest = warehouse.current_manifest()
    return manifest if manifest is not None and manifest.layout == catalog.LAYOUT else None


_threads: dict[Path, threading.Thread] = {}
_threads_lock = threading.Lock()
# The DuckDB connection each compaction thread folds with, so that stop_threads can interrupt it.
_connections: dict[threading.Thread, duckdb.DuckDBPyConnection] = {}
_stopping = threading.Event()


class CompactionStopped(Exception):
    """A compaction thread was asked to stop (``stop_threads``); its files are left unlisted."""


def stop_threads(timeout: float = 10.0) -> None:
    """Interrupt this process's compaction threads and wait for them (a process that exits with
    one inside DuckDB aborts); none starts meanwhile. What they wrote is unlisted; the next
    compaction removes it."""
    _stopping.set()
    for con in list(_connections.values()):
        with contextlib.suppress(duckdb.Error):
            con.interrupt()
    with _threads_lock:
        threads = list(_threads.values())
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    _stopping.clear()  # a process that goes on (tests, a restarted service) compacts again


# How much lower than its process a compaction thread runs (Linux nice is per thread, and the
# threads DuckDB starts for the compaction's own instance inherit it): an edit or an apply in the
# same process gets the cores first (a full fold at 1M x 10 is tens of seconds of CPU).
COMPACTION_NICENESS_STEP = 10


def lower_thread_priority(step: int = COMPACTION_NICENESS_STEP) -> int:
    """Lower the calling thread's scheduling priority by ``step`` (to nice 19 at most) and return
    its nice value; the process's other threads keep theirs."""
    tid = threading.get_native_id()
    try:
        nice = min(19, os.getpriority(os.PRIO_PROCESS, tid) + step)
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:  # not Linux, or not allowed: compact at the process's priority
        return os.getpriority(os.PRIO_PROCESS, 0)
    return nice


def start_thread(
    warehouse: Warehouse, settings: Settings, *, busy: bool = False
) -> threading.Thread | None:
    """For long-running writers (the HTTP service's applier): compact in a daemon thread of this
    process when due and none is running for the warehouse; DuckDB releases the GIL meanwhile.
    ``busy``: the writer has more to publish soon (see ``plan``); an idle one calls again."""
    root = warehouse.root.resolve()
    with _threads_lock:
        running = _threads.get(root)
        if (
            _stopping.is_set()
            or (running is not None and running.is_alive())
            or not due(warehouse, busy=busy)
        ):
            return None

        def run() -> None:
            lower_thread_priority()
            try:
                compact(warehouse, settings, busy=busy)
            except Exception:
                if _stopping.is_set():
                    log.info("compaction stopped with the process; the next one redoes it")
                else:
                    log.exception("compaction failed; the next publish retries it")

        thread = threading.Thread(target=run, name="propsync-compaction", daemon=True)
        _threads[root] = thread
        thread.start()
        return thread


def start_in_background(warehouse: Warehouse) -> subprocess.Popen[bytes] | None:
    """Start ``propsync compact`` detached when a fold is due (as ``git gc --auto`` does), so a
    command-line write returns without waiting for it; its log goes to ``compact.log``."""
    if not due(warehouse):
        return None
    log_path = warehouse.root / "compact.log"
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "propsync.cli", "compact", "--warehouse", str(warehouse.root)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
