"""The in-transaction audits (sql/audit/*.sql) against a real in-memory DuckDB, full and sampled."""

from __future__ import annotations

import duckdb
import pytest

from propsync import sql
from propsync.store.apply import _audit_modulus


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    for statement in sql.schema_statements():
        c.execute(statement)
    c.execute(
        "CREATE TEMP TABLE staged_properties "
        "(customer_id VARCHAR, property VARCHAR, value VARCHAR, update_ts BIGINT, batch_id VARCHAR)"
    )
    return c


def count(con: duckdb.DuckDBPyConnection, name: str, modulus: int) -> int:
    return int(con.execute(sql.load(f"audit/{name}"), {"modulus": modulus}).fetchall()[0][0])


def customers_in_and_out_of_sample(con: duckdb.DuckDBPyConnection, modulus: int) -> tuple[str, str]:
    rows = con.execute(
        "SELECT 'c' || i AS c, hash('c' || i) % $m = 0 AS sampled FROM range(200) t(i)",
        {"m": modulus},
    ).fetchall()
    return next(c for c, s in rows if s), next(c for c, s in rows if not s)


def test_a_stale_stored_value_is_found_in_full_and_in_a_sample_that_holds_it(
    con: duckdb.DuckDBPyConnection,
) -> None:
    inside, outside = customers_in_and_out_of_sample(con, 4)
    for customer in (inside, outside):
        con.execute("INSERT INTO customer_ids VALUES ('registered', $c, $c, 'b')", {"c": customer})
        # The merge "forgot" this newer update: the stored value is older than the staged one.
        con.execute("INSERT INTO properties VALUES ($c, 'p', '\"old\"', 1, 'b')", {"c": customer})
        con.execute(
            "INSERT INTO staged_properties VALUES ($c, 'p', '\"new\"', 2, 'b')", {"c": customer}
        )
    assert count(con, "incoming_not_dominated", 1) == 2
    assert count(con, "incoming_not_dominated", 4) == 1
    con.execute("DELETE FROM properties WHERE customer_id = $c", {"c": inside})
    con.execute("INSERT INTO properties VALUES ($c, 'p', '\"new\"', 2, 'b')", {"c": inside})
    assert count(con, "incoming_not_dominated", 4) == 0  # the error outside the sample is unseen
    assert count(con, "incoming_not_dominated", 1) == 1


def test_duplicate_keys_and_orphans_are_counted_for_sampled_customers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    inside, outside = customers_in_and_out_of_sample(con, 3)
    for customer in (inside, outside):
        con.execute(
            "INSERT INTO properties VALUES ($c, 'p', '1', 5, 'b'), ($c, 'p', '2', 5, 'b')",
            {"c": customer},
        )
        con.execute("INSERT INTO staged_properties VALUES ($c, 'p', '2', 5, 'b')", {"c": customer})
    assert count(con, "duplicate_keys", 1) == 2
    assert count(con, "duplicate_keys", 3) == 1
    assert count(con, "orphan_properties", 1) == 2
    assert count(con, "orphan_properties", 3) == 1
    con.execute("INSERT INTO customer_ids VALUES ('registered', $c, $c, 'b')", {"c": inside})
    assert count(con, "orphan_properties", 3) == 0


@pytest.mark.parametrize(
    ("staged", "full_max", "modulus"), [(0, 10, 1), (10, 10, 1), (11, 10, 2), (95, 10, 10)]
)
def test_the_sample_shrinks_as_the_batch_grows(
    con: duckdb.DuckDBPyConnection, staged: int, full_max: int, modulus: int
) -> None:
    con.execute(
        "INSERT INTO staged_properties SELECT 'c' || i, 'p', '1', 1, 'b' FROM range($n) t(i)",
        {"n": staged},
    )
    assert _audit_modulus(con, full_max) == modulus
