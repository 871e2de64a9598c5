"""The working database's ``meta`` table (propsync.store.meta): one text value per key, set inside
the caller's transaction."""

from __future__ import annotations

import duckdb
import pytest

from propsync import sql
from propsync.config import Settings
from propsync.store import meta
from propsync.store.warehouse import Warehouse
from tests.helpers import apply


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for statement in sql.schema_statements():
        con.execute(statement)
    return con


def test_a_key_never_set_is_none_and_a_set_one_is_its_last_value(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert meta.get(con, "version") is None
    meta.put(con, "version", "1")
    meta.put(con, "version", "2")
    meta.put(con, "other", "x")
    assert (meta.get(con, "version"), meta.get(con, "other")) == ("2", "x")
    assert con.execute("SELECT count(*) FROM meta WHERE key = 'version'").fetchall() == [(1,)]


def test_a_put_in_a_rolled_back_transaction_is_undone(con: duckdb.DuckDBPyConnection) -> None:
    meta.put(con, "version", "1")
    con.execute("BEGIN TRANSACTION")
    meta.put(con, "version", "2")
    assert meta.get(con, "version") == "2"
    con.execute("ROLLBACK")
    assert meta.get(con, "version") == "1"


def test_a_warehouse_keeps_its_version_and_schema_version_there(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 1.0)])
    apply(warehouse, settings, "b2", [({"registered": "a"}, "p", 2, 2.0)])
    with duckdb.connect(str(warehouse.work_path), read_only=True) as con:
        assert meta.get(con, "version") == "2" == str(warehouse.published_version())
        assert meta.get(con, "schema_version") is not None
