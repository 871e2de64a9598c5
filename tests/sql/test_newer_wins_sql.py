"""The newer-wins order as the warehouse defines it once (sql/schema/15-17_newer_wins*.sql), against
a real in-memory DuckDB and a reference written here: (update_ts, value) compared as a pair,
legacy (NULL) older than any timestamp, ties in time settled by the canonical value text."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings, strategies as st

from propsync import sql

Update = tuple[int | None, str]  # update_ts, value

updates = st.tuples(
    st.one_of(st.none(), st.integers(-2, 3), st.just(2**62)),
    st.sampled_from(['"a"', '"b"', "1", "10", "null", "true", '""']),
)


def reference_key(update: Update) -> tuple[int, str]:
    ts, value = update
    return (-1 if ts is None else ts, value)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for statement in sql.schema_statements():
        con.execute(statement)
    return con


@settings(max_examples=300, deadline=None)
@given(a=updates, b=updates)
def test_newer_wins_is_the_reference_order(
    con: duckdb.DuckDBPyConnection, a: Update, b: Update
) -> None:
    wins, key_wins, reverse = con.execute(
        "SELECT newer_wins($ats, $av, $bts, $bv),"
        " newer_wins_key($ats, $av) > newer_wins_key($bts, $bv),"
        " newer_wins($bts, $bv, $ats, $av)",
        {"ats": a[0], "av": a[1], "bts": b[0], "bv": b[1]},
    ).fetchall()[0]
    assert wins is (reference_key(a) > reference_key(b))
    assert key_wins is wins
    # A total order: of two different updates exactly one wins; an update never beats itself.
    assert wins + reverse == (0 if reference_key(a) == reference_key(b) else 1)


@settings(max_examples=100, deadline=None)
@given(group=st.lists(updates, min_size=1, max_size=8))
def test_newer_wins_key_picks_the_reference_winner(
    con: duckdb.DuckDBPyConnection, group: list[Update]
) -> None:
    rows = con.execute(
        "SELECT arg_max({'ts': ts, 'value': value}, newer_wins_key(ts, value)) AS winner,"
        " (list({'ts': ts, 'value': value} ORDER BY newer_wins_key(ts, value) DESC))[1] AS first"
        " FROM (SELECT unnest($ts) AS ts, unnest($values) AS value)",
        {"ts": [u[0] for u in group], "values": [u[1] for u in group]},
    ).fetchall()
    best = max(group, key=reference_key)
    winner, first = rows[0]
    assert reference_key((winner["ts"], winner["value"])) == reference_key(best)
    assert reference_key((first["ts"], first["value"])) == reference_key(best)
