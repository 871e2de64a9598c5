"""The HTTP service's read model (``propsync.store.read_model``) against real DuckDB warehouses and
a real SQLite file: it answers exactly as the published version, after every batch, whether it
followed each run, several at once or rebuilt; crashes (kill -9) while following or building
leave a model that is whole; pruned runs and recreated warehouses rebuild; one process builds.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from propsync import sql
from propsync.api.config import ServiceConfig
from propsync.api.service import Service
from propsync.config import Settings
from propsync.errors import NotPublished, UnknownCustomer
from propsync.store import read_model, runs
from propsync.store.apply import publish_pending
from propsync.store.compaction import compact
from propsync.store.read import CustomerRef, get_customer, render_customer
from propsync.store.read_model import ReadModel, connect_reader
from propsync.store.warehouse import Warehouse
from tests.helpers import FOLLOWED_TABLES as FOLLOWED, apply, without_batch_ids
from tests.store import test_runs
from tests.store.test_order_independence import update_st
from tests.store.test_runs import Tables

INDEX_LIST = "SELECT index_name, table_name FROM duckdb_indexes()"


def model_tables(model: ReadModel) -> Tables:
    con = connect_reader(model.path)
    try:
        return {
            "customer_ids": set(con.execute(FOLLOWED["customer_ids"]).fetchall()),
            "customer_aliases": set(con.execute(FOLLOWED["customer_aliases"]).fetchall()),
            # What reads see: the newest recent segment's row, else properties' row.
            "properties": set(con.execute(sql.load("read_model/current_properties"))),
        }
    finally:
        con.close()


def stored(wh: Warehouse) -> Tables:
    """The published tables as the read model holds them (no batch ids)."""
    return without_batch_ids(test_runs.stored(wh))


def fold(root: Path, version: int) -> Tables:
    return without_batch_ids(test_runs.fold(root, version))


def version_of(model: ReadModel) -> int:
    state = model.state()
    assert state is not None
    return state.version


def populate(warehouse: Warehouse, settings: Settings) -> None:
    """Customers with several id types, a merge (an alias), a legacy value and a customer with
    many properties."""
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


def refs_of(warehouse: Warehouse) -> list[str]:
    with warehouse.connect_published() as con:
        internal = [r[0] for r in con.execute("SELECT customer_id FROM customer_ids").fetchall()]
        aliases = [
            r[0] for r in con.execute("SELECT old_customer_id FROM customer_aliases").fetchall()
        ]
        external = [
            f"{t}:{v}"
            for t, v in con.execute("SELECT id_type, id_value FROM customer_ids").fetchall()
        ]
    assert aliases, "the data must merge customers"
    return sorted({*internal, *aliases, *external, "registered:nobody", "0" * 32, "cookie:"})


def test_point_reads_equal_get_customer_on_the_published_version(populated: Warehouse) -> None:
    model = ReadModel(populated)
    result = model.follow()
    assert result is not None and result.rebuilt and result.version == 5
    refs = refs_of(populated)
    assert len(refs) > 150
    con = connect_reader(model.path)
    try:
        with populated.connect_published() as duck:
            for text in refs:
                ref = CustomerRef.parse(text)
                try:
                    expected = get_customer(duck, ref)
                except UnknownCustomer:
                    with pytest.raises(UnknownCustomer):
                        read_model.get_customer(con, ref)
                    continue
                ours, version = read_model.get_customer(con, ref)
                assert version == 5
                assert ours == expected, text
                for ts in (False, True):
                    assert render_customer(ours, ts) == render_customer(expected, ts)
        lonely, _ = read_model.get_customer(con, CustomerRef.parse("cookie:lonely"))
        u1, _ = read_model.get_customer(con, CustomerRef.parse("registered:u1"))
        assert lonely == u1 and {p.name: p.value for p in u1.properties}["p0"] == '"merged"'
    finally:
        con.close()


def test_published_versions_and_the_work_database_carry_no_indexes(
    populated: Warehouse, settings: Settings
) -> None:
    for version in populated.published_dir.glob("*.duckdb"):
        with duckdb.connect(str(version), read_only=True) as con:
            assert con.execute(INDEX_LIST).fetchall() == []
    with populated.write_lock(settings.lock_timeout_seconds):
        con = populated.connect_work(None)
        try:
            assert con.execute(INDEX_LIST).fetchall() == []
        finally:
            con.close()


def test_the_model_file_layout(populated: Warehouse) -> None:
    model = ReadModel(populated)
    model.follow()
    con = connect_reader(model.path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
        tables = dict(con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        assert set(tables) == {
            "customer_ids",
            "customer_aliases",
            "customers",
            "property_names",
            "properties",
            "recent_properties",
            "recent_segments",
            "meta",
        }
        assert "WITHOUT ROWID" in tables["properties"]
        assert "WITHOUT ROWID" in tables["recent_properties"]
        indexes = {
            r[0]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            if not r[0].startswith("sqlite_autoindex")
        }
        assert indexes == {"customer_ids_by_customer", "customer_aliases_by_customer"}
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        assert meta["version"] == "5" and meta["format"] == read_model.FORMAT
        assert meta["run_stamp"] == read_model.run_stamp(populated.root, 5) != "none"
    finally:
        con.close()
    # Nothing of the build is left over.
    assert not [p.name for p in model.dir.iterdir() if p.name.startswith(".")]


def keys_of(model: ReadModel) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    con = connect_reader(model.path)
    try:
        return (
            con.execute("SELECT customer_key, customer_id FROM customers ORDER BY 1").fetchall(),
            con.execute("SELECT property_key, property FROM property_names ORDER BY 1").fetchall(),
        )
    finally:
        con.close()


def warehouse_keys(warehouse: Warehouse) -> list[tuple[int, str]]:
    """Every customer holding an id, by its key in the working database."""
    con = duckdb.connect(str(warehouse.work_path), read_only=True)
    try:
        return con.execute(
            "SELECT DISTINCT customer_key, customer_id FROM internal.customer_ids ORDER BY 1"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("batch_rows", [1, 7, read_model.BATCH_ROWS])
def test_the_model_keeps_the_warehouses_customer_keys_and_draws_name_keys_in_order(
    populated: Warehouse, settings: Settings, batch_rows: int
) -> None:
    model = ReadModel(populated, batch_rows=batch_rows)  # record batches cut customers apart
    model.follow()
    customers, names = keys_of(model)
    with populated.connect_published() as con:
        property_names = sorted(
            r[0] for r in con.execute("SELECT DISTINCT property FROM properties").fetchall()
        )
    assert customers == warehouse_keys(populated) != []
    assert names == list(enumerate(property_names, start=1))  # in name order
    assert model_tables(model) == stored(populated)

    # A follow takes the keys of new customers from the runs' id rows, and draws the next name
    # keys.
    apply(populated, settings, "n1", [({"registered": "new1"}, "fresh", 1, 1.9e9)])
    apply(populated, settings, "n2", [({"registered": "u3"}, "p0", 2, 1.9e9)])
    apply(populated, settings, "n3", [({"registered": "new2"}, "fresh", 3, 1.9e9)])
    model.follow()
    after_customers, after_names = keys_of(model)
    assert after_customers == warehouse_keys(populated)
    assert len(after_customers) == len(customers) + 2
    assert after_names == [*names, (len(names) + 1, "fresh")]
    assert model_tables(model) == stored(populated)


def test_nothing_published_builds_nothing(warehouse: Warehouse) -> None:
    model = ReadModel(warehouse)
    assert model.follow() == read_model.FollowResult(0)
    assert not model.exists()
    with pytest.raises(NotPublished):
        model._build("test", None, live=False)


# -- after every batch ---------------------------------------------------------------------------

# What to do after a batch: nothing (the model falls behind: the next follow applies several
# runs), follow, rebuild from the published version, or compact the published files (which
# lets the runs go once keep_runs versions old) and follow.
action_st = st.sampled_from(["none", "follow", "follow", "rebuild", "compact"])


@hyp_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(st.lists(update_st, min_size=1, max_size=5), action_st), min_size=1, max_size=6
    ),
    keep_runs=st.sampled_from([1, 2, 1000]),
)
def test_the_model_equals_the_published_tables_after_every_follow(
    steps: list[tuple[list[Any], str]], keep_runs: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "wh")
        s = Settings(
            warehouse=wh.root,
            keep_runs=keep_runs,
            keep_published_versions=1,
            file_retention_seconds=0,
        )
        model = ReadModel(wh)
        for i, (updates, action) in enumerate(steps):
            apply(wh, s, f"b{i}", updates)
            if action == "none" and i < len(steps) - 1:
                continue
            if action == "compact":
                compact(wh, s, full=True)
            before = model.state()
            # Rebuilt exactly when asked, on the first follow, or when the run of the model's
            # version was pruned (it is how the model knows it follows the same warehouse).
            # Runs go only when no catalog lists them and they are keep_runs versions old.
            pruned = before is not None and not runs.run_path(wh.root, before.version).exists()
            if pruned:
                assert before is not None and before.version <= i + 1 - keep_runs
            result = model.follow(rebuild=action == "rebuild")
            assert result is not None and result.version == i + 1
            behind = 0 if before is None else i + 1 - before.version
            assert result.rebuilt == (action == "rebuild" or before is None or pruned), (
                result,
                behind,
            )
            if not result.rebuilt:
                assert result.runs == behind
            assert version_of(model) == i + 1
            assert model_tables(model) == stored(wh)


def test_following_needs_only_the_runs(populated: Warehouse, settings: Settings) -> None:
    model = ReadModel(populated)
    model.follow()
    apply(populated, settings, "b6", [({"registered": "u9"}, "p0", "new", 1_700_000_000)])
    apply(populated, settings, "b7", [({"cookie": "c2", "registered": "u9"}, "z", 1, 1.0)])
    # The published files are not needed to follow: the runs are enough.
    for path in populated.published_dir.iterdir():
        os.chmod(path, 0o000)
    try:
        result = model.follow()
    finally:
        for path in populated.published_dir.iterdir():
            os.chmod(path, 0o444)
    assert result is not None and (result.version, result.runs, result.rebuilt) == (7, 2, False)
    assert model_tables(model) == stored(populated) == fold(populated.root, 7)


@pytest.mark.parametrize("group_rows", [read_model.GROUP_ROWS, 1])
def test_a_follower_behind_applies_runs_together_and_a_merge_starts_a_new_group(
    populated: Warehouse, settings: Settings, monkeypatch: pytest.MonkeyPatch, group_rows: int
) -> None:
    monkeypatch.setattr(read_model, "GROUP_ROWS", group_rows)
    model = ReadModel(populated)
    model.follow()
    # 6-7: the same keys twice (the later run wins) and a new id; 8: a merge; 9-10: after it.
    apply(populated, settings, "b6", [({"registered": "u9"}, "p0", "six", 1_700_000_006)])
    apply(populated, settings, "b7", [({"registered": "u9", "email": "n@x"}, "p0", "7", 1.7e9 + 7)])
    apply(populated, settings, "b8", [({"cookie": "c2", "registered": "u9"}, "p1", 8, 1.7e9 + 8)])
    apply(populated, settings, "b9", [({"cookie": "c2"}, "p1", "nine", 1_700_000_009)])
    apply(populated, settings, "b10", [({"email": "n@x"}, "p2", 10, 1_700_000_010)])
    commits: list[str] = []
    model._open_writer().set_trace_callback(
        lambda statement: commits.append(statement) if statement == "COMMIT" else None
    )
    result = model.follow()
    assert result is not None and (result.version, result.runs, result.rebuilt) == (10, 5, False)
    assert len(commits) == (2 if group_rows > 1 else 5)  # 6-7 together, then 8-10 together
    assert model_tables(model) == stored(populated) == fold(populated.root, 10)


def test_runs_above_the_published_version_are_never_applied(
    populated: Warehouse, settings: Settings
) -> None:
    model = ReadModel(populated)
    model.follow()
    apply(
        populated,
        settings,
        "b6",
        [({"registered": "u9"}, "p0", "unpublished", 1.7e9)],
        publish=False,
    )
    assert runs.versions(populated.root)[-1] == 6 and populated.published_version() == 5
    result = model.follow()
    assert result is not None and (result.version, result.runs) == (5, 0)
    publish_pending(populated, settings)
    result = model.follow()
    assert result is not None and (result.version, result.runs) == (6, 1)
    assert model_tables(model) == stored(populated)


def test_without_apply_runs_a_follow_only_builds(populated: Warehouse, settings: Settings) -> None:
    # As a server worker while the applier's follower process runs: the runs are that one's.
    model = ReadModel(populated)
    result = model.follow(apply_runs=False)  # no model yet: a build is due, and builds
    assert result is not None and result.rebuilt and version_of(model) == 5
    apply(populated, settings, "b6", [({"registered": "u9"}, "p0", "new", 1_700_000_000)])
    result = model.follow(apply_runs=False)
    assert result is not None and (result.version, result.runs, result.reason) == (5, 0, "")
    assert version_of(model) == 5
    result = model.follow()
    assert result is not None and (result.version, result.runs) == (6, 1)
    assert model_tables(model) == stored(populated)


def test_without_apply_runs_a_missing_next_run_builds(
    populated: Warehouse, settings: Settings
) -> None:
    # The dedicated follower never builds: a model it cannot follow is the workers' to rebuild.
    model = ReadModel(populated)
    model.follow()
    for i in range(6, 8):
        apply(populated, settings, f"b{i}", [({"cookie": "c4"}, "n", i, float(i))])
    compact(populated, settings, full=True)
    os.unlink(runs.run_path(populated.root, 6))
    result = model.follow(apply_runs=False, build=False)
    assert result is not None and not result.rebuilt and version_of(model) == 5
    assert "the run of version 6 is not in" in result.reason
    result = model.follow(apply_runs=False)
    assert result is not None and result.rebuilt and version_of(model) == 7
    assert model_tables(model) == stored(populated)


# -- rebuilds ------------------------------------------------------------------------------------


def test_a_pruned_run_rebuilds(warehouse: Warehouse) -> None:
    settings = Settings(
        warehouse=warehouse.root, keep_runs=2, keep_published_versions=1, file_retention_seconds=0
    )
    model = ReadModel(warehouse)
    apply(warehouse, settings, "b1", [({"cookie": "a"}, "n", 1, 1.0)])
    model.follow()
    for i in range(2, 6):
        apply(warehouse, settings, f"b{i}", [({"cookie": "a"}, "n", i, float(i))])
    compact(warehouse, settings, full=True)  # then no catalog lists the old runs
    assert runs.versions(warehouse.root) == [4, 5]
    with pytest.raises(runs.RunMissing):
        runs.read_run(warehouse.root, 2)
    result = model.follow()
    assert result is not None and result.rebuilt and result.version == 5
    assert "the run file of its version 1 is not the one it applied" in result.reason
    assert model_tables(model) == stored(warehouse)


def test_a_missing_run_in_between_rebuilds(populated: Warehouse, settings: Settings) -> None:
    model = ReadModel(populated)
    model.follow()
    for i in range(6, 9):
        apply(populated, settings, f"b{i}", [({"cookie": "c4"}, "n", i, float(i))])
    compact(populated, settings, full=True)  # then the published version does not need run 7
    os.unlink(runs.run_path(populated.root, 7))
    result = model.follow(build=False)  # as an edit's follow: never builds
    assert result is not None and not result.rebuilt and result.runs == 1
    assert "the run of version 7 is not in" in result.reason and version_of(model) == 6
    result = model.follow()
    assert result is not None and result.rebuilt and result.version == 8
    assert model_tables(model) == stored(populated)


def test_a_recreated_warehouse_rebuilds(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    warehouse = Warehouse(root)
    settings = Settings(warehouse=root)
    model = ReadModel(warehouse)
    for i in range(3):
        apply(warehouse, settings, f"old{i}", [({"cookie": f"old{i}"}, "n", i, 1.0)])
    model.follow()
    assert version_of(model) == 3

    def recreate() -> None:
        # Everything but serving/: the warehouse starts again from version 1.
        for p in root.iterdir():
            if p.name == "serving":
                continue
            if p.is_dir() and not p.is_symlink():
                for q in sorted(p.rglob("*"), reverse=True):
                    q.unlink() if not q.is_dir() else q.rmdir()
                p.rmdir()
            else:
                p.unlink()

    recreate()
    apply(warehouse, settings, "new1", [({"cookie": "new"}, "n", 1, 1.0)])
    state = model.state()
    assert state is not None and "above the published version 1" in model.rebuild_reason(state, 1)
    result = model.follow()
    assert result is not None and result.rebuilt and result.version == 1
    assert model_tables(model) == stored(warehouse)
    # Recreated again, and this time it reaches the model's version and beyond before a follow:
    # the model's run file is another file, so it rebuilds instead of applying runs 2..4.
    recreate()
    for i in range(4):
        apply(warehouse, settings, f"again{i}", [({"cookie": f"again{i}"}, "n", i, 1.0)])
    result = model.follow()
    assert result is not None and result.rebuilt and "not the one it applied" in result.reason
    assert model_tables(model) == stored(warehouse)


def test_a_rebuild_is_atomic_for_open_readers(populated: Warehouse, settings: Settings) -> None:
    model = ReadModel(populated)
    model.follow()
    reader = connect_reader(model.path)
    try:
        reader.execute("BEGIN")
        before = reader.execute("SELECT count(*) FROM properties").fetchall()
        apply(populated, settings, "b6", [({"cookie": "fresh"}, "n", 1, 1.0)])
        result = model.follow(rebuild=True)
        assert result is not None and result.rebuilt
        # A reader in a transaction keeps its snapshot; the next one sees the rebuilt model.
        assert reader.execute("SELECT count(*) FROM properties").fetchall() == before
        reader.execute("COMMIT")
        after = reader.execute("SELECT count(*) FROM properties").fetchall()
        assert after[0][0] == before[0][0] + 1
        assert read_model.get_customer(reader, CustomerRef.parse("cookie:fresh"))[1] == 6
    finally:
        reader.close()
    assert model_tables(model) == stored(populated)


def test_a_model_of_another_layout_is_rebuilt(populated: Warehouse) -> None:
    model = ReadModel(populated)
    model.follow()
    con = sqlite3.connect(model.path)
    # As format 3 left it: properties keyed by text ids, no customers or property_names (a
    # model of format 4 has the tables of this one but keys of its own: rebuilt the same way).
    con.execute("DROP TABLE properties")
    con.execute("DROP TABLE customers")
    con.execute("DROP TABLE property_names")
    con.execute(
        "CREATE TABLE properties (customer_id TEXT NOT NULL, property TEXT NOT NULL,"
        " value TEXT NOT NULL, update_ts INTEGER, PRIMARY KEY (customer_id, property))"
        " WITHOUT ROWID"
    )
    con.execute("UPDATE meta SET value = '3' WHERE key = 'format'")
    con.commit()
    con.close()
    result = model.follow()
    assert result is not None and result.rebuilt
    assert result.reason == f"its layout is '3', this release's is {read_model.FORMAT!r}"
    con = sqlite3.connect(model.path)
    columns = [row[1] for row in con.execute("PRAGMA table_info(properties)")]
    con.close()
    assert columns == ["customer_key", "property_key", "value", "update_ts"]
    assert model_tables(model) == stored(populated)


# -- one builder, concurrent readers -------------------------------------------------------------

_FOLLOW_IN_A_PROCESS = """
import json, sys
from propsync.store.read_model import ReadModel
from propsync.store.warehouse import Warehouse

