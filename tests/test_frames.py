"""Polars frames handed to DuckDB (propsync.frames.register): queryable as they are, types and
nulls kept, a name registered again replaced."""

from __future__ import annotations

import duckdb
import polars as pl

from propsync.batch import CELLS_SCHEMA
from propsync.frames import register


def test_a_registered_frame_reads_back_row_for_row_with_its_types() -> None:
    cells = pl.DataFrame(
        [(1, "name", '"Ann ž 😀"', 1_600_000_000_000_000), (2, "age", "null", None)],
        schema=CELLS_SCHEMA,
        orient="row",
    )
    con = duckdb.connect()
    register(con, "cells", cells)
    assert con.execute("SELECT * FROM cells ORDER BY row_nr").fetchall() == cells.rows()
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE cells)").fetchall())
    assert types == {
        "row_nr": "BIGINT",
        "property": "VARCHAR",
        "value": "VARCHAR",
        "update_ts": "BIGINT",
    }
    # The SQL the apply path runs over it: joins and filters on the string columns.
    assert con.execute(
        "SELECT count(*) FROM cells WHERE property = 'name' AND value LIKE '%ž%'"
    ).fetchall() == [(1,)]


def test_registering_a_name_again_replaces_the_frame() -> None:
    con = duckdb.connect()
    register(con, "t", pl.DataFrame({"a": ["x", "y"]}))
    register(con, "t", pl.DataFrame({"a": ["z"]}))
    assert con.execute("SELECT a FROM t").fetchall() == [("z",)]


def test_an_empty_frame_is_an_empty_table() -> None:
    con = duckdb.connect()
    register(con, "empty_cells", pl.DataFrame(schema=CELLS_SCHEMA))
    assert con.execute("SELECT count(*) FROM empty_cells").fetchall() == [(0,)]
