"""Schema versions and in-place upgrades, on a warehouse written by release 0.1.0.

``tests/fixtures/warehouse-0.1.0.tar.gz`` is ``propsync demo`` run by release 0.1.0 (commit
0024b19): it records no schema version and leaves its published versions writable.
"""

from __future__ import annotations

import json
import logging
import stat
import tarfile
from pathlib import Path

import duckdb
import pytest

from propsync.cli import main
from propsync.config import Settings
from propsync.store import migrations
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, published_state

FIXTURE = Path(__file__).parents[1] / "fixtures" / "warehouse-0.1.0.tar.gz"
NOTICE = "upgrading warehouse"


def unpack(tarball: Path, root: Path) -> Path:
    """A warehouse fixture (``tests/fixtures/*.tar.gz``) unpacked at ``root``."""
    root.mkdir()
    with tarfile.open(tarball) as tar:
        tar.extractall(root, filter="tar")
    return root


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    return unpack(FIXTURE, tmp_path / "legacy")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def recorded_version(root: Path) -> int:
    with duckdb.connect(str(root / "work.duckdb"), read_only=True) as con:
        return migrations.schema_version(con)


def published_modes(root: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in (root / "published").glob("v*")}


def test_the_fixture_is_a_legacy_warehouse(legacy: Path) -> None:
    assert recorded_version(legacy) == 0
    assert set(published_modes(legacy).values()) == {0o644}


