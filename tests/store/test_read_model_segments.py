"""The read model's recent segments (``propsync.store.read_model``, "Segments"): follows append
segments, merges and folds keep them few, and through every step, crashes included, a read
returns exactly what the published version holds."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from propsync.config import Settings
from propsync.store import read_model
from propsync.store.read import Customer, CustomerRef, Property
from propsync.store.read_model import ReadModel, connect_reader
from propsync.store.warehouse import Warehouse
from tests.helpers import apply
from tests.store import test_read_model
from tests.store.test_order_independence import update_st
from tests.store.test_read_model import fold, model_tables, populate, refs_of, stored

# Thresholds small enough for a few customers to merge and fold, as big ones do at 1M.
SMALL = {
    "FANOUT": 2,
    "MERGE_MAX_ROWS": 10**9,
    "FOLD_MIN_ROWS": 40,
    "FOLD_SHARE": 10**9,  # the threshold is FOLD_MIN_ROWS
    "FOLD_SLICE_ROWS": 15,
    "MAX_SEGMENTS": 6,
}


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SMALL.items():
        monkeypatch.setattr(read_model, name, value)


@pytest.fixture
def model(warehouse: Warehouse, settings: Settings, small: None) -> ReadModel:
    """The populated warehouse's read model, just built (everything in properties, no segment),
    with the SMALL thresholds."""
    populate(warehouse, settings)
    built = ReadModel(warehouse)
    built.follow()
    return built


def segments(model: ReadModel) -> list[tuple[int, int, int]]:
    con = connect_reader(model.path)
    try:
        return con.execute("SELECT seg, level, rows FROM recent_segments ORDER BY seg").fetchall()
    finally:
        con.close()


def recent_rows(model: ReadModel) -> int:
    con = connect_reader(model.path)
    try:
        return int(con.execute("SELECT count(*) FROM recent_properties").fetchall()[0][0])
    finally:
        con.close()


def expected_customers(tables: Any, refs: list[str]) -> dict[str, Customer | None]:
    """What a point read of each ref returns, from the tables (checked equal to the published
    ones): an id, an internal id, or a merged-away one resolved to its survivor."""
    by_id = {(t, v): c for t, v, c in tables["customer_ids"]}
    current = set(by_id.values())
    alias = dict(tables["customer_aliases"])
    out: dict[str, Customer | None] = {}
    for text in refs:
        ref = CustomerRef.parse(text)
        if ref.id_type is None:
            cid = ref.value if ref.value in current else alias.get(ref.value)
        else:
            cid = by_id.get((ref.id_type, ref.value))
        if cid is None:
            out[text] = None
            continue
        ids: dict[str, list[str]] = {}
        for t, v in sorted((t, v) for (t, v), c in by_id.items() if c == cid):
            ids.setdefault(t, []).append(v)
        rows = sorted((n, v, ts) for c, n, v, ts in tables["properties"] if c == cid)
        props = [Property(n, v, ts) for n, v, ts in rows]
        out[text] = Customer(cid, ids, props)
    return out


class Published:
    """The published version's tables and the refs to read (one DuckDB read per version)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.version = warehouse.published_version()
        self.tables = stored(warehouse)
        self.refs = refs_of(warehouse)
        self.customers = expected_customers(self.tables, self.refs)


def assert_reads_equal_published(
    model: ReadModel, warehouse: Warehouse, published: Published | None = None
) -> None:
    """Every table and every point read (ids, internal ids, aliases, unknowns) as published."""
    expected = published or Published(warehouse)
    assert expected.version == warehouse.published_version()
    assert model_tables(model) == expected.tables
    refs = expected.refs
    con = connect_reader(model.path)
    try:
        got = {text: read_model.read_customer(con, CustomerRef.parse(text))[0] for text in refs}
    finally:
        con.close()
    assert got == expected.customers


def maintain(model: ReadModel, steps: int = 1000) -> list[str]:
    """Up to ``steps`` maintenance steps, until none is due; what each did."""
    done = []
    for _ in range(steps):
        result = model.follow(maintain=True)
        assert result is not None
        if not result.maintenance:
            break
        done.append(result.maintenance)
    return done


# -- the rules -------------------------------------------------------------------------------------


