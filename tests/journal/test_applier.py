"""The applier keeps the write lock (and ``work.duckdb`` attached) between applies that follow
each other at once, and lets go as soon as another writer waits (``journal.ApplierHold``,
``Warehouse.hold_write_lock``, ``locks.others_waiting``). Real locks, real DuckDB files, the
applier in a thread as in the server's applier process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from propsync import sql
from propsync.config import Settings
from propsync.errors import WarehouseLocked
from propsync.journal import JournalWriter, Record, apply_forever, apply_journal
from propsync.journal.applier import ApplierHold, let_waiters_in
from propsync.locks import exclusive_lock, others_waiting
from propsync.store import apply as apply_module
from propsync.store.warehouse import Warehouse, WriterInstance
from tests.helpers import apply

TS = 1_600_000_000_000_000


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def busy(holder: str) -> str:
    return f"held by {holder}"


def test_others_waiting_sees_a_waiter_until_it_has_the_lock_or_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    assert not others_waiting(path)  # no wait file yet
    got: list[str] = []

    def wait(timeout: float) -> None:
        try:
            with exclusive_lock(path, timeout, busy):
                got.append("lock")
        except WarehouseLocked:
            got.append("gave up")

    with exclusive_lock(path, 1, busy):
        assert not others_waiting(path)
        quick = threading.Thread(target=wait, args=(0.3,))
        quick.start()
        wait_for(lambda: others_waiting(path))
        quick.join(10)
        assert got == ["gave up"] and not others_waiting(path)
        patient = threading.Thread(target=wait, args=(30,))
        patient.start()
        wait_for(lambda: others_waiting(path))
        assert got == ["gave up"]
    patient.join(10)
    assert got == ["gave up", "lock"] and not others_waiting(path)


def test_a_held_write_lock_keeps_work_attached_until_released(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    warehouse, settings = Warehouse(root), Settings(warehouse=root, lock_timeout_seconds=30)
    writer = warehouse.keep_writer_instance()
    apply(warehouse, settings, "b0", [({"registered": "a"}, "p", 0, 1_600_000_000)])
    assert writer.attaches == 1 and writer.attached is None
    warehouse.hold_write_lock(5)
    for i in range(1, 4):
        apply(warehouse, settings, f"b{i}", [({"registered": "a"}, "p", i, 1_600_000_000 + i)])
    assert writer.attaches == 2 and writer.attached == warehouse.work_path

    # Another writer (here a thread with its own Warehouse, as an edit in the HTTP process) waits
    # for the lock, and says so; the holder lets it in by releasing.
    other = Warehouse(root)
    done: list[str] = []
    thread = threading.Thread(
        target=lambda: done.append(
            apply(other, settings, "edit", [({"registered": "b"}, "p", 9, 1_600_000_009)]).status
        )
    )
    thread.start()
    wait_for(warehouse.write_lock_wanted)
    assert not done
    warehouse.release_write_lock()
    thread.join(30)
    assert done == ["applied"] and writer.attached is None and not warehouse.holds_write_lock
    con = duckdb.connect(str(warehouse.current_path), read_only=True)
    try:
        values = con.execute(
            "SELECT i.id_value, p.value FROM customer_ids i JOIN properties p USING (customer_id)"
        ).fetchall()
    finally:
        con.close()
    assert sorted(values) == [("a", "3"), ("b", "9")]


def record(n: int, user: str) -> bytes:
    return Record(
        batch_id=f"r{n}",
        receive_us=TS + n,
        ids=[(1, "registered", user)],
        cells=[(1, "n", json.dumps(n), TS + n)],
        command_ids={},
        commands=1,
    ).encode()


def test_the_applier_holds_the_locks_while_behind_and_lets_an_edit_and_an_apply_in(
    tmp_path: Path,
) -> None:
    root = tmp_path / "wh"
    warehouse = Warehouse(root)
    settings = Settings(warehouse=root, lock_timeout_seconds=60)
    apply(warehouse, settings, "seed", [({"registered": "edited"}, "n", -1, 1_500_000_000)])
    writer = warehouse.keep_writer_instance()
    stop, errors = threading.Event(), list[BaseException]()
    # Interval 0: each apply is followed at once by the next, the case the hold is for.
    applier = threading.Thread(
        target=apply_forever,
        args=(warehouse, settings, 0.0, stop),
        kwargs={"on_error": errors.append, "publish_interval": 0.0},
    )
    journal = JournalWriter(root).start()
    sent = 0
    feeding = threading.Event()

    def feed() -> None:
        nonlocal sent
        while not feeding.is_set():
            journal.append_sync(record(sent, f"u{sent % 50}"))
            sent += 1

    feeder = threading.Thread(target=feed)
    feeder.start()
    applier.start()
    try:
        wait_for(lambda: warehouse.holds_write_lock)
        held_attaches = writer.attaches
        # An edit from elsewhere gets in while commands keep coming.
        started = time.monotonic()
        edit = apply(
            Warehouse(root), settings, "edit", [({"registered": "edited"}, "n", 7, 1_700_000_000)]
        )
        assert edit.status == "applied"
        waited = time.monotonic() - started
        wait_for(lambda: warehouse.holds_write_lock)  # and the applier holds them again
        # So does `propsync apply` (another process's apply_journal), which waits for the
        # journal's apply lock first.
        started = time.monotonic()
        other_applied = apply_journal(Warehouse(root), settings)
        waited = max(waited, time.monotonic() - started)
        assert other_applied >= 0
        wait_for(lambda: warehouse.holds_write_lock)
    finally:
        feeding.set()
        feeder.join(10)
        time.sleep(0.2)
        stop.set()
        applier.join(60)
        journal.close()
    assert not applier.is_alive() and not errors, errors
    assert not warehouse.holds_write_lock and writer.attached is None
    # Each waiter gets in after the apply under way (0.5-0.7 s here); an applier that took the
    # locks again at once kept them out 1-48 s (let_waiters_in).
    assert waited < 5, waited
    # The applies that followed each other kept work.duckdb attached: fewer attaches than versions.
    versions = warehouse.published_version()
    assert versions is not None
    assert held_attaches < versions and writer.attaches < versions
    con = duckdb.connect(str(warehouse.current_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT i.id_value, p.value FROM customer_ids i JOIN properties p USING (customer_id)"
        ).fetchall()
        applied = con.execute(
            "SELECT count(*) FROM batches WHERE status = 'applied' AND batch_id LIKE 'jrn-%'"
        ).fetchall()[0][0]
    finally:
        con.close()
    values = dict(rows)
    assert values["edited"] == "7"
    # Every command applied once: each user's newest value is the last one sent to it.
    for u in range(50):
        last = max((n for n in range(sent) if n % 50 == u), default=None)
        if last is not None:
            assert values[f"u{u}"] == str(last)
    assert applied >= 2


def test_deletes_in_place_are_checkpointed_past_a_quarter_of_the_memory_limit(
    tmp_path: Path,
) -> None:
    # 2,048 vectors of 2,048 rows (32 MiB of delete info if every one is pinned). Under 64 MiB
    # that fits in a small batch's three quarters: no checkpoint for pins, however many deletes.
    # Under 16 MiB it does not, and a quarter is 4 MiB: 256 vectors of 16 KiB.
    for limit, checkpoint_after in (("64MiB", None), ("16MiB", 257)):
        writer = WriterInstance(tmp_path / "tmp", limit)
        path = tmp_path / f"work-{limit}.duckdb"
        con = writer.connect(path, limit)
        con.execute(sql.load("schema/07_property_values"))
        con.execute(
            "INSERT INTO property_values SELECT i, 1, '1', 1, 'b' FROM range(2048 * 2048) t(i)"
        )
        wal = Path(f"{path}.wal")
        assert wal.exists() and wal.stat().st_size > 0
        apply_module._checkpoint_pins(con, writer, 200)
        apply_module._checkpoint_pins(con, writer, 56)
        assert writer.rows_deleted_in_place == 256
        assert wal.exists() and wal.stat().st_size > 0  # not checkpointed yet
        apply_module._checkpoint_pins(con, writer, 1 if checkpoint_after else 100_000)
        if checkpoint_after:
            assert writer.rows_deleted_in_place == 0
            assert not wal.exists() or wal.stat().st_size == 0
        else:
            assert writer.rows_deleted_in_place == 100_256
            assert wal.exists() and wal.stat().st_size > 0
        con.close()
        writer.detach()
        writer.close()


@pytest.mark.parametrize("held", [False, True])
def test_a_held_writer_counts_the_rows_its_batches_deleted_in_place(
    tmp_path: Path, held: bool
) -> None:
    root = tmp_path / "wh"
    warehouse, settings = Warehouse(root), Settings(warehouse=root)
    writer = warehouse.keep_writer_instance()
    apply(warehouse, settings, "b0", [({"registered": f"u{i}"}, "p", 0, 1.0) for i in range(5)])
    if held:
        warehouse.hold_write_lock(5)
    apply(warehouse, settings, "b1", [({"registered": f"u{i}"}, "p", 1, 2.0) for i in range(3)])
    result = apply(warehouse, settings, "b2", [({"registered": "u0"}, "p", 2, 3.0)])
    assert result.rows_deleted_in_place == 1
    # Held, the attachment lives on and so do the pins of both batches; released, detached.
    assert writer.rows_deleted_in_place == (4 if held else 0)
    warehouse.release_write_lock()
    assert writer.attached is None


def test_an_applier_that_lets_go_waits_until_the_waiting_writer_has_the_lock(
    tmp_path: Path,
) -> None:
    root = tmp_path / "wh"
    warehouse = Warehouse(root)
    settings = Settings(warehouse=root, lock_timeout_seconds=5)
    apply(warehouse, settings, "seed", [({"registered": "a"}, "n", 1, 1_500_000_000)])
    (root / "journal").mkdir(exist_ok=True)
    hold = ApplierHold(warehouse)
    assert hold.take()
    got, done = threading.Event(), threading.Event()

    def edit() -> None:
        with Warehouse(root).write_lock(5):
            got.set()
            done.wait(5)

    editor = threading.Thread(target=edit)
    editor.start()
    try:
        wait_for(hold.wanted)
        hold.release()
        started = time.monotonic()
        let_waiters_in(hold, threading.Event(), timeout=10)
        # It returns once the waiter holds the lock (no longer waiting), not at its timeout.
        assert not hold.wanted()
        assert time.monotonic() - started < 5
        assert got.wait(1)
        assert not hold.take()  # the edit holds the write lock now
    finally:
        done.set()
        editor.join(10)
    assert hold.take()
    hold.release()
