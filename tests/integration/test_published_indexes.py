"""Read indexes live only in the HTTP service's serving copies, never in what writers publish.

All against real DuckDB files: published versions (``Warehouse.publish``, a plain copy) and the
writer's ``work.duckdb`` carry no index; a serving copy (``propsync.store.serving``) carries the
four of ``sql/serving/``; every statement of the read path runs as an index scan on a serving copy
(EXPLAIN ANALYZE, where DuckDB reports the scan type it chose at run time); reads give the same
answers with and without the indexes; a build makes only the newest version, once across
processes; a failed or killed build leaves nothing a reader opens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from propsync import sql
from propsync.api.app import Service
from propsync.api.config import ServiceConfig
from propsync.api.reader import fetch_customer
from propsync.config import Settings
from propsync.errors import NotPublished, UnknownCustomer
from propsync.store.apply import publish_pending
from propsync.store.read import CustomerRef, get_customer, render_customer
from propsync.store.serving import ServingCopies, build_read_indexes
from propsync.store.warehouse import Warehouse
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


def serving_copy(warehouse: Warehouse) -> Path:
    """The serving copy of the current version (built here if it does not exist yet)."""
    return ServingCopies(warehouse).ensure_newest().path


def test_published_versions_have_no_indexes_and_serving_copies_all_four(
    populated: Warehouse, settings: Settings
) -> None:
    assert {name for name, _ in INDEXES} == {
        re.search(r"INDEX IF NOT EXISTS (\w+)", s).group(1)  # type: ignore[union-attr]
        for s in sql.serving_statements()
    }
    # What writers publish is lean: no version carries an index, nor does the working database.
    assert sorted(p.name for p in populated.published_dir.iterdir()) == [
        f"v{v:06d}.duckdb" for v in range(3, 6)
    ]
    for version in populated.published_dir.iterdir():
        assert indexes_of(version) == set()
    with populated.write_lock(settings.lock_timeout_seconds):
        con = populated.connect_work()
        try:
            assert con.execute(INDEX_LIST).fetchall() == []
        finally:
            con.close()
    # The serving copy of the current version has all four; nothing of its build is left over.
    copies = ServingCopies(populated)
    copy = copies.ensure_newest()
    assert (
        copy.built and copy.version == 5 and copy.path == populated.serving_dir / "v000005.duckdb"
    )
    assert indexes_of(copy.path) == INDEXES
    assert not [p.name for p in copies.dir.iterdir() if p.name.startswith(".")]
    assert copies.versions() == [5]
    # Same data as the published version it copies.
    with (
        duckdb.connect(str(copy.path), read_only=True) as served,
        duckdb.connect(str(populated.published_file()), read_only=True) as published,
    ):
        for table in ("properties", "customer_ids", "customer_aliases", "meta"):
            query = f"SELECT * FROM {table} ORDER BY ALL"
            assert served.execute(query).fetchall() == published.execute(query).fetchall()


def _scan_types(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, str]) -> list[str]:
    plan = str(con.execute("EXPLAIN ANALYZE " + query, params).fetchall()[0][1])
    return re.findall(r"Type: (\w+ Scan)", plan)


def _reads(con: duckdb.DuckDBPyConnection) -> list[tuple[str, dict[str, str], int]]:
    """Every statement of the read path with parameters that find something, and its scans."""
    from propsync.api.reader import _IDS_AND_PROPERTIES

    customer_id = str(
        con.execute(
            "SELECT customer_id FROM customer_ids WHERE id_type = 'registered' AND id_value = 'u1'"
        ).fetchall()[0][0]
    )
    (alias,) = con.execute("SELECT old_customer_id FROM customer_aliases").fetchall()[0]
    return [
        (sql.load("read/resolve_external_id"), {"id_type": "cookie", "id_value": "c1"}, 1),
        (sql.load("read/resolve_internal_id"), {"ref": str(alias)}, 2),
        (sql.load("read/customer_ids"), {"customer_id": customer_id}, 1),
        (sql.load("read/customer_properties"), {"customer_id": customer_id}, 1),
        (_IDS_AND_PROPERTIES, {"customer_id": customer_id}, 2),  # the GET hot path
    ]


def test_every_read_statement_is_an_index_scan_on_a_serving_copy(populated: Warehouse) -> None:
    with duckdb.connect(str(serving_copy(populated)), read_only=True) as con:
        for query, params, scans in _reads(con):
            assert _scan_types(con, query, params) == ["Index Scan"] * scans, query
    # The published version answers the same statements with sequential scans (no indexes).
    with populated.connect_published() as con:
        for query, params, scans in _reads(con):
            assert _scan_types(con, query, params) == ["Sequential Scan"] * scans, query


def test_without_the_id_type_trick_duckdb_would_scan(populated: Warehouse) -> None:
    # Why resolve_external_id.sql filters id_type outside the scan: with both filters in the scan
    # DuckDB does not use the index (several id types are stored, so id_type is not pruned).
    with duckdb.connect(str(serving_copy(populated)), read_only=True) as con:
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


def test_reads_are_identical_with_and_without_the_indexes(populated: Warehouse) -> None:
    published = populated.published_file()
    served = serving_copy(populated)
    assert indexes_of(published) == set() and indexes_of(served) == INDEXES
    with duckdb.connect(str(published), read_only=True) as con:
        refs = _refs(con)
    assert len(refs) > 150
    with_indexes = _read_all(served, refs)
    assert with_indexes == _read_all(published, refs)
    assert with_indexes["cookie:lonely"] == with_indexes["registered:u1"] is not None
    assert with_indexes["registered:nobody"] is None
    assert '"legacy": {"value": "old", "last_update": -1}' in with_indexes["registered:u3"][0]  # type: ignore[index]


def test_build_read_indexes_is_idempotent(populated: Warehouse, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(serving_copy(populated), copy)
    build_read_indexes(copy)  # IF NOT EXISTS: a file that has them already is left as it is
    assert indexes_of(copy) == INDEXES
    assert not Path(f"{copy}.wal").exists()


def test_only_the_newest_version_is_built_and_two_copies_are_kept(
    warehouse: Warehouse, settings: Settings
) -> None:
    copies = ServingCopies(warehouse)
    with pytest.raises(NotPublished):
        copies.ensure_newest()
    for n in range(1, 6):
        apply(warehouse, settings, f"b{n}", [({"registered": "r"}, "n", n, n)])
    built = copies.ensure_newest()
    assert (built.version, built.built) == (5, True)  # 1-4 were never built
    again = copies.ensure_newest()
    assert (again.version, again.built, again.path) == (5, False, built.path)
    assert built.path.stat().st_mtime_ns == again.path.stat().st_mtime_ns
    for n in range(6, 9):
        apply(warehouse, settings, f"b{n}", [({"registered": "r"}, "n", n, n)])
    assert copies.ensure_newest().version == 8
    assert copies.versions() == [5, 8]
    apply(warehouse, settings, "b9", [({"registered": "r"}, "n", 9, 9)])
    with duckdb.connect(str(built.path), read_only=True) as old:  # open while pruned
        assert copies.ensure_newest().version == 9
        assert copies.versions() == [8, 9]
        assert not built.path.exists()
        # A reader that had the pruned copy open keeps reading it.
        assert old.execute("SELECT value FROM meta WHERE key = 'version'").fetchall() == [("5",)]


_BUILD_IN_A_PROCESS = """
import json, sys
from propsync.store.serving import ServingCopies
from propsync.store.warehouse import Warehouse

