"""An exclusive, inter-process ``flock(2)`` lock that records its holder's pid, and tells its
holder whether anybody waits for it; and a shared lock that says a process is present."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from propsync.errors import WarehouseLocked


def _wait_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.wait")


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout: float, busy: Callable[[str], str]) -> Iterator[None]:
    """Wait up to ``timeout`` seconds; then raise WarehouseLocked with ``busy(holder_pid)``.

    While it waits it holds ``PATH.wait`` shared, so that a holder that keeps the lock from one
    piece of work to the next (the applier, ``Warehouse.hold_write_lock``) sees it
    (``others_waiting``) and lets go.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    waiting: int | None = None
    try:
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise WarehouseLocked(busy(holder), holder_pid=holder) from None
                if waiting is None:
                    waiting = os.open(
                        _wait_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
                    )
                    fcntl.flock(waiting, fcntl.LOCK_SH)  # an others_waiting look holds it briefly
                # Most holds are short (a publish, a compaction's commit): look again soon, then
                # less often, so that an edit waits for the holder and not for the poll.
                time.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 0.05)
        if waiting is not None:
            os.close(waiting)
            waiting = None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        if waiting is not None:
            os.close(waiting)
        os.close(fd)  # closing releases the flock


def others_waiting(path: Path) -> bool:
    """Whether a process or thread is waiting in ``exclusive_lock(path)`` (a few microseconds)."""
    return held(_wait_path(path))


@contextlib.contextmanager
def presence(path: Path) -> Iterator[None]:
    """Hold ``path`` shared while the block runs: ``held(path)`` is then true in every process.
    The kernel lets go when the process dies, so a killed holder is never taken as present."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def held(path: Path) -> bool:
    """Whether some process holds ``path`` (shared or exclusive); a few microseconds."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
