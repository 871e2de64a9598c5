"""Snapshot imports (propsync.operations.imports) on real files and a real warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from propsync.config import Settings
from propsync.errors import MappingError
from propsync.mapping import load_mapping
from propsync.normalize import import_batch_id, scan_file
from propsync.operations.imports import (
    import_snapshot,
    normalise_snapshot,
    read_snapshot,
)
from propsync.store.read import CustomerRef, get_customer
from propsync.store.warehouse import Warehouse
from propsync.timestamps import now_us
from tests.conftest import SEED_MAPPING, write_csv, write_json

HEADER = ["idecko", "meno", "priezvisko", "update_timestamp"]


@pytest.fixture
def snapshot(tmp_path: Path) -> tuple[Path, Path]:
    source = write_csv(
        tmp_path / "crm.csv",
        HEADER,
        [["mgalik", "Marian", "Galik", "2019-10-02T08:00:00Z"], ["jdoe", "Jane", "Doe", ""]],
    )
    return source, write_json(tmp_path / "mapping.json", SEED_MAPPING)


def test_an_import_applies_once_and_a_repeat_is_a_no_op(
    warehouse: Warehouse, settings: Settings, snapshot: tuple[Path, Path]
) -> None:
    first = import_snapshot(*snapshot, settings, started_at_us=1_570_000_000_000_000)
    assert (first.status, first.properties_applied, first.rows_read) == ("applied", 4, 2)
    again = import_snapshot(*snapshot, settings, started_at_us=1_570_000_000_000_000)
    assert (again.status, again.batch_id, again.properties_applied) == (
        "already_applied",
        first.batch_id,
        0,
    )
    with warehouse.connect_published() as con:
        jane = get_customer(con, CustomerRef("registered", "jdoe"))
    # A row without its own timestamp is stamped with the snapshot's time.
    assert {p.name: p.update_ts for p in jane.properties} == {
        "first_name": 1_570_000_000_000_000,
        "last_name": 1_570_000_000_000_000,
    }


def test_the_dag_steps_make_the_batch_the_command_line_makes(
    settings: Settings, snapshot: tuple[Path, Path]
) -> None:
    started = 1_570_000_000_000_000
    path, model = read_snapshot(*snapshot)
    batch_id = import_batch_id(scan_file(path).sha256, model, False, started)
    batch = normalise_snapshot(
        path, model, settings, batch_id=batch_id, source="crm", started_at_us=started, now=now_us()
    )
    assert (batch.batch_id, batch.rows_read, batch.cells.height) == (batch_id, 2, 4)
    assert import_snapshot(*snapshot, settings, started_at_us=started).batch_id == batch_id
    # Another default time, or legacy, is another batch.
    assert import_batch_id(scan_file(path).sha256, model, False, started + 1) != batch_id
    assert import_batch_id(scan_file(path).sha256, model, True, started) != batch_id


def test_a_mapping_that_does_not_fit_the_source_fails_before_anything_is_written(
    warehouse: Warehouse, settings: Settings, snapshot: tuple[Path, Path], tmp_path: Path
) -> None:
    source, _ = snapshot
    wrong = {**SEED_MAPPING, "ids": [{"from_column": "missing", "to_id": "registered"}]}
    with pytest.raises(MappingError):
        read_snapshot(source, load_mapping(write_json(tmp_path / "wrong.json", wrong)))
    with pytest.raises(MappingError):
        import_snapshot(source, write_json(tmp_path / "wrong2.json", wrong), settings)
    assert not warehouse.root.exists()