sys.stdin.readline()  # start together
copy = ServingCopies(Warehouse(sys.argv[1])).ensure_newest()
print(json.dumps({"version": copy.version, "built": copy.built}))
"""


def test_processes_racing_for_the_same_version_build_it_once(
    populated: Warehouse, settings: Settings
) -> None:
    for round_ in range(3):
        apply(populated, settings, f"race{round_}", [({"registered": "r"}, "n", round_, 1e9)])
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _BUILD_IN_A_PROCESS, str(populated.root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            results.append(json.loads(out))
        version = populated.published_version()
        assert all(r["version"] == version for r in results)
        assert sum(r["built"] for r in results) == 1, results
        assert indexes_of(ServingCopies(populated).path(version)) == INDEXES


def test_readers_only_ever_see_complete_indexed_serving_copies(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b0", [({"registered": "r"}, "n", 0, 1)])
    copies = ServingCopies(warehouse)
    seen: list[tuple[int, int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                copy = copies.ensure_newest()
                with duckdb.connect(str(copy.path), read_only=True) as con:
                    version = int(
                        con.execute("SELECT value FROM meta WHERE key = 'version'").fetchall()[0][0]
                    )
                    value = int(
                        get_customer(con, CustomerRef("registered", "r")).properties[0].value
                    )
                    n_indexes = int(
                        con.execute("SELECT count(*) FROM duckdb_indexes()").fetchall()[0][0]
                    )
                seen.append((version, value, n_indexes))
            except duckdb.IOException as exc:
                # The copy found was pruned by a newer build before it was opened.
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
    # Version v holds the value written by batch v-1, and every copy a reader opened is indexed.
    assert all(value == version - 1 and n == len(INDEXES) for version, value, n in seen), seen
    versions = [v for v, _, _ in seen]
    assert versions == sorted(versions)


def test_a_failed_build_leaves_nothing_behind_and_publishing_is_unaffected(
    warehouse: Warehouse, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1)])
    copies = ServingCopies(warehouse)
    assert copies.ensure_newest().version == 1
    apply(warehouse, settings, "b2", [({"registered": "a"}, "p", 2, 2)])
    assert warehouse.published_version() == 2  # publishing builds nothing: it cannot fail on it
    # Fault injection with real DuckDB: a statement that fails while the copy is being indexed.
    broken = [*sql.serving_statements(), "CREATE INDEX broken ON no_such_table (x)"]
    monkeypatch.setattr(sql, "serving_statements", lambda: broken)
    with pytest.raises(duckdb.CatalogException):
        copies.ensure_newest()
    assert sorted(p.name for p in copies.dir.iterdir() if p.name != "tmp") == [
        "build.lock",
        "v000001.duckdb",
    ]
    monkeypatch.undo()
    copy = copies.ensure_newest()
    assert (copy.version, copy.built) == (2, True)
    assert indexes_of(copy.path) == INDEXES
    with duckdb.connect(str(copy.path), read_only=True) as con:
        assert get_customer(con, CustomerRef("registered", "a")).properties[0].value == "2"


# A build killed (SIGKILL) after its copy and two of its four indexes: a partial copy and its WAL.
_KILLED_BUILD = """
import os, signal, sys
from propsync import sql
from propsync.store.serving import ServingCopies
from propsync.store.warehouse import Warehouse

