"""The background applier: applies as the journal fills, publishes at a pace, keeps the write lock
while it is behind."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from propsync.config import Settings
from propsync.errors import WarehouseLocked
from propsync.journal.apply import DEFAULT_MAX_BATCH_COMMANDS, apply_journal
from propsync.journal.layout import APPLY_LOCK, journal_dir
from propsync.journal.state import apply_lock
from propsync.locks import others_waiting
from propsync.store import compaction
from propsync.store.apply import publish_pending
from propsync.store.warehouse import Warehouse

log = logging.getLogger("propsync.journal")


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
            journal.enter_context(apply_lock(self.jdir, 0.0))
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


# How long an applier that lets go of the locks for a waiting writer waits for it to take them.
LET_IN_SECONDS = 2.0


def let_waiters_in(
    hold: ApplierHold, stop: threading.Event, timeout: float = LET_IN_SECONDS
) -> None:
    """Wait until the writers that wait for the locks (an edit, ``propsync apply``, a compaction's
    commit) have taken them, for at most ``timeout`` seconds. flock(2) is not fair and a waiter
    polls (``locks.exclusive_lock``): an applier that took the locks again at once kept a waiting
    edit out for tens of seconds under sustained tracking."""
    deadline = time.monotonic() + timeout
    while hold.wanted() and not stop.is_set() and time.monotonic() < deadline:
        stop.wait(0.002)


def apply_forever(
    warehouse: Warehouse,
    settings: Settings,
    interval: float,
    stop: threading.Event,
    *,
    on_error: Callable[[BaseException], None] | None = None,
    publish_interval: float | None = None,
    after_publish: Callable[[], None] | None = None,
    max_batch_commands: int = DEFAULT_MAX_BATCH_COMMANDS,
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

    An apply takes about ``max_batch_commands`` commands at most: behind a backlog (a burst, a
    restart on a full journal) each such apply is published in turn (when due) and followed at
    once by the next, instead of one publish at the end of the backlog, so the first commands are
    visible after one batch and the read model follows one batch while the next is applied.
    """
    applier = _Applier(warehouse, settings, publish_interval, after_publish, max_batch_commands)
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                n = applier.cycle(started)
            except WarehouseLocked as exc:
                log.info("journal apply postponed: %s", exc.message)
            except Exception as exc:
                log.exception("journal apply failed; retrying in %g s", interval)
                if on_error is not None:
                    on_error(exc)
            else:
                took = time.monotonic() - started
                stop.wait(applier.pace(n, took, interval, stop))
                continue
            applier.hold.release()
            stop.wait(interval)
    finally:
        applier.hold.release()  # before stopping compaction threads: they may wait for the lock
    compaction.stop_threads()
    applier.publish_on_stop(on_error)


class _Applier:
    """The state ``apply_forever`` keeps between its cycles."""

    def __init__(
        self,
        warehouse: Warehouse,
        settings: Settings,
        publish_interval: float | None,
        after_publish: Callable[[], None] | None,
        max_batch_commands: int = DEFAULT_MAX_BATCH_COMMANDS,
    ) -> None:
        self.warehouse, self.settings = warehouse, settings
        self.max_batch_commands = max_batch_commands
        self.publish_interval, self.after_publish = publish_interval, after_publish
        # A previous applier (or a crash between commit and publish) may have left the working
        # database ahead of the published version: publish_pending finds out and publishes it.
        self.unpublished = warehouse.work_path.exists()
        self.idle_compaction_checked = time.monotonic()  # the first look comes after one period
        self.hold = ApplierHold(warehouse)

    def cycle(self, started: float) -> int:
        """One apply of what the journal holds, published with it when a publish is due (one
        attach and checkpoint of work.duckdb per cycle instead of two); how many commands."""
        due = publish_due(self.warehouse, self.publish_interval)
        n = apply_journal(
            self.warehouse,
            self.settings,
            publish=due,
            max_batch_commands=self.max_batch_commands,
            max_commands=self.max_batch_commands,
            held=self.hold.held,
        )
        published = bool(n) and due  # publishing a version publishes all committed before it
        if n:
            self.unpublished = not due
            took = time.monotonic() - started
            log.info(
                "applied %d journaled commands in %.2f s%s", n, took, " (published)" if due else ""
            )
        elif self.unpublished and due:
            publish_pending(self.warehouse, self.settings)
            self.unpublished, published = False, True
        if published:
            if self.after_publish is not None:
                self.after_publish()
            if self.settings.auto_compact:  # more is coming: a new base waits (compaction.plan)
                compaction.start_thread(self.warehouse, self.settings, busy=True)
        elif not n and not self.unpublished:
            self._compact_when_idle(started)
        return n

    def _compact_when_idle(self, now: float) -> None:
        if not self.settings.auto_compact:
            return
        if now - self.idle_compaction_checked >= IDLE_COMPACTION_CHECK_SECONDS:
            self.idle_compaction_checked = now
            compaction.start_thread(self.warehouse, self.settings)

    def pace(self, n: int, took: float, interval: float, stop: threading.Event) -> float:
        """The seconds until the next apply. One apply per interval at most, counted from the
        start of the last: an apply that took longer, or that stopped at ``max_batch_commands``
        with more to come, is followed at once by the next, which takes what came meanwhile, in
        the same hold of the locks unless somebody waits for them."""
        waiting = self.hold.wanted()
        behind = took >= interval or n >= self.max_batch_commands
        if n and behind and not stop.is_set() and not waiting:
            self.hold.take()
            return 0.0
        self.hold.release()
        if waiting:
            let_waiters_in(self.hold, stop)
        return max(0.0, interval - took)

    def publish_on_stop(self, on_error: Callable[[BaseException], None] | None) -> None:
        """Nothing applied stays unpublished when the applier stops."""
        if not self.unpublished:
            return
        try:
            publish_pending(self.warehouse, self.settings)
        except Exception as exc:
            log.exception(
                "publishing on stop failed: the next apply, edit or `propsync publish` publishes"
            )
            if on_error is not None:
                on_error(exc)
