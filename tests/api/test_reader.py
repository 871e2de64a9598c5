"""The service's reader: same answers as the core read path; it reads the SQLite read model, which
it builds in the background (reading the published file meanwhile) and then keeps up to date by
applying each published run, never blocking a read on a build or a follow."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator

import pytest

from propsync.api.reader import PublishedReader, fetch_customer
from propsync.config import Settings
from propsync.errors import NotPublished, UnknownCustomer
from propsync.locks import exclusive_lock
from propsync.store import read_model
from propsync.store.read import CustomerRef, get_customer, render_customer
from propsync.store.read_model import ReadModel
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, interactive_python, wait_for
from tests.store.test_read_model_segments import SMALL as SEGMENTS_SMALL, folded_rows


@contextlib.contextmanager
def _follower_lock(warehouse: Warehouse) -> Iterator[None]:
    """Hold the read model's lock, as a process building or following it does."""
    model = ReadModel(warehouse)
    model.dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(model.lock_path, 5, lambda holder: f"held by {holder}"):
        yield


def _seed(warehouse: Warehouse, settings: Settings) -> None:
    apply(
        warehouse,
        settings,
        "b1",
        [
            ({"registered": "ann", "cookie": "c1"}, "name", "Ann", 1_600_000_000.5),
            ({"registered": "ann"}, "tags", ["a", {"b": None}], 1_600_000_001),
            ({"cookie": "c2"}, "Name", "cookie two", 1_600_000_002),
            ({"cookie": "c3"}, "ž-property", 1.5, None),  # legacy: no timestamp
            ({"email": "bob@example.com"}, "name", "Bob", 1_600_000_003),
            ({"email": "bob@example.com"}, "age", 40, 1_600_000_003),
        ],
    )
    # Merges c2's customer into ann's (the survivor keeps resolving the old internal id).
    apply(
        warehouse,
        settings,
        "b2",
        [({"registered": "ann", "cookie": "c2"}, "city", "Brno", 1_600_000_010)],
    )
    apply(
        warehouse,
        settings,
        "b3",
        [({"email": "bob@example.com", "cookie": "c4"}, "age", 39, 1_500_000_000)],
    )


def test_fetch_customer_equals_get_customer(warehouse: Warehouse, settings: Settings) -> None:
    _seed(warehouse, settings)
    with warehouse.connect_published() as con:
        internal = [
            r[0] for r in con.execute("SELECT DISTINCT customer_id FROM customer_ids").fetchall()
        ]
        aliases = [
            r[0] for r in con.execute("SELECT old_customer_id FROM customer_aliases").fetchall()
        ]
        external = [
            f"{t}:{v}"
            for t, v in con.execute("SELECT id_type, id_value FROM customer_ids").fetchall()
        ]
        assert aliases, "the seed must merge customers"
        refs = [*internal, *aliases, *external]
        for text in refs:
            ref = CustomerRef.parse(text)
            ours, core = fetch_customer(con, ref), get_customer(con, ref)
            assert ours == core, text
            for ts in (False, True):
                assert render_customer(ours, ts) == render_customer(core, ts)
        ann = fetch_customer(con, CustomerRef.parse("cookie:c2"))
        assert ann.ids == {"cookie": ["c1", "c2"], "registered": ["ann"]}
        assert [p.name for p in ann.properties] == ["Name", "city", "name", "tags"]  # c2 merged in
        for text in ("registered:nobody", "0" * 32, "cookie:"):
            with pytest.raises(UnknownCustomer):
                fetch_customer(con, CustomerRef.parse(text))


def _refs(warehouse: Warehouse) -> list[str]:
    with warehouse.connect_published() as con:
        rows = con.execute(
            "SELECT customer_id FROM customer_ids UNION ALL "
            "SELECT old_customer_id FROM customer_aliases UNION ALL "
            "SELECT id_type || ':' || id_value FROM customer_ids"
        ).fetchall()
    return sorted({r[0] for r in rows} | {"registered:nobody", "0" * 32, "cookie:"})


