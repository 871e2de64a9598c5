"""Reading: segments from their cursors, merged in receive order into chunks of commands."""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from propsync.errors import PropsyncError
from propsync.journal.layout import SEGMENT_RE, writer_alive
from propsync.journal.records import Record
from propsync.journal.state import ApplyState

log = logging.getLogger("propsync.journal")


class SegmentReader:
    """Records of one segment from ``start`` up to ``limit`` bytes, in file order."""

    def __init__(self, index: int, path: Path, start: int, limit: int, *, complete: bool) -> None:
        self.index = index
        self.path = path
        self.name = path.name
        self.complete = complete  # the writer is gone: its content is final
        self.cursor = start  # consumed by earlier chunks
        self.pos = start
        self.limit = limit
        self.head: tuple[int, int, Record] | None = None
        self.exhausted_at: int | None = None
        self.skipped = 0
        self._file: IO[bytes] | None = open(path, "rb")  # noqa: SIM115 - closed in advance()
        self._file.seek(start)
        self.advance()

    def advance(self) -> None:
        self.head = None
        f = self._file
        while f is not None:
            if self.pos >= self.limit:
                self._exhaust(self.pos)
                return
            line = f.readline(self.limit - self.pos)
            if not line.endswith(b"\n"):
                if self.complete and line:
                    # The writer died mid-write: this line was never acknowledged.
                    log.warning("%s: ignoring a torn last record (%d bytes)", self.name, len(line))
                    self.skipped += 1
                    self._exhaust(self.pos + len(line))
                else:
                    self._exhaust(self.pos)
                return
            start = self.pos
            rec = Record.decode(line[:-1])
            if rec is None:
                if not self.complete:  # cannot happen for whole lines; wait for the writer
                    self._exhaust(start)
                    return
                log.error("%s: skipping a corrupt record at byte %d", self.name, start)
                self.skipped += 1
                self.pos += len(line)
                continue
            self.pos += len(line)
            self.head = (start, self.pos, rec)
            return

    def _exhaust(self, at: int) -> None:
        self.exhausted_at = at
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class Chunk:
    ranges: dict[str, tuple[int, int]]
    records: list[Record]

    def batch_id(self) -> str:
        text = json.dumps(sorted((k, s, e) for k, (s, e) in self.ranges.items()))
        return "jrn-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def take_chunk(
    readers: list[SegmentReader], max_commands: int, *, one_kind: bool = True
) -> Chunk | None:
    """The next records in receive order, at most ``max_commands`` commands (at least one record),
    all of one kind (``track`` or ``edit``: each batch is recorded as what it is) unless
    ``one_kind`` is off (the redo of a chunk recorded before chunks were split by kind)."""
    heap = [(r.head[2].receive_us, r.index, r.head[0]) for r in readers if r.head is not None]
    heapq.heapify(heap)
    by_index = {r.index: r for r in readers}
    records: list[Record] = []
    ends: dict[int, int] = {}
    commands = 0
    while heap and (not records or commands < max_commands):
        if one_kind and records:
            head = by_index[heap[0][1]].head
            assert head is not None
            if head[2].kind != records[0].kind:
                break
        _, index, _ = heapq.heappop(heap)
        reader = by_index[index]
        assert reader.head is not None
        _, end, rec = reader.head
        records.append(rec)
        commands += rec.customer_commands()
        ends[index] = end
        reader.advance()
        if reader.head is not None:
            heapq.heappush(heap, (reader.head[2].receive_us, index, reader.head[0]))
    ranges: dict[str, tuple[int, int]] = {}
    for reader in readers:
        end = ends.get(reader.index, reader.cursor)
        if reader.head is None and reader.exhausted_at is not None:
            end = max(end, reader.exhausted_at)  # include a skipped torn or corrupt tail
        if end > reader.cursor:
            ranges[reader.name] = (reader.cursor, end)
    if not ranges:
        return None
    return Chunk(ranges, records)


def open_readers(
    jdir: Path, ranges: dict[str, tuple[int, int]] | None, state: ApplyState
) -> list[SegmentReader]:
    readers: list[SegmentReader] = []
    if ranges is not None:  # redo of a recorded intent: exactly these bytes
        for i, (name, (start, end)) in enumerate(sorted(ranges.items())):
            readers.append(SegmentReader(i, jdir / name, start, end, complete=True))
        return readers
    for name in sorted(os.listdir(jdir)):
        if not SEGMENT_RE.match(name):
            continue
        path = jdir / name
        alive = writer_alive(path)  # first: a dead writer's file is final before we size it
        if alive is None:
            continue
        size = path.stat().st_size
        start = state.cursors.get(name, 0)
        if start > size:
            raise PropsyncError(f"journal cursor of {name} ({start}) is beyond its size ({size})")
        readers.append(SegmentReader(len(readers), path, start, size, complete=not alive))
    return readers