sys.stdin.readline()  # start together
result = ReadModel(Warehouse(sys.argv[1])).follow(lock_timeout=120)
print(json.dumps({"version": result.version, "rebuilt": result.rebuilt, "runs": result.runs}))
"""


def test_processes_racing_build_the_model_once(populated: Warehouse, settings: Settings) -> None:
    for round_ in range(2):
        if round_:
            apply(populated, settings, "race", [({"registered": "r"}, "n", 1, 1e9)])
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _FOLLOW_IN_A_PROCESS, str(populated.root)],
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
        if round_ == 0:
            assert sum(r["rebuilt"] for r in results) == 1, results
        else:  # the run applied once, by whichever got the lock first
            assert sum(r["rebuilt"] for r in results) == 0
            assert sum(r["runs"] for r in results) == 1, results
    assert model_tables(ReadModel(populated)) == stored(populated)


def test_readers_see_whole_versions_while_the_model_follows(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "r"}, "n", 0, 1)])
    model = ReadModel(warehouse)
    model.follow()
    seen: list[list[tuple[int, int, int]]] = [[], [], []]
    errors: list[BaseException] = []
    done = threading.Event()

    def read(mine: list[tuple[int, int, int]]) -> None:
        con = connect_reader(model.path)
        try:
            while not done.is_set():
                customer, version = read_model.get_customer(con, CustomerRef("registered", "r"))
                props = {p.name: int(p.value) for p in customer.properties}
                mine.append((version, props["n"], props.get("m", -1)))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            con.close()

    threads = [threading.Thread(target=read, args=(mine,)) for mine in seen]
    for t in threads:
        t.start()
    try:
        for n in range(1, 12):
            # Two properties per batch: a reader must never see one without the other.
            apply(
                warehouse,
                settings,
                f"b{n + 1}",
                [({"registered": "r"}, "n", n, 1 + n), ({"registered": "r"}, "m", n, 1 + n)],
            )
            if n % 3 == 0:
                model.follow()  # several versions at once
        model.follow()
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors, errors
    for mine in seen:
        assert mine
        # Version v holds batch v's values (both of them; no m before version 2).
        assert all(n == v - 1 and m == (n if v > 1 else -1) for v, n, m in mine)
        versions = [v for v, _, _ in mine]
        assert versions == sorted(versions)  # never back to an older version
    assert len({v for mine in seen for v, _, _ in mine}) > 2  # reads went on while it followed
    assert version_of(model) == 12


# -- crashes -------------------------------------------------------------------------------------

# Follow (or build), and SIGKILL the process the ``kill_at``-th time the named statement is loaded:
# in the middle of a run's transaction (its rows written, meta.version not yet), or of a build.
# ``constants`` overrides read_model's (GROUP_ROWS, the segments' thresholds); ``maintain``
# follows with maintenance steps until killed.
_KILLED = """
import json, os, signal, sys
from propsync import sql
from propsync.store import read_model
from propsync.store.read_model import ReadModel
from propsync.store.warehouse import Warehouse