def test_merges_carry_like_a_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Follow after follow, merged as merge_group says: the live segments stay oldest-first
    with levels that never rise, at most FANOUT - 1 per level below the top, and every row is
    in exactly one."""
    monkeypatch.setattr(read_model, "FANOUT", 3)
    monkeypatch.setattr(read_model, "MERGE_MAX_ROWS", 10**9)
    live: list[tuple[int, int, int]] = []
    merges = 0
    for follow in range(1, 200):
        live.append((live[-1][0] + 1 if live else 1, 0, 10))
        while (group := read_model.merge_group(live)) is not None:
            first, last, level = group
            merged = [s for s in live if first <= s[0] <= last]
            assert merged == live[-len(merged) :], "only the newest segments merge"
            assert len(merged) >= 3 and all(s[1] < level for s in merged)
            live = [*live[: -len(merged)], (last + 1, level, sum(s[2] for s in merged))]
            merges += 1
        seg_ids = [s[0] for s in live]
        assert seg_ids == sorted(seg_ids)
        levels = [s[1] for s in live]
        assert levels == sorted(levels, reverse=True)
        assert all(levels.count(n) < 3 for n in set(levels))
        assert sum(s[2] for s in live) == 10 * follow
    assert merges > 50 and len(live) <= 2 * 5  # 199 follows in base 3: five digits


def test_a_merge_past_merge_max_rows_is_left_to_the_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_model, "FANOUT", 2)
    monkeypatch.setattr(read_model, "MERGE_MAX_ROWS", 100)
    assert read_model.merge_group([(1, 0, 50), (2, 0, 50)]) == (1, 2, 1)
    assert read_model.merge_group([(1, 0, 50), (2, 0, 51)]) is None
    assert read_model.merge_group([(1, 1, 60), (2, 0, 10)]) is None  # one of level 0 only
    assert read_model.merge_group([(1, 1, 60), (2, 0, 10), (3, 0, 10)]) == (2, 3, 1)


def test_fold_slices_cover_every_customer_key_once() -> None:
    for top in (0, 1, 2, 5, 1000):
        for slices in (1, 2, 3, 7, 16):
            bounds = [read_model.slice_bounds(index, slices, top) for index in range(slices)]
            assert bounds[0][0] == 1
            assert all(bounds[i + 1][0] == bounds[i][1] + 1 for i in range(slices - 1))
            assert bounds[-1][1] == 2**63 - 1  # keys drawn while the fold is under way too
            for key in (1, top, top + 1, top + 50, 2**63 - 1):
                if key >= 1:
                    assert sum(lo <= key <= hi for lo, hi in bounds) == 1, (top, slices, key)
            assert (
                sum(hi - lo + 1 for lo, hi in bounds[:-1]) + bounds[-1][1] - bounds[-1][0] + 1
                == 2**63 - 1
            )
    # Keys spread evenly over the slices.
    sizes = [hi - lo + 1 for lo, hi in (read_model.slice_bounds(i, 4, 1000) for i in range(3))]
    assert sizes == [250, 250, 250]


# -- against the published version -----------------------------------------------------------------


def test_follows_append_segments_that_merge_and_then_fold(
    warehouse: Warehouse, settings: Settings, model: ReadModel
) -> None:
    assert segments(model) == [] and recent_rows(model) == 0  # a build writes properties only
    done: list[str] = []
    for i in range(12):
        # Keys that come back (n0..n2): merges and folds must keep each key's newest row.
        updates = [({"registered": f"u{2 * j + 1}"}, f"n{i % 3}", i, 1.8e9 + i) for j in range(8)]
        apply(warehouse, settings, f"n{i}", updates)
        result = model.follow()
        assert result is not None and result.maintenance == ""  # not asked to
        live = segments(model)
        assert live[-1][1:] == (0, 8)  # the follow's own segment: its 8 rows
        published = Published(warehouse)
        assert_reads_equal_published(model, warehouse, published)
        for _ in range(3):  # a few steps between follows, as the follower takes them
            step = model.follow(maintain=True)
            assert step is not None
            done.append(step.maintenance)
            assert_reads_equal_published(model, warehouse, published)
    assert any(d.startswith("merged segments") for d in done)
    assert any(d.startswith("folded slice") for d in done)
    done = maintain(model)
    assert_reads_equal_published(model, warehouse)
    con = connect_reader(model.path)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()
    assert meta["fold_through"] == "0"
    assert len(segments(model)) < read_model.MAX_SEGMENTS


def test_segments_state_counts_the_live_segments_and_a_folds_progress(
    warehouse: Warehouse, settings: Settings, model: ReadModel
) -> None:
    con = connect_reader(model.path)
    try:
        assert read_model.segments_state(con) == read_model.SegmentsState(0, 0, None)
        progress = []
        for i in range(8):
            updates = [({"registered": f"u{2 * j + 1}"}, f"n{i}", i, 1.8e9 + i) for j in range(8)]
            apply(warehouse, settings, f"n{i}", updates)
            model.follow()
            while (step := model.follow(maintain=True)) is not None and step.maintenance:
                state = read_model.segments_state(con)
                live = segments(model)
                assert (state.segments, state.rows) == (len(live), sum(r for _, _, r in live))
                sliced = re.match(r"folded slice (\d+)/(\d+) ", step.maintenance)
                under_way = sliced is not None and sliced[1] != sliced[2]
                assert state.fold == ((int(sliced[1]), int(sliced[2])) if under_way else None)
                if under_way:
                    progress.append(state.fold)
        assert len(progress) >= 2  # a fold of several slices was seen under way
    finally:
        con.close()


def test_a_run_that_would_start_a_fold_goes_straight_into_properties_when_no_segment_is_live(
    warehouse: Warehouse, settings: Settings, model: ReadModel
) -> None:

    def big(value: str, ts: float) -> list[Any]:  # 50 rows: FOLD_MIN_ROWS is 40
        return [
            ({"registered": f"u{2 * j + 1}"}, f"big{k}", value, ts)
            for j in range(10)
            for k in range(5)
        ]

    apply(warehouse, settings, "big1", big("one", 1.8e9))
    model.follow()
    assert segments(model) == [] and recent_rows(model) == 0
    assert_reads_equal_published(model, warehouse)
    # A live segment holds u1's big0: the next large run must not go under it.
    apply(warehouse, settings, "small", [({"registered": "u1"}, "big0", "small", 1.85e9)])
    model.follow()
    apply(warehouse, settings, "big2", big("two", 1.9e9))
    model.follow()
    assert [rows for _, _, rows in segments(model)] == [1, 50]
    assert_reads_equal_published(model, warehouse)


def test_a_customer_merged_away_loses_its_recent_rows_too(
    warehouse: Warehouse, settings: Settings, model: ReadModel
) -> None:
    for ids in ({"cookie": "c2"}, {"registered": "u9"}):  # both: either may be merged away
        apply(warehouse, settings, f"n{ids}", [(ids, "late", f"{ids} in a segment", 1.8e9)])
    model.follow()
    assert recent_rows(model) == 2
    # c2's customer merges into u9's: its row in the segment must not shadow the survivor's.
    apply(warehouse, settings, "n2", [({"cookie": "c2", "registered": "u9"}, "p9", 1, 1.8e9)])
    model.follow()
    assert_reads_equal_published(model, warehouse)
    con = connect_reader(model.path)
    try:
        merged_away = con.execute(
            "SELECT old_customer_id FROM customer_aliases ORDER BY rowid DESC LIMIT 1"
        ).fetchall()[0][0]
        assert (
            con.execute(
                "SELECT count(*) FROM recent_properties"
                " JOIN customers USING (customer_key) WHERE customer_id = ?",
                (merged_away,),
            ).fetchall()[0][0]
            == 0
        )
    finally:
        con.close()


@hyp_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(st.lists(update_st, min_size=1, max_size=6), st.integers(0, 4)),
        min_size=1,
        max_size=6,
    ),
    fanout=st.sampled_from([2, 3]),
    fold_min_rows=st.sampled_from([1, 3, 8]),
    slice_rows=st.sampled_from([1, 2, 100]),
    max_segments=st.sampled_from([3, 5, 100]),
)
def test_reads_equal_the_published_version_through_any_merges_and_folds(
    steps: list[tuple[list[Any], int]],
    fanout: int,
    fold_min_rows: int,
    slice_rows: int,
    max_segments: int,
) -> None:
    """Customers merging, batches and maintenance steps interleaved at random: after every step
    the model reads as the published version."""
    with (
        pytest.MonkeyPatch.context() as mp,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for name, value in {
            **SMALL,
            "FANOUT": fanout,
            "FOLD_MIN_ROWS": fold_min_rows,
            "FOLD_SLICE_ROWS": slice_rows,
            "MAX_SEGMENTS": max_segments,
        }.items():
            mp.setattr(read_model, name, value)
        wh = Warehouse(Path(tmp) / "wh")
        s = Settings(warehouse=wh.root, keep_published_versions=1, file_retention_seconds=0)
        apply(wh, s, "seed", [({"registered": "z0"}, "name", "seed", 1.0)])
        apply(wh, s, "seed2", [({"cookie": "z1"}, "age", 1, 1.0)])
        apply(wh, s, "seed3", [({"registered": "z0", "cookie": "z1"}, "age", 2, 2.0)])  # merge
        model = ReadModel(wh)
        model.follow()
        for i, (updates, maintenance_steps) in enumerate(steps):
            apply(wh, s, f"b{i}", updates)
            model.follow()
            published = Published(wh)
            assert_reads_equal_published(model, wh, published)
            for _ in range(maintenance_steps):
                model.follow(maintain=True)
                assert_reads_equal_published(model, wh, published)


# -- crashes ---------------------------------------------------------------------------------------


def run_killed(warehouse: Warehouse, name: str, kill_at: int) -> None:
    """Follow with maintenance steps, the thresholds SMALL and a transaction per run, in a
    process killed -9 the ``kill_at``-th time the statement ``name`` is loaded."""
    test_read_model.run_killed(
        warehouse, name, kill_at, constants={**SMALL, "GROUP_ROWS": 1}, maintain=True
    )


def folded_rows(model: ReadModel, pattern: str) -> int:
    """Rows of ``properties`` whose property matches the GLOB ``pattern``, once no fold is under
    way (0 while one is): only a fold (or a build) writes a followed row there."""
    con = connect_reader(model.path)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        rows = con.execute(
            "SELECT count(*) FROM properties JOIN property_names USING (property_key)"
            " WHERE property GLOB ?",
            (pattern,),
        )
        return 0 if meta["fold_through"] != "0" else int(rows.fetchall()[0][0])
    finally:
        con.close()


def meta_of(model: ReadModel) -> dict[str, str]:
    con = connect_reader(model.path)
    try:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()


def batches(warehouse: Warehouse, settings: Settings, count: int) -> None:
    """``count`` batches of 12 rows each, on customers the populated warehouse has."""
    for i in range(count):
        updates = [({"registered": f"u{2 * j + 1}"}, "p1", f"w{i}", 1.9e9 + i) for j in range(12)]
        apply(warehouse, settings, f"k{i}", updates)


def test_a_follow_killed_after_its_segment_leaves_the_last_whole_version(
    warehouse: Warehouse, settings: Settings, model: ReadModel
) -> None:
    batches(warehouse, settings, 3)
    # GROUP_ROWS = 1: a transaction per run; the 2nd segment is run 7's.
    run_killed(warehouse, "read_model/add_segment", 2)
    assert meta_of(model)["version"] == "6"
    assert model_tables(model) == fold(warehouse.root, 6)
    result = model.follow()
    assert result is not None and (result.version, result.runs) == (8, 2)
    assert_reads_equal_published(model, warehouse)


@pytest.mark.parametrize(
    ("statement", "follows", "left"),
    [
        # 4 x 12 rows reach FOLD_MIN_ROWS: a fold of 4 slices, killed in its 2nd.
        ("read_model/delete_folded", 4, {"fold_through": "4", "fold_next": "1"}),
        # 3 x 12 rows: the 3 segments merge; killed with the merged segment written.
        ("read_model/delete_segment_rows", 3, {"fold_through": "0"}),
    ],
)
def test_maintenance_killed_mid_step_leaves_a_whole_model_that_carries_on(
    warehouse: Warehouse,
    settings: Settings,
    model: ReadModel,
    statement: str,
    follows: int,
    left: dict[str, str],
) -> None:
    for i in range(follows):
        if i == 0:
            batches(warehouse, settings, 1)
        else:
            updates = [({"registered": f"u{j}"}, "q", i, 2e9) for j in range(12)]
            apply(warehouse, settings, f"f{i}", updates)
        model.follow()
    before = segments(model)
    assert len(before) == follows
    run_killed(warehouse, statement, 2 if statement.endswith("folded") else 1)
    assert {k: meta_of(model)[k] for k in left} == left
    if statement.endswith("rows"):
        assert segments(model) == before  # the merge rolled back
    assert_reads_equal_published(model, warehouse)
    done = maintain(model)
    assert done, "the interrupted step is taken again"
    assert_reads_equal_published(model, warehouse)
    if statement.endswith("folded"):
        assert done[0].startswith("folded slice 2/4") and recent_rows(model) == 0
