"""``customers_wide`` (propsync.store.views): one row per customer, one JSON column per property
name in use, whatever the names are."""

from __future__ import annotations

import duckdb
import pytest

from propsync import sql
from propsync.config import Settings
from propsync.store.views import refresh_wide_view
from propsync.store.warehouse import Warehouse
from tests.helpers import apply


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for statement in sql.schema_statements():
        con.execute(statement)
    return con


def columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [d[0] for d in con.execute("SELECT * FROM customers_wide").description]


def test_every_property_name_is_a_column_and_missing_values_are_null(
    con: duckdb.DuckDBPyConnection,
) -> None:
    hostile = 'x"); DROP TABLE meta; --'
    con.execute(
        "INSERT INTO property_names VALUES (1, 'name'), (2, $h), (3, 'Plan')",
        {"h": hostile},
    )
    con.execute("INSERT INTO customer_keys VALUES (10, 'c10'), (11, 'c11')")
    con.execute(
        "INSERT INTO property_values VALUES (10, 1, '\"Ann\"', 1, 'b'), (10, 2, '[1,2]', 1, 'b'),"
        " (11, 3, 'true', NULL, 'b')"
    )
    refresh_wide_view(con)
    # In name order; names are quoted, never pasted into the view's SQL.
    assert columns(con) == ["customer_id", "Plan", "name", hostile]
    rows = con.execute(
        f'SELECT customer_id, "Plan", name, {sql.quote_ident(hostile)}'
        " FROM customers_wide ORDER BY customer_id"
    ).fetchall()
    assert rows == [("c10", None, '"Ann"', "[1,2]"), ("c11", "true", None, None)]
    assert con.execute("SELECT count(*) FROM meta").fetchall() == [(0,)]  # still there


def test_a_new_property_name_needs_a_refresh(con: duckdb.DuckDBPyConnection) -> None:
    refresh_wide_view(con)
    assert columns(con) == ["customer_id"]
    con.execute("INSERT INTO property_names VALUES (1, 'plan')")
    assert columns(con) == ["customer_id"]
    refresh_wide_view(con)
    assert columns(con) == ["customer_id", "plan"]


def test_the_published_version_has_the_view_of_its_properties(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a"}, "plan", "pro", 1.0)])
    apply(warehouse, settings, "b2", [({"registered": "b"}, "age", 30, 2.0)])
    with warehouse.connect_published() as con:
        rows = con.execute("SELECT age, plan FROM customers_wide ORDER BY plan NULLS LAST")
        assert rows.fetchall() == [(None, '"pro"'), ("30", None)]
