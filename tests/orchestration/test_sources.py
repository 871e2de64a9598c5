"""Where a run's snapshot lands (propsync.orchestration.sources): the lookup names what it tried
and refuses two formats of one date; templates are rendered with the run's placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from propsync.errors import SourceError, UsageError
from propsync.orchestration.sources import (
    SnapshotLocation,
    candidates,
    exists,
    find_snapshot,
    render,
)


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


def test_a_template_with_an_extension_is_looked_up_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "day-2024-01-05.PARQUET").write_bytes(b"PAR1")
    found = find_snapshot(
        "{landing}/day-{date}.PARQUET",
        "{landing}/m-{date}.json",
        str(tmp_path),
        {"date": "2024-01-05"},
    )
    assert found == SnapshotLocation(
        f"{tmp_path}/day-2024-01-05.PARQUET",
        f"{tmp_path}/m-2024-01-05.json",
        [f"{tmp_path}/day-2024-01-05.PARQUET"],
    )
    assert candidates("/l/x.txt") == ["/l/x.txt.csv", "/l/x.txt.parquet", "/l/x.txt.jsonl"]


def test_a_template_naming_an_unknown_placeholder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        render("{landing}/{day}.csv", str(tmp_path), {"date": "2024-01-05"})
    assert info.value.message == (
        "bad location template '{landing}/{day}.csv': 'day'; placeholders are {landing}, {date}"
    )
    with pytest.raises(UsageError, match="bad location template"):
        render("{landing}/{", str(tmp_path), {})
    assert render("{landing}/{date}", "s3://b", {"date": "d"}) == "s3://b/d"


def test_a_local_location_exists_as_a_file_only(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "f.csv").write_text("a\n")
    assert exists(str(tmp_path / "f.csv")) and exists(f"file://{tmp_path}/f.csv")
    assert not exists(str(tmp_path / "dir.csv")) and not exists(str(tmp_path / "none.csv"))
