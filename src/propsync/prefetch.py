"""Run an iterator a few items ahead of its consumer, in a background thread.

The per-line scans of CSV and JSON Lines sources (``csvrecords``, ``jsonlines``) are Polars queries;
Polars releases the GIL while it computes, so a scan running here overlaps the normalisation of the
chunk before it, which mostly keeps one core busy.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

import polars as pl

T = TypeVar("T")

_END = object()


class Prefetched(Generic[T]):
    """``iter(source)`` consumed ``depth`` items ahead. Use as a context manager: leaving it early
    stops the thread. An exception of the source is raised where the consumer reaches it."""

    def __init__(self, source: Iterable[T], depth: int = 2, name: str = "prefetch") -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(_Failure(exc))
            return
        self._put(_END)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # later calls end too
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.exc
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class RowFeed:
    """Rows of a stream of frames (made in a background thread), handed out ``n`` at a time.

    Lets a per-line scan of a file keep step with the chunks Polars reads the same file in.
    """

    def __init__(self, frames: Iterable[pl.DataFrame], name: str) -> None:
        self._frames = Prefetched(frames, name=name)
        self._ready: pl.DataFrame | None = None

    def close(self) -> None:
        self._frames.close()

    def _more(self) -> bool:
        frame = next(self._frames, None)
        if frame is None:
            return False
        self._ready = frame if self._ready is None else pl.concat([self._ready, frame])
        return True

    def _height(self) -> int:
        return 0 if self._ready is None else self._ready.height

    def take(self, n: int) -> pl.DataFrame | None:
        """The next ``n`` rows, or None when the stream ends before that many."""
        while (self._ready is None or self._height() < n) and self._more():
            pass
        if self._ready is None or self._height() < n:
            return None
        out, self._ready = self._ready.slice(0, n), self._ready.slice(n)
        return out

    def exhausted(self) -> bool:
        """Whether no rows are left (reads the stream to its end)."""
        while not self._height() and self._more():
            pass
        return self._height() == 0
