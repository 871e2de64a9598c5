"""The two winner statements of the newer-wins merge (sql/apply/) against a real in-memory DuckDB.

``winning_properties.sql`` (the merge step: each staged row keeps its own batch id) and
``winning_batch_properties.sql`` + ``drop_tied_losers.sql`` (the batch's own step, ``batch_winners``:
staged rows and winners carry no batch id) must pick the same winners, and the latter hands them
over sorted by customer.
"""

from __future__ import annotations

import duckdb
from hypothesis import HealthCheck, given, settings, strategies as st

from propsync import sql
from propsync.store.apply import _merge_staged, batch_winners, few_batch_customers

BATCH = "imp-0123456789abcdef01234567"
Cell = tuple[str, int | None]  # value, update_ts
State = dict[tuple[int, int], Cell]  # (customer_key, property_id) -> cell

# (customer_key, property_id) -> (value, update_ts); small domains so keys, times and values collide.
keys = st.tuples(st.integers(1, 30), st.integers(1, 4))
cells = st.tuples(
    st.sampled_from(['"a"', '"b"', "1", "null"]), st.one_of(st.none(), st.integers(1, 3))
)
states = st.dictionaries(keys, cells, max_size=60)


def _connect(stored: State, staged: State) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"preserve_insertion_order": False, "threads": 2})
    for statement in sql.schema_statements():
        con.execute(statement)
    for (k, p), (v, ts) in stored.items():
        con.execute(
            "INSERT INTO property_values VALUES ($k, $p, $v, $ts, 'old')",
            {"k": k, "p": p, "v": v, "ts": ts},
        )
    con.execute(
        "CREATE TEMP TABLE staged_properties "
        "(customer_key BIGINT, property_id INTEGER, value VARCHAR, update_ts BIGINT)"
    )
    for (k, p), (v, ts) in staged.items():
        con.execute(
            "INSERT INTO staged_properties VALUES ($k, $p, $v, $ts)",
            {"k": k, "p": p, "v": v, "ts": ts},
        )
    return con


def _reference(stored: State, staged: State) -> set[tuple[object, ...]]:
    def order(cell: Cell) -> tuple[int, str]:
        value, ts = cell
        return (-1 if ts is None else ts, value)

    return {
        (k, p, v, ts, BATCH)
        for (k, p), (v, ts) in staged.items()
        if (k, p) not in stored or order((v, ts)) > order(stored[(k, p)])
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored=states, staged=states, small=st.booleans(), few=st.booleans())
def test_both_winner_statements_pick_the_newer_wins_winners(
    stored: State, staged: State, small: bool, few: bool
) -> None:
    con = _connect(stored, staged)
    batch_winners(con, small=small, few_customers=few)
    rows = con.execute(
        "SELECT customer_key, property_id, value, update_ts, $b FROM winning_properties "
        "ORDER BY rowid",
        {"b": BATCH},
    ).fetchall()
    assert set(rows) == _reference(stored, staged)
    assert [r[:2] for r in rows] == sorted(r[:2] for r in rows)  # handed over by customer

    # The merge step's statement, on the same rows with the batch id as their own column.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE staged_properties AS "
        "SELECT *, $b AS batch_id FROM staged_properties",
        {"b": BATCH},
    )
    con.execute(sql.load("apply/winning_properties"))
    merged = con.execute("SELECT * FROM winning_properties").fetchall()
    assert set(merged) == set(rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored=states, staged=states, small=st.booleans(), few=st.booleans())
def test_the_merge_of_a_small_and_of_a_large_batch_store_the_newer_wins_state(
    stored: State, staged: State, small: bool, few: bool
) -> None:
    # Small: the stored rows of the batch's keys copied once (through its customers first when
    # they are few), the beaten ones deleted by row id; large: the winners join the whole table
    # and the delete joins on the keys.
    con = _connect(stored, staged)
    applied, in_place, unretired = _merge_staged(con, BATCH, small=small, few_customers=few)
    assert in_place
    assert unretired == 0  # a small batch's delete retired every row its winners beat
    winners = _reference(stored, staged)
    expected = {(k, p, v, ts, "old") for (k, p), (v, ts) in stored.items()}
    expected = {row for row in expected if (row[0], row[1]) not in {w[:2] for w in winners}}
    assert applied == len(winners)
    assert set(con.execute("SELECT * FROM property_values").fetchall()) == expected | winners
    assert con.execute("SELECT count(*) FROM property_values").fetchall()[0][0] == len(
        expected | winners
    )


def test_a_large_batch_is_sorted_by_customer_across_threads() -> None:
    # 400k unique keys in scrambled order (7919 is prime to 400000), a third of them stored older.
    con = _connect({}, {})
    con.execute(
        "INSERT INTO property_values SELECT i // 10, i % 10, '\"s\"', 5, 'old' "
        "FROM range(0, 400000, 3) t(i)"
    )
    con.execute(
        "INSERT INTO staged_properties "
        "SELECT x // 10, x % 10, '\"n\"', 6 FROM (SELECT (i * 7919) % 400000 AS x FROM range(400000) t(i))"
    )
    batch_winners(con)
    out_of_order, total = con.execute(
        "SELECT count(*) FILTER (WHERE key < prev), count(*) FROM ("
        " SELECT customer_key * 16 + property_id AS key,"
        " lag(customer_key * 16 + property_id) OVER (ORDER BY rowid) AS prev"
        " FROM winning_properties)"
    ).fetchall()[0]
    assert (out_of_order, total) == (0, 400000)


def test_a_small_batch_goes_through_its_customers_when_they_are_one_in_eight_or_fewer() -> None:
    con = _connect({}, {})
    con.execute("INSERT INTO customer_keys SELECT i, 'c' || i FROM range(80) t(i)")
    con.execute("CREATE TEMP TABLE batch_customers (customer_id VARCHAR, customer_key BIGINT)")
    con.execute("INSERT INTO batch_customers SELECT 'c' || i, i FROM range(10) t(i)")
    assert few_batch_customers(con) is True
    con.execute("INSERT INTO batch_customers VALUES ('new', 80)")
    assert few_batch_customers(con) is False
