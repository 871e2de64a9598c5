"""The tracking journal: durable intake of tracking commands, applied later through ``apply_batch``.

A tracking request is acknowledged once its validated ``customers`` commands are in the journal
and fsync'd; applying them to the warehouse happens later, in bulk, through the single writer
(:func:`propsync.store.apply.apply_batch`). Layout under the warehouse directory::

    journal/<time_ns>-<pid>-<rand>.jsonl   segments: one JSON record per line, append-only
    journal/state.json                     apply cursors (bytes applied per segment) + intent
    journal/apply.lock                     flock(2): one applier at a time, across processes

Writing. Each writing process (a server worker) owns one open segment and holds an exclusive
flock(2) on it for its whole life; every line is ``<crc32 hex> <json>\\n``. A writer thread takes
every record queued since its last fsync, writes them with one ``write`` and makes them durable
with one ``fdatasync`` (group commit), then completes all of their waiters. A segment is created
under a temporary name, locked, renamed into place and its directory fsync'd before the first
record goes in, so an applier never mistakes a fresh segment for an abandoned one.

Applying. :func:`apply_journal` takes ``journal/apply.lock``, snapshots the segments and reads
each from its cursor: up to the last complete, checksummed line of a live segment (its writer
still holds the flock), to the end of a dead one (closed by a roll or a clean shutdown, or its
writer was killed: a torn last line, never acknowledged, is skipped). Records are merged in
receive order into batches of at most ``max_batch_commands`` commands. Before each batch the
intent (batch id + byte ranges) is written to ``state.json``; after ``apply_batch`` committed, the
cursors advance and the intent is cleared. A crash in between re-applies exactly the same ranges
under the same batch id, which ``apply_batch`` skips when it had committed. Dead segments that are
fully applied are deleted. Hence every acknowledged command is applied exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import heapq
import json
import logging
import os
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import polars as pl

from propsync import jsonlimits
from propsync.batch import CELLS_SCHEMA, IDS_SCHEMA, UpdateBatch
from propsync.config import Settings
from propsync.errors import PropsyncError, WarehouseLocked
from propsync.files import fsync_directory
from propsync.locks import exclusive_lock, others_waiting
from propsync.operations.track import apply_commands
from propsync.store import compaction
from propsync.store.apply import publish_pending
from propsync.store.warehouse import Warehouse
from propsync.tracking import TrackingBatch, Validated

log = logging.getLogger("propsync.journal")

JOURNAL_DIR = "journal"
STATE_FILE = "state.json"
APPLY_LOCK = "apply.lock"
DEFAULT_MAX_BATCH_COMMANDS = 250_000
_SEGMENT_RE = re.compile(r"^\d{20}-\d+-[0-9a-f]{8}\.jsonl$")
_TMP_PREFIX = ".tmp-"


class JournalUnavailable(PropsyncError):
    """The journal cannot take records (closed, or the disk failed); nothing was acknowledged."""

    retryable = True


def journal_dir(root: str | os.PathLike[str]) -> Path:
    return Path(root) / JOURNAL_DIR


# -- records --------------------------------------------------------------------------------------


_RECORD_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class Record:
    """One acknowledged request's validated ``customers`` commands.

    ``ids`` holds ``(command index, id type, id value)`` and ``cells`` ``(command index, property,
    canonical JSON value, update time in microseconds)``; command indexes are 1-based positions in
    the request. ``update_ts`` is already resolved (the receive time when the command had none),
    so applying a record later gives the same result as applying it on receipt.
    """

    batch_id: str
    receive_us: int
    ids: Sequence[tuple[int, str, str]]
    cells: Sequence[tuple[int, str, str, int]]
    command_ids: dict[int, Any] = field(default_factory=dict)
    commands: int = 0  # commands in the request, of every kind
    kind: str = "track"  # track | edit

    def customer_commands(self) -> int:
        return len({i for i, _, _ in self.ids})

    def encode(self) -> bytes:
        """One journal line. Raises UnicodeEncodeError for text that is not valid Unicode."""
        fields = {
            "v": 1,
            "b": self.batch_id,
            "r": self.receive_us,
            "n": self.commands,
            "s": self.kind,
            "i": self.ids,
            "c": self.cells,
            "k": [[i, cid] for i, cid in self.command_ids.items()],
        }
        try:  # 9x faster than json.dumps for a 50-command request
            body = orjson.dumps(fields)
        except orjson.JSONEncodeError:  # a command_id beyond 64 bits, text that is not Unicode
            body = _RECORD_ENCODER.encode(fields).encode("utf-8")
        return b"%08x %s\n" % (zlib.crc32(body), body)

    @classmethod
    def decode(cls, line: bytes) -> Record | None:
        """The record of one line (without its newline), or None when torn or corrupt."""
        if len(line) < 10 or line[8:9] != b" ":
            return None
        try:
            crc = int(line[:8], 16)
        except ValueError:
            return None
        body = line[9:]
        if zlib.crc32(body) != crc:
            return None
        try:
            d = jsonlimits.parse(body)
            return cls(
                batch_id=str(d["b"]),
                receive_us=int(d["r"]),
                ids=[(int(i), str(t), str(v)) for i, t, v in d["i"]],
                cells=[(int(i), str(p), str(v), int(ts)) for i, p, v, ts in d["c"]],
                command_ids={int(i): cid for i, cid in d["k"]},
                commands=int(d["n"]),
                kind=str(d.get("s", "track")),
            )
        except (ValueError, KeyError, TypeError):
            return None


def record_of(
    batch_id: str,
    receive_us: int,
    checked: Validated,
    commands: Sequence[Any],
    kind: str = "track",
) -> Record | None:
    """The journal record of a validated request; None when no ``customers`` command is valid."""
    if not checked.ids:
        return None
    valid = {i for i, _, _ in checked.ids}
    command_ids = {
        i: cmd["command_id"]
        for i, cmd in enumerate(commands, start=1)
        if i in valid and isinstance(cmd, dict) and "command_id" in cmd
    }
    return Record(
        batch_id, receive_us, checked.ids, checked.cells, command_ids, len(commands), kind
    )


def record_from_tracking(
    tb: TrackingBatch, commands: Sequence[Any], kind: str = "track"
) -> Record | None:
    """The journal record of a parsed request (``record_of`` its batch's rows)."""
    # rows() gives Python ints and strs in the frames' column order (IDS_SCHEMA, CELLS_SCHEMA).
    checked = Validated(tb.results, tb.batch.ids.rows(), tb.batch.cells.rows())
    return record_of(tb.batch.batch_id, tb.receive_us, checked, commands, kind)


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
        tmp = self.dir / f"{_TMP_PREFIX}{name}"
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


# -- reading --------------------------------------------------------------------------------------


def _writer_alive(path: Path) -> bool | None:
    """Whether a live writer holds the segment's flock; None when the file is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases our probe lock


class _SegmentReader:
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
class _Chunk:
    ranges: dict[str, tuple[int, int]]
    records: list[Record]

    def batch_id(self) -> str:
        text = json.dumps(sorted((k, s, e) for k, (s, e) in self.ranges.items()))
        return "jrn-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _take_chunk(
    readers: list[_SegmentReader], max_commands: int, *, one_kind: bool = True
) -> _Chunk | None:
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
    return _Chunk(ranges, records)


# -- applier state --------------------------------------------------------------------------------


@dataclass
class _State:
    path: Path
    cursors: dict[str, int] = field(default_factory=dict)
    pending: dict[str, Any] | None = None

    @classmethod
    def load(cls, jdir: Path) -> _State:
        path = jdir / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except ValueError as exc:
            raise PropsyncError(f"journal state {str(path)!r} is unreadable: {exc}") from None
        cursors = {str(k): int(v) for k, v in data.get("cursors", {}).items()}
        return cls(path, cursors, data.get("pending"))

    def save(self) -> None:
        tmp = self.path.with_name(f"{_TMP_PREFIX}{STATE_FILE}")
        data = json.dumps({"cursors": self.cursors, "pending": self.pending}, indent=1)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_directory(self.path.parent)


def _apply_lock(jdir: Path, timeout: float) -> contextlib.AbstractContextManager[None]:
    return exclusive_lock(
        jdir / APPLY_LOCK,
        timeout,
        lambda holder: (
            f"the journal of {str(jdir.parent)!r} is being applied by another process "
            f"(pid {holder}); gave up after {timeout:g} s"
        ),
    )


# -- applying -------------------------------------------------------------------------------------


def build_batch(
    batch_id: str, records: Sequence[Record], source: str
) -> tuple[UpdateBatch, list[tuple[str, int, Any]]]:
    """One UpdateBatch of ``records`` (rows numbered in order) and, per row, where it came from:
    ``(request batch id, command index, command_id)``."""
    row_nr: list[int] = []
    id_types: list[str] = []
    id_values: list[str] = []
    c_row: list[int] = []
    c_prop: list[str] = []
    c_value: list[str] = []
    c_ts: list[int] = []
    origin: list[tuple[str, int, Any]] = []
    row = 0
    for rec in records:
        local: dict[int, int] = {}
        for idx, id_type, id_value in rec.ids:
            r = local.get(idx)
            if r is None:
                row += 1
                r = local[idx] = row
                origin.append((rec.batch_id, idx, rec.command_ids.get(idx)))
            row_nr.append(r)
            id_types.append(id_type)
            id_values.append(id_value)
        for idx, prop, value, ts in rec.cells:
            c_row.append(local[idx])
            c_prop.append(prop)
            c_value.append(value)
            c_ts.append(ts)
    ids = pl.DataFrame(
        {"row_nr": row_nr, "id_type": id_types, "id_value": id_values}, schema=IDS_SCHEMA
    )
    cells = pl.DataFrame(
        {"row_nr": c_row, "property": c_prop, "value": c_value, "update_ts": c_ts},
        schema=CELLS_SCHEMA,
    )
    kinds = {rec.kind for rec in records}
    batch = UpdateBatch(
        batch_id=batch_id,
        kind=kinds.pop() if len(kinds) == 1 else "track",
        source=source,
        ids=ids,
        cells=cells,
        rows_read=row,
        cells_incoming=cells.height,
        started_at_us=min((r.receive_us for r in records), default=None),
    )
    return batch, origin


def _apply_chunk(
    warehouse: Warehouse,
    settings: Settings,
    state: _State,
    chunk: _Chunk,
    batch_id: str,
    *,
    publish: bool,
) -> int:
    applied = 0
    if chunk.records:
        source = "journal " + " ".join(f"{k}@{s}-{e}" for k, (s, e) in sorted(chunk.ranges.items()))
        batch, origin = build_batch(batch_id, chunk.records, source)
        result = apply_commands(warehouse, batch, settings, publish=publish)
        if result.status == "applied":
            applied = batch.rows_read
            for rej in result.rejections.filter(pl.col("scope") == "row").iter_rows(named=True):
                request, index, command_id = origin[rej["row_nr"] - 1]
                log.warning(
                    "rejected at apply time: request %s command %d (command_id %r): %s "
                    "(warehouse table rejections, batch_id %r, row_nr %d)",
                    request,
                    index,
                    command_id,
                    rej["reason"],
                    batch_id,
                    rej["row_nr"],
                )
        log.info(
            "journal batch %s: %s, %d commands, %d properties applied, %d stale, %d rejected",
            batch_id,
            result.status,
            batch.rows_read,
            result.properties_applied,
            result.properties_stale,
            result.rows_rejected,
        )
    for name, (_, end) in chunk.ranges.items():
        state.cursors[name] = end
    state.pending = None
    state.save()
    return applied


def _readers(
    jdir: Path, ranges: dict[str, tuple[int, int]] | None, state: _State
) -> list[_SegmentReader]:
    readers: list[_SegmentReader] = []
    if ranges is not None:  # redo of a recorded intent: exactly these bytes
        for i, (name, (start, end)) in enumerate(sorted(ranges.items())):
            readers.append(_SegmentReader(i, jdir / name, start, end, complete=True))
        return readers
    for name in sorted(os.listdir(jdir)):
        if not _SEGMENT_RE.match(name):
            continue
        path = jdir / name
        alive = _writer_alive(path)  # first: a dead writer's file is final before we size it
        if alive is None:
            continue
        size = path.stat().st_size
        start = state.cursors.get(name, 0)
        if start > size:
            raise PropsyncError(f"journal cursor of {name} ({start}) is beyond its size ({size})")
        readers.append(_SegmentReader(len(readers), path, start, size, complete=not alive))
    return readers


def _cleanup(jdir: Path, state: _State, readers: list[_SegmentReader]) -> None:
    changed = False
    for r in readers:
        fully = r.head is None and state.cursors.get(r.name, 0) == r.exhausted_at
        if r.complete and fully and r.exhausted_at == r.limit:
            with contextlib.suppress(FileNotFoundError):
                (jdir / r.name).unlink()
            log.debug("removed applied journal segment %s", r.name)
    present = set(os.listdir(jdir))
    for name in list(state.cursors):
        if name not in present:
            del state.cursors[name]
            changed = True
    for name in present:
        if name.startswith(_TMP_PREFIX) and name.endswith(".jsonl"):
            path = jdir / name
            # A writer killed between creating and naming its segment; it holds no records. (A
            # live writer locks it right after creating it: leave young ones alone.)
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > 60 and _writer_alive(path) is False:
                    path.unlink()
    if changed:
        state.save()


def apply_journal(
    warehouse: Warehouse,
    settings: Settings,
    *,
    publish: bool = True,
    max_batch_commands: int = DEFAULT_MAX_BATCH_COMMANDS,
    lock_timeout: float | None = None,
    held: bool = False,
) -> int:
    """Apply everything journaled so far through ``apply_batch``; return the commands applied.

    Safe to call concurrently from several processes (they take turns on ``journal/apply.lock``)
    and after any crash (an interrupted batch is redone under its batch id). With ``publish`` the
    result is published once at the end; without, a later ``publish_pending`` makes it visible.
    Commands rejected at apply time (hard-id conflicts) count as applied: they are recorded in the
    warehouse's ``rejections`` table. ``held``: the caller holds ``journal/apply.lock``
    (``ApplierHold``).
    """
    jdir = journal_dir(warehouse.root)
    if not jdir.is_dir():
        return 0
    timeout = settings.lock_timeout_seconds if lock_timeout is None else lock_timeout
    applied = 0
    unpublished = False
    with contextlib.nullcontext() if held else _apply_lock(jdir, timeout):
        state = _State.load(jdir)
        if state.pending is not None:
            pending = state.pending
            ranges = {str(k): (int(v[0]), int(v[1])) for k, v in pending["ranges"].items()}
            readers = _readers(jdir, ranges, state)
            try:
                chunk = _take_chunk(readers, max_commands=2**62, one_kind=False)
            finally:
                for r in readers:
                    r.close()
            if chunk is not None:
                log.info("redoing interrupted journal batch %s", pending["batch_id"])
                applied += _apply_chunk(
                    warehouse,
                    settings,
                    state,
                    _Chunk(ranges, chunk.records),
                    str(pending["batch_id"]),
                    publish=False,
                )
                unpublished = True
            else:
                state.pending = None
                state.save()
        readers = _readers(jdir, None, state)
        try:
            while True:
                chunk = _take_chunk(readers, max_batch_commands)
                if chunk is None:
                    break
                for r in readers:
                    if r.name in chunk.ranges:
                        r.cursor = chunk.ranges[r.name][1]
                batch_id = chunk.batch_id()
                last = all(r.head is None for r in readers)
                state.pending = {
                    "batch_id": batch_id,
                    "ranges": {k: list(v) for k, v in chunk.ranges.items()},
                }
                state.save()
                applied += _apply_chunk(
                    warehouse, settings, state, chunk, batch_id, publish=publish and last
                )
                if chunk.records:
                    # Publishing a version publishes every batch committed before it, too.
                    unpublished = not (publish and last)
        finally:
            for r in readers:
                r.close()
        _cleanup(jdir, state, readers)
        if publish and unpublished:
            publish_pending(warehouse, settings)
    return applied


@dataclass(frozen=True)
class JournalStatus:
    segments: int
    live_segments: int
    unapplied_bytes: int
    pending_intent: bool


def journal_status(root: str | os.PathLike[str]) -> JournalStatus:
    """A cheap look at the journal: segments and bytes not applied yet (approximate while live)."""
    jdir = journal_dir(root)
    if not jdir.is_dir():
        return JournalStatus(0, 0, 0, False)
    try:
        state = _State.load(jdir)
    except PropsyncError:
        state = _State(jdir / STATE_FILE)
    segments = live = unapplied = 0
    for name in os.listdir(jdir):
        if not _SEGMENT_RE.match(name):
            continue
        path = jdir / name
        alive = _writer_alive(path)
        if alive is None:
            continue
        segments += 1
        live += bool(alive)
        with contextlib.suppress(FileNotFoundError):
            unapplied += max(0, path.stat().st_size - state.cursors.get(name, 0))
    return JournalStatus(segments, live, unapplied, state.pending is not None)


# Without a configured publish interval the background applier waits this many times as long as
# its previous publish took before it publishes again, so publishing takes at most half of its
# time (and of the write lock). A publish is a plain copy of work.duckdb (about 0.3 s on 1M
# customers x 10 properties, docs/benchmarks.md; milliseconds on a small warehouse), so in
# practice every apply is published. The HTTP service's reads are not the writer's cost: its
# read model follows each published version's run file in the background
# (propsync.store.read_model), at the cost of the batch. (When publishes still built the read
# indexes, 3x showed lags of 45-100 s on 1M x 10 on a busy host.)
AUTO_PUBLISH_INTERVAL_FACTOR = 1.0
# How often an idle applier (nothing applied, nothing left to publish) looks whether the published
# files need a fold that waits while it is busy (a new base, compaction.BASE_RATIO).
IDLE_COMPACTION_CHECK_SECONDS = 5.0


def publish_interval_for(warehouse: Warehouse, publish_interval: float | None) -> float:
    """The minimum seconds between two background publishes (``None``: automatic, see above)."""
    if publish_interval is not None:
        return publish_interval
    return AUTO_PUBLISH_INTERVAL_FACTOR * (warehouse.last_publish_seconds or 0.0)


def publish_due(
    warehouse: Warehouse, publish_interval: float | None, now: float | None = None
) -> bool:
    """Whether the minimum interval since the current version was published (by anyone) passed."""
    published_at = warehouse.published_at()
    if published_at is None:
        return True
    now = time.time() if now is None else now
    return now - published_at >= publish_interval_for(warehouse, publish_interval)


class ApplierHold:
    """The background applier's hold on ``journal/apply.lock`` and the warehouse write lock from one
    apply to the next, while each starts as soon as the previous one ends (the applier is behind):
    ``work.duckdb`` stays attached, so it is not checkpointed and attached again per apply
    (``Warehouse.hold_write_lock``). Taken only when both locks are free (journal lock first, as
    ``apply_journal`` takes them), never waited for; let go as soon as anybody waits for either
    (an edit, an import, a compaction's commit), so they wait at most for the apply under way.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.jdir = journal_dir(warehouse.root)
        self._journal: contextlib.ExitStack | None = None

    @property
    def held(self) -> bool:
        return self._journal is not None

    def take(self) -> bool:
        """Hold both locks if they are free; whether they are held."""
        if self._journal is not None:
            return True
        if not self.jdir.is_dir():
            return False
        journal = contextlib.ExitStack()
        try:
            journal.enter_context(_apply_lock(self.jdir, 0.0))
            self.warehouse.hold_write_lock(0.0)
        except WarehouseLocked:
            journal.close()
            return False
        self._journal = journal
        return True

    def wanted(self) -> bool:
        """Whether another process or thread waits for either lock."""
        return others_waiting(self.jdir / APPLY_LOCK) or self.warehouse.write_lock_wanted()

    def release(self) -> None:
        journal, self._journal = self._journal, None
        if journal is None:
            return
        try:
            self.warehouse.release_write_lock()
        finally:
            journal.close()


def apply_forever(
    warehouse: Warehouse,
    settings: Settings,
    interval: float,
    stop: threading.Event,
    *,
    on_error: Callable[[BaseException], None] | None = None,
    publish_interval: float | None = None,
    after_publish: Callable[[], None] | None = None,
) -> None:
    """Apply the journal until ``stop`` is set (the server's applier): an apply starts every
    ``interval`` seconds, or at once when the previous one took longer (it then takes what came
    meanwhile); a look at an idle journal costs well under a millisecond.

    Every apply commits to the working database. It is published at most once per
    ``publish_interval`` seconds after the previous publish (``None``: as long as this applier's
    previous publish took; ``0``: after every apply), and the published files are compacted in a
    thread of their own when due (``store/compaction.py``; a new base only at its busy ratio
    after a publish, at its own once the applier finds nothing to apply). Commands applied
    meanwhile are published as soon as the interval has passed, even if nothing new arrives, and
    when the applier stops; a publish that fails is retried at the next interval.
    ``after_publish`` runs after each publish (the server's applier brings the read model to the
    new version there, so the HTTP process need not). Between applies that follow each other
    at once it keeps the locks and work.duckdb attached (``ApplierHold``).
    """
    # A previous applier (or a crash between commit and publish) may have left the working
    # database ahead of the published version: publish_pending finds out and publishes it.
    unpublished = warehouse.work_path.exists()
    idle_compaction_checked = time.monotonic()  # the first look comes after one period
    hold = ApplierHold(warehouse)
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                # A publish that is due goes with the apply, in the same hold of the write lock: one
                # attach and checkpoint of work.duckdb per cycle instead of two.
                due = publish_due(warehouse, publish_interval)
                n = apply_journal(warehouse, settings, publish=due, held=hold.held)
                published = (
                    bool(n) and due
                )  # publishing a version publishes all committed before it
                if n:
                    unpublished = not due
                    log.info(
                        "applied %d journaled commands in %.2f s%s",
                        n,
                        time.monotonic() - started,
                        " (published)" if due else "",
                    )
                elif unpublished and due:
                    publish_pending(warehouse, settings)
                    unpublished, published = False, True
                if published:
                    if after_publish is not None:
                        after_publish()
                    if settings.auto_compact:  # more is coming: a new base waits (compaction.plan)
                        compaction.start_thread(warehouse, settings, busy=True)
                elif (
                    not n
                    and not unpublished
                    and settings.auto_compact
                    and started - idle_compaction_checked >= IDLE_COMPACTION_CHECK_SECONDS
                ):
                    idle_compaction_checked = started
                    compaction.start_thread(warehouse, settings)
            except WarehouseLocked as exc:
                log.info("journal apply postponed: %s", exc.message)
            except Exception as exc:
                log.exception("journal apply failed; retrying in %g s", interval)
                if on_error is not None:
                    on_error(exc)
            else:
                # One apply per interval at most, counted from the start of this one: an apply that
                # took longer is followed at once by the next, which takes what came meanwhile, in
                # the same hold of the locks unless somebody waits for them.
                took = time.monotonic() - started
                if n and took >= interval and not stop.is_set() and not hold.wanted():
                    hold.take()
                else:
                    hold.release()
                stop.wait(max(0.0, interval - took))
                continue
            hold.release()
            stop.wait(interval)
    finally:
        hold.release()  # before stopping compaction threads: they may wait for the write lock
    compaction.stop_threads()
    if unpublished:  # nothing applied stays unpublished when the applier stops
        try:
            publish_pending(warehouse, settings)
        except Exception as exc:
            log.exception(
                "publishing on stop failed: the next apply, edit or `propsync publish` publishes"
            )
            if on_error is not None:
                on_error(exc)
