"""Shared fixtures: a real warehouse directory per test, settings pointing at it, file helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from propsync.config import Settings
from propsync.store.warehouse import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse")


@pytest.fixture
def settings(warehouse: Warehouse) -> Settings:
    return Settings(warehouse=warehouse.root, lock_timeout_seconds=5)


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


SEED_MAPPING = {
    "properties": [
        {"from_column": "meno", "to_property": "first_name", "type": "string"},
        {"from_column": "priezvisko", "to_property": "last_name", "type": "string"},
    ],
    "update_timestamp": {"from_column": "update_timestamp"},
    "ids": [{"from_column": "idecko", "to_id": "registered"}],
    "constant_columns": [],
    "timezone": "UTC",
}
