"""The service's reader: same answers as the core read path, and it follows new publications."""

from __future__ import annotations

import json
import threading

import pytest

from propsync.api.reader import PublishedReader, fetch_customer
from propsync.config import Settings
from propsync.errors import NotPublished, UnknownCustomer
from propsync.store.read import CustomerRef, get_customer, render_customer
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, interactive_python


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
    old = reader._current
    # A reader in the middle of a request keeps its version while a newer one is published.
    with reader.cursor() as (cur, v):
        apply(warehouse, settings, "b4", [({"registered": "ann"}, "city", "Praha", 1_600_000_020)])
        assert v == 3
        assert cur.execute(
            "SELECT count(*) FROM properties WHERE value = '\"Praha\"'"
        ).fetchall() == [(0,)]
        customer, version = reader.customer(CustomerRef.parse("registered:ann"))
        assert version == 4
        assert {p.name: p.value for p in customer.properties}["city"] == '"Praha"'
        assert old is not None and old.retired and old.users == 1
    assert old.users == 0  # released; its connection is closed
    with pytest.raises(Exception, match="closed"):
        old.con.execute("SELECT 1")
    reader.close()


def test_reader_is_safe_under_concurrent_reads_and_publishes(
    warehouse: Warehouse, settings: Settings
) -> None:
    _seed(warehouse, settings)
    reader = PublishedReader(warehouse)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                customer, _ = reader.customer(CustomerRef.parse("email:bob@example.com"))
                assert {p.name for p in customer.properties} >= {"name", "age"}
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
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    _, version = reader.customer(CustomerRef.parse("email:bob@example.com"))
    assert version == reader.version == warehouse.published_version() == 8
    reader.close()


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
