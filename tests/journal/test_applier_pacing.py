"""The background applier's publish pacing (``apply_forever(..., publish_interval=...)``).

The applier commits every apply but publishes at most once per interval; whatever it committed is
published once the interval has passed (also with no new commands) and when it stops. A publish is
a plain copy (no read indexes); the HTTP service's read model follows frequent publishes by
applying their runs, several at once when it falls behind, never by rebuilding. Real journal, real
DuckDB warehouse, the applier in a thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from propsync.api.config import load_config
from propsync.api.reader import PublishedReader
from propsync.config import Settings
from propsync.journal import (
    AUTO_PUBLISH_INTERVAL_FACTOR,
    JournalWriter,
    Record,
    apply_forever,
    apply_journal,
    journal_status,
    publish_due,
    publish_interval_for,
)
from propsync.locks import exclusive_lock
from propsync.store.apply import publish_pending
from propsync.store.read_model import ReadModel
from propsync.store.warehouse import Warehouse

TS = 1_600_000_000_000_000


def rec(batch: str, user: str, value: str, receive: int = TS) -> bytes:
    return Record(
        batch_id=batch,
        receive_us=receive,
        ids=[(1, "registered", user)],
        cells=[(1, "p", json.dumps(value), receive)],
        command_ids={},
        commands=1,
    ).encode()


def published(warehouse: Warehouse) -> dict[str, str]:
    if not warehouse.current_path.exists():
        return {}
    with warehouse.connect_published() as con:
        rows = con.execute(
            "SELECT i.id_value, p.value FROM customer_ids i JOIN properties p USING (customer_id)"
        ).fetchall()
    return {str(k): json.loads(v) for k, v in rows}


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def writer(warehouse: Warehouse) -> Iterator[JournalWriter]:
    w = JournalWriter(warehouse.root).start()
    yield w
    w.close()


class Applier:
    """``apply_forever`` in a thread, as the server's applier process runs it."""

    def __init__(
        self, warehouse: Warehouse, settings: Settings, publish_interval: float | None
    ) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(
            target=apply_forever,
            args=(warehouse, settings, 0.02, self.stop),
            kwargs={"on_error": self.errors.append, "publish_interval": publish_interval},
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        assert not self.errors, self.errors


def applied(warehouse: Warehouse) -> bool:
    status = journal_status(warehouse.root)
    return status.unapplied_bytes == 0 and not status.pending_intent


def test_applies_at_once_but_publishes_only_after_the_interval_or_on_stop(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    writer.append_sync(rec("t1", "ann", "one"))
    assert apply_journal(warehouse, settings) == 1  # version 1 published the usual way
    assert published(warehouse) == {"ann": "one"}
    applier = Applier(warehouse, settings, publish_interval=3600)
    try:
        writer.append_sync(rec("t2", "bob", "two", TS + 1))
        wait_for(lambda: applied(warehouse))
        time.sleep(0.3)  # several more rounds of the applier: still nothing published
        assert warehouse.published_version() == 1
        assert published(warehouse) == {"ann": "one"}
    finally:
        applier.close()
    # Stopping publishes what was committed: nothing applied stays unpublished.
    assert warehouse.published_version() == 2
    assert published(warehouse) == {"ann": "one", "bob": "two"}


def test_committed_work_is_published_when_the_interval_has_passed_without_new_commands(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    writer.append_sync(rec("t1", "ann", "one"))
    assert apply_journal(warehouse, settings) == 1
    first = warehouse.published_at()
    assert first is not None
    interval = 4.0  # long enough for the three applies below on a busy machine
    applier = Applier(warehouse, settings, publish_interval=interval)
    try:
        # Three commands in a row within the interval: applied at once, published together.
        for i, user in enumerate(["bob", "cid", "dan"]):
            writer.append_sync(rec(f"t{i + 2}", user, user, TS + i + 1))
            wait_for(lambda: applied(warehouse))
        wait_for(lambda: warehouse.published_version() > 1)
        second = warehouse.published_at()
        assert second is not None and second - first >= interval
        assert published(warehouse) == {"ann": "one", "bob": "bob", "cid": "cid", "dan": "dan"}
        # One publish for the three applies (versions count committed batches): 2 and 3 never were.
        assert warehouse.published_version() == 4
        assert sorted(p.name for p in warehouse.published_dir.glob("*.duckdb")) == [
            "v000001.duckdb",
            "v000004.duckdb",
        ]
    finally:
        applier.close()


def test_interval_zero_publishes_after_every_apply(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    applier = Applier(warehouse, settings, publish_interval=0)
    try:
        for i, user in enumerate(["ann", "bob"]):
            writer.append_sync(rec(f"t{i}", user, user, TS + i))
            wait_for(lambda u=user: u in published(warehouse))  # type: ignore[misc]
    finally:
        applier.close()
    assert warehouse.published_version() == 2


def test_publishes_carry_no_indexes_and_the_read_model_follows_their_runs(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    writer.append_sync(rec("t0", "ann", "zero"))
    assert apply_journal(warehouse, settings) == 1
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    model = ReadModel(warehouse)
    applier = Applier(warehouse, settings, publish_interval=0)
    try:
        assert reader.wait_for(1, 30, indexed=True)
        # Another process holds the read model's lock while the applier publishes five times.
        with exclusive_lock(model.lock_path, 5, lambda holder: f"held by {holder}"):
            for i in range(5):
                writer.append_sync(rec(f"t{i + 1}", "ann", f"v{i + 1}", TS + i + 1))
                wait_for(lambda i=i: published(warehouse) == {"ann": f"v{i + 1}"})  # type: ignore[misc]
            assert reader.version == 1  # still serving what it had
        newest = warehouse.published_version()
        assert newest == 6
        assert reader.wait_for(newest, 30, indexed=True)
        # One build, at the start; the five versions followed by their runs, at once.
        assert reader.builds == 1 and reader.runs_applied == 5
        for version in warehouse.published_dir.glob("*.duckdb"):
            with duckdb.connect(str(version), read_only=True) as con:
                assert con.execute("SELECT count(*) FROM duckdb_indexes()").fetchall() == [(0,)]
    finally:
        applier.close()
        reader.close()


def test_work_left_unpublished_by_an_earlier_applier_is_published_at_start(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    writer.append_sync(rec("t1", "ann", "one"))
    assert apply_journal(warehouse, settings, publish=False) == 1  # then the applier died
    assert not warehouse.current_path.exists()
    applier = Applier(warehouse, settings, publish_interval=0)
    try:
        wait_for(lambda: published(warehouse) == {"ann": "one"})
    finally:
        applier.close()


def test_automatic_interval_is_as_long_as_the_last_publish(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    assert publish_interval_for(warehouse, None) == 0.0  # nothing published by this applier yet
    assert publish_due(warehouse, None)  # nothing published at all
    writer.append_sync(rec("t1", "ann", "one"))
    assert apply_journal(warehouse, settings) == 1
    took = warehouse.last_publish_seconds
    assert took is not None and took > 0
    assert publish_interval_for(warehouse, None) == AUTO_PUBLISH_INTERVAL_FACTOR * took
    assert publish_interval_for(warehouse, 7.5) == 7.5
    at = warehouse.published_at()
    assert at is not None
    assert not publish_due(warehouse, 60, now=at + 59)
    assert publish_due(warehouse, 60, now=at + 60)
    assert not publish_due(warehouse, None, now=at + AUTO_PUBLISH_INTERVAL_FACTOR * took - 0.01)
    assert publish_due(warehouse, None, now=at + AUTO_PUBLISH_INTERVAL_FACTOR * took + 0.01)
    assert publish_due(warehouse, 0, now=at)
    # Another process's publish counts too (the symlink's time), e.g. a PATCH's.
    publish_pending(warehouse, settings)
    assert warehouse.published_at() == at  # nothing new: not republished


def test_publish_interval_setting(tmp_path: Path) -> None:
    config, _ = load_config(env={}, warehouse=tmp_path)
    assert config.publish_interval_seconds is None  # automatic
    config, _ = load_config(env={"PROPSYNC_PUBLISH_INTERVAL": "30"}, warehouse=tmp_path)
    assert config.publish_interval_seconds == 30.0
    config, _ = load_config(env={"PROPSYNC_PUBLISH_INTERVAL": "auto"}, warehouse=tmp_path)
    assert config.publish_interval_seconds is None
    toml = tmp_path / "propsync.toml"
    toml.write_text("publish_interval_seconds = 0\n")
    config, _ = load_config(toml, env={}, warehouse=tmp_path)
    assert config.publish_interval_seconds == 0.0
    config, _ = load_config(toml, env={}, warehouse=tmp_path, publish_interval_seconds=12.5)
    assert config.publish_interval_seconds == 12.5  # the command line wins


def test_a_backlog_is_published_batch_by_batch_without_waiting_for_the_interval(
    warehouse: Warehouse, settings: Settings, writer: JournalWriter
) -> None:
    # A restart on a full journal: 25 commands, applies of at most 10. Each apply is published
    # (interval 0) and the next starts at once, although the apply interval is an hour.
    for i in range(25):
        writer.append_sync(rec(f"t{i}", f"u{i}", f"v{i}", TS + i))
    seen: list[tuple[int | None, int]] = []

    def after_publish() -> None:
        seen.append((warehouse.published_version(), len(published(warehouse))))

    stop = threading.Event()
    errors: list[BaseException] = []
    thread = threading.Thread(
        target=apply_forever,
        args=(warehouse, settings, 3600.0, stop),
        kwargs={
            "on_error": errors.append,
            "publish_interval": 0.0,
            "after_publish": after_publish,
            "max_batch_commands": 10,
        },
    )
    thread.start()
    try:
        wait_for(lambda: applied(warehouse) and len(seen) == 3)
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and not errors, errors
    assert seen == [(1, 10), (2, 20), (3, 25)]
