"""The journal tests' records, a writer on the test's warehouse, and what was published."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from propsync.journal import JournalWriter, Record, journal_dir
from propsync.store.warehouse import Warehouse

TS = 1_600_000_000_000_000


def rec(
    batch: str,
    value: str,
    *,
    user: str | None = None,
    receive: int = TS,
    ids: dict[str, str] | None = None,
    kind: str = "track",
) -> Record:
    ids = ids or {"registered": user or batch}
    return Record(
        batch_id=batch,
        receive_us=receive,
        ids=[(1, t, v) for t, v in ids.items()],
        cells=[(1, "p", json.dumps(value), receive)],
        command_ids={1: f"cmd-{batch}"},
        commands=1,
        kind=kind,
    )


def segments(warehouse: Warehouse) -> list[Path]:
    return sorted(journal_dir(warehouse.root).glob("*.jsonl"))


def stored(warehouse: Warehouse) -> dict[str, str]:
    with warehouse.connect_published() as con:
        rows = con.execute(
            "SELECT i.id_value, p.value FROM customer_ids i JOIN properties p USING (customer_id) "
            "WHERE i.id_type = 'registered' AND p.property = 'p'"
        ).fetchall()
    return {k: json.loads(v) for k, v in rows}


@pytest.fixture
def writer(warehouse: Warehouse) -> Iterator[JournalWriter]:
    w = JournalWriter(warehouse.root).start()
    yield w
    w.close()