real = sql.serving_statements()

def statements():
    yield real[0]
    yield real[1]
    os.kill(os.getpid(), signal.SIGKILL)

sql.serving_statements = statements
ServingCopies(Warehouse(sys.argv[1])).ensure_newest()
"""


def test_a_killed_build_leaves_no_file_a_reader_opens(
    warehouse: Warehouse, settings: Settings
) -> None:
    from propsync.api.reader import PublishedReader

    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1)])
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_BUILD, str(warehouse.root)], check=False, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    leftovers = sorted(p.name for p in warehouse.serving_dir.iterdir() if p.name != "tmp")
    assert ".v000001.duckdb.tmp" in leftovers and "build.lock" in leftovers
    assert not [n for n in leftovers if n.startswith("v")]  # nothing under a reader's name
    copies = ServingCopies(warehouse)
    assert copies.versions() == [] and copies.newest() is None
    # A reader serves the published file meanwhile; its own build removes the leftovers.
    reader = PublishedReader(warehouse, poll_seconds=0.05)
    try:
        customer, version = reader.customer(CustomerRef("registered", "a"))
        assert version == 1 and customer.properties[0].value == "1"
        assert reader.wait_for(1, 30, indexed=True)
        assert reader.builds == 1
    finally:
        reader.close()
    assert sorted(p.name for p in warehouse.serving_dir.iterdir() if p.name != "tmp") == [
        "build.lock",
        "v000001.duckdb",
    ]
    assert indexes_of(copies.path(1)) == INDEXES


def test_leftovers_of_a_crashed_publish_are_removed(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1)], publish=False)
    # A publish of version 1 killed while copying: its partial copy is left behind.
    warehouse.published_dir.mkdir(parents=True)
    (warehouse.published_dir / ".v000001.duckdb.tmp").write_bytes(b"partial copy")
    (warehouse.published_dir / ".v000001.duckdb.tmp.wal").write_bytes(os.urandom(4096))
    assert publish_pending(warehouse, settings) == 1
    assert sorted(p.name for p in warehouse.published_dir.iterdir()) == ["v000001.duckdb"]
    assert indexes_of(warehouse.published_file()) == set()
    with warehouse.connect_published() as con:
        assert get_customer(con, CustomerRef("registered", "a")).properties[0].value == "1"


def test_index_build_runs_under_the_writers_memory_limit(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "wh")
    settings = Settings(warehouse=warehouse.root, duckdb_memory_limit="32MB")
    populate(warehouse, settings)
    # The service builds its serving copies under the writer's limit.
    service = Service(ServiceConfig(), settings, journal=None)
    try:
        assert service.reader.copies.memory_limit == "32MB"
        copy = service.reader.copies.ensure_newest()
    finally:
        service.reader.close()
    assert copy.built and indexes_of(copy.path) == INDEXES
