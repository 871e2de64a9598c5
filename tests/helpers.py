"""Test helpers: build UpdateBatches directly and read the published state back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

from propsync.batch import CELLS_SCHEMA, IDS_SCHEMA, UpdateBatch
from propsync.config import Settings
from propsync.store.apply import BatchResult, apply_batch
from propsync.store.warehouse import Warehouse
from propsync.values import canonical_json

# (ids, property, value, update time in seconds or None for legacy)
Update = tuple[dict[str, str], str, Any, float | None]


def make_batch(batch_id: str, updates: Sequence[Update], kind: str = "track") -> UpdateBatch:
    id_rows, cell_rows = [], []
    for row_nr, (ids, prop, value, ts) in enumerate(updates, start=1):
        id_rows += [(row_nr, t, v) for t, v in ids.items()]
        us = None if ts is None else round(ts * 1_000_000)
        cell_rows.append((row_nr, prop, canonical_json(value), us))
    return UpdateBatch(
        batch_id=batch_id,
        kind=kind,
        source="test",
        ids=pl.DataFrame(id_rows, schema=IDS_SCHEMA, orient="row"),
        cells=pl.DataFrame(cell_rows, schema=CELLS_SCHEMA, orient="row"),
        rows_read=len(updates),
        cells_incoming=len(updates),
    )


def apply(
    warehouse: Warehouse, settings: Settings, batch_id: str, updates: Sequence[Update], **kw: Any
) -> BatchResult:
    return apply_batch(
        warehouse, make_batch(batch_id, updates), settings, max_reject_ratio=1.0, **kw
    )


def published_state(
    warehouse: Warehouse,
) -> dict[frozenset[tuple[str, str]], dict[str, tuple[Any, int | None]]]:
    """Customers keyed by their id set (internal ids are arbitrary): {property: (value, update_ts)}."""
    with warehouse.connect_published() as con:
        ids = con.execute("SELECT customer_id, id_type, id_value FROM customer_ids").fetchall()
        props = con.execute(
            "SELECT customer_id, property, value, update_ts FROM properties"
        ).fetchall()
    by_customer: dict[str, set[tuple[str, str]]] = {}
    for customer, t, v in ids:
        by_customer.setdefault(customer, set()).add((t, v))
    state: dict[frozenset[tuple[str, str]], dict[str, tuple[Any, int | None]]] = {}
    for id_set in by_customer.values():
        state[frozenset(id_set)] = {}
    for customer, prop, value, ts in props:
        state[frozenset(by_customer[customer])][prop] = (json.loads(value), ts)
    return state


def props_of(
    warehouse: Warehouse, id_type: str, id_value: str
) -> dict[str, tuple[Any, int | None]]:
    for id_set, props in published_state(warehouse).items():
        if (id_type, id_value) in id_set:
            return props
    raise KeyError((id_type, id_value))


def ids_sets(warehouse: Warehouse) -> list[set[tuple[str, str]]]:
    return sorted((set(s) for s in published_state(warehouse)), key=sorted)


def seconds(us: Iterable[int]) -> list[float]:
    return [u / 1e6 for u in us]


def interactive_python(code: str, *args: str) -> str:
    """Run ``python -c code args`` and return its stdout.

    DuckDB's Python client decides at import whether the session is interactive (``__main__`` has
    no file: ``python -c``, a REPL, a notebook) and then shows progress bars by default; under a
    script (pytest, ``airflow``, ``propsync``) it does not. Tests about that default need this.
    """
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# The tables a follower of the runs must reproduce (the run files' fold, the read model), as rows.
FOLLOWED_TABLES = {
    "customer_ids": "SELECT id_type, id_value, customer_id FROM customer_ids",
    "customer_aliases": "SELECT old_customer_id, customer_id FROM customer_aliases",
    "properties": "SELECT customer_id, property, value, update_ts, batch_id FROM properties",
}


def followed_tables(con: Any) -> dict[str, set[tuple[Any, ...]]]:
    """``FOLLOWED_TABLES`` read through ``con`` (DuckDB or sqlite3: both have execute/fetchall)."""
    return {name: set(con.execute(query).fetchall()) for name, query in FOLLOWED_TABLES.items()}


def without_batch_ids(tables: dict[str, set[tuple[Any, ...]]]) -> dict[str, set[tuple[Any, ...]]]:
    """``tables`` as the HTTP service's read model holds them: properties without their batch id."""
    return {**tables, "properties": {row[:4] for row in tables["properties"]}}


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
