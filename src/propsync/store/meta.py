"""The working database's ``meta`` table: one text value per key (version, schema_version, ...)."""

from __future__ import annotations

import duckdb


def get(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    rows = con.execute("SELECT value FROM meta WHERE key = $k", {"k": key}).fetchall()
    return None if not rows else str(rows[0][0])


def put(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Set ``key`` inside the caller's transaction (or as its own statements)."""
    con.execute("DELETE FROM meta WHERE key = $k", {"k": key})
    con.execute("INSERT INTO meta VALUES ($k, $v)", {"k": key, "v": value})
