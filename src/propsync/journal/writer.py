"""Writing: one segment per process, group commit (one ``write`` and one ``fdatasync`` for every
record queued since the last)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from propsync.files import fsync_directory
from propsync.journal.layout import TMP_PREFIX, JournalUnavailable, journal_dir

log = logging.getLogger("propsync.journal")


# -- writing --------------------------------------------------------------------------------------


class _SyncWaiter:
    __slots__ = ("error", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: BaseException | None = None


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if fut.done():  # the request was cancelled (client went away)
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(JournalUnavailable(f"journal write failed: {error}"))


@dataclass
class WriterStats:
    records: int = 0
    bytes: int = 0
    syncs: int = 0
    segments: int = 0
    errors: int = 0
    last_error: str | None = None


class JournalWriter:
    """Appends records to this process's segment with group commit (one fsync per burst).

    ``await append(line)`` (or ``append_sync``) returns only once the line is on stable storage.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        segment_age_seconds: float = 3600.0,
    ) -> None:
        self.dir = journal_dir(root)
        self.segment_bytes = segment_bytes
        self.segment_age_seconds = segment_age_seconds
        self.stats = WriterStats()
        self.segment: Path | None = None
        self._fd: int | None = None
        self._size = 0
        self._opened_at = 0.0
        self._cond = threading.Condition()
        self._queue: list[tuple[bytes, asyncio.AbstractEventLoop | None, Any]] = []
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- public API

    def start(self) -> JournalWriter:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()
        return self

    async def append(self, line: bytes) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._submit(line, loop, fut)
        await fut

    def append_sync(self, line: bytes, timeout: float | None = 60.0) -> None:
        waiter = _SyncWaiter()
        self._submit(line, None, waiter)
        if not waiter.event.wait(timeout):
            raise JournalUnavailable("journal write timed out")
        if waiter.error is not None:
            raise JournalUnavailable(f"journal write failed: {waiter.error}")

    def close(self, timeout: float = 30.0) -> None:
        """Finish queued writes, close the segment (it becomes appliable as a whole) and stop."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def healthy(self) -> bool:
        return not self._closing and self._thread is not None and self._thread.is_alive()

    # -- internals

    def _submit(self, line: bytes, loop: asyncio.AbstractEventLoop | None, waiter: Any) -> None:
        with self._cond:
            if self._closing or self._thread is None:
                raise JournalUnavailable("the journal is closed")
            self._queue.append((line, loop, waiter))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                items, self._queue = self._queue, []
            if not items:
                break  # closing and drained
            error: BaseException | None = None
            try:
                self._write(b"".join(line for line, _, _ in items))
                self.stats.records += len(items)
            except Exception as exc:  # OSError mostly; never leave waiters hanging
                error = exc
                self.stats.errors += 1
                self.stats.last_error = str(exc)
                log.error("journal write failed, %d requests refused: %s", len(items), exc)
                self._abandon_segment()
            self._complete(items, error)
        self._close_segment()

    def _complete(
        self,
        items: list[tuple[bytes, asyncio.AbstractEventLoop | None, Any]],
        error: BaseException | None,
    ) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, loop, waiter in items:
            if loop is None:
                waiter.error = error
                waiter.event.set()
            else:
                by_loop.setdefault(loop, []).append(waiter)
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(_settle, futures, error)

    def _write(self, data: bytes) -> None:
        now = time.monotonic()
        if self._fd is not None and (
            self._size >= self.segment_bytes or now - self._opened_at >= self.segment_age_seconds
        ):
            self._close_segment()
        if self._fd is None:
            self._open_segment()
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)
        self._size += len(data)
        self.stats.bytes += len(data)
        self.stats.syncs += 1

    def _open_segment(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        tmp = self.dir / f"{TMP_PREFIX}{name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            # Locked before it gets its real name: an applier never sees it unlocked while alive.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            final = self.dir / name
            os.rename(tmp, final)
            fsync_directory(self.dir)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._fd, self.segment, self._size = fd, final, 0
        self._opened_at = time.monotonic()
        self.stats.segments += 1

    def _close_segment(self) -> None:
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            log.error("journal fsync on close failed: %s", exc)
        finally:
            os.close(self._fd)  # releases the flock: the segment is complete
            self._fd, self.segment = None, None

    def _abandon_segment(self) -> None:
        # After a failed write or fsync the state of the file is unknown: never append to it again.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd, self.segment = None, None
