"""Views whose text depends on the data: ``customers_wide`` has one column per property name."""

from __future__ import annotations

import duckdb

from propsync.sql import quote_ident

# The customer key inside the view's query; a property may be called anything else.
_KEY = '"__propsync_customer_key"'


def refresh_wide_view(con: duckdb.DuckDBPyConnection) -> None:
    """``customers_wide``: one row per customer, one JSON column per property name in use.

    A view cannot bind parameters, so property names (user data) are quoted, never pasted raw;
    the dictionary (``property_names``) is small, so this costs nothing like a scan of the values.
    """
    names = con.execute(
        "SELECT property_id, property FROM property_names ORDER BY property"
    ).fetchall()
    columns = "".join(
        f",\n        any_value(value::JSON) FILTER (WHERE property_id = {int(pid)}) AS {quote_ident(n)}"
        for pid, n in names
    )
    con.execute(
        "CREATE OR REPLACE VIEW customers_wide AS\n"
        "WITH wide AS (\n"
        f"    SELECT customer_key AS {_KEY}{columns}\n"
        "    FROM property_values\n"
        "    GROUP BY customer_key\n"
        ")\n"
        f"SELECT customer_keys.customer_id, wide.* EXCLUDE ({_KEY})\n"
        "FROM wide\n"
        f"JOIN customer_keys ON customer_keys.customer_key = wide.{_KEY}"
    )