def test_migrate_upgrades_in_place_and_keeps_the_data(
    legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = run(
        capsys, "get", "registered:mgalik", "--include-timestamps", "--warehouse", str(legacy)
    )
    assert before[0] == 0

    code, out, _ = run(capsys, "migrate", "--warehouse", str(legacy))

    assert code == 0
    assert (
        out == f"upgraded warehouse {legacy} from schema version 0 to {migrations.SCHEMA_VERSION}\n"
    )
    assert recorded_version(legacy) == migrations.SCHEMA_VERSION == 5
    assert set(published_modes(legacy).values()) == {0o444}
    after = run(
        capsys, "get", "registered:mgalik", "--include-timestamps", "--warehouse", str(legacy)
    )
    assert after == before
    code, out, _ = run(capsys, "migrate", "--warehouse", str(legacy))
    assert (code, out) == (
        0,
        f"warehouse {legacy} is at schema version {migrations.SCHEMA_VERSION}: up to date\n",
    )


def test_the_first_write_upgrades_with_one_log_line(
    legacy: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="propsync.migrations"):
        code, _, _ = run(capsys, "set", "registered:mgalik", "age:=41", "--warehouse", str(legacy))
        assert code == 0
        notices = [r.getMessage() for r in caplog.records if NOTICE in r.getMessage()]
        assert notices == [
            f"propsync: upgrading warehouse {legacy} from schema version 0 to 5: "
            "published versions read-only; schema version recorded; integer keys for customers "
            "and property names; published versions are catalogs over Parquet files, not copies; "
            "customer ids looked up by a sorted hash; published files carry customer keys"
        ]
        caplog.clear()
        code, _, _ = run(capsys, "set", "registered:mgalik", "age:=42", "--warehouse", str(legacy))
        assert code == 0
        assert not [r for r in caplog.records if NOTICE in r.getMessage()]
    assert recorded_version(legacy) == migrations.SCHEMA_VERSION
    code, out, _ = run(capsys, "get", "registered:mgalik", "--warehouse", str(legacy))
    assert code == 0 and '"age": 42' in out and '"first_name": "Marián"' in out


def test_a_new_warehouse_is_stamped_current_without_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "new"
    with caplog.at_level(logging.WARNING, logger="propsync.migrations"):
        code, _, _ = run(capsys, "set", "registered:x", "a=1", "--warehouse", str(root))
    assert code == 0
    assert not [r for r in caplog.records if NOTICE in r.getMessage()]
    assert recorded_version(root) == migrations.SCHEMA_VERSION


def test_a_crash_inside_an_upgrade_is_redone_by_the_next_writer(
    legacy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = migrations.MIGRATIONS[0]

    def crash_after_the_file_changes(root: Path, con: duckdb.DuckDBPyConnection) -> None:
        step.apply(root, con)
        raise KeyboardInterrupt  # killed before the new version is recorded

    monkeypatch.setitem(
        migrations.MIGRATIONS,
        0,
        migrations.Migration(0, step.description, crash_after_the_file_changes),
    )
    warehouse = Warehouse(legacy)
    with pytest.raises(KeyboardInterrupt), warehouse.write_lock(5):
        warehouse.connect_work(None)
    assert recorded_version(legacy) == 0

    monkeypatch.setitem(migrations.MIGRATIONS, 0, step)
    result = migrations.migrate(Warehouse(legacy), Settings(lock_timeout_seconds=5))
    assert (result.from_version, result.to_version) == (0, migrations.SCHEMA_VERSION)
    assert recorded_version(legacy) == migrations.SCHEMA_VERSION
    assert set(published_modes(legacy).values()) == {0o444}


def test_a_warehouse_from_a_newer_release_is_refused_untouched(
    legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with duckdb.connect(str(legacy / "work.duckdb")) as con:
        con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    before = (legacy / "work.duckdb").read_bytes()

    code, _, err = run(capsys, "set", "registered:mgalik", "age:=1", "--warehouse", str(legacy))

    assert code == 2
    assert err == (
        f"propsync: error: warehouse {str(legacy)!r} has schema version 99; this propsync "
        f"writes version {migrations.SCHEMA_VERSION}: upgrade propsync to use it\n"
    )
    assert (legacy / "work.duckdb").read_bytes() == before


def test_migrate_refuses_a_directory_without_a_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "migrate", "--warehouse", str(tmp_path / "nothing"))
    assert code == 2
    assert f"warehouse directory {str(tmp_path / 'nothing')!r} does not exist" in err
    assert not (tmp_path / "nothing").exists()
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "migrate", "--warehouse", str(tmp_path / "empty"))
    assert code == 2
    assert "has no working database (work.duckdb): nothing to migrate" in err


# -- layout 1 (text keys) to layout 2 (integer keys) ----------------------------------------------

LAYOUT1 = Path(__file__).parents[1] / "fixtures" / "warehouse-layout1.tar.gz"
# What readers and analysts query: the same rows before and after the upgrade.
READER_QUERIES = {
    "customer_ids": "SELECT id_type, id_value, customer_id, batch_id FROM customer_ids",
    "customer_aliases": "SELECT old_customer_id, customer_id, batch_id FROM customer_aliases",
    "properties": "SELECT customer_id, property, value, update_ts, batch_id FROM properties",
    "customer_properties": "SELECT * FROM customer_properties",
    "customers_wide": "SELECT * FROM customers_wide",
}


@pytest.fixture
def layout1(tmp_path: Path) -> Path:
    """``tests/fixtures/build_warehouse.py`` run by the code before integer keys: the demo,
    two merges (one repointing an alias), odd property names, a legacy value, and a committed
    batch that was never published."""
    return unpack(LAYOUT1, tmp_path / "layout1")


def reader_rows(db: Path) -> dict[str, set[tuple[object, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: set(con.execute(q).fetchall()) for name, q in READER_QUERIES.items()}


def test_the_layout1_fixture_has_text_keyed_tables(layout1: Path) -> None:
    assert recorded_version(layout1) == 1
    with duckdb.connect(str(layout1 / "work.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        aliases = con.execute("SELECT count(*) FROM customer_aliases").fetchall()[0][0]
    assert {"customer_ids", "customer_aliases", "properties"} <= tables
    assert aliases == 2


def test_integer_keys_upgrade_keeps_every_row_readers_see(
    layout1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = reader_rows(layout1 / "work.duckdb")
    code, out, _ = run(capsys, "migrate", "--warehouse", str(layout1))
    assert (code, out) == (
        0,
        f"upgraded warehouse {layout1} from schema version 1 to {migrations.SCHEMA_VERSION}\n",
    )
    assert recorded_version(layout1) == migrations.SCHEMA_VERSION
    after = reader_rows(layout1 / "work.duckdb")
    assert after == before
    with duckdb.connect(str(layout1 / "work.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = 'property_values'"
            ).fetchall()
        )
    assert not {"customer_ids", "customer_aliases", "properties"} & tables  # views now
    assert types["customer_key"] == "BIGINT" and types["property_id"] == "INTEGER"
    with duckdb.connect(str(layout1 / "work.duckdb"), read_only=True) as con:
        # (Layout 1's customers view failed on a customer with two ids of one type.)
        merged = con.execute(
            "SELECT ids['cookie'], property_count FROM customers WHERE list_contains(ids['cookie'], 'k1')"
        ).fetchall()
    assert merged == [(["k1", "k2"], 5)]


def test_writes_after_the_upgrade_continue_the_keys_and_merge_old_customers(
    layout1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate", "--warehouse", str(layout1))[0] == 0
    with duckdb.connect(str(layout1 / "work.duckdb"), read_only=True) as con:
        top = con.execute("SELECT max(customer_key) FROM customer_keys").fetchall()[0][0]
        names = con.execute("SELECT max(property_id) FROM property_names").fetchall()[0][0]
    # k3 (committed, never published, before the upgrade) merges with registered:mgalik.
    settings = Settings(warehouse=layout1)
    merge = [({"cookie": "k3", "registered": "mgalik"}, "brand_new", 1, 100.0)]
    assert apply(Warehouse(layout1), settings, "after-upgrade", merge).status == "applied"
    code, out, _ = run(capsys, "get", "cookie:k3", "--warehouse", str(layout1))
    assert code == 0
    got = json.loads(out)
    assert got["properties"]["brand_new"] == 1
    assert got["properties"]["first_name"] == "Marián"  # mgalik's, from before the upgrade
    assert got["properties"]["name"] == "C"  # k3's, committed before the upgrade
    assert set(got["ids"]) >= {"cookie", "registered"}
    with duckdb.connect(str(layout1 / "work.duckdb"), read_only=True) as con:
        assert (
            con.execute("SELECT max(property_id) FROM property_names").fetchall()[0][0] == names + 1
        )
        # The merged-away customer keeps its key; no new customer was created.
        assert con.execute("SELECT max(customer_key) FROM customer_keys").fetchall()[0][0] == top
        # An alias made before the upgrade still resolves.
        old = con.execute("SELECT old_customer_id FROM customer_aliases LIMIT 1").fetchall()[0][0]
    assert run(capsys, "get", old, "--warehouse", str(layout1))[0] == 0
    code, _, _ = run(capsys, "set", "cookie:brand-new", "x:=1", "--warehouse", str(layout1))
    with duckdb.connect(str(layout1 / "work.duckdb"), read_only=True) as con:
        assert (
            con.execute("SELECT max(customer_key) FROM customer_keys").fetchall()[0][0] == top + 1
        )


def test_a_crash_inside_the_integer_keys_upgrade_leaves_layout1_whole(
    layout1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = reader_rows(layout1 / "work.duckdb")
    step = migrations.MIGRATIONS[1]

    def crash_midway(root: Path, con: duckdb.DuckDBPyConnection) -> None:
        # The data is copied and the old tables dropped, then the process dies.
        step.apply(root, con)
        raise KeyboardInterrupt

    monkeypatch.setitem(
        migrations.MIGRATIONS, 1, migrations.Migration(1, step.description, crash_midway)
    )
    warehouse = Warehouse(layout1)
    with pytest.raises(KeyboardInterrupt), warehouse.write_lock(5):
        warehouse.connect_work(None)
    assert recorded_version(layout1) == 1
    assert reader_rows(layout1 / "work.duckdb") == before
    monkeypatch.setitem(migrations.MIGRATIONS, 1, step)
    assert (
        migrations.migrate(Warehouse(layout1), Settings(lock_timeout_seconds=5)).to_version
        == migrations.SCHEMA_VERSION
    )
    assert reader_rows(layout1 / "work.duckdb") == before


def test_migrate_publishes_the_first_catalog_with_every_row_readers_see(
    layout1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published_before = reader_rows((layout1 / "propsync.duckdb").resolve())
    assert Warehouse(layout1).current_manifest() is None  # a full copy of layout 1
    assert run(capsys, "migrate", "--warehouse", str(layout1))[0] == 0
    warehouse = Warehouse(layout1)
    manifest = warehouse.current_manifest()
    assert manifest is not None and len(manifest.segments) == 1  # the whole state, once
    # The copy was of the last published version; the working database had one more batch
    # (k3's), committed but not published: the catalog is of the working database.
    published_after = reader_rows(warehouse.published_file())
    assert published_after == reader_rows(layout1 / "work.duckdb")
    assert published_after != published_before
    code, out, _ = run(capsys, "migrate", "--warehouse", str(layout1))
    assert (code, out) == (
        0,
        f"warehouse {layout1} is at schema version {migrations.SCHEMA_VERSION}: up to date\n",
    )


def test_id_hashes_upgrade_of_a_layout3_warehouse_finds_every_known_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Layout 3 (today's warehouses until id_hashes) joined ids on text; after the upgrade every
    stored id is found by its hash, so a write under a known id creates no customer."""
    root = tmp_path / "layout3"
    warehouse, settings = Warehouse(root), Settings(warehouse=root)
    updates = [({"registered": f"u{k}", "cookie": f"c{k}"}, "n", k, 1.0 + k) for k in range(50)]
    apply(warehouse, settings, "b1", updates)
    apply(warehouse, settings, "b2", [({"registered": "u1", "cookie": "c-new"}, "n", 100, 500.0)])
    with duckdb.connect(str(root / "work.duckdb")) as con:  # back to layout 3
        con.execute("DROP TABLE id_hashes")
        con.execute("DROP MACRO id_hash")
        con.execute("DELETE FROM meta WHERE key IN ('schema_version', 'schema_digest')")
        con.execute("INSERT INTO meta VALUES ('schema_version', '3')")
        customers_before = con.execute("SELECT count(*) FROM customer_keys").fetchall()

    code, out, _ = run(capsys, "migrate", "--warehouse", str(root))
    assert (code, out) == (
        0,
        f"upgraded warehouse {root} from schema version 3 to {migrations.SCHEMA_VERSION}\n",
    )
    with duckdb.connect(str(root / "work.duckdb"), read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT (id_hash, customer_key)) FROM id_hashes"
        ).fetchall() == [(101, 101)]
        hashes = [h for (h,) in con.execute("SELECT id_hash FROM id_hashes").fetchall()]
        assert hashes == sorted(hashes)
        assert con.execute(
            "SELECT count(*) FROM id_keys ANTI JOIN id_hashes "
            "ON id_hashes.id_hash = id_hash(id_keys.id_type, id_keys.id_value) "
            "AND id_hashes.customer_key = id_keys.customer_key"
        ).fetchall() == [(0,)]
    for ids in ({"cookie": "c7"}, {"registered": "u9"}, {"cookie": "c-new"}):
        apply(warehouse, settings, f"after-{sorted(ids.values())[0]}", [(ids, "n", -1, 1e3)])
    with duckdb.connect(str(root / "work.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM customer_keys").fetchall() == customers_before
    edited = {ids for ids, props in published_state(warehouse).items() if props["n"][0] == -1}
    assert edited == {
        frozenset({("registered", "u7"), ("cookie", "c7")}),
        frozenset({("registered", "u9"), ("cookie", "c9")}),
        frozenset({("registered", "u1"), ("cookie", "c1"), ("cookie", "c-new")}),
    }


# -- schema version 4 (published files by text id) to 5 (by customer key) --------------------------

LAYOUT4 = Path(__file__).parents[1] / "fixtures" / "warehouse-layout4.tar.gz"


@pytest.fixture
def layout4(tmp_path: Path) -> Path:
    """``tests/fixtures/build_warehouse.py --compact`` run by the code of schema version 4: the
    demo, a compacted base, runs after it with two merges (one repointing an alias), odd property
    names, a legacy value, and a committed batch that was never published."""
    return unpack(LAYOUT4, tmp_path / "layout4")


def published_rows(root: Path) -> dict[str, set[tuple[object, ...]]]:
    with Warehouse(root).connect_published() as con:
        return {name: set(con.execute(q).fetchall()) for name, q in READER_QUERIES.items()}


def test_keyed_files_upgrade_publishes_the_working_state_in_the_new_shape(
    layout4: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from propsync.store import catalog
    from propsync.store.read_model import ReadModel

    assert recorded_version(layout4) == 4
    manifest = Warehouse(layout4).current_manifest()
    assert manifest is not None and manifest.layout == 3 and len(manifest.segments) == 4
    before = reader_rows(layout4 / "work.duckdb")
    code, out, _ = run(capsys, "migrate", "--warehouse", str(layout4))
    assert (code, out) == (
        0,
        f"upgraded warehouse {layout4} from schema version 4 to {migrations.SCHEMA_VERSION}\n",
    )
    assert recorded_version(layout4) == migrations.SCHEMA_VERSION
    wh = Warehouse(layout4)
    manifest = wh.current_manifest()
    # One new base of the working state (the batch never published included), keyed.
    assert manifest is not None and manifest.layout == catalog.LAYOUT == 5
    assert len(manifest.segments) == 1 and manifest.version == 10
    assert reader_rows(layout4 / "work.duckdb") == before
    assert published_rows(layout4) == before
    with wh.connect_published() as con:
        keyed = con.execute(
            "SELECT count(*), count(customer_key) FROM internal.rows WHERE kind <> 'merge'"
        ).fetchall()
    assert keyed[0][0] == keyed[0][1] > 0  # every row has its customer's key
    # The writes after it continue the new files; the read model builds from them.
    apply(wh, Settings(warehouse=layout4), "n1", [({"cookie": "k9"}, "name", "N", 5.0)])
    after = published_rows(layout4)
    assert after == reader_rows(layout4 / "work.duckdb") != before
    model = ReadModel(wh)
    assert model.follow() is not None
    assert model.state() is not None and model.state().version == 11  # type: ignore[union-attr]
