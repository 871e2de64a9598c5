"""Every DuckDB connection propsync opens has DuckDB's progress bar off (it would print into logs)."""

from __future__ import annotations

import json
from pathlib import Path

from propsync.config import Settings
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, interactive_python

# Run as ``python -c``: there DuckDB turns its progress bar on by default (see interactive_python).
SETTINGS = """
import json, sys
import duckdb
from propsync.store.warehouse import Warehouse

q = "SELECT current_setting('enable_progress_bar')"
warehouse = Warehouse(sys.argv[1])
out = {}
with duckdb.connect() as con:
    out["plain"] = con.execute(q).fetchall()[0][0]
with warehouse.write_lock(30):
    for limit in (None, "256MB"):
        con = warehouse.connect_work(limit)
        out[f"work {limit}"] = con.execute(q).fetchall()[0][0]
        con.close()
with warehouse.connect_published() as con:
    out["published"] = con.execute(q).fetchall()[0][0]
print(json.dumps(out))
"""


def test_writer_and_reader_connections_have_the_progress_bar_off(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "ann"}, "name", "Ann", 1_600_000_000)])
    got = json.loads(interactive_python(SETTINGS, str(Path(warehouse.root))))
    assert got == {
        "plain": True,  # the premise: DuckDB would draw progress bars here
        "work None": False,
        "work 256MB": False,
        "published": False,
    }
