"""The heart of the product: per-property newer-wins, against a real DuckDB warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from propsync import sql
from propsync.config import Settings
from propsync.store import apply as apply_module
from propsync.store.apply import publish_pending
from propsync.store.warehouse import Warehouse, WriterInstance
from tests.helpers import apply, make_batch, props_of, published_state

MG = {"registered": "mgalik"}


def test_new_property_is_inserted_with_its_timestamp(
    warehouse: Warehouse, settings: Settings
) -> None:
    r = apply(warehouse, settings, "b1", [(MG, "first_name", "Marian", 1570001049)])
    assert (r.status, r.properties_applied, r.properties_stale) == ("applied", 1, 0)
    assert props_of(warehouse, "registered", "mgalik") == {
        "first_name": ("Marian", 1570001049_000000)
    }


def test_older_update_does_not_overwrite(warehouse: Warehouse, settings: Settings) -> None:
    apply(warehouse, settings, "b1", [(MG, "first_name", "Marian", 200)])
    r = apply(warehouse, settings, "b2", [(MG, "first_name", "Old", 100)])
    assert (r.properties_applied, r.properties_stale) == (0, 1)
    assert props_of(warehouse, "registered", "mgalik")["first_name"] == ("Marian", 200_000000)


def test_newer_update_overwrites(warehouse: Warehouse, settings: Settings) -> None:
    apply(warehouse, settings, "b1", [(MG, "first_name", "Old", 100)])
    r = apply(warehouse, settings, "b2", [(MG, "first_name", "New", 100.000001)])
    assert r.properties_applied == 1
    assert props_of(warehouse, "registered", "mgalik")["first_name"] == ("New", 100_000001)


def test_equal_timestamps_break_ties_by_canonical_text_in_any_order(
    tmp_path, settings: Settings
) -> None:
    finals = []
    for order in (["a", "b"], ["b", "a"]):
        wh = Warehouse(tmp_path / "".join(order))
        s = settings.model_copy(update={"warehouse": wh.root})
        for i, v in enumerate(order):
            apply(wh, s, f"b{i}", [(MG, "p", v, 100)])
        finals.append(props_of(wh, "registered", "mgalik")["p"])
    assert finals == [("b", 100_000000), ("b", 100_000000)]


def test_equal_timestamp_and_value_changes_nothing(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [(MG, "p", "same", 100)])
    r = apply(warehouse, settings, "b2", [(MG, "p", "same", 100)])
    assert (r.properties_applied, r.properties_stale) == (0, 1)


def test_duplicates_inside_a_batch_collapse_by_the_same_rule(
    warehouse: Warehouse, settings: Settings
) -> None:
    # MERGE would silently keep the first source row; the newest must win instead.
    r = apply(
        warehouse,
        settings,
        "b1",
        [(MG, "p", "first", 100), (MG, "p", "newest", 300), (MG, "p", "middle", 200)],
    )
    assert (r.properties_applied, r.properties_stale) == (1, 2)
    assert props_of(warehouse, "registered", "mgalik")["p"] == ("newest", 300_000000)


def test_reapplying_a_batch_id_is_a_no_op(warehouse: Warehouse, settings: Settings) -> None:
    first = apply(warehouse, settings, "b1", [(MG, "p", "v", 100)])
    again = apply(warehouse, settings, "b1", [(MG, "p", "other", 999)])
    assert again.status == "already_applied"
    assert again.published_version == first.published_version == 1
    assert props_of(warehouse, "registered", "mgalik")["p"] == ("v", 100_000000)


def test_legacy_fills_only_missing_or_legacy_properties(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [(MG, "timed", "fresh", 50)])
    r = apply(
        warehouse,
        settings,
        "legacy",
        [(MG, "timed", "legacy", None), (MG, "untimed", "legacy", None)],
    )
    assert (r.properties_applied, r.properties_stale) == (1, 1)
    assert props_of(warehouse, "registered", "mgalik") == {
        "timed": ("fresh", 50_000000),
        "untimed": ("legacy", None),
    }
    # Any timestamped update beats a legacy value, however old.
    apply(warehouse, settings, "b2", [(MG, "untimed", "timed now", 0)])
    assert props_of(warehouse, "registered", "mgalik")["untimed"] == ("timed now", 0)


def test_null_value_is_stored_and_blocks_older_values(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [(MG, "p", None, 200)])
    apply(warehouse, settings, "b2", [(MG, "p", "stale resurrection", 100)])
    assert props_of(warehouse, "registered", "mgalik")["p"] == (None, 200_000000)


def test_timestamps_compare_exactly_at_microsecond_precision(
    warehouse: Warehouse, settings: Settings
) -> None:
    # 1570001049.000001 and 1570001049.000002 are the same float32 and nearly the same float64.
    apply(warehouse, settings, "b1", [(MG, "p", "later", 1570001049.000002)])
    r = apply(warehouse, settings, "b2", [(MG, "p", "earlier", 1570001049.000001)])
    assert r.properties_applied == 0
    assert props_of(warehouse, "registered", "mgalik")["p"] == ("later", 1570001049_000002)


def test_published_version_is_isolated_from_the_writer(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [(MG, "p", "v1", 100)])
    reader = duckdb.connect(str(warehouse.published_file()), read_only=True)
    try:
        # A write while a reader holds the published file open: neither blocks the other.
        apply(warehouse, settings, "b2", [(MG, "p", "v2", 200)])
        assert reader.execute("SELECT value FROM properties").fetchall() == [('"v1"',)]
    finally:
        reader.close()
    assert props_of(warehouse, "registered", "mgalik")["p"] == ("v2", 200_000000)
    assert warehouse.published_version() == 2


def test_commit_without_publish_is_published_by_the_next_writer(
    warehouse: Warehouse, settings: Settings
) -> None:
    # Simulates a crash between commit and publish: the work database is ahead of readers.
    apply(warehouse, settings, "b1", [(MG, "p", "v1", 100)])
    apply(warehouse, settings, "b2", [(MG, "p", "v2", 200)], publish=False)
    assert props_of(warehouse, "registered", "mgalik")["p"] == ("v1", 100_000000)
    assert publish_pending(warehouse, settings) == 2
    assert props_of(warehouse, "registered", "mgalik")["p"] == ("v2", 200_000000)


def test_old_published_versions_are_pruned(warehouse: Warehouse, settings: Settings) -> None:
    for i in range(5):
        apply(warehouse, settings, f"b{i}", [(MG, "p", i, 100 + i)])
    names = sorted(p.name for p in warehouse.published_dir.glob("*.duckdb"))
    assert names == ["v000003.duckdb", "v000004.duckdb", "v000005.duckdb"]
    manifests = sorted(p.name for p in warehouse.published_dir.glob("*.manifest.json"))
    assert manifests == [n.replace(".duckdb", ".manifest.json") for n in names]


def test_reject_ratio_fails_the_batch_and_publishes_nothing(
    warehouse: Warehouse, settings: Settings
) -> None:
    from propsync.store.apply import apply_batch

    apply(warehouse, settings, "b1", [(MG, "p", "kept", 100)])
    batch = make_batch(
        "conflicting",
        [
            ({"registered": "a", "cookie": "c"}, "p", 1, 100),
            ({"registered": "b", "cookie": "c"}, "p", 2, 100),
        ],
    )
    r = apply_batch(warehouse, batch, settings, max_reject_ratio=0.1)
    assert r.status == "failed" and r.published_version is None
    assert "max_reject_ratio" in r.message
    assert warehouse.published_version() == 1
    with duckdb.connect(str(warehouse.work_path)) as con:
        assert con.execute(
            "SELECT status FROM batches WHERE batch_id = 'conflicting'"
        ).fetchall() == [("failed",)]
        assert con.execute(
            "SELECT count(*) FROM rejections WHERE batch_id = 'conflicting'"
        ).fetchall() == [(1,)]
        assert con.execute(
            "SELECT count(*) FROM customer_ids WHERE id_value IN ('a', 'b')"
        ).fetchall() == [(0,)]


def test_lock_is_exclusive_between_writers(warehouse: Warehouse, settings: Settings) -> None:
    from propsync.errors import WarehouseLocked

    quick = settings.model_copy(update={"lock_timeout_seconds": 0.2})
    with warehouse.write_lock(), pytest.raises(WarehouseLocked) as info:
        apply(warehouse, quick, "b1", [(MG, "p", 1, 1)])
    assert info.value.retryable
    assert apply(warehouse, quick, "b1", [(MG, "p", 1, 1)]).status == "applied"


def test_a_large_batch_is_audited_on_a_sample_and_applies_the_same(
    tmp_path, settings: Settings
) -> None:
    updates = [({"registered": f"u{i}"}, "p", f"v{i}", 100 + i) for i in range(40)]
    updates += [({"registered": f"u{i}"}, "p", "stale", 50) for i in range(0, 40, 3)]
    states, moduli = [], []
    for full_max in (1_000_000, 7):
        wh = Warehouse(tmp_path / f"w{full_max}")
        s = settings.model_copy(update={"warehouse": wh.root, "audit_full_max_updates": full_max})
        r = apply(wh, s, "b1", updates)
        assert (r.status, r.properties_applied, r.properties_stale) == ("applied", 40, 14)
        moduli.append(r.audit_modulus)
        states.append(published_state(wh))
    assert moduli == [1, 6]  # 40 staged updates / 7 -> every 6th hash bucket
    assert states[0] == states[1]


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