def test_reads_from_the_read_model_equal_get_customer(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    reader = PublishedReader(warehouse)
    try:
        assert reader.wait_for(3, 30, indexed=True) and reader.indexed
        with warehouse.connect_published() as con:
            for text in _refs(warehouse):
                ref = CustomerRef.parse(text)
                try:
                    core = get_customer(con, ref)
                except UnknownCustomer:
                    with pytest.raises(UnknownCustomer):
                        reader.customer(ref)
                    continue
                ours, version = reader.customer(ref)
                assert version == 3 and ours == core, text
                for ts in (False, True):
                    assert render_customer(ours, ts) == render_customer(core, ts)
    finally:
        reader.close()


def test_reader_follows_new_versions_by_their_runs(
    warehouse: Warehouse, settings: Settings
) -> None:
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    try:
        with pytest.raises(NotPublished):
            reader.customer(CustomerRef.parse("registered:ann"))
        _seed(warehouse, settings)
        customer, version = reader.customer(CustomerRef.parse("registered:ann"))
        assert version == warehouse.published_version() == 3
        assert {p.name: p.value for p in customer.properties}["city"] == '"Brno"'
        assert reader.wait_for(3, 30, indexed=True)
        # The model is readable at the build's rename; the build is counted when it returns.
        wait_for(lambda: reader.builds == 1)
        apply(warehouse, settings, "b4", [({"registered": "ann"}, "city", "Praha", 1_600_000_020)])
        assert reader.wait_for(4, 30)  # applies run 4 (or the follower thread did)
        customer, version = reader.customer(CustomerRef.parse("registered:ann"))
        assert version == reader.version == 4 and reader.indexed
        assert {p.name: p.value for p in customer.properties}["city"] == '"Praha"'
        # The run is readable at its commit; it is counted when the follow returns (a race the
        # fresh-clone CI found, as for the build above).
        wait_for(lambda: reader.runs_applied == 1)
        assert reader.builds == 1 and reader.runs_applied == 1  # no rebuild
    finally:
        reader.close()


def test_while_a_dedicated_follower_runs_the_reader_leaves_it_the_runs(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    model = ReadModel(warehouse)
    reader = PublishedReader(warehouse, poll_seconds=0.02)
    try:
        with model.follower_presence():  # as the applier's follower process
            assert reader.wait_for(3, 30, indexed=True)  # a build is still the reader's
            wait_for(lambda: reader.builds == 1)  # counted once the build returns
            apply(warehouse, settings, "b4", [({"registered": "ann"}, "x", 1, 1_600_000_020)])
            reader.customer(CustomerRef.parse("registered:ann"))  # wakes its follower thread
            time.sleep(0.5)  # 25 polls
            state = model.state()
            assert state is not None and state.version == 3 and reader.runs_applied == 0
            # An edit's read-your-writes does not wait for the other follower.
            assert reader.wait_for(4, 30) and reader.runs_applied == 1
            apply(warehouse, settings, "b5", [({"registered": "ann"}, "x", 2, 1_600_000_021)])
            time.sleep(0.5)
            assert reader.runs_applied == 1
        wait_for(lambda: reader.runs_applied == 2)  # gone: the reader follows again
        customer, version = reader.customer(CustomerRef.parse("registered:ann"))
        assert version == 5 and {p.name: p.value for p in customer.properties}["x"] == "2"
    finally:
        reader.close()


def test_without_a_dedicated_follower_the_reader_merges_and_folds_the_segments(
    warehouse: Warehouse, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SEGMENTS_SMALL.items():
        monkeypatch.setattr(read_model, name, value)
    _seed(warehouse, settings)
    reader = PublishedReader(warehouse, poll_seconds=0.02)
    try:
        assert reader.wait_for(3, 30, indexed=True)
        for i in range(12):
            updates = [({"cookie": f"s{j}"}, f"n{i}", i, 1_700_000_000 + i) for j in range(8)]
            apply(warehouse, settings, f"s{i}", updates)
        wait_for(lambda: reader.version == 15)

        # 96 recent rows against a fold at 40: only a fold writes them into properties.
        wait_for(lambda: folded_rows(reader.model, "n[0-9]*") > 0)
        assert reader.builds == 1  # followed, not rebuilt (a build writes properties too)
        customer, version = reader.customer(CustomerRef.parse("cookie:s3"))
        assert version == 15
        assert {p.name: p.value for p in customer.properties} == {
            f"n{i}": str(i) for i in range(12)
        }
    finally:
        reader.close()


def test_reads_keep_their_version_while_another_process_holds_the_model(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    try:
        assert reader.wait_for(3, 30, indexed=True)
        # Another process builds or follows: it holds the model's lock for a while.
        with _follower_lock(warehouse):
            apply(
                warehouse, settings, "b4", [({"registered": "ann"}, "city", "Praha", 1_600_000_020)]
            )
            for _ in range(50):  # reads answer from version 3 meanwhile
                customer, version = reader.customer(CustomerRef.parse("registered:ann"))
                assert version == 3 and reader.indexed
                assert {p.name: p.value for p in customer.properties}["city"] == '"Brno"'
            assert not reader.wait_for(4, 0.2)  # it cannot follow without the lock
        assert reader.wait_for(4, 30)
        customer, version = reader.customer(CustomerRef.parse("registered:ann"))
        assert version == 4 and {p.name: p.value for p in customer.properties}["city"] == '"Praha"'
    finally:
        reader.close()


def test_until_the_model_is_built_reads_come_from_the_published_file(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    try:
        with _follower_lock(warehouse):  # no model can be built yet
            customer, version = reader.customer(CustomerRef.parse("cookie:c2"))
            assert version == 3 and not reader.indexed
            assert customer.ids == {"cookie": ["c1", "c2"], "registered": ["ann"]}
            # Without a model the reader follows the published file as it moves.
            apply(warehouse, settings, "b4", [({"registered": "ann"}, "x", 1, 1_600_000_020)])
            assert reader.wait_for(4, 0)
            _, version = reader.customer(CustomerRef.parse("cookie:c2"))
            assert version == 4 and not reader.indexed
            assert not reader.wait_for(4, 0.2, indexed=True)
            assert not ReadModel(warehouse).exists()
        assert reader.wait_for(4, 30, indexed=True)
        customer, version = reader.customer(CustomerRef.parse("cookie:c2"))
        assert version == 4 and {p.name for p in customer.properties} >= {"x", "city"}
        assert reader._fallback is None  # its DuckDB connection is closed
    finally:
        reader.close()


def test_a_restarted_reader_catches_up_on_the_runs(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    first = PublishedReader(warehouse)
    assert first.wait_for(3, 30, indexed=True)
    first.close()
    for i in range(3):
        apply(warehouse, settings, f"n{i}", [({"registered": "ann"}, "x", i, 1_600_000_020 + i)])
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    try:
        with _follower_lock(warehouse):
            # The model at once, at version 3; versions 4-6 follow when the lock is free.
            _, version = reader.customer(CustomerRef.parse("registered:ann"))
            assert version == 3 and reader.indexed
        assert reader.wait_for(6, 30)
        assert reader.builds == 0 and reader.runs_applied == 3
    finally:
        reader.close()


def test_two_readers_build_once_and_read_each_others_follows(
    warehouse: Warehouse, settings: Settings
) -> None:
    # Two readers on one warehouse, as two ``--workers`` of one server (or two servers).
    _seed(warehouse, settings)
    readers = [PublishedReader(warehouse, poll_seconds=3600) for _ in range(2)]
    try:
        for r in readers:
            r.start()
        assert all(r.wait_for(3, 30, indexed=True) for r in readers)
        assert sum(r.builds for r in readers) == 1
        apply(warehouse, settings, "b4", [({"registered": "ann"}, "x", 1, 1_600_000_020)])
        assert readers[0].wait_for(4, 30)
        # The other reads what the first applied, without following itself.
        customer, version = readers[1].customer(CustomerRef.parse("registered:ann"))
        assert version == 4 and {p.name: p.value for p in customer.properties}["x"] == "1"
        assert sum(r.runs_applied for r in readers) == 1
    finally:
        for r in readers:
            r.close()


def test_a_recreated_warehouse_is_read_from_its_published_file_until_rebuilt(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    try:
        assert reader.wait_for(3, 30, indexed=True)
        # The warehouse is recreated (its files but serving/ removed): version 1 again.
        for p in [warehouse.work_path, warehouse.current_path]:
            p.unlink()
        for d in [warehouse.published_dir, warehouse.root / "runs"]:
            for q in d.iterdir():
                q.unlink()
        with _follower_lock(warehouse):
            apply(warehouse, settings, "again", [({"registered": "zoe"}, "n", 1, 1.0)])
            # The model (version 3) is ahead of what is published: not read.
            _, version = reader.customer(CustomerRef.parse("registered:zoe"))
            assert version == 1 and not reader.indexed
            with pytest.raises(UnknownCustomer):
                reader.customer(CustomerRef.parse("registered:ann"))
        assert reader.wait_for(1, 30, indexed=True)
        assert reader.builds == 2
        with pytest.raises(UnknownCustomer):
            reader.customer(CustomerRef.parse("registered:ann"))
        assert reader.customer(CustomerRef.parse("registered:zoe"))[1] == 1
    finally:
        reader.close()


def test_reader_is_safe_under_concurrent_reads_and_publishes(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    errors: list[BaseException] = []
    versions: list[int] = []
    stop = threading.Event()

    def read() -> None:
        seen = 0
        while not stop.is_set():
            try:
                customer, version = reader.customer(CustomerRef.parse("email:bob@example.com"))
                assert {p.name for p in customer.properties} >= {"name", "age"}
                assert version >= seen  # never back to an older version
                seen = version
                versions.append(version)
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(5):
        apply(
            warehouse,
            settings,
            f"p{i}",
            [({"email": "bob@example.com"}, "n", i, 1_600_000_100 + i)],
        )
        time.sleep(0.05)
    assert reader.wait_for(8, 30, indexed=True)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert versions
    customer, version = reader.customer(CustomerRef.parse("email:bob@example.com"))
    assert version == reader.version == warehouse.published_version() == 8
    assert {p.name: p.value for p in customer.properties}["n"] == "4"
    reader.close()


# Run as ``python -c``: there DuckDB turns its progress bar on by default (see interactive_python).
_READER_SETTING = """
import json, sys
from propsync.api.reader import PublishedReader
from propsync.store.warehouse import Warehouse

q = "SELECT current_setting('enable_progress_bar')"
wh = Warehouse(sys.argv[1])
reader = PublishedReader(wh)
con = reader._connect(wh.published_file())
out = {"cursor": con.cursor().execute(q).fetchall()[0][0], "connection": con.execute(q).fetchall()[0][0]}
_, duck = reader.model._open_published()
out["build"] = duck.execute(q).fetchall()[0][0]
print(json.dumps(out))
"""


def test_reader_connections_have_the_progress_bar_off(
    warehouse: Warehouse, settings: Settings
) -> None:
    # DuckDB would otherwise draw progress bars into the service's logs on slow queries.
    _seed(warehouse, settings)
    got = json.loads(interactive_python(_READER_SETTING, str(warehouse.root)))
    assert got == {"cursor": False, "connection": False, "build": False}
