"""Read indexes on the published copy only: built at publish time, used by every GET read.

All against real DuckDB files: the published version carries the ``sql/publish/`` indexes, the
writer's ``work.duckdb`` none; every statement of the read path runs as an index scan (EXPLAIN
ANALYZE, where DuckDB reports the scan type it chose at run time); reads give the same answers with
and without the indexes; a publish is atomic (readers see a complete, indexed version or the
previous one) and a failed or crashed one leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from propsync import sql
from propsync.api.reader import fetch_customer
from propsync.config import Settings
from propsync.errors import UnknownCustomer
from propsync.store.apply import publish_pending
from propsync.store.read import CustomerRef, get_customer, render_customer
from propsync.store.warehouse import Warehouse, build_read_indexes
from tests.helpers import apply

INDEXES = {
    ("customer_aliases_by_old", "customer_aliases"),
    ("customer_ids_by_customer", "customer_ids"),
    ("customer_ids_by_value", "customer_ids"),
    ("properties_by_customer", "properties"),
}
INDEX_LIST = "SELECT index_name, table_name FROM duckdb_indexes()"


def indexes_of(path: Path) -> set[tuple[str, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {(str(n), str(t)) for n, t in con.execute(INDEX_LIST).fetchall()}


def populate(warehouse: Warehouse, settings: Settings) -> None:
    """Customers with several id types (so no id_type filter is pruned by statistics), a merge
    (an alias), a legacy value and a customer with many properties."""
    updates: list[Any] = []
    for i in range(60):
        ids = {"registered": f"u{i}", "cookie": f"c{i}"} if i % 2 else {"cookie": f"c{i}"}
        updates += [(ids, f"p{j}", f"v{i}.{j}", 1_600_000_000 + i) for j in range(3)]
    updates.append(({"email_id": "u7"}, "name", "same value as a registered id", 1_600_000_000))
    apply(warehouse, settings, "b1", updates)
    apply(warehouse, settings, "b2", [({"cookie": "lonely"}, "p0", "x", 1_600_000_100)])
    # One command with both ids merges the two customers: "lonely" survives as an alias.
    apply(
        warehouse,
        settings,
        "b3",
        [({"cookie": "lonely", "registered": "u1"}, "p0", "merged", 1_600_000_200)],
    )
    apply(warehouse, settings, "b4", [({"registered": "u3"}, "legacy", "old", None)])
    apply(warehouse, settings, "b5", [({"registered": "u5"}, f"k{j}", j, 1.5) for j in range(50)])


@pytest.fixture
def populated(warehouse: Warehouse, settings: Settings) -> Warehouse:
    populate(warehouse, settings)
    return warehouse


def test_published_copy_has_the_read_indexes_and_work_has_none(
    populated: Warehouse, settings: Settings
) -> None:
    assert indexes_of(populated.published_file()) == INDEXES
    assert {name for name, _ in INDEXES} == {
        re.search(r"INDEX IF NOT EXISTS (\w+)", s).group(1)  # type: ignore[union-attr]
        for s in sql.publish_statements()
    }
    with populated.write_lock(settings.lock_timeout_seconds):
        con = populated.connect_work()
        try:
            assert con.execute(INDEX_LIST).fetchall() == []
        finally:
            con.close()
    # Nothing of the copy being built is left next to the versions (no tmp file, no WAL).
    assert sorted(p.name for p in populated.published_dir.iterdir()) == [
        f"v{v:06d}.duckdb" for v in range(3, 6)
    ]


def _scan_types(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, str]) -> list[str]:
    plan = str(con.execute("EXPLAIN ANALYZE " + query, params).fetchall()[0][1])
    return re.findall(r"Type: (\w+ Scan)", plan)


def test_every_read_statement_is_an_index_scan(populated: Warehouse) -> None:
    with populated.connect_published() as con:
        customer_id = str(
            con.execute(
                "SELECT customer_id FROM customer_ids WHERE id_type = 'registered' AND id_value = 'u1'"
            ).fetchall()[0][0]
        )
        (alias,) = con.execute("SELECT old_customer_id FROM customer_aliases").fetchall()[0]
        from propsync.api.reader import _IDS_AND_PROPERTIES

        reads = [
            ("read/resolve_external_id", {"id_type": "cookie", "id_value": "c1"}, 1),
            ("read/resolve_internal_id", {"ref": str(alias)}, 2),
            ("read/customer_ids", {"customer_id": customer_id}, 1),
            ("read/customer_properties", {"customer_id": customer_id}, 1),
            (_IDS_AND_PROPERTIES, {"customer_id": customer_id}, 2),  # the GET hot path
        ]
        for query, params, scans in reads:
            text = sql.load(query) if query.startswith("read/") else query
            assert _scan_types(con, text, params) == ["Index Scan"] * scans, query


def test_without_the_id_type_trick_duckdb_would_scan(populated: Warehouse) -> None:
    # Why resolve_external_id.sql filters id_type outside the scan: with both filters in the scan
    # DuckDB does not use the index (several id types are stored, so id_type is not pruned).
    with populated.connect_published() as con:
        plain = (
            "SELECT customer_id FROM customer_ids WHERE id_type = $id_type AND id_value = $id_value"
        )
        params = {"id_type": "cookie", "id_value": "c1"}
        assert _scan_types(con, plain, params) == ["Sequential Scan"]
        assert (
            con.execute(plain, params).fetchall()
            == con.execute(sql.load("read/resolve_external_id"), params).fetchall()
        )


def _refs(con: duckdb.DuckDBPyConnection) -> list[str]:
    ids = [
        f"{t}:{v}" for t, v in con.execute("SELECT id_type, id_value FROM customer_ids").fetchall()
    ]
    internal = [
        str(c) for (c,) in con.execute("SELECT DISTINCT customer_id FROM customer_ids").fetchall()
    ]
    aliases = [
        str(c) for (c,) in con.execute("SELECT old_customer_id FROM customer_aliases").fetchall()
    ]
    unknown = [
        "registered:nobody",
        "cookie:u1",
        "email_id:c1",
        "no-such-internal-id",
        "registered:",
    ]
    return sorted(ids) + sorted(internal) + aliases + unknown


def _read_all(path: Path, refs: list[str]) -> dict[str, tuple[str, str] | None]:
    out: dict[str, tuple[str, str] | None] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for ref in refs:
            try:
                customer = get_customer(con, CustomerRef.parse(ref))
            except UnknownCustomer:
                out[ref] = None
                continue
            api = fetch_customer(con, CustomerRef.parse(ref))
            assert api == customer
            out[ref] = (render_customer(customer, True), render_customer(customer, False))
    return out


def test_reads_are_identical_with_and_without_the_indexes(
    populated: Warehouse, tmp_path: Path
) -> None:
    published = populated.published_file()
    plain = tmp_path / "without-indexes.duckdb"
    shutil.copyfile(published, plain)
    with duckdb.connect(str(plain)) as con:
        for name, _ in INDEXES:
            con.execute(f"DROP INDEX {name}")
        con.execute("CHECKPOINT")
    assert indexes_of(plain) == set()
    with duckdb.connect(str(published), read_only=True) as con:
        refs = _refs(con)
    assert len(refs) > 150
    with_indexes = _read_all(published, refs)
    assert with_indexes == _read_all(plain, refs)
    assert with_indexes["cookie:lonely"] == with_indexes["registered:u1"] is not None
    assert with_indexes["registered:nobody"] is None
    assert '"legacy": {"value": "old", "last_update": -1}' in with_indexes["registered:u3"][0]  # type: ignore[index]


def test_build_read_indexes_is_idempotent(populated: Warehouse, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(populated.published_file(), copy)
    build_read_indexes(copy)  # IF NOT EXISTS: a file that has them already is left as it is
    assert indexes_of(copy) == INDEXES
    assert not Path(f"{copy}.wal").exists()


def test_readers_only_ever_see_complete_indexed_versions(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b0", [({"registered": "r"}, "n", 0, 1)])
    seen: list[tuple[int, int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                with warehouse.connect_published() as con:
                    version = int(con.execute("SELECT value FROM meta").fetchall()[0][0])
                    value = int(
                        get_customer(con, CustomerRef("registered", "r")).properties[0].value
                    )
                    n_indexes = int(
                        con.execute("SELECT count(*) FROM duckdb_indexes()").fetchall()[0][0]
                    )
                seen.append((version, value, n_indexes))
            except FileNotFoundError:  # the version resolved was pruned before it was opened
                continue
            except duckdb.IOException as exc:
                if "No such file" not in str(exc):
                    errors.append(exc)
            except BaseException as exc:  # reported below
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(1, 8):
            apply(warehouse, settings, f"b{n}", [({"registered": "r"}, "n", n, 1 + n)])
    finally:
        done.set()
        reader.join()
    assert not errors, errors
    assert seen
    # Version v holds the value written by batch v-1, and every version a reader saw is indexed.
    assert all(value == version - 1 and n == len(INDEXES) for version, value, n in seen), seen
    versions = [v for v, _, _ in seen]
    assert versions == sorted(versions)


def test_a_failed_index_build_publishes_nothing_and_leaves_nothing_behind(
    warehouse: Warehouse, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1)])
    assert warehouse.published_version() == 1
    # Fault injection with real DuckDB: a statement that fails while the copy is being indexed.
    broken = [*sql.publish_statements(), "CREATE INDEX broken ON no_such_table (x)"]
    monkeypatch.setattr(sql, "publish_statements", lambda: broken)
    with pytest.raises(duckdb.CatalogException):
        apply(warehouse, settings, "b2", [({"registered": "a"}, "p", 2, 2)])
    assert warehouse.published_version() == 1  # readers keep the previous version
    assert sorted(p.name for p in warehouse.published_dir.iterdir()) == ["v000001.duckdb"]
    monkeypatch.undo()
    assert publish_pending(warehouse, settings) == 2  # committed, so the next publish has it
    with warehouse.connect_published() as con:
        assert get_customer(con, CustomerRef("registered", "a")).properties[0].value == "2"
    assert indexes_of(warehouse.published_file()) == INDEXES


def test_leftovers_of_a_crashed_publish_are_removed_not_replayed(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1)], publish=False)
    # A publish of version 1 killed while building indexes: its copy and a WAL are left behind.
    warehouse.published_dir.mkdir(parents=True)
    (warehouse.published_dir / ".v000001.duckdb.tmp").write_bytes(b"partial copy")
    (warehouse.published_dir / ".v000001.duckdb.tmp.wal").write_bytes(os.urandom(4096))
    assert publish_pending(warehouse, settings) == 1
    assert sorted(p.name for p in warehouse.published_dir.iterdir()) == ["v000001.duckdb"]
    assert indexes_of(warehouse.published_file()) == INDEXES
    with warehouse.connect_published() as con:
        assert get_customer(con, CustomerRef("registered", "a")).properties[0].value == "1"


def test_index_build_runs_under_the_writers_memory_limit(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "wh")
    settings = Settings(warehouse=warehouse.root, duckdb_memory_limit="32MB")
    populate(warehouse, settings)
    assert warehouse.memory_limit == "32MB"  # the writer's limit, used for the index build too
    assert indexes_of(warehouse.published_file()) == INDEXES