root, name, kill_at, rebuild = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
constants, maintain = json.loads(sys.argv[5]), sys.argv[6] == "1"
for key, value in constants.items():
    setattr(read_model, key, value)
count = 0


class Killing:
    def __getattr__(self, attr):
        return getattr(sql, attr)

    def load(self, n):
        global count
        if n == name:
            count += 1
            if count == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return sql.load(n)

    def folder_statements(self, n):
        if n == name:
            os.kill(os.getpid(), signal.SIGKILL)
        return sql.folder_statements(n)


read_model.sql = Killing()
model = ReadModel(Warehouse(root))
for _ in range(1000 if maintain else 1):
    model.follow(rebuild=rebuild, maintain=maintain)
raise SystemExit("not killed")
"""


def run_killed(
    warehouse: Warehouse,
    name: str,
    kill_at: int = 1,
    rebuild: bool = False,
    constants: dict[str, int] | None = None,
    maintain: bool = False,
) -> None:
    args = [str(warehouse.root), name, str(kill_at), str(int(rebuild))]
    args += [json.dumps(constants or {}), str(int(maintain))]
    done = subprocess.run(
        [sys.executable, "-c", _KILLED, *args],
        check=False,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_a_follow_killed_mid_run_leaves_the_last_whole_version(
    populated: Warehouse, settings: Settings
) -> None:
    model = ReadModel(populated)
    model.follow()
    apply(populated, settings, "b6", [({"cookie": "c2", "registered": "u9"}, "p0", "m", 2e9)])
    apply(populated, settings, "b7", [({"cookie": "c4", "registered": "u11"}, "p1", "k", 2e9)])
    # set_meta is loaded after each run's rows: the 2nd time is in run 7's transaction.
    run_killed(populated, "read_model/set_meta", kill_at=2)
    assert version_of(model) == 6
    assert model_tables(model) == fold(populated.root, 6)
    result = model.follow()
    assert result is not None and (result.version, result.runs, result.rebuilt) == (7, 1, False)
    assert model_tables(model) == stored(populated)


def test_a_first_build_killed_leaves_no_model_and_the_next_build_cleans_up(
    populated: Warehouse,
) -> None:
    run_killed(populated, "read_model/indexes")  # all rows written, before its commit
    model = ReadModel(populated)
    assert not model.exists() and model.state() is None
    assert model.temp_path.exists()  # the partial file, under a name nobody opens
    result = model.follow()
    assert result is not None and result.rebuilt
    assert not model.temp_path.exists()
    assert model_tables(model) == stored(populated)


def test_a_rebuild_killed_leaves_the_model_it_had(populated: Warehouse, settings: Settings) -> None:
    model = ReadModel(populated)
    model.follow()
    before = model_tables(model)
    apply(populated, settings, "b6", [({"cookie": "fresh"}, "n", 1, 1.0)])
    run_killed(populated, "read_model/published_properties", rebuild=True)
    assert version_of(model) == 5 and model_tables(model) == before
    result = model.follow()  # catches up on the run, and removes the partial file
    assert result is not None and (result.version, result.rebuilt) == (6, False)
    assert model_tables(model) == stored(populated)


def test_a_failed_build_leaves_nothing_behind(
    populated: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sql.load

    def broken(name: str) -> str:
        if name == "read_model/published_properties":
            return "SELECT * FROM no_such_table"
        return real(name)

    monkeypatch.setattr(read_model.sql, "load", broken)
    model = ReadModel(populated)
    with pytest.raises(duckdb.CatalogException):
        model.follow()
    assert not model.exists()
    assert sorted(p.name for p in model.dir.iterdir() if p.name != "tmp") == ["read_model.lock"]
    monkeypatch.undo()
    assert model.follow() is not None and model_tables(model) == stored(populated)


def test_the_service_builds_under_the_writers_memory_limit(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "wh")
    settings = Settings(warehouse=warehouse.root, duckdb_memory_limit="32MB")
    populate(warehouse, settings)
    service = Service(ServiceConfig(), settings, journal=None)
    try:
        assert service.reader.model.memory_limit == "32MB"
        _, duck = service.reader.model._open_published()
        try:
            limit = duck.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        finally:
            duck.close()
        assert limit in ("32.0 MiB", "30.5 MiB", "32.0 MB"), limit
    finally:
        service.reader.close()


def test_leftovers_of_a_crashed_publish_are_removed(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1)], publish=False)
    # A publish of version 1 killed while copying: its partial copy is left behind.
    warehouse.published_dir.mkdir(parents=True)
    (warehouse.published_dir / ".v000001.duckdb.tmp").write_bytes(b"partial copy")
    (warehouse.published_dir / ".v000001.duckdb.tmp.wal").write_bytes(os.urandom(4096))
    assert publish_pending(warehouse, settings) == 1
    assert sorted(p.name for p in warehouse.published_dir.glob("*.duckdb")) == ["v000001.duckdb"]
    with warehouse.connect_published() as con:
        assert get_customer(con, CustomerRef("registered", "a")).properties[0].value == "1"
