"""The writer's DuckDB instance (``Warehouse.keep_writer_instance``): one instance per process,
``work.duckdb`` attached only while the write lock is held and detached before it is released,
so another process can write (or open the file) as soon as the lock is free."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest

from propsync.config import Settings
from propsync.errors import DatabaseInUse
from propsync.store.warehouse import Warehouse
from tests.api.conftest import AUTH, start_server
from tests.helpers import apply, published_state, wait_for

# Another process opens work.duckdb read-write, writes one row through the product's apply path
# (its own Warehouse, no writer instance) and prints the published version.
WRITE_ELSEWHERE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from propsync.config import Settings
    from propsync.store.warehouse import Warehouse
    from tests.helpers import apply
    root = Path(sys.argv[1])
    result = apply(
        Warehouse(root),
        Settings(warehouse=root, lock_timeout_seconds=30),
        sys.argv[2],
        [({"registered": sys.argv[2]}, "from", "elsewhere", 1_600_000_100)],
    )
    print(result.status, result.published_version)
    """
)


def _write_elsewhere(root: Path, batch_id: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", WRITE_ELSEWHERE, str(root), batch_id],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _open_elsewhere(path: Path) -> subprocess.CompletedProcess[str]:
    """Open ``path`` read-write in another process and count its customers."""
    code = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
    code += "print(c.execute('SELECT count(*) FROM customer_keys').fetchall()[0][0])"
    return subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_attached_only_under_the_lock(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    warehouse, settings = Warehouse(root), Settings(warehouse=root)
    writer = warehouse.keep_writer_instance()
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1_600_000_000)])
    assert writer.attached is None and writer.attaches == 1
    with warehouse.write_lock(5):
        con = warehouse.connect_work(None)
        try:
            assert writer.attached == warehouse.work_path
            assert con.execute("SELECT current_database()").fetchall() == [("work",)]
            assert Warehouse.work_version(con) == 1
            # While it is attached no other process can open the file.
            held = _open_elsewhere(warehouse.work_path)
            assert held.returncode != 0 and "Could not set lock" in held.stderr
        finally:
            con.close()
        assert writer.attached == warehouse.work_path  # until the lock is released
    assert writer.attached is None and writer.attaches == 2
    opened = _open_elsewhere(warehouse.work_path)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.strip() == "1"
    warehouse.close_writer_instance()


def test_detached_when_the_batch_fails(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    warehouse, settings = Warehouse(root), Settings(warehouse=root)
    writer = warehouse.keep_writer_instance()
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1_600_000_000)])
    with pytest.raises(RuntimeError), warehouse.write_lock(5):
        con = warehouse.connect_work(None)
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM property_values")
        raise RuntimeError("a writer fails inside its transaction")  # con is never closed
    assert writer.attached is None
    assert _open_elsewhere(warehouse.work_path).returncode == 0
    # The next write of this process still works, and nothing of the failed one was kept.
    apply(warehouse, settings, "b2", [({"registered": "b"}, "p", 2, 1_600_000_001)])
    assert published_state(warehouse) == {
        frozenset({("registered", "a")}): {"p": (1, 1_600_000_000_000_000)},
        frozenset({("registered", "b")}): {"p": (2, 1_600_000_001_000_000)},
    }


def test_same_state_as_a_connection_per_batch(tmp_path: Path) -> None:
    updates = [
        [({"registered": "a", "cookie": "c1"}, "name", "A", 1_600_000_000)],
        [({"cookie": "c2"}, "name", "C2", 1_600_000_001), ({"email": "e"}, "age", 3, None)],
        [({"registered": "a", "cookie": "c2"}, "city", "Brno", 1_600_000_002)],  # a merge
        [({"registered": "a"}, "name", "older", 1_500_000_000)],  # stale
    ]
    states = []
    for shared in (True, False):
        root = tmp_path / f"wh-{shared}"
        warehouse, settings = Warehouse(root), Settings(warehouse=root)
        if shared:
            warehouse.keep_writer_instance()
        for i, batch in enumerate(updates):
            apply(warehouse, settings, f"b{i}", batch)
        # The catalogs written through the writer instance (attached, not connected) have the
        # same views: every documented one reads the same rows.
        with warehouse.connect_published() as con:
            views = {
                name: sorted(
                    map(repr, con.execute(f"SELECT * EXCLUDE (customer_id) FROM {name}").fetchall())
                )
                for name in ("customer_properties", "customers_wide", "customers")
            }
            views["batches"] = sorted(
                map(repr, con.execute("SELECT batch_id, status, version FROM batches").fetchall())
            )
        states.append((published_state(warehouse), views))
        warehouse.close_writer_instance()
    assert states[0] == states[1]


def test_in_use_elsewhere_is_database_in_use(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    warehouse, settings = Warehouse(root), Settings(warehouse=root)
    writer = warehouse.keep_writer_instance()
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1_600_000_000)])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(60)",
            str(warehouse.work_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DatabaseInUse) as caught, warehouse.write_lock(5):
            warehouse.connect_work(None)
        assert caught.value.to_dict()["pid"] == holder.pid
        assert writer.attached is None
    finally:
        holder.kill()
        holder.wait()
    apply(warehouse, settings, "b2", [({"registered": "a"}, "p", 2, 1_600_000_001)])
    with duckdb.connect(str(warehouse.work_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM batches").fetchall() == [(2,)]


def test_another_process_writes_between_the_servers_edits(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    root.mkdir()
    apply(
        Warehouse(root),
        Settings(warehouse=root),
        "seed",
        [({"registered": "ann"}, "name", "Ann", 1_600_000_000)],
    )
    server = start_server(root)
    try:
        c = server.client(AUTH)
        r = c.patch("/api/customers/registered:ann", json={"properties": {"name": "Anna"}})
        assert r.status_code == 200, r.text
        # The server released the lock and detached: another process writes at once.
        assert _write_elsewhere(root, "other-1") == "applied 3"
        r = c.patch("/api/customers/registered:ann", json={"properties": {"city": "Brno"}})
        assert r.status_code == 200, r.text
        assert r.json()["properties"]["name"]["value"] == "Anna"
        assert _write_elsewhere(root, "other-2") == "applied 5"
        server.wait_serving()
        got = c.get("/api/customers/registered:other-2")
        assert got.status_code == 200 and got.json()["properties"] == {"from": "elsewhere"}
        assert c.get("/api/customers/registered:ann").json()["properties"] == {
            "city": "Brno",
            "name": "Anna",
        }
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log_text()


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


@pytest.mark.parametrize("limit", ["none", "64MB"])
def test_the_writer_memory_limit_is_applied_or_lifted(
    warehouse: Warehouse, settings: Settings, limit: str
) -> None:
    con = warehouse.connect_work(limit)
    try:
        value = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    finally:
        con.close()
    default = duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert value == (default if limit == "none" else "61.0 MiB")
    assert Settings().duckdb_memory_limit == "768MB"
