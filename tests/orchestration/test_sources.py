"""Where a run's snapshot lands (propsync.orchestration.sources): the lookup names what it tried
and refuses two formats of one date."""

from __future__ import annotations

from pathlib import Path

import pytest

from propsync.errors import SourceError
from propsync.orchestration.sources import find_snapshot


def test_snapshot_lookup_names_what_it_tried_and_refuses_ambiguity(tmp_path: Path) -> None:
    (tmp_path / "customers").mkdir()
    placeholders = {"date": "2024-01-05"}
    missing = find_snapshot(
        "{landing}/customers/{date}", "{landing}/m.json", str(tmp_path), placeholders
    )
    assert missing.source is None
    assert missing.describe_missing().endswith(
        "2024-01-05.csv or "
        + f"{tmp_path}/customers/2024-01-05.parquet or {tmp_path}/customers/2024-01-05.jsonl"
    )
    (tmp_path / "customers" / "2024-01-05.jsonl").write_text("{}\n")
    found = find_snapshot(
        "{landing}/customers/{date}", "{landing}/m.json", f"file://{tmp_path}", placeholders
    )
    assert found.source == f"file://{tmp_path}/customers/2024-01-05.jsonl"
    (tmp_path / "customers" / "2024-01-05.csv").write_text("a\n")
    with pytest.raises(SourceError, match="ambiguous snapshot"):
        find_snapshot("{landing}/customers/{date}", "{landing}/m.json", str(tmp_path), placeholders)
