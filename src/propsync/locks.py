"""An exclusive, inter-process ``flock(2)`` lock that records its holder's pid."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from propsync.errors import WarehouseLocked


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout: float, busy: Callable[[str], str]) -> Iterator[None]:
    """Wait up to ``timeout`` seconds; then raise WarehouseLocked with ``busy(holder_pid)``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
                # Most holds are short (a publish, a compaction's commit): look again soon, then
                # less often, so that an edit waits for the holder and not for the poll.
                time.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
