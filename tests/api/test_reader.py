"""The service's reader: same answers as the core read path; it follows new publications through
serving copies built in the background, never blocking a read on a build."""

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
from propsync.store.read import CustomerRef, get_customer, render_customer
from propsync.store.serving import ServingCopies
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, interactive_python


@contextlib.contextmanager
def _build_lock(copies: ServingCopies) -> Iterator[None]:
    """Hold the serving copies' build lock, as a process building one does."""
    copies.dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(copies.lock_path, 5, lambda holder: f"held by {holder}"):
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


def test_reader_follows_new_versions_and_closes_old_ones(
    warehouse: Warehouse, settings: Settings
) -> None:
    reader = PublishedReader(warehouse)
    with pytest.raises(NotPublished):
        reader.customer(CustomerRef.parse("registered:ann"))
    _seed(warehouse, settings)
    customer, version = reader.customer(CustomerRef.parse("registered:ann"))
    assert version == warehouse.published_version() == 3
    assert {p.name: p.value for p in customer.properties}["city"] == '"Brno"'
    assert reader.wait_for(3, 30, indexed=True)  # the serving copy of version 3
    old = reader._current
    # A reader in the middle of a request keeps its version while a newer one is published.
    with reader.cursor() as (cur, v):
        apply(warehouse, settings, "b4", [({"registered": "ann"}, "city", "Praha", 1_600_000_020)])
        assert v == 3
        assert reader.wait_for(4, 30, indexed=True)
        assert cur.execute(
            "SELECT count(*) FROM properties WHERE value = '\"Praha\"'"
        ).fetchall() == [(0,)]
        customer, version = reader.customer(CustomerRef.parse("registered:ann"))
        assert version == 4 and reader.indexed
        assert {p.name: p.value for p in customer.properties}["city"] == '"Praha"'
        assert old is not None and old.retired and old.users == 1
    assert old.users == 0  # released; its connection is closed
    with pytest.raises(Exception, match="closed"):
        old.con.execute("SELECT 1")
    reader.close()


def test_reader_keeps_serving_its_version_while_the_next_is_built(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    try:
        assert reader.wait_for(3, 30, indexed=True)
        copies = ServingCopies(warehouse)
        # Another process is building a serving copy: it holds the build lock for a while.
        with _build_lock(copies):
            apply(
                warehouse, settings, "b4", [({"registered": "ann"}, "city", "Praha", 1_600_000_020)]
            )
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:  # reads answer at once, from version 3
                started = time.monotonic()
                customer, version = reader.customer(CustomerRef.parse("registered:ann"))
                assert time.monotonic() - started < 1  # no build to wait for
                assert version == 3 and reader.indexed
                assert {p.name: p.value for p in customer.properties}["city"] == '"Brno"'
            assert not reader.wait_for(4, 0.2)
            assert copies.versions() == [3]
        # The lock is free: the reader builds version 4 itself and switches to it.
        assert reader.wait_for(4, 30, indexed=True)
        customer, version = reader.customer(CustomerRef.parse("registered:ann"))
        assert version == 4 and reader.indexed
        assert {p.name: p.value for p in customer.properties}["city"] == '"Praha"'
        assert reader.builds == 2 and copies.versions() == [3, 4]
    finally:
        reader.close()


def test_until_the_first_serving_copy_reads_come_from_the_published_file(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    copies = ServingCopies(warehouse)
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    try:
        with _build_lock(copies):  # no serving copy can be built yet
            customer, version = reader.customer(CustomerRef.parse("cookie:c2"))
            assert version == 3 and not reader.indexed
            assert customer.ids == {"cookie": ["c1", "c2"], "registered": ["ann"]}
            # Without a serving copy the reader follows the published file as it moves.
            apply(warehouse, settings, "b4", [({"registered": "ann"}, "x", 1, 1_600_000_020)])
            assert reader.wait_for(4, 0)
            _, version = reader.customer(CustomerRef.parse("cookie:c2"))
            assert version == 4 and not reader.indexed
            assert copies.versions() == []
        assert reader.wait_for(4, 30, indexed=True)
        customer, version = reader.customer(CustomerRef.parse("cookie:c2"))
        assert version == 4 and {p.name for p in customer.properties} >= {"x", "city"}
        assert copies.versions() == [4]
    finally:
        reader.close()


def test_a_restarted_reader_serves_the_newest_serving_copy_at_once(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    first = PublishedReader(warehouse)
    assert first.wait_for(3, 30, indexed=True)
    first.close()
    apply(warehouse, settings, "b4", [({"registered": "ann"}, "x", 1, 1_600_000_020)])
    copies = ServingCopies(warehouse)
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    try:
        with _build_lock(copies):
            # Indexed version 3 at once; version 4 is built when the lock is free.
            _, version = reader.customer(CustomerRef.parse("registered:ann"))
            assert version == 3 and reader.indexed
        assert reader.wait_for(4, 30, indexed=True)
        assert reader.builds == 1
    finally:
        reader.close()


def test_two_readers_build_each_version_once_and_skip_intermediate_versions(
    warehouse: Warehouse, settings: Settings
) -> None:
    # Two readers on one warehouse, as two ``--workers`` of one server (or two servers).
    _seed(warehouse, settings)
    readers = [PublishedReader(warehouse, poll_seconds=0.05) for _ in range(2)]
    copies = ServingCopies(warehouse)
    try:
        for r in readers:
            r.start()
        assert all(r.wait_for(3, 30, indexed=True) for r in readers)
        assert sum(r.builds for r in readers) == 1 and copies.versions() == [3]
        # Five versions published while a build runs elsewhere: only the newest is built next.
        with _build_lock(copies):
            for i in range(5):
                apply(warehouse, settings, f"n{i}", [({"registered": "ann"}, "n", i, 1e9 + i)])
            time.sleep(0.3)  # both readers noticed and wait for the lock
        assert all(r.wait_for(8, 30, indexed=True) for r in readers)
        assert all(r.indexed and r.version == 8 for r in readers)
        assert sum(r.builds for r in readers) == 2
        assert copies.versions() == [3, 8]
    finally:
        for r in readers:
            r.close()


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
    assert len(ServingCopies(warehouse).versions()) <= 2  # older copies are pruned


# Run as ``python -c``: there DuckDB turns its progress bar on by default (see interactive_python).
_READER_SETTING = """
import json, sys
from propsync.api.reader import PublishedReader
from propsync.store.warehouse import Warehouse

q = "SELECT current_setting('enable_progress_bar')"
reader = PublishedReader(Warehouse(sys.argv[1]))
with reader.cursor() as (cur, _):
    out = {"cursor": cur.execute(q).fetchall()[0][0]}
out["connection"] = reader._current.con.execute(q).fetchall()[0][0]
reader.close()
print(json.dumps(out))
"""


def test_reader_connections_have_the_progress_bar_off(
    warehouse: Warehouse, settings: Settings
) -> None:
    # DuckDB would otherwise draw progress bars into the service's logs on slow queries.
    _seed(warehouse, settings)
    got = json.loads(interactive_python(_READER_SETTING, str(warehouse.root)))
    assert got == {"cursor": False, "connection": False}
