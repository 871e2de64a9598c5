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

Modules: ``layout`` (paths, names, writer liveness), ``records`` (the line format), ``writer``
(group commit), ``reader`` (segments to chunks), ``state`` (cursors, intent, the apply lock),
``apply`` (``apply_journal``), ``status`` (``journal_status``), ``applier`` (``apply_forever``).
"""

from propsync.journal.applier import (
    AUTO_PUBLISH_INTERVAL_FACTOR,
    IDLE_COMPACTION_CHECK_SECONDS,
    ApplierHold,
    apply_forever,
    publish_due,
    publish_interval_for,
)
from propsync.journal.apply import DEFAULT_MAX_BATCH_COMMANDS, apply_journal, build_batch
from propsync.journal.layout import (
    APPLY_LOCK,
    JOURNAL_DIR,
    STATE_FILE,
    JournalUnavailable,
    journal_dir,
)
from propsync.journal.records import Record, record_from_tracking, record_of
from propsync.journal.status import JournalStatus, journal_status
from propsync.journal.writer import JournalWriter, WriterStats

__all__ = [
    "APPLY_LOCK",
    "AUTO_PUBLISH_INTERVAL_FACTOR",
    "DEFAULT_MAX_BATCH_COMMANDS",
    "IDLE_COMPACTION_CHECK_SECONDS",
    "JOURNAL_DIR",
    "STATE_FILE",
    "ApplierHold",
    "JournalStatus",
    "JournalUnavailable",
    "JournalWriter",
    "Record",
    "WriterStats",
    "apply_forever",
    "apply_journal",
    "build_batch",
    "journal_dir",
    "journal_status",
    "publish_due",
    "publish_interval_for",
    "record_from_tracking",
    "record_of",
]
